"""Create, query and close: the bodies sent and the orders read back."""

from __future__ import annotations

import decimal
import json
import re
import string
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import payments_core
from payments_binance import BinancePayProvider, protocol
from payments_binance.orders import CreateOptions, goods_name
from payments_binance.orders import create_body as create_order_body
from payments_binance.trade_no import merchant_trade_no
from payments_core import (
    ConfigurationError,
    HttpResponse,
    Money,
    Order,
    OrderRequest,
    PaymentStatus,
    ProviderContext,
    ProviderError,
    ProviderSettings,
    ValidationError,
)

from .conftest import (
    API_KEY,
    API_SECRET,
    START,
    FakeClock,
    MockBinance,
    envelope,
    ok,
    refusal,
)

TRADE_NO = re.compile(r"[A-Za-z0-9]{1,32}")
REFERENCE_CHARS = string.ascii_letters + string.digits + "-_.:/#@+="
CREATED = {
    "prepayId": 29383937493038367292,
    "terminalType": "WEB",
    "expireTime": 1714568400000,
    "qrcodeLink": "https://public.bnbstatic.com/static/payment/x.jpg",
    "qrContent": "https://app.binance.com/qr/dplk12345",
    "checkoutUrl": "https://pay.binance.com/en/checkout/abc",
    "deeplink": "bnc://app.binance.com/payment/secpay?tempToken=abc",
    "universalUrl": "https://app.binance.com/payment/secpay?linkToken=abc",
    "currency": "USDT",
    "totalFee": Decimal("1.00000000"),
    "fiatCurrency": "USD",
    "fiatAmount": Decimal("1.00"),
}


def provider(**settings: str) -> BinancePayProvider:
    values = {"api_key": API_KEY, "api_secret": API_SECRET, **settings}
    context = ProviderContext("binance", ProviderSettings("binance", overrides=values), FakeClock())
    return BinancePayProvider(context)


def create_body(request: OrderRequest, **settings: str) -> dict[str, Any]:
    sent = next(provider(**settings).create_order(request=request))
    body: dict[str, Any] = json.loads(sent.content, parse_float=Decimal)
    return body


def seed_request(**changes: Any) -> OrderRequest:
    """LeadsCalendar's booking: 1.00 USD, reference ``booking-42``; ``changes`` override."""
    values: dict[str, Any] = {
        "reference": "booking-42",
        "price": Money("1.00", "USD"),
        "callback_url": "https://leadscalendar.example/payments/binance",
        **changes,
    }
    return OrderRequest(**values)


def test_a_usd_booking_becomes_the_documented_fiat_priced_create_body() -> None:
    body = create_body(
        seed_request(
            return_url="https://leadscalendar.example/paid",
            cancel_url="https://leadscalendar.example/cancelled",
            expires_at=START + timedelta(minutes=30),
            description="Booking with Dr. Who",
        )
    )
    assert body == {
        "env": {"terminalType": "WEB"},
        "merchantTradeNo": merchant_trade_no("booking-42"),
        "description": "Booking with Dr. Who",
        "goodsDetails": [
            {
                "goodsType": "02",
                "goodsCategory": "Z000",
                "referenceGoodsId": "booking-42",
                "goodsName": "Booking with Dr. Who",
            }
        ],
        "fiatAmount": Decimal("1.00"),
        "fiatCurrency": "USD",
        "returnUrl": "https://leadscalendar.example/paid",
        "cancelUrl": "https://leadscalendar.example/cancelled",
        "orderExpireTime": 1714566600000,
        "webhookUrl": "https://leadscalendar.example/payments/binance",
        "passThroughInfo": "payments:price=1.00 USD",  # read back when recovering by query
    }


def test_amount_goes_out_as_an_exact_json_number() -> None:
    sent = next(provider().create_order(request=seed_request(price=Money("0.10", "USD"))))
    assert b'"fiatAmount":0.10,' in sent.content


def test_crypto_price_uses_currency_and_order_amount() -> None:
    body = create_body(seed_request(price=Money("12.34567891", "USDT")))
    assert body["currency"] == "USDT"
    assert body["orderAmount"] == Decimal("12.34567891")
    assert "fiatCurrency" not in body
    assert "fiatAmount" not in body


