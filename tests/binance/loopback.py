"""Binance Pay's sandbox served on loopback, and a facade pointed at it: what the tests that run
Binance end to end (the ledger's, the refunds', the telemetry flow's) share.

The credentials are the merchant's the sandbox is made for; they are distinctive, so a scan of
logs and spans for them finds only a leak.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from payments_binance import BinancePayProvider
from payments_binance.sandbox import Sandbox, SandboxConfig, SandboxServer
from payments_core import Config, Money, Order, OrderRequest, Payments, open_ledger

API_KEY = "loopback-test-api-key-7f3a9c"
API_SECRET = "loopback-test-api-secret-51d2e8b0"
NOWHERE = "http://127.0.0.1:9/callbacks/binance"  # never reached: delivery is off


@contextmanager
def sandbox_on_loopback(**config: Any) -> Iterator[tuple[Sandbox, str]]:
    """A sandbox for our merchant, retrying webhooks without delay, served on loopback; yields
    it and its base URL. ``config``: more :class:`SandboxConfig` fields."""
    sandbox = Sandbox(
        SandboxConfig(
            api_key=API_KEY, api_secret=API_SECRET, webhook_retry_schedule=(0,) * 6, **config
        )
    )
    with SandboxServer(sandbox, host="127.0.0.1", port=0) as server:
        yield sandbox, server.base_url


def binance_payments(
    base_url: str,
    ledger_url: str | None,
    *plugins: object,
    settings: Mapping[str, str] | None = None,
    **options: Any,
) -> Payments:
    """A facade with Binance alone, pointed at ``base_url`` with our merchant's credentials (and
    ``settings``), with ``plugins`` and a ledger at ``ledger_url`` (none if it is None).
    ``options``: more :class:`Payments` arguments."""
    return Payments(
        Config(),
        providers={"binance": BinancePayProvider},
        provider_settings={
            "binance": {
                "base_url": base_url,
                "api_key": API_KEY,
                "api_secret": API_SECRET,
                **(settings or {}),
            }
        },
        load_entry_points=False,
        plugins=plugins,
        ledger=None if ledger_url is None else open_ledger(ledger_url),
        **options,
    )


def booking(i: int, callback_url: str) -> OrderRequest:
    return OrderRequest(
        reference=f"booking-{i}",
        price=Money("1.00", "USD"),
        callback_url=callback_url,
        description="LeadsCalendar booking",
    )


def ledger_order(payments: Payments, reference: str) -> Order:
    """The order the facade's ledger holds for Binance and ``reference`` (there must be one)."""
    assert payments.ledger is not None, "the facade has no ledger"
    order = payments.ledger.get_order("binance", reference)
    assert order is not None, f"no order for {reference!r} in the ledger"
    return order


def binance_env(base_url: str) -> dict[str, str]:
    """The environment pointing the command line's Binance at ``base_url``, as our merchant."""
    return {
        "BINANCE_PAY_BASE_URL": base_url,
        "BINANCE_PAY_API_KEY": API_KEY,
        "BINANCE_PAY_API_SECRET": API_SECRET,
    }
