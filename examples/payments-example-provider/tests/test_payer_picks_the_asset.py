"""A payer who picks the coin when paying, end to end over loopback with a real ledger file.

The ExamplePay sandbox and the application's callback endpoint are real uvicorn servers on
127.0.0.1; the order is created without a settlement, and the ledger learns it from the
payment's signed callback, with what was paid and ExamplePay's fee.
"""

from __future__ import annotations

from pathlib import Path

import httpx
from payments_example import ExampleProvider
from payments_example.sandbox import ExamplePaySandbox, serve

from payments_core import (
    Money,
    OrderRequest,
    Payments,
    PaymentStatus,
    RefundRequest,
    RefundStatus,
    open_ledger,
)
from payments_core.asgi import create_callback_app
from payments_core.serving import BackgroundServer
from payments_core.testing.sandbox import RunningSandbox


def ledgered(running: RunningSandbox[ExamplePaySandbox], ledger_url: str) -> Payments:
    """A facade with ExamplePay on the served sandbox and a ledger at ``ledger_url``."""
    return Payments(
        providers={"example": ExampleProvider},
        provider_settings={"example": dict(running.settings)},
        load_entry_points=False,
        ledger=open_ledger(ledger_url),
    )


def test_the_ledger_learns_the_settlement_what_was_paid_and_the_fee(tmp_path: Path) -> None:
    ledger_url = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    with serve() as running:
        payments = ledgered(running, ledger_url)
        app = create_callback_app(payments, close_payments=True)
        with BackgroundServer(app, lifespan="on") as endpoint:
            request = OrderRequest(
                reference="booking-7",
                price=Money("20.00", "USD"),
                callback_url=f"{endpoint.url}/callbacks/example",
            )
            created = payments.create_order(request)
            assert created.settlement is None  # the payer has not picked yet
            # The payer picks BTC on the checkout page and pays; the callback follows.
            checkout = f"{running.base_url}/checkout/{created.provider_order_id}"
            refused = httpx.post(checkout, data={"asset": "DOGE", "amount": "1"})
            page = httpx.post(checkout, data={"asset": "BTC", "amount": "0.00021000"})
            assert payments.ledger is not None
            paid = payments.ledger.get_order("example", "booking-7")
            queried = payments.query_order("booking-7")
            refund = payments.refund_order(
                RefundRequest(
                    reference="booking-7",
                    refund_reference="refund-1",
                    amount=Money("5.00", "USD"),
                )
            )
    assert (refused.status_code, page.status_code) == (400, 200)
    assert "This order is paid." in page.text
    assert paid is not None
    assert paid.status is PaymentStatus.PAID
    assert paid.settlement == Money("0.00021", "BTC")
    assert (paid.paid, paid.fee) == (Money("0.00021", "BTC"), Money("0.0000021", "BTC"))
    assert queried is not None
    assert (queried.paid, queried.fee) == (paid.paid, paid.fee)
    # The order whose settlement was learnt is refunded in its price, as ExamplePay refunds.
    assert (refund.status, refund.amount) == (RefundStatus.SUCCEEDED, Money("5.00", "USD"))
    with open_ledger(ledger_url) as reopened:  # the file holds it, not the process
        again = reopened.get_order("example", "booking-7")
    assert again is not None
    assert (again.settlement, again.status) == (paid.settlement, PaymentStatus.PARTIALLY_REFUNDED)


def test_a_payment_in_the_price_currency_reports_it_and_teaches_no_settlement(
    tmp_path: Path,
) -> None:
    with serve() as running:
        payments = ledgered(running, f"sqlite:///{tmp_path / 'ledger.sqlite3'}")
        with BackgroundServer(create_callback_app(payments, close_payments=True)) as endpoint:
            request = OrderRequest(
                reference="booking-8",
                price=Money("9.99", "EUR"),
                callback_url=f"{endpoint.url}/callbacks/example",
            )
            created = payments.create_order(request)
            running.sandbox.pay(created.provider_order_id)
            assert payments.ledger is not None
            paid = payments.ledger.get_order("example", "booking-8")
    assert paid is not None
    assert (paid.status, paid.settlement) == (PaymentStatus.PAID, None)
    assert (paid.paid, paid.fee) == (Money("9.99", "EUR"), Money("0.09", "EUR"))


def test_a_lost_callback_is_reconciled_and_the_settlement_learnt_from_the_query(
    tmp_path: Path,
) -> None:
    silent = ExamplePaySandbox(
        api_key="ex_key_silent", api_secret="silent-secret-0123456789", deliver=lambda d: None
    )
    with serve(silent) as running, ledgered(running, f"sqlite:///{tmp_path / 'l.db'}") as payments:
        request = OrderRequest(
            reference="booking-9",
            price=Money("5.00", "GBP"),
            callback_url="http://127.0.0.1:9/never-reached",
        )
        created = payments.create_order(request)
        silent.pay(created.provider_order_id, amount="6.250000", asset="USDT")
        outcome = payments.reconcile_order("booking-9")
        assert payments.ledger is not None
        recorded = payments.ledger.get_order("example", "booking-9")
    assert outcome.result is not None
    assert outcome.result.applied
    assert outcome.answer is not None
    assert outcome.answer.paid == Money("6.25", "USDT")  # the query says what was paid
    assert recorded is not None
    assert (recorded.status, recorded.settlement, recorded.fee) == (
        PaymentStatus.PAID,
        Money("6.25", "USDT"),
        Money("0.0625", "USDT"),
    )
