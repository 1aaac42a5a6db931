"""Wire-format facts of the Binance Pay Merchant API.

This module holds facts only: paths, header names, status words and the business error codes,
as ``docs/binance-protocol.md`` (from the protocol reference) records them. It holds no logic.
It is the single piece of code that the client plugin and the sandbox share, so that a bug in
signing or parsing on one side can never be hidden by the same bug on the other.
"""

from __future__ import annotations

import enum
import warnings
from typing import Any, Final, NamedTuple

DEFAULT_BASE_URL: Final = "https://bpay.binanceapi.com"

# Endpoints (all POST, JSON body).
PATH_CREATE_ORDER_V3: Final = "/binancepay/openapi/v3/order"
PATH_CREATE_ORDER_V2: Final = "/binancepay/openapi/v2/order"
PATH_QUERY_ORDER: Final = "/binancepay/openapi/v2/order/query"
PATH_CLOSE_ORDER: Final = "/binancepay/openapi/order/close"
PATH_CERTIFICATES: Final = "/binancepay/openapi/certificates"
#: "Query Certificate New" (reference section 16.3): UNCERTAIN, the docs' copies hide the path;
#: configurable as ``new_certificates_path``.
PATH_CERTIFICATES_NEW: Final = "/binancepay/openapi/certificates/new"
# Refunds have one version; the docs name no v2/v3 path for them (reference section 6).
PATH_REFUND: Final = "/binancepay/openapi/order/refund"
PATH_REFUND_QUERY: Final = "/binancepay/openapi/order/refund/query"

# Request-signing and webhook headers (the same four names in both directions).
HEADER_TIMESTAMP: Final = "BinancePay-Timestamp"
HEADER_NONCE: Final = "BinancePay-Nonce"
HEADER_CERTIFICATE_SN: Final = "BinancePay-Certificate-SN"
HEADER_SIGNATURE: Final = "BinancePay-Signature"
# A webhook signed with the new platform certificate carries these beside (or, once the old
# certificate is retired, perhaps instead of) the two above (reference section 16.3).
HEADER_CERTIFICATE_SN_NEW: Final = "BinancePay-Certificate-SN-New"
HEADER_SIGNATURE_NEW: Final = "BinancePay-Signature-New"

NONCE_LENGTH: Final = 32
MERCHANT_TRADE_NO_MAX: Final = 32
PREPAY_ID_MAX: Final = 19
REFUND_REQUEST_ID_MAX: Final = 64
AMOUNT_MAX_DECIMALS: Final = 8

STATUS_SUCCESS: Final = "SUCCESS"
STATUS_FAIL: Final = "FAIL"
CODE_SUCCESS: Final = "000000"

# The webhook acknowledgement Binance expects (HTTP 200).
WEBHOOK_ACK_SUCCESS: Final = b'{"returnCode":"SUCCESS","returnMessage":null}'

TERMINAL_TYPES: Final = frozenset({"APP", "WEB", "WAP", "MINI_PROGRAM", "OTHERS"})
GOODS_TYPES: Final = frozenset({"01", "02"})
GOODS_CATEGORIES: Final = frozenset(
    {
        "0000",
        "1000",
        "2000",
        "3000",
        "4000",
        "5000",
        "6000",
        "7000",
        "8000",
        "9000",
        "A000",
        "B000",
        "C000",
        "D000",
        "E000",
        "F000",
        "Z000",
    }
)


class OrderStatus(enum.StrEnum):
    """Order ``status`` values of query-order v2."""

    INITIAL = "INITIAL"
    PENDING = "PENDING"
    PAID = "PAID"
    CANCELED = "CANCELED"
    ERROR = "ERROR"
    REFUNDING = "REFUNDING"
    REFUNDED = "REFUNDED"
    FULL_REFUNDED = "FULL_REFUNDED"
    EXPIRED = "EXPIRED"


class BizType(enum.StrEnum):
    """Webhook ``bizType`` values this project understands."""

    PAY = "PAY"
    PAY_REFUND = "PAY_REFUND"


class BizStatus(enum.StrEnum):
    """Webhook ``bizStatus`` values of a ``PAY`` and a ``PAY_REFUND`` notification."""

    PAY_SUCCESS = "PAY_SUCCESS"
    PAY_CLOSED = "PAY_CLOSED"
    REFUND_SUCCESS = "REFUND_SUCCESS"
    REFUND_REJECTED = "REFUND_REJECTED"
    #: The rejection as one community library spells it; the docs say ``REFUND_REJECTED``.
    REFUND_REJECT = "REFUND_REJECT"


