"""The callback endpoint as a small ASGI app: ``POST /callbacks/{provider}``.

It hands the raw body bytes and the headers, untouched, to
:meth:`~payments_core.Payments.apply_callback_async`, which verifies the callback, applies it to
the ledger in one transaction and tells the application after the commit. The answers:

* applied, duplicate, stale or flagged: the provider's acknowledgement, so it stops delivering;
* refused (``CallbackError``): the error's ``reply``, the provider's own failure answer;
* not checkable yet (``CallbackDeferred``: the provider's keys are being fetched): 503 with
  ``Retry-After``;
* no such provider: 404; a body over ``max_body_bytes``: 413, before any verification; a body
  not received within ``body_timeout`` seconds (a stalled or very slow sender): 408; another
  path or method: 404 or 405. Every one of these answers is a JSON ``{"error": "..."}``;
* not recorded (any other ``PaymentsError``: the ledger unreachable, the provider's keys not
  fetched, configuration missing): 503 with ``Retry-After``, so the provider delivers it again
  and the redelivery is applied once the fault is fixed.

Mount it in any ASGI framework::

    app.mount("/payments", create_callback_app(payments))   # Starlette or FastAPI
    # the provider's callback URL is then https://host/payments/callbacks/binance
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Final

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Match, Route
from starlette.types import Receive, Scope, Send

from payments_core.errors import (
    CallbackDeferred,
    CallbackError,
    ConfigurationError,
    PaymentsError,
)
from payments_core.models import CallbackReply
from payments_core.redaction import get_logger

if TYPE_CHECKING:
    from payments_core.facade import Payments

__all__ = ["BODY_TIMEOUT_SECONDS", "MAX_CALLBACK_BYTES", "create_callback_app"]

#: The largest callback body accepted by default; real payment callbacks are a few KiB.
MAX_CALLBACK_BYTES: Final = 64 * 1024
#: Seconds a sender has, by default, to deliver the whole body once its request has begun.
BODY_TIMEOUT_SECONDS: Final = 10.0
#: Seconds a provider is asked to wait before delivering again after a 503.
RETRY_AFTER_SECONDS: Final = 5

log = get_logger("payments_core.asgi")


def create_callback_app(
    payments: Payments,
    *,
    max_body_bytes: int = MAX_CALLBACK_BYTES,
    body_timeout: float = BODY_TIMEOUT_SECONDS,
    close_payments: bool = False,
    announce_older_than: timedelta = timedelta(0),
    routes: Sequence[BaseRoute] = (),
) -> Starlette:
    """Build the ASGI app that receives provider callbacks for ``payments``.

    :param payments: A facade with a ledger.
    :param max_body_bytes: Larger bodies are refused with 413 before any verification.
    :param body_timeout: Seconds to receive the whole body; a slower one is refused with 408,
        so a stalled sender cannot hold a worker.
    :param close_payments: The app owns ``payments``: at startup (ASGI lifespan) it announces
        the changes a previous run committed but never announced
        (:meth:`~payments_core.Payments.announce_pending_changes`), and at shutdown it closes
        the facade; as ``payments serve`` does. A mounted sub-app gets no lifespan events: do
        both in the host application's own startup and shutdown.
    :param announce_older_than: With ``close_payments``, announce at startup only the changes
        committed at least this long ago: with several processes serving one ledger, a younger
        change may be one another process is announcing right now. ``payments serve
        --workers`` announces them all once before its workers start, and each worker passes
        one minute.
    :param routes: More routes to serve beside the callbacks (``payments serve --metrics``
        adds ``GET /metrics``).
    :raises ConfigurationError: if ``payments`` has no ledger.
    """
    if payments.ledger is None:
        raise ConfigurationError(
            "the callback app needs a facade with a ledger: Payments(ledger=open_ledger(url))"
        )

    async def receive_callback(request: Request) -> Response:
        provider = request.path_params["provider"]
        if provider not in payments.provider_names:
            return _error(404, f"no provider named {provider[:64]!r}")
        # Each name once, with its first value (as request.headers[name]), read in one pass.
        headers = dict(reversed(request.headers.items()))
        try:
            async with asyncio.timeout(body_timeout):
                body = await _read_body(request, headers, max_body_bytes)
        except TimeoutError:
            return _error(408, f"the body was not received within {body_timeout:g} s")
        if body is None:
            return _error(413, f"callback bodies are limited to {max_body_bytes} bytes")
        try:
            outcome = await payments.apply_callback_async(provider, headers, body)
        except CallbackError as error:
            log.info("%s callback refused: %s", provider, error)
            return _reply(error.reply)
        except CallbackDeferred as error:
            log.info("%s %s", provider, error)
            wait = RETRY_AFTER_SECONDS if error.retry_after is None else error.retry_after
            return _error(
                503,
                "the callback cannot be checked yet; deliver it again",
                {"retry-after": str(math.ceil(wait))},
            )
        except PaymentsError as error:
            log.error(
                "%s callback not recorded, the provider will deliver it again: %s: %s",
                provider,
                type(error).__name__,
                error,
            )
            return _error(
                503,
                "the callback could not be recorded; deliver it again",
                {"retry-after": str(RETRY_AFTER_SECONDS)},
            )
        return _reply(outcome.reply)

    @asynccontextmanager
    async def owning(app: Starlette) -> AsyncIterator[None]:
        del app
        try:
            announced = await payments.announce_pending_changes_async(announce_older_than)
        except PaymentsError as error:  # the callbacks themselves may still be recorded
            log.error("changes left unannounced could not be read: %s", error)
        else:
            if announced:
                log.warning("announced %d change(s) left unannounced by a previous run", announced)
        yield
        await payments.aclose()

    return _CallbackApp(
        Route("/callbacks/{provider}", receive_callback, methods=["POST"]),
        routes=routes,
        exception_handlers={HTTPException: _http_error},
        lifespan=owning if close_payments else None,
    )


class _CallbackApp(Starlette):
    """The callback app: a Starlette application whose callback route is reached directly.

    A callback the route matches (``POST /callbacks/{provider}``) goes straight to its
    endpoint, without Starlette's own middleware and router: the endpoint answers every
    outcome itself, and an unexpected error still reaches the server, which answers 500 and
    logs it. Everything else (other paths and methods, the extra routes, the lifespan) is
    Starlette's, as for any application; so are callbacks too once middleware or an exception
    handler is added to the app (``add_middleware``), which then sees them as before.
    """

    def __init__(self, callbacks: Route, *, routes: Sequence[BaseRoute], **options: Any) -> None:
        super().__init__(routes=[callbacks, *routes], **options)
        self._callbacks = callbacks

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self._as_built():
            match, child_scope = self._callbacks.matches(scope)
            if match is Match.FULL:
                scope["app"] = self  # as Starlette sets it, for whatever reads request.app
                scope.update(child_scope)
                response = await self._callbacks.endpoint(Request(scope, receive))
                await response(scope, receive, send)
                return
        await super().__call__(scope, receive, send)

    def _as_built(self) -> bool:
        """No middleware, exception handler, debug page or body limit set since it was built:
        nothing Starlette's own stack would add to a callback."""
        return (
            not self.user_middleware
            and self.exception_handlers.keys() == {HTTPException}
            and not self.debug
            and getattr(self, "max_body_size", None) is None  # Starlette 1.x only
        )


async def _read_body(request: Request, headers: Mapping[str, str], limit: int) -> bytes | None:
    """The body, or ``None`` as soon as it is known to exceed ``limit`` bytes."""
    declared = headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


def _reply(reply: CallbackReply) -> Response:
    return Response(reply.body, status_code=reply.status_code, media_type=reply.content_type)


async def _http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own refusals (an unknown path, a method other than POST), as JSON."""
    assert isinstance(exc, HTTPException)
    return _error(exc.status_code, exc.detail, exc.headers)


def _error(status_code: int, message: str, headers: Mapping[str, str] | None = None) -> Response:
    return JSONResponse({"error": message}, status_code=status_code, headers=headers)
