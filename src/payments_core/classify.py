"""The core's fallback ``classify_error``: the HTTP error table and transport failures.

Registered ``trylast``, so a provider's own implementation is asked first and this one answers
whatever the provider leaves as ``None``. The table is the project's floor: every provider gets
at least these judgements.

=======  =====================  =========  =================================================
status   category               retryable  action
=======  =====================  =========  =================================================
400      invalid_request        no         read the error, fix the named parameter, resend
401      authentication         no         check the API key and secret; renew if expired
403      permission             no         the account lacks permission for this operation
404      not_found              no         check the ids used and the endpoint
429      rate_limited           yes        back off exponentially; honour Retry-After
5xx      provider_unavailable   yes        retry after a delay; contact the provider if it lasts
=======  =====================  =========  =================================================
"""

from __future__ import annotations

from typing import Final, TypeAlias

from payments_core.errors import ConnectError, PaymentsError, ProviderError, TransportError
from payments_core.hookspecs import hookimpl
from payments_core.models import ErrorCategory, ErrorClassification

__all__ = ["Judgement", "classification", "classification_for_status", "fallback_classification"]

_TRY_LATER: Final = "The payment service is busy. Please try again in a moment."
_CANNOT: Final = "We could not start the payment. Please contact support."

#: A classification's own words: its category, whether to retry, the action and the user message.
Judgement: TypeAlias = tuple[ErrorCategory, bool, str, str]

_BY_STATUS: Final[dict[int, Judgement]] = {
    400: (
        ErrorCategory.INVALID_REQUEST,
        False,
        "Parse the error body for the provider code and message, correct the named parameter, "
        "then send the request again.",
        _CANNOT,
    ),
    401: (
        ErrorCategory.AUTHENTICATION,
        False,
        "Verify the API key and secret; if they expired, renew them, then retry.",
        _CANNOT,
    ),
    403: (
        ErrorCategory.PERMISSION,
        False,
        "Make sure the merchant account has permission for this operation "
        "(e.g. order creation); ask the provider's support if unsure.",
        _CANNOT,
    ),
    404: (
        ErrorCategory.NOT_FOUND,
        False,
        "Check the ids used in the request and that the endpoint is the right one.",
        _CANNOT,
    ),
    429: (
        ErrorCategory.RATE_LIMITED,
        True,
        "Rate limit exceeded: retry with exponential backoff, honouring Retry-After.",
        _TRY_LATER,
    ),
}
_SERVER: Final = (
    ErrorCategory.PROVIDER_UNAVAILABLE,
    True,
    "The provider had an internal error: retry after a delay; if it persists, contact the "
    "provider's support.",
    _TRY_LATER,
)
#: Failures that brought no answer to judge.
_UNREACHED: Final = (
    ErrorCategory.NETWORK,
    True,
    "The provider could not be reached; the request was not sent. Retry, and check "
    "connectivity and the base URL if it persists.",
    _TRY_LATER,
)
_NO_ANSWER: Final = (
    ErrorCategory.OUTCOME_UNKNOWN,
    True,
    "No answer came back; the provider may have applied the request. Query the order by its "
    "reference before anything else; never create a second one.",
    _TRY_LATER,
)
_UNKNOWN: Final = (
    ErrorCategory.UNKNOWN,
    False,
    "Unexpected failure: see the error message and logs.",
    _CANNOT,
)


def classification_for_status(
    status_code: int, *, retry_after: float | None = None, provider_code: str | None = None
) -> ErrorClassification:
    """The error table's judgement for an HTTP status (other 4xx count as 400, other 5xx as 500)."""
    judgement = _SERVER if status_code >= 500 else _BY_STATUS.get(status_code, _BY_STATUS[400])
    return classification(
        judgement, retry_after=retry_after, status_code=status_code, provider_code=provider_code
    )


def fallback_classification(error: PaymentsError) -> ErrorClassification:
    """Classify any error from its HTTP status or transport failure alone."""
    if isinstance(error, ProviderError) and error.status_code is not None:
        return classification_for_status(
            error.status_code, retry_after=error.retry_after, provider_code=error.provider_code
        )
    if isinstance(error, ConnectError):  # a TransportError too: asked first
        return classification(_UNREACHED)
    if isinstance(error, TransportError):
        return classification(_NO_ANSWER)
    return classification(_UNKNOWN)


def classification(
    judgement: Judgement,
    *,
    retry_after: float | None = None,
    status_code: int | None = None,
    provider_code: str | None = None,
) -> ErrorClassification:
    """The classification ``judgement`` says, with what is known of the error (its
    ``retry_after`` kept only when the judgement says to retry)."""
    category, retryable, action, message = judgement
    return ErrorClassification(
        category=category,
        retryable=retryable,
        action=action,
        user_message=message,
        retry_after=retry_after if retryable else None,
        status_code=status_code,
        provider_code=provider_code,
    )


class FallbackClassifier:
    """The plugin object registering :func:`fallback_classification` as a ``trylast`` hook."""

    @hookimpl(trylast=True)
    def classify_error(self, error: PaymentsError) -> ErrorClassification:
        return fallback_classification(error)
