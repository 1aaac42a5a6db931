"""The Payments facade: one operation for sync and async, and creates that never duplicate."""

from __future__ import annotations

import asyncio
import json
import threading
from collections import Counter
from collections.abc import Callable

import anyio
import attrs
import httpx
import pytest

from payments_core import (
    ConfigurationError,
    ErrorCategory,
    Money,
    Order,
    OrderRequest,
    Payments,
    PaymentStatus,
    PluginError,
    ProviderError,
    ProviderNotFound,
    RequestTimeout,
    ResponseLost,
    RetryPolicy,
    ValidationError,
)
from payments_core.facade import reconciliation_event

from .fakes import EchoProvider

REQUEST = OrderRequest(
    reference="booking-7", price=Money("1.00", "USD"), callback_url="https://app.example/cb"
)


class FakeServer:
    """The provider's side: stores orders by reference; faults can be scripted per call."""

    def __init__(self) -> None:
        self.orders: dict[str, dict[str, str]] = {}
        self.requests: Counter[str] = Counter()
        self.script: list[Callable[[httpx.Request], httpx.Response | None]] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests[request.url.path] += 1
        if self.script:
            answer = self.script.pop(0)(request)
            if answer is not None:
                return answer
        body = json.loads(request.content)
        reference = body["reference"]
        if request.url.path == "/orders":
            if reference in self.orders:
                return httpx.Response(409, json={"error": "duplicate"})
            self.orders[reference] = {**body, "id": f"9{len(self.orders):018d}"}
            return httpx.Response(200, json=self.orders[reference])
        if reference not in self.orders:
            return httpx.Response(404, json={"error": "not found"})
        return httpx.Response(200, json=self.orders[reference])

    def hold(self, amount: str, currency: str, order_id: str = "42") -> None:
        """Hold an order for REQUEST's reference, as one created by an earlier attempt."""
        self.orders["booking-7"] = {
            "reference": "booking-7",
            "amount": amount,
            "currency": currency,
            "id": order_id,
        }


def no_sleep_policy(**kwargs: float) -> RetryPolicy:
    return RetryPolicy(sleep=lambda s: None, async_sleep=_no_async_sleep, **kwargs)  # type: ignore[arg-type]


async def _no_async_sleep(seconds: float) -> None:
    del seconds


def payments_for(server: FakeServer, **kwargs: object) -> Payments:
    kwargs.setdefault("retry", no_sleep_policy())
    return Payments(
        providers={"echo": EchoProvider},
        load_entry_points=False,
        transport=httpx.MockTransport(server.handle),
        async_transport=httpx.MockTransport(server.handle),
        **kwargs,  # type: ignore[arg-type]
    )


def store_then_time_out(server: FakeServer) -> Callable[[httpx.Request], None]:
    def fault(request: httpx.Request) -> None:
        body = json.loads(request.content)
        server.orders[body["reference"]] = {**body, "id": "900000000000000001"}
        raise httpx.ReadTimeout("lost", request=request)

    return fault


def test_a_create_returns_the_order() -> None:
    server = FakeServer()
    with payments_for(server) as payments:
        order = payments.create_order(REQUEST)
    assert order.reference == "booking-7"
    assert order.amount == Money("1.00", "USD")
    assert server.requests == {"/orders": 1}


def test_a_timeout_after_the_order_was_stored_is_recovered_by_a_query() -> None:
    server = FakeServer()
    server.script.append(store_then_time_out(server))
    with payments_for(server) as payments:
        order = payments.create_order(REQUEST)
    assert order.provider_order_id == "900000000000000001"
    assert server.requests == {"/orders": 1, "/orders/query": 1}


def test_a_timeout_before_anything_was_stored_creates_once_after_the_query() -> None:
    server = FakeServer()

    def time_out(request: httpx.Request) -> None:
        raise httpx.ReadTimeout("lost", request=request)

    server.script.append(time_out)
    with payments_for(server) as payments:
        payments.create_order(REQUEST)
    assert server.requests == {"/orders": 2, "/orders/query": 1}
    assert len(server.orders) == 1


def test_a_duplicate_answer_is_recovered_by_a_query_without_a_second_create() -> None:
    server = FakeServer()
    server.hold("1.00", "USD")
    with payments_for(server) as payments:
        order = payments.create_order(REQUEST)
    assert order.provider_order_id == "42"
    assert server.requests == {"/orders": 1, "/orders/query": 1}


