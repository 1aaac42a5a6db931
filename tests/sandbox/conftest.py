"""Fixtures for the sandbox tests: a merchant that signs requests, a webhook receiver, servers.

The signing here is written for the tests alone (no client code is imported), so a test can also
sign wrongly on purpose. Nothing here sleeps: waiting is done with conditions and events.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import attrs
import httpx
import pytest
import uvicorn
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from payments_binance import protocol
from payments_binance.sandbox import Sandbox, SandboxConfig, SandboxServer

KEY = "test-key"
SECRET = "test-secret-0123456789"
ACK = b'{"returnCode":"SUCCESS","returnMessage":null}'
_nonces = itertools.count()


def fresh_nonce() -> str:
    """A unique 32-character alphanumeric nonce."""
    return f"N{next(_nonces):031d}"


def hmac_signature(secret: str, timestamp: str, nonce: str, body: bytes) -> str:
    """Uppercase hex HMAC-SHA512 of ``ts LF nonce LF body LF``."""
    payload = f"{timestamp}\n{nonce}\n".encode() + body + b"\n"
    return hmac.new(secret.encode(), payload, hashlib.sha512).hexdigest().upper()


def signed_headers(
    body: bytes,
    *,
    key: str = KEY,
    secret: str = SECRET,
    timestamp: int | None = None,
    nonce: str | None = None,
) -> dict[str, str]:
    """The four Binance headers (plus content-type) for ``body``."""
    ts = str(timestamp if timestamp is not None else time.time_ns() // 1_000_000)
    nonce = nonce or fresh_nonce()
    return {
        "content-type": "application/json",
        protocol.HEADER_TIMESTAMP: ts,
        protocol.HEADER_NONCE: nonce,
        protocol.HEADER_CERTIFICATE_SN: key,
        protocol.HEADER_SIGNATURE: hmac_signature(secret, ts, nonce, body),
    }


def v3_order(trade_no: str, **overrides: Any) -> dict[str, Any]:
    """A valid v3 create-order body; ``overrides`` replace or (value ``None``) remove fields."""
    body: dict[str, Any] = {
        "env": {"terminalType": "WEB"},
        "merchantTradeNo": trade_no,
        "orderAmount": "10.50",
        "currency": "USDT",
        "description": "Booking fee",
        "goodsDetails": [
            {
                "goodsType": "02",
                "goodsCategory": "Z000",
                "referenceGoodsId": "SKU1",
                "goodsName": "Booking",
            }
        ],
    }
    for name, value in overrides.items():
        if value is None:
            body.pop(name, None)
        else:
            body[name] = value
    return body


@attrs.define
class Merchant:
    """A signed-request client of a running sandbox."""

    http: httpx.Client
    key: str = KEY
    secret: str = SECRET

    def post(self, path: str, body: object = None, **headers: str) -> httpx.Response:
        """POST ``body`` (bytes as they are, anything else as compact JSON), correctly signed."""
        if isinstance(body, bytes):
            raw = body
        elif body is None:
            raw = b"{}"
        else:
            raw = json.dumps(body, separators=(",", ":")).encode()
        signed = signed_headers(raw, key=self.key, secret=self.secret)
        signed.update(headers)
        return self.http.post(path, content=raw, headers=signed)

    def create(self, trade_no: str, **overrides: Any) -> dict[str, Any]:
        """Create a v3 order and return its ``data``; fails the test on an error answer."""
        response = self.post(protocol.PATH_CREATE_ORDER_V3, v3_order(trade_no, **overrides))
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()["data"]
        return data

    def query(self, **lookup: str) -> dict[str, Any]:
        """Query an order and return its ``data``."""
        response = self.post(protocol.PATH_QUERY_ORDER, lookup)
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()["data"]
        return data

    def certificates(self) -> list[dict[str, str]]:
        """The published webhook keys."""
        response = self.post(protocol.PATH_CERTIFICATES, b"{}")
        assert response.status_code == 200, response.text
        certs: list[dict[str, str]] = response.json()["data"]
        return certs


@attrs.frozen
class Received:
    """One webhook as the receiver got it: raw body and headers."""

    body: bytes
    headers: Mapping[str, str]


class Receiver:
    """A tiny webhook endpoint under uvicorn on 127.0.0.1:0, answering from a script."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        #: Answers (status, body) for the next requests, in order; afterwards HTTP 200 + ack.
        self.script: list[tuple[int, bytes]] = []
        self._changed = threading.Condition()
        # IPPROTO_TCP lets asyncio set TCP_NODELAY (no 40 ms delayed-ACK stalls).
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(128)
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}/hook"
        app = Starlette(routes=[Route("/hook", self._hook, methods=["POST"])])
        self._server = uvicorn.Server(
            uvicorn.Config(app, log_config=None, lifespan="off", ws="none", access_log=False)
        )
        self._thread = threading.Thread(target=self._server.run, args=([self._sock],), daemon=True)

    async def _hook(self, request: Request) -> Response:
        body = await request.body()
        with self._changed:
            self.received.append(Received(body, dict(request.headers)))
            status, reply = self.script.pop(0) if self.script else (200, ACK)
            self._changed.notify_all()
        return Response(reply, status_code=status, media_type="application/json")

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        """Block until at least ``count`` webhooks arrived; the list of them."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self.received) >= count, timeout):
                raise TimeoutError(f"{len(self.received)} of {count} webhooks arrived")
            return list(self.received)

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.should_exit = True
        self._thread.join(10)
        self._sock.close()


@pytest.fixture(scope="session")
def signing_key_pem() -> bytes:
    """One RSA key for every sandbox of the session (generating one costs ~0.1 s)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@pytest.fixture
def make_config(signing_key_pem: bytes) -> Callable[..., SandboxConfig]:
    """SandboxConfig with the test credentials, the session key and immediate retries."""

    def build(**overrides: Any) -> SandboxConfig:
        options: dict[str, Any] = {
            "api_key": KEY,
            "api_secret": SECRET,
            "signing_key_pem": signing_key_pem,
            "webhook_retry_schedule": (0, 0, 0, 0, 0, 0),
            "webhook_timeout_s": 5.0,
        }
        options.update(overrides)
        return SandboxConfig(**options)

    return build


@attrs.define
class Running:
    """A sandbox served on loopback, with a merchant client for it."""

    sandbox: Sandbox
    server: SandboxServer
    merchant: Merchant


@pytest.fixture
def start(make_config: Callable[..., SandboxConfig]) -> Iterator[Callable[..., Running]]:
    """Start a sandbox (config overrides as keyword arguments); stopped after the test."""
    stack: list[tuple[SandboxServer, httpx.Client]] = []

    def run(**overrides: Any) -> Running:
        sandbox = Sandbox(make_config(**overrides))
        server = SandboxServer(sandbox)
        server.start()
        client = httpx.Client(base_url=server.base_url, timeout=10.0, trust_env=False)
        stack.append((server, client))
        return Running(sandbox, server, Merchant(client))

    yield run
    for server, client in reversed(stack):
        client.close()
        server.stop()


@pytest.fixture
def running(start: Callable[..., Running]) -> Running:
    """A default sandbox on loopback."""
    return start()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A webhook receiver on loopback."""
    with Receiver() as hook:
        yield hook


@pytest.fixture
def anyio_backend() -> str:
    """In-process tests run on asyncio, like uvicorn."""
    return "asyncio"
