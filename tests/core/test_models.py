"""Models: OrderRequest validation per field, and every public model round-trips via cattrs."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import attrs
import pytest
from cattrs.errors import ClassValidationError
from hypothesis import given
from hypothesis import strategies as st

import payments_core
from payments_core import Currency, HttpRequest, HttpResponse, converter, models

VALID: dict[str, Any] = {
    "reference": "booking-42",
    "price": models.Money("1.00", "USD"),
    "callback_url": "https://leadscalendar.example/payments/callbacks/binance",
}


def build(**changes: Any) -> models.OrderRequest:
    return models.OrderRequest(**{**VALID, **changes})


def test_the_booking_order_is_a_pay_of_one_usd() -> None:
    request = build()
    assert request.transaction_type is models.TransactionType.PAY
    assert request.fiat == "USD"
    assert request.price.plain == "1.00"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"reference": ""}, "reference"),
        ({"reference": "x" * 129}, "reference"),
        ({"reference": "has space"}, "reference"),
        ({"reference": 42}, "reference"),
        ({"price": "1.00"}, "price"),
        ({"price": models.Money("0", "USD")}, "price.amount"),
        ({"callback_url": "ftp://x.example/cb"}, "callback_url"),
        ({"callback_url": "/relative"}, "callback_url"),
        ({"callback_url": "https://"}, "callback_url"),
        ({"callback_url": "https://a.example/ x"}, "callback_url"),
        ({"callback_url": "https://a.example:99999/"}, "callback_url"),
        ({"transaction_type": "REFUND"}, "transaction_type"),
        ({"description": "x" * 257}, "description"),
        ({"description": "tab\tinside"}, "description"),
        ({"return_url": "javascript:alert(1)"}, "return_url"),
        ({"cancel_url": "nope"}, "cancel_url"),
        ({"expires_at": datetime(2030, 1, 1)}, "expires_at"),
        ({"expires_at": "2030-01-01"}, "expires_at"),
    ],
)
def test_invalid_fields_are_named(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(models.ValidationError) as caught:
        build(**changes)
    assert caught.value.field == field


def _check_field(field: str, value: object) -> None:
    """Build a request with ``field`` set to ``value``: valid, or an error naming ``field``."""
    try:
        build(**{field: value})
    except models.ValidationError as error:
        assert error.field.split(".")[0] == field, (field, value, error)


texts = st.text(max_size=300) | st.integers() | st.none() | st.binary(max_size=10)
urls = st.builds(
    "{}://{}{}".format,
    st.sampled_from(["http", "https", "ftp", "", "javascript"]),
    st.text(max_size=40),
    st.text(max_size=40),
)


@given(texts | st.from_regex(r"[A-Za-z0-9\-_.:/#@+=]{0,140}", fullmatch=True))
def test_reference_property(value: object) -> None:
    _check_field("reference", value)


@given(
    st.builds(models.Money, st.decimals(min_value=0, max_value=10**6, places=2), st.just("USD"))
    | texts
)
def test_price_property(value: object) -> None:
    _check_field("price", value)


@given(urls | texts)
def test_callback_url_property(value: object) -> None:
    _check_field("callback_url", value)


@given(st.sampled_from(["PAY", "REFUND", ""]) | texts)
def test_transaction_type_property(value: object) -> None:
    _check_field("transaction_type", value)


@given(texts)
def test_description_property(value: object) -> None:
    _check_field("description", value)


@given(urls | texts)
def test_return_url_property(value: object) -> None:
    _check_field("return_url", value)


@given(urls | texts)
def test_cancel_url_property(value: object) -> None:
    _check_field("cancel_url", value)


@given(st.datetimes() | st.datetimes(timezones=st.just(UTC)) | texts)
def test_expires_at_property(value: object) -> None:
    _check_field("expires_at", value)


def test_every_order_request_field_has_a_property_test() -> None:
    tested = {name.removeprefix("test_").removesuffix("_property") for name in globals()}
    assert {f.name for f in attrs.fields(models.OrderRequest)} <= tested


NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
SAMPLES: dict[type, Callable[[], object]] = {
    models.Money: lambda: models.Money("0.00000001", "USDT"),
    models.OrderRequest: lambda: build(
        description="Booking 42", return_url="https://a.example/ok", expires_at=NOW
    ),
    models.Order: lambda: models.Order(
        provider="binance",
        reference="booking-42",
        provider_order_id="29383937493038367292",
        provider_reference="LC0123456789",
        status=models.PaymentStatus.PENDING,
        amount=models.Money("1.00", "USD"),
        checkout_url="https://pay.example/checkout/x",
        links={"qr_image": "https://pay.example/qr.png", "kiosk": "https://pay.example/k"},
        expires_at=NOW + timedelta(hours=1),
        paid=models.Money("0.00001500", "BTC"),
        fee=models.Money("0.01", "USD"),
    ),
    models.PaymentEvent: lambda: models.PaymentEvent(
        provider="binance",
        event_id="binance:1:PAY_SUCCESS",
        status=models.PaymentStatus.PAID,
        provider_order_id="29383937493038367292",
        provider_reference="LC0123456789",
        amount=models.Money("1.00", "USDT"),
        occurred_at=NOW,
        paid=models.Money("1.00", "USDT"),
        fee=models.Money("0.001", "USDT"),
    ),
    models.ErrorClassification: lambda: models.ErrorClassification(
        category=models.ErrorCategory.RATE_LIMITED,
        retryable=True,
        retry_after=2.5,
        action="back off",
        user_message="try later",
        status_code=429,
    ),
    models.ProviderInfo: lambda: models.ProviderInfo(
        name="binance",
        display_name="Binance Pay",
        currencies=frozenset({"USD", "USDT"}),
        capabilities=frozenset({"create_order"}),
        settings={"api_key": "BINANCE_PAY_API_KEY"},
        idempotency=models.IdempotencyPattern.FIND_OR_CREATE,
    ),
    models.StatusChange: lambda: models.StatusChange(
        provider="binance",
        reference="booking-42",
        old_status=models.PaymentStatus.PENDING,
        new_status=models.PaymentStatus.PAID,
        event_id="e1",
        changed_at=NOW,
    ),
    Currency: lambda: Currency("USDT", 8, crypto=True),
    HttpRequest: lambda: HttpRequest(
        "POST", "https://bpay.example/x", {"content-type": "application/json"}, b"{}", "q"
    ),
    HttpResponse: lambda: HttpResponse(429, {"retry-after": "2"}, b'{"code":"x"}'),
    models.CallbackRequest: lambda: models.CallbackRequest(
        {"X-A": "1"}, b'{"bizId":29383937493038367292}'
    ),
    models.CallbackReply: lambda: models.CallbackReply(
        200, b'{"returnCode":"SUCCESS","returnMessage":null}'
    ),
    models.CallbackResult: lambda: models.CallbackResult(
        SAMPLES[models.PaymentEvent](),  # type: ignore[arg-type]
        models.CallbackReply(200, b"{}"),
    ),
    models.RefundRequest: lambda: models.RefundRequest(
        reference="booking-42",
        refund_reference="cancel-1",
        amount=models.Money("0.40", "USD"),
        reason="booking cancelled",
    ),
    models.Refund: lambda: models.Refund(
        provider="binance",
        reference="booking-42",
        refund_reference="cancel-1",
        provider_refund_id="LC0123456789R0a1b2c3",
        provider_order_id="29383937493038367292",
        amount=models.Money("0.40", "USD"),
        status=models.RefundStatus.SUCCEEDED,
        settlement=models.Money("0.40000000", "USDT"),
    ),
    models.RefundNotice: lambda: models.RefundNotice(
        provider_refund_id="LC0123456789R0a1b2c3",
        status=models.RefundStatus.SUCCEEDED,
        amount=models.Money("0.4", "USDT"),
    ),
}


# Configuration objects, not data: they hold callables, clocks or the environment.
NOT_DATA = {
    payments_core.Config,
    payments_core.ProviderSettings,
    payments_core.ProviderContext,
    payments_core.RetryPolicy,
    payments_core.ClaimPolicy,
}


def test_every_public_model_has_a_round_trip_sample() -> None:
    public_models = {
        obj for name in payments_core.__all__ if attrs.has(obj := getattr(payments_core, name))
    }
    assert public_models - NOT_DATA <= set(SAMPLES)


@pytest.mark.parametrize("model", list(SAMPLES), ids=lambda m: m.__name__)
def test_public_models_round_trip_through_cattrs(model: type) -> None:
    original = SAMPLES[model]()
    data = converter.unstructure(original)
    assert "float" not in repr(type(data))
    assert converter.structure(data, model) == original


def test_money_unstructures_to_strings_not_floats() -> None:
    data = converter.unstructure(SAMPLES[models.Order]())
    assert data["amount"] == {"amount": "1.00", "currency": "USD"}
    assert data["provider_order_id"] == "29383937493038367292"


@pytest.mark.parametrize("amount", [1.0, "1.001", "NaN", "-1", True])
def test_structuring_bad_money_is_refused_naming_the_field(amount: object) -> None:
    data = converter.unstructure(SAMPLES[models.Order]())
    data["amount"] = {"amount": amount, "currency": "USD"}
    with pytest.raises(ClassValidationError) as caught:  # cattrs groups what went wrong
        converter.structure(data, models.Order)
    (error,) = caught.value.exceptions
    assert isinstance(error, models.ValidationError)
    assert error.field == "amount"


@pytest.mark.parametrize("value", [0.1, True, "abc", None, [1]])
def test_the_converter_refuses_floats_and_junk_as_decimals(value: object) -> None:
    with pytest.raises(models.ValidationError):
        converter.structure(value, Decimal)
    assert converter.structure("0.10", Decimal) == Decimal("0.10")
    assert converter.structure(7, Decimal) == Decimal(7)


def test_status_moves_only_forward() -> None:
    assert models.PaymentStatus.PENDING.can_become(models.PaymentStatus.PAID)
    assert not models.PaymentStatus.PAID.can_become(models.PaymentStatus.CLOSED)
    assert not models.PaymentStatus.PAID.can_become(models.PaymentStatus.EXPIRED)
    assert models.PaymentStatus.PAID.can_become(models.PaymentStatus.REFUNDED)
    assert models.PaymentStatus.CLOSED.can_become(models.PaymentStatus.PAID)
    assert not models.PaymentStatus.REFUNDED.can_become(models.PaymentStatus.PAID)


def test_a_payment_seen_or_under_review_is_not_final_and_may_still_end_either_way() -> None:
    seen, review = models.PaymentStatus.CONFIRMING, models.PaymentStatus.NEEDS_REVIEW
    assert {s for s in models.PaymentStatus if not s.is_final} == {
        models.PaymentStatus.PENDING,
        seen,
        review,
    }
    for status in (seen, review):
        assert status.can_become(models.PaymentStatus.PAID)
        assert status.can_become(models.PaymentStatus.FAILED)
        assert not status.can_become(models.PaymentStatus.CLOSED)
        assert not status.can_become(models.PaymentStatus.EXPIRED)
        assert not status.can_become(models.PaymentStatus.PENDING)
        assert not status.is_refundable
    assert seen.can_become(review)
    assert not review.can_become(seen)
    for final in (s for s in models.PaymentStatus if s.is_final):
        assert not final.can_become(seen), final
        assert not final.can_become(review), final


def test_no_status_returns_to_itself_nor_leaves_refunded() -> None:
    for status in models.PaymentStatus:
        assert not status.can_become(status)
    assert not any(models.PaymentStatus.REFUNDED.can_become(s) for s in models.PaymentStatus)


def test_an_orders_links_cannot_be_changed_and_must_be_text() -> None:
    order = SAMPLES[models.Order]()
    assert isinstance(order, models.Order)
    with pytest.raises(TypeError):
        order.links["qr_image"] = "https://evil.example/"  # type: ignore[index]
    assert order.links["qr_image"] == "https://pay.example/qr.png"
    with pytest.raises(models.ValidationError, match=r"links\.app"):
        attrs.evolve(order, links={"app": 42})
    with pytest.raises(models.ValidationError, match="links"):
        attrs.evolve(order, links=["https://pay.example/"])


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("merchant_order_id", "LC0123456789"),
        ("qr_code_url", "https://pay.example/qr.png"),
        ("qr_content", None),
        ("deep_link", None),
        ("universal_url", None),
    ],
)
def test_the_old_order_names_still_read_with_a_warning(old: str, new: str | None) -> None:
    order = SAMPLES[models.Order]()
    with pytest.warns(DeprecationWarning, match=rf"Order\.{old} is deprecated"):
        assert getattr(order, old) == new


def test_an_order_known_by_its_reference_gives_it_as_the_old_merchant_order_id() -> None:
    order = attrs.evolve(SAMPLES[models.Order](), provider_reference=None)
    with pytest.warns(DeprecationWarning, match="Order.provider_reference"):
        assert order.merchant_order_id == "booking-42"
    event = attrs.evolve(SAMPLES[models.PaymentEvent](), provider_reference=None)
    with pytest.warns(DeprecationWarning, match="PaymentEvent.provider_reference"):
        assert event.merchant_order_id is None
