"""Stripe's errors judged: its error types and codes refine the core's HTTP table.

=====================================  ==================  =========  ==============================
what Stripe answered                   category            retryable  why
=====================================  ==================  =========  ==============================
429 (``rate_limit``)                   rate_limited        yes        honour ``Retry-After``
409 ``idempotency_error``              outcome_unknown     yes        the first create still runs
400 ``idempotency_error``              invalid_request     no         the key was used with other
                                                                      parameters (another price)
409 ``lock_timeout``                   provider_unavailable yes       the object was busy
401 ``api_key_expired``                authentication      no         roll the key
400 on ``close_order``                 invalid_state       no         the session is not open
404 ``resource_missing``               not_found           no         no such session
5xx, ``api_error``                     provider_unavailable yes       Stripe's side failed
=====================================  ==================  =========  ==============================

Over all of them, ``Stripe-Should-Retry`` has the last word on whether to retry: Stripe sets
it when it knows better than the status (a 409 that will pass, a 500 that must not be sent
again). Everything else, transport failures included, is left to the core's table.
"""

from __future__ import annotations

from typing import Any, Final

import attrs

from payments_core import ErrorCategory, ErrorClassification, PaymentsError, ProviderError
from payments_core.classify import Judgement, classification, classification_for_status
from payments_stripe import wire

__all__ = ["StripeError", "classify"]

_TRY_AGAIN: Final = "The payment service is busy. Please try again in a moment."
_CANNOT: Final = "We could not start the payment. Please contact support."


class StripeError(ProviderError):
    """Stripe answered with an error.

    Attributes:
        error_type: Stripe's error ``type`` (``invalid_request_error``, ``api_error``, ...).
        should_retry: What ``Stripe-Should-Retry`` said, if it was sent.
    """

    def __init__(
        self,
        message: str,
        *,
        error_type: str | None = None,
        should_retry: bool | None = None,
        **context: Any,
    ) -> None:
        """``context``: the keyword arguments of :class:`~payments_core.ProviderError`."""
        super().__init__(message, **context)
        self.error_type = error_type
        self.should_retry = should_retry


def _judgement(error: ProviderError) -> ErrorClassification | None:
    status, code = error.status_code, error.provider_code
    kind = error.error_type if isinstance(error, StripeError) else code
    own: Judgement | None = None
    if kind == wire.ERROR_IDEMPOTENCY and status == 409:
        own = (
            ErrorCategory.OUTCOME_UNKNOWN,
            True,
            "Another request with this Idempotency-Key is still running at Stripe: send the "
            "same create again shortly, which returns its session.",
            _TRY_AGAIN,
        )
    elif kind == wire.ERROR_IDEMPOTENCY:
        own = (
            ErrorCategory.INVALID_REQUEST,
            False,
            "This reference was used within 24 h for a create with other parameters (another "
            "price or description): use a new reference, or the original parameters.",
            _CANNOT,
        )
    elif code == wire.CODE_LOCK_TIMEOUT:
        own = (
            ErrorCategory.PROVIDER_UNAVAILABLE,
            True,
            "The Stripe object was locked by another request: retry shortly.",
            _TRY_AGAIN,
        )
    elif code == wire.CODE_API_KEY_EXPIRED:
        own = (
            ErrorCategory.AUTHENTICATION,
            False,
            "The Stripe API key has expired: roll it in the Dashboard and set api_key.",
            _CANNOT,
        )
    elif status == 400 and error.operation == "close_order":
        own = (
            ErrorCategory.INVALID_STATE,
            False,
            "Only an open Checkout Session can be expired: query the order for its state.",
            _CANNOT,
        )
    if own is None:
        return None
    return classification(
        own, retry_after=error.retry_after, status_code=status, provider_code=code
    )


def classify(error: PaymentsError) -> ErrorClassification | None:
    """The classification of a Stripe error, or ``None`` to leave it to the core's table."""
    if not isinstance(error, ProviderError):
        return None  # transport failures: the core's judgement stands
    judged = _judgement(error)
    should_retry = error.should_retry if isinstance(error, StripeError) else None
    if should_retry is None:
        return judged
    if judged is None:
        if error.status_code is None:
            return None
        judged = classification_for_status(
            error.status_code, retry_after=error.retry_after, provider_code=error.provider_code
        )
    if judged.retryable is should_retry:
        return judged
    return attrs.evolve(
        judged,
        retryable=should_retry,
        retry_after=error.retry_after if should_retry else None,
        action=f"{judged.action} (Stripe-Should-Retry: {str(should_retry).lower()})",
    )
