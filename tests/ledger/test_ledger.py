"""The ledger itself, against both stores: orders recorded once, events applied once."""

from __future__ import annotations

import re
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

import attrs
import pytest

from payments_core import (
    ConfigurationError,
    EventFlag,
    Ledger,
    LedgerError,
    Money,
    PaymentStatus,
    open_ledger,
)
from payments_core.ledger.migrations import MIGRATIONS
from payments_core.ledger.sql import SqlLedger
from payments_core.ledger.sqlite import SqliteLedger
from payments_core.redaction import safe_url
from payments_core.rules import OrderState, assess_event

from .fakes import (
    OLD_STAMP,
    event_for,
    order_for,
    provider_order_id,
    status_of,
    write_old_sqlite_ledger,
)


class Injected(Exception):
    """The failure a test injects before a commit."""


def test_record_order_returns_the_order_recorded_first(ledger: Ledger) -> None:
    first = order_for("booking-1")
    later = attrs.evolve(first, checkout_url="https://elsewhere.test/x")
    assert ledger.record_order(first) == first
    assert ledger.record_order(later) == first
    assert ledger.get_order("fake", "booking-1") == first
    assert ledger.get_order("other", "booking-1") is None


def test_links_missing_from_a_recovered_order_are_filled_by_the_created_one(
    ledger: Ledger,
) -> None:
    created = attrs.evolve(
        order_for("booking-1"),
        links={"qr_data": "fake://pay/1"},
        expires_at=datetime(2030, 1, 2, tzinfo=UTC),
    )
    recovered = attrs.evolve(
        created, checkout_url=None, links={}, expires_at=None
    )  # as a query answers
    assert ledger.record_order(recovered) == recovered
    assert ledger.record_order(created) == created
    assert ledger.get_order("fake", "booking-1") == created
    assert ledger.record_order(recovered) == created  # links are never taken away
    elsewhere = attrs.evolve(created, provider_order_id="1", checkout_url="https://evil.test/")
    assert ledger.record_order(elsewhere) == created  # another provider order: none of it


def test_an_order_round_trips_every_field(ledger: Ledger) -> None:
    order = attrs.evolve(
        order_for("booking-1"),
        amount=Money("0.00000001", "USDT"),
        settlement=Money("0.00000002", "BTC"),
        links={
            "qr_image": "https://fake.test/qr.png",
            "qr_data": "fake://pay/1",
            "app": "fake://pay/1",
            "web": "https://fake.test/u/1",
            "kiosk": "https://fake.test/k/1",
        },
        expires_at=datetime(2030, 1, 2, 3, 4, 5, 600000, tzinfo=UTC),
        transaction_id="tx-1",
        paid=Money("0.00000002", "BTC"),
        fee=Money("0.00000001", "USDT"),
    )
    ledger.record_order(order)
    assert ledger.get_order("fake", "booking-1") == order


def test_a_provider_order_id_cannot_be_recorded_for_two_references(ledger: Ledger) -> None:
    ledger.record_order(order_for("booking-1"))
    clash = attrs.evolve(order_for("booking-2"), provider_order_id=provider_order_id("booking-1"))
    with pytest.raises(LedgerError, match="another reference") as refused:
        ledger.record_order(clash)
    assert refused.value.provider == "fake"


def test_concurrent_records_of_one_reference_keep_one_order(ledger: Ledger) -> None:
    candidates = [
        attrs.evolve(order_for("booking-1"), checkout_url=f"https://fake.test/{i}")
        for i in range(16)
    ]
    start = threading.Barrier(len(candidates))

    def record(order: object) -> object:
        start.wait()
        return ledger.record_order(order)  # type: ignore[arg-type]

    with ThreadPoolExecutor(len(candidates)) as pool:
        stored = set(pool.map(record, candidates))
    assert len(stored) == 1
    assert stored == {ledger.get_order("fake", "booking-1")}
    assert len(ledger.find_orders("booking-1")) == 1


