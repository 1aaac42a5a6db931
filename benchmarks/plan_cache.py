"""The 10,000-order dip, and why schema 10 ends it: a generic plan chosen while the table was small.

``python -m benchmarks.plan_cache`` creates a ledger schema with 1,000 orders and, on one
connection, runs the query that locks an order as a server-side prepared statement until
PostgreSQL settles on a generic plan; the table then grows to 20,000 orders, and the same
connection, a fresh one, and one planning each execution (``plan_cache_mode =
force_custom_plan``) each lock the same orders. It prints the median time per lock and the plan
each connection used (``EXPLAIN (ANALYZE, BUFFERS)``).

Up to schema 9 the lock's generic plan could take ``orders_provider_reference`` (another index
led by ``provider``) and read every order of the provider: the dip, which the ledger then
avoided by planning each execution. Since schema 10 every key but the primary key is led by its
own column, so all three connections lock through ``orders_provider_order_id_key`` and the
ledger leaves ``plan_cache_mode`` at PostgreSQL's default (docs/performance.md, "Changed:
ledger schema 10").
"""

from __future__ import annotations

import statistics
import sys
import time
from typing import Any

import psycopg

from payments_core.ledger import open_ledger
from payments_core.ledger.columns import STATE_COLUMNS

from .common import pending_order
from .growth import _postgres_schema

#: The ledger's lock of the order a callback names.
LOCK = (
    f"SELECT {STATE_COLUMNS} FROM orders "  # noqa: S608 - fixed text
    "WHERE provider = %s AND provider_order_id = %s FOR UPDATE"
)
COLUMNS = "provider, reference, provider_order_id, provider_reference, status, amount, currency"


def _fill(conn: psycopg.Connection[Any], first: int, last: int) -> None:
    conn.execute(
        f"INSERT INTO orders ({COLUMNS}, created_at, updated_at) "  # noqa: S608 - fixed text
        "SELECT 'binance', 'r' || i, 'p' || i, 'm' || i, 'PENDING', '1.00', 'USDT', now(), now() "
        "FROM generate_series(%s::int, %s::int) AS i",
        (first, last - 1),
    )


def _locks(conn: psycopg.Connection[Any], ids: range) -> float:
    """Median milliseconds to lock each order (each in its own transaction)."""
    times = []
    for i in ids:
        started = time.perf_counter()
        with conn.transaction():
            conn.execute(LOCK, ("binance", f"p{i}"), prepare=True).fetchone()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1e3


def _plan(conn: psycopg.Connection[Any]) -> str:
    with conn.transaction():
        rows = conn.execute(
            "EXPLAIN (ANALYZE, BUFFERS) EXECUTE " + _statement_name(conn) + "('binance', 'p7')"
        ).fetchall()
    return "\n    ".join(row[0] for row in rows)


def _statement_name(conn: psycopg.Connection[Any]) -> str:
    row = conn.execute(
        "SELECT name FROM pg_prepared_statements WHERE statement LIKE 'SELECT reference%'"
    ).fetchone()
    assert row is not None, "the lock is not prepared on this connection"
    return str(row[0])


def main() -> int:
    with _postgres_schema() as url:
        with open_ledger(url) as ledger:  # its tables and indexes, and orders as it records them
            for i in range(1_000):
                ledger.record_order(pending_order(f"r{i}", f"p{i}", f"m{i}"))
        with psycopg.connect(url, autocommit=True) as admin:
            early = psycopg.connect(url, autocommit=True)
            early.execute("SET plan_cache_mode = auto")
            print(
                f"1,000 orders, lock prepared now:     {_locks(early, range(0, 1_000, 10)):.2f} ms"
            )
            _fill(admin, 1_000, 20_000)
            late = psycopg.connect(url, autocommit=True)
            custom = psycopg.connect(url, autocommit=True)
            custom.execute("SET plan_cache_mode = force_custom_plan")
            for name, conn in (
                ("same connection", early),
                ("fresh connection", late),
                ("force_custom_plan", custom),
            ):
                median = _locks(conn, range(1, 20_000, 200))
                print(f"20,000 orders, {name + ':':<21}{median:.2f} ms\n    {_plan(conn)}")
                conn.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
