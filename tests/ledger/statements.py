"""Helpers for the tests of PostgreSQL's own statements (the one-statement paths)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from unittest import mock

import psycopg

from payments_core.ledger.postgres import PostgresLedger

#: The moment the statements are run at.
NOW = datetime(2026, 12, 6, 8, 0, tzinfo=UTC)


@contextmanager
def rolled_back(conn: psycopg.Connection[tuple[object, ...]]) -> Iterator[None]:
    """A transaction on ``conn`` (in autocommit) that is rolled back whatever happens in it."""
    conn.execute("BEGIN")
    try:
        yield
    finally:
        conn.execute("ROLLBACK")


def general_transaction_refused(ledger: PostgresLedger) -> AbstractContextManager[object]:
    """Within: a use of ``ledger``'s general transaction fails the test (one statement only)."""
    refused = AssertionError("the general transaction was used")
    return mock.patch.object(ledger, "_transaction", side_effect=refused)