def test_a_paid_event_moves_a_pending_order_to_paid_once(ledger: Ledger) -> None:
    ledger.record_order(order_for("booking-1"))
    first = ledger.apply_event(attrs.evolve(event_for("booking-1"), transaction_id="tx-9"))
    assert first.applied
    assert first.change is not None
    assert (first.change.old_status, first.change.new_status) == ("pending", "paid")
    assert first.change.reference == "booking-1"
    again = ledger.apply_event(event_for("booking-1"))
    assert (again.applied, again.duplicate, again.change) == (False, True, None)
    assert again.reference == "booking-1"  # a duplicate still says whose it is
    order = ledger.get_order("fake", "booking-1")
    assert order is not None
    assert (order.status, order.transaction_id) == (PaymentStatus.PAID, "tx-9")
    assert len(ledger.events_for("fake", "booking-1")) == 1


def test_what_was_paid_and_the_fee_are_recorded_when_an_applied_event_says(
    ledger: Ledger,
) -> None:
    ledger.record_order(order_for("booking-1"))  # no settlement: the payer picks the coin
    wrong = attrs.evolve(
        event_for("booking-1", amount=Money("2.00", "USD")),
        paid=Money("0.00002", "BTC"),
        event_id="wrong",
    )
    assert ledger.apply_event(wrong).flagged is EventFlag.AMOUNT_MISMATCH
    order = ledger.get_order("fake", "booking-1")
    assert order is not None
    assert (order.paid, order.fee) == (None, None)  # a flagged event records nothing
    paid = attrs.evolve(
        event_for("booking-1"), paid=Money("0.00001", "BTC"), fee=Money("0.01", "USD")
    )
    assert ledger.apply_event(paid).applied
    closed = attrs.evolve(event_for("booking-1", PaymentStatus.CLOSED), amount=None)
    ledger.apply_event(closed)  # stale: changes nothing, takes nothing away
    order = ledger.get_order("fake", "booking-1")
    assert order is not None
    assert (order.paid, order.fee) == (Money("0.00001", "BTC"), Money("0.01", "USD"))
    (recorded_wrong, recorded_paid, _) = ledger.events_for("fake", "booking-1")
    assert (recorded_wrong.paid, recorded_wrong.fee) == (Money("0.00002", "BTC"), None)
    assert recorded_paid.fee == Money("0.01", "USD")


def test_an_event_without_a_provider_reference_is_matched_on_the_provider_order_id(
    ledger: Ledger,
) -> None:
    ledger.record_order(order_for("booking-1"))
    bare = attrs.evolve(event_for("booking-1"), provider_reference=None)
    assert ledger.apply_event(bare).applied
    unknown = attrs.evolve(bare, provider_order_id="404", event_id="e404")
    assert ledger.apply_event(unknown).flagged is EventFlag.UNKNOWN_ORDER


def test_an_order_without_a_provider_reference_answers_to_its_reference(ledger: Ledger) -> None:
    ledger.record_order(attrs.evolve(order_for("booking-1"), provider_reference=None))
    by_reference = attrs.evolve(
        event_for("booking-1"), provider_order_id="404", provider_reference="booking-1"
    )
    result = ledger.apply_event(by_reference)  # found by its reference; the ids disagree
    assert (result.reference, result.flagged) == ("booking-1", EventFlag.ORDER_MISMATCH)
    named = attrs.evolve(event_for("booking-1"), provider_reference="booking-1", event_id="e2")
    assert ledger.apply_event(named).applied


def test_a_late_closed_after_paid_is_recorded_and_changes_nothing(ledger: Ledger) -> None:
    ledger.record_order(order_for("booking-1"))
    ledger.apply_event(event_for("booking-1", PaymentStatus.PAID))
    late = ledger.apply_event(event_for("booking-1", PaymentStatus.CLOSED))
    assert (late.applied, late.duplicate, late.flagged) == (False, False, EventFlag.STALE)
    assert status_of(ledger, "booking-1") is PaymentStatus.PAID
    events = ledger.events_for("fake", "booking-1")
    assert [(e.status, e.applied, e.flag) for e in events] == [
        (PaymentStatus.PAID, True, None),
        (PaymentStatus.CLOSED, False, EventFlag.STALE),
    ]
    assert events[1].previous_status is PaymentStatus.PAID


