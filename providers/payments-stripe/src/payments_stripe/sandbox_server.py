"""The Stripe sandbox served on loopback: the API with injected faults, and a checkout page.

:func:`build_app` wraps a :class:`~payments_stripe.sandbox.StripeSandbox` in a raw ASGI app:
``/v1/...`` is the API, ``/checkout/{session_id}`` a page with a *Pay* button. A
:class:`FaultProfile` makes API requests fail as a busy network and a busy Stripe do, each
decision drawn from a generator seeded with ``seed``: a 429 (half of them with
``Retry-After``), a 5xx, the answer lost after the work is done, the request held past the
client's timeout and then done, the connection reset before anything is done. Faults strike
before the idempotency layer, as a load balancer's would, so a faulted create saves no answer.

:func:`serve` runs the app with uvicorn in a thread (``open_sandbox`` returns it).
"""

from __future__ import annotations

import asyncio
import contextvars
import enum
import html
import random
import secrets
import socket
import struct
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Final

import attrs
from uvicorn.protocols.http.h11_impl import H11Protocol

from payments_core.serving import BackgroundServer
from payments_stripe import wire
from payments_stripe.sandbox import Answer, StripeRefusal, StripeSandbox

__all__ = [
    "FLAKY",
    "FaultKind",
    "FaultProfile",
    "Faults",
    "RunningSandbox",
    "build_app",
    "new_sandbox",
    "serve",
]

_TRANSPORT: contextvars.ContextVar[asyncio.Transport | None] = contextvars.ContextVar(
    "payments_stripe_sandbox_transport", default=None
)
_BODY_MAX: Final = 1024 * 1024


class FaultKind(enum.StrEnum):
    """The faults an API request may meet; the value names it in :meth:`Faults.counts`."""

    RATE_LIMIT_RETRY_AFTER = "rate_limit_retry_after"
    RATE_LIMIT = "rate_limit"
    SERVER_ERROR = "server_error"
    DROP_RESPONSE = "drop_response"
    TIMEOUT = "timeout"
    RESET = "reset"


@attrs.frozen(kw_only=True)
class FaultProfile:
    """The probability of each fault per API request (together at most 1), and their details.

    Attributes:
        retry_after_s: The ``Retry-After`` of a 429 that has one.
        hold_s: How long a ``timeout`` holds the request before doing it.
    """

    rate_limit_retry_after: float = 0.0
    rate_limit: float = 0.0
    server_error: float = 0.0
    drop_response: float = 0.0
    timeout: float = 0.0
    reset: float = 0.0
    retry_after_s: int = 1
    hold_s: float = 30.0

    def __attrs_post_init__(self) -> None:
        weights = [p for _, p in self.weights()]
        if any(not 0 <= p <= 1 for p in weights) or sum(weights) > 1 + 1e-9:
            raise ValueError("fault probabilities must each be in [0, 1] and add up to at most 1")

    def weights(self) -> list[tuple[FaultKind, float]]:
        """Each fault with its probability, in the order a draw is matched against them."""
        return [(kind, getattr(self, kind.value)) for kind in FaultKind]


#: The request mix of quality bar R1: 10% 429 (half with Retry-After), 10% 5xx, 5% answer lost
#: after the session was stored, 5% timeouts, 2% connection resets.
FLAKY: Final = FaultProfile(
    rate_limit_retry_after=0.05,
    rate_limit=0.05,
    server_error=0.10,
    drop_response=0.05,
    timeout=0.05,
    reset=0.02,
)


@attrs.define
class Faults:
    """Seeded fault decisions, and a count of those made."""

    profile: FaultProfile
    seed: int = 0
    counts: Counter[str] = attrs.field(factory=Counter)
    _rng: random.Random = attrs.field(init=False)
    _lock: threading.Lock = attrs.field(init=False, factory=threading.Lock)

    def __attrs_post_init__(self) -> None:
        self._rng = random.Random(f"stripe-sandbox:{self.seed}")

    def draw(self) -> FaultKind | None:
        """The fault for the next API request, or ``None``."""
        with self._lock:
            draw, threshold = self._rng.random(), 0.0
            for kind, probability in self.profile.weights():
                threshold += probability
                if draw < threshold:
                    self.counts[kind.value] += 1
                    return kind
        return None


