"""A shop with a ledger (SQLite and PostgreSQL), the Binance Pay sandbox, and its console.

``desk`` is the application side: a ``Payments`` facade with a ledger whose clock the test
moves, the callback app on loopback where the sandbox delivers its signed webhooks, an
application plugin that records every announced change, and the console app, reached through
an HTTP client over loopback. Who is behind a request is the ``X-Test-Operator`` header: ``alice``
may act, ``bob`` may only look, anyone else is refused.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import httpx
import pytest
from starlette.requests import Request

from payments_binance.sandbox_bridge import open_sandbox
from payments_core import (
    Money,
    Order,
    OrderRequest,
    Payments,
    PaymentStatus,
    StatusChange,
    hookimpl,
    open_ledger,
)
from payments_core.asgi import create_callback_app
from payments_core.console import Operator, create_console_app
from payments_core.ledger import ApplyResult, Ledger
from payments_core.models import PaymentEvent, Refund, RefundRequest
from payments_core.serving import BackgroundServer
from tests.ledger.conftest import ledger_url, postgres_url  # noqa: F401 - fixtures

OPERATORS = {
    "alice": Operator(name="alice@support", may_act=True),
    "bob": Operator(name="bob@support"),
}


def by_header(request: Request) -> Operator | None:
    """The test's ``authorize``: the operator the ``X-Test-Operator`` header (or, for a
    browser, the ``test-operator`` cookie) names."""
    named = request.headers.get("x-test-operator") or request.cookies.get("test-operator", "")
    return OPERATORS.get(named)


class Clock:
    """The ledger's clock, moved by the test."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


class Announcements:
    """The application: it records every change announced to it."""

    def __init__(self) -> None:
        self.changes: list[StatusChange] = []

    @hookimpl
    def payment_status_changed(self, change: StatusChange) -> None:
        self.changes.append(change)


#: The partial refund's steps on :meth:`Desk.eventful_order`'s timeline. Binance answers the
#: refund and sends its notice at once, so either may reach the ledger first: the notice settles
#: the refund (the answer then finds it settled and records nothing), or the answer does and the
#: notice is recorded stale.
REFUND_STEPS = (
    [
        "Refund asked: 0.40 USD",
        "Callback received: partially_refunded",
        "Refund succeeded: 0.40 USD",
    ],
    [
        "Refund asked: 0.40 USD",
        "Refund answer: partially_refunded",
        "Callback received: partially_refunded",
        "Refund succeeded: 0.40 USD",
    ],
)


@attrs.define
class Desk:
    """The shop as its support staff see it: see the module docstring."""

    payments: Payments
    callback_url: str
    sandbox: Any
    clock: Clock
    app: Announcements
    console: httpx.Client

    def order(self, reference: str, price: str = "1.00") -> Order:
        request = OrderRequest(
            reference=reference,
            price=Money(price, "USD"),
            callback_url=self.callback_url,
            description="LeadsCalendar: 30-minute intro call",
        )
        return self.payments.create_order(request, provider="binance")

    def paid(self, reference: str, price: str = "1.00") -> Order:
        """An order, paid in the sandbox, whose callback the ledger has applied."""
        order = self.order(reference, price)
        self.sandbox.pay(order.provider_order_id)
        self.sandbox.sandbox.wait_for_webhooks_sync(timeout=20)
        found = self.status(reference)
        assert found is PaymentStatus.PAID, found
        return order

    def status(self, reference: str) -> PaymentStatus | None:
        found = self.ledger.get_order("binance", reference)
        return None if found is None else found.status

    @property
    def ledger(self) -> Ledger:
        assert self.payments.ledger is not None
        return self.payments.ledger

    def waiting_refund(
        self, reference: str, refund_reference: str, amount: str, reason: str
    ) -> None:
        """A refund of ``amount`` USD reserved in the ledger and never sent: it waits."""
        refund = RefundRequest(
            reference=reference,
            refund_reference=refund_reference,
            amount=Money(amount, "USD"),
            reason=reason,
        )
        self.ledger.reserve_refund("binance", refund)

    def eventful_order(self, reference: str) -> tuple[Order, Refund]:
        """The order of the timeline tests: paid; its paid callback delivered again
        (acknowledged, not applied twice) and forged (refused: the signature is not Binance's);
        five minutes later, 0.40 USD of it refunded, and the refund's notice delivered too."""
        order = self.paid(reference)
        delivered = self.sandbox.sandbox.webhook_log[-1]
        headers = dict(delivered.headers)
        again = httpx.post(self.callback_url, content=delivered.body, headers=headers)
        assert again.status_code == 200
        forged_body = delivered.body.replace(b"PAY_SUCCESS", b"PAY_CLOSED")
        forged = httpx.post(self.callback_url, content=forged_body, headers=headers)
        assert forged.status_code >= 400
        self.clock.advance(minutes=5)
        partial = RefundRequest(
            reference=reference,
            refund_reference="r-partial",
            amount=Money("0.40", "USD"),
            reason="late cancellation",
        )
        refund = self.payments.refund_order(partial, provider="binance")
        self.sandbox.sandbox.wait_for_webhooks_sync(timeout=20)
        return order, refund

    def stranger_paid(self, provider_order_id: str, provider_reference: str) -> ApplyResult:
        """A paid event about an order the ledger does not hold, applied (the ledger flags it)."""
        event_id = f"binance:{provider_order_id}:PAY_SUCCESS"
        return self.ledger.apply_event(
            self._paid_event(event_id, provider_order_id, provider_reference)
        )

    def paid_unannounced(self, reference: str, event_id: str) -> Order:
        """An order paid in the ledger alone, its change committed and never announced: as if the
        process died before the hook."""
        order = self.order(reference)
        paid = self._paid_event(event_id, order.provider_order_id, order.provider_reference)
        self.ledger.apply_event(paid)
        return order

    @staticmethod
    def _paid_event(event_id: str, provider_order_id: str, provider_reference: str) -> PaymentEvent:
        return PaymentEvent(
            provider="binance",
            event_id=event_id,
            status=PaymentStatus.PAID,
            provider_order_id=provider_order_id,
            provider_reference=provider_reference,
        )

    def get(self, path: str, operator: str = "alice", **params: str) -> httpx.Response:
        return self.console.get(path, params=params or None, headers={"x-test-operator": operator})

    def post(self, path: str, data: dict[str, str], operator: str = "alice") -> httpx.Response:
        return self.console.post(path, data=data, headers={"x-test-operator": operator})


@pytest.fixture
def desk(ledger_url: str) -> Iterator[Desk]:  # noqa: F811 - the fixture imported above
    with open_desk(ledger_url) as opened:
        yield opened


@contextmanager
def open_desk(ledger_url: str, page_size: int = 3) -> Iterator[Desk]:  # noqa: F811
    """The shop over the ledger at ``ledger_url``; see the module docstring."""
    clock = Clock()
    announcements = Announcements()
    with (
        open_sandbox() as sandbox,
        Payments(
            ledger=open_ledger(ledger_url, clock=clock),
            provider_settings={"binance": sandbox.settings},
            plugins=(announcements,),
        ) as payments,
        BackgroundServer(create_callback_app(payments), lifespan="off") as callbacks,
        BackgroundServer(
            create_console_app(payments, authorize=by_header, clock=clock, page_size=page_size),
            lifespan="off",
        ) as console,
        httpx.Client(base_url=console.url, timeout=30) as client,
    ):
        yield Desk(
            payments=payments,
            callback_url=f"{callbacks.url}/callbacks/binance",
            sandbox=sandbox,
            clock=clock,
            app=announcements,
            console=client,
        )
