"""PostgreSQL's one-statement apply: it agrees with the rules, it is what a fitting callback
takes, and it rewrites the order in place (schema 9)."""

from __future__ import annotations

import itertools

import attrs
import psycopg
import pytest

from payments_core import Ledger, Money, PaymentStatus
from payments_core.ledger.postgres import PostgresLedger
from payments_core.ledger.postgres_apply import AtOnce, forward_from
from payments_core.rules import assess_event, learnt_settlement

from .fakes import event_for, order_for, provider_reference, status_of
from .statements import NOW, general_transaction_refused, rolled_back

pytestmark = pytest.mark.postgres

#: An order priced 1.00 USD that the provider settles as 0.9987 USDT.
SETTLED = Money("0.9987", "USDT")
AMOUNTS = [None, Money("1.00", "USD"), Money("1.50", "USD"), SETTLED, Money("0.9986", "USDT")]
AMOUNTS += [Money("1.00", "EUR")]
REFERENCES = ["same", None, "other"]


def test_forward_from_is_the_models_forward_rule() -> None:
    for new in PaymentStatus:
        allowed = set(forward_from(new))
        assert allowed == {old.value for old in PaymentStatus if old.can_become(new)}
    assert "pending" in forward_from(PaymentStatus.PAID)
    assert not {"paid", "refunded"} & set(forward_from(PaymentStatus.PAID))


def test_the_statement_applies_only_what_the_rules_accept(
    postgres_ledger: PostgresLedger, postgres_url: str
) -> None:
    """Every order status, event status, amount and provider reference against each other:
    whatever the statement applies, ``assess_event`` accepts; the plain fits it applies."""
    statement = AtOnce(postgres_ledger)
    for number, status in enumerate(PaymentStatus):
        order = order_for(f"order-{number}", status)
        postgres_ledger.record_order(attrs.evolve(order, settlement=SETTLED))
    cases = itertools.product(enumerate(PaymentStatus), PaymentStatus, AMOUNTS, REFERENCES)
    applied = 0
    conn = psycopg.connect(postgres_url, autocommit=True)
    for (number, _), new, amount, reference in cases:
        event = attrs.evolve(
            event_for(f"order-{number}", new, amount=amount),
            provider_reference={
                "same": provider_reference(f"order-{number}"),
                "other": "m-another",
                None: None,
            }[reference],
        )
        with rolled_back(conn):
            outcome = statement.run(conn, event, NOW, announced=False)
        assert outcome.state is not None
        flag = assess_event(outcome.state, event)
        if outcome.applied:
            applied += 1
            assert flag is None, (outcome.state, event)
            assert learnt_settlement(outcome.state, event) is None, (outcome.state, event)
        elif amount in (None, Money("1.00", "USD"), SETTLED) and reference != "other":
            assert flag is not None, (outcome.state, event)  # a fit is applied at once
        assert not outcome.seen
    conn.close()
    assert applied > 0


def test_a_fitting_callback_takes_one_statement(postgres_ledger: PostgresLedger) -> None:
    postgres_ledger.record_order(order_for("booking-1"))
    with general_transaction_refused(postgres_ledger):
        first = postgres_ledger.apply_event(event_for("booking-1"), announced=True)
    again = postgres_ledger.apply_event(event_for("booking-1"))  # the order moved: the general way
    assert (first.applied, first.reference) == (True, "booking-1")
    assert first.change is not None
    assert (first.change.old_status, first.change.new_status) == (
        PaymentStatus.PENDING,
        PaymentStatus.PAID,
    )
    assert (again.applied, again.duplicate, again.reference) == (False, True, "booking-1")
    assert status_of(postgres_ledger, "booking-1") is PaymentStatus.PAID
    (recorded,) = postgres_ledger.events_for("fake", "booking-1")
    assert (recorded.previous_status, recorded.applied, recorded.flag) == (
        PaymentStatus.PENDING,
        True,
        None,
    )
    assert postgres_ledger.unannounced_changes() == []  # announced=True fills the outbox's mark


def test_a_fitting_event_whose_id_is_recorded_is_told_a_duplicate_by_its_insert(
    postgres_ledger: PostgresLedger, postgres_url: str
) -> None:
    """The event recorded (as by a concurrent delivery) while its order still looks pending."""
    postgres_ledger.record_order(order_for("booking-1"))
    postgres_ledger.record_order(order_for("booking-2"))
    recorded = event_for("booking-2", event_id="shared-id")  # the id, taken by another order
    assert postgres_ledger.apply_event(recorded).applied
    event = event_for("booking-1", event_id="shared-id")
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        outcome = AtOnce(postgres_ledger).run(conn, event, NOW, announced=False)
    assert (outcome.applied, outcome.seen) == (False, True)
    assert postgres_ledger.apply_event(event).duplicate
    assert status_of(postgres_ledger, "booking-1") is PaymentStatus.PENDING


def test_a_callback_that_does_not_fit_is_decided_by_the_general_transaction(
    postgres_ledger: Ledger,
) -> None:
    postgres_ledger.record_order(order_for("booking-1", PaymentStatus.PAID))
    result = postgres_ledger.apply_event(event_for("booking-1", PaymentStatus.CLOSED))
    assert (result.applied, result.flagged, result.reference) == (False, "stale", "booking-1")
    (recorded,) = postgres_ledger.events_for("fake", "booking-1")
    assert (recorded.applied, recorded.flag) == (False, "stale")
    assert status_of(postgres_ledger, "booking-1") is PaymentStatus.PAID


def test_applying_a_callback_rewrites_its_order_in_place(
    postgres_ledger: PostgresLedger, postgres_url: str
) -> None:
    """A HOT update: no index of orders holds a column an event changes, and the page has room
    (counted by PostgreSQL for the transaction itself, so nothing waits for its statistics)."""
    postgres_ledger.record_order(order_for("booking-1"))
    with psycopg.connect(postgres_url, autocommit=True) as conn, rolled_back(conn):
        outcome = AtOnce(postgres_ledger).run(conn, event_for("booking-1"), NOW, announced=False)
        updated, hot = conn.execute(
            "SELECT pg_stat_get_xact_tuples_updated('orders'::regclass), "
            "pg_stat_get_xact_tuples_hot_updated('orders'::regclass)"
        ).fetchone()
    assert outcome.applied
    assert (updated, hot) == (1, 1)
