"""A newcomer's first commands, as the README writes them, with all three providers installed
(the README's test command installs Binance Pay, Stripe and the example provider)."""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

from click.testing import CliRunner

from payments_core import Money, Order, PaymentStatus, ProviderSandbox
from payments_core.cli import cli
from payments_core.ledger import open_ledger

README = Path(__file__).parents[2] / "README.md"


def _readme_command(name: str) -> list[str]:
    """The arguments of the README's ``payments NAME ...`` line, as a shell would split them."""
    line = next(
        line for line in README.read_text().splitlines() if line.startswith(f"payments {name} ")
    )
    return shlex.split(line.partition("#")[0])[1:]


def test_all_three_providers_are_installed(runner: CliRunner, env: dict[str, str | None]) -> None:
    result = runner.invoke(cli, ["providers"], env=env)

    assert result.exit_code == 0, result.output
    assert [line.split("\t")[0] for line in result.stdout.splitlines()] == [
        "binance",
        "example",
        "stripe",
    ]


def test_the_readmes_refund_line_runs_as_written(
    runner: CliRunner, sandbox: ProviderSandbox, env: dict[str, str | None]
) -> None:
    env = {**env, "BINANCE_PAY_BASE_URL": sandbox.base_url}
    created = runner.invoke(
        cli,
        [
            "checkout",
            "--provider",
            "binance",
            "--amount",
            "1.00",
            "--reference",
            "booking-42",
            "--callback-url",
            "https://leadscalendar.example/callbacks/binance",
            "--json",
        ],
        env=env,
    )
    assert created.exit_code == 0, created.output
    sandbox.pay(re.search(r'"provider_order_id": "(\d+)"', created.stdout)[1])  # type: ignore[index]
    learned = runner.invoke(cli, ["reconcile", "--older-than", "0"], env=env)
    assert learned.exit_code == 0, learned.output

    result = runner.invoke(cli, _readme_command("refund"), env=env)

    assert _readme_command("refund") == [
        "refund",
        "booking-42",
        "--amount",
        "0.40",
        "--reason",
        "late cancellation",
    ]
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("binance refund of booking-42: refund-0.40  succeeded 0.40 USD")
    url = env["PAYMENTS_DATABASE_URL"]
    assert url is not None
    with open_ledger(url) as ledger:
        order = ledger.get_order("binance", "booking-42")
    assert order is not None
    assert order.status is PaymentStatus.PARTIALLY_REFUNDED


def test_a_reference_at_two_providers_asks_which(
    runner: CliRunner, env: dict[str, str | None]
) -> None:
    url = env["PAYMENTS_DATABASE_URL"]
    assert url is not None
    with open_ledger(url) as ledger:
        for provider in ("stripe", "binance"):
            ledger.record_order(
                Order(
                    provider=provider,
                    reference="booking-7",
                    provider_order_id=f"{provider}-1",
                    provider_reference=f"{provider}-m1",
                    status=PaymentStatus.PAID,
                    amount=Money("1.00", "USD"),
                )
            )

    result = runner.invoke(cli, ["refund", "booking-7"], env=env)

    assert result.exit_code == 1
    assert result.stderr == (
        "Error: reference 'booking-7' has orders at several providers (binance, stripe): "
        "choose one with --provider NAME\n"
    )


def test_refund_of_an_unknown_reference_names_the_ledger(
    runner: CliRunner, env: dict[str, str | None]
) -> None:
    url = env["PAYMENTS_DATABASE_URL"]
    assert url is not None
    open_ledger(url).close()

    result = runner.invoke(cli, ["refund", "booking-8"], env=env)

    assert result.exit_code == 1
    assert result.stderr == f"Error: no order for reference 'booking-8' in the ledger at {url}\n"


def test_doctor_passes_with_binance_configured_and_the_others_not(
    runner: CliRunner, sandbox: ProviderSandbox, env: dict[str, str | None]
) -> None:
    result = runner.invoke(cli, ["doctor"], env={**env, "BINANCE_PAY_BASE_URL": sandbox.base_url})

    assert result.exit_code == 0, result.output
    checks = re.findall(r"^  connection +(.*)$", result.stdout, re.MULTILINE)
    assert len(checks) == 3
    assert checks[0].startswith("ok: ")  # binance
    assert checks[1:] == ["not checked: not configured"] * 2  # example, stripe


def test_status_of_an_unknown_reference_in_an_empty_folder_creates_nothing(
    runner: CliRunner, env: dict[str, str | None], tmp_path: Path
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    env = {**env, "PAYMENTS_DATABASE_URL": None}
    before = Path.cwd()
    os.chdir(empty)
    try:
        result = runner.invoke(cli, ["status", "NOSUCH"], env=env)
    finally:
        os.chdir(before)

    assert result.exit_code == 1
    assert result.stderr == (
        "Error: no ledger at sqlite:///payments.sqlite3: nothing is recorded there "
        "(--database-url or PAYMENTS_DATABASE_URL names the ledger)\n"
    )
    assert list(empty.iterdir()) == []
