"""Serving an ASGI app with uvicorn on loopback, in a background thread or in the foreground.

The demo serves its callback endpoint this way, a provider's sandbox serves its imitation of
the provider's API, and tests serve applications over real HTTP::

    with BackgroundServer(app) as server:   # a free port; returns once the app serves
        httpx.get(f"{server.url}/health")
    # leaving the block runs the app's shutdown (ASGI lifespan) and joins the thread

Nothing waits by sleeping: the server thread signals when uvicorn's startup has finished.
Sockets are bound by :func:`bind`, which asks for TCP explicitly (``IPPROTO_TCP``): asyncio then
sets ``TCP_NODELAY`` on the accepted connections, and without it a small response can wait
~40 ms for the client's delayed ACK.
"""

from __future__ import annotations

import socket
import threading
from typing import Any, Final

import uvicorn
from starlette.types import ASGIApp

from payments_core.redaction import get_logger

__all__ = ["STARTUP_TIMEOUT_S", "BackgroundServer", "UvicornServer", "bind", "url_of"]

log = get_logger("payments_core.serving")

#: Seconds to wait for uvicorn to start, and for its thread to end after it was asked to.
STARTUP_TIMEOUT_S: Final = 30.0

#: uvicorn options every server here starts from; a caller's options override them.
_DEFAULT_OPTIONS: Final[dict[str, Any]] = {
    "ws": "none",
    "log_config": None,
    "log_level": "warning",
    "access_log": False,
}


def bind(host: str = "127.0.0.1", port: int = 0, *, backlog: int = 2048) -> socket.socket:
    """A listening TCP socket on ``host:port`` (``0``: a free port); IPv6 if ``host`` has ``:``.

    Connections made before the server runs wait in the backlog.

    :raises OSError: if the address cannot be bound.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    return sock


def url_of(sock: socket.socket) -> str:
    """``http://host:port`` of a bound socket (brackets around an IPv6 host)."""
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class UvicornServer(uvicorn.Server):
    """A uvicorn server that signals when its startup has finished, whether or not it worked."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        try:
            await super().startup(sockets=sockets)
        finally:
            self.ready.set()

    @classmethod
    def for_app(cls, app: ASGIApp, **options: Any) -> UvicornServer:
        """A server for ``app`` with quiet defaults (no websockets, no access log)."""
        return cls(uvicorn.Config(app, **{**_DEFAULT_OPTIONS, **options}))


class BackgroundServer:
    """Serve ``app`` from a daemon thread while the block runs.

    :param app: Any ASGI application.
    :param host: The address to bind; loopback by default.
    :param port: The port; ``0`` picks a free one.
    :param sock: A socket already bound (by :func:`bind`) to serve on instead; it is closed
        when the server stops.
    :param name: Names the thread, for debugging.
    :param options: More ``uvicorn.Config`` options (``lifespan``, ``http``, ...).

    Attributes:
        url: ``http://host:port``, known once started (or at once, given ``sock``).
    """

    def __init__(
        self,
        app: ASGIApp,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        sock: socket.socket | None = None,
        name: str = "asgi",
        **options: Any,
    ) -> None:
        self.app = app
        self.host = host
        self.port = port
        self.name = name
        self.options = options
        self.url = "" if sock is None else url_of(sock)
        self._sock = sock
        self._server: UvicornServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Bind (unless given a socket), start uvicorn in a thread and wait until it serves.

        :raises OSError: if the address cannot be bound.
        :raises RuntimeError: if uvicorn does not start (the app's startup failed, say).
        """
        sock = self._sock = self._sock or bind(self.host, self.port)
        self.url = url_of(sock)
        server = self._server = UvicornServer.for_app(self.app, **self.options)
        failure: list[BaseException] = []

        def run() -> None:
            try:
                server.run(sockets=[sock])
            except Exception as exc:  # before startup (uvicorn's config): start() raises it
                failure.append(exc)
                if server.started:
                    log.exception("%s on %s stopped", self.name, self.url)
            finally:
                server.ready.set()

        self._thread = threading.Thread(target=run, name=f"{self.name} {self.url}", daemon=True)
        self._thread.start()
        if not server.ready.wait(STARTUP_TIMEOUT_S) or not server.started:
            self.stop()
            cause = failure[0] if failure else None
            raise RuntimeError(f"{self.name} did not start on {self.url}") from cause

    def stop(self) -> None:
        """Shut uvicorn down (running the app's shutdown) and join its thread."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(STARTUP_TIMEOUT_S)
        if self._sock is not None:
            self._sock.close()
        self._server = self._thread = self._sock = None

    def __enter__(self) -> BackgroundServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