def test_terminal_type_and_goods_category_are_configurable() -> None:
    body = create_body(seed_request(), terminal_type="APP", goods_category="6000")
    assert body["env"] == {"terminalType": "APP"}
    assert body["goodsDetails"][0]["goodsCategory"] == "6000"


def test_empty_description_gets_a_default_and_goods_name_drops_forbidden_chars() -> None:
    assert create_body(seed_request())["description"] == "Payment booking-42"
    assert goods_name('Say "hi" \\ to ☕ Café 🎉!') == "Say hi to Café !"


@pytest.mark.parametrize("field", ["callback_url", "return_url", "cancel_url"])
def test_url_over_256_characters_is_refused_naming_the_field(field: str) -> None:
    long_url = "https://leadscalendar.example/" + "a" * 240
    with pytest.raises(ValidationError) as caught:
        create_body(seed_request(**{field: long_url}))
    assert caught.value.field == field


def test_expiry_in_the_past_is_refused() -> None:
    with pytest.raises(ValidationError) as caught:
        create_body(seed_request(expires_at=START - timedelta(seconds=1)))
    assert caught.value.field == "expires_at"


def test_a_currency_binance_does_not_take_is_refused_before_sending() -> None:
    payments_core.register_currency("TESTDEC", 10, crypto=True)
    with pytest.raises(ValidationError) as caught:
        create_body(seed_request(price=Money("1.0000000001", "TESTDEC")))
    assert caught.value.field == "price.currency"
    assert "USD" in caught.value.reason


def test_an_expiry_beyond_the_default_maximum_of_one_hour_is_refused() -> None:
    with pytest.raises(ValidationError) as caught:
        create_body(seed_request(expires_at=START + timedelta(hours=1, seconds=1)))
    assert caught.value.field == "expires_at"
    assert create_body(seed_request(expires_at=START + timedelta(hours=1))) is not None


def test_an_expiry_beyond_the_configured_maximum_is_refused() -> None:
    fifteen_days = str(15 * 24 * 3600)
    with pytest.raises(ValidationError) as caught:
        create_body(
            seed_request(expires_at=START + timedelta(days=15, seconds=1)),
            max_order_expiry=fifteen_days,
        )
    assert caught.value.field == "expires_at"
    assert create_body(
        seed_request(expires_at=START + timedelta(days=15)), max_order_expiry=fifteen_days
    )["orderExpireTime"]


def test_create_answer_becomes_an_order_with_every_link() -> None:
    operation = provider().create_order(request=seed_request())
    next(operation)
    with pytest.raises(StopIteration) as done:
        operation.send(HttpResponse(200, {}, envelope(CREATED)))
    order: Order = done.value.value
    assert order.provider_order_id == "29383937493038367292"
    assert order.provider_reference == merchant_trade_no("booking-42")
    assert order.status is PaymentStatus.PENDING
    assert order.amount == Money("1.00", "USD")
    assert order.settlement == Money("1.00000000", "USDT")
    assert order.checkout_url == CREATED["checkoutUrl"]
    assert order.links == {
        "qr_image": CREATED["qrcodeLink"],
        "qr_data": CREATED["qrContent"],
        "app": CREATED["deeplink"],
        "web": CREATED["universalUrl"],
    }
    assert order.expires_at == datetime(2024, 5, 1, 13, 0, tzinfo=UTC)


#: Each order ``status`` of query-order v2 (reference section 4), in the core's words.
QUERIED_STATUSES = {
    "INITIAL": PaymentStatus.PENDING,
    "PENDING": PaymentStatus.PENDING,
    "PAID": PaymentStatus.PAID,
    "CANCELED": PaymentStatus.CLOSED,
    "ERROR": PaymentStatus.FAILED,
    "REFUNDING": PaymentStatus.PAID,
    "REFUNDED": PaymentStatus.PARTIALLY_REFUNDED,
    "FULL_REFUNDED": PaymentStatus.REFUNDED,
    "EXPIRED": PaymentStatus.EXPIRED,
}


@pytest.mark.parametrize(("status", "expected"), QUERIED_STATUSES.items())
def test_query_status_maps_to_payment_status(
    status: str, expected: PaymentStatus, payments: payments_core.Payments, binance: MockBinance
) -> None:
    data = {
        "prepayId": "123",
        "merchantTradeNo": merchant_trade_no("booking-42"),
        "status": status,
        "currency": "USDT",
        "orderAmount": "1.00000000",
        "transactionId": "M_R_1",
    }
    binance.queue(protocol.PATH_QUERY_ORDER, ok(data))
    order = payments.query_order("booking-42")
    assert order is not None
    assert order.status is expected
    assert order.amount == Money("1.00000000", "USDT")
    (sent,) = binance.sent(protocol.PATH_QUERY_ORDER)
    assert json.loads(sent.content) == {"merchantTradeNo": merchant_trade_no("booking-42")}


