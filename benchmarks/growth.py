"""The ledger as it fills: callbacks applied per second and their p99 at 1k, 10k and 100k stored
orders, on SQLite (WAL) and PostgreSQL, and the process's memory over 100k callbacks.

``python -m benchmarks --growth`` (or ``--only GROWTH``) runs it; it takes minutes (100,000
orders stored per backend, 100,000 callbacks signed and applied on SQLite). Each level stores
orders through ``Ledger.record_order`` up to the level, then applies ``PAY_SUCCESS`` callbacks
for orders spread over all stored ones through ``Payments.apply_callback`` (verify, parse, one
transaction), each timed on its own. The memory series then applies one callback for every
stored SQLite order (those already paid are duplicates, recorded and not applied again),
reading the RSS every 5,000. The plot goes to ``docs/images/ledger-growth.png``.
"""

from __future__ import annotations

import os
import random
import secrets
import statistics
import tempfile
import time
from collections.abc import Callable
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from payments_core.ledger import open_ledger

from .common import Webhooks, callback_facade, epoch_ms, pending_order
from .growth_workers import PROCESS_COUNTS, apply_from_processes

Row = dict[str, Any]
PLOT = Path(__file__).parent.parent / "docs" / "images" / "ledger-growth.png"


def _postgres_url() -> str:
    return os.environ.get("PAYMENTS_TEST_POSTGRES_URL", "postgresql://127.0.0.1:5432/test")


@contextmanager
def _postgres_schema() -> Any:
    """A fresh schema for the run, dropped afterwards: 100k rows do not outlive it."""
    import psycopg

    schema = f"bench_growth_{secrets.token_hex(4)}"
    with psycopg.connect(_postgres_url(), autocommit=True, connect_timeout=3) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
        try:
            separator = "&" if "?" in _postgres_url() else "?"
            yield f"{_postgres_url()}{separator}options=-csearch_path%3D{schema}"
        finally:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")


def _server_counters(url: str) -> dict[str, float]:
    """The PostgreSQL server's running totals that explain a slow stretch: WAL written (bytes,
    full-page images), checkpoints begun, WAL flushes and their time."""
    import psycopg

    with psycopg.connect(url, autocommit=True, connect_timeout=3) as conn:
        lsn, fpi, syncs, sync_ms = conn.execute(
            "SELECT pg_current_wal_lsn() - '0/0'::pg_lsn, wal_fpi, wal_sync, wal_sync_time "
            "FROM pg_stat_wal"
        ).fetchone()
        timed, requested = conn.execute(
            "SELECT checkpoints_timed, checkpoints_req FROM pg_stat_bgwriter"
        ).fetchone()
        # Reported by each backend when it goes idle, at most once a second: read the two
        # together as a share (HOT updates of all updates), not as exact counts per level.
        found = conn.execute(
            "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables "
            "WHERE schemaname = current_schema() AND relname = 'orders'"
        ).fetchone()
    updates, hot = found if found is not None else (0, 0)
    return {
        "wal_bytes": float(lsn),
        "wal_fpi": float(fpi),
        "wal_syncs": float(syncs),
        "wal_sync_ms": float(sync_ms),
        "checkpoints": float(timed + requested),
        "order_updates": float(updates),
        "order_hot_updates": float(hot),
    }


def _explain_lock(url: str, provider_order_id: str) -> dict[str, float | str]:
    """``EXPLAIN (ANALYZE, BUFFERS)`` of the query that locks an order, rolled back."""
    import psycopg

    with psycopg.connect(url, connect_timeout=3) as conn:
        lines = [
            row[0]
            for row in conn.execute(
                "EXPLAIN (ANALYZE, BUFFERS) SELECT status FROM orders "
                "WHERE provider = 'binance' AND provider_order_id = %s FOR UPDATE",
                (provider_order_id,),
            )
        ]
        conn.rollback()
    scan = next((line.strip() for line in lines if "Scan" in line), "")
    execution = next(line for line in lines if line.startswith("Execution Time"))
    return {"scan": scan, "execution_ms": float(execution.split()[2])}


