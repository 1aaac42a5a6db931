"""A payment seen before it is confirmed, and one held for review, end to end over loopback.

The sandbox is served on 127.0.0.1 and posts its callbacks to the application's callback
endpoint (``create_callback_app``), served on 127.0.0.1 too, which records them in a SQLite
ledger and tells the application through ``payment_status_changed``.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import attrs
import pytest
from payments_example import ExampleProvider
from payments_example.sandbox import ExamplePaySandbox, serve

from payments_core import (
    Money,
    OrderRequest,
    Payments,
    PaymentStatus,
    open_ledger,
)
from payments_core.asgi import create_callback_app
from payments_core.serving import BackgroundServer
from payments_core.testing import ChangeRecorder


@attrs.frozen
class Shop:
    payments: Payments
    heard: ChangeRecorder
    sandbox: ExamplePaySandbox
    callback_url: str

    def order(self, reference: str) -> str:
        """A new order for 5.00 USD; its ExamplePay id."""
        request = OrderRequest(
            reference=reference, price=Money("5.00", "USD"), callback_url=self.callback_url
        )
        return self.payments.create_order(request).provider_order_id

    def status(self, reference: str) -> PaymentStatus:
        assert self.payments.ledger is not None
        order = self.payments.ledger.get_order("example", reference)
        assert order is not None
        return order.status


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[Shop]:
    heard = ChangeRecorder()
    with (
        serve() as running,
        Payments(
            providers={"example": ExampleProvider},
            provider_settings={"example": running.settings},
            load_entry_points=False,
            plugins=(heard,),
            ledger=open_ledger(f"sqlite:///{tmp_path / 'ledger.sqlite3'}"),
        ) as payments,
        BackgroundServer(create_callback_app(payments), lifespan="off") as app,
    ):
        yield Shop(payments, heard, running.sandbox, f"{app.url}/callbacks/example")


def test_a_payment_seen_then_confirmed_is_heard_at_each_step(shop: Shop) -> None:
    order_id = shop.order("seen-1")
    shop.sandbox.receive(order_id)
    assert shop.status("seen-1") is PaymentStatus.CONFIRMING
    assert shop.payments.reconcile(timedelta(0))[0].order.reference == "seen-1"  # not final
    shop.sandbox.pay(order_id)
    assert shop.status("seen-1") is PaymentStatus.PAID
    assert shop.heard.steps("seen-1") == [("pending", "confirming"), ("confirming", "paid")]
    assert shop.payments.reconcile(timedelta(0)) == []


def test_an_underpayment_is_held_for_review_then_refused(shop: Shop) -> None:
    order_id = shop.order("short-1")
    shop.sandbox.receive(order_id)
    shop.sandbox.hold(order_id, "4.00")
    assert shop.status("short-1") is PaymentStatus.NEEDS_REVIEW
    assert shop.payments.ledger is not None
    held = shop.payments.ledger.events_for("example", "short-1")[-1]
    assert (held.paid, held.applied, held.flag) == (Money("4.00", "USD"), True, None)
    order = shop.payments.ledger.get_order("example", "short-1")
    assert order is not None
    assert (order.amount, order.paid) == (Money("5.00", "USD"), Money("4.00", "USD"))
    shop.sandbox.fail(order_id)
    assert shop.status("short-1") is PaymentStatus.FAILED
    assert shop.heard.steps("short-1") == [
        ("pending", "confirming"),
        ("confirming", "needs_review"),
        ("needs_review", "failed"),
    ]


def test_an_overpayment_accepted_is_paid_and_can_be_refunded(shop: Shop) -> None:
    order_id = shop.order("over-1")
    shop.sandbox.hold(order_id, "6.00")
    assert shop.status("over-1") is PaymentStatus.NEEDS_REVIEW
    shop.sandbox.pay(order_id)  # the merchant accepts it
    assert shop.status("over-1") is PaymentStatus.PAID
    assert shop.heard.steps("over-1") == [("pending", "needs_review"), ("needs_review", "paid")]
