"""GROWTH_PG's points from several processes: a level's callbacks applied by 1, 2 and 4
processes at once, each with its own ledger and facade on the same PostgreSQL schema.

Only the public API: each process opens the ledger with ``open_ledger(url)``, builds a facade
that receives the benchmark's callbacks, and calls ``Payments.apply_callback`` for its share.
The callbacks are signed in the parent; the processes are started (``spawn``, so no connection
crosses a fork), open their ledgers and fetch the certificates first, then wait at a barrier,
so the timed stretch is applying only: from the first process's start to the last one's end.
"""

from __future__ import annotations

import multiprocessing
import statistics
import time
from datetime import datetime
from typing import Any

from payments_core.ledger import open_ledger

from .common import Webhooks, callback_facade

#: How many processes apply each level's callbacks, in turn.
PROCESS_COUNTS = (1, 2, 4)
#: Seconds to wait for the processes to be ready, and then for their results.
_WAIT_S = 600.0

Callback = tuple[dict[str, str], bytes]


def apply_from_processes(
    url: str, private_pem: bytes, moment: datetime, callbacks: list[Callback], processes: int
) -> dict[str, Any]:
    """Apply ``callbacks`` from ``processes`` processes at once (an equal share each)."""
    context = multiprocessing.get_context("spawn")
    ready = context.Barrier(processes + 1, timeout=_WAIT_S)
    results = context.Queue()
    workers = [
        context.Process(
            target=_apply_share,
            args=(url, private_pem, moment, callbacks[index::processes], ready, results),
            daemon=True,
        )
        for index in range(processes)
    ]
    for worker in workers:
        worker.start()
    try:
        ready.wait()
        shares = [results.get(timeout=_WAIT_S) for _ in workers]
    finally:
        for worker in workers:
            worker.join(timeout=_WAIT_S)
    failed = [share["error"] for share in shares if "error" in share]
    if failed:
        raise RuntimeError(f"an applying process failed: {failed[0]}")
    elapsed = max(s["ended"] for s in shares) - min(s["started"] for s in shares)
    latencies = sorted(x for s in shares for x in s["latencies"])
    return {
        "processes": processes,
        "callbacks": len(callbacks),
        "applied": sum(s["applied"] for s in shares),
        "per_s": len(callbacks) / elapsed,
        "cpu_us_per_callback": sum(s["cpu_s"] for s in shares) / len(callbacks) * 1e6,
        "p50_ms": statistics.median(latencies) * 1e3,
        "p99_ms": statistics.quantiles(latencies, n=100)[-1] * 1e3,
    }


def _apply_share(
    url: str,
    private_pem: bytes,
    moment: datetime,
    share: list[Callback],
    ready: Any,
    results: Any,
) -> None:
    """One process: open the ledger, fetch the certificates, wait for the others, apply."""
    try:
        payments = callback_facade(Webhooks(private_pem), moment, ledger=open_ledger(url))
    except Exception as exc:  # reported to the parent, which raises it
        ready.abort()
        results.put({"error": f"{type(exc).__name__}: {exc}"})
        return
    try:
        payments.handle_callback("binance", *share[0])  # the certificates fetch, no ledger
        ready.wait()
        latencies = []
        applied = 0
        cpu, started = time.process_time(), time.perf_counter()
        for headers, body in share:
            one = time.perf_counter()
            outcome = payments.apply_callback("binance", headers, body)
            latencies.append(time.perf_counter() - one)
            applied += outcome.result is not None and outcome.result.applied
        ended = time.perf_counter()  # CLOCK_MONOTONIC: comparable across the processes
        results.put(
            {
                "started": started,
                "ended": ended,
                "cpu_s": time.process_time() - cpu,
                "applied": applied,
                "latencies": latencies,
            }
        )
    except Exception as exc:
        ready.abort()  # the others, and the parent, stop waiting
        results.put({"error": f"{type(exc).__name__}: {exc}"})
    finally:
        payments.close()
