"""Four ``payments serve`` worker processes on one PostgreSQL ledger: still exactly once.

Orders are paid in the sandbox and each signed callback is delivered one to five times, the
deliveries shuffled and sent from several threads at once, so that duplicates of one callback
reach different workers at the same moment. Every order ends paid by exactly one applied event,
and the application hears of each change exactly once.

By default 40 orders; ``PAYMENTS_FULL=1`` runs 1,000.
"""

from __future__ import annotations

import os
import random
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from payments_binance.sandbox import Sandbox

from .crash_app import read_lines
from .serve_process import ServeProcess, paid_callbacks, paid_once, serve_env

pytestmark = pytest.mark.postgres

WORKERS = 4
ORDERS = 1_000 if os.environ.get("PAYMENTS_FULL") == "1" else 40
SENDERS = 16
CALLBACK = "/callbacks/binance"
#: Times a refused delivery (503 while a worker fetches the keys) is sent again.
RETRIES = 20


def deliveries(notifications: list[Any], rng: random.Random) -> list[Any]:
    """Each notification one to five times, in a shuffled order."""
    sent = [n for n in notifications for _ in range(rng.randint(1, 5))]
    rng.shuffle(sent)
    return sent


def deliver(url: str, sent: list[Any]) -> None:
    """Post every delivery from ``SENDERS`` threads, each until it is acknowledged."""
    with httpx.Client(timeout=30) as client, ThreadPoolExecutor(SENDERS) as pool:

        def acknowledged(notification: Any) -> None:
            for _ in range(RETRIES):
                answer = client.post(
                    url + CALLBACK, content=notification.body, headers=dict(notification.headers)
                )
                assert answer.status_code in (200, 503), answer.text
                if answer.status_code == 200:
                    assert answer.json()["returnCode"] == "SUCCESS"
                    return
            raise AssertionError(f"a callback was refused {RETRIES} times")

        list(pool.map(acknowledged, sent))


def test_four_workers_apply_each_of_many_redelivered_callbacks_exactly_once(
    postgres_url: str, quiet_binance_sandbox: tuple[Sandbox, str], tmp_path: Path
) -> None:
    the_sandbox, base_url = quiet_binance_sandbox
    references = [f"four-workers-{i}" for i in range(ORDERS)]
    notifications = paid_callbacks(the_sandbox, base_url, postgres_url, references)
    sent = deliveries(notifications, random.Random(25))
    assert len(sent) > len(notifications)  # some callbacks really are delivered again

    with ServeProcess([], serve_env(postgres_url, base_url, tmp_path), workers=WORKERS) as serve:
        deliver(serve.url, sent)
    assert serve.returncode == 0, "\n".join(serve.lines[-20:])

    expected = sorted(paid_once(postgres_url, references))
    assert sorted(read_lines(tmp_path / "calls.log")) == expected  # each hook call once
