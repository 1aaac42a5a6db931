"""Webhooks: signed with the published key (checked with cryptography directly), retried, logged."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from decimal import Decimal

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from payments_binance import protocol
from payments_binance.sandbox import SandboxConfig

from .conftest import Received, Receiver, Running

H_TS, H_NONCE = protocol.HEADER_TIMESTAMP.lower(), protocol.HEADER_NONCE.lower()
H_SN, H_SIG = protocol.HEADER_CERTIFICATE_SN.lower(), protocol.HEADER_SIGNATURE.lower()


def public_keys(run: Running) -> dict[str, rsa.RSAPublicKey]:
    """The certificates endpoint's keys, parsed with cryptography, by serial."""
    keys = {}
    for cert in run.merchant.certificates():
        key = serialization.load_pem_public_key(cert["certPublic"].encode())
        assert isinstance(key, rsa.RSAPublicKey)
        assert (
            cert["certSerial"]
            == hashlib.md5(cert["certPublic"].encode(), usedforsecurity=False).hexdigest().upper()
        )
        keys[cert["certSerial"]] = key
    return keys


def verify(received: Received, keys: dict[str, rsa.RSAPublicKey]) -> None:
    """RSASSA-PKCS1-v1_5/SHA-256 over ``ts LF nonce LF raw body LF``; raises if invalid."""
    headers = received.headers
    payload = (
        headers[H_TS].encode() + b"\n" + headers[H_NONCE].encode() + b"\n" + received.body + b"\n"
    )
    signature = base64.b64decode(headers[H_SIG], validate=True)
    keys[headers[H_SN]].verify(signature, payload, padding.PKCS1v15(), hashes.SHA256())


def test_pay_success_webhook_verifies_against_published_key(
    running: Running, receiver: Receiver
) -> None:
    order = running.merchant.create("HOOK1", webhookUrl=receiver.url, passThroughInfo="booking-42")
    running.sandbox.pay(order["prepayId"])
    running.sandbox.wait_for_webhooks_sync()
    [hook] = receiver.wait_for(1)
    keys = public_keys(running)
    verify(hook, keys)
    assert hook.headers[H_SN] == running.sandbox.certificate_serial
    assert len(hook.headers[H_NONCE]) == 32
    assert hook.headers[H_NONCE].isalnum()
    assert len(hook.headers[H_SIG]) == 344  # base64 of a 2048-bit signature

    # bizId is a JSON number above 2^53: a float parse would change it.
    assert f'"bizId":{order["prepayId"]},'.encode() in hook.body
    body = json.loads(hook.body, parse_float=Decimal)
    assert body["bizId"] == int(order["prepayId"]) > 2**53
    assert float(body["bizId"]) != body["bizId"]
    assert (body["bizType"], body["bizIdStr"], body["bizStatus"]) == (
        "PAY",
        order["prepayId"],
        "PAY_SUCCESS",
    )
    inner = json.loads(body["data"], parse_float=Decimal)
    assert inner["merchantTradeNo"] == "HOOK1"
    assert inner["totalFee"] == Decimal("10.50")
    assert b'"totalFee\\":10.50000000' in hook.body
    assert inner["currency"] == "USDT"
    assert inner["passThroughInfo"] == "booking-42"
    assert inner["tradeType"] == "WEB"
    assert inner["transactionId"].startswith("M_R_")
    for name in ("transactTime", "openUserId", "productType", "productName", "commission"):
        assert name in inner
    # What the payer actually paid, and in which asset (reference section 16.4).
    (paid,) = inner["paymentInfo"]["paymentInstructions"]
    assert (paid["currency"], paid["amount"]) == ("USDT", Decimal("10.50"))

    # Negative checks: one byte changed, re-serialised body, no trailing LF.
    with pytest.raises(InvalidSignature):
        verify(Received(hook.body.replace(b"PAY_SUCCESS", b"PAY_SUCCESs"), hook.headers), keys)
    with pytest.raises(InvalidSignature):
        verify(Received(json.dumps(body).encode(), hook.headers), keys)
    payload = f"{hook.headers[H_TS]}\n{hook.headers[H_NONCE]}\n".encode() + hook.body
    with pytest.raises(InvalidSignature):
        keys[hook.headers[H_SN]].verify(
            base64.b64decode(hook.headers[H_SIG]), payload, padding.PKCS1v15(), hashes.SHA256()
        )


def test_close_sends_pay_closed(running: Running, receiver: Receiver) -> None:
    order = running.merchant.create("HOOK2", webhookUrl=receiver.url)
    closed = running.merchant.post(protocol.PATH_CLOSE_ORDER, {"merchantTradeNo": "HOOK2"})
    assert closed.json() == {
        "status": "SUCCESS",
        "code": "000000",
        "data": True,
        "errorMessage": None,
    }
    again = running.merchant.post(protocol.PATH_CLOSE_ORDER, {"prepayId": order["prepayId"]})
    assert again.json()["data"] is True  # closing a closed order is a no-op, no second webhook
    running.sandbox.wait_for_webhooks_sync()
    [hook] = receiver.wait_for(1)
    verify(hook, public_keys(running))
    assert json.loads(hook.body)["bizStatus"] == "PAY_CLOSED"
    assert running.merchant.query(prepayId=order["prepayId"])["status"] == "CANCELED"