def _maintenance(url: str) -> tuple[int, int]:
    """Autovacuum and autoanalyze runs so far on the ledger's tables (PostgreSQL)."""
    import psycopg

    with psycopg.connect(url, autocommit=True, connect_timeout=3) as conn:
        row = conn.execute(
            "SELECT coalesce(sum(autovacuum_count), 0), coalesce(sum(autoanalyze_count), 0) "
            "FROM pg_stat_user_tables WHERE schemaname = current_schema()"
        ).fetchone()
    return (int(row[0]), int(row[1])) if row else (0, 0)


class _Store:
    """One ledger being filled, with the facade that applies callbacks to it."""

    def __init__(self, url: str, hooks: Webhooks, moment: datetime) -> None:
        self.ledger = open_ledger(url)
        self.hooks = hooks
        self.now_ms = epoch_ms(moment)
        self.payments = callback_facade(hooks, moment, ledger=self.ledger)
        self.verifier = callback_facade(hooks, moment)  # the same callbacks, no ledger
        self.stored = 0
        self.first = 3 * 10**17 + secrets.randbelow(10**16)

    def ids(self, i: int) -> tuple[str, str]:
        return str(self.first + i), f"GROWTH{self.first % 10**6:06d}{i:08d}"

    def fill(self, level: int) -> None:
        for i in range(self.stored, level):
            prepay, trade_no = self.ids(i)
            self.ledger.record_order(pending_order(f"growth-{i}", prepay, trade_no))
        self.stored = max(self.stored, level)

    def callback(self, i: int) -> tuple[dict[str, str], bytes]:
        prepay, trade_no = self.ids(i)
        headers, body, _, _ = self.hooks.callback(prepay, trade_no, now_ms=self.now_ms)
        return headers, body

    def apply(self, callback: tuple[dict[str, str], bytes]) -> bool:
        outcome = self.payments.apply_callback("binance", *callback)
        return outcome.result is not None and outcome.result.applied

    def verify(self, callback: tuple[dict[str, str], bytes]) -> None:
        self.verifier.handle_callback("binance", *callback)

    def close(self) -> None:
        self.payments.close()
        self.verifier.close()


def _level(
    store: _Store,
    level: int,
    n: int,
    chosen: set[int],
    counters: Callable[[], dict[str, float]] | None = None,
) -> dict[str, Any]:
    """Fill to ``level``, then apply ``n`` callbacks for unpaid orders spread over all of them.

    With ``counters`` (the server's running totals), the point also says how much of each the
    applying stretch added (``<name>_during``).

    Batches of applied callbacks alternate with the same batches only verified (no ledger), so
    ``ledger_ratio`` (verified/s over applied/s) is what the ledger costs at this size, read
    side by side, whatever else the machine is doing.
    """
    started = time.perf_counter()
    store.fill(level)
    fill_s = time.perf_counter() - started
    pool = [i for i in random.sample(range(level), min(level, 2 * n)) if i not in chosen][:n]
    chosen.update(pool)
    callbacks = [store.callback(i) for i in pool]
    before = counters() if counters is not None else {}
    latencies = []
    applied = 0
    applying = verifying = 0.0
    for first in range(0, len(callbacks), _BATCH):
        batch = callbacks[first : first + _BATCH]
        started = time.perf_counter()
        for callback in batch:
            one = time.perf_counter()
            applied += store.apply(callback)
            latencies.append(time.perf_counter() - one)
        applying += time.perf_counter() - started
        started = time.perf_counter()
        for callback in batch:
            store.verify(callback)
        verifying += time.perf_counter() - started
    after = counters() if counters is not None else {}
    spent = {f"{name}_during": after[name] - before[name] for name in after}
    return {
        **spent,
        "stored_orders": level,
        "callbacks": len(callbacks),
        "applied": applied,
        "per_s": len(callbacks) / applying,
        "verify_only_per_s": len(callbacks) / verifying,
        "ledger_ratio": applying / verifying,
        "p50_ms": statistics.median(latencies) * 1e3,
        "p99_ms": statistics.quantiles(latencies, n=100)[-1] * 1e3,
        "fill_seconds": fill_s,
    }


