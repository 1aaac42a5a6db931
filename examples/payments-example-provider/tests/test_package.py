"""ExamplePay as an installed package: its entry point, and its sandbox served over ASGI."""

from __future__ import annotations

import asyncio
from importlib.metadata import entry_points

import httpx
import pytest
from payments_example import ExampleProvider, wire
from payments_example.sandbox import ExamplePaySandbox, build_app

from payments_core import CallbackVerificationError, Config, Money, OrderRequest, Payments


def test_the_entry_point_names_the_provider_factory() -> None:
    (entry,) = [e for e in entry_points(group="payments.providers") if e.name == "example"]
    assert entry.load() is ExampleProvider


def test_the_core_loads_it_from_the_entry_point_alone() -> None:
    with Payments(Config(providers=("example",))) as payments:
        assert payments.provider_names == ["example"]
        assert payments.describe().display_name == "ExamplePay"


def test_an_order_created_through_the_asgi_app_shows_on_its_checkout_page() -> None:
    sandbox = ExamplePaySandbox(api_key="ex_key_asgi", api_secret="asgi-secret-0123456789")
    request = OrderRequest(
        reference="asgi-1", price=Money("2.50", "EUR"), callback_url="https://m.example/cb"
    )

    async def flow() -> str:
        transport = httpx.ASGITransport(app=build_app(sandbox))
        async with Payments(
            providers={"example": ExampleProvider},
            provider_settings={
                "example": {
                    "base_url": sandbox.base_url,
                    "api_key": sandbox.api_key,
                    "api_secret": sandbox.api_secret,
                }
            },
            load_entry_points=False,
            async_transport=transport,
        ) as payments:
            order = await payments.create_order_async(request)
        async with httpx.AsyncClient(transport=transport, base_url=sandbox.base_url) as client:
            page = await client.get(f"/checkout/{order.provider_order_id}")
        return page.text

    assert "Pay 2.50 EUR" in asyncio.run(flow())


@pytest.mark.parametrize("timestamp", ["9" * 400, "12a", "-5", ""])
def test_a_malformed_callback_timestamp_is_refused_with_a_typed_error(timestamp: str) -> None:
    settings = {"base_url": "http://127.0.0.1:9", "api_key": "ex_key", "api_secret": "s" * 20}
    headers = {wire.HEADER_EVENT_TIMESTAMP: timestamp, wire.HEADER_EVENT_SIGNATURE: "00"}
    with (
        Payments(
            providers={"example": ExampleProvider},
            provider_settings={"example": settings},
            load_entry_points=False,
        ) as payments,
        pytest.raises(CallbackVerificationError) as caught,
    ):
        payments.handle_callback("example", headers, b"{}")
    assert caught.value.reply.status_code == 401
