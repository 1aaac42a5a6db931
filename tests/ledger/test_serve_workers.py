"""``payments serve --workers N``: N processes on one port, each with its own ledger connection.

A real ``payments serve --workers 2`` (SQLite file, PostgreSQL schema) receives the sandbox's
really signed PAY_SUCCESS callbacks for distinct orders from several senders at once, over
HTTP, and each twice. Every order ends paid by exactly one applied event, and every change
reaches the application's hook exactly once, whichever worker applied it.
"""

from __future__ import annotations

import re
import signal
import subprocess
import threading
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from payments_binance import BinancePayProvider
from payments_binance.sandbox import Sandbox, SandboxConfig, SandboxServer
from payments_core import Config, Money, OrderRequest, Payments, PaymentStatus, open_ledger
from payments_core.asgi import create_callback_app
from payments_core.cli.ledger import serve_command

from .crash_app import read_lines
from .fakes import HookRecorder, event_for, make_payments, order_for
from .serve_process import STARTUP_TIMEOUT_S, child_env, cli_command

API_KEY = "workers-test-key"
API_SECRET = "workers-test-secret-1a2b3c4d5e6f"
WORKERS = 2
ORDERS = 40
SENDERS = 8
#: Delivery rounds: a worker's first callbacks are deferred (503) while it fetches the keys.
ROUNDS = 10
CALLBACK = "/callbacks/binance"
_RUNNING = re.compile(r"Uvicorn running on (http://\S+)")
_STARTED = re.compile(r"Started server process \[(\d+)\]")
_PARENT = re.compile(r"Started parent process \[(\d+)\]")
_READY = "Application startup complete."


