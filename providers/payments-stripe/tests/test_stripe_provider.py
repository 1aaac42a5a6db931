"""The Stripe provider against its sandbox: amounts, idempotency, queries, closing, refunds."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qsl

import httpx
import pytest
from payments_stripe import StripeProvider, wire
from payments_stripe.amounts import from_stripe, to_stripe
from payments_stripe.sandbox import StripeSandbox, sandbox_transport
from payments_stripe.sandbox_server import new_sandbox

from payments_core import (
    ErrorCategory,
    Money,
    OrderRequest,
    Payments,
    PaymentStatus,
    PluginLoadError,
    ProviderError,
    RefundRequest,
    RefundStatus,
    RetryPolicy,
    ValidationError,
    open_ledger,
)

#: The ``make_facade`` fixture: a facade for a sandbox, closed after the test.
Facade = Callable[..., Payments]


def request(reference: str, price: Money | None = None, **fields: object) -> OrderRequest:
    return OrderRequest(
        reference=reference,
        price=price or Money("1.00", "USD"),
        callback_url="https://shop.example/callbacks/stripe",
        **fields,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    ("price", "unit_amount", "currency"),
    [
        (Money("1.00", "USD"), 100, "usd"),
        (Money("0.01", "EUR"), 1, "eur"),
        (Money(500, "JPY"), 500, "jpy"),
        (Money(1000, "KRW"), 1000, "krw"),
        (Money("1.230", "KWD"), 1230, "kwd"),
        (Money(500, "ISK"), 50000, "isk"),
    ],
)
def test_prices_go_to_stripe_in_its_minor_units_and_come_back_equal(
    price: Money, unit_amount: int, currency: str
) -> None:
    assert to_stripe(price) == (unit_amount, currency)
    assert from_stripe(unit_amount, currency) == price


def refused_before_sending(payments: Payments, sandbox: StripeSandbox, price: Money) -> str:
    """The reason an order at ``price`` is refused for, its amount named, with nothing sent."""
    with pytest.raises(ValidationError) as refused:
        payments.create_order(request("refused", price))
    assert refused.value.field == "price.amount"
    assert sandbox.requests == 0
    return refused.value.reason


@pytest.mark.parametrize(
    ("price", "why"),
    [
        (Money("1.235", "KWD"), "whole hundredths"),
        (Money("1000000.00", "USD"), "more than Stripe takes"),
    ],
)
def test_a_price_stripe_cannot_take_is_refused_before_sending(
    payments: Payments, sandbox: StripeSandbox, price: Money, why: str
) -> None:
    assert why in refused_before_sending(payments, sandbox, price)


@pytest.mark.parametrize("count", [1.0, "100", True, -1])
def test_an_amount_stripe_states_is_an_int_count_or_refused(count: object) -> None:
    with pytest.raises(ValidationError):
        from_stripe(count, "usd")


def test_the_create_is_a_form_with_one_line_item_and_a_key_from_the_reference(
    sandbox: StripeSandbox,
) -> None:
    seen: list[httpx.Request] = []
    inner = sandbox_transport(sandbox)

    def record(sent: httpx.Request) -> httpx.Response:
        seen.append(sent)
        return inner.handle_request(sent)

    settings = {"base_url": sandbox.base_url, "api_key": sandbox.api_key}
    with Payments(
        providers={"stripe": StripeProvider},
        provider_settings={"stripe": settings},
        load_entry_points=False,
        transport=httpx.MockTransport(record),
    ) as payments:
        order = payments.create_order(
            request("booking-7", Money(1500, "JPY"), description="Intro call")
        )
    (sent,) = seen
    form = dict(parse_qsl(sent.content.decode()))
    assert sent.headers["content-type"] == wire.FORM
    assert sent.headers["idempotency-key"] == "payments-create-booking-7"
    assert sent.headers["authorization"] == f"Bearer {sandbox.api_key}"
    assert form["line_items[0][price_data][unit_amount]"] == "1500"
    assert form["line_items[0][price_data][currency]"] == "jpy"
    assert form["line_items[0][price_data][product_data][name]"] == "Intro call"
    assert form["client_reference_id"] == "booking-7"
    assert "callback_url" not in sent.content.decode()
    assert order.amount == Money(1500, "JPY")
    assert order.provider_reference is None  # Stripe knows it by the reference
    assert order.provider_order_id.startswith("cs_test_")


def test_a_retried_create_is_answered_with_the_same_session(
    payments: Payments, sandbox: StripeSandbox, make_facade: Facade
) -> None:
    first = payments.create_order(request("retry-1"))
    again = make_facade(sandbox).create_order(request("retry-1"))

    assert again.provider_order_id == first.provider_order_id
    assert sandbox.replays == 1
    assert sandbox.sessions_by_reference()["retry-1"] == [first.provider_order_id]


def test_the_same_reference_for_another_price_is_refused_by_stripe_and_not_retried(
    sandbox: StripeSandbox, make_facade: Facade
) -> None:
    payments = make_facade(sandbox, attempts=3)
    payments.create_order(request("priced-1"))
    with pytest.raises(ProviderError) as refused:
        payments.create_order(request("priced-1", Money("2.00", "USD")))
    assert refused.value.provider_code == wire.ERROR_IDEMPOTENCY
    assert str(refused.value.request_id).startswith("req_")  # Stripe's Request-Id, kept
    assert refused.value.classification is not None
    assert refused.value.classification.category is ErrorCategory.INVALID_REQUEST
    assert not refused.value.classification.retryable
    assert len(sandbox.sessions) == 1


def test_a_query_pages_back_to_an_older_session(payments: Payments, sandbox: StripeSandbox) -> None:
    oldest = payments.create_order(request("page-0"))
    for i in range(1, wire.LIST_LIMIT_MAX + 5):
        payments.create_order(request(f"page-{i}"))

    found = payments.query_order("page-0")

    assert found is not None
    assert found.provider_order_id == oldest.provider_order_id
    assert payments.query_order("page-never") is None


def test_a_query_looks_no_further_back_than_its_window(
    sandbox: StripeSandbox, make_facade: Facade
) -> None:
    made_at = sandbox.clock()
    sandbox.clock = lambda: made_at - 73 * 3600
    make_facade(sandbox).create_order(request("old-1"))
    sandbox.clock = lambda: made_at

    assert make_facade(sandbox).query_order("old-1") is None


def test_closing_expires_the_session_and_its_webhook_says_expired(
    payments: Payments, sandbox: StripeSandbox
) -> None:
    order = payments.create_order(request("close-1"))

    assert payments.close_order("close-1") is True
    found = payments.query_order("close-1")
    delivery = sandbox.deliveries[-1]
    result = payments.handle_callback("stripe", delivery.headers, delivery.body)

    assert found is not None
    assert found.status is PaymentStatus.EXPIRED
    assert result.event is not None
    assert result.event.status is PaymentStatus.EXPIRED
    assert result.event.provider_order_id == order.provider_order_id


def test_closing_a_paid_session_is_an_invalid_state(
    payments: Payments, sandbox: StripeSandbox
) -> None:
    order = payments.create_order(request("close-paid"))
    sandbox.pay(order.provider_order_id)

    with pytest.raises(ProviderError) as refused:
        payments.close_order("close-paid")
    assert refused.value.classification is not None
    assert refused.value.classification.category is ErrorCategory.INVALID_STATE


def test_an_expires_at_stripe_would_refuse_is_a_validation_error(
    payments: Payments, sandbox: StripeSandbox
) -> None:
    soon = datetime.now(UTC) + timedelta(minutes=5)
    with pytest.raises(ValidationError) as refused:
        payments.create_order(request("soon-1", expires_at=soon))
    assert refused.value.field == "expires_at"
    later = datetime.now(UTC) + timedelta(hours=2)
    order = payments.create_order(request("later-1", expires_at=later))
    assert order.expires_at == later.replace(microsecond=0)


def test_refunds_are_idempotent_and_their_webhooks_settle_them_in_the_ledger(
    sandbox: StripeSandbox, tmp_path: Path
) -> None:
    transport = sandbox_transport(sandbox)
    settings = {
        "base_url": sandbox.base_url,
        "api_key": sandbox.api_key,
        "webhook_secret": sandbox.webhook_secrets[0],
    }
    with Payments(
        providers={"stripe": StripeProvider},
        provider_settings={"stripe": settings},
        load_entry_points=False,
        transport=transport,
        ledger=open_ledger(f"sqlite:///{tmp_path / 'refunds.sqlite3'}"),
    ) as payments:

        def deliver_new() -> list[str]:
            kinds = []
            for delivery in sandbox.deliveries[delivered:]:
                outcome = payments.apply_callback("stripe", delivery.headers, delivery.body)
                assert outcome.reply.status_code == 200
                kinds.append(delivery.type)
            return kinds

        delivered = 0
        order = payments.create_order(request("refund-1", Money("3.00", "GBP")))
        sandbox.pay(order.provider_order_id)
        deliver_new()
        delivered = len(sandbox.deliveries)
        part = RefundRequest(
            reference="refund-1", refund_reference="part-1", amount=Money("1.00", "GBP")
        )
        first = payments.refund_order(part)
        again = payments.refund_order(part)
        assert deliver_new() == ["refund.created", "charge.refunded"]
        delivered = len(sandbox.deliveries)
        halfway = payments.ledger.get_order("stripe", "refund-1")  # type: ignore[union-attr]
        rest = payments.refund_order(
            RefundRequest(
                reference="refund-1", refund_reference="rest-1", amount=Money("2.00", "GBP")
            )
        )
        deliver_new()
        settled = payments.ledger.get_order("stripe", "refund-1")  # type: ignore[union-attr]

    assert first.provider_refund_id == again.provider_refund_id
    assert first.provider_refund_id.startswith("re_")
    assert first.status is RefundStatus.SUCCEEDED
    assert rest.amount == Money("2.00", "GBP")
    assert len(sandbox.refunds) == 2
    assert halfway is not None
    assert halfway.status is PaymentStatus.PARTIALLY_REFUNDED
    assert settled is not None
    assert settled.status is PaymentStatus.REFUNDED
    charge = sandbox.charges[sandbox.sessions[order.provider_order_id]["payment_intent"]]
    assert (charge["amount_refunded"], charge["refunded"]) == (300, True)


def test_a_refund_webhook_names_the_refund_and_its_session(
    payments: Payments, sandbox: StripeSandbox
) -> None:
    order = payments.create_order(request("refund-2", Money(1000, "JPY")))
    sandbox.pay(order.provider_order_id)
    charge_refunded = sandbox.refund(order.provider_order_id, 400)  # from the Dashboard
    refund_created = sandbox.deliveries[-2]

    noted = payments.handle_callback("stripe", refund_created.headers, refund_created.body)
    ignored = payments.handle_callback("stripe", charge_refunded.headers, charge_refunded.body)

    (refund_id,) = sandbox.refunds
    assert noted.event is not None
    assert noted.event.provider_order_id == order.provider_order_id
    assert noted.event.provider_reference == "refund-2"
    assert noted.event.status is PaymentStatus.PARTIALLY_REFUNDED
    assert noted.event.refund is not None
    assert noted.event.refund.provider_refund_id == refund_id
    assert noted.event.refund.amount == Money(400, "JPY")
    assert ignored.event is None  # each refund's own event tells it


def test_more_than_remains_is_refused_by_stripe_and_refunds_nothing(
    payments: Payments, sandbox: StripeSandbox
) -> None:
    order = payments.create_order(request("refund-3", Money("2.00", "USD")))
    sandbox.pay(order.provider_order_id)
    payments.refund_order(
        RefundRequest(reference="refund-3", refund_reference="all", amount=Money("2.00", "USD"))
    )
    more = RefundRequest(reference="refund-3", refund_reference="more", amount=Money("0.01", "USD"))
    with pytest.raises(ProviderError) as refused:
        payments.refund_order(more)
    assert refused.value.provider_code == wire.CODE_CHARGE_ALREADY_REFUNDED
    assert refused.value.classification is not None
    assert not refused.value.classification.retryable
    assert len(sandbox.refunds) == 1


def _answer(status: int, error: dict[str, str], **headers: str) -> httpx.MockTransport:
    body = json.dumps({"error": error}).encode()
    return httpx.MockTransport(lambda sent: httpx.Response(status, headers=headers, content=body))


@pytest.mark.parametrize(
    ("status", "error", "headers", "category", "retryable", "retry_after"),
    [
        (429, {"type": "invalid_request_error", "code": "rate_limit"}, {"Retry-After": "7"},
         ErrorCategory.RATE_LIMITED, True, 7.0),
        (409, {"type": "idempotency_error"}, {}, ErrorCategory.OUTCOME_UNKNOWN, True, None),
        (400, {"type": "idempotency_error"}, {}, ErrorCategory.INVALID_REQUEST, False, None),
        (409, {"type": "invalid_request_error", "code": "lock_timeout"},
         {"Stripe-Should-Retry": "true"}, ErrorCategory.PROVIDER_UNAVAILABLE, True, None),
        (500, {"type": "api_error"}, {"Stripe-Should-Retry": "false"},
         ErrorCategory.PROVIDER_UNAVAILABLE, False, None),
        (400, {"type": "invalid_request_error"}, {"Stripe-Should-Retry": "true"},
         ErrorCategory.INVALID_REQUEST, True, None),
        (401, {"type": "invalid_request_error", "code": "api_key_expired"}, {},
         ErrorCategory.AUTHENTICATION, False, None),
    ],
)  # fmt: skip
def test_stripe_errors_are_classified_with_its_retry_hints(
    status: int,
    error: dict[str, str],
    headers: dict[str, str],
    category: ErrorCategory,
    retryable: bool,
    retry_after: float | None,
) -> None:
    settings = {"base_url": "http://stripe.invalid", "api_key": "sk_test_classify"}
    with Payments(
        providers={"stripe": StripeProvider},
        provider_settings={"stripe": settings},
        load_entry_points=False,
        retry=RetryPolicy(max_attempts=1),
        transport=_answer(status, error, **headers),
    ) as payments:
        judged = payments.classify_error(
            _error_of(lambda: payments.query_order("any")), provider="stripe"
        )
    assert (judged.category, judged.retryable, judged.retry_after) == (
        category,
        retryable,
        retry_after,
    )


def _error_of(call: object) -> ProviderError:
    try:
        call()  # type: ignore[operator]
    except ProviderError as error:
        error.classification = None  # judged again from scratch by the test
        return error
    raise AssertionError("no ProviderError")


def test_no_secret_shows_in_reprs(sandbox: StripeSandbox, payments: Payments) -> None:
    provider = payments.host.pm.get_plugin("stripe")
    shown = f"{provider!r} {sandbox!r} {payments!r}"
    assert sandbox.api_key not in shown
    assert sandbox.webhook_secrets[0] not in shown


def _sent_form(sandbox: StripeSandbox, order: OrderRequest, **settings: str) -> dict[str, str]:
    """The create's form as the provider sends it for ``order``."""
    seen: list[httpx.Request] = []
    inner = sandbox_transport(sandbox)

    def record(sent: httpx.Request) -> httpx.Response:
        seen.append(sent)
        return inner.handle_request(sent)

    with Payments(
        providers={"stripe": StripeProvider},
        provider_settings={
            "stripe": {"base_url": sandbox.base_url, "api_key": sandbox.api_key, **settings}
        },
        load_entry_points=False,
        transport=httpx.MockTransport(record),
    ) as payments:
        payments.create_order(order)
    return dict(parse_qsl(seen[-1].content.decode()))


