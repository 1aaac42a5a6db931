"""``payments status`` and ``payments serve`` (``payments reconcile``: test_sandbox_ledger.py)."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import attrs
from click.testing import CliRunner

from payments_core import Ledger, Money, PaymentStatus, open_ledger
from payments_core.cli import cli
from tests.binance.loopback import (
    binance_env,
    binance_payments,
    booking,
    sandbox_on_loopback,
)

from .crash_app import read_lines
from .fakes import event_for, order_for


def test_status_shows_the_order_and_its_events(ledger_url: str, ledger: Ledger) -> None:
    ledger.record_order(order_for("booking-1"))
    ledger.apply_event(attrs.evolve(event_for("booking-1"), transaction_id="tx-1"))
    ledger.apply_event(event_for("booking-1", PaymentStatus.CLOSED))
    result = CliRunner().invoke(cli, ["status", "booking-1", "--database-url", ledger_url])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "fake order for booking-1: paid"
    assert "  amount            1.00 USD" in lines
    assert "  transaction id    tx-1" in lines
    assert "  events            2" in lines
    assert re.search(r"paid\s+applied\s+fake:\d+:paid$", lines[-2])
    assert re.search(r"closed\s+not applied: stale\s+fake:\d+:closed$", lines[-1])


def test_status_as_json_keeps_money_exact(ledger_url: str, ledger: Ledger) -> None:
    ledger.record_order(attrs.evolve(order_for("booking-1"), amount=Money("0.00000001", "BTC")))
    env = {"PAYMENTS_DATABASE_URL": ledger_url, "PAYMENTS_CONFIG": None}
    result = CliRunner().invoke(cli, ["status", "booking-1", "--json"], env=env)
    assert result.exit_code == 0, result.output
    (record,) = json.loads(result.output)["orders"]
    assert record["order"]["amount"] == {"amount": "0.00000001", "currency": "BTC"}
    assert record["events"] == []


def test_status_of_an_unknown_reference_is_one_line_and_fails(
    ledger_url: str, ledger: Ledger
) -> None:
    ledger.record_order(order_for("booking-1"))
    runner = CliRunner()
    missing = runner.invoke(cli, ["status", "booking-2", "--database-url", ledger_url])
    elsewhere = runner.invoke(
        cli, ["status", "booking-1", "--provider", "binance", "--database-url", ledger_url]
    )
    assert missing.exit_code == elsewhere.exit_code == 1
    assert len(missing.output.strip().splitlines()) == 1
    assert "no order for reference 'booking-2'" in missing.output
    assert "at provider 'binance'" in elsewhere.output


def test_a_bad_database_url_is_one_line_and_fails() -> None:
    result = CliRunner().invoke(cli, ["status", "x", "--database-url", "mysql://db/x"])
    assert result.exit_code == 1
    assert result.output.strip().startswith("Error: ConfigurationError:")


def test_payments_serve_applies_the_sandboxs_webhooks_and_stops_cleanly(ledger_url: str) -> None:
    with sandbox_on_loopback() as (sandbox, provider_url):
        env = {
            "PATH": "",
            "PAYMENTS_PROVIDERS": "binance",
            **binance_env(provider_url),
        }
        command = [sys.executable, "-c", "from payments_core.cli import main; main()"]
        server = subprocess.Popen(  # noqa: S603 - this interpreter, our own arguments
            [*command, "serve", "--port", "0", "--database-url", ledger_url],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert server.stderr is not None
            banner = [server.stderr.readline() for _ in range(2)]
            for line in server.stderr:
                address = re.search(r"Uvicorn running on (http://127\.0\.0\.1:\d+)", line)
                if address:
                    break
            assert address, banner
            with binance_payments(provider_url, ledger_url) as payments:
                order = payments.create_order(booking(1, f"{address[1]}/callbacks/binance"))
            sandbox.pay(order.provider_order_id)
            sandbox.wait_for_webhooks_sync(timeout=30)
        finally:
            server.send_signal(signal.SIGINT)
            _, rest = server.communicate(timeout=30)
    assert server.returncode == 0, rest
    assert banner[0].startswith("ledger ")
    assert "providers: binance" in banner[0]
    assert [attempt.ok for attempt in sandbox.webhook_log] == [True]
    with open_ledger(ledger_url) as ledger:
        paid = ledger.get_order("binance", "booking-1")
    assert paid is not None
    assert paid.status is PaymentStatus.PAID


def test_a_plugin_that_cannot_be_loaded_is_a_usage_error(ledger_url: str) -> None:
    runner = CliRunner()
    for spec in ("no_such_module_here", "payments_core:NoSuchName"):
        result = runner.invoke(
            cli, ["reconcile", "--plugin", spec, "--database-url", ledger_url], env={}
        )
        assert result.exit_code == 2, result.output
        assert f"cannot load {spec!r}" in result.output


def test_reconcile_announces_changes_left_unannounced_for_over_a_minute(
    ledger_url: str, tmp_path: Path
) -> None:
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    with open_ledger(ledger_url, clock=lambda: an_hour_ago) as old:
        old.record_order(order_for("booking-1"))
        old.apply_event(event_for("booking-1"))  # committed, then the process died
    with open_ledger(ledger_url) as fresh:
        fresh.record_order(order_for("booking-2"))
        fresh.apply_event(event_for("booking-2"))  # another process may be announcing it now
    env = {"PAYMENTS_CONFIG": None, "PAYMENTS_CRASH_APP_DIR": str(tmp_path)}
    args = ["reconcile", "--database-url", ledger_url, "--plugin", "tests.ledger.crash_app:Effects"]
    first = CliRunner().invoke(cli, args, env=env)
    second = CliRunner().invoke(cli, args, env=env)
    assert first.exit_code == second.exit_code == 0, first.output
    assert read_lines(tmp_path / "calls.log") == [event_for("booking-1").event_id]
    with open_ledger(ledger_url) as ledger:
        left = [change.reference for change in ledger.unannounced_changes()]
    assert left == ["booking-2"]
