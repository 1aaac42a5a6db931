"""``payments sandbox``: the generic ``--provider`` form, and the provider's own command."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from payments_core.cli import cli
from tests.cli.conftest import CLEARED


def test_help_lists_every_command(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["--help"], env=CLEARED)

    listed = {line.split()[0] for line in result.stdout.split("Commands:")[1].splitlines() if line}
    assert {"sandbox", "trigger", "demo", "doctor", "refund", "status"} <= listed


def test_without_provider_the_options_go_to_the_providers_own_sandbox(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["sandbox", "--faults", "meteor"], env=CLEARED)

    assert result.exit_code == 2
    assert "'meteor' is not one of 'none', 'flaky', 'webhooks', 'chaos'" in result.stderr


def test_with_provider_the_providers_own_options_are_refused(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["sandbox", "--provider", "stripe", "--workers", "2"], env=CLEARED)

    assert result.exit_code == 2
    assert "unexpected '--workers 2'" in result.stderr


def test_trigger_without_a_ledger_says_so_and_creates_none(
    runner: CliRunner, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path}/none.sqlite3"
    env = {**CLEARED, "PAYMENTS_SANDBOX_URL": "http://127.0.0.1:9"}

    result = runner.invoke(cli, ["trigger", "pay", "booking-1", "--database-url", url], env=env)

    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: no ledger at {url}: nothing is recorded there")
    assert list(tmp_path.iterdir()) == []
