"""``payments refund`` against the sandbox, and ``payments status`` showing what was refunded."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from payments_binance.sandbox import Sandbox
from payments_core import Order
from payments_core.cli import cli
from tests.binance.loopback import (
    NOWHERE,
    binance_env,
    binance_payments,
    booking,
    sandbox_on_loopback,
)


@pytest.fixture
def paid(ledger_url: str) -> Iterator[tuple[Sandbox, dict[str, str | None], Order]]:
    """A sandbox, the environment pointing the command line at it, and a paid order."""
    with sandbox_on_loopback() as (sandbox, base_url):
        yield sandbox, cli_env(base_url, ledger_url), paid_order(sandbox, base_url, ledger_url)


def cli_env(base_url: str, ledger_url: str) -> dict[str, str | None]:
    """The environment pointing the command line at the sandbox and the ledger."""
    return {
        **binance_env(base_url),
        "PAYMENTS_DATABASE_URL": ledger_url,
        "PAYMENTS_PROVIDERS": "binance",
        "PAYMENTS_CONFIG": None,
    }


def paid_order(sandbox: Sandbox, base_url: str, ledger_url: str) -> Order:
    """A booking's order, paid, and the payment known to the ledger."""
    with binance_payments(base_url, ledger_url) as payments:
        order = payments.create_order(booking(1, NOWHERE))
        sandbox.pay(order.provider_order_id)
        payments.reconcile(older_than=timedelta(0))  # learns of the payment
    return order


def run(env: dict[str, str | None], *args: str) -> Result:
    return CliRunner().invoke(cli, list(args), env=env)


def test_a_partial_refund_then_the_rest_and_status_shows_both(
    paid: tuple[Sandbox, dict[str, str | None], Order],
) -> None:
    sandbox, env, order = paid
    first = run(env, "refund", order.reference, "--amount", "0.40", "--reason", "moved")
    assert first.exit_code == 0, first.output
    assert "refund-0.40  succeeded 0.40 USD (0.40000000 USDT)" in first.output
    assert "order partially_refunded: refunded 0.40 USD of 1.00" in first.output
    rest = run(env, "refund", order.reference, "--json")
    assert rest.exit_code == 0, rest.output
    data = json.loads(rest.output)
    assert data["refund"]["amount"] == {"amount": "0.60", "currency": "USD"}
    assert data["refund"]["refund_reference"] == "refund-0.60"
    assert data["order"]["status"] == "refunded"
    assert data["order"]["refunded"] == {"amount": "1.00", "currency": "USD"}
    assert len(sandbox.refunds) == 2

    status = run(env, "status", order.reference)
    assert status.exit_code == 0, status.output
    assert "  refunded          1.00 USD of 1.00" in status.output
    assert "  refunds           2" in status.output
    assert status.output.count("succeeded") == 2
    as_json = json.loads(run(env, "status", order.reference, "--json").output)
    (record,) = as_json["orders"]
    assert [r["refund_reference"] for r in record["refunds"]] == ["refund-0.40", "refund-0.60"]


def test_the_same_refund_twice_is_one_refund_and_too_much_is_refused_unsent(
    paid: tuple[Sandbox, dict[str, str | None], Order],
) -> None:
    sandbox, env, order = paid
    assert run(env, "refund", order.reference, "--amount", "0.40").exit_code == 0
    again = run(env, "refund", order.reference, "--amount", "0.40")
    assert again.exit_code == 0, again.output
    assert len(sandbox.refunds) == 1
    requests = sandbox.stats()["requests"]
    too_much = run(env, "refund", order.reference, "--amount", "0.61", "--refund-reference", "b")
    assert too_much.exit_code == 1
    assert len(too_much.output.strip().splitlines()) == 1
    assert "ValidationError: amount: 0.61 USD exceeds what remains" in too_much.output
    assert sandbox.stats()["requests"] == requests  # refused before anything was sent


def test_a_refund_answered_pending_whose_notice_is_lost_is_settled_by_reconcile(
    tmp_path: Path,
) -> None:
    ledger_url = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    # Refunds stay pending until settled by hand, and no notification is ever delivered.
    with sandbox_on_loopback(refund_settle_delay_s=None, deliver_webhooks=False) as (
        sandbox,
        base_url,
    ):
        order = paid_order(sandbox, base_url, ledger_url)
        env = cli_env(base_url, ledger_url)
        asked = run(env, "refund", order.reference, "--amount", "0.40")
        assert asked.exit_code == 1, asked.output  # still pending
        assert "refund-0.40  pending" in asked.output
        nothing_yet = run(env, "reconcile", "--older-than", "0")
        assert nothing_yet.exit_code == 0, nothing_yet.output
        assert "refund refund-0.40: pending" in nothing_yet.output
        (refund,) = sandbox.refunds
        sandbox.settle_refund(refund.refund_request_id)  # its PAY_REFUND goes nowhere
        settled = run(env, "reconcile", "--older-than", "0", "--json")
    assert settled.exit_code == 0, settled.output
    assert json.loads(settled.output)["refunds"] == [
        {
            "provider": "binance",
            "reference": order.reference,
            "refund_reference": "refund-0.40",
            "status": "succeeded",
        }
    ]
    status = json.loads(run(env, "status", order.reference, "--json").output)
    (record,) = status["orders"]
    assert record["order"]["status"] == "partially_refunded"
    assert record["order"]["refunded"] == {"amount": "0.40", "currency": "USD"}
    assert [r["status"] for r in record["refunds"]] == ["succeeded"]
    again = run(env, "reconcile", "--older-than", "0")
    assert "0 pending refunds checked" in again.output
