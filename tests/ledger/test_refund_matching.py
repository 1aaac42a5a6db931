"""Refund notices matched to their refund whatever arrives first, settled once, announced
through the outbox; and the checks a notice or an answer must pass before it moves money.

Every test runs against SQLite and PostgreSQL (the ``ledger`` fixture).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import attrs
import pytest

from payments_core import Ledger, Money, PaymentEvent, PaymentStatus, RefundStatus
from payments_core.ledger import EventFlag
from payments_core.ledger.records import flagged_event_id

from .fakes import (
    NAME,
    event_for,
    order_for,
    provider_order_id,
    provider_reference,
    refund_notice_for,
)
from .refunds import answered, asked, notice, paid, state


def echoing(reference: str, refund_reference: str, amount: str = "0.4") -> PaymentEvent:
    """A notice that names its refund by the caller's refund reference, with an id the
    ledger has never heard of (Stripe's, say: assigned by the provider)."""
    return refund_notice_for(
        reference,
        f"re_{refund_reference}",
        RefundStatus.SUCCEEDED,
        Money(amount, "USDT"),
        refund_reference=refund_reference,
    )


def test_a_notice_echoing_the_refund_reference_settles_a_refund_not_answered_yet(
    ledger: Ledger,
) -> None:
    paid(ledger)
    reserved = ledger.reserve_refund(NAME, asked("0.40"))  # no provider id known yet
    first = ledger.apply_event(echoing("booking-1", "cancel-1"))
    assert (first.applied, first.flagged) == (True, None)
    assert first.refund is not None
    assert first.refund.status is RefundStatus.SUCCEEDED
    assert first.refund.provider_refund_id == "re_cancel-1"  # learnt from the notice
    # The answer arrives afterwards, pending or final: it neither undoes nor doubles it.
    for status in (RefundStatus.PENDING, RefundStatus.SUCCEEDED):
        late = ledger.settle_refund(answered(reserved.refund, status, "re_cancel-1"))
        assert late.change is None
        assert late.refund.status is RefundStatus.SUCCEEDED
    assert state(ledger) == (PaymentStatus.PARTIALLY_REFUNDED, Money("0.40", "USD"))


def test_a_notice_naming_an_id_known_before_sending_settles_a_refund_not_answered_yet(
    ledger: Ledger,
) -> None:
    paid(ledger)
    ledger.reserve_refund(NAME, asked("0.40"), provider_refund_id="rf-booking-1-cancel-1")
    applied = ledger.apply_event(
        notice("booking-1", "rf-booking-1-cancel-1", RefundStatus.SUCCEEDED, "0.4")
    )
    assert (applied.applied, applied.flagged) == (True, None)
    assert state(ledger) == (PaymentStatus.PARTIALLY_REFUNDED, Money("0.40", "USD"))


def test_only_a_refund_never_asked_for_is_an_unknown_refund(ledger: Ledger) -> None:
    paid(ledger)
    ledger.reserve_refund(NAME, asked("0.40"), provider_refund_id="rf-booking-1-cancel-1")
    never = ledger.apply_event(echoing("booking-1", "never-asked"))
    assert never.flagged is EventFlag.UNKNOWN_REFUND
    # The right refund reference with another id than the one the ledger holds for it.
    other = ledger.apply_event(echoing("booking-1", "cancel-1"))
    assert other.flagged is EventFlag.UNKNOWN_REFUND
    # The right refund reference with an id another refund already holds.
    ledger.reserve_refund(NAME, asked("0.10", "cancel-2"), provider_refund_id="re_cancel-3")
    ledger.reserve_refund(NAME, asked("0.10", "cancel-3"))
    taken = ledger.apply_event(echoing("booking-1", "cancel-3", "0.1"))
    assert taken.flagged is EventFlag.UNKNOWN_REFUND
    assert state(ledger) == (PaymentStatus.PAID, None)


def test_a_refund_change_waits_in_the_outbox_until_announced(ledger: Ledger) -> None:
    paid(ledger, "booking-1")
    paid(ledger, "booking-2")
    ledger.mark_announced(NAME, event_for("booking-1").event_id)
    ledger.mark_announced(NAME, event_for("booking-2").event_id)
    one = ledger.reserve_refund(NAME, asked("0.40"))
    by_answer = ledger.settle_refund(answered(one.refund))
    ledger.reserve_refund(NAME, asked("1.00", reference="booking-2"))
    by_notice = ledger.apply_event(echoing("booking-2", "cancel-1", "1.0"))
    assert by_answer.change is not None
    assert by_notice.change is not None
    waiting = ledger.unannounced_changes()
    assert [(c.reference, c.old_status, c.new_status, c.event_id) for c in waiting] == [
        (
            "booking-1",
            PaymentStatus.PAID,
            PaymentStatus.PARTIALLY_REFUNDED,
            by_answer.change.event_id,
        ),
        ("booking-2", PaymentStatus.PAID, PaymentStatus.REFUNDED, by_notice.change.event_id),
    ]
    for change in waiting:
        ledger.mark_announced(change.provider, change.event_id)
    assert ledger.unannounced_changes() == []
    # Settled with no application listening, a change is recorded as announced at once.
    paid(ledger, "booking-3")
    ledger.mark_announced(NAME, event_for("booking-3").event_id)
    three = ledger.reserve_refund(NAME, asked("0.40", reference="booking-3"))
    assert ledger.settle_refund(answered(three.refund), announced=True).change is not None
    assert ledger.unannounced_changes() == []


def test_a_flagged_event_does_not_take_the_genuine_events_key(ledger: Ledger) -> None:
    ledger.record_order(order_for("booking-1"))
    genuine = event_for("booking-1")
    forged = attrs.evolve(genuine, amount=Money("0.01", "USD"))  # same id, another amount
    first = ledger.apply_event(forged)
    assert first.flagged is EventFlag.AMOUNT_MISMATCH
    assert ledger.apply_event(forged).duplicate  # the flagged one, again: recorded once
    second = ledger.apply_event(genuine)
    assert (second.applied, second.duplicate) == (True, False)
    assert state(ledger)[0] is PaymentStatus.PAID
    ids = [e.event_id for e in ledger.events_for(NAME, "booking-1")]
    assert ids == [flagged_event_id(forged, EventFlag.AMOUNT_MISMATCH), genuine.event_id]


def test_an_answer_refunding_more_than_remains_is_not_trusted(ledger: Ledger) -> None:
    paid(ledger)
    one = ledger.reserve_refund(NAME, asked("0.40"))
    ledger.reserve_refund(NAME, asked("0.50", "cancel-2"))  # pending: holds 0.50 back
    too_much = attrs.evolve(answered(one.refund), amount=Money("0.51", "USD"))
    outcome = ledger.settle_refund(too_much)
    assert outcome.flagged is EventFlag.AMOUNT_MISMATCH
    assert outcome.change is None
    kept = ledger.get_refund(NAME, "booking-1", "cancel-1")
    assert kept is not None
    assert (kept.status, kept.amount) == (RefundStatus.PENDING, Money("0.40", "USD"))
    assert state(ledger) == (PaymentStatus.PAID, None)
    # Exactly what remains is taken at its word (Binance's last attempt).
    exact = ledger.settle_refund(attrs.evolve(too_much, amount=Money("0.50", "USD")))
    assert exact.flagged is None
    assert state(ledger) == (PaymentStatus.PARTIALLY_REFUNDED, Money("0.50", "USD"))


def test_pending_refunds_are_listed_oldest_first_until_settled(ledger: Ledger) -> None:
    paid(ledger)
    one = ledger.reserve_refund(NAME, asked("0.40"))
    ledger.reserve_refund(NAME, asked("0.10", "cancel-2"))
    assert [r.refund_reference for r in ledger.pending_refunds(timedelta(0))] == [
        "cancel-1",
        "cancel-2",
    ]
    assert ledger.pending_refunds(timedelta(hours=1)) == []
    ledger.settle_refund(answered(one.refund))
    assert [r.refund_reference for r in ledger.pending_refunds(timedelta(0))] == ["cancel-2"]


# -- what a refund notice must match (issue 26, gaps 1 to 4) ---------------------------------


@pytest.fixture
def pending_with_settlement(ledger: Ledger) -> Ledger:
    """booking-1 paid, and its refund cancel-1 of 0.40 USD answered pending, 0.40 USDT."""
    paid(ledger)
    one = ledger.reserve_refund(NAME, asked("0.40"))
    ledger.settle_refund(answered(one.refund, RefundStatus.PENDING))
    return ledger


def in_currency(amount: str, currency: str) -> PaymentEvent:
    event = notice("booking-1", "rf-booking-1-cancel-1", RefundStatus.SUCCEEDED, amount)
    assert event.refund is not None
    money = Money(amount, currency)
    return attrs.evolve(event, amount=money, refund=attrs.evolve(event.refund, amount=money))


def test_a_notice_in_neither_the_refunds_currency_nor_its_settlements_is_refused(
    pending_with_settlement: Ledger,
) -> None:
    result = pending_with_settlement.apply_event(in_currency("0.40", "EUR"))
    assert result.flagged is EventFlag.CURRENCY_MISMATCH
    assert state(pending_with_settlement) == (PaymentStatus.PAID, None)


@pytest.mark.parametrize(("amount", "flag"), [("0.40", None), ("0.41", EventFlag.AMOUNT_MISMATCH)])
def test_a_notice_in_the_refunds_own_currency_is_checked_against_its_amount(
    pending_with_settlement: Ledger, amount: str, flag: EventFlag | None
) -> None:
    result = pending_with_settlement.apply_event(in_currency(amount, "USD"))
    assert result.flagged is flag
    assert result.applied is (flag is None)


@pytest.mark.parametrize(
    ("notice_amount", "flag"),
    [
        (Money("0.39", "USDT"), None),  # converted at a rate never learnt: nothing to check
        (Money("0.40", "USD"), None),
        (Money("0.41", "USD"), EventFlag.AMOUNT_MISMATCH),
    ],
)
def test_a_notice_for_a_refund_without_settlement_is_checked_only_in_its_own_currency(
    ledger: Ledger, notice_amount: Money, flag: EventFlag | None
) -> None:
    paid(ledger)
    one = ledger.reserve_refund(NAME, asked("0.40"))
    ledger.settle_refund(attrs.evolve(answered(one.refund, RefundStatus.PENDING), settlement=None))
    result = ledger.apply_event(in_currency(str(notice_amount.amount), notice_amount.currency))
    assert result.flagged is flag
    refunded = Money("0.40", "USD") if flag is None else None
    assert state(ledger)[1] == refunded


def test_a_notice_quoting_one_orders_ids_cannot_settle_anothers_refund(ledger: Ledger) -> None:
    paid(ledger, "booking-a")
    paid(ledger, "booking-b")
    b = ledger.reserve_refund(NAME, asked("0.40", reference="booking-b"))
    ledger.settle_refund(answered(b.refund, RefundStatus.PENDING))
    # Order A's ids, order B's refund id.
    crossed = notice("booking-a", "rf-booking-b-cancel-1", RefundStatus.SUCCEEDED, "0.4")
    assert ledger.apply_event(crossed).flagged is EventFlag.ORDER_MISMATCH
    # Order A's ids, order B's refund reference: no refund of A has it.
    echoed = echoing("booking-a", "cancel-1")
    assert ledger.apply_event(echoed).flagged is EventFlag.UNKNOWN_REFUND
    assert state(ledger, "booking-a") == (PaymentStatus.PAID, None)
    assert state(ledger, "booking-b") == (PaymentStatus.PAID, None)


def test_a_notice_for_an_unknown_order_or_with_mismatched_ids_changes_nothing(
    pending_with_settlement: Ledger,
) -> None:
    ledger = pending_with_settlement
    good = notice("booking-1", "rf-booking-1-cancel-1", RefundStatus.SUCCEEDED, "0.4")
    unknown = attrs.evolve(
        good,
        provider_order_id=provider_order_id("nobody"),
        provider_reference=provider_reference("nobody"),
    )
    assert ledger.apply_event(unknown).flagged is EventFlag.UNKNOWN_ORDER
    other_reference = attrs.evolve(good, provider_reference=provider_reference("nobody"))
    assert ledger.apply_event(other_reference).flagged is EventFlag.ORDER_MISMATCH
    other_provider = attrs.evolve(good, provider_order_id=provider_order_id("nobody"))
    assert ledger.apply_event(other_provider).flagged is EventFlag.ORDER_MISMATCH
    assert state(ledger) == (PaymentStatus.PAID, None)
    assert ledger.apply_event(good).applied  # none of them took the genuine notice's key


def test_what_was_moved_back_is_kept_whichever_of_notice_and_answer_says_it(
    ledger: Ledger,
) -> None:
    paid(ledger, "booking-1")
    paid(ledger, "booking-2")
    # A notice in the settlement's currency says it (booking-1).
    ledger.reserve_refund(NAME, asked("0.40"))
    by_notice = ledger.apply_event(echoing("booking-1", "cancel-1"))
    assert by_notice.refund is not None
    assert by_notice.refund.settlement == Money("0.4", "USDT")
    # A notice in the price's currency does not; the answer coming after it does (booking-2).
    two = ledger.reserve_refund(NAME, asked("0.40", "cancel-2", reference="booking-2"))
    in_usd = echoing("booking-2", "cancel-2")
    assert in_usd.refund is not None
    usd = Money("0.40", "USD")
    applied = ledger.apply_event(
        attrs.evolve(in_usd, amount=usd, refund=attrs.evolve(in_usd.refund, amount=usd))
    )
    assert applied.refund is not None
    assert applied.refund.settlement is None
    late = ledger.settle_refund(answered(two.refund, provider_refund_id="re_cancel-2"))
    assert (late.change, late.refund.settlement) == (None, Money("0.40", "USDT"))
    kept = ledger.get_refund(NAME, "booking-2", "cancel-2")
    assert kept is not None
    assert (kept.status, kept.settlement) == (RefundStatus.SUCCEEDED, Money("0.40", "USDT"))
    assert state(ledger, "booking-2") == (PaymentStatus.PARTIALLY_REFUNDED, usd)


# -- what applying a notice answers, and what it leaves to announce --------------------------


def test_a_notice_answers_for_its_order_and_its_redelivery_is_a_duplicate_of_it(
    ledger: Ledger,
) -> None:
    paid(ledger)
    ledger.reserve_refund(NAME, asked("0.40"), provider_refund_id="rf-booking-1-cancel-1")
    settles = notice("booking-1", "rf-booking-1-cancel-1", RefundStatus.SUCCEEDED, "0.4")
    first = ledger.apply_event(settles)
    assert (first.applied, first.duplicate, first.reference) == (True, False, "booking-1")
    again = ledger.apply_event(settles)
    assert (again.applied, again.duplicate, again.reference) == (False, True, "booking-1")
    assert (again.change, again.refund) == (None, None)


def test_a_flagged_notice_answers_with_no_change_and_no_refund(
    pending_with_settlement: Ledger,
) -> None:
    ledger = pending_with_settlement
    wrong = ledger.apply_event(
        notice("booking-1", "rf-booking-1-cancel-1", RefundStatus.SUCCEEDED, "0.5")
    )
    assert (wrong.applied, wrong.duplicate) == (False, False)
    assert (wrong.flagged, wrong.reference) == (EventFlag.AMOUNT_MISMATCH, "booking-1")
    assert (wrong.change, wrong.refund) == (None, None)
    nobody = attrs.evolve(
        notice("booking-1", "rf-booking-1-cancel-1", RefundStatus.SUCCEEDED, "0.4"),
        provider_order_id=provider_order_id("nobody"),
        provider_reference=provider_reference("nobody"),
    )
    unknown = ledger.apply_event(nobody)
    assert (unknown.flagged, unknown.reference) == (EventFlag.UNKNOWN_ORDER, None)
    assert (unknown.change, unknown.refund) == (None, None)


def test_a_notice_that_moves_no_order_leaves_nothing_to_announce(ledger: Ledger) -> None:
    paid(ledger)
    ledger.mark_announced(NAME, event_for("booking-1").event_id)
    ledger.reserve_refund(NAME, asked("0.40"), provider_refund_id="rf-booking-1-cancel-1")
    failed = ledger.apply_event(
        notice("booking-1", "rf-booking-1-cancel-1", RefundStatus.FAILED, "0.4")
    )
    assert (failed.applied, failed.change) == (True, None)
    assert failed.refund is not None
    assert failed.refund.status is RefundStatus.FAILED
    assert ledger.unannounced_changes() == []
    assert state(ledger) == (PaymentStatus.PAID, None)


def test_an_answer_after_the_notice_keeps_what_the_notice_said_was_moved_back(
    ledger: Ledger,
) -> None:
    paid(ledger)
    reserved = ledger.reserve_refund(NAME, asked("0.40"))
    by_notice = ledger.apply_event(echoing("booking-1", "cancel-1"))
    assert by_notice.refund is not None
    assert by_notice.refund.settlement == Money("0.4", "USDT")
    # The answer comes after the refund is settled and states another settlement: the first
    # word on what was moved back stands.
    answer = attrs.evolve(
        answered(reserved.refund, provider_refund_id="re_cancel-1"),
        settlement=Money("0.39", "USDT"),
    )
    late = ledger.settle_refund(answer)
    assert (late.change, late.refund.settlement) == (None, Money("0.4", "USDT"))
    kept = ledger.get_refund(NAME, "booking-1", "cancel-1")
    assert kept is not None
    assert kept.settlement == Money("0.4", "USDT")


def test_a_notice_applied_with_no_application_listening_is_announced_at_once(
    ledger: Ledger,
) -> None:
    paid(ledger)
    ledger.mark_announced(NAME, event_for("booking-1").event_id)
    ledger.reserve_refund(NAME, asked("0.40"), provider_refund_id="rf-booking-1-cancel-1")
    settles = notice("booking-1", "rf-booking-1-cancel-1", RefundStatus.SUCCEEDED, "0.4")
    applied = ledger.apply_event(settles, announced=True)
    assert applied.change is not None
    assert ledger.unannounced_changes() == []


def in_the_refunds_currency(reference: str, refund_id: str, amount: str) -> PaymentEvent:
    """A notice that settles ``refund_id`` in the currency the refund was asked in (USD)."""
    event = notice(reference, refund_id, RefundStatus.SUCCEEDED, amount)
    assert event.refund is not None
    usd = Money(amount, "USD")
    return attrs.evolve(event, amount=usd, refund=attrs.evolve(event.refund, amount=usd))


@pytest.mark.parametrize("announced", [True, False])
def test_a_notice_settled_in_the_refunds_currency_is_announced_once(
    ledger: Ledger, announced: bool
) -> None:
    """However the store settles it (PostgreSQL in one statement), a notice applied as
    announced is not announced again, and one applied unannounced waits in the outbox."""
    paid(ledger)
    ledger.mark_announced(NAME, event_for("booking-1").event_id)
    ledger.reserve_refund(NAME, asked("0.40"), provider_refund_id="rf-booking-1-cancel-1")
    settles = in_the_refunds_currency("booking-1", "rf-booking-1-cancel-1", "0.40")
    applied = ledger.apply_event(settles, announced=announced)
    assert applied.change is not None
    assert state(ledger) == (PaymentStatus.PARTIALLY_REFUNDED, Money("0.40", "USD"))
    waiting = [change.new_status for change in ledger.unannounced_changes()]
    assert waiting == ([] if announced else [PaymentStatus.PARTIALLY_REFUNDED])


def test_a_crash_point_before_commit_sees_every_refund_notice(
    open_test_ledger: Callable[..., Ledger],
) -> None:
    """A ``before_commit`` hook (the crash tests' injection point) is reached for a notice that
    PostgreSQL could settle in one statement too: the statement is not used under it."""
    reached: list[str] = []
    ledger = open_test_ledger(before_commit=lambda: reached.append("commit"))
    paid(ledger)
    ledger.reserve_refund(NAME, asked("0.40"), provider_refund_id="rf-booking-1-cancel-1")
    reached.clear()
    ledger.apply_event(in_the_refunds_currency("booking-1", "rf-booking-1-cancel-1", "0.40"))
    assert reached == ["commit"]
    assert state(ledger) == (PaymentStatus.PARTIALLY_REFUNDED, Money("0.40", "USD"))
