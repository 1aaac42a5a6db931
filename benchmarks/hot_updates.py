"""What applying one callback writes on PostgreSQL, with and without schema 9's HOT updates.

``python -m benchmarks.hot_updates [orders] [callbacks]`` (default 100,000 and 1,000) builds two
ledgers in fresh schemas of the test database, each with ``orders`` pending orders (bulk
inserted), one as the ledger leaves it (schema 9: no index on ``status``, pages filled to 80%)
and one with the orders' ``(status, created_at)`` index and full pages put back. It then
applies the same callbacks alternately to both with the ledger's one statement, each under
``EXPLAIN (ANALYZE, WAL, BUFFERS)``: PostgreSQL's own count of what that statement wrote (WAL
records, bytes, full-page images) and touched, whatever else the server and the machine are
doing. A checkpoint that begins during the run makes full-page images in both alike.
"""

from __future__ import annotations

import json
import random
import re
import secrets
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import psycopg

from payments_core import Money, PaymentEvent, PaymentStatus
from payments_core.ledger import columns, open_ledger
from payments_core.ledger.columns import EVENTS
from payments_core.ledger.postgres_apply import AtOnce, forward_from

from .growth import _postgres_url

_COUNTS = re.compile(r"(records|fpi|bytes|hit|read|dirtied|written)=(\d+)")


@contextmanager
def _schema(old: bool, orders: int) -> Iterator[str]:
    name = f"bench_hot_{secrets.token_hex(4)}"
    with psycopg.connect(_postgres_url(), autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {name}")
        try:
            url = f"{_postgres_url()}?options=-csearch_path%3D{name}"
            open_ledger(url).close()
            with psycopg.connect(url, autocommit=True) as conn:
                if old:
                    conn.execute(
                        "CREATE INDEX orders_status_created ON orders (status, created_at)"
                    )
                    conn.execute("ALTER TABLE orders SET (fillfactor = 100)")
                conn.execute(
                    "INSERT INTO orders (provider, reference, provider_order_id, status, amount, "
                    "currency, created_at, updated_at, links) SELECT 'binance', 'ref-' || i, "
                    "'po-' || i, 'pending', '1.00', 'USD', now(), now(), '{}' "
                    "FROM generate_series(1, %s) i",
                    (orders,),
                )
            yield url
        finally:
            admin.execute(f"DROP SCHEMA {name} CASCADE")


def _event(i: int) -> PaymentEvent:
    return PaymentEvent(
        provider="binance",
        event_id=f"binance:po-{i}:paid",
        status=PaymentStatus.PAID,
        provider_order_id=f"po-{i}",
        provider_reference=None,
        amount=Money("1.00", "USD"),
    )


def _written(conn: psycopg.Connection[Any], statement: AtOnce, i: int) -> dict[str, int]:
    row = columns.event_row(_event(i), None, None, datetime.now(UTC), announced=False)
    params: dict[str, object] = {
        name: EVENTS[name].store(value, statement.times)
        for name, value in row.items()
        if name not in {"reference", "previous_status", "applied", "flag"}
    }
    params["forward_from"] = forward_from(PaymentStatus.PAID)
    plan = conn.execute("EXPLAIN (ANALYZE, WAL, BUFFERS) " + statement.sql, params).fetchall()
    top = " ".join(line for (line,) in plan[:4])  # the top node's totals come first
    found: dict[str, int] = {}
    for key, value in _COUNTS.findall(top):
        found.setdefault(key, int(value))
    return found


def main(argv: list[str]) -> int:
    orders = int(argv[0]) if argv else 100_000
    n = int(argv[1]) if len(argv) > 1 else 1_000
    chosen = random.sample(range(1, orders + 1), n)
    totals: dict[str, dict[str, int]] = {"schema 9": {}, "(status, created_at) index": {}}
    with _schema(False, orders) as new, _schema(True, orders) as old:
        ledgers = {"schema 9": new, "(status, created_at) index": old}
        conns = {k: psycopg.connect(u, autocommit=True) for k, u in ledgers.items()}
        statement = AtOnce(open_ledger(new))  # for its time format only
        for i in chosen:
            for name, conn in conns.items():
                for key, value in _written(conn, statement, i).items():
                    totals[name][key] = totals[name].get(key, 0) + value
        hot = {}
        for conn in conns.values():
            conn.execute("SELECT pg_stat_force_next_flush()")
            conn.close()
        for name, url in ledgers.items():
            with psycopg.connect(url, autocommit=True) as conn:
                hot[name] = conn.execute(
                    "SELECT pg_stat_get_tuples_updated('orders'::regclass), "
                    "pg_stat_get_tuples_hot_updated('orders'::regclass)"
                ).fetchone()
    result = {
        "orders": orders,
        "callbacks": n,
        "per_callback": {
            name: {key: value / n for key, value in counts.items()}
            for name, counts in totals.items()
        },
        "orders_updated_and_hot": hot,
    }
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
