"""Callback verification at its edges: the timestamp tolerance to the millisecond, the body cap
to the byte, and a signature header that only resembles Binance's base64."""

from __future__ import annotations

import base64
import json
import string
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

import payments_core
from payments_binance import BinancePayProvider, protocol
from payments_binance.settings import DEFAULT_MAX_CALLBACK_BYTES, DEFAULT_TIMESTAMP_TOLERANCE
from payments_core import (
    CallbackPayloadError,
    CallbackVerificationError,
    Money,
    Order,
    PaymentStatus,
    open_ledger,
)
from payments_core.testing.pytest_plugin import PaymentsFactory

from .conftest import API_KEY, API_SECRET, FakeClock, MockBinance, callback_headers
from .test_callbacks import BIG_ID, notification

TOLERANCE_MS = int(DEFAULT_TIMESTAMP_TOLERANCE * 1000)
_BASE64_ALPHABET = string.ascii_uppercase + string.ascii_lowercase + string.digits + "+/"


def _deliver_at(
    payments: payments_core.Payments, key: rsa.RSAPrivateKey, clock: FakeClock, offset_ms: int
) -> payments_core.CallbackResult:
    """A genuinely signed notification stamped ``offset_ms`` from the provider's clock."""
    body = notification()
    headers = callback_headers(key, body, timestamp_ms=clock.ms + offset_ms)
    return payments.handle_callback("binance", headers, body)


# -- the timestamp tolerance ----------------------------------------------------------------


@pytest.mark.parametrize("sign", [-1, 1], ids=["past", "future"])
def test_a_timestamp_exactly_at_the_tolerance_is_accepted(
    sign: int, payments: payments_core.Payments, rsa_key: rsa.RSAPrivateKey, clock: FakeClock
) -> None:
    """docs/binance.md: "within timestamp_tolerance", so the bound itself is inside."""
    result = _deliver_at(payments, rsa_key, clock, sign * TOLERANCE_MS)
    assert result.event is not None
    assert result.event.status is PaymentStatus.PAID


@pytest.mark.parametrize(
    ("sign", "said"), [(-1, "stale"), (1, "in the future")], ids=["past", "future"]
)
def test_a_timestamp_one_millisecond_past_the_tolerance_is_refused(
    sign: int,
    said: str,
    payments: payments_core.Payments,
    rsa_key: rsa.RSAPrivateKey,
    clock: FakeClock,
    binance: MockBinance,
) -> None:
    with pytest.raises(CallbackVerificationError) as caught:
        _deliver_at(payments, rsa_key, clock, sign * (TOLERANCE_MS + 1))
    assert caught.value.reply.status_code == 401
    assert said in json.loads(caught.value.reply.body)["returnMessage"]
    assert binance.requests == []  # refused before any certificate is fetched


# -- the body size cap ----------------------------------------------------------------------


def _signed_body_of(
    size: int, key: rsa.RSAPrivateKey, clock: FakeClock
) -> tuple[bytes, dict[str, str]]:
    """A genuine notification padded with JSON whitespace to exactly ``size`` bytes."""
    body = notification()
    body += b" " * (size - len(body))
    assert len(body) == size
    return body, callback_headers(key, body, timestamp_ms=clock.ms)


def test_a_body_exactly_at_the_cap_is_accepted(
    payments: payments_core.Payments, rsa_key: rsa.RSAPrivateKey, clock: FakeClock
) -> None:
    body, headers = _signed_body_of(DEFAULT_MAX_CALLBACK_BYTES, rsa_key, clock)
    result = payments.handle_callback("binance", headers, body)
    assert result.event is not None
    assert result.event.status is PaymentStatus.PAID


def test_a_body_one_byte_over_the_cap_is_refused_with_413_before_anything_else(
    payments: payments_core.Payments,
    rsa_key: rsa.RSAPrivateKey,
    clock: FakeClock,
    binance: MockBinance,
) -> None:
    body, headers = _signed_body_of(DEFAULT_MAX_CALLBACK_BYTES + 1, rsa_key, clock)
    with pytest.raises(CallbackPayloadError) as caught:
        payments.handle_callback("binance", headers, body)
    assert caught.value.reply.status_code == 413
    assert json.loads(caught.value.reply.body)["returnCode"] == "FAIL"
    assert binance.requests == []


# -- a signature header that is not canonical base64 -----------------------------------------


