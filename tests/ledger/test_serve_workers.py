"""``payments serve --workers N``: N processes on one port, each with its own ledger connection.

A real ``payments serve --workers 2`` (SQLite file, PostgreSQL schema) receives the sandbox's
really signed PAY_SUCCESS callbacks for distinct orders from several senders at once, over
HTTP, and each twice. Every order ends paid by exactly one applied event, and every change
reaches the application's hook exactly once, whichever worker applied it.
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from payments_binance.sandbox import Sandbox
from payments_core.asgi import create_callback_app
from payments_core.cli.ledger import serve_command

from .crash_app import read_lines
from .fakes import HookRecorder, event_for, make_payments, order_for
from .serve_process import ServeProcess, paid_callbacks, paid_once, serve_env

WORKERS = 2
ORDERS = 40
SENDERS = 8
#: Delivery rounds: a worker's first callbacks are deferred (503) while it fetches the keys.
ROUNDS = 10
CALLBACK = "/callbacks/binance"
_STARTED = re.compile(r"Started server process \[(\d+)\]")
_PARENT = re.compile(r"Started parent process \[(\d+)\]")


#: The orders' references.
REFERENCES = [f"workers-{i}" for i in range(ORDERS)]


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
    ledger_url: str, quiet_binance_sandbox: tuple[Sandbox, str], tmp_path: Path
) -> None:
    the_sandbox, base_url = quiet_binance_sandbox
    notifications = paid_callbacks(the_sandbox, base_url, ledger_url, REFERENCES)
    env = serve_env(ledger_url, base_url, tmp_path)
    with ServeProcess([], env, workers=WORKERS) as serve:
        deliver_all(serve.url, notifications)
        deliver_all(serve.url, notifications)  # every one again: duplicates, acknowledged
    assert serve.returncode == 0, "\n".join(serve.lines[-20:])
    (parent,) = serve.pids(_PARENT)
    workers = serve.pids(_STARTED)
    assert len(set(workers)) == WORKERS
    assert parent not in workers

    expected = sorted(paid_once(ledger_url, REFERENCES))
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
