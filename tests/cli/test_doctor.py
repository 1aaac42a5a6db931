"""``payments doctor``: configuration report and a connection check, never showing a secret."""

from __future__ import annotations

from click.testing import CliRunner

from payments_core import ProviderSandbox
from payments_core.cli import cli


def test_doctor_reaches_the_sandbox_with_its_credentials(
    runner: CliRunner, sandbox: ProviderSandbox, env: dict[str, str | None]
) -> None:
    result = runner.invoke(
        cli,
        ["doctor", "--provider", "binance"],
        env={**env, "BINANCE_PAY_BASE_URL": sandbox.base_url},
    )

    assert result.exit_code == 0, result.output
    assert "api_key                    set (masked), from BINANCE_PAY_API_KEY" in result.stdout
    assert "api_secret                 set (masked), from BINANCE_PAY_API_SECRET" in result.stdout
    assert f"base_url                   {sandbox.base_url}, from BINANCE_PAY_BASE_URL" in (
        result.stdout
    )
    assert "connection                 ok: 1 webhook certificate(s)" in result.stdout


def test_doctor_never_prints_a_credential(
    runner: CliRunner, sandbox: ProviderSandbox, env: dict[str, str | None]
) -> None:
    for key in ("api_key", "api_secret"):
        wrong = {**env, "BINANCE_PAY_BASE_URL": sandbox.base_url, "BINANCE_PAY_API_KEY": "k" * 40}
        result = runner.invoke(cli, ["doctor"], env=wrong)
        assert sandbox.settings[key] not in result.output
        assert "k" * 40 not in result.output


def test_doctor_fails_in_one_line_when_the_provider_refuses_the_key(
    runner: CliRunner, sandbox: ProviderSandbox, env: dict[str, str | None]
) -> None:
    wrong = {**env, "BINANCE_PAY_BASE_URL": sandbox.base_url, "BINANCE_PAY_API_KEY": "wrong"}

    result = runner.invoke(cli, ["doctor", "--provider", "binance"], env=wrong)

    assert result.exit_code == 1
    assert result.stderr == (
        "Error: binance: connection check failed (authentication): ProviderError: "
        "certificates: Binance answered 400004 INVALID_API_KEY_OR_IP: "
        "API key unknown or IP not allowed\n"
    )


def test_doctor_fails_in_one_line_when_the_provider_is_unreachable(
    runner: CliRunner, closed_url: str, env: dict[str, str | None]
) -> None:
    result = runner.invoke(cli, ["doctor"], env={**env, "BINANCE_PAY_BASE_URL": closed_url})

    assert result.exit_code == 1
    assert result.stderr.startswith(
        "Error: binance: connection check failed (network): ConnectError: "
    )
    assert result.stderr.count("\n") == 1


def test_doctor_names_the_missing_credentials_as_configuration(
    runner: CliRunner, env: dict[str, str | None]
) -> None:
    bare = {**env, "BINANCE_PAY_API_KEY": None, "BINANCE_PAY_API_SECRET": "only-the-secret"}

    result = runner.invoke(cli, ["doctor"], env=bare)

    assert result.exit_code == 1
    assert "api_key                    not set (BINANCE_PAY_API_KEY)" in result.stdout
    assert result.stderr.startswith(
        "Error: binance: connection check failed (configuration): ConfigurationError: "
    )
    assert "BINANCE_PAY_API_KEY" in result.stderr
    assert result.stderr.count("\n") == 1


def test_doctor_reports_providers_without_settings_as_not_configured(
    runner: CliRunner, env: dict[str, str | None]
) -> None:
    bare = {**env, "BINANCE_PAY_API_KEY": None, "BINANCE_PAY_API_SECRET": None}

    result = runner.invoke(cli, ["doctor"], env=bare)

    assert result.exit_code == 0, result.output
    assert "connection                 not checked: not configured" in result.stdout
    assert "no provider is configured" in result.stdout


def test_doctor_checks_a_named_provider_even_without_settings(
    runner: CliRunner, env: dict[str, str | None]
) -> None:
    bare = {**env, "BINANCE_PAY_API_KEY": None, "BINANCE_PAY_API_SECRET": None}

    result = runner.invoke(cli, ["doctor", "--provider", "binance"], env=bare)

    assert result.exit_code == 1
    assert "(configuration): ConfigurationError: " in result.stderr
