"""PostgreSQL's prepared one-statement paths keep the right indexes in a generic plan however
small the tables were when it was made (schema 10)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import psycopg
import pytest

from payments_core import open_ledger
from payments_core.ledger.postgres import PostgresLedger
from payments_core.ledger.postgres_apply import AtOnce
from payments_core.ledger.postgres_refund import SettleNotice

from .fakes import event_for, order_for

pytestmark = pytest.mark.postgres

#: The index each statement reads each table through, in plan order. The order is locked and
#: then updated through the same unique key, the provider's order id: updated through the
#: primary key joined to the inserted event's reference, a generic plan read every index entry
#: of the provider's orders for each callback.
EXPECTED = {
    "apply": ["orders_provider_order_id_key on orders", "orders_provider_order_id_key on orders"],
    "settle": [
        "orders_provider_order_id_key on orders",
        "refunds_pkey on refunds",
        "refunds_provider_refund_id_key on refunds",
        "refunds_pkey on refunds",
        "orders_provider_order_id_key on orders",
    ],
}


def _positional(sql: str) -> tuple[str, int]:
    """``sql`` with psycopg's named parameters as ``$n``, and how many there are."""
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        if match[1] not in names:
            names.append(match[1])
        return f"${names.index(match[1]) + 1}"

    return re.sub(r"%\((\w+)\)s", number, sql), len(names)


def _index_scans(conn: psycopg.Connection[tuple[object, ...]], name: str, sql: str) -> list[str]:
    text, count = _positional(sql)
    conn.execute(f"PREPARE {name} AS {text}")
    nulls = ", ".join(["NULL"] * count)
    plan = [str(row[0]) for row in conn.execute(f"EXPLAIN EXECUTE {name}({nulls})")]
    scans = (re.search(r"Index Scan using (\S+) on (\w+)", line) for line in plan)
    return [f"{found[1]} on {found[2]}" for found in scans if found]


@pytest.mark.parametrize("orders", [0, 10, 300])
def test_generic_plans_use_each_lookups_own_index(postgres_url: str, orders: int) -> None:
    with open_ledger(postgres_url) as ledger:
        assert isinstance(ledger, PostgresLedger)
        for number in range(orders):
            ledger.record_order(order_for(f"order-{number}"))
        statements = {"apply": AtOnce(ledger).sql, "settle": SettleNotice(ledger).sql}
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("SET plan_cache_mode = force_generic_plan")
        for name, sql in statements.items():
            assert _index_scans(conn, name, sql) == EXPECTED[name], name


def test_the_pools_connections_prepare_the_one_statement_paths_and_nothing_else(
    postgres_url: str,
) -> None:
    """Each callback's statement is parsed and planned once per connection, not every time."""
    with open_ledger(postgres_url) as ledger:
        assert isinstance(ledger, PostgresLedger)
        ledger.record_order(order_for("prepared"))
        pool = ledger.open_pool()
        with pool.connection() as conn:
            assert isinstance(conn, psycopg.Connection)
            outcome = AtOnce(ledger).run(
                conn, event_for("prepared"), datetime.now(UTC), announced=True
            )
            assert outcome.applied
            for _ in range(10):  # often, but not asked to be prepared
                conn.execute("SELECT count(*) FROM orders")
            prepared = [
                str(row[0]) for row in conn.execute("SELECT statement FROM pg_prepared_statements")
            ]
        pool.close()
    assert len(prepared) == 1
    assert prepared[0].startswith("WITH target AS (SELECT")
