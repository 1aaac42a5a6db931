"""The ledger's schema, one entry per version.

:class:`~payments_core.ledger.sql.SqlLedger` runs, in order, the entries a database lacks: one
at version *n* runs only those after *n*. An entry, once released, never changes; change the
schema by adding an entry.

An entry's steps are SQL statements, or, for what SQL cannot say the same way on every store,
a function given the connection and the store's parameter style (see :data:`Step`).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from typing import Final

from payments_core.ledger.dbapi import Connection

__all__ = ["MIGRATIONS", "Step"]

#: A step written in Python: called with the migrating connection (inside the migration's
#: transaction) and the store's function that rewrites ``?`` parameters into its style.
Step = Callable[[Connection, Callable[[str], str]], None]

#: Which of :attr:`Order.links <payments_core.models.Order.links>` each link column of schema
#: version 4 and earlier held (those columns had Binance Pay's names).
_LINK_COLUMNS: Final = {
    "qr_code_url": "qr_image",
    "qr_content": "qr_data",
    "deep_link": "app",
    "universal_url": "web",
}


def _links_into_one_column(conn: Connection, placeholder: Callable[[str], str]) -> None:
    """Copy each order's link columns into its ``links`` column, a JSON object."""
    names = ", ".join(_LINK_COLUMNS)
    anything = " OR ".join(f"{column} IS NOT NULL" for column in _LINK_COLUMNS)
    found = conn.execute(
        f"SELECT provider, reference, {names} FROM orders WHERE {anything}"  # noqa: S608
    ).fetchall()
    update = placeholder("UPDATE orders SET links = ? WHERE provider = ? AND reference = ?")
    for provider, reference, *values in found:
        links = {
            key: value
            for key, value in zip(_LINK_COLUMNS.values(), values, strict=True)
            if value is not None
        }
        conn.execute(update, (json.dumps(links, sort_keys=True), provider, reference))


def _hot_order_updates(conn: Connection, placeholder: Callable[[str], str]) -> None:
    """PostgreSQL only: let applying an event rewrite its order in place (a HOT update).

    PostgreSQL rewrites a row in the same page, without touching any index, only if no indexed
    column changes and the page has room. Applying an event changes ``status``, so the
    ``(status, created_at)`` index goes (``created_at``, which never changes, serves the
    pending-orders query and the console's filters) and orders' pages are filled to 80%,
    leaving room for the new row versions. SQLite rewrites a row where it is anyway and keeps
    the index. docs/performance.md measures both sides of the trade.
    """
    del placeholder
    if isinstance(conn, sqlite3.Connection):
        return
    conn.execute("DROP INDEX orders_status_created")
    conn.execute("CREATE INDEX orders_created ON orders (created_at)")
    conn.execute("ALTER TABLE orders SET (fillfactor = 80)")


def _unambiguous_keys(conn: Connection, placeholder: Callable[[str], str]) -> None:
    """PostgreSQL only: each lookup's index is the only one that begins with its column.

    A prepared statement's generic plan is chosen once, often while the tables are small and
    never analysed. Then an index that begins with ``provider`` alone costs about the same as
    the unique index on both columns a lookup names, and which wins is the order the indexes
    were created in; as the table grows, the wrong one reads every row of the provider. Led by
    their own column (the provider's order id, reference, event id, refund id), the secondary
    keys leave the primary keys as the only indexes that begin with ``provider``, and no lookup
    has two candidates. SQLite's planner prefers the unique index a lookup names in full, and
    SQLite cannot drop a table's inline ``UNIQUE``: it keeps its indexes.
    """
    del placeholder
    if isinstance(conn, sqlite3.Connection):
        return
    # PostgreSQL named each UNIQUE (provider, key) constraint {table}_provider_{key}_key.
    for table, key in (
        ("orders", "provider_order_id"),
        ("events", "event_id"),
        ("refunds", "provider_refund_id"),
    ):
        conn.execute(
            f"ALTER TABLE {table} DROP CONSTRAINT {table}_provider_{key}_key, "
            f"ADD CONSTRAINT {table}_{key}_key UNIQUE ({key}, provider)"
        )
    conn.execute("DROP INDEX orders_provider_reference")
    conn.execute("CREATE INDEX orders_provider_reference ON orders (provider_reference, provider)")
    conn.execute("DROP INDEX events_order")
    conn.execute("CREATE INDEX events_order ON events (reference, provider)")


