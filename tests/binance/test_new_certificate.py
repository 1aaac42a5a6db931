"""Webhooks signed by the old platform certificate, the new one, or both (reference 16.3).

A webhook is genuine when a signature it carries verifies, over the raw body, with a key
Binance published for that certificate. The new certificate's endpoint path is a guess: while
the old pair is present its failures never refuse a webhook the old key authenticates.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

import payments_core
from payments_binance import protocol
from payments_core import CallbackVerificationError, PaymentsError, PaymentStatus

from .conftest import (
    SERIAL,
    FakeClock,
    MockBinance,
    callback_headers,
    ok,
    public_pem,
    sign_callback,
)
from .test_callbacks import notification

NEW_SERIAL = "NEWSERIAL0001"
NONCE = "NoNcE0123456789abcdefghijklmnopq"

Deliver = Callable[[dict[str, str]], payments_core.CallbackResult]


@pytest.fixture(scope="module")
def new_key() -> rsa.RSAPrivateKey:
    """The new platform certificate's private key (Binance's, in real life)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def forger() -> rsa.RSAPrivateKey:
    """A key Binance never published."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def body() -> bytes:
    return notification()


@pytest.fixture
def deliver(payments: payments_core.Payments, body: bytes) -> Deliver:
    return lambda headers: payments.handle_callback("binance", headers, body)


def old_pair(key: rsa.RSAPrivateKey, body: bytes, clock: FakeClock) -> dict[str, str]:
    return callback_headers(key, body, timestamp_ms=clock.ms, nonce=NONCE)


def new_pair(
    key: rsa.RSAPrivateKey, body: bytes, clock: FakeClock, serial: str = NEW_SERIAL
) -> dict[str, str]:
    return {
        protocol.HEADER_TIMESTAMP: str(clock.ms),
        protocol.HEADER_NONCE: NONCE,
        protocol.HEADER_CERTIFICATE_SN_NEW: serial,
        protocol.HEADER_SIGNATURE_NEW: sign_callback(key, str(clock.ms), NONCE, body),
    }


def publish_new(binance: MockBinance, *keys: tuple[str, rsa.RSAPrivateKey]) -> None:
    binance.new_certificates = [
        {"certSerial": serial, "certPublic": public_pem(key)} for serial, key in keys
    ]


def paid(result: payments_core.CallbackResult) -> bool:
    return result.event is not None and result.event.status is PaymentStatus.PAID


def test_old_certificate_alone_is_accepted_without_asking_for_the_new_one(
    deliver: Deliver,
    rsa_key: rsa.RSAPrivateKey,
    body: bytes,
    clock: FakeClock,
    binance: MockBinance,
) -> None:
    assert paid(deliver(old_pair(rsa_key, body, clock)))
    assert binance.count(protocol.PATH_CERTIFICATES_NEW) == 0


def test_both_genuine_signatures_are_accepted(
    deliver: Deliver,
    rsa_key: rsa.RSAPrivateKey,
    new_key: rsa.RSAPrivateKey,
    body: bytes,
    clock: FakeClock,
    binance: MockBinance,
) -> None:
    publish_new(binance, (NEW_SERIAL, new_key))
    assert paid(deliver(old_pair(rsa_key, body, clock) | new_pair(new_key, body, clock)))


def test_new_certificate_alone_is_accepted_with_keys_from_the_new_endpoint(
    deliver: Deliver,
    new_key: rsa.RSAPrivateKey,
    body: bytes,
    clock: FakeClock,
    binance: MockBinance,
) -> None:
    publish_new(binance, (NEW_SERIAL, new_key))
    assert paid(deliver(new_pair(new_key, body, clock)))
    assert binance.count(protocol.PATH_CERTIFICATES_NEW) == 1
    assert binance.count(protocol.PATH_CERTIFICATES) == 0
    (fetch,) = binance.sent(protocol.PATH_CERTIFICATES_NEW)
    assert fetch.headers[protocol.HEADER_SIGNATURE]  # signed like every request


def test_a_forged_new_signature_beside_a_genuine_old_one_is_accepted(
    deliver: Deliver,
    rsa_key: rsa.RSAPrivateKey,
    new_key: rsa.RSAPrivateKey,
    forger: rsa.RSAPrivateKey,
    body: bytes,
    clock: FakeClock,
    binance: MockBinance,
) -> None:
    # The genuine old signature covers these very bytes: the forged one cannot change them.
    publish_new(binance, (NEW_SERIAL, new_key))
    assert paid(deliver(old_pair(rsa_key, body, clock) | new_pair(forger, body, clock)))


def test_a_forged_old_signature_beside_a_genuine_new_one_is_accepted(
    deliver: Deliver,
    new_key: rsa.RSAPrivateKey,
    forger: rsa.RSAPrivateKey,
    body: bytes,
    clock: FakeClock,
    binance: MockBinance,
) -> None:
    publish_new(binance, (NEW_SERIAL, new_key))
    assert paid(deliver(old_pair(forger, body, clock) | new_pair(new_key, body, clock)))


@pytest.mark.parametrize("new_endpoint", ["published", "empty", "missing"])
def test_both_forged_are_refused_and_change_nothing(
    new_endpoint: str,
    make_payments: Callable[..., payments_core.Payments],
    new_key: rsa.RSAPrivateKey,
    forger: rsa.RSAPrivateKey,
    body: bytes,
    clock: FakeClock,
    binance: MockBinance,
) -> None:
    if new_endpoint == "published":
        publish_new(binance, (NEW_SERIAL, new_key))
    elif new_endpoint == "empty":
        publish_new(binance)
    payments = make_payments()
    with pytest.raises(CallbackVerificationError) as refused:
        payments.handle_callback(
            "binance", old_pair(forger, body, clock) | new_pair(forger, body, clock), body
        )
    assert refused.value.reply is not None
    assert refused.value.reply.status_code == 401
    assert b'"returnCode":"FAIL"' in refused.value.reply.body


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(404, text="<html>403 ERROR</html>"),
        httpx.Response(200, content=b'{"status":"FAIL","code":"400001","errorMessage":"x"}'),
        httpx.ConnectError("unreachable"),
    ],
    ids=["wrong-path", "error-answer", "unreachable"],
)
def test_a_broken_new_endpoint_leaves_the_old_certificate_to_decide(
    answer: httpx.Response | Exception,
    deliver: Deliver,
    rsa_key: rsa.RSAPrivateKey,
    new_key: rsa.RSAPrivateKey,
    forger: rsa.RSAPrivateKey,
    body: bytes,
    clock: FakeClock,
    binance: MockBinance,
) -> None:
    binance.queue(protocol.PATH_CERTIFICATES_NEW, *[answer] * 8)
    both = old_pair(rsa_key, body, clock) | new_pair(new_key, body, clock)
    assert paid(deliver(both))
    forged_old = old_pair(forger, body, clock) | new_pair(new_key, body, clock)
    if isinstance(answer, Exception):
        # A transport failure ends the operation (the core retries the whole callback): it
        # is answered "try again", never accepted; within the cool-down the old pair decides.
        with pytest.raises(PaymentsError):
            deliver(forged_old)
    else:
        with pytest.raises(CallbackVerificationError):
            deliver(forged_old)
    with pytest.raises(CallbackVerificationError):
        deliver(forged_old)
    assert paid(deliver(both))


def test_an_empty_new_path_ignores_the_new_headers(
    make_payments: Callable[..., payments_core.Payments],
    new_key: rsa.RSAPrivateKey,
    body: bytes,
    clock: FakeClock,
    binance: MockBinance,
) -> None:
    publish_new(binance, (NEW_SERIAL, new_key))
    payments = make_payments(new_certificates_path="")
    with pytest.raises(CallbackVerificationError, match="missing header BinancePay-Certificate"):
        payments.handle_callback("binance", new_pair(new_key, body, clock), body)
    assert binance.count(protocol.PATH_CERTIFICATES_NEW) == 0


def test_the_new_path_is_configurable(
    make_payments: Callable[..., payments_core.Payments],
    new_key: rsa.RSAPrivateKey,
    body: bytes,
    clock: FakeClock,
    binance: MockBinance,
) -> None:
    answer = [{"certSerial": NEW_SERIAL, "certPublic": public_pem(new_key)}]
    binance.queue("/binancepay/openapi/v2/certificates", ok(answer))
    payments = make_payments(new_certificates_path="/binancepay/openapi/v2/certificates")
    assert paid(payments.handle_callback("binance", new_pair(new_key, body, clock), body))


def test_a_half_pair_is_refused(
    deliver: Deliver, new_key: rsa.RSAPrivateKey, body: bytes, clock: FakeClock
) -> None:
    headers = new_pair(new_key, body, clock)
    del headers[protocol.HEADER_SIGNATURE_NEW]
    with pytest.raises(CallbackVerificationError, match="missing header BinancePay-Signature-New"):
        deliver(headers)
    headers = new_pair(new_key, body, clock)
    headers[protocol.HEADER_SIGNATURE_NEW] = "not base64!"
    with pytest.raises(CallbackVerificationError, match="malformed header"):
        deliver(headers)


def test_new_certificate_rotation_costs_one_fetch_per_unknown_serial(
    deliver: Deliver,
    new_key: rsa.RSAPrivateKey,
    forger: rsa.RSAPrivateKey,
    body: bytes,
    clock: FakeClock,
    binance: MockBinance,
) -> None:
    publish_new(binance, (NEW_SERIAL, new_key))
    for _ in range(5):
        assert paid(deliver(new_pair(new_key, body, clock)))
    assert binance.count(protocol.PATH_CERTIFICATES_NEW) == 1

    # Binance publishes a second new key and signs with it, after the cool-down.
    rotated = forger
    publish_new(binance, (NEW_SERIAL, new_key), ("NEWSERIAL0002", rotated))
    clock.advance(61)
    for _ in range(5):
        assert paid(deliver(new_pair(rotated, body, clock, serial="NEWSERIAL0002")))
    assert binance.count(protocol.PATH_CERTIFICATES_NEW) == 2

    # A flood of made-up serials within the cool-down costs at most one more fetch.
    clock.advance(61)
    for i in range(10):
        with pytest.raises(CallbackVerificationError):
            deliver(new_pair(rotated, body, clock, serial=f"MADEUP{i}"))
    assert binance.count(protocol.PATH_CERTIFICATES_NEW) == 3
    assert binance.count(protocol.PATH_CERTIFICATES) == 0


def test_old_and_new_caches_are_separate(
    deliver: Deliver,
    rsa_key: rsa.RSAPrivateKey,
    new_key: rsa.RSAPrivateKey,
    body: bytes,
    clock: FakeClock,
    binance: MockBinance,
) -> None:
    # The old key's serial presented as a new certificate is not found in the new list.
    publish_new(binance, (NEW_SERIAL, new_key))
    with pytest.raises(CallbackVerificationError, match="unknown certificate serial"):
        deliver(new_pair(rsa_key, body, clock, serial=SERIAL))