def test_a_payment_after_close_still_counts(ledger: Ledger) -> None:
    ledger.record_order(order_for("booking-1"))
    ledger.apply_event(event_for("booking-1", PaymentStatus.CLOSED))
    paid = ledger.apply_event(event_for("booking-1", PaymentStatus.PAID))
    assert paid.change is not None
    assert paid.change.old_status is PaymentStatus.CLOSED


def test_a_payment_seen_then_reviewed_then_accepted_moves_forward_each_time(
    ledger: Ledger,
) -> None:
    ledger.record_order(order_for("booking-1"))
    over = Money("1.50", "USD")  # what arrived; the event's amount is still the order's
    steps = [
        ledger.apply_event(event_for("booking-1", PaymentStatus.CONFIRMING)),
        ledger.apply_event(
            attrs.evolve(event_for("booking-1", PaymentStatus.NEEDS_REVIEW), paid=over)
        ),
        ledger.apply_event(attrs.evolve(event_for("booking-1", PaymentStatus.PAID), paid=over)),
    ]
    assert [(s.change.old_status, s.change.new_status) for s in steps if s.change] == [
        ("pending", "confirming"),
        ("confirming", "needs_review"),
        ("needs_review", "paid"),
    ]
    late = ledger.apply_event(event_for("booking-1", PaymentStatus.CONFIRMING, event_id="late"))
    assert (late.applied, late.flagged) == (False, EventFlag.STALE)
    order = ledger.get_order("fake", "booking-1")
    assert order is not None
    assert (order.status, order.paid) == (PaymentStatus.PAID, over)


@pytest.mark.parametrize(
    ("before", "late"),
    [
        (PaymentStatus.CONFIRMING, PaymentStatus.EXPIRED),
        (PaymentStatus.CONFIRMING, PaymentStatus.CLOSED),
        (PaymentStatus.NEEDS_REVIEW, PaymentStatus.CONFIRMING),
        (PaymentStatus.FAILED, PaymentStatus.NEEDS_REVIEW),
    ],
)
def test_a_step_back_or_aside_from_a_seen_payment_is_stale(
    ledger: Ledger, before: PaymentStatus, late: PaymentStatus
) -> None:
    ledger.record_order(order_for("booking-1"))
    assert ledger.apply_event(event_for("booking-1", before)).applied
    result = ledger.apply_event(event_for("booking-1", late))
    assert (result.applied, result.flagged, result.change) == (False, EventFlag.STALE, None)
    assert status_of(ledger, "booking-1") is before


def test_a_payment_under_review_is_still_checked_against_the_orders_amount(
    ledger: Ledger,
) -> None:
    # What arrived goes in ``paid``; an ``amount`` that is not the order's is a mismatch,
    # under review or not.
    ledger.record_order(order_for("reviewed"))
    short = Money("0.50", "USD")
    wrong = ledger.apply_event(event_for("reviewed", PaymentStatus.NEEDS_REVIEW, amount=short))
    assert (wrong.applied, wrong.flagged) == (False, EventFlag.AMOUNT_MISMATCH)
    held = attrs.evolve(event_for("reviewed", PaymentStatus.NEEDS_REVIEW), event_id="held")
    assert ledger.apply_event(attrs.evolve(held, paid=short)).applied
    order = ledger.get_order("fake", "reviewed")
    assert order is not None
    assert (order.status, order.paid) == (PaymentStatus.NEEDS_REVIEW, short)


@pytest.mark.parametrize(
    ("amount", "flag"),
    [
        (Money("0.99", "USD"), EventFlag.AMOUNT_MISMATCH),
        (Money("100.00", "USD"), EventFlag.AMOUNT_MISMATCH),
        (Money("1.00", "EUR"), EventFlag.CURRENCY_MISMATCH),
    ],
)
def test_a_callback_with_the_wrong_money_is_flagged_and_not_paid(
    ledger: Ledger, amount: Money, flag: EventFlag
) -> None:
    ledger.record_order(order_for("booking-1"))
    result = ledger.apply_event(event_for("booking-1", amount=amount))
    assert (result.applied, result.flagged, result.change) == (False, flag, None)
    assert status_of(ledger, "booking-1") is PaymentStatus.PENDING
    (recorded,) = ledger.events_for("fake", "booking-1")
    assert (recorded.flag, recorded.amount, recorded.applied) == (flag, amount, False)


