"""What the facade's ledger operations return: one outcome per callback or reconciled order."""

from __future__ import annotations

import attrs

from payments_core.errors import PaymentsError
from payments_core.ledger.records import ApplyResult
from payments_core.models import CallbackReply, Order, PaymentEvent

__all__ = ["CallbackOutcome", "ReconcileOutcome"]


@attrs.frozen(kw_only=True)
class CallbackOutcome:
    """What :meth:`payments_core.Payments.apply_callback` did with one callback.

    Attributes:
        reply: The acknowledgement to send to the provider (sent for duplicates too).
        event: The verified event, or ``None`` for a callback of a kind that changes no order.
        result: What the ledger did with the event; ``None`` when there was no event.
    """

    reply: CallbackReply
    event: PaymentEvent | None
    result: ApplyResult | None


@attrs.frozen(kw_only=True)
class ReconcileOutcome:
    """What reconciliation found for one order that was still pending.

    Attributes:
        order: The order as the ledger held it before.
        answer: The order as the provider holds it; ``None`` if it has none or was not asked.
        result: What applying the answer did; ``None`` if nothing was applied (the provider
            still says pending, has no such order, or could not be asked).
        error: Why the provider could not be asked, if it could not.
    """

    order: Order
    answer: Order | None
    result: ApplyResult | None
    error: PaymentsError | None = None
