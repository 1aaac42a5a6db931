"""The LeadsCalendar guide's example app, run against the sandbox over loopback.

What it must show: a booking is confirmed only after the provider's verified callback is
committed, never before it and never on a forged one.
"""

from __future__ import annotations

import importlib.util
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

import httpx
import pytest

from payments_core import Payments, PaymentStatus, ProviderSandbox, StatusChange, hookimpl
from payments_core.ledger import open_ledger
from payments_core.serving import BackgroundServer
from tests.installed import installed_sandbox

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "leadscalendar_app.py"


def load_example() -> ModuleType:
    """Import the example from docs/examples, where the guide includes it from."""
    spec = importlib.util.spec_from_file_location("leadscalendar_app", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class PaidSeen:
    """Sets ``paid`` after every other ``payment_status_changed`` hook has run."""

    def __init__(self) -> None:
        self.paid = threading.Event()

    @hookimpl(trylast=True)  # after the app's own hook, so the booking is confirmed by then
    def payment_status_changed(self, change: StatusChange) -> None:
        if change.new_status is PaymentStatus.PAID:
            self.paid.set()


@contextmanager
def served(sandbox: ProviderSandbox, tmp_path: Path, seen: PaidSeen) -> Iterator[httpx.Client]:
    """The example app on loopback against ``sandbox``, with ``seen`` hearing its changes."""
    example = load_example()
    bookings = example.Bookings()
    payments = Payments(
        ledger=open_ledger(f"sqlite:///{tmp_path / 'ledger.sqlite3'}"),
        provider_settings={"binance": sandbox.settings},
        plugins=(example.ConfirmPaidBookings(bookings), seen),
    )
    with (
        BackgroundServer(example.create_app(payments, bookings)) as server,
        httpx.Client(base_url=server.url) as client,
    ):
        yield client


@pytest.fixture
def sandbox() -> Iterator[ProviderSandbox]:
    with installed_sandbox("binance") as running:
        yield running


def test_a_booking_is_confirmed_only_after_the_verified_callback(
    sandbox: ProviderSandbox, tmp_path: Path
) -> None:
    seen = PaidSeen()
    with served(sandbox, tmp_path, seen) as client:
        created = client.post("/bookings", json={"title": "Intro call"})
        assert created.status_code == 201, created.text
        booking = created.json()
        assert booking["status"] == "awaiting_payment"
        assert booking["checkout_url"] == sandbox.checkout_url(booking["order_id"])

        forged = client.post(
            "/payments/callbacks/binance",
            content=json.dumps({"bizType": "PAY", "bizStatus": "PAY_SUCCESS", "data": "{}"}),
            headers={"content-type": "application/json"},
        )
        assert forged.status_code >= 400
        assert client.get(f"/bookings/{booking['booking_id']}").json()["status"] == (
            "awaiting_payment"
        )

        sandbox.pay(booking["order_id"])
        assert seen.paid.wait(10), "the verified callback never reached the ledger"

        assert client.get(f"/bookings/{booking['booking_id']}").json()["status"] == "confirmed"
        assert client.get("/bookings/booking-none-such").status_code == 404


class LoseFirstCreateAnswer(httpx.AsyncBaseTransport):
    """Real HTTP, except that the first create's answer is lost after Binance stored it."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.lost = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if request.url.path.endswith("/v3/order") and not self.lost:
            self.lost = True
            await response.aread()
            await response.aclose()
            raise httpx.ReadTimeout("the answer was lost", request=request)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


def test_a_booking_whose_payment_link_was_lost_is_cancelled_and_its_order_closed(
    sandbox: ProviderSandbox, tmp_path: Path
) -> None:
    example = load_example()
    bookings = example.Bookings()
    payments = Payments(
        ledger=open_ledger(f"sqlite:///{tmp_path / 'ledger.sqlite3'}"),
        provider_settings={"binance": sandbox.settings},
        plugins=(example.ConfirmPaidBookings(bookings),),
        async_transport=LoseFirstCreateAnswer(),
    )
    with (
        BackgroundServer(example.create_app(payments, bookings)) as server,
        httpx.Client(base_url=server.url) as client,
    ):
        answer = client.post("/bookings", json={"title": "Intro call"})
        assert answer.status_code == 503, answer.text
        assert "book again" in answer.json()["error"]
        booking_id = answer.json()["booking_id"]
        assert client.get(f"/bookings/{booking_id}").json()["status"] == "cancelled"
    with Payments(provider_settings={"binance": sandbox.settings}) as check:
        order = check.query_order(booking_id, provider="binance")
    assert order is not None
    assert order.status is PaymentStatus.CLOSED  # recovered by a query, then closed: unpayable


def test_cancelling_a_paid_booking_refunds_it_once(
    sandbox: ProviderSandbox, tmp_path: Path
) -> None:
    seen = PaidSeen()
    with served(sandbox, tmp_path, seen) as client:
        booking = client.post("/bookings", json={"title": "Intro call"}).json()
        sandbox.pay(booking["order_id"])
        assert seen.paid.wait(10), "the verified callback never reached the ledger"
        path = f"/bookings/{booking['booking_id']}/cancel"

        cancelled = client.post(path)
        again = client.post(path)  # a retried cancel: the same refund, not a second

        assert cancelled.status_code == 200, cancelled.text
        assert cancelled.json()["status"] == "cancelled"
        assert cancelled.json()["refund"] == "succeeded"
        assert again.status_code == 200, again.text
        assert client.get(f"/bookings/{booking['booking_id']}").json()["status"] == "cancelled"
        unpaid = client.post("/bookings", json={"title": "Another"}).json()
        closed = client.post(f"/bookings/{unpaid['booking_id']}/cancel")
        assert closed.json()["status"] == "cancelled"
        assert "refund" not in closed.json()
    with Payments(provider_settings={"binance": sandbox.settings}) as check:
        order = check.query_order(booking["booking_id"], provider="binance")
    assert order is not None
    assert order.status is PaymentStatus.REFUNDED
    made = [r for r in sandbox.sandbox.refunds if r.prepay_id == booking["order_id"]]  # type: ignore[attr-defined]
    assert len(made) == 1