#: The schema, one entry per version. ``{id}``, ``{time}`` and ``{bool}`` are the store's types
#: for an auto-numbered key, a timestamp and a boolean. Amounts are TEXT: exact decimals.
MIGRATIONS: Final[tuple[tuple[str | Step, ...], ...]] = (
    (
        """CREATE TABLE orders (
            provider TEXT NOT NULL,
            reference TEXT NOT NULL,
            provider_order_id TEXT NOT NULL,
            merchant_order_id TEXT NOT NULL,
            status TEXT NOT NULL,
            amount TEXT NOT NULL,
            currency TEXT NOT NULL,
            checkout_url TEXT,
            qr_code_url TEXT,
            qr_content TEXT,
            deep_link TEXT,
            universal_url TEXT,
            expires_at {time},
            transaction_id TEXT,
            created_at {time} NOT NULL,
            updated_at {time} NOT NULL,
            PRIMARY KEY (provider, reference),
            UNIQUE (provider, provider_order_id)
        )""",
        "CREATE INDEX orders_merchant_order_id ON orders (provider, merchant_order_id)",
        "CREATE INDEX orders_status_created ON orders (status, created_at)",
        """CREATE TABLE events (
            id {id},
            provider TEXT NOT NULL,
            event_id TEXT NOT NULL,
            status TEXT NOT NULL,
            provider_order_id TEXT NOT NULL,
            merchant_order_id TEXT NOT NULL,
            reference TEXT,
            previous_status TEXT,
            amount TEXT,
            currency TEXT,
            transaction_id TEXT,
            occurred_at {time},
            received_at {time} NOT NULL,
            applied {bool} NOT NULL,
            flag TEXT,
            UNIQUE (provider, event_id)
        )""",
        "CREATE INDEX events_order ON events (provider, reference)",
    ),
    (
        "ALTER TABLE orders ADD COLUMN settlement_amount TEXT",
        "ALTER TABLE orders ADD COLUMN settlement_currency TEXT",
    ),
    (
        # The total of succeeded refunds, in the price's currency; NULL: none yet.
        "ALTER TABLE orders ADD COLUMN refunded_amount TEXT",
        """CREATE TABLE refunds (
            provider TEXT NOT NULL,
            reference TEXT NOT NULL,
            refund_reference TEXT NOT NULL,
            provider_refund_id TEXT,
            provider_order_id TEXT NOT NULL,
            amount TEXT NOT NULL,
            currency TEXT NOT NULL,
            settlement_amount TEXT,
            settlement_currency TEXT,
            reason TEXT NOT NULL,
            status TEXT NOT NULL,
            created_at {time} NOT NULL,
            updated_at {time} NOT NULL,
            PRIMARY KEY (provider, reference, refund_reference),
            UNIQUE (provider, provider_refund_id)
        )""",
    ),
    (
        # The outbox: an applied event is announced to the application once this is set.
        # Events applied before it existed were announced by the code of their time.
        "ALTER TABLE events ADD COLUMN announced_at {time}",
        "UPDATE events SET announced_at = received_at WHERE applied",
        "CREATE INDEX events_unannounced ON events (id) WHERE applied AND announced_at IS NULL",
    ),
    (
        # Provider-neutral names. The secondary order id becomes the optional
        # provider_reference (NULL where it only repeated the reference); the four link
        # columns become one JSON object, links; what was paid and the provider's fee are new.
        # The old columns' names appear here only to move their values and drop them.
        "ALTER TABLE orders ADD COLUMN provider_reference TEXT",
        "UPDATE orders SET provider_reference = NULLIF(merchant_order_id, reference)",
        "DROP INDEX orders_merchant_order_id",
        "ALTER TABLE orders DROP COLUMN merchant_order_id",
        "CREATE INDEX orders_provider_reference ON orders (provider, provider_reference)",
        "ALTER TABLE orders ADD COLUMN links TEXT NOT NULL DEFAULT '{{}}'",
        _links_into_one_column,
        *(f"ALTER TABLE orders DROP COLUMN {column}" for column in _LINK_COLUMNS),
        "ALTER TABLE events ADD COLUMN provider_reference TEXT",
        "UPDATE events SET provider_reference = merchant_order_id",
        "ALTER TABLE events DROP COLUMN merchant_order_id",
        *(
            f"ALTER TABLE {table} ADD COLUMN {money}_{part} TEXT"
            for table in ("orders", "events")
            for money in ("paid", "fee")
            for part in ("amount", "currency")
        ),
    ),
    (
        # Reconciliation looks for refunds still pending, as it does for orders.
        "CREATE INDEX refunds_status_created ON refunds (status, created_at)",
    ),
    (
        # The W3C traceparent of the operation that created an order, kept while telemetry
        # records spans, so that the order's callbacks link to the trace that created it.
        """CREATE TABLE order_traces (
            provider TEXT NOT NULL,
            reference TEXT NOT NULL,
            trace_context TEXT NOT NULL,
            PRIMARY KEY (provider, reference)
        )""",
    ),
    (
        # Who is creating the order of a reference right now, at a find-or-create provider,
        # and until when the claim holds if its holder never finishes (it crashed).
        """CREATE TABLE claims (
            provider TEXT NOT NULL,
            reference TEXT NOT NULL,
            holder TEXT NOT NULL,
            claimed_at {time} NOT NULL,
            expires_at {time} NOT NULL,
            PRIMARY KEY (provider, reference)
        )""",
    ),
    (_hot_order_updates,),
    (_unambiguous_keys,),
)