def test_every_session_is_sent_with_a_success_and_a_cancel_url(sandbox: StripeSandbox) -> None:
    own = _sent_form(
        sandbox,
        request(
            "urls-1", return_url="https://shop.example/thanks", cancel_url="https://c.example/"
        ),
    )
    configured = _sent_form(sandbox, request("urls-2"), return_url="https://shop.example/back")
    fallback = _sent_form(sandbox, request("urls-3"))

    assert (own["success_url"], own["cancel_url"]) == (
        "https://shop.example/thanks",
        "https://c.example/",
    )
    assert (configured["success_url"], configured["cancel_url"]) == (
        "https://shop.example/back",
        "https://shop.example/back",
    )
    # No return URL anywhere: the merchant's own site, from the callback URL.
    assert (fallback["success_url"], fallback["cancel_url"]) == (
        "https://shop.example/",
        "https://shop.example/",
    )


def test_a_return_url_setting_that_is_not_a_url_stops_the_provider_loading(
    sandbox: StripeSandbox,
) -> None:
    with pytest.raises(PluginLoadError, match="return_url must be an http"):
        _sent_form(sandbox, request("urls-4"), return_url="shop.example/back")


@pytest.mark.parametrize(
    ("price", "minimum"),
    [
        (Money("0.49", "USD"), "0.50 USD"),
        (Money("0.29", "GBP"), "0.30 GBP"),
        (Money(49, "JPY"), "50 JPY"),
    ],
)
def test_a_price_below_stripes_minimum_is_refused_before_sending(
    payments: Payments, sandbox: StripeSandbox, price: Money, minimum: str
) -> None:
    assert minimum in refused_before_sending(payments, sandbox, price)
    assert payments.create_order(request("enough", Money(minimum.split()[0], price.currency)))


