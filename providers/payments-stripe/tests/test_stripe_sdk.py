"""The official ``stripe`` SDK as a client of the served sandbox, as a new user would drive it.

The whole flow: create, replay, retrieve with ``expand``, list with filters both ways, pay on
the hosted form, expire, refund in part and in full, retrieve the refund, the PaymentIntent and
the line items, and Stripe's refusals as the SDK's typed errors with their request ids. Every
field Stripe's description marks required is read as an attribute of every object the SDK
gives back, so a missing one fails here as it would fail a user.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import pytest
import stripe
from payments_stripe import wire
from payments_stripe.sandbox_server import serve

from payments_core.testing.sandbox import Delivery, RunningSandbox

SPEC = Path(__file__).parent / "openapi" / "stripe-2023-08-16-sandbox.json"


@cache
def _required(name: str) -> tuple[str, ...]:
    schemas = json.loads(SPEC.read_bytes())["components"]["schemas"]
    return tuple(schemas[name].get("required", ()))


def _request_id(obj: stripe.StripeObject) -> str | None:
    """The ``Request-Id`` of the answer that gave ``obj``."""
    assert obj.last_response is not None
    return obj.last_response.request_id


def _read_every_required_field(obj: stripe.StripeObject) -> None:
    """Read each field Stripe requires of ``obj`` as the SDK's attribute (``AttributeError``
    if absent)."""
    for field in _required(str(obj["object"])):
        getattr(obj, field)


@pytest.fixture
def running() -> Iterator[tuple[RunningSandbox, list[Delivery]]]:
    webhooks: list[Delivery] = []
    with serve() as served:
        served.sandbox.deliver = webhooks.append
        yield served, webhooks


@pytest.fixture
def client(running: tuple[RunningSandbox, list[Delivery]]) -> stripe.StripeClient:
    served, _ = running
    return stripe.StripeClient(
        served.sandbox.api_key,
        base_addresses={"api": served.base_url},
        stripe_version=wire.API_VERSION,
        max_network_retries=0,
    )


def _session_params(reference: str, amount: int = 2500) -> Any:
    """A create's parameters (``Any``: the SDK types them as a ``TypedDict``)."""
    return {
        "mode": "payment",
        "success_url": "https://shop.example/done",
        "cancel_url": "https://shop.example/cancelled",
        "client_reference_id": reference,
        "line_items": [
            {
                "quantity": 1,
                "price_data": {
                    "currency": "usd",
                    "unit_amount": amount,
                    "product_data": {"name": "Intro call"},
                },
            }
        ],
    }


def test_the_whole_flow_through_the_official_sdk(
    running: tuple[RunningSandbox, list[Delivery]], client: stripe.StripeClient
) -> None:
    served, webhooks = running
    sessions = client.v1.checkout.sessions
    params: Any = {
        **_session_params("sdk-1"),
        "customer_email": "payer@example.com",
        "locale": "de",
        "payment_method_types": ["card"],
        "metadata": {"booking": "7"},
        "expand": ["line_items"],
    }
    created = sessions.create(params, {"idempotency_key": "sdk-create-1"})
    replayed = sessions.create(params, {"idempotency_key": "sdk-create-1"})
    other = sessions.create(_session_params("sdk-2"))

    assert replayed.id == created.id
    assert replayed.last_response is not None
    assert replayed.last_response.headers["idempotent-replayed"] == "true"
    assert str(_request_id(created)).startswith("req_")
    assert created.url == served.checkout_url(created.id)
    assert (created.locale, created.customer_email) == ("de", "payer@example.com")
    assert created.line_items is not None
    assert created.line_items.data[0].amount_total == 2500
    _read_every_required_field(created)

    opened = sessions.list({"status": "open", "limit": 1})
    newer = sessions.list({"ending_before": created.id})
    assert [s.id for s in opened.data] == [other.id]
    assert opened.has_more
    assert [s.id for s in newer.data] == [other.id]

    httpx.post(served.checkout_url(created.id)).raise_for_status()  # the payer pays
    paid = sessions.retrieve(created.id, {"expand": ["payment_intent.latest_charge"]})
    assert (paid.status, paid.payment_status, paid.url) == ("complete", "paid", None)
    intent = paid.payment_intent
    assert isinstance(intent, stripe.PaymentIntent)
    charge = intent.latest_charge
    assert isinstance(charge, stripe.Charge)
    assert (charge.amount_captured, charge.captured, charge.disputed) == (2500, True, False)
    assert charge.billing_details.email == "payer@example.com"
    assert paid.customer_details is not None
    for obj in (paid, intent, charge):
        _read_every_required_field(obj)
    (item,) = sessions.line_items.list(created.id).data
    _read_every_required_field(item)
    assert client.v1.payment_intents.retrieve(intent.id).latest_charge == charge.id

    expired = sessions.expire(other.id)
    assert (expired.status, expired.url) == ("expired", None)
    assert [s.id for s in sessions.list({"status": "expired"}).data] == [other.id]

    part = client.v1.refunds.create(
        {"payment_intent": intent.id, "amount": 1000, "reason": "requested_by_customer"},
        {"idempotency_key": "sdk-refund-1"},
    )
    rest = client.v1.refunds.create({"charge": charge.id})
    again = client.v1.refunds.retrieve(part.id, {"expand": ["charge"]})
    by_charge = client.v1.refunds.list({"charge": charge.id})
    assert (part.amount, rest.amount, part.status) == (1000, 1500, "succeeded")
    assert again.id == part.id
    assert isinstance(again.charge, stripe.Charge)
    assert again.charge.refunded
    assert [r.id for r in by_charge.data] == [rest.id, part.id]
    _read_every_required_field(again)

    secret = served.sandbox.webhook_secrets[0]
    events = [
        stripe.Webhook.construct_event(d.body.decode(), d.headers[wire.HEADER_SIGNATURE], secret)
        for d in webhooks
    ]
    assert [e.type for e in events] == [
        "checkout.session.completed",
        "checkout.session.expired",
        "refund.created",
        "charge.refunded",
        "refund.created",
        "charge.refunded",
    ]
    for event in events:
        _read_every_required_field(event)
        _read_every_required_field(event.data.object)
    paid_event, expired_event, refund_event = events[:3]
    assert paid_event.request.id is None  # the payer's doing, no API request of the account
    assert expired_event.request.id == _request_id(expired)
    assert refund_event.request.id == _request_id(part)
    assert refund_event.request.idempotency_key == "sdk-refund-1"


