"""An order created without a settlement learns it from the payment, and keeps one it has."""

from __future__ import annotations

from decimal import Decimal

import attrs

from payments_binance.refunds import order_currency_amount
from payments_core import EventFlag, Ledger, Money, Order, PaymentStatus
from payments_core.rules import OrderState, learnt_settlement

from .fakes import event_for, order_for, provider_order_id


def _order(ledger: Ledger) -> Order:
    order = ledger.get_order("fake", "booking-1")
    assert order is not None
    return order


def settled_and_paid(ledger: Ledger) -> tuple[Money | None, Money | None]:
    """What the ledger holds for booking-1: its settlement (learnt or stated) and what was paid."""
    order = _order(ledger)
    return order.settlement, order.paid


def test_an_order_without_a_settlement_learns_it_from_what_was_paid(ledger: Ledger) -> None:
    ledger.record_order(order_for("booking-1"))  # 1.00 USD; the payer picks the coin
    paid = attrs.evolve(event_for("booking-1"), paid=Money("0.00001000", "BTC"))
    assert ledger.apply_event(paid).applied
    assert settled_and_paid(ledger) == (Money("0.00001", "BTC"), Money("0.00001", "BTC"))
    # From now on an amount in the learnt coin is checked against it.
    refund = attrs.evolve(
        event_for("booking-1", PaymentStatus.REFUNDED, amount=Money("0.00002", "BTC"))
    )
    assert ledger.apply_event(refund).flagged is EventFlag.AMOUNT_MISMATCH


def test_the_stated_amount_is_the_settlement_and_an_underpayment_stays_what_was_paid(
    ledger: Ledger,
) -> None:
    ledger.record_order(order_for("booking-1"))
    underpaid = attrs.evolve(
        event_for("booking-1", amount=Money("0.9987", "USDT")), paid=Money("0.9900", "USDT")
    )
    assert ledger.apply_event(underpaid).applied
    assert settled_and_paid(ledger) == (Money("0.9987", "USDT"), Money("0.99", "USDT"))


def test_an_order_keeps_the_settlement_it_was_created_with(ledger: Ledger) -> None:
    stated = Money("0.99870000", "USDT")
    ledger.record_order(attrs.evolve(order_for("booking-1"), settlement=stated))
    overpaid = attrs.evolve(event_for("booking-1", amount=stated), paid=Money("1.00000000", "USDT"))
    result = ledger.apply_event(overpaid)
    assert (result.applied, result.flagged) == (True, None)  # paid is recorded, not judged
    assert settled_and_paid(ledger) == (stated, Money("1", "USDT"))


def test_a_payment_in_the_price_currency_or_a_flagged_event_teaches_nothing(
    ledger: Ledger,
) -> None:
    ledger.record_order(order_for("booking-1"))
    flagged = attrs.evolve(
        event_for("booking-1", amount=Money("2.00", "USD")), paid=Money("1", "BTC"), event_id="x"
    )
    assert ledger.apply_event(flagged).flagged is EventFlag.AMOUNT_MISMATCH
    assert _order(ledger).settlement is None
    in_price = attrs.evolve(event_for("booking-1"), paid=Money("1.00", "USD"))
    assert ledger.apply_event(in_price).applied
    assert settled_and_paid(ledger) == (None, Money("1.00", "USD"))


def test_a_refund_of_an_order_whose_settlement_was_learnt_is_a_share_of_it(
    ledger: Ledger,
) -> None:
    ledger.record_order(order_for("booking-1"))
    ledger.apply_event(event_for("booking-1", amount=Money("0.99870000", "USDT")))
    order = _order(ledger)
    # Binance Pay refunds in the settlement's coin: the share is computed from the learnt one,
    # with no query to find it.
    assert order_currency_amount(order, Money("0.50", "USD")) == Money("0.49935", "USDT")
    assert order_currency_amount(order, Money("1.00", "USD")) == Money("0.9987", "USDT")


def test_learnt_settlement_prefers_the_stated_amount_then_what_was_paid() -> None:
    state = OrderState(
        "booking-1",
        provider_order_id("booking-1"),
        None,
        PaymentStatus.PENDING,
        Decimal("1.00"),
        "USD",
    )
    both = attrs.evolve(
        event_for("booking-1", amount=Money("0.9987", "USDT")), paid=Money("0.99", "USDT")
    )
    assert learnt_settlement(state, both) == Money("0.9987", "USDT")
    only_paid = attrs.evolve(event_for("booking-1", amount=None), paid=Money("0.99", "USDT"))
    assert learnt_settlement(state, only_paid) == Money("0.99", "USDT")
    assert learnt_settlement(state, event_for("booking-1")) is None
    known = state._replace(settlement_amount=Decimal("0.9987"), settlement_currency="USDT")
    assert learnt_settlement(known, both) is None


def test_what_arrived_for_a_payment_under_review_is_no_settlement(ledger: Ledger) -> None:
    ledger.record_order(order_for("booking-1"))
    review = attrs.evolve(
        event_for("booking-1", PaymentStatus.NEEDS_REVIEW, amount=None),
        paid=Money("0.00001", "BTC"),  # an underpayment, waiting for the merchant
    )
    assert ledger.apply_event(review).applied
    assert settled_and_paid(ledger) == (None, Money("0.00001", "BTC"))
    accepted = attrs.evolve(event_for("booking-1", amount=Money("0.00002", "BTC")), paid=None)
    assert ledger.apply_event(accepted).applied
    assert _order(ledger).settlement == Money("0.00002", "BTC")
