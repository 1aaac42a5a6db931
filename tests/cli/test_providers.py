"""``payments providers``: what the entry points offer and what the allow-list lets load."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from payments_core import ProviderNotFound
from payments_core.cli import cli
from payments_core.plugins import PluginHost
from tests.cli.conftest import CLEARED


def test_providers_lists_binance_from_its_entry_point(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["providers"], env=CLEARED)

    assert result.exit_code == 0, result.output
    rows = {line.split("\t")[0]: line.split("\t")[1:] for line in result.stdout.splitlines()}
    title, capabilities = rows["binance"]
    assert title == "Binance Pay"
    assert "create_order" in capabilities.split(", ")


def test_providers_json_describes_binance(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["providers", "--json"], env=CLEARED)

    data = json.loads(result.stdout)
    described = {provider["name"]: provider for provider in data["providers"]}
    assert described["binance"]["display_name"] == "Binance Pay"
    assert "USD" in described["binance"]["currencies"]
    assert described["binance"]["settings"]["api_secret"] == "BINANCE_PAY_API_SECRET"
    assert data["skipped"] == {}


def test_an_allow_list_loads_only_what_it_names(runner: CliRunner) -> None:
    installed = json.loads(runner.invoke(cli, ["providers", "--json"], env=CLEARED).stdout)
    others = {p["name"] for p in installed["providers"]} - {"binance"}

    result = runner.invoke(
        cli, ["providers", "--json"], env={**CLEARED, "PAYMENTS_PROVIDERS": "binance"}
    )

    data = json.loads(result.stdout)
    assert [provider["name"] for provider in data["providers"]] == ["binance"]
    assert data["skipped"] == dict.fromkeys(others, "not in the allow-list (PAYMENTS_PROVIDERS)")


def test_an_allow_list_naming_nothing_installed_lists_nothing_and_says_why(
    runner: CliRunner,
) -> None:
    result = runner.invoke(cli, ["providers"], env={**CLEARED, "PAYMENTS_PROVIDERS": "none-such"})

    assert result.exit_code == 0
    assert result.stdout == ""
    assert "binance: not in the allow-list (PAYMENTS_PROVIDERS)" in result.stderr
    assert "none-such: allowed, but no installed package provides it" in result.stderr


def test_a_known_provider_not_installed_is_named_with_its_distribution() -> None:
    host = PluginHost()  # nothing loaded: as if only the core were installed

    with pytest.raises(ProviderNotFound, match=r"pip install payments-stripe provides it"):
        host.provider("stripe")
