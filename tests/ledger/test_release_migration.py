"""A ledger written by the last release migrates with every row kept, meaning the same.

``release_ledger.sqlite3`` was written by the release's own code (``make_release_ledger.py``
says how and what it holds). Each test opens a copy with today's code, which migrates it; the
``postgres`` case first replays the release's schema and the file's rows into PostgreSQL.
"""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from payments_core import Ledger, Money, PaymentEvent, PaymentStatus, RefundStatus, open_ledger
from payments_core.ledger.migrations import MIGRATIONS
from payments_core.ledger.postgres import PostgresLedger
from payments_core.rules import EventFlag

RELEASE_LEDGER = Path(__file__).with_name("release_ledger.sqlite3")
#: The release's schema version: the file holds the first four entries of MIGRATIONS.
RELEASE_VERSION = 4
START = datetime(2025, 6, 1, tzinfo=UTC)
PRICE = Money("10.00", "USD")
SETTLEMENT = Money("10.00000000", "USDT")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def migrated(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Ledger]:
    """The release's ledger, opened (so migrated) by today's code, in each store."""
    if request.param == "sqlite":
        copy = tmp_path / "release.sqlite3"
        shutil.copyfile(RELEASE_LEDGER, copy)
        url = f"sqlite:///{copy}"
    else:
        url = request.getfixturevalue("postgres_url")
        _replay_into_postgres(url)
    with open_ledger(url) as ledger:
        yield ledger


def _replay_into_postgres(url: str) -> None:
    """The release's schema, made by its own migrations, holding the file's rows."""
    import psycopg

    with closing(sqlite3.connect(RELEASE_LEDGER)) as old, psycopg.connect(url) as new:
        new.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        for version, statements in enumerate(MIGRATIONS[:RELEASE_VERSION], start=1):
            for statement in statements:
                assert isinstance(statement, str)
                new.execute(statement.format(**PostgresLedger.types))
            new.execute("INSERT INTO schema_version VALUES (%s)", (version,))
        for table in ("orders", "events", "refunds"):
            cursor = old.execute(f"SELECT * FROM {table}")  # noqa: S608 - fixed names
            names = [column[0] for column in cursor.description]
            marks = ", ".join(["%s"] * len(names))
            overriding = " OVERRIDING SYSTEM VALUE" if table == "events" else ""
            listed = ", ".join(names)
            insert = f"INSERT INTO {table} ({listed}){overriding} VALUES ({marks})"  # noqa: S608
            for row in cursor:
                values = [_pg_value(name, value) for name, value in zip(names, row, strict=True)]
                new.execute(insert, values)
        new.execute("SELECT setval(pg_get_serial_sequence('events', 'id'), MAX(id)) FROM events")


def _pg_value(name: str, value: Any) -> Any:
    return bool(value) if name == "applied" else value


def _binance_links(number: int) -> dict[str, str]:
    return {
        "qr_image": f"https://public.binance.test/qr/{number}.png",
        "qr_data": f"https://app.binance.test/qr/{number}",
        "app": f"bnc://app.binance.test/payment/secpay?tempToken={number}",
        "web": f"https://app.binance.test/payment/secpay?linkToken={number}",
    }


BINANCE_ORDERS = {
    # reference: (number, status, refunded)
    "bk-pending": (1, PaymentStatus.PENDING, None),
    "bk-paid": (2, PaymentStatus.PAID, None),
    "bk-closed": (3, PaymentStatus.CLOSED, None),
    "bk-expired": (4, PaymentStatus.EXPIRED, None),
    "bk-failed": (5, PaymentStatus.FAILED, None),
    "bk-partial": (6, PaymentStatus.PARTIALLY_REFUNDED, Money("4.00", "USD")),
    "bk-refunded": (7, PaymentStatus.REFUNDED, Money("10.00", "USD")),
}


def test_the_schema_reaches_todays_version(migrated: Ledger) -> None:
    del migrated
    with closing(sqlite3.connect(RELEASE_LEDGER)) as old:
        (version,) = old.execute("SELECT MAX(version) FROM schema_version").fetchone()
    assert version == RELEASE_VERSION < len(MIGRATIONS)


@pytest.mark.parametrize("reference", sorted(BINANCE_ORDERS))
def test_every_binance_order_keeps_its_ids_money_status_and_links(
    migrated: Ledger, reference: str
) -> None:
    number, status, refunded = BINANCE_ORDERS[reference]
    order = migrated.get_order("binance", reference)
    assert order is not None
    assert order.provider_order_id == str(29383937493038367000 + number)
    assert order.provider_reference == f"trade{number:04d}x{reference.replace('-', '')}"
    assert (order.status, order.amount, order.settlement) == (status, PRICE, SETTLEMENT)
    assert order.refunded == refunded
    assert order.expires_at == START + timedelta(hours=1)
    assert (order.paid, order.fee) == (None, None)  # the release never recorded them
    if reference == "bk-expired":  # recorded from a query: no links
        assert (order.checkout_url, dict(order.links)) == (None, {})
    else:
        assert order.checkout_url == f"https://pay.binance.test/checkout/{number}"
        assert dict(order.links) == _binance_links(number)
    paid = status not in {PaymentStatus.PENDING, PaymentStatus.CLOSED}
    paid = paid and status not in {PaymentStatus.EXPIRED, PaymentStatus.FAILED}
    assert order.transaction_id == (f"tx-{order.provider_order_id}" if paid else None)


