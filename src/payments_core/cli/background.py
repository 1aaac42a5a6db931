"""Serving an ASGI app on loopback in a background thread, for the demo and for tests.

``with BackgroundServer(app) as server:`` binds a free port (``port=0``), runs uvicorn on its own
event loop in a daemon thread, and returns once the app serves (``server.url``); leaving the
block runs the app's shutdown (ASGI lifespan) and joins the thread. Nothing waits by sleeping:
the thread signals when uvicorn has started.
"""

from __future__ import annotations

import socket
import threading
from types import TracebackType
from typing import Final

import uvicorn
from starlette.types import ASGIApp

__all__ = ["BackgroundServer"]

STARTUP_TIMEOUT_S: Final = 30.0


class _Server(uvicorn.Server):
    """A uvicorn server that signals when its startup has finished, whether or not it worked."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        try:
            await super().startup(sockets=sockets)
        finally:
            self.ready.set()


class BackgroundServer:
    """Serve ``app`` on ``http://{host}:{port}`` from a daemon thread while the block runs.

    :param app: Any ASGI application.
    :param host: The address to bind; loopback by default.
    :param port: The port; ``0`` picks a free one.

    Attributes:
        url: ``http://host:port`` once started.
    """

    def __init__(self, app: ASGIApp, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = app
        self.host = host
        self.port = port
        self.url = ""
        self._sock: socket.socket | None = None
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Bind, start uvicorn in a thread and wait until it serves.

        :raises OSError: if the address cannot be bound.
        :raises RuntimeError: if uvicorn does not start (the app's startup failed).
        """
        sock = self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind((self.host, self.port))
        sock.listen(128)  # connections made before uvicorn runs wait in the backlog
        host, port = sock.getsockname()[:2]
        self.url = f"http://{host}:{port}"
        config = uvicorn.Config(
            self.app, ws="none", log_config=None, log_level="warning", access_log=False
        )
        server = self._server = _Server(config)
        self._thread = threading.Thread(
            target=lambda: server.run(sockets=[sock]), name=f"asgi {self.url}", daemon=True
        )
        self._thread.start()
        if not server.ready.wait(STARTUP_TIMEOUT_S) or not server.started:
            self.stop()
            raise RuntimeError(f"the ASGI app did not start on {self.url}")

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

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
