"""Fixtures for the command-line tests: a running sandbox and a clean environment.

The sandbox is opened through the provider's own ``open_sandbox`` hook (a ``SandboxServer`` on a
free loopback port), once per module. Every invocation gets an environment with the ``payments``
and Binance variables cleared, so nothing from the developer's shell leaks in.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from payments_core import ProviderSandbox
from tests.installed import installed_sandbox

#: Every variable the core or an installed provider reads, unset unless a test sets it.
CLEARED: dict[str, str | None] = {
    name: None
    for name in (
        "PAYMENTS_PROVIDERS",
        "PAYMENTS_DEFAULT_PROVIDER",
        "PAYMENTS_DATABASE_URL",
        "PAYMENTS_CONFIG",
        "BINANCE_PAY_API_KEY",
        "BINANCE_PAY_API_SECRET",
        "BINANCE_PAY_BASE_URL",
        "BINANCE_PAY_TERMINAL_TYPE",
        "BINANCE_PAY_TIMESTAMP_TOLERANCE",
        "BINANCE_PAY_CERT_REFRESH_COOLDOWN",
        "BINANCE_PAY_MAX_CALLBACK_BYTES",
        "BINANCE_PAY_GOODS_CATEGORY",
        "STRIPE_API_KEY",
        "STRIPE_BASE_URL",
        "STRIPE_WEBHOOK_SECRET",
        "EXAMPLEPAY_API_KEY",
        "EXAMPLEPAY_API_SECRET",
        "EXAMPLEPAY_BASE_URL",
    )
}


@pytest.fixture(scope="module")
def sandbox() -> Iterator[ProviderSandbox]:
    """A Binance Pay sandbox serving on loopback, with its own random credentials."""
    with installed_sandbox("binance") as running:
        yield running


@pytest.fixture
def runner() -> CliRunner:
    """Click's runner; ``result.stdout`` and ``result.stderr`` are kept apart."""
    return CliRunner()


@pytest.fixture
def fast_retries(tmp_path: Path) -> str:
    """A configuration file whose retry policy gives up within milliseconds."""
    path = tmp_path / "payments.toml"
    path.write_text("[payments.retry]\nmax_attempts = 2\ninitial_delay = 0.01\nmax_delay = 0.01\n")
    return str(path)


@pytest.fixture
def env(sandbox: ProviderSandbox, fast_retries: str, tmp_path: Path) -> dict[str, str | None]:
    """The sandbox's credentials as a real deployment sets them: in the environment."""
    return {
        **CLEARED,
        "PAYMENTS_CONFIG": fast_retries,
        "PAYMENTS_DATABASE_URL": f"sqlite:///{tmp_path / 'ledger.sqlite3'}",
        "BINANCE_PAY_API_KEY": sandbox.settings["api_key"],
        "BINANCE_PAY_API_SECRET": sandbox.settings["api_secret"],
    }


@pytest.fixture
def closed_url() -> Iterator[str]:
    """A loopback URL where nothing listens: the port is bound but never accepts."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
