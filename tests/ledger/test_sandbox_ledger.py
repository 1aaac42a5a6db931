"""The ledger with the real Binance Pay plugin and the sandbox's real, signed webhooks.

Through a real uvicorn server on loopback (the sandbox delivers, twice each), in process (the
sandbox's signed notifications replayed through httpx's ASGI transport), and by
``payments reconcile`` when the sandbox delivers nothing.
"""

from __future__ import annotations

import json
from collections import Counter

import httpx
import pytest
from click.testing import CliRunner

from payments_binance.sandbox import FaultProfile
from payments_core import Order, Payments, PaymentStatus, open_ledger
from payments_core.asgi import create_callback_app
from payments_core.cli import cli
from payments_core.serving import BackgroundServer
from tests.binance.loopback import (
    NOWHERE,
    binance_env,
    binance_payments,
    booking,
    sandbox_on_loopback,
)

from .fakes import HookRecorder


def ledger_statuses(payments: Payments, orders: list[Order]) -> dict[str, PaymentStatus]:
    assert payments.ledger is not None
    found = {o.reference: payments.ledger.get_order("binance", o.reference) for o in orders}
    return {reference: order.status for reference, order in found.items() if order is not None}


def test_sandbox_webhooks_through_uvicorn_change_each_order_once(ledger_url: str) -> None:
    recorder = HookRecorder()
    every_webhook_twice = FaultProfile(duplicate_webhook=1.0)
    with (
        sandbox_on_loopback(faults=every_webhook_twice) as (sandbox, provider_url),
        binance_payments(provider_url, ledger_url, recorder) as payments,
        BackgroundServer(create_callback_app(payments, close_payments=True), lifespan="on") as app,
    ):
        callback_url = f"{app.url}/callbacks/binance"
        orders = [payments.create_order(booking(i, callback_url)) for i in range(5)]
        # One notification first: the provider fetches its certificates on the first callback,
        # and a callback racing that fetch is deferred (the sandbox then delivers it again).
        sandbox.pay(orders[0].provider_order_id)
        sandbox.wait_for_webhooks_sync(timeout=30)
        for order in orders[1:4]:
            sandbox.pay(order.provider_order_id)
        sandbox.cancel(orders[4].provider_order_id)
        sandbox.wait_for_webhooks_sync(timeout=30)
        statuses = ledger_statuses(payments, orders)
    attempts = sandbox.webhook_log
    acknowledged = {(int(a.delivery.event_id), a.copy) for a in attempts if a.ok}
    assert acknowledged == {(event, copy) for event in range(1, 6) for copy in (1, 2)}
    after_warm_up = [a for a in attempts if int(a.delivery.event_id) > 1]
    assert all(a.ok for a in after_warm_up), [a.error for a in after_warm_up if not a.ok]
    assert statuses == {
        **{o.reference: PaymentStatus.PAID for o in orders[:4]},
        orders[4].reference: PaymentStatus.CLOSED,
    }
    assert Counter((c.reference, c.new_status) for c in recorder.changes) == Counter(
        statuses.items()
    )


@pytest.mark.anyio
async def test_sandbox_notifications_replayed_in_process_change_each_order_once(
    ledger_url: str,
) -> None:
    recorder = HookRecorder()
    with sandbox_on_loopback(deliver_webhooks=False) as (sandbox, provider_url):
        async with binance_payments(provider_url, ledger_url, recorder) as payments:
            orders = [await payments.create_order_async(booking(i, NOWHERE)) for i in range(3)]
            for order in orders:
                sandbox.pay(order.provider_order_id)
            notifications = [a for a in sandbox.webhook_log if a.skipped]
            assert len(notifications) == 3
            transport = httpx.ASGITransport(app=create_callback_app(payments))
            async with httpx.AsyncClient(transport=transport, base_url="http://app.test") as app:
                answers = [
                    await app.post(
                        "/callbacks/binance", content=n.delivery.body, headers=dict(n.headers)
                    )
                    for n in notifications * 2
                ]
                forged = notifications[0].delivery.body.replace(b"1.00", b"0.01")
                refused = await app.post(
                    "/callbacks/binance", content=forged, headers=dict(notifications[0].headers)
                )
            statuses = ledger_statuses(payments, orders)
    assert [a.status_code for a in answers] == [200] * 6
    assert all(a.json()["returnCode"] == "SUCCESS" for a in answers)
    assert refused.status_code != 200
    assert statuses == {o.reference: PaymentStatus.PAID for o in orders}
    assert sorted(c.reference for c in recorder.changes) == [o.reference for o in orders]


def test_payments_reconcile_brings_paid_orders_to_paid_without_webhooks(ledger_url: str) -> None:
    with sandbox_on_loopback(deliver_webhooks=False) as (sandbox, provider_url):
        with binance_payments(provider_url, ledger_url) as payments:
            orders = [payments.create_order(booking(i, NOWHERE)) for i in range(4)]
        for order in orders[:3]:
            sandbox.pay(order.provider_order_id)
        env = {
            "PAYMENTS_CONFIG": None,
            "PAYMENTS_PROVIDERS": "binance",
            "PAYMENTS_DATABASE_URL": ledger_url,
            **binance_env(provider_url),
        }
        runner = CliRunner()
        first = runner.invoke(cli, ["reconcile", "--older-than", "0", "--json"], env=env)
        second = runner.invoke(cli, ["reconcile", "--older-than", "0"], env=env)
        status = runner.invoke(cli, ["status", "booking-0", "--json"], env=env)
        assert all(a.skipped for a in sandbox.webhook_log)
    assert first.exit_code == 0, first.output
    rows = {row["reference"]: row for row in json.loads(first.output)["orders"]}
    assert {r: (row["provider_status"], row["applied"]) for r, row in rows.items()} == {
        "booking-0": ("paid", True),
        "booking-1": ("paid", True),
        "booking-2": ("paid", True),
        "booking-3": ("pending", False),
    }
    assert second.exit_code == 0, second.output
    assert "booking-3\tstill pending" in second.output
    assert "1 pending checked: 0 changed, 0 not checked" in second.output
    assert status.exit_code == 0, status.output
    (record,) = json.loads(status.output)["orders"]
    assert record["order"]["status"] == "paid"
    (event,) = record["events"]
    assert event["event_id"] == f"binance:reconcile:{orders[0].provider_order_id}:paid"
    assert event["applied"] is True
    with open_ledger(ledger_url) as ledger:
        paid = [ledger.get_order("binance", o.reference) for o in orders]
    assert [o.status if o else None for o in paid] == ["paid", "paid", "paid", "pending"]
