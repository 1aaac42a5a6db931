"""Fixtures for the Stripe provider's tests: a facade wired to an in-process sandbox."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest
from payments_stripe import StripeProvider
from payments_stripe.sandbox import StripeSandbox, sandbox_transport
from payments_stripe.sandbox_server import new_sandbox

from payments_core import Ledger, Payments, RetryPolicy


@pytest.fixture
def sandbox() -> StripeSandbox:
    """A sandbox that keeps its webhooks (``sandbox.deliveries``) instead of posting them."""
    return new_sandbox(deliver=lambda delivery: None)


def facade(
    sandbox: StripeSandbox,
    *,
    secret: str | None = None,
    attempts: int = 1,
    ledger: Ledger | None = None,
    transport: httpx.MockTransport | None = None,
) -> Payments:
    """A facade with the Stripe provider alone, talking to ``sandbox`` in process (through
    ``transport`` if given)."""
    transport = transport or sandbox_transport(sandbox)
    return Payments(
        providers={"stripe": StripeProvider},
        provider_settings={
            "stripe": {
                "base_url": sandbox.base_url,
                "api_key": sandbox.api_key,
                "webhook_secret": secret or sandbox.webhook_secrets[0],
            }
        },
        load_entry_points=False,
        retry=RetryPolicy(max_attempts=attempts, initial_delay=0.0, sleep=lambda s: None),
        transport=transport,
        async_transport=transport,
        ledger=ledger,
    )


Facade = Callable[..., Payments]


@pytest.fixture
def make_facade() -> Iterator[Facade]:
    """:func:`facade`, with every facade it made closed afterwards."""
    made: list[Payments] = []

    def make(sandbox: StripeSandbox, **options: object) -> Payments:
        made.append(facade(sandbox, **options))  # type: ignore[arg-type]
        return made[-1]

    yield make
    for payments in made:
        payments.close()


@pytest.fixture
def payments(sandbox: StripeSandbox) -> Iterator[Payments]:
    with facade(sandbox) as opened:
        yield opened