def test_a_paid_or_expired_order_has_no_checkout_url(
    payments: Payments, sandbox: StripeSandbox
) -> None:
    paid = payments.create_order(request("url-paid"))
    payments.create_order(request("url-closed"))
    sandbox.pay(paid.provider_order_id)
    payments.close_order("url-closed")

    found_paid = payments.query_order("url-paid")
    found_closed = payments.query_order("url-closed")

    assert paid.checkout_url == f"{sandbox.base_url}/checkout/{paid.provider_order_id}"
    assert found_paid is not None
    assert (found_paid.status, found_paid.checkout_url) == (PaymentStatus.PAID, None)
    assert found_closed is not None
    assert (found_closed.status, found_closed.checkout_url) == (PaymentStatus.EXPIRED, None)


def test_what_was_paid_is_reported_on_the_paid_webhook_and_query_and_recorded(
    sandbox: StripeSandbox, make_facade: Facade, tmp_path: Path
) -> None:
    payments = make_facade(sandbox, ledger=open_ledger(f"sqlite:///{tmp_path / 'paid.sqlite3'}"))
    order = payments.create_order(request("paid-1", Money("12.34", "EUR")))
    unpaid = payments.query_order("paid-1")
    delivery = sandbox.pay(order.provider_order_id)
    outcome = payments.apply_callback("stripe", delivery.headers, delivery.body)
    found = payments.query_order("paid-1")
    assert payments.ledger is not None
    recorded = payments.ledger.get_order("stripe", "paid-1")
    assert unpaid is not None
    assert unpaid.paid is None  # nothing is paid yet
    assert outcome.event is not None
    # The session's amount_total; the fee sits on the balance transaction, not sent here.
    assert (outcome.event.paid, outcome.event.fee) == (Money("12.34", "EUR"), None)
    assert found is not None
    assert (found.paid, found.fee) == (Money("12.34", "EUR"), None)
    assert recorded is not None
    assert (recorded.status, recorded.paid, recorded.settlement) == (
        PaymentStatus.PAID,
        Money("12.34", "EUR"),
        None,  # paid in the price's currency: nothing to learn
    )