class _ConnectionAwareH11(H11Protocol):
    """uvicorn's h11 protocol, publishing each connection's transport to its request task."""

    def data_received(self, data: bytes) -> None:
        token = _TRANSPORT.set(self.transport)
        try:
            super().data_received(data)
        finally:
            _TRANSPORT.reset(token)


def build_app(sandbox: StripeSandbox, faults: Faults | None = None) -> Any:
    """The sandbox as a raw ASGI app (API under ``/v1``, checkout pages under ``/checkout``)."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return  # lifespan: nothing to start or stop
        path: str = scope["path"]
        body = await _body(receive)
        if path.startswith("/checkout/"):
            await _respond(send, await asyncio.to_thread(_checkout, sandbox, scope, path, body))
            return
        fault = None
        if faults is not None and path.startswith("/v1/"):
            fault = faults.draw()
            if fault is not None and await _fault_answered(fault, faults.profile, send):
                return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        query = scope["query_string"].decode("latin-1")
        answer = await asyncio.to_thread(
            sandbox.handle, scope["method"], path, query, headers, body
        )
        if fault is FaultKind.DROP_RESPONSE:
            # The work is done; only the answer is lost on its way back.
            await _start(send, answer)
            await send({"type": "http.response.body", "body": answer.body[:1], "more_body": True})
            _close_connection()
            return
        await _respond(send, answer)

    return app


async def _fault_answered(fault: FaultKind, profile: FaultProfile, send: Any) -> bool:
    """Act out a fault that replaces the answer; ``False`` if the request then goes on."""
    if fault in (FaultKind.RATE_LIMIT, FaultKind.RATE_LIMIT_RETRY_AFTER):
        answer = StripeRefusal(
            429,
            "Too many requests hit the API too quickly.",
            code=wire.CODE_RATE_LIMIT,
        ).answer()
        headers = dict(answer.headers)
        del headers[wire.HEADER_SHOULD_RETRY.lower()]
        if fault is FaultKind.RATE_LIMIT_RETRY_AFTER:
            headers["retry-after"] = str(profile.retry_after_s)
        await _respond(send, Answer(429, answer.body, headers))
    elif fault is FaultKind.SERVER_ERROR:
        answer = StripeRefusal(
            500, "An unknown error occurred in Stripe's sandbox.", kind=wire.ERROR_API
        ).answer()
        await _respond(
            send, Answer(500, answer.body, {**answer.headers, "stripe-should-retry": "true"})
        )
    elif fault is FaultKind.RESET:
        _reset_connection()
        await asyncio.sleep(0)  # lets connection_lost run
    elif fault is FaultKind.TIMEOUT:
        await asyncio.sleep(profile.hold_s)  # the client gives up first; the work is then done
        return False
    else:
        return False
    return True


def _reset_connection() -> None:
    transport = _TRANSPORT.get()
    if transport is None:
        raise ConnectionResetError("sandbox fault: connection reset")
    sock = transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


def _close_connection() -> None:
    transport = _TRANSPORT.get()
    if transport is None:
        raise ConnectionAbortedError("sandbox fault: answer lost")
    transport.close()


async def _body(receive: Any) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size <= _BODY_MAX:
            chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


async def _start(send: Any, answer: Answer) -> None:
    headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in answer.headers.items()]
    headers.append((b"content-length", str(len(answer.body)).encode()))
    await send({"type": "http.response.start", "status": answer.status_code, "headers": headers})


async def _respond(send: Any, answer: Answer) -> None:
    await _start(send, answer)
    await send({"type": "http.response.body", "body": answer.body})


def _checkout(sandbox: StripeSandbox, scope: dict[str, Any], path: str, body: bytes) -> Answer:
    """The hosted checkout page: shows the session; a POST pays it, as the payer would."""
    del body
    session = sandbox.sessions.get(path.removeprefix("/checkout/"))
    page = {"content-type": "text/html; charset=utf-8"}
    if session is None:
        return Answer(
            404, b"<!doctype html><title>Stripe sandbox</title><h1>No such session</h1>", page
        )
    if scope["method"] == "POST" and session["status"] == wire.SESSION_OPEN:
        try:
            sandbox.pay(session["id"])
        except StripeRefusal as refusal:
            return Answer(409, f"<p>{html.escape(str(refusal))}</p>".encode(), page)
    amount = f"{session['amount_total']} {session['currency'].upper()} (minor units)"
    action = (
        '<form method="post"><button>Pay</button></form>'
        if session["status"] == wire.SESSION_OPEN
        else f"<p>This Checkout Session is {html.escape(session['status'])}.</p>"
    )
    text = (
        "<!doctype html><title>Stripe Checkout sandbox</title>"
        f"<h1>Pay {html.escape(amount)}</h1>{action}"
    )
    return Answer(200, text.encode(), page)


@attrs.define
class RunningSandbox:
    """A sandbox served on loopback, as :class:`payments_core.ProviderSandbox` describes it.

    Attributes:
        base_url: Where it listens.
        settings: Provider settings pointing at it: ``base_url``, ``api_key``,
            ``webhook_secret``.
        sandbox: The sandbox itself (sessions, deliveries), for tests.
        faults: Its fault decisions, when it injects faults.
    """

    base_url: str
    settings: dict[str, str] = attrs.field(repr=False)
    sandbox: StripeSandbox
    faults: Faults | None = None

    def pay(self, provider_order_id: str) -> None:
        """Pay a session as the payer would; the sandbox sends the webhook."""
        self.sandbox.pay(provider_order_id)

    def expire(self, provider_order_id: str) -> None:
        """Expire the open session; the sandbox sends ``checkout.session.expired``."""
        self.sandbox.expire(provider_order_id)

    def checkout_url(self, provider_order_id: str) -> str:
        """The session's checkout page."""
        return f"{self.base_url}/checkout/{provider_order_id}"

    def forward_callbacks(self, url: str) -> None:
        """Send webhooks to ``url`` (the account's endpoint), as ``stripe listen
        --forward-to`` does."""
        self.sandbox.webhook_url = url


