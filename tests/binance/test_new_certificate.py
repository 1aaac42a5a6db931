"""Webhooks signed by the old platform certificate, the new one, or both (reference 16.3).

A webhook is genuine when a signature it carries verifies, over the raw body, with a key
Binance published for that certificate. The new certificate's endpoint path is a guess: while
the old pair is present its failures never refuse a webhook the old key authenticates.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs
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


@attrs.frozen
class Signer:
    """Signs the test's one notification as Binance would, with either certificate's headers.

    ``old`` is the key of the certificate the provider fetches from the old endpoint, ``new``
    the one it may publish at the new endpoint, ``forger`` a key Binance never published.
    """

    old: rsa.RSAPrivateKey
    new: rsa.RSAPrivateKey
    forger: rsa.RSAPrivateKey
    body: bytes
    clock: FakeClock
    binance: MockBinance

    def old_pair(self, key: rsa.RSAPrivateKey | None = None) -> dict[str, str]:
        return callback_headers(
            self.old if key is None else key, self.body, timestamp_ms=self.clock.ms, nonce=NONCE
        )

    def new_pair(
        self, key: rsa.RSAPrivateKey | None = None, serial: str = NEW_SERIAL
    ) -> dict[str, str]:
        ms = str(self.clock.ms)
        return {
            protocol.HEADER_TIMESTAMP: ms,
            protocol.HEADER_NONCE: NONCE,
            protocol.HEADER_CERTIFICATE_SN_NEW: serial,
            protocol.HEADER_SIGNATURE_NEW: sign_callback(
                self.new if key is None else key, ms, NONCE, self.body
            ),
        }

    def publish_new(self, *keys: tuple[str, rsa.RSAPrivateKey]) -> None:
        """What the new certificates endpoint answers from now on."""
        self.binance.new_certificates = [
            {"certSerial": serial, "certPublic": public_pem(key)} for serial, key in keys
        ]


@pytest.fixture
def signer(
    rsa_key: rsa.RSAPrivateKey,
    new_key: rsa.RSAPrivateKey,
    forger: rsa.RSAPrivateKey,
    clock: FakeClock,
    binance: MockBinance,
) -> Signer:
    return Signer(rsa_key, new_key, forger, notification(), clock, binance)


@pytest.fixture
def deliver(payments: payments_core.Payments, signer: Signer) -> Deliver:
    return lambda headers: payments.handle_callback("binance", headers, signer.body)


def paid(result: payments_core.CallbackResult) -> bool:
    return result.event is not None and result.event.status is PaymentStatus.PAID


def test_old_certificate_alone_is_accepted_without_asking_for_the_new_one(
    deliver: Deliver, signer: Signer, binance: MockBinance
) -> None:
    assert paid(deliver(signer.old_pair()))
    assert binance.count(protocol.PATH_CERTIFICATES_NEW) == 0


def test_both_genuine_signatures_are_accepted(deliver: Deliver, signer: Signer) -> None:
    signer.publish_new((NEW_SERIAL, signer.new))
    assert paid(deliver(signer.old_pair() | signer.new_pair()))


def test_new_certificate_alone_is_accepted_with_keys_from_the_new_endpoint(
    deliver: Deliver, signer: Signer, binance: MockBinance
) -> None:
    signer.publish_new((NEW_SERIAL, signer.new))
    assert paid(deliver(signer.new_pair()))
    assert binance.count(protocol.PATH_CERTIFICATES_NEW) == 1
    assert binance.count(protocol.PATH_CERTIFICATES) == 0
    (fetch,) = binance.sent(protocol.PATH_CERTIFICATES_NEW)
    assert fetch.headers[protocol.HEADER_SIGNATURE]  # signed like every request


def test_a_forged_new_signature_beside_a_genuine_old_one_is_accepted(
    deliver: Deliver, signer: Signer
) -> None:
    # The genuine old signature covers these very bytes: the forged one cannot change them.
    signer.publish_new((NEW_SERIAL, signer.new))
    assert paid(deliver(signer.old_pair() | signer.new_pair(signer.forger)))


def test_a_forged_old_signature_beside_a_genuine_new_one_is_accepted(
    deliver: Deliver, signer: Signer
) -> None:
    signer.publish_new((NEW_SERIAL, signer.new))
    assert paid(deliver(signer.old_pair(signer.forger) | signer.new_pair()))


@pytest.mark.parametrize("new_endpoint", ["published", "empty", "missing"])
def test_both_forged_are_refused_and_change_nothing(
    new_endpoint: str, make_payments: Callable[..., payments_core.Payments], signer: Signer
) -> None:
    if new_endpoint == "published":
        signer.publish_new((NEW_SERIAL, signer.new))
    elif new_endpoint == "empty":
        signer.publish_new()
    payments = make_payments()
    forged = signer.old_pair(signer.forger) | signer.new_pair(signer.forger)
    with pytest.raises(CallbackVerificationError) as refused:
        payments.handle_callback("binance", forged, signer.body)
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
    answer: httpx.Response | Exception, deliver: Deliver, signer: Signer, binance: MockBinance
) -> None:
    binance.queue(protocol.PATH_CERTIFICATES_NEW, *[answer] * 8)
    both = signer.old_pair() | signer.new_pair()
    assert paid(deliver(both))
    forged_old = signer.old_pair(signer.forger) | signer.new_pair()
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
    make_payments: Callable[..., payments_core.Payments], signer: Signer, binance: MockBinance
) -> None:
    signer.publish_new((NEW_SERIAL, signer.new))
    payments = make_payments(new_certificates_path="")
    with pytest.raises(CallbackVerificationError, match="missing header BinancePay-Certificate"):
        payments.handle_callback("binance", signer.new_pair(), signer.body)
    assert binance.count(protocol.PATH_CERTIFICATES_NEW) == 0


def test_the_new_path_is_configurable(
    make_payments: Callable[..., payments_core.Payments], signer: Signer, binance: MockBinance
) -> None:
    answer = [{"certSerial": NEW_SERIAL, "certPublic": public_pem(signer.new)}]
    binance.queue("/binancepay/openapi/v2/certificates", ok(answer))
    payments = make_payments(new_certificates_path="/binancepay/openapi/v2/certificates")
    assert paid(payments.handle_callback("binance", signer.new_pair(), signer.body))


def test_a_half_pair_is_refused(deliver: Deliver, signer: Signer) -> None:
    headers = signer.new_pair()
    del headers[protocol.HEADER_SIGNATURE_NEW]
    with pytest.raises(CallbackVerificationError, match="missing header BinancePay-Signature-New"):
        deliver(headers)
    headers = signer.new_pair()
    headers[protocol.HEADER_SIGNATURE_NEW] = "not base64!"
    with pytest.raises(CallbackVerificationError, match="malformed header"):
        deliver(headers)


def test_new_certificate_rotation_costs_one_fetch_per_unknown_serial(
    deliver: Deliver, signer: Signer, clock: FakeClock, binance: MockBinance
) -> None:
    signer.publish_new((NEW_SERIAL, signer.new))
    for _ in range(5):
        assert paid(deliver(signer.new_pair()))
    assert binance.count(protocol.PATH_CERTIFICATES_NEW) == 1

    # Binance publishes a second new key and signs with it, after the cool-down.
    rotated = signer.forger
    signer.publish_new((NEW_SERIAL, signer.new), ("NEWSERIAL0002", rotated))
    clock.advance(61)
    for _ in range(5):
        assert paid(deliver(signer.new_pair(rotated, serial="NEWSERIAL0002")))
    assert binance.count(protocol.PATH_CERTIFICATES_NEW) == 2

    # A flood of made-up serials within the cool-down costs at most one more fetch.
    clock.advance(61)
    for i in range(10):
        with pytest.raises(CallbackVerificationError):
            deliver(signer.new_pair(rotated, serial=f"MADEUP{i}"))
    assert binance.count(protocol.PATH_CERTIFICATES_NEW) == 3
    assert binance.count(protocol.PATH_CERTIFICATES) == 0


def test_old_and_new_caches_are_separate(deliver: Deliver, signer: Signer) -> None:
    # The old key's serial presented as a new certificate is not found in the new list.
    signer.publish_new((NEW_SERIAL, signer.new))
    with pytest.raises(CallbackVerificationError, match="unknown certificate serial"):
        deliver(signer.new_pair(signer.old, serial=SERIAL))


def test_an_old_key_that_cannot_be_fetched_leaves_a_forged_new_signature_undecided(
    deliver: Deliver, signer: Signer, binance: MockBinance
) -> None:
    """The old certificate's keys cannot be fetched and the new signature is forged: the
    webhook cannot be judged yet, so it is answered "try again" (the fetch's error) for
    Binance to deliver again, never refused as a forgery and dropped."""
    signer.publish_new((NEW_SERIAL, signer.new))
    binance.queue(protocol.PATH_CERTIFICATES, httpx.Response(503, text="busy"))
    with pytest.raises(PaymentsError) as caught:
        deliver(signer.old_pair() | signer.new_pair(signer.forger))
    assert not isinstance(caught.value, CallbackVerificationError)


def test_a_forged_new_signature_alone_is_refused_as_not_verifying(
    deliver: Deliver, signer: Signer
) -> None:
    signer.publish_new((NEW_SERIAL, signer.new))
    with pytest.raises(CallbackVerificationError) as refused:
        deliver(signer.new_pair(signer.forger))
    assert str(refused.value) == "callback refused: signature does not verify"


def test_a_broken_new_endpoint_is_logged_with_the_serial_and_the_error(
    deliver: Deliver, signer: Signer, binance: MockBinance, caplog: pytest.LogCaptureFixture
) -> None:
    """The operator is told which new certificate could not be checked, and why, when the old
    certificate decides alone."""
    binance.queue(protocol.PATH_CERTIFICATES_NEW, httpx.Response(404, text="<html>404</html>"))
    with (
        caplog.at_level("WARNING", logger="payments_binance.webhooks"),
        pytest.raises(CallbackVerificationError),
    ):
        deliver(signer.old_pair(signer.forger) | signer.new_pair())
    (warning,) = [r.getMessage() for r in caplog.records if r.name == "payments_binance.webhooks"]
    assert warning == (
        f"new certificate {NEW_SERIAL!r} could not be checked: "
        "certificates: Binance answered with a body that is not a JSON object"
    )


def test_an_old_key_that_cannot_be_fetched_leaves_the_genuine_new_signature_to_decide(
    deliver: Deliver, signer: Signer, binance: MockBinance
) -> None:
    signer.publish_new((NEW_SERIAL, signer.new))
    binance.queue(protocol.PATH_CERTIFICATES, httpx.Response(503, text="busy"))
    assert paid(deliver(signer.old_pair() | signer.new_pair()))