def _session_form(unit_amount: int) -> str:
    return (
        "mode=payment&success_url=https%3A%2F%2Fs.example%2F&line_items[0][quantity]=1"
        "&line_items[0][price_data][currency]=usd"
        f"&line_items[0][price_data][unit_amount]={unit_amount}"
        "&line_items[0][price_data][product_data][name]=A"
    )


@pytest.mark.parametrize("validate", [True, False])
def test_the_sandbox_refuses_what_stripe_refuses_unless_told_otherwise(validate: bool) -> None:
    sandbox = new_sandbox(
        deliver=lambda delivery: None,
        validate_minimums=validate,
        validate_refund_reasons=validate,
    )
    api = httpx.Client(
        transport=sandbox_transport(sandbox),
        base_url=sandbox.base_url,
        headers={"Authorization": f"Bearer {sandbox.api_key}", "Content-Type": wire.FORM},
    )
    small = api.post(wire.PATH_SESSIONS, content=_session_form(49))
    session = api.post(wire.PATH_SESSIONS, content=_session_form(50)).json()
    sandbox.pay(session["id"])
    intent = sandbox.sessions[session["id"]]["payment_intent"]
    odd = api.post(wire.PATH_REFUNDS, content=f"payment_intent={intent}&reason=whim")

    if validate:
        assert (small.status_code, small.json()["error"]["code"]) == (400, "amount_too_small")
        assert "at least 0.50 usd" in small.json()["error"]["message"]
        assert (odd.status_code, odd.json()["error"]["param"]) == (400, "reason")
    else:
        assert (small.status_code, odd.status_code) == (200, 200)
        assert odd.json()["reason"] == "whim"
