"""The ledger's refunds: reservations checked under the order's lock, settled exactly once.

Every test runs against SQLite and PostgreSQL (the ``ledger`` fixture).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import attrs
import pytest

from payments_core import (
    Ledger,
    LedgerError,
    Money,
    PaymentStatus,
    Refund,
    RefundRequest,
    RefundStatus,
    StatusChange,
    ValidationError,
)
from payments_core.ledger import EventFlag, open_ledger
from payments_core.ledger.records import answer_event_id

from .fakes import (
    NAME,
    event_for,
    order_for,
    provider_order_id,
    provider_reference,
    write_old_sqlite_ledger,
)
from .refunds import answered, asked, notice, paid, state


def test_a_partial_then_the_rest_moves_paid_to_partially_refunded_to_refunded(
    ledger: Ledger,
) -> None:
    paid(ledger)
    first = ledger.reserve_refund(NAME, asked("0.40"))
    assert first.created
    assert first.refund.status is RefundStatus.PENDING
    assert state(ledger) == (PaymentStatus.PAID, None)  # a reservation moves no money
    settled = ledger.settle_refund(answered(first.refund))
    assert settled.change is not None
    assert (settled.change.old_status, settled.change.new_status) == (
        PaymentStatus.PAID,
        PaymentStatus.PARTIALLY_REFUNDED,
    )
    assert state(ledger) == (PaymentStatus.PARTIALLY_REFUNDED, Money("0.40", "USD"))
    rest = ledger.reserve_refund(NAME, asked("0.60", "cancel-2"))
    last = ledger.settle_refund(answered(rest.refund))
    assert last.change is not None
    assert last.change.new_status is PaymentStatus.REFUNDED
    assert state(ledger) == (PaymentStatus.REFUNDED, Money("1.00", "USD"))
    assert [r.refund_reference for r in ledger.refunds_for(NAME, "booking-1")] == [
        "cancel-1",
        "cancel-2",
    ]


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (asked("1.01"), "amount"),
        (
            RefundRequest(reference="booking-1", refund_reference="r", amount=Money("1", "EUR")),
            "amount.currency",
        ),
        (asked("0.10", reference="booking-unknown"), "reference"),
    ],
    ids=["more-than-paid", "other-currency", "unknown-order"],
)
def test_a_bad_refund_is_refused_naming_its_field_and_changes_nothing(
    ledger: Ledger, request_: RefundRequest, field: str
) -> None:
    paid(ledger)
    with pytest.raises(ValidationError) as refused:
        ledger.reserve_refund(NAME, request_)
    assert refused.value.field == field
    assert ledger.refunds_for(NAME, "booking-1") == []
    assert state(ledger) == (PaymentStatus.PAID, None)


def test_an_unpaid_order_cannot_be_refunded(ledger: Ledger) -> None:
    ledger.record_order(order_for("booking-1"))
    with pytest.raises(ValidationError) as refused:
        ledger.reserve_refund(NAME, asked("0.10"))
    assert refused.value.field == "reference"
    assert "pending" in refused.value.reason
    assert ledger.refunds_for(NAME, "booking-1") == []


def test_pending_refunds_hold_back_their_amount(ledger: Ledger) -> None:
    paid(ledger)
    ledger.reserve_refund(NAME, asked("0.70"))
    with pytest.raises(ValidationError) as refused:
        ledger.reserve_refund(NAME, asked("0.31", "cancel-2"))
    assert refused.value.field == "amount"
    assert "0.30 USD of 1.00" in refused.value.reason


def test_a_failed_refund_gives_its_amount_back(ledger: Ledger) -> None:
    paid(ledger)
    first = ledger.reserve_refund(NAME, asked("1.00"))
    outcome = ledger.settle_refund(answered(first.refund, RefundStatus.FAILED))
    assert outcome.change is None
    assert outcome.refund.status is RefundStatus.FAILED
    assert state(ledger) == (PaymentStatus.PAID, None)
    assert ledger.reserve_refund(NAME, asked("1.00", "cancel-2")).created


def test_the_same_refund_reference_returns_the_recorded_refund(ledger: Ledger) -> None:
    paid(ledger)
    first = ledger.reserve_refund(NAME, asked("0.40"))
    ledger.settle_refund(answered(first.refund))
    again = ledger.reserve_refund(NAME, asked("0.40"))
    assert not again.created
    assert again.refund.status is RefundStatus.SUCCEEDED
    assert again.refund.provider_refund_id == "rf-booking-1-cancel-1"
    with pytest.raises(ValidationError) as refused:
        ledger.reserve_refund(NAME, asked("0.50"))
    assert refused.value.field == "refund_reference"
    assert len(ledger.refunds_for(NAME, "booking-1")) == 1


def test_a_refund_is_counted_once_whether_its_answer_or_its_notice_comes_first(
    ledger: Ledger,
) -> None:
    paid(ledger, "booking-1")
    paid(ledger, "booking-2")
    # booking-1: the answer (pending) first, then the notice, then a repeat of the notice.
    one = ledger.reserve_refund(NAME, asked("0.40"))
    ledger.settle_refund(answered(one.refund, RefundStatus.PENDING))
    applied = ledger.apply_event(
        notice("booking-1", "rf-booking-1-cancel-1", RefundStatus.SUCCEEDED, "0.4")
    )
    assert applied.applied
    assert applied.change is not None
    assert applied.refund is not None
    assert applied.refund.status is RefundStatus.SUCCEEDED
    again = ledger.apply_event(
        notice("booking-1", "rf-booking-1-cancel-1", RefundStatus.SUCCEEDED, "0.4")
    )
    assert again.duplicate
    assert ledger.settle_refund(answered(one.refund)).change is None
    # booking-2: the final answer first; the notice after it changes nothing.
    two = ledger.reserve_refund(NAME, asked("0.40", reference="booking-2"))
    assert ledger.settle_refund(answered(two.refund)).change is not None
    late = ledger.apply_event(
        notice("booking-2", "rf-booking-2-cancel-1", RefundStatus.SUCCEEDED, "0.4")
    )
    assert late.flagged is EventFlag.STALE
    assert state(ledger, "booking-1") == state(ledger, "booking-2")
    assert state(ledger, "booking-1") == (PaymentStatus.PARTIALLY_REFUNDED, Money("0.40", "USD"))


def test_a_notice_for_another_amount_or_an_unknown_refund_is_flagged(ledger: Ledger) -> None:
    paid(ledger)
    one = ledger.reserve_refund(NAME, asked("0.40"))
    ledger.settle_refund(answered(one.refund, RefundStatus.PENDING))
    wrong = ledger.apply_event(
        notice("booking-1", "rf-booking-1-cancel-1", RefundStatus.SUCCEEDED, "0.5")
    )
    assert wrong.flagged is EventFlag.AMOUNT_MISMATCH
    unknown = ledger.apply_event(notice("booking-1", "rf-other", RefundStatus.SUCCEEDED, "0.4"))
    assert unknown.flagged is EventFlag.UNKNOWN_REFUND
    assert state(ledger) == (PaymentStatus.PAID, None)


def test_a_late_payment_notice_never_undoes_a_refund(ledger: Ledger) -> None:
    paid(ledger)
    one = ledger.reserve_refund(NAME, asked("1.00"))
    ledger.settle_refund(answered(one.refund))
    late = ledger.apply_event(event_for("booking-1", event_id="redelivered-paid"))
    assert late.flagged is EventFlag.STALE
    assert state(ledger) == (PaymentStatus.REFUNDED, Money("1.00", "USD"))


def test_settling_an_unreserved_refund_is_a_ledger_error(ledger: Ledger) -> None:
    paid(ledger)
    stray = Refund(
        provider=NAME,
        reference="booking-1",
        refund_reference="never-reserved",
        provider_refund_id="rf-x",
        provider_order_id=provider_order_id("booking-1"),
        amount=Money("0.10", "USD"),
        status=RefundStatus.SUCCEEDED,
    )
    reason = f"no refund 'never-reserved' of 'booking-1' is reserved at {NAME}"
    with pytest.raises(LedgerError, match=f"^{reason}$") as raised:
        ledger.settle_refund(stray)
    assert raised.value.provider == NAME
    assert state(ledger) == (PaymentStatus.PAID, None)


def test_release_forgets_only_a_pending_refund(ledger: Ledger) -> None:
    paid(ledger)
    pending = ledger.reserve_refund(NAME, asked("0.40"))
    assert ledger.release_refund(NAME, "booking-1", "cancel-1")
    assert ledger.get_refund(NAME, "booking-1", "cancel-1") is None
    assert ledger.reserve_refund(NAME, asked("1.00")).created  # its amount is free again
    ledger.settle_refund(answered(pending.refund))
    assert not ledger.release_refund(NAME, "booking-1", "cancel-1")
    assert ledger.get_refund(NAME, "booking-1", "cancel-1") is not None


def test_concurrent_refunds_of_one_order_never_exceed_its_price(
    open_test_ledger: Callable[..., Ledger],
) -> None:
    ledgers = [open_test_ledger() for _ in range(4)]
    paid(ledgers[0])

    def reserve(i: int) -> bool:
        try:
            ledgers[i % 4].reserve_refund(NAME, asked("0.30", f"cancel-{i}"))
        except ValidationError:
            return False
        return True

    with ThreadPoolExecutor(8) as pool:
        made = sum(pool.map(reserve, range(16)))
    assert made == 3
    held = sum(r.amount.amount for r in ledgers[0].refunds_for(NAME, "booking-1"))
    assert held == Decimal("0.90")


def test_a_version_two_ledger_is_upgraded_with_its_orders_kept(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    write_old_sqlite_ledger(path, 2, PaymentStatus.PAID)
    with open_ledger(f"sqlite:///{path}") as upgraded:
        order = upgraded.get_order("fake", "old")
        assert order is not None
        assert (order.status, order.refunded) == (PaymentStatus.PAID, None)
        assert upgraded.reserve_refund("fake", asked("1.00", reference="old")).created


def test_a_refund_settled_for_another_amount_counts_what_the_provider_refunded(
    ledger: Ledger,
) -> None:
    # Binance's last refund attempt refunds all that remains, whatever was asked.
    paid(ledger)
    reserved = ledger.reserve_refund(NAME, asked("0.10"))
    pending = attrs.evolve(answered(reserved.refund), status=RefundStatus.PENDING)
    widened = attrs.evolve(pending, amount=Money("0.70", "USD"))
    assert ledger.settle_refund(widened).refund.amount == Money("0.70", "USD")
    assert state(ledger) == (PaymentStatus.PAID, None)  # pending: no money counted yet
    done = ledger.settle_refund(attrs.evolve(widened, status=RefundStatus.SUCCEEDED))
    assert done.refund.amount == Money("0.70", "USD")
    assert state(ledger) == (PaymentStatus.PARTIALLY_REFUNDED, Money("0.70", "USD"))
    (stored,) = ledger.refunds_for(NAME, "booking-1")
    assert stored.amount == Money("0.70", "USD")
    with pytest.raises(ValidationError) as refused:  # what remains is 0.30
        ledger.reserve_refund(NAME, asked("0.31", "cancel-2"))
    assert refused.value.field == "amount"


# -- what the ledger answers and records for a refund ------------------------------------------


def test_a_refused_reservation_names_the_provider_and_says_why(ledger: Ledger) -> None:
    paid(ledger)
    with pytest.raises(ValidationError) as unknown:
        ledger.reserve_refund(NAME, asked("0.10", reference="nowhere"))
    assert (unknown.value.field, unknown.value.provider) == ("reference", NAME)
    assert unknown.value.reason == f"no order is recorded for 'nowhere' at {NAME}"
    ledger.reserve_refund(NAME, asked("0.40"))
    with pytest.raises(ValidationError) as other_amount:
        ledger.reserve_refund(NAME, asked("0.50"))
    assert (other_amount.value.field, other_amount.value.provider) == ("refund_reference", NAME)
    assert other_amount.value.reason == (
        "'cancel-1' already names a refund of 0.40 USD of 'booking-1', not 0.50 USD"
    )
    with pytest.raises(ValidationError) as too_much:
        ledger.reserve_refund(NAME, asked("0.61", "cancel-2"))
    assert (too_much.value.field, too_much.value.provider) == ("amount", NAME)


def test_a_reserved_refund_keeps_its_reason(ledger: Ledger) -> None:
    paid(ledger)
    request = attrs.evolve(asked("0.40"), reason="customer cancelled")
    assert ledger.reserve_refund(NAME, request).refund.reason == "customer cancelled"
    stored = ledger.get_refund(NAME, "booking-1", "cancel-1")
    assert stored is not None
    assert stored.reason == "customer cancelled"


def test_an_answer_not_trusted_still_returns_the_refund_as_reserved(ledger: Ledger) -> None:
    paid(ledger)
    one = ledger.reserve_refund(NAME, asked("0.40"))
    too_much = attrs.evolve(answered(one.refund), amount=Money("1.01", "USD"))
    outcome = ledger.settle_refund(too_much)
    assert outcome.flagged is EventFlag.AMOUNT_MISMATCH
    assert outcome.refund == one.refund


def test_a_settled_refund_says_which_order_moved_when_and_records_the_move(
    open_test_ledger: Callable[..., Ledger],
) -> None:
    now = datetime(2026, 12, 6, 9, 30, tzinfo=UTC)
    ledger = open_test_ledger(clock=lambda: now)
    paid(ledger)
    one = ledger.reserve_refund(NAME, asked("0.40"))
    answer = answered(one.refund)
    outcome = ledger.settle_refund(answer)
    assert outcome.change == StatusChange(
        provider=NAME,
        reference="booking-1",
        old_status=PaymentStatus.PAID,
        new_status=PaymentStatus.PARTIALLY_REFUNDED,
        event_id=answer_event_id(answer),
        changed_at=now,
    )
    moved = ledger.events_for(NAME, "booking-1")[-1]
    assert (moved.event_id, moved.status) == (
        answer_event_id(answer),
        PaymentStatus.PARTIALLY_REFUNDED,
    )
    assert (moved.provider_order_id, moved.provider_reference) == (
        provider_order_id("booking-1"),
        provider_reference("booking-1"),
    )
    assert moved.amount == Money("0.40", "USD")


def test_a_refund_settled_after_the_order_was_reported_refunded_never_moves_it_back(
    ledger: Ledger,
) -> None:
    paid(ledger)
    one = ledger.reserve_refund(NAME, asked("0.40"))
    refunded = event_for("booking-1", PaymentStatus.REFUNDED)
    assert ledger.apply_event(refunded).applied  # the provider says all of it went back
    outcome = ledger.settle_refund(answered(one.refund))
    assert (outcome.change, outcome.refund.status) == (None, RefundStatus.SUCCEEDED)
    assert state(ledger) == (PaymentStatus.REFUNDED, Money("0.40", "USD"))
