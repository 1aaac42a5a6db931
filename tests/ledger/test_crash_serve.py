"""Crash safety of the callback path: ``payments serve`` killed with SIGKILL mid-stream.

A real ``payments serve`` process (SQLite file, PostgreSQL schema) receives the sandbox's
really signed PAY_SUCCESS callbacks from four senders at once, and is killed with SIGKILL at
random points: after a random number of acknowledgements, so that other deliveries are in
flight, between their commit and their hook or before either. It is started again and
everything not acknowledged is delivered again, until every callback is acknowledged. Then
every order is paid exactly once in the ledger (one order row, one applied event), no change is
left unannounced, the application's effect happened exactly once per order (it ignores a
repeated change id, as the docs ask), and the SQLite file passes ``PRAGMA integrity_check``.
"""

from __future__ import annotations

import random
import re
import sqlite3
import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from payments_binance.sandbox import Sandbox

from .crash_app import read_lines
from .serve_process import ServeProcess, paid_callbacks, paid_once, serve_env

ORDERS = 60
KILLS = 20
SENDERS = 4
CALLBACK = "/callbacks/binance"
ANNOUNCED = re.compile(r"announced (\d+) change")


#: The orders' references.
REFERENCES = [f"crash-{i}" for i in range(ORDERS)]


def one_run(
    env: dict[str, str],
    unacknowledged: dict[int, Any],
    attempts: Counter[int],
    kill_after: int | None,
) -> tuple[bool, list[str]]:
    """Start serve, deliver what is unacknowledged from ``SENDERS`` threads, and kill it
    with SIGKILL after ``kill_after`` acknowledgements (if given): (killed, its log lines)."""
    serve = ServeProcess([], env)
    serve.start()
    acknowledged = threading.Semaphore(0)
    killed = threading.Event()

    def killer(count: int) -> None:
        for _ in range(count):
            acknowledged.acquire()
        serve.kill()
        killed.set()

    if kill_after is not None:
        threading.Thread(target=killer, args=(kill_after,), daemon=True).start()

    def send(item: tuple[int, Any]) -> None:
        index, notification = item
        if killed.is_set():
            return
        attempts[index] += 1
        if deliver(serve.url, notification):
            unacknowledged.pop(index, None)
            acknowledged.release()

    with ThreadPoolExecutor(SENDERS) as pool:
        list(pool.map(send, list(unacknowledged.items())))
    if kill_after is not None and not killed.is_set():
        # Fewer acknowledgements were left than planned: kill it now, between deliveries.
        serve.kill()
        killed.set()
    if not killed.is_set():
        serve.stop()
    return killed.is_set(), serve.lines


def deliver(url: str, notification: Any) -> bool:
    """One delivery attempt; True if acknowledged, False if refused, deferred or cut off."""
    try:
        answer = httpx.post(
            url + CALLBACK,
            content=notification.delivery.body,
            headers=dict(notification.headers),
            timeout=30,
        )
    except httpx.TransportError:
        return False
    return answer.status_code == 200 and answer.json().get("returnCode") == "SUCCESS"


@pytest.mark.parametrize(
    "ledger_url", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
def test_serve_killed_mid_stream_pays_every_order_once_and_announces_each_once(
    ledger_url: str,
    quiet_binance_sandbox: tuple[Sandbox, str],
    tmp_path: Path,
    report_figure: Callable[[str], None],
) -> None:
    sandbox, base_url = quiet_binance_sandbox
    notifications = paid_callbacks(sandbox, base_url, ledger_url, REFERENCES)
    env = serve_env(ledger_url, base_url, tmp_path)
    rng = random.Random(14)
    unacknowledged = dict(enumerate(notifications))
    attempts: Counter[int] = Counter()
    kills = rounds = announced_at_startup = 0
    while unacknowledged:
        rounds += 1
        assert rounds <= KILLS + 20, f"{len(unacknowledged)} callbacks never acknowledged"
        kill_after = rng.randrange(0, 5) if kills < KILLS else None
        killed, lines = one_run(env, unacknowledged, attempts, kill_after)
        kills += killed
        announced_at_startup += sum(int(m.group(1)) for m in map(ANNOUNCED.search, lines) if m)
    assert kills >= KILLS

    # After the last run: restart once more and stop, so that its startup announces anything
    # the last kill left unannounced.
    with ServeProcess([], env) as last:
        pass
    announced_at_startup += sum(int(m.group(1)) for m in map(ANNOUNCED.search, last.lines) if m)
    expected = set(paid_once(ledger_url, REFERENCES))
    effects = read_lines(tmp_path / "effects.log")
    calls = read_lines(tmp_path / "calls.log")
    assert sorted(effects) == sorted(expected)  # each effect exactly once
    assert set(calls) == expected  # every change reached the hook
    repeats = len(calls) - len(expected)
    assert repeats <= kills * SENDERS
    if ledger_url.startswith("sqlite:///"):
        with sqlite3.connect(ledger_url.removeprefix("sqlite:///")) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            (rows,) = conn.execute("SELECT COUNT(*) FROM orders").fetchone()
        conn.close()
        assert rows == ORDERS
    deliveries = sum(attempts.values())
    report_figure(
        f"{kills} SIGKILLs of payments serve over {rounds} runs; {deliveries} deliveries of "
        f"{ORDERS} callbacks ({deliveries - ORDERS} redeliveries); {ORDERS} orders paid once; "
        f"hook called {len(calls)} times ({announced_at_startup} changes announced at a restart, "
        f"{repeats} repeats ignored by change id)"
    )
