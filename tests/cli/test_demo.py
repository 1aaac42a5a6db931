"""``payments demo``: a booking paid end to end on the sandbox, through the real callback path."""

from __future__ import annotations

import json
import re
from pathlib import Path

from click.testing import CliRunner

from payments_core import Order, PaymentStatus
from payments_core.cli import cli
from payments_core.ledger import EventRecord, open_ledger
from tests.cli.conftest import CLEARED


def recorded(database: Path, reference: str) -> tuple[Order | None, list[EventRecord]]:
    """The order the demo left for ``reference`` in the ledger file ``database``, and its events."""
    with open_ledger(f"sqlite:///{database}") as ledger:
        return ledger.get_order("binance", reference), ledger.events_for("binance", reference)


def test_demo_reports_the_booking_paid_with_its_timeline_once(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["demo"], env=CLEARED)

    assert result.exit_code == 0, result.output
    assert "Checkout URL: http://127.0.0.1:" in result.stdout
    assert "▀" in result.stdout  # the QR code, drawn with half blocks
    assert "is PAID: 1.00 USD through binance." in result.stdout
    assert re.search(r"^Done in \d+ ms, 6 steps\.$", result.stdout, re.MULTILINE)
    # Each step is shown once, on stderr, as it runs.
    assert re.search(r"^create the 1\.00 USD order \.\.\. \d+ ms$", result.stderr, re.MULTILINE)
    assert "receive, verify and record the callback" not in result.stdout


def test_each_demo_run_has_its_own_ids(runner: CliRunner) -> None:
    first, second = (
        json.loads(runner.invoke(cli, ["demo", "--json"], env=CLEARED).stdout) for _ in range(2)
    )

    for key in ("reference", "provider_order_id", "provider_reference", "event_id"):
        assert first[key] != second[key], key


def test_demo_json_is_one_object_saying_paid(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["demo", "--json"], env=CLEARED)

    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["status"] == "paid"
    assert data["booking"]["status"] == "confirmed"
    assert data["booking"]["price"] == {"amount": "1.00", "currency": "USD"}
    assert data["reference"] == data["booking"]["id"]
    steps = [step["step"] for step in data["timeline"]]
    assert steps.index("pay as the sandbox's payer") < steps.index(
        "receive, verify and record the callback"
    )
    assert data["total_ms"] > 0


def test_demo_records_the_verified_callback_in_the_named_ledger(
    runner: CliRunner, tmp_path: Path
) -> None:
    database = tmp_path / "demo.sqlite3"

    url = f"sqlite:///{database}"

    result = runner.invoke(cli, ["demo", "--json", "--database-url", url], env=CLEARED)

    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["database"] == url
    order, events = recorded(database, data["reference"])
    assert order is not None
    assert order.status is PaymentStatus.PAID
    assert [(event.event_id, event.applied) for event in events] == [(data["event_id"], True)]


def test_demo_of_an_unknown_provider_fails_in_one_line(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["demo", "--provider", "none-such"], env=CLEARED)

    assert result.exit_code == 1
    assert result.stderr.startswith("Error: ProviderNotFound: no provider named 'none-such'")
    assert result.stderr.count("\n") == 1


def test_interactive_demo_leaves_paying_to_a_person(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["demo", "--interactive", "--timeout", "0.2"], env=CLEARED)

    assert result.exit_code == 1
    assert "Open the checkout URL and press Pay" in result.stderr
    assert "pay as the sandbox's payer" not in result.stderr
    assert result.stderr.splitlines()[-1].startswith("Error: no verified callback for order ")


def test_demo_refund_shows_order_paid_then_refunded_with_the_ledger_rows(
    runner: CliRunner, tmp_path: Path
) -> None:
    database = tmp_path / "demo.sqlite3"

    result = runner.invoke(
        cli, ["demo", "--refund", "--json", "--database", str(database)], env=CLEARED
    )

    assert result.exit_code == 0, result.output
    assert "--database PATH is deprecated: use --database-url" in result.stderr
    data = json.loads(result.stdout)
    assert data["status"] == "refunded"
    assert data["booking"]["status"] == "cancelled"
    assert data["refund"]["status"] == "succeeded"
    assert data["refund"]["amount"] == {"amount": "1.00", "currency": "USD"}
    rows = data["ledger"]
    assert rows["order"]["refunded"] == {"amount": "1.00", "currency": "USD"}
    (refund,) = rows["refunds"]
    assert refund["provider_refund_id"] == data["refund"]["provider_refund_id"]
    # The payment's callback and the refund's notification, each recorded once; the refund
    # counted once, by its notification or by its own answer, whichever came first (the
    # answer's move is recorded under an event id of its own, then the notice is stale).
    answer_id = f"binance:refund:{data['reference']}:{data['refund']['refund_reference']}"
    by_answer = [e for e in rows["events"] if e["event_id"] == answer_id]
    notices = [e for e in rows["events"] if e["event_id"] != answer_id]
    assert [e["status"] for e in notices] == ["paid", "refunded"]
    assert notices[1]["flag"] == ("stale" if by_answer else None)
    assert [(e["status"], e["flag"]) for e in by_answer] in ([], [("refunded", None)])
    order, events = recorded(database, data["reference"])
    assert order is not None
    assert order.status is PaymentStatus.REFUNDED
    assert [event.status for event in events if event.event_id != answer_id] == [
        PaymentStatus.PAID,
        PaymentStatus.REFUNDED,
    ]


def test_demo_refund_prints_the_ledger_rows(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["demo", "--refund"], env=CLEARED)

    assert result.exit_code == 0, result.output
    assert "is CANCELLED: 1.00 USD refunded (succeeded)" in result.stdout
    rows = result.stdout.split("Ledger rows")[1].split("Done in")[0]
    assert "refunded  1.00 USD  refunded 1.00 USD" in rows
    assert "succeeded  1.00 USD (1.00000000 USDT)" in rows
    assert "cancel the booking: refund 1.00 USD ..." in result.stderr
