"""Several processes serving one sandbox (``payments sandbox --workers N``).

The parent binds the listening socket, then starts ``N`` children (``python -m
payments_binance.sandbox --listen-fd FD --worker-index I ...``) that inherit it: the kernel hands
each new connection to one of them. Every child keeps its orders, refunds and used nonces in the
same state (a SQLite file or a PostgreSQL database, see :mod:`payments_binance.sandbox.shared`)
and signs webhooks with the same key, which the parent generates when none is given. The parent
waits until every child is ready, then until it is interrupted or a child ends; either way it
stops the others (SIGINT, then SIGKILL after a grace period). Interrupted, it returns; a child
that fails to start or ends on its own raises ``RuntimeError`` after the others were stopped.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from types import FrameType

from payments_core.serving import STARTUP_TIMEOUT_S

#: ``payments sandbox`` run by this interpreter.
COMMAND = (sys.executable, "-m", "payments_binance.sandbox")


def stop_processes(children: Sequence[subprocess.Popen[str]]) -> None:
    """Ask each process to stop (SIGINT), wait for it, kill it after the grace period."""
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGINT)
    for child in children:
        try:
            child.wait(STARTUP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        if child.stdout is not None:
            child.stdout.close()


def _wait_ready(child: subprocess.Popen[str]) -> None:
    for line in child.stdout or ():
        if line.startswith("ready:"):
            return
    raise RuntimeError(f"sandbox worker {child.pid} exited before it was ready")


@contextlib.contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    # SIGTERM ends the parent like Ctrl-C does, so the children are stopped in both cases; SIGINT
    # is handled too, since a process started from a background shell inherits it ignored.
    def interrupt(_signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def serve_workers(
    sock: socket.socket,
    count: int,
    child_args: Sequence[str],
    *,
    on_ready: Callable[[], None],
) -> None:
    """Serve on ``sock`` with ``count`` child processes until interrupted or one of them ends.

    ``child_args`` are the ``payments sandbox`` options every child gets (``--state`` and
    ``--signing-key`` among them); ``on_ready`` runs once all of them serve.
    """
    fd = sock.fileno()
    children: list[subprocess.Popen[str]] = []
    with _terminate_as_interrupt():
        try:
            for index in range(count):
                args = [*child_args, "--listen-fd", str(fd), "--worker-index", str(index)]
                children.append(
                    subprocess.Popen(  # noqa: S603 - our interpreter, our module
                        [*COMMAND, *args], pass_fds=(fd,), stdout=subprocess.PIPE, text=True
                    )
                )
            for child in children:
                _wait_ready(child)
            on_ready()
            pid, status = os.wait()  # returns when any child ends; Ctrl-C or SIGTERM interrupts
        except KeyboardInterrupt:
            return
        finally:
            stop_processes(children)
    raise RuntimeError(f"sandbox worker {pid} ended ({_ended(status)}); the others were stopped")


def _ended(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"signal {os.WTERMSIG(status)}"
    return f"exit code {os.waitstatus_to_exitcode(status)}"
