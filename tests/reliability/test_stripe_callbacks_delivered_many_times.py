"""R2 for Stripe: 1,000 paid sessions whose webhooks each arrive 1 to 5 times, shuffled, at once.

The orders are created through the facade (recorded in an SQLite ledger) against the Stripe
sandbox in process; paying each makes the sandbox sign a ``checkout.session.completed`` event.
Every event is then delivered 1 to 5 times, shuffled, from 8 threads, through
``Payments.apply_callback``: the ledger must show exactly one ``paid`` transition per order,
the application hook must fire once per order, and every delivery must be acknowledged.
"""

from __future__ import annotations

import random
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

from payments_stripe import StripeProvider
from payments_stripe.harness import StripeHarness

from payments_core import (
    Money,
    OrderRequest,
    Payments,
    PaymentStatus,
    open_ledger,
)
from payments_core.testing.sandbox import Delivery
from tests.ledger.fakes import HookRecorder

from .conftest import Leaks

ORDERS = 1000


def test_stripe_webhooks_delivered_many_times_concurrently_pay_each_order_once(
    tmp_path: Path, leaks: Leaks
) -> None:
    harness = StripeHarness()  # its sandbox keeps the webhooks instead of posting them
    sandbox = harness.sandbox
    leaks.add(*harness.secrets().values())
    changes = HookRecorder()
    references = [f"r2-stripe-{i:04d}" for i in range(ORDERS)]
    with Payments(
        providers={"stripe": StripeProvider},
        provider_settings={"stripe": harness.settings()},
        load_entry_points=False,
        plugins=(changes,),
        transport=harness.transport(),
        ledger=open_ledger(f"sqlite:///{tmp_path / 'r2.sqlite3'}"),
    ) as payments:
        for reference in references:
            order = payments.create_order(
                OrderRequest(
                    reference=reference,
                    price=Money("1.00", "USD"),
                    callback_url="https://leadscalendar.example/callbacks/stripe",
                )
            )
            sandbox.pay(order.provider_order_id)
        rng = random.Random(2)
        deliveries: list[Delivery] = [
            delivery for delivery in sandbox.deliveries for _ in range(rng.randint(1, 5))
        ]
        rng.shuffle(deliveries)
        with ThreadPoolExecutor(8) as pool:
            outcomes = list(
                pool.map(lambda d: payments.apply_callback("stripe", d.headers, d.body), deliveries)
            )
        assert payments.ledger is not None
        pending = payments.ledger.pending_orders(timedelta(0))
        recorded = [payments.ledger.get_order("stripe", r) for r in references]

    assert len(deliveries) > ORDERS
    assert all(outcome.reply.status_code == 200 for outcome in outcomes)
    assert sum(o.result is not None and o.result.applied for o in outcomes) == ORDERS
    assert Counter(change.reference for change in changes.changes) == Counter(references)
    assert all(change.new_status is PaymentStatus.PAID for change in changes.changes)
    assert pending == []
    assert all(order is not None and order.status is PaymentStatus.PAID for order in recorded)