_BATCH = 50


def _memory(store: _Store, total: int, step: int) -> list[tuple[int, int]]:
    me = psutil.Process()
    points = [(0, me.memory_info().rss)]
    for i in range(total):
        store.apply(store.callback(i))
        if (i + 1) % step == 0:
            points.append((i + 1, me.memory_info().rss))
    return points


def growth(quick: bool) -> Row:
    """Callbacks/s and p99 at growing ledger sizes; memory over as many callbacks."""
    levels = (500, 2_000, 5_000) if quick else (1_000, 10_000, 100_000)
    n, step = (200, 500) if quick else (1_000, 5_000)
    moment = datetime.now(UTC).replace(microsecond=0)
    hooks = Webhooks()
    curves: dict[str, list[dict[str, float]]] = {}
    memory: list[tuple[int, int]] = []
    with tempfile.TemporaryDirectory() as directory:
        store = _Store(f"sqlite:///{directory}/ledger.sqlite3", hooks, moment)
        try:
            store.fill(1)
            store.apply(store.callback(0))  # the certificates fetch, and order 0 paid
            chosen = {0}
            curves["SQLite (WAL)"] = [_level(store, level, n, chosen) for level in levels]
            memory = _memory(store, levels[-1], step)
        finally:
            store.close()
    postgres_note = ""
    try:
        curves["PostgreSQL"] = _postgres_curve(levels, n, hooks, moment)
    except Exception as exc:  # not reachable, or no psycopg: the row says so
        postgres_note = f"; PostgreSQL skipped: {type(exc).__name__}"
    slope = _slope(memory, after=memory[len(memory) // 5][0] if memory else 0)
    plotted = _plot(curves, memory)
    figure = "; ".join(
        f"{name}: " + ", ".join(_point(p) for p in curve) for name, curve in curves.items()
    )
    first, last = curves["SQLite (WAL)"][0]["per_s"], curves["SQLite (WAL)"][-1]["per_s"]
    peak = max(rss for _, rss in memory)
    return {
        "id": "GROWTH",
        "what": "ledger callbacks/s and p99 at 1k/10k/100k stored orders; RSS over 100k callbacks",
        "figure": f"{figure}{postgres_note}; RSS over {memory[-1][0]:,} callbacks: peak "
        f"{peak / 2**20:.0f} MiB, slope after warm-up {slope:+.1f} B/callback"
        + (f"; plot {plotted}" if plotted else ""),
        "value": last / first,
        "target": "a curve, not a point; memory flat",
        "met": slope < 1_024,
        "details": {
            "curves": curves,
            "rss_points": memory,
            "rss_slope_bytes_per_callback": slope,
            "sqlite_rate_last_over_first": last / first,
            "plot": plotted,
        },
    }


def _postgres_curve(
    levels: tuple[int, ...],
    n: int,
    hooks: Webhooks,
    moment: datetime,
    processes: tuple[int, ...] = (),
) -> list[dict[str, Any]]:
    """GROWTH's PostgreSQL points, with what each level's callbacks cost the server.

    With ``processes`` (counts of applying processes), each level's unpaid orders are shared
    out: the in-process point and each count get as many callbacks, at most ``n`` each, and
    each count's figures go under ``processes``.
    """
    curve = []
    with _postgres_schema() as url:
        store = _Store(url, hooks, moment)
        try:
            store.fill(1)
            store.apply(store.callback(0))
            chosen = {0}
            for level in levels:
                before = _maintenance(url)
                per = min(n, (level - len(chosen)) // (1 + len(processes)))
                point = _level(store, level, per, chosen, lambda: _server_counters(url))
                point["processes"] = {
                    str(count): apply_from_processes(
                        url,
                        hooks.private_pem(),
                        moment,
                        [store.callback(i) for i in _unpaid(level, per, chosen)],
                        count,
                    )
                    for count in processes
                }
                point["lock_plan"] = _explain_lock(url, store.ids(level - 1)[0])
                # Autovacuum wakes after a bulk fill and competes for the two cores: the
                # counts say whether it ran while this level was filled and measured.
                after = _maintenance(url)
                point["autovacuum_runs"] = after[0] - before[0]
                point["autoanalyze_runs"] = after[1] - before[1]
                curve.append(point)
        finally:
            store.close()
    return curve


def postgres_growth(quick: bool) -> Row:
    """GROWTH's PostgreSQL curve alone (``--only GROWTH_PG``): minutes less than GROWTH.

    Each level is also applied from 1, 2 and 4 processes (``processes`` in each point)."""
    levels = (500, 2_000, 5_000) if quick else (1_000, 10_000, 100_000)
    n = 200 if quick else 1_000
    moment = datetime.now(UTC).replace(microsecond=0)
    curve = _postgres_curve(levels, n, Webhooks(), moment, PROCESS_COUNTS)
    rates = [point["per_s"] for point in curve]
    medians = [point["p50_ms"] for point in curve]
    by_processes = "; ".join(
        f"{p['stored_orders']:,}: "
        + ", ".join(
            f"{count} process{'es' * (count != '1')} {run['per_s']:,.0f}/s"
            for count, run in p["processes"].items()
        )
        for p in curve
    )
    return {
        "id": "GROWTH_PG",
        "what": "PostgreSQL ledger callbacks/s, p50 and p99 at 1k/10k/100k stored orders, "
        "from one process and from 1, 2 and 4",
        "figure": "PostgreSQL: "
        + ", ".join(f"{_point(p)}, p50 {p['p50_ms']:.2f} ms" for p in curve)
        + f"; from several processes: {by_processes}",
        "value": min(rates) / max(rates),
        "target": "every level within 25% of the best rate",
        "met": min(rates) >= 0.75 * max(rates),
        "median_apply_spread": max(medians) / min(medians),
        "details": {"curves": {"PostgreSQL": curve}},
    }


def _unpaid(level: int, n: int, chosen: set[int]) -> list[int]:
    """``n`` orders of the first ``level`` not chosen before, now chosen."""
    picked = random.sample(sorted(set(range(level)) - chosen), n)
    chosen.update(picked)
    return picked


def _point(point: dict[str, float]) -> str:
    return (
        f"{point['stored_orders']:,.0f}: {point['per_s']:,.0f}/s p99 {point['p99_ms']:.1f} ms "
        f"({point['ledger_ratio']:.1f}x verify only)"
    )


def _slope(points: list[tuple[int, int]], *, after: int) -> float:
    later = [(x, y) for x, y in points if x >= after]
    if len(later) < 2:
        return float("nan")
    fit = statistics.linear_regression([float(x) for x, _ in later], [float(y) for _, y in later])
    return fit.slope


def _plot(curves: dict[str, list[dict[str, float]]], memory: list[tuple[int, int]]) -> str:
    """Write the PNG; '' when matplotlib is not installed (the bench extra)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return ""
    figure, (rate, ratio, p99, rss) = plt.subplots(1, 4, figsize=(14, 3.2), dpi=72)
    for name, curve in curves.items():
        xs = [p["stored_orders"] for p in curve]
        rate.plot(xs, [p["per_s"] for p in curve], marker="o", label=name)
        ratio.plot(xs, [p["ledger_ratio"] for p in curve], marker="o", label=name)
        p99.plot(xs, [p["p99_ms"] for p in curve], marker="o", label=name)
    for axes, title in (
        (rate, "callbacks applied / s"),
        (ratio, "time applied / time verified only"),
        (p99, "p99 per callback (ms)"),
    ):
        axes.set_xscale("log")
        axes.set_xlabel("orders stored")
        axes.set_title(title)
        axes.set_ylim(bottom=0)
        axes.grid(alpha=0.3)
        axes.legend(fontsize=8)
    rss.plot([x for x, _ in memory], [y / 2**20 for _, y in memory], color="tab:green")
    rss.set_xlabel("callbacks applied (SQLite)")
    rss.set_title("process RSS (MiB)")
    rss.set_ylim(bottom=0)
    rss.grid(alpha=0.3)
    figure.tight_layout()
    PLOT.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(PLOT)
    plt.close(figure)
    return str(PLOT.relative_to(PLOT.parent.parent.parent))
