"""Response envelopes of the merchant API (reference section 1) and the business error type.

Success: ``{"status":"SUCCESS","code":"000000","data":...,"errorMessage":null}``. Business
failure: ``{"status":"FAIL","code":"<string>","errorMessage":"..."}``. The system envelope
(wrong method, missing content-type, no body) is ``{"status":"ERROR","type":"SYS",
"code":"100001001","errorData":"System abnormality"}``. ``code`` is always a JSON string.
"""

from __future__ import annotations

from collections.abc import Mapping

from payments_binance import protocol
from payments_binance.sandbox import jsonwire

SYS_CODE = "100001001"


class ApiError(Exception):
    """A business error answered with the FAIL envelope; ``code`` must be in ``ERROR_CODES``."""

    def __init__(self, code: str, message: str) -> None:
        if code not in protocol.ERROR_CODES:
            raise ValueError(f"unknown Binance error code {code!r}")
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def success(data: object) -> bytes:
    """The SUCCESS envelope around ``data``."""
    return jsonwire.dumps(
        {
            "status": protocol.STATUS_SUCCESS,
            "code": protocol.CODE_SUCCESS,
            "data": data,
            "errorMessage": None,
        }
    )


def failure(error: ApiError) -> bytes:
    """The FAIL envelope of a business error."""
    return jsonwire.dumps(
        {"status": protocol.STATUS_FAIL, "code": error.code, "errorMessage": error.message}
    )


def system_error() -> bytes:
    """The SYS envelope Binance uses for a wrong method, no content-type or no body."""
    return jsonwire.dumps(
        {"status": "ERROR", "type": "SYS", "code": SYS_CODE, "errorData": "System abnormality"}
    )


def http_status(code: str, overrides: Mapping[str, int], uniform: int | None) -> int:
    """HTTP status for error ``code``: ``uniform`` if set, else override, else table (400)."""
    if uniform is not None:
        return uniform
    if code in overrides:
        return overrides[code]
    return protocol.ERROR_CODES[code].http_status or 400