def test_query_of_an_unknown_order_is_none(
    payments: payments_core.Payments, binance: MockBinance
) -> None:
    binance.queue(protocol.PATH_QUERY_ORDER, refusal("400202"))
    assert payments.query_order("never-created") is None


def test_close_sends_the_trade_no_and_reports_acceptance(
    payments: payments_core.Payments, binance: MockBinance
) -> None:
    binance.queue(protocol.PATH_CLOSE_ORDER, ok(True))
    assert payments.close_order("booking-42") is True
    (sent,) = binance.sent(protocol.PATH_CLOSE_ORDER)
    assert json.loads(sent.content) == {"merchantTradeNo": merchant_trade_no("booking-42")}


def test_close_of_a_paid_order_is_an_invalid_state(
    payments: payments_core.Payments, binance: MockBinance
) -> None:
    binance.queue(protocol.PATH_CLOSE_ORDER, refusal("400204", status=400))
    with pytest.raises(ProviderError) as caught:
        payments.close_order("booking-42")
    assert caught.value.classification is not None
    assert caught.value.classification.category is payments_core.ErrorCategory.INVALID_STATE


def test_provider_loads_without_credentials_and_refuses_operations() -> None:
    context = ProviderContext("binance", ProviderSettings("binance"), FakeClock())
    bare = BinancePayProvider(context)
    assert bare.describe_provider().name == "binance"
    with pytest.raises(ConfigurationError, match="BINANCE_PAY_API_SECRET"):
        bare.create_order(request=seed_request())


def test_credentials_and_base_url_come_from_the_environment() -> None:
    environ = {
        "BINANCE_PAY_API_KEY": "env-key",
        "BINANCE_PAY_API_SECRET": "env-secret-value",
        "BINANCE_PAY_BASE_URL": "http://127.0.0.1:9999/",
    }
    context = ProviderContext("binance", ProviderSettings("binance", environ=environ), FakeClock())
    sent = next(BinancePayProvider(context).query_order(reference="r"))
    assert sent.url == "http://127.0.0.1:9999" + protocol.PATH_QUERY_ORDER
    assert sent.headers[protocol.HEADER_CERTIFICATE_SN] == "env-key"


@pytest.mark.parametrize(
    ("key", "value"),
    [("terminal_type", "KIOSK"), ("timestamp_tolerance", "-1"), ("base_url", "ftp://x")],
)
def test_invalid_setting_is_a_configuration_error(key: str, value: str) -> None:
    with pytest.raises(ConfigurationError, match=key):
        provider(**{key: value}).query_order(reference="r")


@given(st.text(REFERENCE_CHARS, min_size=1, max_size=128))
def test_merchant_trade_no_is_valid_and_deterministic(reference: str) -> None:
    trade_no = merchant_trade_no(reference)
    assert TRADE_NO.fullmatch(trade_no)
    assert merchant_trade_no(reference) == trade_no


def test_merchant_trade_no_is_stable_forever() -> None:
    # Pinned: changing the derivation would orphan every order created before the change.
    assert merchant_trade_no("booking-12345") == "booking1233h7d369lPootWnYO2Z1tDe"


@given(st.lists(st.text(REFERENCE_CHARS, min_size=1, max_size=40), unique=True, max_size=50))
def test_different_references_get_different_trade_numbers(references: list[str]) -> None:
    assert len({merchant_trade_no(r) for r in references}) == len(references)


amounts = st.decimals(
    min_value=Decimal("0.01"), max_value=Decimal("99999"), places=2, allow_nan=False
)
prices = st.one_of(
    amounts.map(lambda a: Money(a, "USD")),
    st.decimals(min_value=Decimal("0.00000001"), max_value=Decimal("9999"), places=8).map(
        lambda a: Money(a, "USDT")
    ),
)
requests = st.builds(
    OrderRequest,
    reference=st.text(REFERENCE_CHARS, min_size=1, max_size=128),
    price=prices,
    callback_url=st.sampled_from(
        ["https://leadscalendar.example/cb", "http://127.0.0.1:8000/binance?x=1"]
    ),
    description=st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=256),
    expires_at=st.none() | st.integers(1, 3600).map(lambda s: START + timedelta(seconds=s)),
)


