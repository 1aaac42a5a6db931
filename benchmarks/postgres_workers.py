"""WORKERS: callbacks/s on one PostgreSQL ledger from 1, 2 and 4 ``payments serve`` processes.

``python -m benchmarks --only WORKERS``. One PostgreSQL schema; ``payments serve --workers N``
for N = 1, 2, 4 on it, each sent P7's rounds (64 callbacks in flight, distinct pending orders,
signed by the sandbox's key), alternating with P3's in-process loop on the same ledger; SQLite's
in-process loop runs before and after, for the ratio read in the same run. The figure is each
server's median rate, its ratio to one worker, and whether every order ended paid.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from payments_binance.sandbox import SandboxProcess

from .common import Webhooks, apply_rate, median
from .growth import _postgres_schema
from .http_callbacks import _postgres_reachable, _store

Row = dict[str, Any]
WORKER_COUNTS = [1, 2, 4]


def workers(quick: bool) -> Row:
    """PostgreSQL callbacks/s over HTTP from 1, 2 and 4 worker processes."""
    n, rounds = (200, 2) if quick else (600, 3)
    skipped = _postgres_reachable()
    if skipped:
        return {
            "id": "WORKERS",
            "what": "PostgreSQL callbacks/s from 1, 2, 4 payments serve workers",
            "figure": skipped,
            "value": None,
            "target": "a curve",
            "met": None,
        }
    hooks = Webhooks()
    load_before = [round(x, 2) for x in os.getloadavg()]
    fresh = f"w{os.getpid() % 10_000}"
    with tempfile.TemporaryDirectory() as directory:
        sqlite_url = f"sqlite:///{directory}/ledger.sqlite3"
        sqlite = [apply_rate(sqlite_url, n, f"{fresh}a")]
        key_file = Path(directory) / "webhook-key.pem"
        key_file.write_bytes(hooks.private_pem())
        with (
            SandboxProcess("--no-webhooks", "--signing-key", str(key_file)) as sandbox,
            _postgres_schema() as url,
        ):
            store = _store("postgres", url, WORKER_COUNTS, sandbox, hooks, n, rounds, directory)
        sqlite.append(apply_rate(sqlite_url, n, f"{fresh}b"))
    load_after = [round(x, 2) for x in os.getloadavg()]
    sqlite_rate = median([row["per_s"] for row in sqlite])
    one = store["workers_1"]["per_s"]
    figures = [
        f"{w} worker{'s' * (w > 1)} {store[f'workers_{w}']['per_s']:,.0f}/s "
        f"({store[f'workers_{w}']['per_s'] / one:.2f}x one; p99 "
        f"{store[f'workers_{w}']['p99_ms']:.0f} ms)"
        for w in WORKER_COUNTS
    ]
    in_process = store["in_process_per_s"]
    return {
        "id": "WORKERS",
        "what": "PostgreSQL callbacks/s from 1, 2, 4 payments serve workers (64 in flight)",
        "figure": "; ".join(figures)
        + f"; in-process {in_process:,.0f}/s = {in_process / sqlite_rate:.2f}x SQLite's "
        f"{sqlite_rate:,.0f}/s; unpaid after: {store['unpaid_after']}",
        "value": store["workers_4"]["per_s"],
        "target": "a curve; every order paid",
        "met": store["unpaid_after"] == 0,
        "details": {
            "callbacks_per_round": n,
            "rounds": rounds,
            "load_average_before": load_before,
            "load_average_after": load_after,
            "cores": os.cpu_count(),
            "sqlite_in_process": sqlite,
            "postgres": store,
        },
    }
