"""What ExamplePay's and ExampleCharges' providers share: both speak JSON with the same error
shape (``{"error": {"code": ..., "message": ...}}``) and refuse callbacks the same way."""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

from payments_core import (
    CallbackPayloadError,
    CallbackReply,
    CallbackVerificationError,
    ConfigurationError,
    OrderRequest,
    ProviderError,
    Secret,
    ValidationError,
    get_logger,
)
from payments_core.errors import parse_retry_after
from payments_core.http import HttpResponse

__all__ = [
    "CallbackRefusal",
    "api_error",
    "check_currency",
    "compact_json",
    "refusal",
    "required",
]

log = get_logger("payments_example")

#: The two ways a callback is refused.
CallbackRefusal = type[CallbackVerificationError | CallbackPayloadError]


def compact_json(value: Any) -> bytes:
    """``value`` as JSON without spaces: the bytes the APIs send and sign."""
    return json.dumps(value, separators=(",", ":")).encode()


def required(setting: Secret | None, display: str, provider: str, key: str, env: str) -> str:
    """The value of the setting ``key``, which what is being done cannot go without.

    :raises ConfigurationError: naming where to set it, if it is unset.
    """
    if setting is None:
        raise ConfigurationError(
            f"{display} needs {key} ([providers.{provider}] or {env})", provider=provider
        )
    return setting.reveal()


def check_currency(
    request: OrderRequest, accepted: Collection[str], display: str, provider: str
) -> None:
    """Refuse, before anything is sent, a price in a currency the provider does not take.

    :raises ValidationError: naming ``price.currency``.
    """
    if request.price.currency not in accepted:
        raise ValidationError(
            "price.currency",
            f"{display} accepts {', '.join(sorted(accepted))}, not {request.price.currency}",
            provider=provider,
        )


def api_error(
    display: str,
    response: HttpResponse,
    operation: str,
    provider: str,
    request_id_header: str | None = None,
) -> ProviderError:
    """The error for an answer that is not a success, with the API's error code if it sent one."""
    code = _error_code(response)
    return ProviderError(
        f"{display} refused {operation}: HTTP {response.status_code}"
        + (f" ({code})" if code else ""),
        provider=provider,
        status_code=response.status_code,
        provider_code=code,
        request_id=None if request_id_header is None else response.headers.get(request_id_header),
        retry_after=parse_retry_after(response.headers),
        operation=operation,
    )


def refusal(
    kind: CallbackRefusal, display: str, provider: str, status: int, why: str
) -> CallbackVerificationError | CallbackPayloadError:
    """A refused callback, logged (``why`` holds no secret), with the reply to send back."""
    log.info("refused an %s callback: %s", display, why)
    return kind(
        f"{display} callback refused: {why}",
        provider=provider,
        reply=CallbackReply(status, compact_json({"error": why})),
    )


def _error_code(response: HttpResponse) -> str | None:
    try:
        code = json.loads(response.content)["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return None
    return code if isinstance(code, str) else None
