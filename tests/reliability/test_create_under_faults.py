"""R1: orders through the asynchronous API while the sandbox injects faults on every attempt.

The sandbox's ``flaky`` profile is the R1 mix (10% 429, half with ``Retry-After``; 10% 5xx; 5%
order stored and the response lost; 5% timeouts; 2% connection resets), with the timeout's
server-side hold (0.6 s) longer than the client's read timeout (0.2 s), so a timeout resolves
fast and the held create is then applied by the sandbox after the client gave up. The retry
policy's ``async_sleep`` records each wait instead of sleeping; its clock adds the waits each
call has "slept" to the real clock, so the deadline is checked against the time the call would
have taken.

Reduced size (200 orders per HTTP backend) by default; ``PAYMENTS_FULL=1`` runs the full 2,000.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import time
from collections.abc import Callable
from decimal import Decimal

import attrs
import pytest

from payments_binance.trade_no import merchant_trade_no
from payments_core import (
    ErrorCategory,
    Money,
    Order,
    OrderRequest,
    Payments,
    PaymentsError,
    ProviderError,
    RetryPolicy,
    TransportError,
)
from payments_core.testing.sandbox import PROFILES

from .conftest import FULL, Harness

ORDERS = 2_000 if FULL else 200
IN_FLIGHT = 32
MAX_ATTEMPTS = 6
DEADLINE = 30.0
MAX_DELAY = 0.4
RETRY_AFTER = 1  # what the sandbox sends in Retry-After
READ_TIMEOUT = 0.2
HOLD = 0.6  # the sandbox's timeout fault: longer than the read timeout
RETRYABLE_ENDINGS = frozenset(
    {
        ErrorCategory.RATE_LIMITED,
        ErrorCategory.PROVIDER_UNAVAILABLE,
        ErrorCategory.OUTCOME_UNKNOWN,
        ErrorCategory.NETWORK,
        ErrorCategory.DUPLICATE_ORDER,
    }
)
#: An application calls again for a reference whose call ended in a typed error.
PASSES = 4


@attrs.define
class CallRecord:
    """What one create_order_async call did: the waits it asked for (virtual seconds)."""

    waits: list[float] = attrs.field(factory=list)

    @property
    def slept(self) -> float:
        return sum(self.waits)


_call: contextvars.ContextVar[CallRecord] = contextvars.ContextVar("r1_call")


def virtual_clock() -> float:
    record = _call.get(None)
    return time.monotonic() + (record.slept if record is not None else 0.0)


async def record_wait(seconds: float) -> None:
    _call.get().waits.append(seconds)
    await asyncio.sleep(0)


def policy() -> RetryPolicy:
    return RetryPolicy(
        max_attempts=MAX_ATTEMPTS,
        deadline=DEADLINE,
        initial_delay=0.05,
        max_delay=MAX_DELAY,
        clock=virtual_clock,
        async_sleep=record_wait,
    )


def request(reference: str) -> OrderRequest:
    return OrderRequest(
        reference=reference,
        price=Money(Decimal("12.50"), "USD"),
        callback_url="https://shop.example/callbacks/binance",
        description="R1 booking",
    )


@attrs.define
class Outcome:
    reference: str
    result: Order | BaseException
    record: CallRecord


async def create_all(make_payments: Callable[[], Payments], references: list[str]) -> list[Outcome]:
    """Create an order for each reference, ``IN_FLIGHT`` at a time, through one new facade."""
    payments = make_payments()
    gate = asyncio.Semaphore(IN_FLIGHT)

    async def one(reference: str) -> Outcome:
        record = CallRecord()
        _call.set(record)  # this task's own context
        async with gate:
            try:
                result: Order | BaseException = await payments.create_order_async(
                    request(reference)
                )
            except Exception as exc:  # the test classifies whatever comes out
                result = exc
        return Outcome(reference, result, record)

    try:
        return await asyncio.wait_for(
            asyncio.gather(*(one(reference) for reference in references)), timeout=600
        )
    finally:
        await payments.aclose()


def create_in_passes(make_payments: Callable[[], Payments], references: list[str]) -> list[Outcome]:
    """Create every reference; call again, up to ``PASSES`` times, for those that failed."""
    outcomes: list[Outcome] = []
    pending = references
    for _ in range(PASSES):
        this_pass = asyncio.run(create_all(make_payments, pending))
        outcomes.extend(this_pass)
        pending = [o.reference for o in this_pass if not isinstance(o.result, Order)]
        if not pending:
            break
    assert not pending, f"{len(pending)} references still without an order after {PASSES} passes"
    return outcomes


def check_outcomes(outcomes: list[Outcome]) -> list[Outcome]:
    """Check every call ended as R1 demands, within the policy's bounds; return the errors."""
    # Every call ended in an order or a typed, classified error; nothing else escaped.
    errors = [o for o in outcomes if not isinstance(o.result, Order)]
    for outcome in errors:
        assert isinstance(outcome.result, TransportError | ProviderError), repr(outcome.result)
        assert isinstance(outcome.result, PaymentsError)
        classification = outcome.result.classification
        assert classification is not None, repr(outcome.result)
        # What the fault mix can leave after the last attempt: a busy or failing provider, an
        # unknown outcome, or (last attempt refused as a duplicate) an order that exists.
        assert classification.category in RETRYABLE_ENDINGS, repr(outcome.result)
    # Attempts and waits within the policy's bounds.
    for outcome in outcomes:
        waits = outcome.record.waits
        assert len(waits) + 1 <= MAX_ATTEMPTS
        assert all(0 <= wait <= max(MAX_DELAY, RETRY_AFTER) for wait in waits), waits
        assert outcome.record.slept <= DEADLINE
    return errors


