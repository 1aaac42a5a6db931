"""A callback endpoint on loopback for the end-to-end callback tests (R3, R7).

It serves ``POST /callbacks/binance`` with uvicorn in a thread: each callback goes, headers and
raw body untouched, to ``Payments.handle_callback_async``; a verified one is applied to the
ledger (when one is given) and acknowledged with the provider's reply, a refused one gets the
error's ``reply``. Every outcome is kept, in arrival order, for the test to inspect.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import attrs
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from payments_core import CallbackDeferred, CallbackError, CallbackResult, Payments
from payments_core.ledger import Ledger
from payments_core.serving import BackgroundServer

PATH = "/callbacks/binance"


@attrs.frozen
class Outcome:
    """One callback as the endpoint handled it."""

    status_code: int
    result: CallbackResult | None = None
    error: CallbackError | CallbackDeferred | None = None


class CallbackReceiver:
    """``with CallbackReceiver(payments, ledger) as receiver:`` serves on ``receiver.url``."""

    def __init__(self, payments: Payments, ledger: Ledger | None = None) -> None:
        self.payments = payments
        self.ledger = ledger
        self.outcomes: list[Outcome] = []
        self.url = ""  # known once entered
        self._lock = threading.Lock()

        @asynccontextmanager
        async def lifespan(_: Starlette) -> AsyncIterator[None]:
            try:
                yield
            finally:
                await payments.aclose()  # the async HTTP client lives on this loop

        app = Starlette(routes=[Route(PATH, self._callback, methods=["POST"])], lifespan=lifespan)
        self._server = BackgroundServer(app, name="callback receiver", lifespan="on")

    async def _callback(self, request: Request) -> Response:
        body = await request.body()
        try:
            result = await self.payments.handle_callback_async(
                "binance", dict(request.headers), body
            )
        except CallbackError as error:
            reply = error.reply
            self._keep(Outcome(reply.status_code, error=error))
        except CallbackDeferred as error:
            self._keep(Outcome(503, error=error))
            return Response(b"deferred", status_code=503, headers={"retry-after": "1"})
        else:
            if self.ledger is not None and result.event is not None:
                self.ledger.apply_event(result.event)
            reply = result.reply
            self._keep(Outcome(reply.status_code, result=result))
        return Response(reply.body, status_code=reply.status_code, media_type=reply.content_type)

    def _keep(self, outcome: Outcome) -> None:
        with self._lock:
            self.outcomes.append(outcome)

    def __enter__(self) -> CallbackReceiver:
        self._server.start()
        self.url = f"{self._server.url}{PATH}"
        return self

    def __exit__(self, *_: object) -> None:
        self._server.stop()


class AsgiServer:
    """``with AsgiServer(app) as server:`` serves any ASGI app on ``server.base_url``."""

    def __init__(self, app: Starlette) -> None:
        self._server = BackgroundServer(app, name="asgi app", lifespan="on")
        self.base_url = ""

    def __enter__(self) -> AsgiServer:
        self._server.start()
        self.base_url = self._server.url
        return self

    def __exit__(self, *_: object) -> None:
        self._server.stop()
