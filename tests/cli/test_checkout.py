"""``payments checkout``: the real-credentials path, pointed at the sandbox by ``--base-url``."""

from __future__ import annotations

import json

from click.testing import CliRunner

from payments_core import ProviderSandbox
from payments_core.cli import cli

CALLBACK = "https://leadscalendar.example/callbacks/binance"


def checkout(reference: str, base_url: str, *extra: str) -> list[str]:
    """The command line a merchant types, with only the base URL chosen by the test."""
    return [
        "checkout",
        "--provider",
        "binance",
        "--amount",
        "1.00",
        "--currency",
        "USD",
        "--reference",
        reference,
        "--callback-url",
        CALLBACK,
        "--base-url",
        base_url,
        *extra,
    ]


def test_checkout_creates_the_order_in_the_sandbox(
    runner: CliRunner, sandbox: ProviderSandbox, env: dict[str, str | None]
) -> None:
    result = runner.invoke(cli, checkout("booking-cli-1", sandbox.base_url), env=env)

    assert result.exit_code == 0, result.output
    assert "order created for booking-cli-1: 1.00 USD" in result.stdout
    assert f"checkout URL      {sandbox.base_url}/sandbox/checkout/" in result.stdout


def test_checkout_json_names_the_order_the_sandbox_holds(
    runner: CliRunner, sandbox: ProviderSandbox, env: dict[str, str | None]
) -> None:
    result = runner.invoke(cli, checkout("booking-cli-2", sandbox.base_url, "--json"), env=env)

    assert result.exit_code == 0, result.output
    order = json.loads(result.stdout)
    assert order["reference"] == "booking-cli-2"
    assert order["status"] == "pending"
    assert order["amount"] == {"amount": "1.00", "currency": "USD"}
    assert sandbox.checkout_url(order["provider_order_id"]) == order["checkout_url"]


def test_checkout_records_the_order_where_payments_status_finds_it(
    runner: CliRunner, sandbox: ProviderSandbox, env: dict[str, str | None]
) -> None:
    created = runner.invoke(cli, checkout("booking-cli-7", sandbox.base_url, "--json"), env=env)
    again = runner.invoke(cli, checkout("booking-cli-7", sandbox.base_url, "--json"), env=env)
    status = runner.invoke(cli, ["status", "booking-cli-7", "--json"], env=env)

    assert status.exit_code == 0, status.output
    [recorded] = json.loads(status.stdout)["orders"]
    assert recorded["order"]["status"] == "pending"
    first, second = json.loads(created.stdout), json.loads(again.stdout)
    assert first["provider_order_id"] == second["provider_order_id"]
    assert recorded["order"]["provider_order_id"] == first["provider_order_id"]


def test_wrong_credentials_give_one_line_naming_the_authentication_failure(
    runner: CliRunner, sandbox: ProviderSandbox, env: dict[str, str | None]
) -> None:
    wrong = {**env, "BINANCE_PAY_API_KEY": "not-the-sandbox-key"}

    result = runner.invoke(cli, checkout("booking-cli-3", sandbox.base_url), env=wrong)

    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("Error: ProviderError: ")
    assert "400004" in result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_unreachable_provider_gives_one_line(
    runner: CliRunner, closed_url: str, env: dict[str, str | None]
) -> None:
    result = runner.invoke(cli, checkout("booking-cli-4", closed_url), env=env)

    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("Error: ConnectError: create_order to binance")


def test_bad_amount_gives_one_line_naming_the_field(
    runner: CliRunner, closed_url: str, env: dict[str, str | None]
) -> None:
    args = checkout("booking-cli-5", closed_url)
    args[args.index("1.00")] = "1.001"

    result = runner.invoke(cli, args, env=env)

    assert result.exit_code == 1
    assert result.stderr == (
        "Error: ValidationError: amount: 1.001 has more decimal places than USD allows (2)\n"
    )


def test_missing_credentials_say_which_variables_to_set(
    runner: CliRunner, sandbox: ProviderSandbox, env: dict[str, str | None]
) -> None:
    bare = {**env, "BINANCE_PAY_API_KEY": None, "BINANCE_PAY_API_SECRET": None}

    result = runner.invoke(cli, checkout("booking-cli-6", sandbox.base_url), env=bare)

    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1
    assert "BINANCE_PAY_API_KEY" in result.stderr
    assert "BINANCE_PAY_API_SECRET" in result.stderr