def _stray(signature: str, char: str) -> str:
    return signature[:100] + char + signature[100:]


def _bits_after_the_last_byte(signature: str) -> str:
    """The same bytes with a bit set that base64 leaves zero: a 2048-bit signature is 256
    bytes, so its text ends in one character carrying 2 bits of data and 4 zero bits, then
    ``==``."""
    assert signature.endswith("==")
    last = _BASE64_ALPHABET.index(signature[-3])
    return signature[:-3] + _BASE64_ALPHABET[last | 1] + "=="


#: Each disguise of a genuine signature that a lenient decoder turns back into its bytes.
DISGUISES: dict[str, Callable[[str], str]] = {
    "stray-character": lambda signature: _stray(signature, "!"),
    "space": lambda signature: _stray(signature, " "),
    "line-break": lambda signature: _stray(signature, "\n"),
    "bits-after-the-last-byte": _bits_after_the_last_byte,
}


@pytest.fixture
def with_ledger(
    tmp_path: Path, binance: MockBinance, clock: FakeClock, payments_factory: PaymentsFactory
) -> payments_core.Payments:
    """A facade over an SQLite ledger holding the pending order that ``notification()`` pays."""
    payments = payments_factory(
        {"binance": BinancePayProvider},
        config=payments_core.Config(),
        provider_settings={"binance": {"api_key": API_KEY, "api_secret": API_SECRET}},
        transport=httpx.MockTransport(binance),
        clock=clock,
        ledger=open_ledger(f"sqlite:///{tmp_path / 'ledger.sqlite3'}"),
    )
    assert payments.ledger is not None
    payments.ledger.record_order(
        Order(
            provider="binance",
            reference="booking42",
            provider_order_id=BIG_ID,
            provider_reference="booking42abcdef",
            status=PaymentStatus.PENDING,
            amount=Money("1.00000000", "USDT"),
        )
    )
    return payments


def _order_status(payments: payments_core.Payments) -> PaymentStatus:
    assert payments.ledger is not None
    order = payments.ledger.get_order("binance", "booking42")
    assert order is not None
    return order.status


@pytest.mark.parametrize("disguise", DISGUISES.values(), ids=DISGUISES)
def test_a_disguised_genuine_signature_is_refused_as_a_forgery_and_changes_nothing(
    disguise: Callable[[str], str],
    with_ledger: payments_core.Payments,
    rsa_key: rsa.RSAPrivateKey,
    clock: FakeClock,
    binance: MockBinance,
) -> None:
    """Binance sends canonical base64; a header that is not it was not sent by Binance, even
    when a lenient decoder would turn it into the genuine signature's bytes."""
    body = notification()
    headers = callback_headers(rsa_key, body, timestamp_ms=clock.ms)
    genuine = headers[protocol.HEADER_SIGNATURE]
    headers[protocol.HEADER_SIGNATURE] = disguise(genuine)
    # The disguise is one a lenient decoder sees through: the same bytes as the genuine one.
    assert base64.b64decode(headers[protocol.HEADER_SIGNATURE]) == base64.b64decode(genuine)

    with pytest.raises(CallbackVerificationError) as caught:
        with_ledger.apply_callback("binance", headers, body)
    assert caught.value.reply.status_code == 401
    reason = json.loads(caught.value.reply.body)["returnMessage"]
    assert protocol.HEADER_SIGNATURE in reason
    assert _order_status(with_ledger) is PaymentStatus.PENDING
    assert with_ledger.ledger is not None
    assert with_ledger.ledger.events_for("binance", "booking42") == []
    assert binance.requests == []  # refused before any certificate is fetched

    # The undisguised signature pays the very same order: only the header's form was refused.
    headers[protocol.HEADER_SIGNATURE] = genuine
    assert with_ledger.apply_callback("binance", headers, body).event is not None
    assert _order_status(with_ledger) is PaymentStatus.PAID


def test_a_signature_with_its_padding_cut_off_is_refused(
    payments: payments_core.Payments, rsa_key: rsa.RSAPrivateKey, clock: FakeClock
) -> None:
    body = notification()
    headers = callback_headers(rsa_key, body, timestamp_ms=clock.ms)
    headers[protocol.HEADER_SIGNATURE] = headers[protocol.HEADER_SIGNATURE].rstrip("=")
    with pytest.raises(CallbackVerificationError) as caught:
        payments.handle_callback("binance", headers, body)
    assert caught.value.reply.status_code == 401