def test_expiry_sends_pay_closed(start: Callable[..., Running], receiver: Receiver) -> None:
    now = [1_750_000_000_000]
    run = start(clock=lambda: now[0], order_expire_default_ms=60_000, timestamp_window_ms=10**13)
    order = run.merchant.create("EXPIRE1", webhookUrl=receiver.url)
    now[0] += 59_999
    assert run.sandbox.expire_due() == []
    now[0] += 1
    assert [o.prepay_id for o in run.sandbox.expire_due()] == [order["prepayId"]]
    run.sandbox.wait_for_webhooks_sync()
    [hook] = receiver.wait_for(1)
    assert json.loads(hook.body)["bizStatus"] == "PAY_CLOSED"
    assert run.merchant.query(prepayId=order["prepayId"])["status"] == "EXPIRED"
    assert run.merchant.http.post(f"/sandbox/orders/{order['prepayId']}/pay").status_code == 409


def test_expiry_is_applied_lazily_on_query(start: Callable[..., Running]) -> None:
    now = [1_750_000_000_000]
    run = start(clock=lambda: now[0], timestamp_window_ms=10**13)
    order = run.merchant.create("EXPIRE2", orderExpireTime=now[0] + 5_000)
    now[0] += 5_000
    assert run.merchant.query(merchantTradeNo="EXPIRE2")["status"] == "EXPIRED"
    assert [a.skipped for a in run.sandbox.webhook_log] == [
        "order has no webhookUrl and no default_webhook_url is configured"
    ]
    assert order["expireTime"] == now[0]


@pytest.mark.parametrize(
    "answers",
    [
        [(500, b"oops")],
        [(200, b'{"returnCode":"FAIL","returnMessage":"busy"}')],
        [(200, b"SUCCESS")],
        [(404, b""), (200, b"not json"), (503, b"")],
    ],
    ids=["http-500", "returnCode-FAIL", "not-json", "three-failures"],
)
def test_unacknowledged_delivery_is_retried_and_resigned(
    running: Running, receiver: Receiver, answers: list[tuple[int, bytes]]
) -> None:
    receiver.script.extend(answers)
    order = running.merchant.create("RETRY1", webhookUrl=receiver.url)
    running.sandbox.pay(order["prepayId"])
    running.sandbox.wait_for_webhooks_sync()
    hooks = receiver.wait_for(len(answers) + 1)
    assert len({h.body for h in hooks}) == 1  # the same bytes every time
    assert len({h.headers[H_NONCE] for h in hooks}) == len(hooks)  # re-signed every time
    keys = public_keys(running)
    for hook in hooks:
        verify(hook, keys)
    log = [(a.attempt, a.ok) for a in running.sandbox.webhook_log]
    assert log == [(i + 1, i == len(answers)) for i in range(len(answers) + 1)]
    assert running.sandbox.stats()["webhooks_delivered"] == 1


def test_gives_up_after_six_retries(running: Running, receiver: Receiver) -> None:
    receiver.script.extend([(500, b"")] * 10)
    order = running.merchant.create("RETRY2", webhookUrl=receiver.url)
    running.sandbox.pay(order["prepayId"])
    running.sandbox.wait_for_webhooks_sync()
    assert len(receiver.wait_for(7)) == 7
    stats = running.sandbox.stats()
    assert (stats["webhook_attempts"], stats["webhooks_failed"], stats["webhooks_delivered"]) == (
        7,
        1,
        0,
    )


def test_http200_ack_mode_accepts_any_200(
    start: Callable[..., Running], receiver: Receiver
) -> None:
    run = start(webhook_ack="http200")
    receiver.script.append((200, b'{"message":"Done","code":"SUCCESS"}'))
    order = run.merchant.create("ACK1", webhookUrl=receiver.url)
    run.sandbox.pay(order["prepayId"])
    run.sandbox.wait_for_webhooks_sync()
    assert len(receiver.wait_for(1)) == 1
    assert run.sandbox.stats()["webhook_attempts"] == 1


def test_delivery_switched_off_is_logged_not_sent(
    start: Callable[..., Running], receiver: Receiver
) -> None:
    run = start(deliver_webhooks=False)
    order = run.merchant.create("OFF1", webhookUrl=receiver.url)
    run.sandbox.pay(order["prepayId"])
    run.sandbox.wait_for_webhooks_sync()
    [entry] = run.sandbox.webhook_log
    assert entry.skipped == "webhook delivery is switched off"
    assert entry.delivery.url == receiver.url
    assert receiver.received == []
    # The logged, signed body can still be replayed by a test (e.g. reconciliation tests).
    verify(
        Received(entry.delivery.body, {k.lower(): v for k, v in entry.headers.items()}),
        public_keys(run),
    )


