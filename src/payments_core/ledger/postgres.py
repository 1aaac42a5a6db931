"""The PostgreSQL store, through psycopg 3: one ledger shared by several application instances.

Applying an event locks the order's row (``SELECT ... FOR UPDATE``), so two instances handling
deliveries of one order take turns, and the second sees what the first committed. The unique
``(provider, event_id)`` index makes a concurrent duplicate wait for the first insert and then
insert nothing. Migrations run under a transaction-scoped advisory lock, so instances starting
together do not race to create the tables.

Connections are plain psycopg connections in autocommit mode, kept idle for reuse between
operations (no pool package needed). psycopg prepares a statement on the server once it has
run a few times on a connection. Needs the ``postgres`` extra:
``pip install payments-core[postgres]``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, Final, Unpack

import psycopg
from psycopg.pq import TransactionStatus

from payments_core.ledger.dbapi import Connection
from payments_core.ledger.sql import LedgerOptions, SqlLedger
from payments_core.redaction import safe_url

__all__ = ["PostgresLedger"]

# pg_advisory_xact_lock key for migrations: the bytes of "payments" as a bigint.
_MIGRATION_LOCK: Final = int.from_bytes(b"payments", "big")


class PostgresLedger(SqlLedger):
    """A ledger in a PostgreSQL database.

    :param url: A libpq URL, ``postgresql://user:password@host:port/dbname``. Tables go in the
        first schema of the search path; choose one with ``?options=-csearch_path%3Dname``.
    :param connect_timeout: Seconds to wait for a connection before failing.
    :param options: ``before_commit`` (for tests only) and ``clock``: see
        :class:`~payments_core.ledger.sql.SqlLedger`.
    :raises LedgerError: if the database cannot be reached or its schema is newer than this
        code.
    """

    lock_order = " FOR UPDATE"
    schema_lock = f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})"
    types: ClassVar[Mapping[str, str]] = {
        "id": "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
        "time": "TIMESTAMPTZ",
        "bool": "BOOLEAN",
    }
    driver_errors = (psycopg.Error,)

    def __init__(
        self,
        url: str,
        *,
        connect_timeout: float = 10.0,
        **options: Unpack[LedgerOptions],
    ) -> None:
        self.connect_timeout = connect_timeout
        super().__init__(url, **options)

    def connect(self) -> Connection:
        return psycopg.connect(
            self.url, autocommit=True, connect_timeout=max(1, round(self.connect_timeout))
        )

    def placeholder(self, sql: str) -> str:
        return sql.replace("?", "%s")

    def healthy(self, conn: Connection) -> bool:
        assert isinstance(conn, psycopg.Connection)
        return not conn.broken and conn.info.transaction_status is TransactionStatus.IDLE

    def __repr__(self) -> str:
        return f"PostgresLedger({safe_url(self.url)!r})"