@pytest.mark.parametrize(
    ("amount", "flag"),
    [
        (Money("0.9987", "USDT"), None),
        (Money("1.00", "USD"), None),
        (Money("0.9986", "USDT"), EventFlag.AMOUNT_MISMATCH),
        (Money("0.9987", "BTC"), EventFlag.CURRENCY_MISMATCH),
    ],
)
def test_a_callback_is_checked_against_the_orders_settlement(
    ledger: Ledger, amount: Money, flag: EventFlag | None
) -> None:
    priced_in_usd = attrs.evolve(order_for("booking-1"), settlement=Money("0.99870000", "USDT"))
    ledger.record_order(priced_in_usd)
    result = ledger.apply_event(event_for("booking-1", amount=amount))
    assert (result.applied, result.flagged) == (flag is None, flag)


def test_a_crypto_amount_for_a_fiat_price_with_no_known_settlement_is_accepted(
    ledger: Ledger,
) -> None:
    ledger.record_order(order_for("booking-1"))  # priced 1.00 USD, settlement never stated
    result = ledger.apply_event(event_for("booking-1", amount=Money("0.99870000", "USDT")))
    assert result.applied
    (recorded,) = ledger.events_for("fake", "booking-1")
    assert recorded.amount == Money("0.9987", "USDT")


def test_a_callback_for_an_unknown_order_is_recorded_and_flagged(ledger: Ledger) -> None:
    result = ledger.apply_event(event_for("never-created"))
    assert (result.applied, result.flagged, result.reference) == (
        False,
        EventFlag.UNKNOWN_ORDER,
        None,
    )
    assert ledger.apply_event(event_for("never-created")).duplicate


def test_a_callback_naming_mismatched_ids_is_flagged(ledger: Ledger) -> None:
    ledger.record_order(order_for("booking-1"))
    crossed = attrs.evolve(event_for("booking-1"), provider_reference="m-booking-2")
    result = ledger.apply_event(crossed)
    assert (result.applied, result.flagged, result.reference) == (
        False,
        EventFlag.ORDER_MISMATCH,
        "booking-1",
    )
    by_merchant_id = attrs.evolve(event_for("booking-1"), provider_order_id="999", event_id="e2")
    assert ledger.apply_event(by_merchant_id).flagged is EventFlag.ORDER_MISMATCH
    assert status_of(ledger, "booking-1") is PaymentStatus.PENDING


def test_a_failure_before_commit_rolls_back_and_the_redelivery_applies_once(
    open_test_ledger: Callable[..., Ledger],
) -> None:
    """Quality bar R5."""
    failures = iter([Injected("power cut")])

    def fail_once() -> None:
        failure = next(failures, None)
        if failure is not None:
            raise failure

    ledger = open_test_ledger(before_commit=fail_once)
    ledger.record_order(order_for("booking-1"))
    with pytest.raises(Injected):
        ledger.apply_event(event_for("booking-1"))
    assert status_of(ledger, "booking-1") is PaymentStatus.PENDING
    assert ledger.events_for("fake", "booking-1") == []
    redelivered = ledger.apply_event(event_for("booking-1"))
    assert redelivered.applied
    assert redelivered.change is not None
    assert ledger.apply_event(event_for("booking-1")).duplicate
    assert [e.applied for e in ledger.events_for("fake", "booking-1")] == [True]


class _CommitFailsOnce(sqlite3.Connection):
    """A connection whose first COMMIT fails, as one does when the disk is full."""

    failures: ClassVar[list[Exception]] = []

    def execute(self, sql: str, *args: object) -> sqlite3.Cursor:
        if sql == "COMMIT" and self.failures:
            raise self.failures.pop()
        return super().execute(sql, *args)  # type: ignore[arg-type]


