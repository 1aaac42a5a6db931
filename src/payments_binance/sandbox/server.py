"""Running the sandbox on loopback: in a background thread, in the foreground, or in a process.

* :class:`SandboxServer` serves a :class:`Sandbox` with uvicorn on its own event loop in a daemon
  thread; port 0 picks a free port, known (``base_url``) as soon as the context is entered.
* :func:`serve_forever` serves in the calling thread until SIGINT/SIGTERM (the CLI uses it).
* :class:`SandboxProcess` runs ``python -m payments_binance.sandbox`` in a child process (for
  benchmarks) and reads its base URL from its standard output.

All of them serve with the toolkit's :data:`~payments_core.testing.sandbox.SERVER_OPTIONS`, which
the network faults need. A server that fails to start raises ``RuntimeError``.
"""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Callable, Sequence

from payments_binance.sandbox.sandbox import Sandbox
from payments_binance.sandbox.workers import COMMAND, stop_processes
from payments_core.serving import BackgroundServer, UvicornServer, bind, url_of
from payments_core.testing.sandbox import SERVER_OPTIONS


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
    sock = sock or bind(host, port)
    if sandbox.base_url is None:  # the base of its checkout links
        sandbox.base_url = url_of(sock)
    with sock:
        server = UvicornServer.for_app(sandbox.app, lifespan="on", **SERVER_OPTIONS)
        on_ready(url_of(sock))
        server.run(sockets=[sock])


class SandboxServer(BackgroundServer):
    """``with SandboxServer(sandbox) as server:`` serves it on ``server.base_url`` meanwhile.

    Starting binds, starts uvicorn in a daemon thread and waits until it serves; stopping ends
    fault delays, shuts uvicorn down and joins its thread.
    """

    def __init__(self, sandbox: Sandbox, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(sandbox.app, host, port, name="sandbox", lifespan="on", **SERVER_OPTIONS)
        self.sandbox = sandbox

    @property
    def base_url(self) -> str:
        """Where the sandbox listens (and, unless configured, the base of its links)."""
        return self.url

    def start(self) -> None:
        super().start()
        if self.sandbox.base_url is None:
            self.sandbox.base_url = self.url

    def __enter__(self) -> SandboxServer:
        self.start()
        return self


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
        command = [*COMMAND, "--host", self.host, "--port", str(self.port), *self.args]
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

    def __exit__(self, *exc_info: object) -> None:
        process, self._process = self._process, None
        if process is not None:
            stop_processes([process])
