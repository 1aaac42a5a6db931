"""Fixtures of the reliability suite: the sandbox on loopback, facades wired to it, and R6.

Every test here runs with the root logger at DEBUG and a handler that keeps every record
(ours, httpx's, httpcore's, aiohttp's, uvicorn's, the sandbox's). At teardown the captured
text must hold none of the values registered in :class:`Leaks`: the API secrets, every request
signature the client computed (``signing.sign`` is wrapped to record them), every webhook
signature the sandbox sent, and the sandbox's private keys. That is R6 over the whole suite;
``test_no_secret_in_logs.py`` adds flows chosen for their error paths.

Sizes: ``PAYMENTS_FULL=1`` runs R1 at the full 2,000 orders (default: a reduced 200).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import attrs
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from payments_binance import BinancePayProvider, protocol, signing
from payments_binance.sandbox import Sandbox, SandboxConfig, SandboxServer
from payments_core import Config, Payments, RetryPolicy
from payments_core.config import HttpSettings
from payments_core.ledger import Ledger

API_KEY = "reliability-api-key-7Q2w"
API_SECRET = "reliability-secret-Zx81aQ0pL4mN7bV2cX9sD3fG6hJ1kL5qW8eR0tY4uI7oP2"
FULL = os.environ.get("PAYMENTS_FULL") == "1"
CALLBACK_PATH = "/callbacks/binance"


@attrs.define
class Leaks:
    """Strings that must never reach a log line, and where the check looks for them."""

    values: set[str] = attrs.field(factory=set)

    def add(self, *values: str) -> None:
        self.values.update(v for v in values if v)

    def found_in(self, text: str) -> list[str]:
        """The registered values (shortened for the report) that occur in ``text``."""
        return sorted(v[:12] + "..." for v in self.values if v in text)


class CaptureAll(logging.Handler):
    """Keeps every record, fully formatted (message, arguments and traceback)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.lines: list[str] = []
        self.names: set[str] = set()

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))
        self.names.add(record.name)

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


@pytest.fixture(scope="session")
def leaks() -> Leaks:
    registry = Leaks()
    registry.add(API_SECRET)
    return registry


@pytest.fixture(autouse=True)
def debug_logs(leaks: Leaks, monkeypatch: pytest.MonkeyPatch) -> Iterator[CaptureAll]:
    """Capture every log record at DEBUG; fail the test if a secret or signature shows."""
    real_sign = signing.sign

    def recording_sign(secret: Any, timestamp: str, nonce: str, body: bytes) -> str:
        signature = real_sign(secret, timestamp, nonce, body)
        leaks.add(signature, signature.lower())
        return signature

    monkeypatch.setattr(signing, "sign", recording_sign)
    handler = CaptureAll()
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    leaked = leaks.found_in(handler.text)
    assert not leaked, f"secrets or signatures in the DEBUG log: {leaked}"


def _pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@pytest.fixture(scope="session")
def signing_pems(leaks: Leaks) -> tuple[bytes, bytes]:
    """Two RSA webhook keys for the session's sandboxes (the second one for rotation)."""
    pems = tuple(_pem(rsa.generate_private_key(public_exponent=65537, key_size=2048)) for _ in "ab")
    for pem in pems:
        text = pem.decode("ascii")
        body = "".join(line for line in text.splitlines() if "-----" not in line)
        # The PEM as a whole, its base64 body, and any one of its lines.
        leaks.add(text, body, *(line for line in text.splitlines() if "-----" not in line))
    return pems[0], pems[1]


class MovableClock:
    """The wall clock for timestamps, with a monotonic clock a test can move forward."""

    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic() + self.offset


@attrs.define
class Harness:
    """A sandbox served on loopback, and a way to build facades talking to it."""

    sandbox: Sandbox
    server: SandboxServer
    leaks: Leaks
    opened: list[Payments] = attrs.field(factory=list)

    @property
    def base_url(self) -> str:
        return self.server.base_url

    def payments(
        self,
        *,
        retry: RetryPolicy | None = None,
        read_timeout: float = 10.0,
        async_http: str = "auto",
        clock: MovableClock | None = None,
        ledger: Ledger | None = None,
        **settings: Any,
    ) -> Payments:
        """A facade with only the Binance provider, pointed at this sandbox."""
        values = {
            "base_url": self.base_url,
            "api_key": API_KEY,
            "api_secret": API_SECRET,
            **settings,
        }
        payments = Payments(
            Config(http=HttpSettings(read_timeout=read_timeout, connect_timeout=5.0)),
            providers={"binance": BinancePayProvider},
            load_entry_points=False,
            provider_settings={"binance": values},
            retry=retry if retry is not None else RetryPolicy(max_attempts=1),
            async_http=async_http,
            clock=clock,
            ledger=ledger,
        )
        self.opened.append(payments)
        return payments

    def webhook_signatures(self) -> list[str]:
        return [
            attempt.headers[protocol.HEADER_SIGNATURE]
            for attempt in self.sandbox.webhook_log
            if protocol.HEADER_SIGNATURE in attempt.headers
        ]


@pytest.fixture
def start_sandbox(
    signing_pems: tuple[bytes, bytes], leaks: Leaks
) -> Iterator[Callable[..., Harness]]:
    """Start a sandbox (``SandboxConfig`` overrides as keyword arguments); stopped afterwards.

    Facades built with :meth:`Harness.payments` have their blocking client closed here; tests
    using the asynchronous API close theirs in their own event loop.
    """
    started: list[Harness] = []

    def start(**overrides: Any) -> Harness:
        options: dict[str, Any] = {
            "api_key": API_KEY,
            "api_secret": API_SECRET,
            "signing_key_pem": signing_pems[0],
            "webhook_retry_schedule": (0, 0, 0),
            "deliver_webhooks": False,
        }
        options.update(overrides)
        sandbox = Sandbox(SandboxConfig(**options))
        server = SandboxServer(sandbox)
        server.start()
        harness = Harness(sandbox, server, leaks)
        started.append(harness)
        return harness

    yield start
    for harness in reversed(started):
        for payments in harness.opened:
            payments.close()
        harness.server.stop()
        leaks.add(*harness.webhook_signatures())
        for key in harness.sandbox.keys.keys:
            leaks.add(key.private_pem().decode("ascii"))