class BinanceRefundStatus(enum.StrEnum):
    """``refundStatus`` values of a refund query.

    Binance's words; :data:`payments_binance.refunds.STATUS_BY_REFUND_STATUS` maps them to the
    core's :class:`~payments_core.RefundStatus`.
    """

    REFUND_SUCCESS = "REFUND_SUCCESS"
    REFUND_FAIL = "REFUND_FAIL"
    REFUND_PENDING = "REFUND_PENDING"


class ErrorCode(NamedTuple):
    """One row of the business error table (reference, section 9)."""

    code: str
    name: str
    meaning: str
    #: HTTP status as one community library reports it; UNCERTAIN (the Binance pages give none).
    http_status: int | None


ERROR_CODES: Final[dict[str, ErrorCode]] = {
    row.code: row
    for row in (
        ErrorCode("400000", "UNKNOW_ERROR", "unknown error, retry later", 500),
        ErrorCode("400001", "INVALID_REQUEST", "bad parameter format or rules", 400),
        ErrorCode("400002", "INVALID_SIGNATURE", "signature for this request is not valid", 406),
        ErrorCode("400003", "INVALID_TIMESTAMP", "timestamp outside the accepted window", 406),
        ErrorCode("400004", "INVALID_API_KEY_OR_IP", "API key unknown or IP not allowed", 401),
        ErrorCode("400005", "BAD_API_KEY_FMT", "API key badly formatted", 401),
        ErrorCode("400006", "BAD_HTTP_METHOD", "HTTP method not supported", 405),
        ErrorCode("400007", "MEDIA_TYPE_NOT_SUPPORTED", "content type not supported", 415),
        ErrorCode("400008", "INVALID_REQUEST_BODY", "request body cannot be read", 400),
        ErrorCode(
            "400100",
            "MANDATORY_PARAM_EMPTY_OR_MALFORMED",
            "required parameter missing, empty or malformed",
            400,
        ),
        ErrorCode("400101", "INVALID_PARAM_WRONG_LENGTH", "parameter has the wrong length", 400),
        ErrorCode("400102", "INVALID_PARAM_WRONG_VALUE", "parameter value out of range", 400),
        ErrorCode("400103", "INVALID_PARAM_ILLEGAL_CHAR", "parameter has illegal characters", 400),
        ErrorCode("400104", "INVALID_REQUEST_TOO_LARGE", "request body too large", 413),
        ErrorCode(
            "400201", "INVALID_MERCHANT_TRADE_NO", "merchantTradeNo invalid or duplicated", 400
        ),
        ErrorCode("400202", "ORDER_NOT_FOUND", "order not found", 404),
        ErrorCode("400203", "INVALID_ACCOUNT_STATUS", "account not allowed", 403),
        ErrorCode(
            "400204", "INVALID_ORDER_STATUS", "order cannot be closed: paid or in payment", 400
        ),
        ErrorCode("400205", "SUB_MERCHANT_EXISTS", "sub-merchant already exists", 400),
        ErrorCode("400206", "SUB_MERCHANT_INVALID", "sub-merchant missing or unavailable", 403),
        ErrorCode("400301", "INVALID_PREPAY_ID", "invalid prepayId", 400),
        ErrorCode("400302", "TOO_MANY_REFUND_ATTEMPTS", "more than 10 refunds on one order", 400),
        ErrorCode("400303", "INVALID_REFUND_AMOUNT", "refund exceeds the remaining amount", 400),
        ErrorCode(
            "400304",
            "ACCOUNT_REMAINING_AMOUNT_NOT_ENOUGH",
            "merchant balance too low to refund",
            400,
        ),
        ErrorCode("400606", "MERCHANT_ACCESS_FORBIDDEN", "merchant access forbidden", 403),
        ErrorCode("406207", "CONTRACT_NOT_FOUND", "direct-debit contract not found", 404),
        ErrorCode("406212", "CONTRACT_NOT_SIGNED", "direct-debit contract not signed", 409),
        ErrorCode(
            "100001001",
            "SYSTEM_ABNORMALITY",
            "wrong method, missing content-type or no body",
            None,
        ),
    )
}

#: Other documented webhook ``bizType`` values (reference section 8.3): payouts, balance,
#: direct debit, partner and QR-code notifications. This project tracks none of them.
OTHER_BIZ_TYPES: Final = frozenset(
    {
        "PAYOUT",
        "PAYOUT_NON_BN",
        "BALANCE",
        "DIRECT_DEBIT_CT",
        "TECH_PROVIDER",
        "SHARE_ACCOUNT_ID",
        "MERCHANT_QR_CODE",
    }
)


def __getattr__(name: str) -> Any:
    # The old name, kept for one release: it read as the core's ``RefundStatus``.
    if name == "RefundStatus":
        warnings.warn(
            "payments_binance.protocol.RefundStatus is now BinanceRefundStatus",
            DeprecationWarning,
            stacklevel=2,
        )
        return BinanceRefundStatus
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