def test_the_deprecated_names_still_read_the_migrated_order(migrated: Ledger) -> None:
    order = migrated.get_order("binance", "bk-pending")
    assert order is not None
    with pytest.warns(DeprecationWarning, match="provider_reference"):
        assert order.merchant_order_id == "trade0001xbkpending"
    with pytest.warns(DeprecationWarning, match="qr_image"):
        assert order.qr_code_url == "https://public.binance.test/qr/1.png"
    with pytest.warns(DeprecationWarning, match="web"):
        assert order.universal_url == _binance_links(1)["web"]


def test_an_order_known_by_its_reference_has_no_provider_reference(migrated: Ledger) -> None:
    paid = migrated.get_order("stripe", "bk-stripe-paid")
    pending = migrated.get_order("stripe", "bk-stripe-pending")
    assert paid is not None
    assert pending is not None
    assert (paid.provider_reference, paid.status) == (None, PaymentStatus.PAID)
    assert (pending.provider_reference, pending.status) == (None, PaymentStatus.PENDING)
    assert paid.checkout_url == "https://checkout.stripe.test/c/pay/cs_test_8"
    assert dict(paid.links) == {}


def test_every_refund_keeps_its_amount_status_and_ids(migrated: Ledger) -> None:
    found = {
        refund.refund_reference: (refund.status, refund.amount, refund.provider_refund_id)
        for reference in ("bk-partial", "bk-refunded")
        for refund in migrated.refunds_for("binance", reference)
    }
    assert found == {
        "rf-partial-ok": (
            RefundStatus.SUCCEEDED,
            Money("4.00", "USD"),
            "29383937493038367006-rf-partial-ok",
        ),
        "rf-partial-failed": (
            RefundStatus.FAILED,
            Money("1.00", "USD"),
            "29383937493038367006-rf-partial-failed",
        ),
        "rf-partial-pending": (
            RefundStatus.PENDING,
            Money("2.00", "USD"),
            "29383937493038367006-rf-partial-pending",
        ),
        "rf-full": (RefundStatus.SUCCEEDED, Money("10.00", "USD"), "29383937493038367007-rf-full"),
    }


def test_every_event_keeps_what_it_named_and_what_became_of_it(migrated: Ledger) -> None:
    paid = migrated.events_for("binance", "bk-paid")
    assert [(e.status, e.applied, e.flag) for e in paid] == [
        (PaymentStatus.PAID, True, None),
        (PaymentStatus.CLOSED, False, EventFlag.STALE),
    ]
    assert {e.provider_reference for e in paid} == {"trade0002xbkpaid"}
    assert paid[0].amount == SETTLEMENT
    wrong = migrated.events_for("binance", "bk-pending")
    assert [(e.amount, e.flag) for e in wrong] == [
        (Money("1.00000000", "USDT"), EventFlag.AMOUNT_MISMATCH)
    ]
    stripe = migrated.events_for("stripe", "bk-stripe-paid")
    assert [(e.provider_reference, e.applied) for e in stripe] == [("bk-stripe-paid", True)]
    refund_events = migrated.events_for("binance", "bk-partial")
    assert [e.applied for e in refund_events] == [True, True, True]


def test_the_outbox_still_announces_what_was_never_announced(migrated: Ledger) -> None:
    pending = migrated.unannounced_changes()
    assert [(c.provider, c.reference, c.old_status, c.new_status) for c in pending] == [
        ("binance", "bk-paid", PaymentStatus.PENDING, PaymentStatus.PAID),
        ("stripe", "bk-stripe-paid", PaymentStatus.PENDING, PaymentStatus.PAID),
    ]
    migrated.mark_announced("binance", pending[0].event_id)
    assert [c.reference for c in migrated.unannounced_changes()] == ["bk-stripe-paid"]


def _paid(number: int, trade_no: str, suffix: str = "", **more: Any) -> PaymentEvent:
    """A Binance payment event for the order numbered ``number`` in the file."""
    provider_order_id = str(29383937493038367000 + number) if number else "1"
    return PaymentEvent(
        provider="binance",
        event_id=f"binance:{provider_order_id}:paid{suffix}",
        status=PaymentStatus.PAID,
        provider_order_id=provider_order_id,
        provider_reference=trade_no,
        amount=SETTLEMENT,
        **more,
    )


def test_a_redelivery_of_a_recorded_event_is_still_a_duplicate(migrated: Ledger) -> None:
    assert migrated.apply_event(_paid(2, "trade0002xbkpaid")).duplicate


def test_a_migrated_order_is_found_by_its_provider_reference_and_records_the_payment(
    migrated: Ledger,
) -> None:
    # A provider order id the ledger never saw: the order is found by its provider reference,
    # and the event names another order, so it is flagged rather than applied.
    result = migrated.apply_event(_paid(0, "trade0001xbkpending"))
    assert (result.reference, result.flagged) == ("bk-pending", EventFlag.ORDER_MISMATCH)
    # (The file's flagged wrong-amount event already holds binance:<id>:paid: another id.)
    genuine = _paid(
        1, "trade0001xbkpending", ":2", paid=Money("0.00016", "BTC"), fee=Money("0.01", "USDT")
    )
    assert migrated.apply_event(genuine).applied
    order = migrated.get_order("binance", "bk-pending")
    assert order is not None
    assert (order.status, order.paid, order.fee) == (
        PaymentStatus.PAID,
        Money("0.00016", "BTC"),
        Money("0.01", "USDT"),
    )
    assert dict(order.links) == _binance_links(1)  # the new event took no link away
