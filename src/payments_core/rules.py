"""The payment rules: when an event may change an order, and when an order may be refunded.

These decide; they neither read nor write anything. The ledger applies them inside its
transactions, and the facade applies :func:`check_refundable` to a provider's answer when it
runs without a ledger, so the two always agree.
"""

from __future__ import annotations

import enum
from decimal import Decimal
from typing import NamedTuple

from payments_core.errors import ValidationError
from payments_core.models import PaymentEvent, PaymentStatus, Refund, RefundRequest, RefundStatus
from payments_core.money import Money, currency

__all__ = [
    "EventFlag",
    "OrderState",
    "assess_event",
    "assess_refund_notice",
    "check_refundable",
    "check_refunded",
    "learnt_settlement",
    "worth_applying",
]


class EventFlag(enum.StrEnum):
    """Why a recorded event did not change its order.

    Every flag but ``STALE`` marks a callback that does not fit the ledger and deserves a look.
    """

    UNKNOWN_ORDER = "unknown_order"  # no order in the ledger has either of the event's ids
    ORDER_MISMATCH = "order_mismatch"  # the two ids name different orders, or one differs
    CURRENCY_MISMATCH = "currency_mismatch"  # neither the price's nor the settlement's currency
    AMOUNT_MISMATCH = "amount_mismatch"  # same currency, another amount
    STALE = "stale"  # not a step forward: a late "closed" after "paid", or no change at all
    UNKNOWN_REFUND = "unknown_refund"  # a refund notice for no refund the ledger has asked for


class OrderState(NamedTuple):
    """The part of a stored order that decides whether an event may change it."""

    reference: str
    provider_order_id: str
    provider_reference: str | None
    status: PaymentStatus
    amount: Decimal
    currency: str
    settlement_amount: Decimal | None = None
    settlement_currency: str | None = None


def assess_event(state: OrderState | None, event: PaymentEvent) -> EventFlag | None:
    """Decide whether ``event`` may change the order in ``state``.

    An amount is compared exactly with the order's price when it is in the price's currency,
    and with the order's settlement (what the provider converted the price to: Binance Pay
    asks USDT for a USD price) when it is in the settlement's currency; any other currency is a
    mismatch. One exception: for a fiat-priced order whose settlement the provider never stated,
    a crypto amount cannot be checked, and is accepted (and recorded). An event that states no
    amount is not checked for one. What the payer actually paid (``event.paid``: an under- or
    over-payment under review, say) is never checked.

    :returns: ``None`` if the event is a step forward for a matching order; otherwise the
        :class:`EventFlag` saying why it must be recorded without changing anything.
    """
    if state is None:
        return EventFlag.UNKNOWN_ORDER
    if _names_another_order(state, event):
        return EventFlag.ORDER_MISMATCH
    amount = event.amount
    if amount is not None:
        expected: Decimal | None
        if amount.currency == state.currency:
            expected = state.amount
        elif amount.currency == state.settlement_currency:
            expected = state.settlement_amount
        elif (
            state.settlement_currency is None
            and amount.currency_info.crypto
            and not currency(state.currency).crypto
        ):
            expected = None  # converted at a rate the ledger never learnt: nothing to check
        else:
            return EventFlag.CURRENCY_MISMATCH
        if expected is not None and amount.amount != expected:
            return EventFlag.AMOUNT_MISMATCH
    if not state.status.can_become(event.status):
        return EventFlag.STALE
    return None


def worth_applying(stored: PaymentStatus, answer: PaymentStatus) -> bool:
    """Whether a provider's ``answer`` to a query about an order in ``stored`` is worth an event.

    A final answer always is: recorded, and applied if it is a step forward (a late "closed"
    after "paid" is kept, flagged stale). An answer not final is only when it is a step
    forward (``pending`` to ``confirming``): "still pending" is no news, and is not recorded.
    """
    return answer.is_final or stored.can_become(answer)


def learnt_settlement(state: OrderState, event: PaymentEvent) -> Money | None:
    """The settlement an applied ``event`` teaches the order in ``state``, if any.

    Some providers learn the settlement only from the payment: the payer picks the coin when
    paying (Coinbase Commerce, BTCPay, NOWPayments). An order created without a settlement
    takes it from the first applied event that states an amount in another currency than the
    price: the event's ``amount`` (what the provider says the order came to), else, for a
    ``paid`` event only, its ``paid`` (what the payer paid, which settled the order). What
    arrived for a payment under review or not yet confirmed is no settlement: it may be wrong.
    An order that has a settlement keeps it: a ``paid`` that differs from it is recorded as
    what was paid, never written over the settlement.

    :returns: the settlement to record, or ``None`` when there is nothing to learn.
    """
    if state.settlement_currency is not None:
        return None
    settled = event.paid if event.status is PaymentStatus.PAID else None
    for stated in (event.amount, settled):
        if stated is not None and stated.currency != state.currency:
            return stated
    return None


