"""The facade with a ledger: orders created once, callbacks applied once, pending reconciled."""

from __future__ import annotations

import logging
import multiprocessing
import random
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import anyio
import attrs
import pytest

from payments_core import (
    CallbackVerificationError,
    ConfigurationError,
    EventFlag,
    Money,
    Order,
    PaymentStatus,
    StatusChange,
    ValidationError,
    hookimpl,
    open_ledger,
)

from .fakes import (
    ACK,
    HEADERS,
    NAME,
    REFUSED,
    FakeProvider,
    HookRecorder,
    callback_body,
    create_in_process,
    deliver_in_process,
    event_for,
    make_payments,
    order_for,
    request_for,
)

ORDERS = 1000


def provider_calls(payments: object) -> list[str]:
    plugin = payments.host.pm.get_plugin(NAME)  # type: ignore[attr-defined]
    assert isinstance(plugin, FakeProvider)
    return plugin.calls


def paid_deliveries(references: list[str], seed: int) -> list[bytes]:
    """Each reference's paid callback delivered 1 to 5 times, shuffled."""
    rng = random.Random(seed)
    bodies = [
        callback_body(event_for(reference))
        for reference in references
        for _ in range(rng.randint(1, 5))
    ]
    rng.shuffle(bodies)
    return bodies


def test_create_order_returns_the_recorded_order_without_calling_the_provider(
    ledger_url: str, tmp_path: Path
) -> None:
    with make_payments(ledger_url, remote=tmp_path / "remote.db") as payments:
        assert payments.ledger is not None
        recorded = payments.ledger.record_order(order_for("booking-1"))
        assert payments.create_order(request_for("booking-1")) == recorded
        assert provider_calls(payments) == []


@pytest.mark.parametrize("api", ["sync", "async"])
def test_a_recorded_reference_asked_for_another_price_is_refused(
    api: str, ledger_url: str, tmp_path: Path
) -> None:
    with make_payments(ledger_url, remote=tmp_path / "remote.db") as payments:
        assert payments.ledger is not None
        payments.ledger.record_order(order_for("booking-1"))
        price = request_for("booking-1").price
        dearer = attrs.evolve(request_for("booking-1"), price=Money("50.00", price.currency))
        create = (
            payments.create_order
            if api == "sync"
            else lambda r: anyio.run(payments.create_order_async, r)
        )
        with pytest.raises(ValidationError) as caught:
            create(dearer)
        assert caught.value.field == "reference"
        assert str(price) in caught.value.reason
        assert provider_calls(payments) == []


def test_create_order_records_what_the_provider_created(ledger_url: str, tmp_path: Path) -> None:
    with make_payments(ledger_url, remote=tmp_path / "remote.db") as payments:
        created = payments.create_order(request_for("booking-1"))
        assert payments.ledger is not None
        assert payments.ledger.get_order(NAME, "booking-1") == created
        assert payments.create_order(request_for("booking-1")) == created
        assert provider_calls(payments) == ["create_order"]


def test_concurrent_creates_in_threads_make_one_provider_order(
    ledger_url: str, tmp_path: Path
) -> None:
    remote = tmp_path / "remote.db"
    with make_payments(ledger_url, remote=remote) as payments:
        start = threading.Barrier(8)

        def create(_: int) -> Order:
            start.wait()
            return payments.create_order(request_for("booking-1"))

        with ThreadPoolExecutor(8) as pool:
            orders = set(pool.map(create, range(8)))
        assert payments.ledger is not None
        assert len(payments.ledger.find_orders("booking-1")) == 1
    assert len(orders) == 1
    assert _remote_count(remote) == 1


@pytest.mark.postgres
def test_concurrent_creates_in_processes_make_one_provider_order(
    postgres_url: str, tmp_path: Path
) -> None:
    remote = tmp_path / "remote.db"
    open_ledger(postgres_url).close()  # the schema exists before the race starts
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(4)
    results = context.Queue()
    workers = [
        context.Process(
            target=create_in_process, args=(postgres_url, str(remote), "booking-1", start, results)
        )
        for _ in range(4)
    ]
    for worker in workers:
        worker.start()
    orders = {results.get(timeout=60) for _ in workers}
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    results.close()
    results.join_thread()
    assert len(orders) == 1
    assert _remote_count(remote) == 1
    with open_ledger(postgres_url) as ledger:
        assert [r.order for r in ledger.find_orders("booking-1")] == list(orders)


def _remote_count(path: Path) -> int:
    from .fakes import FakeRemote

    return FakeRemote(path).count()


