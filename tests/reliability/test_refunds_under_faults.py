"""R8: every paid order refunded once, under the R1 fault mix, with shuffled, repeated webhooks.

500 orders are created and paid at the sandbox (no faults), and their payment callbacks held
back. Then each is refunded in full through the asynchronous API while the sandbox injects the
``flaky`` mix on every request (429s, 5xx, answers lost after the refund was made, timeouts,
resets); a call that ends in a typed error is made again, as an application would. Only then
are the signed webhooks (``PAY_SUCCESS`` and ``PAY_REFUND``) delivered, each 1 to 5 times, all
shuffled, from several threads.

Passes when the sandbox holds exactly 500 refunds, one per order; the ledger shows every order
``refunded`` with its refund counted once, and its totals equal the sandbox's; each status
change was announced once; every delivery was acknowledged.
"""

from __future__ import annotations

import asyncio
import collections
import random
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path

import attrs

from payments_binance import protocol
from payments_binance.trade_no import refund_request_id
from payments_core import (
    Money,
    Order,
    OrderRequest,
    PaymentsError,
    PaymentStatus,
    Refund,
    RefundRequest,
    RefundStatus,
    RetryPolicy,
    open_ledger,
)
from payments_core.testing.sandbox import PROFILES
from tests.ledger.fakes import HookRecorder

from .conftest import CALLBACK_PATH, Harness

ORDERS = 500
IN_FLIGHT = 32
READ_TIMEOUT = 0.2
HOLD = 0.6  # the sandbox's timeout fault holds the request past the client's read timeout
PASSES = 4
PRICE = Money("1.00", "USD")


async def no_wait(_: float) -> None:
    await asyncio.sleep(0)


def policy() -> RetryPolicy:
    return RetryPolicy(
        max_attempts=6, deadline=30.0, initial_delay=0.05, max_delay=0.4, async_sleep=no_wait
    )


def booking(i: int) -> OrderRequest:
    return OrderRequest(
        reference=f"r8-{i:04d}",
        price=PRICE,
        callback_url=f"https://leadscalendar.example{CALLBACK_PATH}",
        description="R8 booking",
    )


def cancellation(reference: str) -> RefundRequest:
    return RefundRequest(
        reference=reference,
        refund_reference=f"cancel-{reference}",
        amount=PRICE,
        reason="booking cancelled",
    )


async def each(
    references: list[str], call: Callable[[str], object]
) -> dict[str, object | BaseException]:
    gate = asyncio.Semaphore(IN_FLIGHT)

    async def one(reference: str) -> tuple[str, object | BaseException]:
        async with gate:
            try:
                return reference, await call(reference)  # type: ignore[misc]
            except PaymentsError as error:
                return reference, error

    return dict(await asyncio.gather(*(one(r) for r in references)))


def test_every_paid_order_is_refunded_once_through_faults_and_shuffled_webhooks(
    start_sandbox: Callable[..., Harness], tmp_path: Path
) -> None:
    harness = start_sandbox(
        faults=attrs.evolve(PROFILES["flaky"], timeout_delay_s=HOLD), seed=ORDERS
    )
    faulty = harness.sandbox.faults
    harness.sandbox.faults = None  # orders are made and paid without faults
    recorder = HookRecorder()
    payments = harness.payments(
        retry=policy(),
        read_timeout=READ_TIMEOUT,
        ledger=open_ledger(f"sqlite:///{tmp_path / 'r8.sqlite3'}"),
    )
    payments.host.register(recorder)
    references = [booking(i).reference for i in range(ORDERS)]

    # The async client closes with asyncio.run's loop; the ledger stays open for the webhooks.
    async def refund_all() -> list[object]:
        created = await each(
            references,
            lambda r: payments.create_order_async(booking(int(r.removeprefix("r8-")))),
        )
        for order in created.values():
            assert isinstance(order, Order), repr(order)
            harness.sandbox.pay(order.provider_order_id)
        harness.sandbox.faults = faulty
        outcomes: list[object] = []
        pending = references
        for _ in range(PASSES):
            done = await each(pending, lambda r: payments.refund_order_async(cancellation(r)))
            outcomes.extend(done.values())
            pending = [
                r
                for r, result in done.items()
                if not (isinstance(result, Refund) and result.status is RefundStatus.SUCCEEDED)
            ]
            if not pending:
                break
        harness.sandbox.faults = None
        assert not pending, f"{len(pending)} refunds unsettled after {PASSES} passes"
        return outcomes

    outcomes = asyncio.run(refund_all())
    errors = [o for o in outcomes if not isinstance(o, Refund)]
    for error in errors:
        assert isinstance(error, PaymentsError), repr(error)
        assert error.classification is not None, repr(error)
        assert error.classification.retryable, repr(error)

    # Every signed webhook, delivered 1 to 5 times, shuffled, from 8 threads.
    rng = random.Random(ORDERS)
    events = [a for a in harness.sandbox.webhook_log if a.skipped]
    deliveries = [a for a in events for _ in range(rng.randint(1, 5))]
    rng.shuffle(deliveries)
    # The first one alone: it fetches the certificates, which callbacks arriving meanwhile
    # would wait for (deferred, and delivered again by Binance).
    first = deliveries[0]
    replies = [payments.apply_callback("binance", dict(first.headers), first.delivery.body).reply]
    with ThreadPoolExecutor(8) as pool:
        replies += pool.map(
            lambda a: payments.apply_callback("binance", dict(a.headers), a.delivery.body).reply,
            deliveries[1:],
        )
    harness.server.stop()

    # The sandbox: exactly one refund per order, under the id derived from its references.
    made = harness.sandbox.refunds
    per_order = collections.Counter(r.prepay_id for r in made)
    assert len(made) == ORDERS
    assert max(per_order.values()) == 1
    assert {r.refund_request_id for r in made} == {
        refund_request_id(r, f"cancel-{r}") for r in references
    }
    assert faulty is not None
    faults = collections.Counter(f.target for f in faulty.log)
    assert faults[protocol.PATH_REFUND] > 0
    assert faults[protocol.PATH_REFUND_QUERY] > 0

    # The ledger: every order refunded in full, each refund counted once, totals as Binance's.
    ledger = payments.ledger
    assert ledger is not None
    orders = [ledger.get_order("binance", r) for r in references]
    assert all(o is not None and o.status is PaymentStatus.REFUNDED for o in orders)
    assert all(o is not None and o.refunded == PRICE for o in orders)
    refunds = [r for ref in references for r in ledger.refunds_for("binance", ref)]
    assert len(refunds) == ORDERS
    assert all(r.status is RefundStatus.SUCCEEDED for r in refunds)
    settled = sum((r.settlement.amount for r in refunds if r.settlement), Decimal(0))
    assert settled == sum((r.amount for r in made), Decimal(0))
    assert len({a.delivery.body for a in events}) == 2 * ORDERS  # PAY_SUCCESS and PAY_REFUND each

    # Each change announced once; every delivery acknowledged.
    changes = collections.Counter((c.reference, c.new_status) for c in recorder.changes)
    assert set(changes.values()) == {1}
    assert set(changes) == {
        (r, status) for r in references for status in (PaymentStatus.PAID, PaymentStatus.REFUNDED)
    }
    assert {reply.status_code for reply in replies} == {200}
    print(  # shown with -s
        f"\nR8: {ORDERS} refunds, {len(errors)} calls ended in a typed error, "
        f"{harness.sandbox.stats()['duplicate_refunds']} refunds re-sent under their id, "
        f"{len(deliveries)} webhook deliveries, faults by path {dict(faults)}"
    )
