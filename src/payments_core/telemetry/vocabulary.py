"""The words telemetry uses: outcomes of a callback, kinds of refusal, URL templates.

Pure functions, shared by every backend and by the tests that read recorded spans.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Final

from payments_core.errors import CallbackPayloadError, CallbackVerificationError, PaymentsError
from payments_core.models import StatusChange
from payments_core.rules import EventFlag

__all__ = ["CALLBACK_OUTCOMES", "attributes_of", "callback_outcome", "refusal", "url_template"]

_DIGIT: Final = re.compile(r"\d")

#: Every value of a callback's ``payments.outcome``.
CALLBACK_OUTCOMES: Final = (
    "applied",
    "duplicate",
    "stale",
    "flagged",
    "acknowledged",
    "refused",
    "deferred",
    "failed",
)


def url_template(path: str) -> str:
    """``path`` with each segment that looks like an id (an order's, a refund's) as ``{id}``.

    A segment is taken for an id when it holds a digit and is either all digits or longer than
    three characters: so ``v3`` stays, and the template names the endpoint, not the request.

    >>> url_template("/binancepay/openapi/v3/order")
    '/binancepay/openapi/v3/order'
    >>> url_template("/v1/refunds/re_3Pq9")
    '/v1/refunds/{id}'
    """
    segments = [
        "{id}" if _DIGIT.search(part) and (part.isdigit() or len(part) > 3) else part
        for part in path.split("/")
    ]
    return "/".join(segments) or "/"


def callback_outcome(outcome: object, describe: Callable[[str, str], object]) -> str:
    """How the callback whose ``CallbackOutcome`` is ``outcome`` ended; the flag, if any, is
    passed to ``describe`` as ``payments.callback.flag``."""
    result = getattr(outcome, "result", None)
    if result is None:
        return "acknowledged"  # the provider's callback carried no payment event
    if result.duplicate:
        return "duplicate"
    if result.flagged is not None:
        describe("payments.callback.flag", str(result.flagged))
        return "stale" if result.flagged is EventFlag.STALE else "flagged"
    return "applied" if result.applied else "acknowledged"


def refusal(error: PaymentsError) -> str:
    """Why a callback was refused, in one word: ``verification``, ``payload`` or ``other``."""
    if isinstance(error, CallbackVerificationError):
        return "verification"
    if isinstance(error, CallbackPayloadError):
        return "payload"
    return "other"


def attributes_of(change: object) -> dict[str, str]:
    """The attributes of the span of the application hook hearing of ``change`` (none for
    anything else a caller hands the hook)."""
    if not isinstance(change, StatusChange):
        return {}
    return {
        "payments.provider": change.provider,
        "payments.reference": change.reference,
        "payments.status": str(change.new_status),
    }