@pytest.mark.parametrize("backend", ["aiohttp", "httpx"])
def test_every_reference_ends_with_exactly_one_order(
    start_sandbox: Callable[..., Harness], backend: str
) -> None:
    profile = attrs.evolve(PROFILES["flaky"], timeout_delay_s=HOLD, retry_after_s=RETRY_AFTER)
    harness = start_sandbox(faults=profile, seed=ORDERS)
    references = [f"r1-{backend}-{i:05d}" for i in range(ORDERS)]
    started = time.perf_counter()

    outcomes = create_in_passes(
        lambda: harness.payments(retry=policy(), read_timeout=READ_TIMEOUT, async_http=backend),
        references,
    )
    elapsed = time.perf_counter() - started
    harness.server.stop()  # ends held requests: nothing changes at the sandbox after this
    errors = check_outcomes(outcomes)

    # Exactly one order per reference at the sandbox, and it is the one the caller got.
    stored = collections.Counter(
        o.request.merchant_trade_no for o in harness.sandbox.orders.values()
    )
    by_trade_no = {o.request.merchant_trade_no: o for o in harness.sandbox.orders.values()}
    assert len(stored) == ORDERS
    assert set(stored) == {merchant_trade_no(r) for r in references}
    assert max(stored.values()) == 1
    for outcome in outcomes:
        if isinstance(outcome.result, Order):
            held = by_trade_no[merchant_trade_no(outcome.reference)]
            assert outcome.result.reference == outcome.reference
            assert outcome.result.provider_order_id == held.prepay_id

    stats = harness.sandbox.stats()
    assert stats["orders_created"] == ORDERS
    faults = stats["faults_injected"]
    assert isinstance(faults, dict)
    assert set(faults) == {
        "rate_limit_retry_after",
        "rate_limit",
        "server_error",
        "drop_response",
        "timeout",
        "reset",
    }
    print(  # shown with -s: the figures the docs quote
        f"\nR1 {backend}: {ORDERS} orders, {len(stored)} stored, "
        f"{max(stored.values())} max per reference, {len(errors)} calls ended in a typed error "
        f"({collections.Counter(type(o.result).__name__ for o in errors)}), "
        f"{stats['duplicates_refused']} duplicate creates refused by the sandbox, "
        f"{stats['requests']} requests, faults {faults}, {elapsed:.1f} s"
    )
