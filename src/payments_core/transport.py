"""Sending :class:`~payments_core.http.HttpRequest` objects with httpx, and running operations.

Every provider request passes through one of the senders here, each inside an HTTP client span
(:mod:`payments_core.telemetry`): one instrumentation point for every provider.

This is the one place where httpx's exceptions become :mod:`payments_core.errors`:

=====================================================  ================  ==================
httpx raises                                           we raise          request may have
                                                                         reached provider?
=====================================================  ================  ==================
``ConnectError``, ``ConnectTimeout``, ``PoolTimeout``  ``ConnectError``  no
``ReadTimeout``, ``WriteTimeout``                      ``RequestTimeout``  yes
``RemoteProtocolError``, ``ReadError``, ``WriteError``  ``ResponseLost``  yes
other ``httpx.TransportError``                         ``ResponseLost``  yes
=====================================================  ================  ==================

:class:`AiohttpAsyncSender` (the optional ``aiohttp`` extra) maps aiohttp's exceptions the same
way: ``ClientConnectorError`` and ``ConnectionTimeoutError`` (no connection, or none free in
time) become ``ConnectError``; ``SocketTimeoutError`` and any other timeout ``RequestTimeout``;
``ServerDisconnectedError``, ``ClientPayloadError``, a reset and any other ``ClientError``
``ResponseLost``. :func:`async_sender` picks the backend by name.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Generator, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Final, Protocol, TypeVar

import httpx

from payments_core import telemetry
from payments_core.config import HttpSettings
from payments_core.errors import (
    ConfigurationError,
    ConnectError,
    RequestTimeout,
    ResponseLost,
    TransportError,
)
from payments_core.http import Blocking, HttpRequest, HttpResponse, Wait
from payments_core.redaction import get_logger

if TYPE_CHECKING:
    import aiohttp

__all__ = [
    "ASYNC_BACKENDS",
    "AiohttpAsyncSender",
    "AsyncHttpSender",
    "AsyncSender",
    "HttpxAsyncSender",
    "HttpxSender",
    "Sender",
    "async_sender",
    "drive",
    "drive_async",
    "resolve_async_backend",
]

T = TypeVar("T")
R = TypeVar("R")
log = get_logger("payments_core.transport")

Sender = Callable[[HttpRequest], HttpResponse]
AsyncSender = Callable[[HttpRequest], Awaitable[HttpResponse]]

#: Names accepted by :func:`async_sender`: ``auto`` is aiohttp when installed, else httpx.
ASYNC_BACKENDS: Final = ("auto", "httpx", "aiohttp")


_NO_AIOHTTP: Final = (
    "the aiohttp HTTP backend needs aiohttp: pip install 'payments-core[aiohttp]' "
    "(or choose async_http='httpx')"
)


class AsyncHttpSender(Protocol):
    """What the facade needs of an asynchronous sender."""

    async def send(self, request: HttpRequest, provider: str) -> HttpResponse: ...

    async def aclose(self) -> None: ...


#: How one HTTP library's exceptions translate, the first match winning: (caught, raised, why).
_ErrorTable = Sequence[
    tuple[type[Exception] | tuple[type[Exception], ...], type[TransportError], str]
]

_NO_CONNECTION: Final = "could not connect"
_NO_ANSWER: Final = "no answer in time"
_LOST: Final = "connection lost before a complete answer"
_HTTPX_ERRORS: Final[_ErrorTable] = (
    ((httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout), ConnectError, _NO_CONNECTION),
    (httpx.TimeoutException, RequestTimeout, _NO_ANSWER),
    (httpx.TransportError, ResponseLost, _LOST),
)


@contextmanager
def _mapped(
    request: HttpRequest, provider: str, errors: _ErrorTable = _HTTPX_ERRORS
) -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        for caught, raised, why in errors:
            if isinstance(exc, caught):
                what = f"{request.operation or request.method} to {provider}"
                raise raised(
                    f"{what}: {why} ({type(exc).__name__})",
                    provider=provider,
                    operation=request.operation,
                ) from exc
        raise


def _client_options(settings: HttpSettings) -> dict[str, Any]:
    # trust_env=False: no proxy or .netrc from the environment may see signed requests.
    return {
        "timeout": httpx.Timeout(
            connect=settings.connect_timeout,
            read=settings.read_timeout,
            write=settings.write_timeout,
            pool=settings.pool_timeout,
        ),
        "limits": httpx.Limits(
            max_connections=settings.max_connections,
            max_keepalive_connections=settings.max_keepalive_connections,
        ),
        "trust_env": False,
        "follow_redirects": False,
    }


def _answer(
    request: HttpRequest, provider: str, response: httpx.Response, started: float
) -> HttpResponse:
    _log(request, provider, response.status_code, started)
    # items(), not the Headers object: dict(Headers) looks every key up again, linearly.
    return HttpResponse(response.status_code, dict(response.headers.items()), response.content)


class HttpxSender:
    """Sends requests over one pooled ``httpx.Client``."""

    def __init__(
        self, settings: HttpSettings, *, transport: httpx.BaseTransport | None = None
    ) -> None:
        # Its own span: building a client (its TLS context) takes longer than a request.
        with telemetry.active.span("payments.http_client.open"):
            self.client = httpx.Client(transport=transport, **_client_options(settings))

    def send(self, request: HttpRequest, provider: str) -> HttpResponse:
        """Send ``request``; raise a :class:`TransportError` subclass if no answer arrives."""
        started = time.perf_counter()
        with telemetry.active.request(request, provider) as span, _mapped(request, provider):
            response = self.client.request(
                request.method, request.url, headers=request.headers, content=request.content
            )
            span.answered(response.status_code)
        return _answer(request, provider, response, started)

    def close(self) -> None:
        self.client.close()


class HttpxAsyncSender:
    """Sends requests over one pooled ``httpx.AsyncClient``."""

    def __init__(
        self, settings: HttpSettings, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        with telemetry.active.span("payments.http_client.open"):
            self.client = httpx.AsyncClient(transport=transport, **_client_options(settings))

    async def send(self, request: HttpRequest, provider: str) -> HttpResponse:
        """Send ``request``; raise a :class:`TransportError` subclass if no answer arrives."""
        started = time.perf_counter()
        with telemetry.active.request(request, provider) as span, _mapped(request, provider):
            response = await self.client.request(
                request.method, request.url, headers=request.headers, content=request.content
            )
            span.answered(response.status_code)
        return _answer(request, provider, response, started)

    async def aclose(self) -> None:
        await self.client.aclose()


class AiohttpAsyncSender:
    """Sends requests over one pooled ``aiohttp.ClientSession`` (the ``aiohttp`` extra).

    Under many requests in flight it costs far less CPU per request than httpx's default
    transport (see ``docs/performance.md``). The session is opened on first use, inside the
    running event loop. Timeouts: ``connect_timeout`` bounds the socket connect and
    ``pool_timeout`` + ``connect_timeout`` the wait for a connection; ``read_timeout`` bounds
    each read. aiohttp has no write timeout, so ``write_timeout`` is not used.

    :raises ConfigurationError: if aiohttp is not installed.
    """

    def __init__(self, settings: HttpSettings) -> None:
        try:
            import aiohttp
        except ImportError:
            raise ConfigurationError(_NO_AIOHTTP) from None
        self._settings = settings
        self._errors: _ErrorTable = (
            (
                (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError),
                ConnectError,
                _NO_CONNECTION,
            ),
            ((TimeoutError, aiohttp.ServerTimeoutError), RequestTimeout, _NO_ANSWER),
            (aiohttp.ClientError, ResponseLost, _LOST),
        )
        self._timeout = aiohttp.ClientTimeout(
            total=None,
            connect=settings.pool_timeout + settings.connect_timeout,
            sock_connect=settings.connect_timeout,
            sock_read=settings.read_timeout,
        )
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        import aiohttp

        connector = aiohttp.TCPConnector(
            limit=self._settings.max_connections, limit_per_host=0, ttl_dns_cache=300
        )
        # No proxy or .netrc from the environment, no cookies kept, nothing followed.
        return aiohttp.ClientSession(
            connector=connector,
            timeout=self._timeout,
            trust_env=False,
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=True,
        )

    async def send(self, request: HttpRequest, provider: str) -> HttpResponse:
        """Send ``request``; raise a :class:`TransportError` subclass if no answer arrives."""
        session = self._session
        if session is None or session.closed:
            session = self._session = self._open()
        started = time.perf_counter()
        request_span = telemetry.active.request(request, provider)
        with request_span, _mapped(request, provider, self._errors):
            async with session.request(
                request.method,
                request.url,
                headers=request.headers,
                data=request.content,
                allow_redirects=False,
            ) as response:
                content = await response.read()
                status = response.status
                headers = dict(response.headers)
            request_span.answered(status)
        _log(request, provider, status, started)
        return HttpResponse(status, headers, content)

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()


def resolve_async_backend(
    backend: str, *, transport: httpx.AsyncBaseTransport | None = None
) -> str:
    """The asynchronous HTTP backend ``backend`` names: ``"httpx"`` or ``"aiohttp"``.

    ``auto`` is aiohttp when it is installed and no httpx ``transport`` is injected, else
    httpx (aiohttp was chosen by measurement: see ``docs/performance.md``).

    :raises ConfigurationError: for a name not in :data:`ASYNC_BACKENDS`, ``aiohttp`` when
        aiohttp is not installed, or ``aiohttp`` together with an httpx ``transport``.
    """
    if backend not in ASYNC_BACKENDS:
        raise ConfigurationError(
            f"async_http must be one of {', '.join(ASYNC_BACKENDS)}, got {backend!r}"
        )
    if backend == "auto":
        return "httpx" if transport is not None or not _aiohttp_installed() else "aiohttp"
    if backend == "aiohttp":
        if transport is not None:
            raise ConfigurationError(
                "async_transport is an httpx transport: use async_http='httpx'"
            )
        if not _aiohttp_installed():
            raise ConfigurationError(_NO_AIOHTTP)
    return backend


def async_sender(
    backend: str,
    settings: HttpSettings,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
) -> AsyncHttpSender:
    """A new asynchronous sender of ``backend`` (see :func:`resolve_async_backend`)."""
    if resolve_async_backend(backend, transport=transport) == "aiohttp":
        return AiohttpAsyncSender(settings)
    return HttpxAsyncSender(settings, transport=transport)


def _aiohttp_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("aiohttp") is not None


def _log(request: HttpRequest, provider: str, status: int, started: float) -> None:
    # Method, URL, status and time only: headers and bodies carry signatures and payer data.
    log.debug(
        "%s %s %s -> %d in %.1f ms",
        provider,
        request.method,
        request.url,
        status,
        (time.perf_counter() - started) * 1000,
    )


def drive(
    operation: Generator[R | Blocking[Any] | Wait, Any, T],
    send: Callable[[R], object],
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run ``operation`` to its result: each request it yields sent with ``send``, each
    :class:`~payments_core.http.Blocking` step called, each :class:`~payments_core.http.Wait`
    slept with ``sleep``.

    A step that fails raises its error into the operation, at the ``yield``, where the
    operation may handle it; an operation is closed when it ends, however it ends.
    """
    try:
        step = next(operation)
        while True:
            try:
                if isinstance(step, Blocking):
                    result = step.call()
                elif isinstance(step, Wait):
                    sleep(step.seconds)
                    result = None
                else:
                    result = send(step)
            except Exception as error:
                step = operation.throw(error)
            else:
                step = operation.send(result)
    except StopIteration as stop:
        value: T = stop.value
        return value
    finally:
        operation.close()


async def drive_async(
    operation: Generator[R | Blocking[Any] | Wait, Any, T],
    send: Callable[[R], Awaitable[object]],
    *,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    run_blocking: Callable[[Callable[[], Any]], Awaitable[Any]] = asyncio.to_thread,
) -> T:
    """Asynchronous :func:`drive`: a :class:`~payments_core.http.Blocking` step runs in a
    worker thread (``run_blocking``: by default ``asyncio.to_thread``; the facade passes its
    :class:`~payments_core.threads.BlockingThreads`), so that it never blocks the event loop."""
    try:
        step = next(operation)
        while True:
            try:
                if isinstance(step, Blocking):
                    result = await run_blocking(step.call)
                elif isinstance(step, Wait):
                    await sleep(step.seconds)
                    result = None
                else:
                    result = await send(step)
            except Exception as error:
                step = operation.throw(error)
            else:
                step = operation.send(result)
    except StopIteration as stop:
        value: T = stop.value
        return value
    finally:
        operation.close()