def new_sandbox(**options: Any) -> StripeSandbox:
    """A sandbox with fresh random test credentials (``options`` go to the constructor)."""
    defaults: dict[str, Any] = {
        "api_key": f"sk_test_{secrets.token_urlsafe(24)}",
        "webhook_secrets": [f"whsec_{secrets.token_urlsafe(24)}"],
    }
    return StripeSandbox(**{**defaults, **options})


@contextmanager
def serve(
    sandbox: StripeSandbox | None = None,
    *,
    faults: FaultProfile | None = None,
    seed: int = 0,
    host: str = "127.0.0.1",
    port: int = 0,
) -> Iterator[RunningSandbox]:
    """Serve a sandbox with uvicorn in a thread; stop it on leaving the block.

    :param sandbox: The sandbox to serve; default :func:`new_sandbox`.
    :param faults: The faults to inject into API requests; default none.
    :param seed: Seeds the fault decisions.
    :param port: ``0`` picks a free port.
    """
    sandbox = sandbox or new_sandbox()
    decisions = None if faults is None else Faults(faults, seed)
    server = BackgroundServer(
        build_app(sandbox, decisions),
        host,
        port,
        name="stripe-sandbox",
        http=_ConnectionAwareH11,
        lifespan="off",
        timeout_graceful_shutdown=1,
        timeout_keep_alive=75,
    )
    with server:
        sandbox.base_url = server.url
        yield RunningSandbox(
            server.url,
            {
                "base_url": server.url,
                "api_key": sandbox.api_key,
                "webhook_secret": sandbox.webhook_secrets[0],
            },
            sandbox,
            decisions,
        )
