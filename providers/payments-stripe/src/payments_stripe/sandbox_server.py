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

import functools
import html
import secrets
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from starlette.types import ASGIApp

from payments_core.testing.sandbox import (
    PROFILES,
    Answer,
    FaultKind,
    FaultProfile,
    FaultRecord,
    Faults,
    RunningSandbox,
    SandboxRequest,
    background_server,
    sandbox_app,
)
from payments_stripe import wire
from payments_stripe.sandbox import StripeRefusal, StripeSandbox, api

__all__ = ["build_app", "new_sandbox", "serve"]


def build_app(sandbox: StripeSandbox, faults: Faults | None = None) -> ASGIApp:
    """The sandbox as a raw ASGI app (API under ``/v1``, checkout pages under ``/checkout``)."""
    return sandbox_app(
        functools.partial(api, sandbox),
        pages={"/checkout/": functools.partial(_checkout, sandbox)},
        faults=faults,
        refusal=_refusal,
    )


def _refusal(fault: FaultRecord) -> Answer:
    """Stripe's 429 (no ``Stripe-Should-Retry``) or 5xx (``Stripe-Should-Retry: true``)."""
    if fault.kind is FaultKind.SERVER_ERROR:
        message = "An unknown error occurred in Stripe's sandbox."
        answer = StripeRefusal(fault.status or 500, message, kind=wire.ERROR_API).answer()
        return Answer(answer.status_code, answer.body, {**answer.headers, _SHOULD_RETRY: "true"})
    message = "Too many requests hit the API too quickly."
    answer = StripeRefusal(429, message, code=wire.CODE_RATE_LIMIT).answer()
    headers = {k: v for k, v in answer.headers.items() if k != _SHOULD_RETRY}
    return Answer(429, answer.body, headers)


_SHOULD_RETRY = wire.HEADER_SHOULD_RETRY.lower()


def _checkout(sandbox: StripeSandbox, request: SandboxRequest) -> Answer:
    """The hosted checkout page: shows the session; a POST pays it, as the payer would."""
    session = sandbox.sessions.get(request.path.removeprefix("/checkout/"))
    page = {"content-type": "text/html; charset=utf-8"}
    if session is None:
        return Answer(
            404, b"<!doctype html><title>Stripe sandbox</title><h1>No such session</h1>", page
        )
    if request.method == "POST" and session["status"] == wire.SESSION_OPEN:
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
) -> Iterator[RunningSandbox[StripeSandbox]]:
    """Serve a sandbox with uvicorn in a thread; stop it on leaving the block.

    :param sandbox: The sandbox to serve; default :func:`new_sandbox`.
    :param faults: The faults to inject into API requests; default none.
    :param seed: Seeds the fault decisions.
    :param port: ``0`` picks a free port.
    """
    sandbox = sandbox or new_sandbox()
    decisions = None if faults is None else Faults(faults, seed)
    app = build_app(sandbox, decisions)
    server = background_server(
        app, host, port, name="stripe-sandbox", lifespan="off", timeout_graceful_shutdown=1
    )
    with server:
        sandbox.base_url = server.url
        settings = {
            "base_url": server.url,
            "api_key": sandbox.api_key,
            "webhook_secret": sandbox.webhook_secrets[0],
        }
        # Stripe posts to the account's endpoints, as ``stripe listen --forward-to`` sets one.
        forward = functools.partial(setattr, sandbox, "webhook_url")
        yield RunningSandbox(server.url, settings, sandbox, decisions, forward=forward)


def __getattr__(name: str) -> object:
    if name != "FLAKY":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    new = "payments_core.testing.sandbox.PROFILES['flaky']"
    warnings.warn(f"{__name__}.FLAKY is deprecated; use {new}", DeprecationWarning, 2)
    return PROFILES["flaky"]