class ServeWorkers:
    """``with ServeWorkers(workers, env) as serve:`` runs ``payments serve --workers N`` on a
    free port and returns once every worker has finished its startup (read from its log)."""

    def __init__(self, workers: int, args: Sequence[str], env: Mapping[str, str]) -> None:
        self.workers = workers
        self.args = args
        self.env = env
        self.url = ""
        self.lines: list[str] = []
        self.returncode: int | None = None
        self._ready = threading.Event()
        self._process: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stderr is not None
        started = 0
        for line in process.stderr:
            self.lines.append(line.rstrip())
            if match := _RUNNING.search(line):
                self.url = match.group(1)
            started += _READY in line
            if self.url and started == self.workers:
                self._ready.set()
        process.stderr.close()
        self._ready.set()  # it exited: __enter__ stops waiting

    def pids(self, pattern: re.Pattern[str]) -> list[int]:
        return [int(m.group(1)) for m in map(pattern.search, self.lines) if m]

    def __enter__(self) -> ServeWorkers:
        command = cli_command("serve", "--port", "0", "--workers", str(self.workers), *self.args)
        self._process = process = subprocess.Popen(  # noqa: S603 - this interpreter
            command,
            env=dict(self.env),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, args=(process,), daemon=True)
        self._reader.start()
        if not self._ready.wait(STARTUP_TIMEOUT_S) or process.poll() is not None:
            self.__exit__(None, None, None)
            raise RuntimeError("payments serve did not start:\n" + "\n".join(self.lines[-20:]))
        return self

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
            process.send_signal(signal.SIGINT)  # uvicorn stops its workers, then itself
        try:
            self.returncode = process.wait(STARTUP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if self._reader is not None:
            self._reader.join(STARTUP_TIMEOUT_S)


@pytest.fixture
def sandbox() -> Iterator[tuple[Sandbox, str]]:
    sandbox = Sandbox(
        SandboxConfig(api_key=API_KEY, api_secret=API_SECRET, deliver_webhooks=False, seed=7)
    )
    with SandboxServer(sandbox) as server:
        yield sandbox, server.base_url


def paid_notifications(sandbox: Sandbox, base_url: str, ledger_url: str) -> list[Any]:
    """``ORDERS`` orders created through the sandbox and recorded, each paid: its callback."""
    with Payments(
        Config(),
        providers={"binance": BinancePayProvider},
        provider_settings={
            "binance": {"base_url": base_url, "api_key": API_KEY, "api_secret": API_SECRET}
        },
        load_entry_points=False,
        ledger=open_ledger(ledger_url),
    ) as payments:
        orders = [
            payments.create_order(
                OrderRequest(
                    reference=f"workers-{i}",
                    price=Money("1.00", "USD"),
                    callback_url="http://127.0.0.1:9/never",
                )
            )
            for i in range(ORDERS)
        ]
    for order in orders:
        sandbox.pay(order.provider_order_id)
    notifications = [entry for entry in sandbox.webhook_log if entry.skipped]
    assert len(notifications) == ORDERS
    return notifications


def deliver_all(url: str, notifications: list[Any]) -> int:
    """Deliver every notification from ``SENDERS`` threads, again while some are refused, as
    the provider would; how many deliveries it took."""
    pending = list(notifications)
    deliveries = 0
    with httpx.Client(timeout=30) as client, ThreadPoolExecutor(SENDERS) as pool:

        def acknowledged(notification: Any) -> bool:
            answer = client.post(
                url + CALLBACK, content=notification.body, headers=dict(notification.headers)
            )
            assert answer.status_code in (200, 503), answer.text  # 503: keys being fetched
            return answer.status_code == 200 and answer.json()["returnCode"] == "SUCCESS"

        for _ in range(ROUNDS):
            if not pending:
                break
            answers = list(pool.map(acknowledged, pending))
            deliveries += len(pending)
            pending = [n for n, ok in zip(pending, answers, strict=True) if not ok]
    assert not pending, f"{len(pending)} callbacks never acknowledged"
    return deliveries


def test_serve_with_two_workers_applies_and_announces_each_callback_exactly_once(
    ledger_url: str, sandbox: tuple[Sandbox, str], tmp_path: Path
) -> None:
    the_sandbox, base_url = sandbox
    notifications = paid_notifications(the_sandbox, base_url, ledger_url)
    env = child_env(
        {
            "PAYMENTS_PROVIDERS": "binance",
            "PAYMENTS_DATABASE_URL": ledger_url,
            "PAYMENTS_PLUGINS": "tests.ledger.crash_app:Effects",
            "PAYMENTS_CRASH_APP_DIR": str(tmp_path),
            "BINANCE_PAY_BASE_URL": base_url,
            "BINANCE_PAY_API_KEY": API_KEY,
            "BINANCE_PAY_API_SECRET": API_SECRET,
        }
    )
    with ServeWorkers(WORKERS, [], env) as serve:
        deliver_all(serve.url, notifications)
        deliver_all(serve.url, notifications)  # every one again: duplicates, acknowledged
    assert serve.returncode == 0, "\n".join(serve.lines[-20:])
    (parent,) = serve.pids(_PARENT)
    workers = serve.pids(_STARTED)
    assert len(set(workers)) == WORKERS
    assert parent not in workers

    with open_ledger(ledger_url) as ledger:
        orders = [ledger.get_order("binance", f"workers-{i}") for i in range(ORDERS)]
        events = [ledger.events_for("binance", f"workers-{i}") for i in range(ORDERS)]
        unannounced = ledger.unannounced_changes()
    assert [o.status if o else None for o in orders] == [PaymentStatus.PAID] * ORDERS
    assert [[e.applied for e in order_events] for order_events in events] == [[True]] * ORDERS
    assert unannounced == []
    expected = sorted(order_events[0].event_id for order_events in events)
    assert sorted(read_lines(tmp_path / "calls.log")) == expected  # each hook call once


def test_serve_refuses_fewer_than_one_worker() -> None:
    result = CliRunner().invoke(serve_command, ["--workers", "0"])
    assert result.exit_code == 2
    assert "--workers" in result.output


@pytest.mark.anyio
async def test_the_app_announces_at_startup_only_changes_older_than_asked(ledger_url: str) -> None:
    recorder = HookRecorder()
    payments = make_payments(ledger_url, plugins=[recorder])
    assert payments.ledger is not None
    payments.ledger.record_order(order_for("booking-1"))
    # A change committed just now and not announced yet: a sibling worker's, say.
    payments.ledger.apply_event(event_for("booking-1"))
    app = create_callback_app(
        payments, close_payments=True, announce_older_than=timedelta(minutes=1)
    )
    async with app.router.lifespan_context(app):
        pass
    assert recorder.changes == []
    with make_payments(ledger_url, plugins=[recorder]) as later:
        app = create_callback_app(later, close_payments=True)  # by default: every change
        async with app.router.lifespan_context(app):
            pass
    assert [change.reference for change in recorder.changes] == ["booking-1"]