def test_default_webhook_url_is_used_for_orders_without_one(
    start: Callable[..., Running], receiver: Receiver
) -> None:
    run = start(default_webhook_url=receiver.url)
    order = run.merchant.create("DEFAULT1")
    run.sandbox.pay(order["prepayId"])
    run.sandbox.wait_for_webhooks_sync()
    assert len(receiver.wait_for(1)) == 1


def test_key_rotation_publishes_both_and_signs_with_second(
    start: Callable[..., Running], receiver: Receiver
) -> None:
    second = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    run = start(extra_signing_keys=(second,))
    first_serial = run.sandbox.certificate_serial
    a = run.merchant.create("ROT1", webhookUrl=receiver.url)
    run.sandbox.pay(a["prepayId"])
    run.sandbox.wait_for_webhooks_sync()
    assert run.sandbox.rotate_key() != first_serial
    b = run.merchant.create("ROT2", webhookUrl=receiver.url)
    run.sandbox.pay(b["prepayId"])
    run.sandbox.wait_for_webhooks_sync()
    hooks = receiver.wait_for(2)
    keys = public_keys(run)
    assert set(keys) == set(run.sandbox.certificate_serials)
    assert len(keys) == 2
    assert [h.headers[H_SN] for h in hooks] == [first_serial, run.sandbox.certificate_serial]
    for hook in hooks:
        verify(hook, keys)


def test_webhook_log_endpoint(running: Running, receiver: Receiver) -> None:
    order = running.merchant.create("LOG1", webhookUrl=receiver.url)
    running.sandbox.pay(order["prepayId"])
    running.sandbox.wait_for_webhooks_sync()
    log = running.merchant.http.get("/sandbox/webhooks").json()
    assert [(e["prepayId"], e["bizStatus"], e["ok"], e["statusCode"]) for e in log] == [
        (order["prepayId"], "PAY_SUCCESS", True, 200)
    ]


def test_unreachable_webhook_url_is_retried_then_failed(running: Running) -> None:
    # Nothing listens on the discard port of loopback.
    order = running.merchant.create("DOWN1", webhookUrl="http://127.0.0.1:9/hook")
    running.sandbox.pay(order["prepayId"])
    running.sandbox.wait_for_webhooks_sync()
    attempts = [a for a in running.sandbox.webhook_log if a.delivery.subject == order["prepayId"]]
    assert len(attempts) == 7
    assert not any(a.ok for a in attempts)
    assert attempts[0].error is not None
    assert "ConnectError" in attempts[0].error


NEW_PATH = "/binancepay/openapi/certificates/new"


def _new_certificates(run: Running) -> list[dict[str, str]]:
    response = run.merchant.post(NEW_PATH, b"{}")
    assert response.status_code == 200, response.text
    certs: list[dict[str, str]] = response.json()["data"]
    return certs


@pytest.mark.parametrize("mode", ["off", "both", "new_only"])
def test_the_new_certificate_modes_publish_and_sign_as_binance_describes(
    mode: str, start: Callable[..., Running], receiver: Receiver
) -> None:
    run = start(new_certificate=mode)
    published = _new_certificates(run)
    assert len(published) == (0 if mode == "off" else 1)
    order = run.merchant.create(f"NEW{mode.replace('_', '')}", webhookUrl=receiver.url)
    run.sandbox.pay(order["prepayId"])
    run.sandbox.wait_for_webhooks_sync()
    [hook] = receiver.wait_for(1)
    if mode != "new_only":
        verify(hook, public_keys(run))
    else:
        assert H_SIG not in hook.headers
        assert H_SN not in hook.headers
    if mode == "off":
        assert "binancepay-signature-new" not in hook.headers
        return
    new_keys = {
        cert["certSerial"]: serialization.load_pem_public_key(cert["certPublic"].encode())
        for cert in published
    }
    renamed = {
        H_TS: hook.headers[H_TS],
        H_NONCE: hook.headers[H_NONCE],
        H_SN: hook.headers["binancepay-certificate-sn-new"],
        H_SIG: hook.headers["binancepay-signature-new"],
    }
    verify(Received(hook.body, renamed), new_keys)  # type: ignore[arg-type]
    assert set(new_keys).isdisjoint(public_keys(run))


def test_the_new_certificate_path_is_configurable_and_rotates(
    start: Callable[..., Running],
) -> None:
    run = start(new_certificate="both", new_certificates_path="/binancepay/openapi/v2/certs")
    [first] = [
        c["certSerial"] for c in run.merchant.post("/binancepay/openapi/v2/certs").json()["data"]
    ]
    second = run.sandbox.rotate_new_key()
    serials = [
        c["certSerial"] for c in run.merchant.post("/binancepay/openapi/v2/certs").json()["data"]
    ]
    assert serials == [first, second]
    with pytest.raises(ValueError, match="new certificate is off"):
        start().sandbox.rotate_new_key()
    with pytest.raises(ValueError, match="new_certificate"):
        SandboxConfig(new_certificate="sometimes")  # type: ignore[arg-type]
