"""What a refused or deferred Binance callback tells the application and Binance: the error's
provider, its reason in the reply, the wait before a redelivery, and the log line of a
certificate fetch. The gaps a mutation run of the webhook verification found
(docs/mutation.md)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

import payments_core
from payments_binance import protocol
from payments_binance.settings import DEFAULT_MAX_CALLBACK_BYTES
from payments_core import CallbackDeferred, CallbackError, CallbackPayloadError
from payments_core import CallbackVerificationError as Refused

from .conftest import SERIAL, FakeClock, MockBinance, callback_headers
from .test_callbacks import notification


def refusal(
    payments: payments_core.Payments,
    key: rsa.RSAPrivateKey,
    clock: FakeClock,
    body: bytes,
    expected: type[CallbackError],
    **headers: str,
) -> tuple[CallbackError, str]:
    """The error a signed ``body`` is refused with, and the reason its reply gives Binance."""
    signed = callback_headers(key, body, timestamp_ms=clock.ms, **headers)
    with pytest.raises(expected) as caught:
        payments.handle_callback("binance", signed, body)
    return caught.value, json.loads(caught.value.reply.body)["returnMessage"]


def test_an_unknown_certificate_serial_is_refused_by_binance_saying_so(
    payments: payments_core.Payments, rsa_key: rsa.RSAPrivateKey, clock: FakeClock
) -> None:
    error, reason = refusal(payments, rsa_key, clock, notification(), Refused, serial="FORGED")
    assert (error.provider, reason) == ("binance", "unknown certificate serial")
    assert str(error) == "callback refused: unknown certificate serial"


@pytest.mark.parametrize(
    ("body", "reason"),
    [(b"{not json", "body is not valid JSON"), (b"[1, 2]", "body is not a JSON object")],
    ids=["not-json", "not-an-object"],
)
def test_a_genuinely_signed_unreadable_body_is_refused_by_binance_saying_why(
    body: bytes,
    reason: str,
    payments: payments_core.Payments,
    rsa_key: rsa.RSAPrivateKey,
    clock: FakeClock,
) -> None:
    error, said = refusal(payments, rsa_key, clock, body, CallbackPayloadError)
    assert (error.provider, said) == ("binance", reason)


def test_a_deferred_callback_says_when_to_deliver_it_again(
    payments: payments_core.Payments,
    binance: MockBinance,
    rsa_key: rsa.RSAPrivateKey,
    clock: FakeClock,
) -> None:
    binance.queue(protocol.PATH_CERTIFICATES, httpx.Response(503, text="busy"))
    body = notification()
    headers = callback_headers(rsa_key, body, timestamp_ms=clock.ms)
    with pytest.raises(payments_core.PaymentsError):
        payments.handle_callback("binance", headers, body)  # the fetch fails
    with pytest.raises(CallbackDeferred) as caught:
        payments.handle_callback("binance", headers, body)  # within the cool-down
    deferred = caught.value
    assert (deferred.provider, deferred.retry_after) == ("binance", 5.0)
    assert str(deferred) == (
        "callback deferred: the certificates are being fetched or could not be fetched"
    )


def test_a_certificate_fetch_is_logged_with_the_serial_and_the_path(
    payments: payments_core.Payments,
    rsa_key: rsa.RSAPrivateKey,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    body = notification()
    headers = callback_headers(rsa_key, body, timestamp_ms=clock.ms)
    with caplog.at_level(logging.INFO, logger="payments_binance.webhooks"):
        assert payments.handle_callback("binance", headers, body).event is not None
    fetched = [r.getMessage() for r in caplog.records if r.name == "payments_binance.webhooks"]
    assert fetched == [
        f"certificate serial {SERIAL!r} is not cached: fetching {protocol.PATH_CERTIFICATES}"
    ]


def _without(headers: dict[str, str], *names: str) -> dict[str, str]:
    return {key: value for key, value in headers.items() if key not in names}


def _as_signed(headers: dict[str, str]) -> dict[str, str]:
    return headers


@pytest.mark.parametrize(
    ("change", "offset_ms", "reason"),
    [
        (
            lambda h: _without(h, protocol.HEADER_CERTIFICATE_SN, protocol.HEADER_SIGNATURE),
            0,
            "missing header BinancePay-Certificate-SN",
        ),
        (
            lambda h: _without(h, protocol.HEADER_TIMESTAMP),
            0,
            "missing header BinancePay-Timestamp",
        ),
        (
            lambda h: {**h, protocol.HEADER_TIMESTAMP: "12:00"},
            0,
            "malformed header BinancePay-Timestamp",
        ),
        (_as_signed, -301_000, "timestamp is stale by 301 s (tolerance 300 s)"),
        (_as_signed, 301_000, "timestamp is in the future by 301 s (tolerance 300 s)"),
    ],
    ids=["no-certificate", "no-timestamp", "malformed-timestamp", "stale", "future"],
)
def test_a_callback_with_broken_or_untimely_headers_is_refused_by_binance_saying_which(
    change: Callable[[dict[str, str]], dict[str, str]],
    offset_ms: int,
    reason: str,
    payments: payments_core.Payments,
    rsa_key: rsa.RSAPrivateKey,
    clock: FakeClock,
) -> None:
    """Headers missing or malformed, or a genuine signature of a time ``offset_ms`` away from
    the clock's, beyond the tolerance."""
    body = notification()
    headers = change(callback_headers(rsa_key, body, timestamp_ms=clock.ms + offset_ms))
    with pytest.raises(Refused) as caught:
        payments.handle_callback("binance", headers, body)
    assert caught.value.provider == "binance"
    assert json.loads(caught.value.reply.body)["returnMessage"] == reason


def test_a_signature_by_another_key_is_refused_by_binance_saying_so(
    payments: payments_core.Payments, clock: FakeClock
) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    error, reason = refusal(payments, other, clock, notification(), Refused)
    assert (error.provider, reason) == ("binance", "signature does not verify")


def test_an_oversized_body_is_refused_by_binance_with_413_naming_the_cap(
    payments: payments_core.Payments, rsa_key: rsa.RSAPrivateKey, clock: FakeClock
) -> None:
    body = notification() + b" " * DEFAULT_MAX_CALLBACK_BYTES
    error, reason = refusal(payments, rsa_key, clock, body, CallbackPayloadError)
    assert (error.provider, error.reply.status_code) == ("binance", 413)
    assert reason == f"body exceeds {DEFAULT_MAX_CALLBACK_BYTES} bytes"


def test_the_tolerance_is_counted_in_whole_milliseconds_of_the_clock(
    payments: payments_core.Payments, rsa_key: rsa.RSAPrivateKey, clock: FakeClock
) -> None:
    """A clock half a millisecond into its millisecond reads as that millisecond: a timestamp
    exactly the tolerance before it is inside, as docs/binance.md says."""
    clock.advance(0.0005)
    body = notification()
    headers = callback_headers(rsa_key, body, timestamp_ms=clock.ms - 300_000)
    assert payments.handle_callback("binance", headers, body).event is not None
