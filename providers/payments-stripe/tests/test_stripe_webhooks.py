"""Webhooks: our sandbox's signatures and our verifier, checked against the official SDK.

``stripe.Webhook.construct_event`` is the independent verifier: every webhook the sandbox signs
must pass it, and every forgery it refuses ours must refuse too. Ours is stricter in one way,
on purpose: a timestamp too far in the future is refused (the SDK checks only the past).
"""

from __future__ import annotations

import hmac
import json
import time
from collections.abc import Callable

import pytest
import stripe
from hypothesis import given, settings
from hypothesis import strategies as st
from payments_stripe import wire
from payments_stripe.sandbox import StripeSandbox
from payments_stripe.sandbox_server import new_sandbox

from payments_core import (
    CallbackPayloadError,
    CallbackVerificationError,
    Money,
    OrderRequest,
    Payments,
    PaymentStatus,
)
from payments_core.testing.sandbox import Delivery

#: The ``make_facade`` fixture: a facade for a sandbox, closed after the test.
Facade = Callable[..., Payments]

SIGNATURE = wire.HEADER_SIGNATURE


def paid(payments: Payments, sandbox: StripeSandbox, reference: str = "wh-1") -> Delivery:
    order = payments.create_order(
        OrderRequest(
            reference=reference, price=Money("12.50", "EUR"), callback_url="https://m.example/cb"
        )
    )
    return sandbox.pay(order.provider_order_id)


def sdk_accepts(body: bytes, header: str, secret: str) -> bool:
    try:
        stripe.Webhook.construct_event(body, header, secret, tolerance=wire.TOLERANCE_SECONDS)
    except stripe.SignatureVerificationError:
        return False
    return True


def ours_accepts(payments: Payments, body: bytes, header: str) -> bool:
    try:
        payments.handle_callback("stripe", {SIGNATURE: header}, body)
    except CallbackVerificationError as refused:
        assert refused.reply.status_code == 400
        return False
    return True


def test_a_sandbox_webhook_passes_the_official_sdk_and_ours(
    payments: Payments, sandbox: StripeSandbox
) -> None:
    delivery = paid(payments, sandbox)
    header = delivery.headers[SIGNATURE]

    event = stripe.Webhook.construct_event(delivery.body, header, sandbox.webhook_secrets[0])
    result = payments.handle_callback("stripe", delivery.headers, delivery.body)

    assert event.type == "checkout.session.completed"
    assert result.event is not None
    assert result.event.event_id == event.id
    assert result.event.status is PaymentStatus.PAID
    assert result.event.provider_order_id == event.data.object.id
    assert result.event.amount == Money("12.50", "EUR")
    assert result.reply.status_code == 200


def test_during_a_secret_rotation_either_secret_verifies(make_facade: Facade) -> None:
    sandbox = new_sandbox(
        webhook_secrets=["whsec_new_rotation_0123456789", "whsec_old_rotation_9876543210"],
        deliver=lambda delivery: None,
    )
    delivery = paid(make_facade(sandbox), sandbox)
    header = delivery.headers[SIGNATURE]
    assert header.count("v1=") == 2
    for secret in sandbox.webhook_secrets:
        assert sdk_accepts(delivery.body, header, secret)
        assert ours_accepts(make_facade(sandbox, secret=secret), delivery.body, header)
    neither = make_facade(sandbox, secret="whsec_neither_of_them_000000")
    assert not ours_accepts(neither, delivery.body, header)
    assert not sdk_accepts(delivery.body, header, "whsec_neither_of_them_000000")


def _forgeries(delivery: Delivery, secret: str) -> dict[str, tuple[bytes, str]]:
    body, header = delivery.body, delivery.headers[SIGNATURE]
    t = header.split(",")[0].removeprefix("t=")
    stale = int(t) - wire.TOLERANCE_SECONDS - 5
    sign = stripe.WebhookSignature._compute_signature
    return {
        "wrong secret": (body, f"t={t},v1={sign(f'{t}.{body.decode()}', 'whsec_wrong')}"),
        "one body byte changed": (body.replace(b'"paid"', b'"pai_"', 1), header),
        "body re-serialised": (json.dumps(json.loads(body)).encode(), header),
        "stale timestamp, signed": (
            body,
            f"t={stale},v1={sign(f'{stale}.{body.decode()}', secret)}",
        ),
        "timestamp changed": (body, header.replace(f"t={t}", f"t={int(t) - 1}")),
        "no v1": (body, f"t={t}"),
        "v0 only": (body, header.replace("v1=", "v0=")),
        "no timestamp": (body, header.split(",", 1)[1]),
        "empty header": (body, ""),
        "garbage": (body, "not a signature"),
    }