@pytest.mark.parametrize("api", ["sync", "async"])
def test_a_duplicate_answer_on_the_last_attempt_still_finds_the_order(api: str) -> None:
    server = FakeServer()

    def time_out_and_apply_later(request: httpx.Request) -> None:
        raise httpx.ReadTimeout("held", request=request)

    def applied_while_querying(request: httpx.Request) -> httpx.Response:
        server.hold("1.00", "USD", "77")
        return httpx.Response(404, json={"error": "not found"})  # the query came too early

    server.script.extend([time_out_and_apply_later, applied_while_querying])
    payments = payments_for(server, retry=no_sleep_policy(max_attempts=2))
    if api == "sync":
        with payments:
            order = payments.create_order(REQUEST)
    else:

        async def main() -> Order:
            async with payments:
                return await payments.create_order_async(REQUEST)

        order = anyio.run(main)
    assert order.provider_order_id == "77"
    # attempt 1: create (timed out); attempt 2, the last: query, create (duplicate), query.
    assert server.requests == {"/orders": 2, "/orders/query": 2}
    assert len(server.orders) == 1


def test_the_final_error_carries_its_classification() -> None:
    server = FakeServer()
    server.script.extend([lambda r: httpx.Response(503)] * 10)
    with payments_for(server) as payments, pytest.raises(ProviderError) as caught:
        payments.create_order(REQUEST)
    classification = caught.value.classification
    assert classification is not None
    assert classification.category is ErrorCategory.PROVIDER_UNAVAILABLE
    assert caught.value.provider == "echo"
    assert server.requests["/orders"] == payments.retry.max_attempts


def test_a_connection_broken_mid_answer_is_an_unknown_outcome() -> None:
    server = FakeServer()

    def reset(request: httpx.Request) -> None:
        raise httpx.RemoteProtocolError("peer closed", request=request)

    server.script.extend([reset] * 10)
    with payments_for(server) as payments, pytest.raises(ResponseLost) as caught:
        payments.query_order("booking-7")
    assert caught.value.classification is not None
    assert caught.value.classification.category is ErrorCategory.OUTCOME_UNKNOWN


def test_the_async_api_runs_the_same_operation() -> None:
    server = FakeServer()
    server.script.append(store_then_time_out(server))

    async def main() -> None:
        async with payments_for(server) as payments:
            order = await payments.create_order_async(REQUEST)
            again = await payments.query_order_async("booking-7")
        assert again == order

    anyio.run(main)
    assert server.requests == {"/orders": 1, "/orders/query": 2}


def test_one_facade_refuses_two_running_event_loops() -> None:
    server = FakeServer()
    payments = payments_for(server, async_http="httpx")
    other = asyncio.new_event_loop()
    serving = threading.Thread(target=other.run_forever, daemon=True)
    serving.start()
    try:
        asyncio.run_coroutine_threadsafe(payments.query_order_async("x"), other).result(10)
        with pytest.raises(ConfigurationError, match="one Payments per event loop"):
            asyncio.run(payments.query_order_async("x"))
        asyncio.run_coroutine_threadsafe(payments.aclose(), other).result(10)
    finally:
        other.call_soon_threadsafe(other.stop)
        serving.join(10)
        other.close()


def test_a_missing_hook_is_a_plugin_error() -> None:
    with payments_for(FakeServer()) as payments, pytest.raises(PluginError, match="close_order"):
        payments.close_order("booking-7")


def test_an_unknown_provider_is_named() -> None:
    with payments_for(FakeServer()) as payments, pytest.raises(ProviderNotFound, match="stripe"):
        payments.create_order(REQUEST, provider="stripe")


def test_the_only_provider_is_the_default() -> None:
    with payments_for(FakeServer()) as payments:
        assert payments.default_provider == "echo"
        assert payments.describe().display_name == "Echo echo"


def test_timeouts_are_request_timeouts() -> None:
    server = FakeServer()

    def slow(request: httpx.Request) -> None:
        raise httpx.ReadTimeout("slow", request=request)

    server.script.extend([slow] * 10)
    with payments_for(server) as payments, pytest.raises(RequestTimeout):
        payments.query_order("x")


def test_a_recovered_order_keeps_the_requested_price() -> None:
    server = FakeServer()
    server.hold("1.00000000", "USDT")
    with payments_for(server) as payments:
        order = payments.create_order(REQUEST)
    assert order.amount == Money("1.00", "USD")
    assert order.provider_order_id == "42"


def test_a_reference_already_used_for_another_price_is_refused() -> None:
    server = FakeServer()
    server.hold("2.00", "USD")
    with payments_for(server) as payments, pytest.raises(ValidationError) as caught:
        payments.create_order(REQUEST)
    assert caught.value.field == "reference"
    assert "2.00 USD" in caught.value.reason


def test_reconciliation_checks_what_the_provider_holds_not_the_price_it_noted() -> None:
    answer = Order(
        provider="binance",
        reference="booking-7",
        provider_order_id="1",
        provider_reference="m1",
        status=PaymentStatus.PAID,
        amount=Money("1.00", "USD"),  # the price the order was created with
        settlement=Money("0.50000000", "USDT"),  # what the provider says it holds
    )
    assert reconciliation_event("binance", answer).amount == answer.settlement
    without = attrs.evolve(answer, settlement=None)
    assert reconciliation_event("binance", without).amount == answer.amount
