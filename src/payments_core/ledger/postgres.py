"""The PostgreSQL store, through psycopg 3: one ledger shared by several application instances.

Applying an event locks the order's row (``SELECT ... FOR UPDATE``), so two instances handling
deliveries of one order take turns, and the second sees what the first committed. The unique
``(provider, event_id)`` index makes a concurrent duplicate wait for the first insert and then
insert nothing. Migrations run under a transaction-scoped advisory lock, so instances starting
together do not race to create the tables.

Connections come from a ``psycopg_pool`` pool of at most ``pool_size`` connections, in
autocommit mode (the ledger says ``BEGIN`` and ``COMMIT``), shared by every thread of the
process, the async facade's too. A callback that fits its order is applied by one statement,
one round trip (:mod:`payments_core.ledger.postgres_apply`), and so is a refund notice that
fits its refund (:mod:`payments_core.ledger.postgres_refund`). Any other write transaction runs
in psycopg's pipeline mode: a statement is sent without waiting for the previous one's answer
until a row must be read, so applying a callback the general way takes three round trips
(``BEGIN`` with the read of the order, the event's insert with the order's update, ``COMMIT``)
rather than five. The two one-statement paths are prepared on the server on each connection
(parsed once, and planned once when PostgreSQL finds a generic plan as good as a fresh one);
every other statement is parsed and planned each time it runs. Needs the ``postgres`` extra:
``pip install payments-core[postgres]``.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager
from datetime import datetime
from typing import ClassVar, Final, Unpack
from urllib.parse import parse_qsl, urlencode, urlsplit

import psycopg
from psycopg_pool import ConnectionPool

from payments_core.errors import ConfigurationError
from payments_core.ledger.dbapi import Connection, Connections
from payments_core.ledger.postgres_apply import AtOnce
from payments_core.ledger.postgres_refund import SettleNotice
from payments_core.ledger.records import ApplyResult
from payments_core.ledger.sql import LedgerOptions, SqlLedger
from payments_core.models import PaymentEvent
from payments_core.redaction import safe_url

__all__ = ["PostgresLedger"]

# pg_advisory_xact_lock key for migrations: the bytes of "payments" as a bigint.
_MIGRATION_LOCK: Final = int.from_bytes(b"payments", "big")


class PostgresLedger(SqlLedger):
    """A ledger in a PostgreSQL database.

    :param url: A libpq URL, ``postgresql://user:password@host:port/dbname``. Tables go in the
        first schema of the search path; choose one with ``?options=-csearch_path%3Dname``.
        A ``pool_size`` option in the URL (``?pool_size=20``) is read as ``pool_size``.
    :param connect_timeout: Seconds to wait for a new connection, or for a free one when all
        ``pool_size`` are in use, before failing.
    :param pool_size: The most connections the ledger opens at once; a thread that finds them
        all in use waits for one. One process serving callbacks uses about as many as its
        threads that touch the ledger.
    :param options: ``before_commit`` (for tests only) and ``clock``: see
        :class:`~payments_core.ledger.sql.SqlLedger`.
    :raises ConfigurationError: if ``pool_size`` is not a positive whole number.
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
        pool_size: int | None = None,
        **options: Unpack[LedgerOptions],
    ) -> None:
        url, in_url = _without_pool_size(url)
        self.pool_size = self.concurrency = _pool_size(
            pool_size if pool_size is not None else in_url
        )
        self.connect_timeout = connect_timeout
        self._at_once = AtOnce(self)
        self._settle_notice = SettleNotice(self)
        super().__init__(url, **options)

    def connect(self) -> Connection:
        return psycopg.connect(self.url, autocommit=True, connect_timeout=self._connect_timeout_s)

    def open_pool(self) -> Connections:
        # Connect once first, so an unreachable database fails with libpq's own reason
        # rather than the pool's "no connection in time".
        self.connect().close()
        return ConnectionPool(
            self.url,
            kwargs={
                "autocommit": True,
                "connect_timeout": self._connect_timeout_s,
                "prepare_threshold": ONLY_WHEN_ASKED,
            },
            min_size=1,
            max_size=self.pool_size,
            timeout=self.connect_timeout,
            name="payments-ledger",
            open=True,
        )

    def batched(self, conn: Connection) -> AbstractContextManager[object]:
        assert isinstance(conn, psycopg.Connection)
        return conn.pipeline()

    def apply_at_once(
        self, event: PaymentEvent, now: datetime, *, announced: bool
    ) -> ApplyResult | None:
        with self._errors("apply event"), self._pool.connection() as conn:
            if event.refund is not None:
                return self._settle_notice.run(conn, event, now, announced=announced)
            outcome = self._at_once.run(conn, event, now, announced=announced)
        if outcome.state is None:
            return None  # perhaps known by its provider reference: the general path looks
        if outcome.applied:
            return ApplyResult.applied_by(event, outcome.state, now)
        if outcome.seen:
            return ApplyResult.duplicate_of(outcome.state.reference)
        return None

    def placeholder(self, sql: str) -> str:
        return sql.replace("?", "%s")

    @property
    def _connect_timeout_s(self) -> int:
        return max(1, round(self.connect_timeout))  # libpq takes whole seconds

    def __repr__(self) -> str:
        return f"PostgresLedger({safe_url(self.url)!r})"


#: psycopg's ``prepare_threshold`` for the pool's connections: no statement is prepared by how
#: often it runs, only those executed with ``prepare=True``, the one-statement paths (their
#: generic plans are safe: see ``migrations._unambiguous_keys``). ``None`` would not do: it
#: turns ``prepare=True`` off as well, and each callback's statement would be parsed and
#: planned again, about half of its time in the database.
ONLY_WHEN_ASKED: Final = 2**31 - 1

#: Connections a ledger opens at most when neither the URL nor the caller says.
DEFAULT_POOL_SIZE: Final = 10


def _without_pool_size(url: str) -> tuple[str, str | None]:
    """``url`` without its ``pool_size`` option (libpq knows no such option), and the option."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    found = [value for key, value in query if key == "pool_size"]
    if not found:
        return url, None
    kept = urlencode([(key, value) for key, value in query if key != "pool_size"])
    return parts._replace(query=kept).geturl(), found[-1]


def _pool_size(value: int | str | None) -> int:
    if value is None:
        return DEFAULT_POOL_SIZE
    try:
        size = int(value)
    except ValueError:
        size = 0
    if size < 1:
        raise ConfigurationError(f"pool_size must be a whole number of at least 1, not {value!r}")
    return size
