"""Create, pay, callback and query against the sandbox over loopback HTTP."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import attrs
import pytest

import payments_core
from payments_binance import BinancePayProvider
from payments_core import CallbackError, Money, OrderRequest, PaymentEvent, PaymentStatus


@attrs.define
class CallbackReceiver:
    """A loopback HTTP endpoint that hands each callback, raw, to ``Payments.handle_callback``."""

    payments: payments_core.Payments
    events: list[PaymentEvent] = attrs.field(factory=list)
    refusals: list[CallbackError] = attrs.field(factory=list)
    arrived: threading.Event = attrs.field(factory=threading.Event)

    def handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                try:
                    result = receiver.payments.handle_callback("binance", dict(self.headers), body)
                except CallbackError as error:
                    receiver.refusals.append(error)
                    reply = error.reply
                else:
                    if result.event is not None:
                        receiver.events.append(result.event)
                    reply = result.reply
                self.send_response(reply.status_code)
                self.send_header("content-type", reply.content_type)
                self.send_header("content-length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)
                receiver.arrived.set()

            def log_message(self, format: str, *args: object) -> None:
                """Quiet: the test asserts on what arrived instead."""

        return Handler


@pytest.fixture
def sandbox() -> Iterator[payments_core.ProviderSandbox]:
    with payments_core.Payments(
        payments_core.Config(), providers={"binance": BinancePayProvider}, load_entry_points=False
    ) as bare:
        opened = bare.provider("binance").open_sandbox()
        assert opened is not None
        with opened as running:
            yield running


def test_create_pay_callback_query_round_trip(sandbox: payments_core.ProviderSandbox) -> None:
    """An order created at the sandbox and paid there is reported paid by callback and query."""
    payments = payments_core.Payments(
        payments_core.Config(),
        providers={"binance": BinancePayProvider},
        load_entry_points=False,
        provider_settings={"binance": sandbox.settings},
        retry=payments_core.RetryPolicy(sleep=lambda _: None),
    )
    receiver = CallbackReceiver(payments)
    server = ThreadingHTTPServer(("127.0.0.1", 0), receiver.handler())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        callback_url = f"http://127.0.0.1:{server.server_address[1]}/binance"
        request = OrderRequest(
            reference="booking-sandbox-1",
            price=Money("1.00", "USD"),
            callback_url=callback_url,
            description="LeadsCalendar booking",
        )
        order = payments.create_order(request)
        assert order.provider_order_id.isdigit()
        assert order.checkout_url == sandbox.checkout_url(order.provider_order_id)
        # The sandbox converts USD to USDT 1:1; the callback must state that settlement.
        assert order.settlement == Money("1.00000000", "USDT")
        assert payments.create_order(request).provider_order_id == order.provider_order_id

        sandbox.pay(order.provider_order_id)
        assert receiver.arrived.wait(10), "the sandbox's callback never arrived"

        assert receiver.refusals == []
        (event,) = receiver.events
        assert event.status is PaymentStatus.PAID
        assert event.provider_order_id == order.provider_order_id
        assert event.provider_reference == order.provider_reference
        assert event.amount == order.settlement
        assert event.paid == order.settlement  # the sandbox's payer pays the order's own asset
        queried = payments.query_order(request.reference)
        assert queried is not None
        assert queried.status is PaymentStatus.PAID
        assert (queried.paid, queried.fee) == (order.settlement, event.fee)
    finally:
        server.shutdown()
        server.server_close()
        payments.close()


@pytest.mark.parametrize("backend", ["httpx", "aiohttp"])
def test_async_calls_from_one_event_loop_after_another(
    sandbox: payments_core.ProviderSandbox, backend: str
) -> None:
    """One facade serves asyncio.run after asyncio.run: no client stays bound to a dead loop."""
    payments = payments_core.Payments(
        payments_core.Config(),
        providers={"binance": BinancePayProvider},
        load_entry_points=False,
        provider_settings={"binance": sandbox.settings},
        async_http=backend,
    )
    request = OrderRequest(
        reference="booking-loops",
        price=Money("1.00", "USD"),
        callback_url="https://app.test/callbacks/binance",
    )
    with payments:
        created = asyncio.run(payments.create_order_async(request))  # asyncio.run per call
        found = asyncio.run(payments.query_order_async("booking-loops"))
    assert found is not None
    assert found.provider_order_id == created.provider_order_id