def test_a_failed_commit_releases_the_sqlite_write_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "ledger.sqlite3"
    with SqliteLedger(path, busy_timeout=0.2) as ledger:
        ledger.record_order(order_for("booking-1"))
        connect = sqlite3.connect
        monkeypatch.setattr(
            sqlite3, "connect", lambda *a, **k: connect(*a, factory=_CommitFailsOnce, **k)
        )
        with SqliteLedger(path, busy_timeout=0.2) as failing:
            monkeypatch.setattr(
                _CommitFailsOnce, "failures", [sqlite3.OperationalError("database or disk is full")]
            )
            with pytest.raises(LedgerError, match="disk is full"):
                failing.apply_event(event_for("booking-1"))
            monkeypatch.undo()
            # Neither this process's next write nor another writer is locked out.
            ledger.record_order(order_for("booking-2"))
            assert failing.apply_event(event_for("booking-1")).applied
        assert status_of(ledger, "booking-1") is PaymentStatus.PAID


class _MemoryLedger(SqlLedger):
    """A store that supplies only what it must (its connections, each to an in-memory SQLite
    database, its column types and its times) and keeps the base class's pool and health
    check: its whole ledger lives in the one connection the pool keeps."""

    types: ClassVar[Mapping[str, str]] = SqliteLedger.types
    driver_errors = (sqlite3.Error,)

    def connect(self) -> sqlite3.Connection:
        return sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)

    def time_in(self, moment: datetime | None) -> object:
        return None if moment is None else moment.isoformat()

    def time_out(self, value: Any) -> datetime | None:
        return None if value is None else datetime.fromisoformat(value)


def test_a_store_that_supplies_only_its_connections_reuses_them() -> None:
    with _MemoryLedger("memory") as ledger:
        ledger.record_order(order_for("booking-1"))
        assert ledger.apply_event(event_for("booking-1")).applied
        assert status_of(ledger, "booking-1") is PaymentStatus.PAID


def test_a_failed_transaction_is_rolled_back_before_its_connection_is_reused() -> None:
    # The base pool keeps a connection the store calls healthy; left in its transaction, the
    # next BEGIN on it would fail and the failed write would stay half done.
    failures = [Injected("before commit")]

    def before_commit() -> None:
        if failures:
            raise failures.pop()

    with _MemoryLedger("memory", before_commit=before_commit) as ledger:
        ledger.record_order(order_for("booking-1"))
        with pytest.raises(Injected):
            ledger.apply_event(event_for("booking-1"))
        assert ledger.events_for("fake", "booking-1") == []
        assert ledger.apply_event(event_for("booking-1")).applied
        assert status_of(ledger, "booking-1") is PaymentStatus.PAID


class _RollbackFails(sqlite3.Connection):
    """A connection whose COMMIT and ROLLBACK fail once it is ``broken``, as on a connection
    gone bad."""

    broken: ClassVar[bool] = False

    def execute(self, sql: str, *args: object) -> sqlite3.Cursor:
        if self.broken and sql in ("COMMIT", "ROLLBACK"):
            raise sqlite3.OperationalError(f"{sql} failed: disk I/O error")
        return super().execute(sql, *args)  # type: ignore[arg-type]


def test_a_failed_rollback_does_not_hide_why_the_transaction_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    connect = sqlite3.connect
    monkeypatch.setattr(
        sqlite3, "connect", lambda *a, **k: connect(*a, factory=_RollbackFails, **k)
    )
    with SqliteLedger(tmp_path / "ledger.sqlite3") as ledger:
        ledger.record_order(order_for("booking-1"))
        monkeypatch.setattr(_RollbackFails, "broken", True)
        with pytest.raises(LedgerError, match="could not apply event: OperationalError: COMMIT"):
            ledger.apply_event(event_for("booking-1"))
        monkeypatch.setattr(_RollbackFails, "broken", False)


def test_a_ledger_whose_file_cannot_be_opened_says_it_could_not_connect(tmp_path: Path) -> None:
    nowhere = tmp_path / "missing" / "ledger.sqlite3"
    with pytest.raises(LedgerError, match="could not connect: OperationalError: unable to open"):
        SqliteLedger(nowhere)


