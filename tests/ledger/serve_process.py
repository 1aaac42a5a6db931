"""``payments serve`` as a real child process, for the crash tests: started, killed, restarted.

The child's standard error is read on a thread: the line where uvicorn says where it runs tells
that it is ready (no polling), and the rest is kept for the failure report.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

#: Seconds a child has to start or to stop.
STARTUP_TIMEOUT_S = 30.0
#: The repository root, so that ``--plugin tests.ledger.crash_app:Effects`` imports.
REPO = Path(__file__).resolve().parents[2]
_RUNNING = re.compile(r"Uvicorn running on (http://\S+)")


def cli_command(*args: str) -> list[str]:
    """The ``payments`` command line, run by this interpreter."""
    return [sys.executable, "-c", "from payments_core.cli import main; main()", *args]


def child_env(extra: Mapping[str, str]) -> dict[str, str]:
    """This environment, without a configuration file, with the repository importable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PAYMENTS_", "BINANCE_PAY_"))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


class ServeProcess:
    """``with ServeProcess(args, env) as serve:`` runs ``payments serve`` on a free port."""

    def __init__(self, args: Sequence[str], env: Mapping[str, str]) -> None:
        self.args = args
        self.env = env
        self.url = ""
        self.lines: list[str] = []
        self._ready = threading.Event()
        self._process: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None

    def start(self) -> None:
        command = cli_command("serve", "--port", "0", *self.args)
        self._process = process = subprocess.Popen(  # noqa: S603 - this interpreter
            command,
            env=dict(self.env),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, args=(process,), daemon=True)
        self._reader.start()
        if not self._ready.wait(STARTUP_TIMEOUT_S) or not self.url:
            self.kill()
            raise RuntimeError("payments serve did not start:\n" + "\n".join(self.lines[-20:]))

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stderr is not None
        for line in process.stderr:
            self.lines.append(line.rstrip())
            if match := _RUNNING.search(line):
                self.url = match.group(1)
                self._ready.set()
        process.stderr.close()
        self._ready.set()  # it exited: start() stops waiting

    def kill(self) -> None:
        """SIGKILL: no shutdown, no flush, nothing runs after it."""
        process = self._process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGKILL)
        self._reap()

    def stop(self) -> None:
        """SIGINT: uvicorn's graceful shutdown."""
        process = self._process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGINT)
        self._reap()

    def _reap(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        try:
            process.wait(STARTUP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if self._reader is not None:
            self._reader.join(STARTUP_TIMEOUT_S)

    def __enter__(self) -> ServeProcess:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
