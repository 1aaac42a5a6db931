"""The ledger's schema, one entry per version.

:class:`~payments_core.ledger.sql.SqlLedger` runs, in order, the entries a database lacks: one
at version *n* runs only those after *n*. An entry, once released, never changes; change the
schema by adding an entry.
"""

from __future__ import annotations

from typing import Final

__all__ = ["MIGRATIONS"]

#: The schema, one entry per version. ``{id}``, ``{time}`` and ``{bool}`` are the store's types
#: for an auto-numbered key, a timestamp and a boolean. Amounts are TEXT: exact decimals.
MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (
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
)
