"""Running the sandbox on loopback: in a background thread, in the foreground, or in a process.

* :class:`SandboxServer` serves a :class:`Sandbox` with uvicorn on its own event loop in a daemon
  thread; port 0 picks a free port, known (``base_url``) as soon as the context is entered.
* :func:`serve_forever` serves in the calling thread until SIGINT/SIGTERM (the CLI uses it).
* :class:`SandboxProcess` runs ``python -m payments_binance.sandbox`` in a child process (for
  benchmarks) and reads its base URL from its standard output.

All of them use a uvicorn HTTP protocol that lets the app reach its connection, which the
"connection reset" and "response dropped" faults need. A server that fails to start raises
``RuntimeError``.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from types import TracebackType
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

from payments_binance.sandbox import connection
from payments_binance.sandbox.sandbox import Sandbox
from payments_binance.sandbox.workers import stop_processes
from payments_core.serving import BackgroundServer, UvicornServer, bind, url_of


@contextlib.contextmanager
def _exposing(transport: asyncio.BaseTransport) -> Iterator[None]:
    # A request task copies this context when the protocol creates it inside the block.
    token = connection.CURRENT_TRANSPORT.set(transport)  # type: ignore[arg-type]
    try:
        yield
    finally:
        connection.CURRENT_TRANSPORT.reset(token)


class _ConnectionAwareH11Protocol(H11Protocol):
    """h11 protocol that exposes the transport to the request task it creates."""

    def data_received(self, data: bytes) -> None:
        with _exposing(self.transport):
            super().data_received(data)


def _httptools_protocol() -> type[asyncio.Protocol] | None:
    """The httptools protocol, connection-aware like the h11 one; ``None`` if not installed."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:
        return None

    class ConnectionAwareHttpToolsProtocol(HttpToolsProtocol):
        """httptools protocol that exposes the transport to the request tasks it creates."""

        def data_received(self, data: bytes) -> None:
            with _exposing(self.transport):
                super().data_received(data)

        def _start_asgi_task(self, cycle: Any, app: Any) -> None:
            # A pipelined request starts later, from the previous response's completion.
            with _exposing(self.transport):
                super()._start_asgi_task(cycle, app)

    return ConnectionAwareHttpToolsProtocol


#: The HTTP protocol the sandbox serves with: httptools parses a request in C, several times
#: faster than the pure-Python h11 (docs/performance.md, "The sandbox's own cost").
HTTP_PROTOCOL: type[asyncio.Protocol] = _httptools_protocol() or _ConnectionAwareH11Protocol


#: Seconds an idle connection stays open. uvicorn's default of 5 s raced clients that reuse a
#: connection at the moment it is closed ("Can not write request body" in a benchmark); 75 s
#: is what common front ends (nginx) keep, and longer than any client's own idle limit here.
_KEEP_ALIVE_S = 75


def _server_for(sandbox: Sandbox, sock: socket.socket) -> BackgroundServer:
    return BackgroundServer(
        sandbox.app,
        sock=sock,
        name="sandbox",
        http=HTTP_PROTOCOL,
        lifespan="on",
        timeout_graceful_shutdown=5,
        timeout_keep_alive=_KEEP_ALIVE_S,
    )


def _bound(sandbox: Sandbox, host: str, port: int) -> socket.socket:
    """A socket bound for ``sandbox``, whose base URL (for checkout links) it becomes."""
    sock = bind(host, port)
    if sandbox.base_url is None:
        sandbox.base_url = url_of(sock)
    return sock


def serve_forever(
    sandbox: Sandbox,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    on_ready: Callable[[str], None],
    sock: socket.socket | None = None,
) -> None:
    """Serve ``sandbox`` in this thread until interrupted; ``on_ready(base_url)`` once bound.

    ``sock``: a listening socket to serve on (a worker's, inherited) instead of binding one.
    """
    if sock is None:
        sock = _bound(sandbox, host, port)
    elif sandbox.base_url is None:
        sandbox.base_url = url_of(sock)
    with sock:
        server = UvicornServer.for_app(
            sandbox.app,
            http=HTTP_PROTOCOL,
            lifespan="on",
            timeout_graceful_shutdown=5,
            timeout_keep_alive=_KEEP_ALIVE_S,
        )
        on_ready(url_of(sock))
        server.run(sockets=[sock])


class SandboxServer:
    """``with SandboxServer(sandbox) as server:`` serves it on ``server.base_url`` meanwhile."""

    def __init__(self, sandbox: Sandbox, host: str = "127.0.0.1", port: int = 0) -> None:
        self.sandbox = sandbox
        self.host = host
        self.port = port
        self.base_url = ""
        self._server: BackgroundServer | None = None

    def start(self) -> None:
        """Bind, start uvicorn in a daemon thread and wait until it serves."""
        self._server = _server_for(self.sandbox, _bound(self.sandbox, self.host, self.port))
        self.base_url = self._server.url
        self._server.start()

    def stop(self) -> None:
        """Stop serving: end fault delays, shut uvicorn down and join its thread."""
        if self._server is not None:
            self.sandbox.begin_shutdown()
            self._server.stop()
            self._server = None

    def __enter__(self) -> SandboxServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class SandboxProcess:
    """``with SandboxProcess("--faults", "flaky") as proc:`` runs the CLI in a child process.

    ``args`` are extra options of ``payments sandbox``; ``workers`` and ``state`` are its
    ``--workers`` and ``--state`` (``SandboxProcess(workers=2)`` serves one sandbox from two
    processes). ``proc.base_url`` and ``proc.info`` (every ``key: value`` line it printed) are
    read from its output. ``RuntimeError`` if the process exits before printing its base URL.
    """

    def __init__(
        self,
        *args: str,
        host: str = "127.0.0.1",
        port: int = 0,
        workers: int = 1,
        state: str | None = None,
    ) -> None:
        extra = ["--workers", str(workers)] if workers != 1 else []
        if state is not None:
            extra += ["--state", state]
        self.args: Sequence[str] = (*args, *extra)
        self.host = host
        self.port = port
        self.base_url = ""
        self.info: dict[str, str] = {}
        self._process: subprocess.Popen[str] | None = None

    @property
    def pid(self) -> int:
        """The process id of the command (the parent of the workers, with ``workers > 1``)."""
        if self._process is None:
            raise RuntimeError("the sandbox process is not running")
        return self._process.pid

    def __enter__(self) -> SandboxProcess:
        command = [
            sys.executable,
            "-m",
            "payments_binance.sandbox",
            "--host",
            self.host,
            "--port",
            str(self.port),
            *self.args,
        ]
        self._process = subprocess.Popen(  # noqa: S603 - fixed interpreter and module
            command, stdout=subprocess.PIPE, text=True
        )
        for line in self._process.stdout or ():
            key, _, value = line.partition(":")
            self.info[key.strip()] = value.strip()
            if key.strip() == "base_url":
                self.base_url = value.strip()
            if key.strip() == "ready":
                return self
        self.__exit__(None, None, None)
        raise RuntimeError("the sandbox process exited before it was ready")

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        process, self._process = self._process, None
        if process is not None:
            stop_processes([process])
