"""The column specification: it matches the schema, and statements bind values by name."""

from __future__ import annotations

import re
import sqlite3
from contextlib import closing
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from payments_core import Ledger
from payments_core.ledger.columns import CLAIMS, EVENTS, ORDERS, REFUNDS, Column, Kind, Table
from payments_core.ledger.migrations import MIGRATIONS
from payments_core.ledger.statements import Statements


def _columns_in_database(ledger_url: str, table: str) -> list[str]:
    query = f"SELECT * FROM {table} WHERE 1 = 0"  # noqa: S608 - a constant table name
    if ledger_url.startswith("sqlite:///"):
        with closing(sqlite3.connect(ledger_url.removeprefix("sqlite:///"))) as conn:
            description = conn.execute(query).description
    else:
        import psycopg

        with psycopg.connect(ledger_url) as conn:
            description = conn.execute(query).description
    assert description is not None
    return [column[0] for column in description]


@pytest.mark.parametrize("table", [ORDERS, EVENTS, REFUNDS], ids=lambda t: t.name)
def test_the_specification_names_every_column_the_migrations_create(
    ledger: Ledger, ledger_url: str, table: Table
) -> None:
    found = _columns_in_database(ledger_url, table.name)
    if table is EVENTS:
        found.remove("id")  # numbered by the store: the order in which events arrived
    assert sorted(found) == sorted(column.name for column in table.columns)


class _UtcText:
    def time_in(self, moment: datetime | None) -> object:
        return None if moment is None else moment.isoformat()

    def time_out(self, value: Any) -> datetime | None:
        return None if value is None else datetime.fromisoformat(value)


def test_a_statement_refuses_a_missing_or_unknown_value() -> None:
    statements = Statements(lambda sql: sql, "", _UtcText())
    with closing(sqlite3.connect(":memory:")) as conn:
        with pytest.raises(TypeError, match="reference"):
            statements.order.run(conn, provider="fake")
        with pytest.raises(TypeError, match="referense"):
            statements.order.run(conn, provider="fake", referense="booking-1")


def test_values_are_stored_and_read_back_as_their_column_says() -> None:
    times = _UtcText()
    moment = datetime(2030, 1, 1, tzinfo=UTC)
    assert Column("amount", Kind.AMOUNT).store(Decimal("1E-8"), times) == "0.00000001"
    assert Column("created_at", Kind.TIME).store(moment, times) == "2030-01-01T00:00:00+00:00"
    assert Column("created_at", Kind.TIME).load("2030-01-01T00:00:00+00:00", times) == moment
    assert Column("amount", Kind.AMOUNT).store(None, times) is None
    links = Column("links", Kind.LINKS)
    assert links.store({"web": "https://x.test/", "app": "x://"}, times) == (
        '{"app": "x://", "web": "https://x.test/"}'
    )
    assert links.load('{"app": "x://"}', times) == {"app": "x://"}
    assert ORDERS["amount"].kind is Kind.AMOUNT
    with pytest.raises(KeyError, match="no column 'amont'"):
        ORDERS["amont"]


def test_the_time_columns_are_those_the_migrations_declare_as_times() -> None:
    declared = {
        name
        for statements in MIGRATIONS
        for statement in statements
        if isinstance(statement, str)
        for name in re.findall(r"(\w+) \{time\}", statement)
    }
    specified = {
        column.name
        for table in (ORDERS, EVENTS, REFUNDS, CLAIMS)
        for column in table.columns
        if column.kind is Kind.TIME
    }
    assert specified == declared
