"""A create whose outcome is unknown, or answered "duplicate", is recovered by a query alone."""

from __future__ import annotations

import asyncio
import json

import attrs
import httpx
import pytest

import payments_core
from payments_binance import BinancePayProvider, protocol
from payments_binance.trade_no import merchant_trade_no
from payments_core import Money, OrderRequest, PaymentStatus

from .conftest import API_KEY, API_SECRET, FakeClock, MockBinance, envelope, ok, refusal

PREPAY_ID = "383729303729303729"  # above 2**53
REQUEST = OrderRequest(
    reference="booking-2024-0042",
    price=Money("1.00", "USD"),
    callback_url="https://leadscalendar.example/payments/binance",
)


def _queried_order(**more: str) -> httpx.Response:
    return httpx.Response(
        200,
        content=envelope(
            {
                "merchantId": 98765987,
                "prepayId": int(PREPAY_ID),  # as a JSON number: must keep its digits
                "merchantTradeNo": merchant_trade_no(REQUEST.reference),
                "status": "INITIAL",
                "currency": "USDT",
                "orderAmount": "1.00000000",
                "createTime": 1714564800000,
                **more,
            }
        ),
    )


@pytest.mark.parametrize(
    ("requested", "noted", "refused"),
    [
        ("1.00", "payments:price=1.00 USD", False),
        ("50.00", "payments:price=1.00 USD", True),  # the reference was used at another price
        ("50.00", None, False),  # created without a note: the price cannot be compared
        ("50.00", "someone else's note", False),
    ],
)
def test_a_recovered_fiat_order_is_checked_against_the_price_it_noted(
    requested: str,
    noted: str | None,
    refused: bool,
    payments: payments_core.Payments,
    binance: MockBinance,
) -> None:
    request = attrs.evolve(REQUEST, price=Money(requested, "USD"))
    duplicate = refusal("400201", "merchantTradeNo duplicated", status=400)
    binance.queue(protocol.PATH_CREATE_ORDER_V3, duplicate)
    note = {} if noted is None else {"passThroughInfo": noted}
    binance.queue(protocol.PATH_QUERY_ORDER, _queried_order(**note))

    if refused:
        with pytest.raises(payments_core.ValidationError) as caught:
            payments.create_order(request)
        assert caught.value.field == "reference"
        assert "1.00 USD" in caught.value.reason
    else:
        order = payments.create_order(request)
        assert order.amount == request.price
        assert order.settlement == Money("1.00000000", "USDT")
    assert binance.count(protocol.PATH_CREATE_ORDER_V3) == 1


@pytest.mark.parametrize(
    "first_answer",
    [
        refusal("400201", "merchantTradeNo duplicated", status=400),
        httpx.ReadTimeout("no answer"),
        httpx.RemoteProtocolError("connection closed mid-answer"),
        httpx.Response(200, content=b"<html>proxy error</html>"),
        ok({"checkoutUrl": "no prepayId"}),
        ok({"prepayId": "1", "expireTime": 10**30}),
    ],
    ids=[
        "duplicate-400201",
        "read-timeout",
        "response-lost",
        "not-an-envelope",
        "data-without-prepay-id",
        "expire-time-out-of-range",
    ],
)
def test_create_is_recovered_by_query_without_a_second_create(
    first_answer: httpx.Response | Exception,
    payments: payments_core.Payments,
    binance: MockBinance,
) -> None:
    binance.queue(protocol.PATH_CREATE_ORDER_V3, first_answer)
    binance.queue(protocol.PATH_QUERY_ORDER, _queried_order())

    order = payments.create_order(REQUEST)

    assert binance.count(protocol.PATH_CREATE_ORDER_V3) == 1
    assert binance.count(protocol.PATH_QUERY_ORDER) == 1
    assert order.provider_order_id == PREPAY_ID
    assert order.reference == REQUEST.reference
    assert order.status is PaymentStatus.PENDING
    (query,) = binance.sent(protocol.PATH_QUERY_ORDER)
    (create,) = binance.sent(protocol.PATH_CREATE_ORDER_V3)
    trade_no = json.loads(query.content)["merchantTradeNo"]
    assert trade_no == json.loads(create.content)["merchantTradeNo"]


def test_query_finding_nothing_lets_the_create_be_sent_again(
    payments: payments_core.Payments, binance: MockBinance
) -> None:
    binance.queue(
        protocol.PATH_CREATE_ORDER_V3, httpx.ReadTimeout("no answer"), ok({"prepayId": PREPAY_ID})
    )
    binance.queue(protocol.PATH_QUERY_ORDER, refusal("400202"))

    order = payments.create_order(REQUEST)

    assert order.provider_order_id == PREPAY_ID
    assert binance.count(protocol.PATH_CREATE_ORDER_V3) == 2
    assert binance.count(protocol.PATH_QUERY_ORDER) == 1


def test_async_create_recovers_the_same_way(binance: MockBinance, clock: FakeClock) -> None:
    binance.queue(protocol.PATH_CREATE_ORDER_V3, httpx.ReadTimeout("no answer"))
    binance.queue(protocol.PATH_QUERY_ORDER, _queried_order())

    async def create() -> payments_core.Order:
        async with payments_core.Payments(
            payments_core.Config(),
            providers={"binance": BinancePayProvider},
            load_entry_points=False,
            provider_settings={"binance": {"api_key": API_KEY, "api_secret": API_SECRET}},
            async_transport=httpx.MockTransport(binance),
            retry=payments_core.RetryPolicy(async_sleep=_no_wait),
            clock=clock,
        ) as payments:
            return await payments.create_order_async(REQUEST)

    order = asyncio.run(create())

    assert order.provider_order_id == PREPAY_ID
    assert binance.count(protocol.PATH_CREATE_ORDER_V3) == 1
    assert binance.count(protocol.PATH_QUERY_ORDER) == 1


async def _no_wait(seconds: float) -> None:
    """The policy's sleep, made instant."""


@pytest.mark.parametrize("requested", [Money("50.00", "USDC"), Money("1.00", "USDC")])
def test_a_reference_noted_at_a_price_in_one_currency_is_refused_in_another(
    requested: Money, payments: payments_core.Payments, binance: MockBinance
) -> None:
    duplicate = refusal("400201", "merchantTradeNo duplicated", status=400)
    binance.queue(protocol.PATH_CREATE_ORDER_V3, duplicate)
    noted = _queried_order(passThroughInfo="payments:price=1.00 USD")
    binance.queue(protocol.PATH_QUERY_ORDER, noted)
    with pytest.raises(payments_core.ValidationError) as caught:
        payments.create_order(attrs.evolve(REQUEST, price=requested))
    assert caught.value.field == "reference"


def test_400201_for_a_trade_number_binance_cannot_take_is_not_recovered_by_query() -> None:
    """400201 means "invalid or duplicated": only a valid trade number can be a duplicate."""
    from payments_binance import BinancePayProvider
    from payments_core import HttpResponse, ProviderContext, ProviderSettings

    from .conftest import API_KEY, API_SECRET, FakeClock, failure

    context = ProviderContext(
        "binance",
        ProviderSettings("binance", overrides={"api_key": API_KEY, "api_secret": API_SECRET}),
        FakeClock(),
    )
    provider = BinancePayProvider(context)
    operation = provider._create(provider._client(), REQUEST, {}, "not-a-valid-trade-no!")
    next(operation)
    with pytest.raises(payments_core.ValidationError) as caught:
        operation.send(HttpResponse(400, {}, failure("400201", "merchantTradeNo invalid")))
    assert caught.value.field == "reference"
    assert isinstance(caught.value.__cause__, payments_core.ProviderError)
