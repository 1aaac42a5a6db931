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
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from types import TracebackType

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from payments_binance.sandbox import connection
from payments_binance.sandbox.sandbox import Sandbox

STARTUP_TIMEOUT_S = 30.0


class _ConnectionAwareH11Protocol(H11Protocol):
    """h11 protocol that exposes the transport to the request task it creates."""

    def data_received(self, data: bytes) -> None:
        # The request task copies this context when it is created inside handle_events().
        token = connection.CURRENT_TRANSPORT.set(self.transport)
        try:
            super().data_received(data)
        finally:
            connection.CURRENT_TRANSPORT.reset(token)


class _Server(uvicorn.Server):
    """uvicorn server that reports when it has started and on which loop."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()
        self.loop: asyncio.AbstractEventLoop | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        self.loop = asyncio.get_running_loop()
        await super().startup(sockets=sockets)
        self.ready.set()


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY on accepted sockets only when the
    # listening socket says so, and without it every response waits ~40 ms for a delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(2048)  # connections made before uvicorn starts wait in the backlog
    return sock


def _base_url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _uvicorn_server(sandbox: Sandbox) -> _Server:
    config = uvicorn.Config(
        sandbox.app,
        http=_ConnectionAwareH11Protocol,
        ws="none",
        lifespan="on",
        log_config=None,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=5,
    )
    return _Server(config)


def serve_forever(
    sandbox: Sandbox, host: str = "127.0.0.1", port: int = 0, *, on_ready: Callable[[str], None]
) -> None:
    """Serve ``sandbox`` in this thread until interrupted; ``on_ready(base_url)`` once bound."""
    sock = _bind(host, port)
    with sock:
        base = _base_url(sock)
        if sandbox.base_url is None:
            sandbox.base_url = base
        server = _uvicorn_server(sandbox)
        on_ready(base)
        server.run(sockets=[sock])


class SandboxServer:
    """``with SandboxServer(sandbox) as server:`` serves it on ``server.base_url`` meanwhile."""

    def __init__(self, sandbox: Sandbox, host: str = "127.0.0.1", port: int = 0) -> None:
        self.sandbox = sandbox
        self.host = host
        self.port = port
        self._sock: socket.socket | None = None
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.base_url = ""

    def start(self) -> None:
        """Bind, start uvicorn in a daemon thread and wait until it serves."""
        self._sock = _bind(self.host, self.port)
        self.base_url = _base_url(self._sock)
        if self.sandbox.base_url is None:
            self.sandbox.base_url = self.base_url
        self._server = _uvicorn_server(self.sandbox)
        sockets = [self._sock]
        server = self._server
        self._thread = threading.Thread(
            target=lambda: server.run(sockets=sockets), name=f"sandbox {self.base_url}", daemon=True
        )
        self._thread.start()
        if not server.ready.wait(STARTUP_TIMEOUT_S) or not server.started:
            self.stop()
            raise RuntimeError(f"the sandbox did not start on {self.base_url}")

    def stop(self) -> None:
        """Stop serving: end fault delays, shut uvicorn down and join its thread."""
        if self._server is not None:
            self.sandbox.begin_shutdown()
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(STARTUP_TIMEOUT_S)
        if self._sock is not None:
            self._sock.close()
        self._server = self._thread = self._sock = None

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

    ``args`` are extra options of ``payments sandbox``; ``proc.base_url`` and ``proc.info``
    (every ``key: value`` line it printed) are read from its output. ``RuntimeError`` if the
    process exits before printing its base URL.
    """

    def __init__(self, *args: str, host: str = "127.0.0.1", port: int = 0) -> None:
        self.args: Sequence[str] = args
        self.host = host
        self.port = port
        self.base_url = ""
        self.info: dict[str, str] = {}
        self._process: subprocess.Popen[str] | None = None

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
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(STARTUP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stdout is not None:
            process.stdout.close()
