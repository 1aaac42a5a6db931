"""Binance's error codes (reference section 9) as :class:`~payments_core.ErrorClassification`.

The core's HTTP error table is the floor and lives in its fallback: an answer without a
Binance code (a CDN error page, a bare 429 or 5xx) and every transport failure are left to it
(:func:`classify` returns ``None``). Every code Binance documents gets its own judgement here,
with the error table's recommendation where one applies. An unreadable *success* answer is judged
"outcome unknown", so that a create is recovered by a query and never repeated blindly.
"""

from __future__ import annotations

from typing import Final, NamedTuple

from payments_core import ErrorCategory, ErrorClassification, PaymentsError, ProviderError
from payments_core.classify import classification

__all__ = ["CODE_JUDGEMENTS", "Judgement", "classify"]

_TRY_LATER: Final = "The payment service is busy. Please try again in a moment."
_CANNOT: Final = "We could not start the payment. Please contact support."
_NO_ORDER: Final = "We could not find this payment. Please contact support."
_DONE: Final = "This payment is already completed or in progress."

# The error table's recommendations, by the HTTP status it lists them under.
_FIX_REQUEST: Final = (
    "Read Binance's errorMessage, find the parameter it names, correct it per the Binance Pay "
    "documentation, then send the corrected request."
)
_CHECK_CREDENTIALS: Final = (
    "Verify the API key and secret (BINANCE_PAY_API_KEY / BINANCE_PAY_API_SECRET); if they "
    "expired, renew them in the merchant portal, then retry."
)
_CHECK_PERMISSIONS: Final = (
    "Make sure the merchant account may use this API (e.g. order creation); if unsure, ask "
    "Binance support."
)
_RETRY_LATER: Final = (
    "Binance had an internal error: retry after a delay; if it persists, contact Binance support."
)


class Judgement(NamedTuple):
    """What a Binance code means for the caller."""

    category: ErrorCategory
    retryable: bool
    action: str
    user_message: str


def _cannot(category: ErrorCategory, action: str) -> Judgement:
    """Retrying cannot help: ``action`` says what must change; the user is sent to support."""
    return Judgement(category, False, action, _CANNOT)


def _invalid(detail: str) -> Judgement:
    return _cannot(ErrorCategory.INVALID_REQUEST, f"{detail} {_FIX_REQUEST}")


def _client_bug(detail: str) -> Judgement:
    bug = "The plugin sent a request Binance cannot read: report it as a bug."
    return _cannot(ErrorCategory.INVALID_REQUEST, f"{detail} {bug}")


#: Every code of the reference's error table, judged.
CODE_JUDGEMENTS: Final[dict[str, Judgement]] = {
    "400000": Judgement(ErrorCategory.PROVIDER_UNAVAILABLE, True, _RETRY_LATER, _TRY_LATER),
    "400001": _invalid("A parameter breaks Binance's format rules."),
    "400002": _cannot(
        ErrorCategory.SIGNATURE,
        "Binance rejected the request signature: check that api_secret belongs to api_key; "
        "resending with the same secret cannot help.",
    ),
    "400003": Judgement(
        ErrorCategory.CLOCK_SKEW,
        True,
        "The request timestamp fell outside Binance's window: synchronise this host's clock "
        "(NTP); a retry carries a fresh timestamp.",
        _TRY_LATER,
    ),
    "400004": _cannot(
        ErrorCategory.AUTHENTICATION,
        f"Binance does not accept this API key from this IP address. {_CHECK_CREDENTIALS} If "
        "the key is restricted to trusted IPs, add this host's address.",
    ),
    "400005": _cannot(
        ErrorCategory.AUTHENTICATION, f"The API key is badly formatted. {_CHECK_CREDENTIALS}"
    ),
    "400006": _client_bug("Binance refused the HTTP method."),
    "400007": _client_bug("Binance refused the content type."),
    "400008": _client_bug("Binance could not read the request body."),
    "400100": _invalid("A required parameter is missing, empty or malformed."),
    "400101": _invalid("A parameter has the wrong length or format."),
    "400102": _invalid("A parameter value is out of range."),
    "400103": _invalid("A parameter holds illegal characters."),
    "400104": _invalid("The request body is too large: shorten the description or URLs."),
    "400201": Judgement(
        ErrorCategory.DUPLICATE_ORDER,
        False,
        "Binance finds this merchantTradeNo invalid or already used. The provider derives a "
        "valid one from the reference, so it is a duplicate: query the order by its reference "
        "and use it; never create another.",
        _TRY_LATER,
    ),
    "400202": Judgement(
        ErrorCategory.NOT_FOUND,
        False,
        "Binance has no order with this merchantTradeNo: check the reference, and that the "
        "API key belongs to the merchant that created the order.",
        _NO_ORDER,
    ),
    "400203": _cannot(
        ErrorCategory.PERMISSION,
        f"The merchant account's status does not allow this. {_CHECK_PERMISSIONS}",
    ),
    "400204": Judgement(
        ErrorCategory.INVALID_STATE,
        False,
        "The order's status does not allow this: a paid order (or one in payment) cannot be "
        "closed, and an unpaid one cannot be refunded. Query it and wait for its callback.",
        _DONE,
    ),
    "400205": _cannot(
        ErrorCategory.INVALID_STATE, "The sub-merchant already exists: use the existing one."
    ),
    "400206": _cannot(
        ErrorCategory.PERMISSION,
        f"The sub-merchant is missing or unavailable. {_CHECK_PERMISSIONS}",
    ),
    "400301": _invalid("The prepayId of the order to refund is invalid."),
    "400302": _cannot(
        ErrorCategory.INVALID_STATE,
        "The order has had the maximum of 10 refunds: refund it by other means.",
    ),
    "400303": _invalid(
        "The refund exceeds what remains of the order: query the order and refund at most what "
        "is left."
    ),
    "400304": _cannot(
        ErrorCategory.INVALID_STATE,
        "The merchant balance is too low to refund: top it up, then retry the refund.",
    ),
    "400606": _cannot(
        ErrorCategory.PERMISSION, f"Binance forbids this merchant access. {_CHECK_PERMISSIONS}"
    ),
    "406207": _cannot(
        ErrorCategory.NOT_FOUND, "The direct-debit contract does not exist: check its id."
    ),
    "406212": _cannot(
        ErrorCategory.INVALID_STATE,
        "The direct-debit contract is not signed yet: wait for the payer to sign it.",
    ),
    "100001001": _client_bug(
        "Binance's system layer refused the request (method, content type or missing body)."
    ),
}

_UNREADABLE_SUCCESS: Final = Judgement(
    ErrorCategory.OUTCOME_UNKNOWN,
    True,
    "Binance answered with a success status but an unreadable body; the request may have been "
    "applied. Query the order by its reference before anything else; never create a second one.",
    _TRY_LATER,
)


def classify(error: PaymentsError) -> ErrorClassification | None:
    """Judge ``error`` by Binance's code; ``None`` leaves it to the core's HTTP/transport table."""
    if not isinstance(error, ProviderError):
        return None
    judgement = CODE_JUDGEMENTS.get(error.provider_code or "")
    if judgement is None:
        status = error.status_code
        if error.provider_code is None and status is not None and 200 <= status < 300:
            judgement = _UNREADABLE_SUCCESS
        else:
            return None
    return classification(
        judgement,
        retry_after=error.retry_after,
        status_code=error.status_code,
        provider_code=error.provider_code,
    )
