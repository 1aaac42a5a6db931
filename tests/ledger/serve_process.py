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
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from payments_binance.sandbox import Sandbox
from payments_core import Money, OrderRequest, PaymentStatus, open_ledger
from tests.binance.loopback import NOWHERE, binance_env, binance_payments, sandbox_on_loopback

#: Seconds a child has to start or to stop.
STARTUP_TIMEOUT_S = 30.0
#: The repository root, so that ``--plugin tests.ledger.crash_app:Effects`` imports.
REPO = Path(__file__).resolve().parents[2]
_RUNNING = re.compile(r"Uvicorn running on (http://\S+)")
_READY = "Application startup complete."


def cli_command(*args: str) -> list[str]:
    """The ``payments`` command line, run by this interpreter."""
    return [sys.executable, "-c", "from payments_core.cli import main; main()", *args]


def child_env(extra: Mapping[str, str]) -> dict[str, str]:
    """This environment, without a configuration file, with the repository importable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PAYMENTS_", "BINANCE_PAY_"))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


def serve_env(ledger_url: str, base_url: str, app_dir: Path) -> dict[str, str]:
    """The environment of ``payments serve`` for the Binance sandbox at ``base_url``, with the
    crash tests' application (:mod:`tests.ledger.crash_app`) writing to ``app_dir``."""
    return child_env(
        {
            "PAYMENTS_PROVIDERS": "binance",
            "PAYMENTS_DATABASE_URL": ledger_url,
            "PAYMENTS_PLUGINS": "tests.ledger.crash_app:Effects",
            "PAYMENTS_CRASH_APP_DIR": str(app_dir),
            **binance_env(base_url),
        }
    )


@contextmanager
def quiet_sandbox(seed: int) -> Iterator[tuple[Sandbox, str]]:
    """A served sandbox for our merchant that sends no webhook (its log keeps each one)."""
    with sandbox_on_loopback(deliver_webhooks=False, seed=seed) as served:
        yield served


def paid_callbacks(
    sandbox: Sandbox, base_url: str, ledger_url: str, references: Iterable[str]
) -> list[Any]:
    """Create an order for each reference (recorded in the ledger) and pay it: the signed
    callbacks the sandbox did not send."""
    with binance_payments(base_url, ledger_url) as payments:
        orders = [
            payments.create_order(
                OrderRequest(reference=reference, price=Money("1.00", "USD"), callback_url=NOWHERE)
            )
            for reference in references
        ]
    for order in orders:
        sandbox.pay(order.provider_order_id)
    callbacks = [entry for entry in sandbox.webhook_log if entry.skipped]
    assert len(callbacks) == len(orders)
    return callbacks


def paid_once(ledger_url: str, references: Sequence[str]) -> list[str]:
    """Check that each order is paid by exactly one applied event, and every change announced;
    the ids of those events."""
    with open_ledger(ledger_url) as ledger:
        orders = [ledger.get_order("binance", reference) for reference in references]
        events = [ledger.events_for("binance", reference) for reference in references]
        unannounced = ledger.unannounced_changes()
    assert [o.status if o else None for o in orders] == [PaymentStatus.PAID] * len(references)
    assert [[e.applied for e in order_events] for order_events in events] == [[True]] * len(
        references
    )
    assert unannounced == []
    return [order_events[0].event_id for order_events in events]


class ServeProcess:
    """``with ServeProcess(args, env) as serve:`` runs ``payments serve`` on a free port.

    With ``workers``, it runs ``payments serve --workers N`` and is ready once every worker has
    finished its startup (read from its log).
    """

    def __init__(
        self, args: Sequence[str], env: Mapping[str, str], *, workers: int | None = None
    ) -> None:
        self.args = [*args, "--workers", str(workers)] if workers else list(args)
        self.env = env
        self.url = ""
        self.lines: list[str] = []
        self.returncode: int | None = None
        self._startups = workers or 0
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
        if not self._ready.wait(STARTUP_TIMEOUT_S) or not self.url or process.poll() is not None:
            self.kill()
            raise RuntimeError("payments serve did not start:\n" + "\n".join(self.lines[-20:]))

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stderr is not None
        started = 0
        for line in process.stderr:
            self.lines.append(line.rstrip())
            if match := _RUNNING.search(line):
                self.url = match.group(1)
            started += _READY in line
            if self.url and started >= self._startups:
                self._ready.set()
        process.stderr.close()
        self._ready.set()  # it exited: start() stops waiting

    def pids(self, pattern: re.Pattern[str]) -> list[int]:
        """The process ids in the log lines ``pattern`` matches (its first group)."""
        return [int(match.group(1)) for match in map(pattern.search, self.lines) if match]

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
            self.returncode = process.wait(STARTUP_TIMEOUT_S)
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