def test_ours_refuses_every_forgery_the_official_sdk_refuses(
    payments: Payments, sandbox: StripeSandbox
) -> None:
    delivery = paid(payments, sandbox)
    secret = sandbox.webhook_secrets[0]
    for label, (body, header) in _forgeries(delivery, secret).items():
        assert not sdk_accepts(body, header, secret), f"the SDK accepted {label}"
        assert not ours_accepts(payments, body, header), f"we accepted {label}"
    assert sandbox.sessions  # the genuine one still passes both, after all that
    assert sdk_accepts(delivery.body, delivery.headers[SIGNATURE], secret)


def test_a_timestamp_from_the_future_is_refused_though_the_sdk_would_take_it(
    payments: Payments, sandbox: StripeSandbox
) -> None:
    delivery = paid(payments, sandbox)
    secret = sandbox.webhook_secrets[0]
    future = int(time.time()) + wire.TOLERANCE_SECONDS + 60
    header = stripe.WebhookSignature.generate_signature_header(
        delivery.body.decode(), secret, timestamp=future
    )
    assert sdk_accepts(delivery.body, header, secret)
    assert not ours_accepts(payments, delivery.body, header)


def test_any_header_the_sdk_refuses_we_refuse(payments: Payments, sandbox: StripeSandbox) -> None:
    delivery = paid(payments, sandbox)
    secret = sandbox.webhook_secrets[0]
    genuine = delivery.headers[SIGNATURE]
    one_character_changed = st.integers(0, len(genuine) - 1).flatmap(
        lambda i: st.sampled_from("0123456789abcdef,=tv ").map(
            lambda c: genuine[:i] + c + genuine[i + 1 :]
        )
    )

    @settings(max_examples=300, deadline=None)
    @given(
        st.one_of(st.text(alphabet="tv01=,abcdef23456789 ", max_size=120), one_character_changed)
    )
    def check(header: str) -> None:
        if not sdk_accepts(delivery.body, header, secret):
            assert not ours_accepts(payments, delivery.body, header)

    check()


def test_an_unknown_event_kind_is_acknowledged_and_moves_nothing(
    payments: Payments, sandbox: StripeSandbox
) -> None:
    body = json.dumps(
        {"id": "evt_1", "type": "customer.created", "created": 1, "data": {"object": {}}}
    ).encode()
    now = int(time.time())
    header = stripe.WebhookSignature.generate_signature_header(
        body.decode(), sandbox.webhook_secrets[0], timestamp=now
    )
    result = payments.handle_callback("stripe", {SIGNATURE: header}, body)
    assert result.event is None
    assert result.reply.status_code == 200


def signed(sandbox: StripeSandbox, event: dict[str, object]) -> dict[str, str]:
    header = stripe.WebhookSignature.generate_signature_header(
        json.dumps(event), sandbox.webhook_secrets[0], timestamp=int(time.time())
    )
    return {SIGNATURE: header}


def test_a_delayed_payment_is_seen_on_completion_and_ends_with_its_async_event(
    payments: Payments, sandbox: StripeSandbox
) -> None:
    session = {
        "id": "cs_test_delayed",
        "object": "checkout.session",
        "client_reference_id": "wh-delayed",
        "status": "complete",
        "payment_status": wire.PAYMENT_UNPAID,
        "amount_total": 1250,
        "currency": "eur",
        "payment_intent": "pi_delayed",
    }
    statuses = []
    for number, kind in enumerate(
        (wire.EVENT_COMPLETED, wire.EVENT_ASYNC_SUCCEEDED, wire.EVENT_ASYNC_FAILED)
    ):
        paid_now = {**session, "payment_status": "paid"} if number else session
        event = {"id": f"evt_{number}", "type": kind, "created": 1, "data": {"object": paid_now}}
        result = payments.handle_callback(
            "stripe", signed(sandbox, event), json.dumps(event).encode()
        )
        assert result.event is not None
        assert result.event.amount == Money("12.50", "EUR")
        statuses.append(result.event.status)
    assert statuses == [PaymentStatus.CONFIRMING, PaymentStatus.PAID, PaymentStatus.FAILED]


@pytest.mark.parametrize(
    "body",
    [b"{not json", b"[]", b'{"id": 5, "type": "x", "created": 1, "data": {"object": {}}}',
     b'{"id": "evt_2", "type": "checkout.session.completed", "created": 1.5, '
     b'"data": {"object": {}}}', b"\xff\xfe"],
)  # fmt: skip
def test_a_signed_but_unreadable_event_is_refused_as_a_payload_error(
    payments: Payments, sandbox: StripeSandbox, body: bytes
) -> None:
    now = int(time.time())
    mac = hmac.new(sandbox.webhook_secrets[0].encode(), f"{now}.".encode() + body, "sha256")
    header = f"t={now},v1={mac.hexdigest()}"
    with pytest.raises((CallbackPayloadError, CallbackVerificationError)) as refused:
        payments.handle_callback("stripe", {SIGNATURE: header}, body)
    assert 400 <= refused.value.reply.status_code < 500