def test_apply_callback_acknowledges_and_announces_a_change_once(ledger_url: str) -> None:
    recorder = HookRecorder()
    with make_payments(ledger_url, plugins=[recorder]) as payments:
        assert payments.ledger is not None
        payments.ledger.record_order(order_for("booking-1"))
        body = callback_body(event_for("booking-1"))
        first = payments.apply_callback(NAME, HEADERS, body)
        again = payments.apply_callback(NAME, HEADERS, body)
        late = payments.apply_callback(
            NAME, HEADERS, callback_body(event_for("booking-1", PaymentStatus.CLOSED))
        )
    assert [first.reply, again.reply, late.reply] == [ACK, ACK, ACK]
    assert first.result is not None
    assert first.result.applied
    assert again.result is not None
    assert again.result.duplicate
    assert late.result is not None
    assert late.result.flagged is EventFlag.STALE
    (change,) = recorder.changes
    assert (change.reference, change.old_status, change.new_status) == (
        "booking-1",
        PaymentStatus.PENDING,
        PaymentStatus.PAID,
    )


def test_a_callback_with_the_wrong_amount_is_acknowledged_flagged_and_not_announced(
    ledger_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    recorder = HookRecorder()
    with make_payments(ledger_url, plugins=[recorder]) as payments:
        assert payments.ledger is not None
        payments.ledger.record_order(order_for("booking-1"))
        cheap = event_for("booking-1", amount=Money("0.01", "USD"))
        with caplog.at_level(logging.WARNING, logger="payments_core.facade"):
            outcome = payments.apply_callback(NAME, HEADERS, callback_body(cheap))
        order = payments.ledger.get_order(NAME, "booking-1")
    assert outcome.reply == ACK
    assert outcome.result is not None
    assert outcome.result.flagged is EventFlag.AMOUNT_MISMATCH
    assert order is not None
    assert order.status is PaymentStatus.PENDING
    assert recorder.changes == []
    assert "amount_mismatch" in caplog.text


def test_a_refused_callback_records_nothing(ledger_url: str) -> None:
    with make_payments(ledger_url) as payments:
        assert payments.ledger is not None
        payments.ledger.record_order(order_for("booking-1"))
        body = callback_body(event_for("booking-1"))
        with pytest.raises(CallbackVerificationError) as caught:
            payments.apply_callback(NAME, {"X-Fake-Token": "forged"}, body)
        assert caught.value.reply == REFUSED
        assert payments.ledger.events_for(NAME, "booking-1") == []


def test_a_callback_without_an_event_is_acknowledged(ledger_url: str) -> None:
    with make_payments(ledger_url) as payments:
        outcome = payments.apply_callback(NAME, HEADERS, b'{"kind": "ping"}')
    assert (outcome.reply, outcome.event, outcome.result) == (ACK, None, None)


def test_callbacks_and_reconcile_need_a_ledger() -> None:
    with make_payments(None) as payments:
        with pytest.raises(ConfigurationError, match="needs a ledger"):
            payments.apply_callback(NAME, HEADERS, b"{}")
        with pytest.raises(ConfigurationError, match="needs a ledger"):
            payments.reconcile(timedelta(0))


def test_a_failure_before_commit_is_not_announced_and_the_redelivery_is_once(
    ledger_url: str,
) -> None:
    """Quality bar R5, through the facade."""
    failing = [True]

    def fail_once() -> None:
        if failing:
            failing.clear()
            raise RuntimeError("injected before commit")

    recorder = HookRecorder()
    with make_payments(ledger_url, plugins=[recorder], before_commit=fail_once) as payments:
        assert payments.ledger is not None
        payments.ledger.record_order(order_for("booking-1"))
        body = callback_body(event_for("booking-1"))
        with pytest.raises(RuntimeError, match="injected"):
            payments.apply_callback(NAME, HEADERS, body)
        assert recorder.changes == []
        assert payments.apply_callback(NAME, HEADERS, body).reply == ACK
        assert payments.apply_callback(NAME, HEADERS, body).reply == ACK
        events = payments.ledger.events_for(NAME, "booking-1")
    assert len(recorder.changes) == 1
    assert [event.applied for event in events] == [True]


def test_a_failing_application_hook_is_logged_and_its_change_announced_again_later(
    ledger_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    class DownOnce:
        def __init__(self) -> None:
            self.down = True
            self.changes: list[StatusChange] = []

        @hookimpl
        def payment_status_changed(self, change: StatusChange) -> None:
            if self.down:
                raise RuntimeError("the app is down")
            self.changes.append(change)

    app = DownOnce()
    with make_payments(ledger_url, plugins=[app]) as payments:
        assert payments.ledger is not None
        payments.ledger.record_order(order_for("booking-1"))
        with caplog.at_level(logging.ERROR, logger="payments_core.facade"):
            outcome = payments.apply_callback(NAME, HEADERS, callback_body(event_for("booking-1")))
        pending = payments.ledger.unannounced_changes()
        app.down = False
        announced = payments.announce_pending_changes()
        again = payments.announce_pending_changes()
        left = payments.ledger.unannounced_changes()
    assert outcome.reply == ACK
    assert outcome.result is not None
    assert outcome.result.applied
    assert "will be announced again" in caplog.text
    assert [change.reference for change in pending] == ["booking-1"]
    assert (announced, again, left) == (1, 0, [])
    assert app.changes == [outcome.result.change]


def test_a_change_committed_but_never_announced_is_announced_once_by_the_outbox(
    ledger_url: str,
) -> None:
    recorder = HookRecorder()
    with make_payments(ledger_url, plugins=[recorder]) as payments:
        assert payments.ledger is not None
        for reference in ("booking-1", "booking-2", "booking-3"):
            payments.ledger.record_order(order_for(reference))
        announced_live = payments.apply_callback(
            NAME, HEADERS, callback_body(event_for("booking-1"))
        )
        # What a process killed between its commit and its hook leaves behind.
        crashed = [
            payments.ledger.apply_event(event_for(reference))
            for reference in ("booking-2", "booking-3")
        ]
        pending = payments.ledger.unannounced_changes()
        too_young = payments.ledger.unannounced_changes(timedelta(hours=1))
        with make_payments(ledger_url) as deaf:  # a process without the application's plugin
            assert deaf.announce_pending_changes() == 0
        announced = payments.announce_pending_changes()
        again = payments.announce_pending_changes()
    assert announced_live.result is not None
    assert [c.reference for c in pending] == ["booking-2", "booking-3"]
    assert pending == [result.change for result in crashed]
    assert too_young == []
    assert (announced, again) == (2, 0)
    assert [c.reference for c in recorder.changes] == ["booking-1", "booking-2", "booking-3"]


def test_paid_callbacks_delivered_many_times_concurrently_pay_each_order_once(
    ledger_url: str,
) -> None:
    """Quality bar R2 with threads: 1,000 orders, 1 to 5 shuffled deliveries each."""
    references = [f"booking-{i}" for i in range(ORDERS)]
    bodies = paid_deliveries(references, seed=2)
    recorder = HookRecorder()
    with make_payments(ledger_url, plugins=[recorder]) as payments:
        assert payments.ledger is not None
        for reference in references:
            payments.ledger.record_order(order_for(reference))
        with ThreadPoolExecutor(8) as pool:
            outcomes = list(pool.map(lambda b: payments.apply_callback(NAME, HEADERS, b), bodies))
        pending = payments.ledger.pending_orders(timedelta(0))
        paid = [payments.ledger.get_order(NAME, r) for r in references]
    assert all(outcome.reply == ACK for outcome in outcomes)
    assert sum(o.result is not None and o.result.applied for o in outcomes) == ORDERS
    assert Counter(change.reference for change in recorder.changes) == Counter(references)
    assert pending == []
    assert all(order is not None and order.status is PaymentStatus.PAID for order in paid)


@pytest.mark.postgres
def test_paid_callbacks_delivered_by_four_processes_pay_each_order_once(
    postgres_url: str,
) -> None:
    """Quality bar R2 with PostgreSQL and 4 processes (4 threads each), one facade per process."""
    references = [f"booking-{i}" for i in range(ORDERS)]
    with open_ledger(postgres_url) as ledger:
        for reference in references:
            ledger.record_order(order_for(reference))
    bodies = paid_deliveries(references, seed=4)
    chunks = [bodies[i::4] for i in range(4)]
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        results = pool.starmap(deliver_in_process, [(postgres_url, chunk, 4) for chunk in chunks])
    assert sum(acks for acks, _ in results) == len(bodies)
    announced = Counter(reference for _, changes in results for reference in changes)
    assert announced == Counter(references)
    with open_ledger(postgres_url) as ledger:
        assert ledger.pending_orders(timedelta(0)) == []
        applied = [e for r in references for e in ledger.events_for(NAME, r) if e.applied]
    assert len(applied) == ORDERS


def test_reconcile_applies_what_the_provider_says_once(ledger_url: str, tmp_path: Path) -> None:
    remote = tmp_path / "remote.db"
    recorder = HookRecorder()
    with make_payments(ledger_url, remote=remote, plugins=[recorder]) as payments:
        for reference in ("paid-1", "still-pending", "closed-1"):
            payments.create_order(request_for(reference))
        assert payments.ledger is not None
        payments.ledger.record_order(order_for("unknown-to-provider"))
        fake = payments.host.pm.get_plugin(NAME)
        fake.remote.set_status("paid-1", PaymentStatus.PAID)
        fake.remote.set_status("closed-1", PaymentStatus.CLOSED)

        assert payments.reconcile(timedelta(hours=1)) == []
        outcomes = {o.order.reference: o for o in payments.reconcile(timedelta(0))}
        again = payments.reconcile(timedelta(0))
        statuses = {r: payments.ledger.get_order(NAME, r) for r in outcomes}

    assert set(outcomes) == {"paid-1", "still-pending", "closed-1", "unknown-to-provider"}
    assert outcomes["paid-1"].result is not None
    assert outcomes["paid-1"].result.applied
    assert outcomes["still-pending"].result is None
    assert outcomes["unknown-to-provider"].answer is None
    assert {r: o.status for r, o in statuses.items() if o is not None} == {
        "paid-1": PaymentStatus.PAID,
        "closed-1": PaymentStatus.CLOSED,
        "still-pending": PaymentStatus.PENDING,
        "unknown-to-provider": PaymentStatus.PENDING,
    }
    assert {o.order.reference for o in again} == {"still-pending", "unknown-to-provider"}
    assert sorted(c.reference for c in recorder.changes) == ["closed-1", "paid-1"]


def test_reconcile_follows_a_seen_payment_until_it_ends(ledger_url: str, tmp_path: Path) -> None:
    recorder = HookRecorder()
    with make_payments(ledger_url, remote=tmp_path / "remote.db", plugins=[recorder]) as payments:
        payments.create_order(request_for("seen-1"))
        fake = payments.host.pm.get_plugin(NAME)
        fake.remote.set_status("seen-1", PaymentStatus.CONFIRMING)
        (seen,) = payments.reconcile(timedelta(0))
        (still,) = payments.reconcile(timedelta(0))  # not final: asked again, no news
        fake.remote.set_status("seen-1", PaymentStatus.PAID)
        (paid,) = payments.reconcile(timedelta(0))
        assert payments.reconcile(timedelta(0)) == []
    assert seen.result is not None
    assert seen.result.applied
    assert (still.answer is not None, still.result) == (True, None)
    assert paid.result is not None
    assert paid.result.applied
    assert [(c.old_status, c.new_status) for c in recorder.changes] == [
        (PaymentStatus.PENDING, PaymentStatus.CONFIRMING),
        (PaymentStatus.CONFIRMING, PaymentStatus.PAID),
    ]


def test_reconcile_reports_an_order_it_could_not_ask_about_and_goes_on(
    ledger_url: str, tmp_path: Path
) -> None:
    with make_payments(ledger_url, remote=tmp_path / "remote.db") as payments:
        assert payments.ledger is not None
        payments.ledger.record_order(attrs.evolve(order_for("elsewhere"), provider="gone"))
        payments.create_order(request_for("here"))
        payments.host.pm.get_plugin(NAME).remote.set_status("here", PaymentStatus.PAID)
        outcomes = {o.order.reference: o for o in payments.reconcile(timedelta(0))}
        only_fake = payments.reconcile(timedelta(0), provider=NAME)
    assert outcomes["elsewhere"].error is not None
    assert "gone" in str(outcomes["elsewhere"].error)
    assert outcomes["here"].result is not None
    assert outcomes["here"].result.applied
    assert only_fake == []


@pytest.mark.anyio
async def test_the_async_api_creates_applies_and_reconciles_once(
    ledger_url: str, tmp_path: Path
) -> None:
    recorder = HookRecorder()
    async with make_payments(ledger_url, remote=tmp_path / "r.db", plugins=[recorder]) as payments:
        created = await payments.create_order_async(request_for("booking-1"))
        assert await payments.create_order_async(request_for("booking-1")) == created
        await payments.create_order_async(request_for("booking-2"))
        body = callback_body(event_for("booking-1"))
        first = await payments.apply_callback_async(NAME, HEADERS, body)
        again = await payments.apply_callback_async(NAME, HEADERS, body)
        payments.host.pm.get_plugin(NAME).remote.set_status("booking-2", PaymentStatus.EXPIRED)
        (reconciled,) = await payments.reconcile_async(timedelta(0))
    assert provider_calls(payments) == ["create_order", "create_order", "query_order"]
    assert first.result is not None
    assert first.result.applied
    assert again.result is not None
    assert again.result.duplicate
    assert reconciled.result is not None
    assert reconciled.result.change is not None
    assert reconciled.result.change.new_status is PaymentStatus.EXPIRED
    assert [c.reference for c in recorder.changes] == ["booking-1", "booking-2"]


def test_without_an_application_hook_a_change_is_recorded_announced_at_once(
    ledger_url: str,
) -> None:
    with make_payments(ledger_url) as payments:
        assert payments.ledger is not None
        payments.ledger.record_order(order_for("booking-1"))
        outcome = payments.apply_callback(NAME, HEADERS, callback_body(event_for("booking-1")))
        left = payments.ledger.unannounced_changes()
    assert outcome.result is not None
    assert outcome.result.applied
    assert left == []
