"""The Stripe sandbox served on loopback: the demo, the checkout page, and its faults."""

from __future__ import annotations

import json
from importlib.metadata import entry_points
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from payments_stripe import StripeProvider
from payments_stripe.sandbox_server import serve

import payments_core
from payments_core.cli import cli
from payments_core.config import HttpSettings
from payments_core.ledger import open_ledger
from payments_core.testing.sandbox import FaultProfile

CLEARED: dict[str, str | None] = dict.fromkeys(
    (
        "PAYMENTS_PROVIDERS",
        "PAYMENTS_DEFAULT_PROVIDER",
        "PAYMENTS_DATABASE_URL",
        "PAYMENTS_CONFIG",
        "STRIPE_API_KEY",
        "STRIPE_WEBHOOK_SECRET",
        "STRIPE_BASE_URL",
        "STRIPE_QUERY_WINDOW_HOURS",
    )
)


def test_the_entry_point_names_the_provider_factory() -> None:
    (entry,) = [e for e in entry_points(group="payments.providers") if e.name == "stripe"]
    assert entry.load() is StripeProvider
    with payments_core.Payments(payments_core.Config(providers=("stripe",))) as payments:
        assert payments.describe().display_name == "Stripe Checkout"


def test_the_demo_pays_a_booking_through_the_stripe_sandbox(tmp_path: Path) -> None:
    database = tmp_path / "demo.sqlite3"

    result = CliRunner().invoke(
        cli, ["demo", "--provider", "stripe", "--json", "--database", str(database)], env=CLEARED
    )

    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["status"] == "paid"
    assert data["provider_order_id"].startswith("cs_test_")
    assert data["event_id"].startswith("evt_")
    with open_ledger(f"sqlite:///{database}") as ledger:
        order = ledger.get_order("stripe", data["reference"])
        events = ledger.events_for("stripe", data["reference"])
    assert order is not None
    assert order.status is payments_core.PaymentStatus.PAID
    assert [(event.event_id, event.applied) for event in events] == [(data["event_id"], True)]


def _payments(settings: dict[str, str], **options: object) -> payments_core.Payments:
    return payments_core.Payments(
        providers={"stripe": StripeProvider},
        provider_settings={"stripe": settings},
        load_entry_points=False,
        **options,  # type: ignore[arg-type]
    )


def test_paying_on_the_checkout_page_sends_the_webhook_to_the_forwarded_url() -> None:
    received: list[httpx.Request] = []
    with serve() as running:
        running.sandbox.deliver = lambda delivery: received.append(
            httpx.Request(
                "POST", delivery.url or "", headers=delivery.headers, content=delivery.body
            )
        )
        running.forward_callbacks("http://127.0.0.1:9/callbacks/stripe")
        with _payments(running.settings) as payments:
            order = payments.create_order(
                payments_core.OrderRequest(
                    reference="page-1",
                    price=payments_core.Money(300, "JPY"),
                    callback_url="https://m.example/",
                )
            )
            page = httpx.get(running.checkout_url(order.provider_order_id))
            paid = httpx.post(running.checkout_url(order.provider_order_id))
            found = payments.query_order("page-1")
            (webhook,) = received
            result = payments.handle_callback("stripe", dict(webhook.headers), webhook.content)
    assert "Pay 300 JPY" in page.text
    assert "is complete" in paid.text
    assert str(webhook.url) == "http://127.0.0.1:9/callbacks/stripe"
    assert found is not None
    assert found.status is payments_core.PaymentStatus.PAID
    assert result.event is not None
    assert result.event.status is payments_core.PaymentStatus.PAID


@pytest.mark.parametrize(
    "fault",
    ["rate_limit_retry_after", "server_error", "drop_response", "timeout", "reset"],
)
def test_every_fault_ends_in_one_session_once_the_network_heals(fault: str) -> None:
    profile = FaultProfile(**{fault: 1.0}, timeout_delay_s=0.5, retry_after_s=0)  # type: ignore[arg-type]
    request = payments_core.OrderRequest(
        reference=f"fault-{fault}",
        price=payments_core.Money("5.00", "USD"),
        callback_url="https://m.example/",
    )
    policy = payments_core.RetryPolicy(
        max_attempts=3, initial_delay=0.0, sleep=lambda seconds: None
    )
    config = payments_core.Config(http=HttpSettings(read_timeout=0.2, connect_timeout=5.0))
    with serve(faults=profile) as running:
        faults = running.faults
        assert faults is not None
        with _payments(running.settings, retry=policy, config=config) as payments:
            with pytest.raises(payments_core.PaymentsError) as failed:
                payments.create_order(request)
            faults.profile = FaultProfile()  # the network heals
            order = payments.create_order(request)
            again = payments.create_order(request)
        sessions = running.sandbox.sessions_by_reference()
    judged = failed.value.classification
    assert judged is not None
    assert judged.retryable
    assert faults.counts()[fault] >= 3
    assert again.provider_order_id == order.provider_order_id
    assert sessions[request.reference] == [order.provider_order_id]