def test_times_come_back_in_utc_whatever_the_sessions_and_the_machines_time_zone(
    ledger_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # PostgreSQL answers in its session's time zone (PGTZ), Python's astimezone() without a
    # zone in the machine's (TZ): the ledger hands back UTC either way.
    monkeypatch.setenv("PGTZ", "Asia/Tokyo")
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        with open_ledger(ledger_url) as ledger:
            ledger.record_order(order_for("booking-1"))
            ledger.apply_event(event_for("booking-1"))
            (change,) = ledger.unannounced_changes()
    finally:
        monkeypatch.undo()
        time.tzset()
    assert change.changed_at.utcoffset() == timedelta(0)
    assert change.changed_at.tzinfo == UTC


def test_pending_orders_are_those_still_pending_after_a_while(
    open_test_ledger: Callable[..., Ledger],
) -> None:
    now = [datetime(2030, 1, 1, 12, 0, tzinfo=UTC)]
    ledger = open_test_ledger(clock=lambda: now[0])
    ledger.record_order(order_for("old-paid"))
    ledger.record_order(order_for("old-pending"))
    ledger.record_order(order_for("old-seen"))
    ledger.record_order(order_for("old-review"))
    ledger.record_order(order_for("old-failed"))
    now[0] += timedelta(minutes=5)
    ledger.record_order(order_for("recent"))
    ledger.apply_event(event_for("old-paid"))
    ledger.apply_event(event_for("old-seen", PaymentStatus.CONFIRMING))
    ledger.apply_event(event_for("old-review", PaymentStatus.NEEDS_REVIEW))
    ledger.apply_event(event_for("old-failed", PaymentStatus.FAILED))
    now[0] += timedelta(minutes=10)
    pending = ledger.pending_orders(timedelta(minutes=15))
    waiting = ["old-pending", "old-review", "old-seen"]
    assert sorted(record.order.reference for record in pending) == waiting
    assert pending[0].created_at == datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
    later = [r.order.reference for r in ledger.pending_orders(timedelta(minutes=10))]
    assert sorted(later) == [*waiting, "recent"]
    assert later[-1] == "recent"


def test_amounts_are_stored_as_exact_decimal_text(ledger_url: str, ledger: Ledger) -> None:
    ledger.record_order(attrs.evolve(order_for("booking-1"), amount=Money("0.00000001", "BTC")))
    ledger.apply_event(event_for("booking-1", amount=Money("0.00000001", "BTC")))
    if ledger_url.startswith("sqlite"):
        path = ledger_url.removeprefix("sqlite:///")
        with sqlite3.connect(path) as conn:
            rows = conn.execute(
                "SELECT typeof(amount), amount FROM orders UNION ALL "
                "SELECT typeof(amount), amount FROM events"
            ).fetchall()
        conn.close()
        assert rows == [("text", "0.00000001"), ("text", "0.00000001")]
    else:
        import psycopg

        with psycopg.connect(ledger_url) as conn:
            types = conn.execute(
                "SELECT table_name, data_type FROM information_schema.columns "
                "WHERE column_name = 'amount' AND table_schema = current_schema() "
                "ORDER BY table_name"
            ).fetchall()
        assert types == [("events", "text"), ("orders", "text"), ("refunds", "text")]
    order = ledger.get_order("fake", "booking-1")
    assert order is not None
    assert order.amount.amount == Decimal("0.00000001")


def test_reopening_a_ledger_keeps_its_records_and_schema_version(
    open_test_ledger: Callable[..., Ledger],
) -> None:
    first = open_test_ledger()
    first.record_order(order_for("booking-1"))
    first.close()
    second = open_test_ledger()
    assert second.get_order("fake", "booking-1") == order_for("booking-1")


def test_a_version_1_ledger_is_migrated_and_keeps_its_orders(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    write_old_sqlite_ledger(path, 1, PaymentStatus.PENDING)
    with open_ledger(f"sqlite:///{path}") as ledger:
        old = ledger.get_order("fake", "old")
        ledger.record_order(attrs.evolve(order_for("new"), settlement=Money("1", "USDT")))
        new = ledger.get_order("fake", "new")
    assert old is not None
    assert (old.amount, old.settlement) == (Money("1.00", "USD"), None)
    assert new is not None
    assert new.settlement == Money("1", "USDT")
    with sqlite3.connect(path) as conn:
        versions = conn.execute("SELECT version FROM schema_version ORDER BY version").fetchall()
    conn.close()
    assert versions == [(v,) for v in range(1, len(MIGRATIONS) + 1)]


def test_events_applied_before_the_outbox_existed_are_not_announced_again(
    tmp_path: Path,
) -> None:
    path = tmp_path / "ledger.sqlite3"
    write_old_sqlite_ledger(path, 2, PaymentStatus.PAID)
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.execute(
            "INSERT INTO events (provider, event_id, status, provider_order_id, "
            "merchant_order_id, reference, previous_status, received_at, applied) VALUES "
            "('fake', 'fake:1:paid', 'paid', '1', 'm-old', 'old', 'pending', ?, 1)",
            (OLD_STAMP,),
        )
    with open_ledger(f"sqlite:///{path}") as migrated:
        left = migrated.unannounced_changes()
        migrated.record_order(order_for("booking-2"))
        result = migrated.apply_event(event_for("booking-2"))
        pending = migrated.unannounced_changes()
    assert left == []
    assert pending == [result.change]


def test_a_closed_ledger_refuses_work(ledger: Ledger) -> None:
    ledger.close()
    ledger.close()
    with pytest.raises(LedgerError, match="closed"):
        ledger.get_order("fake", "booking-1")


def test_a_schema_newer_than_the_code_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    open_ledger(f"sqlite:///{path}").close()
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO schema_version VALUES (99)")
    conn.close()
    url = f"sqlite:///{path}"
    with pytest.raises(LedgerError, match=re.escape(f"ledger at {url} has schema version 99")):
        open_ledger(url)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://db/x", "must start with sqlite:/// or postgresql://"),
        ("sqlite://host/x.db", "sqlite:///relative/path"),
        ("sqlite:///:memory:", "in-memory"),
        ("sqlite:///x.db?journal=off", "'journal' is unknown"),
        ("sqlite:///x.db?busy_timeout=soon", "busy_timeout must be seconds"),
        ("sqlite:///x.db?synchronous=off", "synchronous must be one of full, normal"),
    ],
)
def test_a_bad_database_url_is_a_configuration_error(url: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        open_ledger(url)


def test_an_unreachable_postgres_is_a_ledger_error_without_the_password() -> None:
    pytest.importorskip("psycopg")
    url = "postgresql://app:hunter2@127.0.0.1:1/none?connect_timeout=1"
    with pytest.raises(LedgerError) as caught:
        open_ledger(url)
    assert "hunter2" not in str(caught.value)
    assert "app:***@127.0.0.1:1" in str(caught.value)
    assert " could not open: OperationalError: " in str(caught.value)  # which step, and why


def test_safe_url_hides_only_the_password() -> None:
    assert safe_url("postgresql://u:p@h:5/d?x=1") == "postgresql://u:***@h:5/d?x=1"
    assert safe_url("postgresql://u@h/d") == "postgresql://u@h/d"


def test_assess_event_checks_ids_money_and_direction() -> None:
    state = OrderState(
        "booking-1",
        provider_order_id("booking-1"),
        "m-booking-1",
        PaymentStatus.PENDING,
        Decimal("1.00"),
        "USD",
    )
    assert assess_event(state, event_for("booking-1")) is None
    assert assess_event(state, event_for("booking-1", amount=None)) is None
    assert assess_event(None, event_for("booking-1")) is EventFlag.UNKNOWN_ORDER
    paid = state._replace(status=PaymentStatus.PAID)
    assert assess_event(paid, event_for("booking-1", PaymentStatus.EXPIRED)) is EventFlag.STALE
    assert assess_event(paid, event_for("booking-1", PaymentStatus.PAID)) is EventFlag.STALE
    assert assess_event(paid, event_for("booking-1", PaymentStatus.REFUNDED)) is None
    in_usdt = state._replace(currency="USDT")
    btc = Money("1.00", "BTC")
    assert assess_event(in_usdt, event_for("booking-1", amount=btc)) is EventFlag.CURRENCY_MISMATCH
