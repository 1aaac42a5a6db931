"""The contracts on what a payment leaves in the ledger: what was paid, the fee, the settlement.

A provider may report what the payer paid and its own fee (``paid`` and ``fee`` on its paid
event and its query); when it does, the ledger records them on the order. A provider whose payer
picks the asset when paying learns the settlement only from the payment; the ledger then
learns it too. Both contracts run the facade with a ledger in a SQLite file of their own.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from payments_core.models import CallbackRequest, Order, PaymentEvent, PaymentStatus
from payments_core.testing.contract.runner import (
    ContractRun,
    check_money,
    contract_test,
    require,
    require_value,
)

__all__ = ["RecordedPaymentContracts"]


class RecordedPaymentContracts:
    """What was paid, the provider's fee and a settlement learnt from the payment."""

    @contract_test(
        "paid-recorded",
        hooks={"create_order", "handle_callback", "query_order"},
        summary="what a paid callback says was paid, and the fee, the provider's query says "
        "too, and the ledger records on the order; the order keeps the settlement it was "
        "created with",
    )
    def test_what_was_paid_is_recorded(self, run: ContractRun) -> None:
        """The ledger's order holds what the provider said was paid."""
        _paid_and_recorded(run, "paid-recorded", run.harness.paid_callback)

    @contract_test(
        "settlement-learnt",
        hooks={"create_order", "handle_callback", "query_order"},
        summary="when the payer picks the asset when paying (harnesses offering "
        "picked_asset_callback), the paid callback says what was paid in it, and an order "
        "created without a settlement learns it in the ledger",
    )
    def test_a_settlement_is_learnt_from_the_payment(self, run: ContractRun) -> None:
        """An order whose payer picks the asset learns its settlement from the payment."""
        order, event, recorded = _paid_and_recorded(
            run, "settlement-learnt", run.harness.picked_asset_callback
        )
        price = order.amount.currency
        stated = [m for m in (event.amount, event.paid) if m is not None and m.currency != price]
        require(
            bool(stated),
            f"paid in an asset the payer picked, the event states only {price}: "
            f"amount {event.amount}, paid {event.paid}",
        )
        if order.settlement is None:
            require(
                recorded.settlement == stated[0],
                f"the ledger's order has settlement {recorded.settlement}, the payment "
                f"stated {stated[0]}",
            )


def _paid_and_recorded(
    run: ContractRun, label: str, pay: Callable[[Order], CallbackRequest | None]
) -> tuple[Order, PaymentEvent, Order]:
    """Create an order, pay it by ``pay`` and apply the callback to a ledger.

    :returns: the order as created, the paid event, and the order as the ledger holds it.
    """
    name = run.harness.name
    ledger = run.ledger()
    payments = run.payments(ledger=ledger)
    order = payments.create_order(run.request(label, payments))
    callback = pay(order)
    if callback is None:
        pytest.skip("the harness has no payer who picks the asset")
    outcome = payments.apply_callback(name, callback.headers, callback.body)
    queried = payments.query_order(order.reference)
    recorded = ledger.get_order(name, order.reference)
    event = outcome.event
    require(
        event is not None and event.status is PaymentStatus.PAID,
        f"a paid callback gave event {event!r}",
    )
    assert event is not None
    recorded = require_value(recorded, "the ledger holds no order after create_order")
    for field in ("paid", "fee"):
        said = getattr(event, field)
        if said is None:
            continue
        check_money(said, f"event.{field}")
        require(
            queried is not None and getattr(queried, field) == said,
            f"the paid callback says {field} {said}, the query after it "
            f"{None if queried is None else getattr(queried, field)}",
        )
        require(
            getattr(recorded, field) == said,
            f"the paid callback says {field} {said}, the ledger's order holds "
            f"{getattr(recorded, field)}",
        )
    if order.settlement is not None:
        require(
            recorded.settlement == order.settlement,
            f"the order was created with settlement {order.settlement}, the ledger's now "
            f"holds {recorded.settlement}",
        )
    return order, event, recorded