@given(requests)
def test_any_valid_request_yields_a_body_within_the_field_rules(request: OrderRequest) -> None:
    body = create_body(request)
    assert TRADE_NO.fullmatch(body["merchantTradeNo"])
    assert body["env"]["terminalType"] in protocol.TERMINAL_TYPES
    assert body["description"].strip()
    (goods,) = body["goodsDetails"]
    assert goods["goodsType"] in protocol.GOODS_TYPES
    assert goods["goodsCategory"] in protocol.GOODS_CATEGORIES
    assert goods["referenceGoodsId"]
    assert goods["goodsName"]
    assert len(goods["goodsName"]) <= 256
    assert not set(goods["goodsName"]) & {"\\", '"'}
    assert all(ord(ch) < 0x1F000 and not 0x2600 <= ord(ch) <= 0x27BF for ch in goods["goodsName"])
    amount_key = "fiatAmount" if "fiatCurrency" in body else "orderAmount"
    assert ("currency" in body) != ("fiatCurrency" in body)
    amount = body[amount_key]
    assert isinstance(amount, Decimal)
    assert amount >= Decimal("0.00000001")
    exponent = amount.as_tuple().exponent
    assert isinstance(exponent, int)
    assert -exponent <= 8


def test_check_connection_fetches_the_certificates_and_nothing_else() -> None:
    operation = provider().check_connection()
    request = next(operation)
    assert request.url == protocol.DEFAULT_BASE_URL + protocol.PATH_CERTIFICATES
    assert request.content == b"{}"
    certificates = [{"certSerial": "A", "certPublic": "pem"}, {"certSerial": "B", "certPublic": ""}]
    with pytest.raises(StopIteration) as done:
        operation.send(HttpResponse(200, {}, envelope(certificates)))
    assert done.value.value == "2 webhook certificate(s) from https://bpay.binanceapi.com"


def test_the_body_does_not_depend_on_the_callers_decimal_context() -> None:
    with decimal.localcontext(prec=3):
        body = create_body(seed_request(price=Money("1234.50", "USD")))
    assert body["fiatAmount"] == Decimal("1234.50")


def test_support_pay_currency_is_sent_when_the_merchant_sets_it() -> None:
    assert "supportPayCurrency" not in create_body(seed_request())
    body = create_body(seed_request(), support_pay_currency=" USDT, BNB ")
    assert body["supportPayCurrency"] == "USDT,BNB"


@pytest.mark.parametrize("value", ["usdt", "USDT;BNB", "USDT,,BNB", "X"])
def test_a_malformed_support_pay_currency_setting_is_a_configuration_error(value: str) -> None:
    with pytest.raises(ConfigurationError, match="support_pay_currency"):
        create_body(seed_request(), support_pay_currency=value)


def _options_body(options: CreateOptions, **settings: str) -> dict[str, Any]:
    binance = provider(**settings)
    body = create_order_body(seed_request(), binance._client().settings, START, options=options)
    assert isinstance(body, dict)
    return body


def test_per_order_options_reach_the_body() -> None:
    body = _options_body(
        CreateOptions(support_pay_currency="BNB", order_client_ip="2001:db8::1"),
        support_pay_currency="USDT",
    )
    assert body["supportPayCurrency"] == "BNB"
    assert body["env"] == {"terminalType": "WEB", "orderClientIp": "2001:db8::1"}
    merchant_wide = _options_body(
        CreateOptions(order_client_ip="203.0.113.9"), support_pay_currency="USDT"
    )
    assert merchant_wide["supportPayCurrency"] == "USDT"


@pytest.mark.parametrize(
    ("options", "field"),
    [
        (CreateOptions(order_client_ip="300.1.1.1"), "order_client_ip"),
        (CreateOptions(order_client_ip="example.com"), "order_client_ip"),
        (CreateOptions(support_pay_currency="usdt"), "support_pay_currency"),
    ],
)
def test_a_malformed_option_is_refused_naming_it(options: CreateOptions, field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        _options_body(options)
    assert caught.value.field == field