@pytest.mark.parametrize(
    "paths",
    [
        ["payment_intent.latest_charge", "payment_intent"],
        ["payment_intent", "payment_intent.latest_charge"],
        ["payment_intent", "payment_intent"],
        ["line_items", "line_items"],
    ],
)
def test_two_expand_paths_through_one_field_expand_it_once(
    running: tuple[RunningSandbox, list[Delivery]], client: stripe.StripeClient, paths: list[str]
) -> None:
    """Stripe takes a field named by two ``expand[]`` paths; the second finds it expanded."""
    served, _ = running
    created = client.v1.checkout.sessions.create(_session_params("sdk-twice"))
    httpx.post(served.checkout_url(created.id)).raise_for_status()

    paid = client.v1.checkout.sessions.retrieve(created.id, {"expand": paths})

    if paths[0] == "line_items":
        assert paid.line_items is not None
        assert paid.line_items.data[0].amount_total == 2500
        return
    intent = paid.payment_intent
    assert isinstance(intent, stripe.PaymentIntent)
    assert intent.amount_received == 2500
    if any("latest_charge" in path for path in paths):
        assert isinstance(intent.latest_charge, stripe.Charge)
    else:
        assert isinstance(intent.latest_charge, str)


def test_stripes_refusals_arrive_as_the_sdks_typed_errors_with_request_ids(
    client: stripe.StripeClient,
) -> None:
    sessions = client.v1.checkout.sessions
    with pytest.raises(stripe.InvalidRequestError) as unknown:
        sessions.create(_session_params("sdk-bad") | {"submit_type": "pay"})
    with pytest.raises(stripe.InvalidRequestError) as too_small:
        sessions.create(_session_params("sdk-small", amount=49))
    without: Any = {k: v for k, v in _session_params("sdk-x").items() if k != "success_url"}
    with pytest.raises(stripe.InvalidRequestError) as no_success_url:
        sessions.create(without)
    with pytest.raises(stripe.InvalidRequestError) as missing:
        client.v1.refunds.retrieve("re_missing")
    with pytest.raises(stripe.InvalidRequestError) as not_expandable:
        sessions.list({"expand": ["payment_intent"]})
    sessions.create(_session_params("sdk-key"), {"idempotency_key": "sdk-key"})
    with pytest.raises(stripe.IdempotencyError) as reused:
        sessions.create(_session_params("sdk-key", 3000), {"idempotency_key": "sdk-key"})

    assert (unknown.value.code, unknown.value.param) == ("parameter_unknown", "submit_type")
    assert too_small.value.code == "amount_too_small"
    assert (no_success_url.value.code, no_success_url.value.param) == (
        "parameter_missing",
        "success_url",
    )
    assert (missing.value.http_status, missing.value.code) == (404, "resource_missing")
    assert "data.payment_intent" in str(not_expandable.value.user_message)
    for refused in (unknown, too_small, no_success_url, missing, not_expandable, reused):
        assert str(refused.value.request_id).startswith("req_")
    assert len({r.value.request_id for r in (unknown, too_small, missing)}) == 3
