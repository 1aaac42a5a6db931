"""Fixtures for the Binance provider tests: a fake clock, a test RSA key, a mock Binance.

``mock_binance`` is an ``httpx.MockTransport`` handler that records every request and answers
from per-path queues (or a default), so a test states exactly what Binance says and then counts
what the plugin sent.
"""

from __future__ import annotations

import base64
import json
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import attrs
import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

import payments_core
from payments_binance import BinancePayProvider, protocol, wire
from payments_core.testing.pytest_plugin import PaymentsFactory

API_KEY = "test-api-key-0123456789"
API_SECRET = "test-api-secret-abcdefghijklmnopqrstuvwxyz0123456789ABCDEF"
SERIAL = "TESTSERIAL0001"
START = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


@attrs.define
class FakeClock:
    """A clock that moves only when told to."""

    current: datetime = START
    ticks: float = 1000.0

    def now(self) -> datetime:
        return self.current

    def monotonic(self) -> float:
        return self.ticks

    def advance(self, seconds: float) -> None:
        self.current += timedelta(seconds=seconds)
        self.ticks += seconds

    @property
    def ms(self) -> int:
        return (self.current - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)


def envelope(data: object) -> bytes:
    # wire.dumps writes Decimals as exact JSON numbers, as Binance does; json.dumps cannot.
    return wire.dumps({"status": "SUCCESS", "code": "000000", "data": data})


def failure(code: str, message: str = "error") -> bytes:
    return json.dumps({"status": "FAIL", "code": code, "errorMessage": message}).encode()


def ok(data: object) -> httpx.Response:
    """Binance's answer to a request it carried out: HTTP 200, ``SUCCESS``, ``data``."""
    return httpx.Response(200, content=envelope(data))


def refusal(code: str, message: str = "error", *, status: int = 200) -> httpx.Response:
    """Binance's refusal with its business ``code`` (on HTTP 200, as it often answers)."""
    return httpx.Response(status, content=failure(code, message))


@attrs.define
class MockBinance:
    """Records requests; answers each path from its queue, then from its default."""

    certificates: list[dict[str, str]]
    #: What the new certificate's endpoint answers; ``None``: it is not there (HTTP 404).
    new_certificates: list[dict[str, str]] | None = None
    requests: list[httpx.Request] = attrs.field(factory=list)
    queued: dict[str, list[httpx.Response | Exception]] = attrs.field(factory=dict)
    #: Called with each request before it is answered: what happens "while it is in flight".
    meanwhile: Callable[[httpx.Request], None] | None = None

    def queue(self, path: str, *answers: httpx.Response | Exception) -> None:
        self.queued.setdefault(path, []).extend(answers)

    def count(self, path: str) -> int:
        return Counter(r.url.path for r in self.requests)[path]

    def sent(self, path: str) -> list[httpx.Request]:
        return [r for r in self.requests if r.url.path == path]

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.meanwhile is not None:
            self.meanwhile(request)
        pending = self.queued.get(request.url.path)
        if pending:
            answer = pending.pop(0)
            if isinstance(answer, Exception):
                raise answer
            return answer
        if request.url.path == protocol.PATH_CERTIFICATES:
            return httpx.Response(200, content=envelope(self.certificates))
        if request.url.path == protocol.PATH_CERTIFICATES_NEW and self.new_certificates is not None:
            return httpx.Response(200, content=envelope(self.new_certificates))
        return httpx.Response(404, text="<html>403 ERROR</html>")


@pytest.fixture(scope="session")
def rsa_key() -> rsa.RSAPrivateKey:
    """A throw-away 2048-bit key standing in for Binance's webhook key."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_pem(key: rsa.RSAPrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii")
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def binance(rsa_key: rsa.RSAPrivateKey) -> MockBinance:
    return MockBinance(certificates=[{"certSerial": SERIAL, "certPublic": public_pem(rsa_key)}])


@pytest.fixture
def make_payments(
    binance: MockBinance, clock: FakeClock, payments_factory: PaymentsFactory
) -> Callable[..., payments_core.Payments]:
    """Build a facade with only the Binance provider, the mock transport and no real sleeps."""

    def make(**settings: object) -> payments_core.Payments:
        values = {"api_key": API_KEY, "api_secret": API_SECRET, **settings}
        return payments_factory(
            {"binance": BinancePayProvider},
            config=payments_core.Config(),
            provider_settings={"binance": values},
            transport=httpx.MockTransport(binance),
            retry=payments_core.RetryPolicy(
                max_attempts=4, sleep=lambda _: None, clock=lambda: 0.0
            ),
            clock=clock,
        )

    return make


@pytest.fixture
def payments(make_payments: Callable[..., payments_core.Payments]) -> payments_core.Payments:
    return make_payments()


def sign_callback(key: rsa.RSAPrivateKey, timestamp: str, nonce: str, body: bytes) -> str:
    """Binance's callback signature: base64 RSA PKCS#1 v1.5 SHA-256 of ``ts\\nnonce\\nbody\\n``."""
    payload = b"%s\n%s\n%s\n" % (timestamp.encode(), nonce.encode(), body)
    return base64.b64encode(key.sign(payload, padding.PKCS1v15(), hashes.SHA256())).decode()


def callback_headers(
    key: rsa.RSAPrivateKey,
    body: bytes,
    *,
    timestamp_ms: int,
    serial: str = SERIAL,
    nonce: str = "NoNcE0123456789abcdefghijklmnopq",
) -> dict[str, str]:
    timestamp = str(timestamp_ms)
    return {
        "Content-Type": "application/json",
        protocol.HEADER_TIMESTAMP: timestamp,
        protocol.HEADER_NONCE: nonce,
        protocol.HEADER_CERTIFICATE_SN: serial,
        protocol.HEADER_SIGNATURE: sign_callback(key, timestamp, nonce, body),
    }
