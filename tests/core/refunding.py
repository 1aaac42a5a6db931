"""ExamplePay's in-process sandbox behind a facade, a paid order and a refund request: what the
tests of ``Payments.refund_order`` (test_refunds_facade.py, test_refund_answers.py) share."""

from __future__ import annotations

from pathlib import Path

from payments_example.harness import ExampleHarness

from payments_core import (
    Config,
    Money,
    Order,
    OrderRequest,
    Payments,
    RefundRequest,
    RetryPolicy,
    open_ledger,
)
from payments_core.testing import FaultInjector


async def _no_sleep(_: float) -> None:
    return None


def example_payments(
    harness: ExampleHarness,
    ledger_path: Path | None,
    *plugins: object,
    faults: FaultInjector | None = None,
    max_attempts: int = 1,
) -> Payments:
    """A facade with ExamplePay on ``harness`` (through ``faults`` if given), ``plugins``, and a
    SQLite ledger at ``ledger_path`` (none if it is None); retries never wait."""
    return Payments(
        Config(),
        providers={"example": harness.factory()},
        provider_settings={"example": harness.settings()},
        load_entry_points=False,
        plugins=plugins,
        retry=RetryPolicy(max_attempts=max_attempts, sleep=lambda _: None, async_sleep=_no_sleep),
        transport=faults or harness.transport(),
        async_transport=faults or harness.async_transport(),
        ledger=None if ledger_path is None else open_ledger(f"sqlite:///{ledger_path}"),
    )


def paid(
    payments: Payments,
    harness: ExampleHarness,
    reference: str = "booking-1",
    *,
    apply: bool = True,
    pay: bool = True,
    provider: str | None = None,
) -> Order:
    """Create a 1.00 USD order for ``reference`` (with ``provider``, else the default one);
    unless ``pay`` is false, pay it at the sandbox, and (with ``apply`` and a ledger) apply its
    paid callback."""
    order = payments.create_order(
        OrderRequest(
            reference=reference, price=Money("1.00", "USD"), callback_url="https://a.test/cb"
        ),
        provider=provider,
    )
    if not pay:
        return order
    callback = harness.paid_callback(order)
    if apply and payments.ledger is not None:
        payments.apply_callback("example", callback.headers, callback.body)
    return order


def refund(
    amount: str = "0.40", refund_reference: str = "cancel-1", currency: str = "USD"
) -> RefundRequest:
    """A refund of ``amount`` of booking-1, under ``refund_reference``."""
    return RefundRequest(
        reference="booking-1",
        refund_reference=refund_reference,
        amount=Money(amount, currency),
        reason="booking cancelled",
    )
