"""PostgreSQL's one-statement refund notice: it agrees with the rules, and it is what a fitting
notice takes."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from decimal import Decimal

import attrs
import psycopg
import pytest

from payments_core import (
    Money,
    PaymentEvent,
    PaymentStatus,
    RefundRequest,
    RefundStatus,
)
from payments_core.ledger.postgres import PostgresLedger
from payments_core.ledger.postgres_refund import SettleNotice
from payments_core.models import Refund
from payments_core.rules import OrderState, assess_refund_notice

from .fakes import NAME, PRICE, order_for, provider_order_id, provider_reference, refund_notice_for
from .statements import NOW, general_transaction_refused, rolled_back

pytestmark = pytest.mark.postgres

REFUND = Money("0.40", "USD")
#: The refund's settlement, when it has one.
MOVED = Money("0.3995", "USDT")
NOTICE_AMOUNTS = [None, REFUND, Money("0.50", "USD"), MOVED, Money("0.40", "EUR")]
#: Refunded before the notice: nothing, or so much that this refund completes the price.
REFUNDED_BEFORE = [None, "0.60"]


def _names(number: int) -> dict[str, str]:
    """Provider refund ids for order ``number``: unique per provider, as providers make them."""
    return {"own": f"rf-{number}-1", "another": f"rf-{number}-x", "other": f"rf-{number}-2"}


def _prepare(ledger: PostgresLedger) -> None:
    """One order per status, each with refund ``cancel-1`` (0.40 of 1.00, no provider id yet)
    and ``cancel-2`` (0.10, under the provider id ``other``)."""
    for number in range(len(PaymentStatus)):
        reference = f"order-{number}"
        ledger.record_order(order_for(reference, PaymentStatus.PAID))
        for refund_reference, amount in (("cancel-1", REFUND), ("cancel-2", Money("0.10", "USD"))):
            ledger.reserve_refund(
                NAME,
                RefundRequest(
                    reference=reference, refund_reference=refund_reference, amount=amount
                ),
                provider_refund_id=_names(number)["other"]
                if refund_reference == "cancel-2"
                else None,
            )


def _notice(number: int, status: RefundStatus, naming: str, amount: Money | None) -> PaymentEvent:
    echoed, refund_id = {
        "reference and id": ("cancel-1", _names(number)["own"]),
        "id only": (None, _names(number)["own"]),
        "another refund's id": ("cancel-1", _names(number)["other"]),
    }[naming]
    return refund_notice_for(f"order-{number}", refund_id, status, amount, refund_reference=echoed)


@attrs.frozen
class _Case:
    number: int
    order_status: PaymentStatus
    refunded: str | None
    refund_status: RefundStatus
    refund_id: str  # "none", "own" or "another"
    settlement: Money | None
    notice_status: RefundStatus
    naming: str
    amount: Money | None


def _cases() -> Iterator[_Case]:
    for (number, order_status), *rest in itertools.product(
        enumerate(PaymentStatus),
        REFUNDED_BEFORE,
        [RefundStatus.PENDING, RefundStatus.SUCCEEDED],
        ["none", "own", "another"],
        [None, MOVED],
        [RefundStatus.SUCCEEDED, RefundStatus.FAILED],
        ["reference and id", "id only", "another refund's id"],
        NOTICE_AMOUNTS,
    ):
        yield _Case(number, order_status, *rest)


def _stored(case: _Case) -> Refund | None:
    """The refund the general way finds for the notice (``SqlLedger._noticed_refund``)."""
    reference = f"order-{case.number}"
    refund = Refund(
        provider=NAME,
        reference=reference,
        refund_reference="cancel-1",
        provider_refund_id=None
        if case.refund_id == "none"
        else _names(case.number)[case.refund_id],
        provider_order_id=provider_order_id(reference),
        amount=REFUND,
        status=case.refund_status,
        settlement=case.settlement,
        reason="",
    )
    if case.naming == "another refund's id":
        return None  # the id is cancel-2's: it names no refund of its own
    if case.naming == "id only" and case.refund_id != "own":
        return None  # no refund has the id
    return refund


def test_the_statement_settles_only_what_the_rules_accept(
    postgres_ledger: PostgresLedger,
    postgres_url: str,
) -> None:
    """Every order status, refunded total, refund status, provider id and settlement, notice
    status, naming and amount against each other: whatever the statement settles,
    ``assess_refund_notice`` accepts and the general way would write the same; the plain fits
    it settles."""
    _prepare(postgres_ledger)
    statement = SettleNotice(postgres_ledger)
    settled = 0
    conn = psycopg.connect(postgres_url, autocommit=True)
    for case in _cases():
        reference = f"order-{case.number}"
        key = (NAME, reference)
        event = _notice(case.number, case.notice_status, case.naming, case.amount)
        with rolled_back(conn):
            conn.execute(
                "UPDATE orders SET status = %s, refunded_amount = %s "
                "WHERE provider = %s AND reference = %s",
                (case.order_status.value, case.refunded, *key),
            )
            refund_id = None if case.refund_id == "none" else _names(case.number)[case.refund_id]
            conn.execute(
                "UPDATE refunds SET status = %s, provider_refund_id = %s, "
                "settlement_amount = %s, settlement_currency = %s "
                "WHERE provider = %s AND reference = %s AND refund_reference = 'cancel-1'",
                (
                    case.refund_status.value,
                    refund_id,
                    None if case.settlement is None else str(case.settlement.amount),
                    None if case.settlement is None else case.settlement.currency,
                    *key,
                ),
            )
            result = statement.run(conn, event, NOW, announced=False)
            after = conn.execute(
                "SELECT status, refunded_amount FROM orders WHERE provider = %s AND reference = %s",
                key,
            ).fetchone()
            refund_after = conn.execute(
                "SELECT status, provider_refund_id FROM refunds WHERE provider = %s "
                "AND reference = %s AND refund_reference = 'cancel-1'",
                key,
            ).fetchone()
            recorded = conn.execute(
                "SELECT status, previous_status, announced_at IS NOT NULL FROM events "
                "WHERE provider = %s AND event_id = %s",
                (NAME, event.event_id),
            ).fetchone()
        state = OrderState(
            reference,
            provider_order_id(reference),
            provider_reference(reference),
            case.order_status,
            PRICE.amount,
            PRICE.currency,
        )
        stored = _stored(case)
        flag = assess_refund_notice(state, event, stored)
        plain = case.amount is None or case.amount.currency == "USD" or case.settlement is not None
        if result is None:
            assert flag is not None or not plain, case  # a plain fit is settled at once
            assert after == (case.order_status.value, case.refunded), case
            assert recorded is None, case
            continue
        settled += 1
        assert flag is None, case
        assert stored is not None
        assert (result.applied, result.duplicate, result.flagged) == (True, False, None), case
        assert result.refund == attrs.evolve(
            stored,
            status=case.notice_status,
            provider_refund_id=stored.provider_refund_id or event.refund.provider_refund_id,  # type: ignore[union-attr]
        ), case
        assert refund_after == (case.notice_status.value, result.refund.provider_refund_id), case
        # What SqlLedger._settle writes and announces for the same notice.
        if case.notice_status is RefundStatus.SUCCEEDED:
            total = Decimal(case.refunded or 0) + REFUND.amount
            target = (
                PaymentStatus.REFUNDED
                if total >= PRICE.amount
                else PaymentStatus.PARTIALLY_REFUNDED
            )
            moves = case.order_status.can_become(target)
            assert after == ((target if moves else case.order_status).value, str(total)), case
        else:
            moves = False
            assert after == (case.order_status.value, case.refunded), case
        if moves:
            assert result.change is not None, case
            assert (result.change.old_status, result.change.new_status) == (
                case.order_status,
                PaymentStatus(after[0]),
            ), case
            assert recorded == (after[0], case.order_status.value, False), case
        else:
            assert result.change is None, case
            assert recorded == (event.status.value, case.order_status.value, True), case
    conn.close()
    assert settled > 0


def test_a_fitting_notice_takes_one_statement(postgres_ledger: PostgresLedger) -> None:
    _prepare(postgres_ledger)
    event = _notice(0, RefundStatus.SUCCEEDED, "reference and id", REFUND)
    with general_transaction_refused(postgres_ledger):
        first = postgres_ledger.apply_event(event, announced=True)
    again = postgres_ledger.apply_event(event)  # the refund moved on: the general way
    assert (first.applied, first.reference) == (True, "order-0")
    assert first.change is not None
    assert first.change.new_status is PaymentStatus.PARTIALLY_REFUNDED
    assert first.refund is not None
    assert (first.refund.status, first.refund.provider_refund_id) == (
        RefundStatus.SUCCEEDED,
        _names(0)["own"],
    )
    assert (again.applied, again.duplicate) == (False, True)
    order = postgres_ledger.get_order(NAME, "order-0")
    assert order is not None
    assert (order.status, order.refunded) == (PaymentStatus.PARTIALLY_REFUNDED, REFUND)
    assert postgres_ledger.unannounced_changes() == []  # announced=True fills the outbox's mark


def test_a_duplicate_of_a_settled_notice_changes_nothing(postgres_ledger: PostgresLedger) -> None:
    _prepare(postgres_ledger)
    event = _notice(0, RefundStatus.FAILED, "reference and id", None)
    assert postgres_ledger.apply_event(event).applied
    again = postgres_ledger.apply_event(event)
    assert (again.applied, again.duplicate) == (False, True)
    (refund, _) = postgres_ledger.refunds_for(NAME, "order-0")
    assert refund.status is RefundStatus.FAILED
    order = postgres_ledger.get_order(NAME, "order-0")
    assert order is not None
    assert (order.status, order.refunded) == (PaymentStatus.PAID, None)