def check_refundable(
    state: OrderState, request: RefundRequest, held: Decimal, provider: str
) -> None:
    """Refuse ``request`` unless the order in ``state`` can give back ``request.amount``.

    ``held`` is the total of the order's refunds that have not failed.

    :raises ValidationError: naming ``reference`` (the order is not paid, or fully
        refunded), ``amount.currency`` (not the price's currency) or ``amount`` (more than
        the price less ``held``).
    """
    if not state.status.is_refundable:
        raise ValidationError(
            "reference",
            f"order {state.reference!r} is {state.status.value}: only a paid order can be refunded",
            provider=provider,
        )
    if request.amount.currency != state.currency:
        raise ValidationError(
            "amount.currency",
            f"must be the order's price currency {state.currency}, not {request.amount.currency}",
            provider=provider,
        )
    remaining = state.amount - held
    if request.amount.amount > remaining:
        raise ValidationError(
            "amount",
            f"{request.amount} exceeds what remains to refund of {state.reference!r}: "
            f"{_plain(remaining)} {state.currency} of {_plain(state.amount)}",
            provider=provider,
        )


def assess_refund_notice(
    state: OrderState | None, event: PaymentEvent, stored: Refund | None
) -> EventFlag | None:
    """Decide whether a refund notice may settle ``stored``, the refund it names.

    ``stored`` is the refund the ledger found under the notice's refund reference (when the
    provider echoes it) or its provider refund id. It must be a refund of the order the
    notice names, under the same provider refund id if the ledger knows one, and the notice's
    amount must be the refund's, in its price currency or its settlement's (a notice in
    another currency can only be checked when the refund has no settlement).

    :returns: ``None`` if it may; otherwise the :class:`EventFlag` saying why it must be
        recorded without changing anything (``STALE`` for a refund that is final already).
    """
    notice = event.refund
    assert notice is not None
    if state is None:
        return EventFlag.UNKNOWN_ORDER
    if _names_another_order(state, event):
        return EventFlag.ORDER_MISMATCH
    if stored is None:
        return EventFlag.UNKNOWN_REFUND
    if stored.reference != state.reference:
        return EventFlag.ORDER_MISMATCH
    if stored.provider_refund_id not in {None, notice.provider_refund_id}:
        return EventFlag.UNKNOWN_REFUND  # the right reference, but another refund's id
    amount = notice.amount
    if amount is not None:
        settlement = stored.settlement
        if amount.currency == stored.amount.currency:
            expected: Money | None = stored.amount
        elif settlement is not None and amount.currency == settlement.currency:
            expected = settlement
        elif settlement is None:
            expected = None  # converted at a rate the ledger never learnt: nothing to check
        else:
            return EventFlag.CURRENCY_MISMATCH
        if expected is not None and amount.amount != expected.amount:
            return EventFlag.AMOUNT_MISMATCH
    if stored.status is not RefundStatus.PENDING:
        return EventFlag.STALE
    return None


def check_refunded(state: OrderState, heard: Refund, held: Decimal) -> EventFlag | None:
    """Whether a provider's answer refunding ``heard.amount`` of the order may be recorded.

    ``held`` is the total of the order's other refunds that have not failed. A provider may
    refund another amount than was asked (Binance's last attempt refunds all that remains),
    but never more than the price less ``held``: such an answer is ``AMOUNT_MISMATCH``.
    """
    if heard.amount.currency != state.currency:
        return EventFlag.CURRENCY_MISMATCH
    if heard.amount.amount > state.amount - held:
        return EventFlag.AMOUNT_MISMATCH
    return None


def _names_another_order(state: OrderState, event: PaymentEvent) -> bool:
    """Whether the event's provider order id, or its provider reference when it names one,
    differs from the order's (an order without a provider reference is known by its own)."""
    if event.provider_order_id != state.provider_order_id:
        return True
    known_as = state.reference if state.provider_reference is None else state.provider_reference
    return event.provider_reference is not None and event.provider_reference != known_as


def _plain(amount: Decimal) -> str:
    return format(amount, "f")  # never exponent form: "0.00000001", not "1E-8"
