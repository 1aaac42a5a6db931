"""R1 for Stripe: the same fault mix, sizes, policy and checks as for Binance Pay.

The ``flaky`` fault profile is the R1 mix, with the timeout's hold (0.6 s) longer
than the client's read timeout (0.2 s). Stripe has no "duplicate order" refusal: a repeated
create carries the same ``Idempotency-Key`` and is answered with the same session, and a create
whose answer was lost is found by a query (the reference is the session's
``client_reference_id``) or answered again from the key. Reduced size by default (200 orders
per HTTP backend); ``PAYMENTS_FULL=1`` runs the full 2,000.
"""

from __future__ import annotations

import collections
import time

import attrs
import pytest
from payments_stripe import StripeProvider
from payments_stripe.sandbox import StripeSandbox
from payments_stripe.sandbox_server import serve

from payments_core import Config, Order, Payments
from payments_core.config import HttpSettings
from payments_core.testing.sandbox import PROFILES, REQUEST_FAULTS, RunningSandbox

from .conftest import Leaks
from .test_create_under_faults import (
    HOLD,
    ORDERS,
    READ_TIMEOUT,
    RETRY_AFTER,
    check_outcomes,
    create_in_passes,
    policy,
)


def stripe_payments(running: RunningSandbox[StripeSandbox], backend: str) -> Payments:
    return Payments(
        Config(http=HttpSettings(read_timeout=READ_TIMEOUT, connect_timeout=5.0)),
        providers={"stripe": StripeProvider},
        load_entry_points=False,
        provider_settings={"stripe": running.settings},
        retry=policy(),
        async_http=backend,
    )


@pytest.mark.parametrize("backend", ["aiohttp", "httpx"])
def test_every_reference_ends_with_exactly_one_stripe_session(leaks: Leaks, backend: str) -> None:
    profile = attrs.evolve(PROFILES["flaky"], timeout_delay_s=HOLD, retry_after_s=RETRY_AFTER)
    references = [f"r1-stripe-{backend}-{i:05d}" for i in range(ORDERS)]
    started = time.perf_counter()
    with serve(faults=profile, seed=ORDERS) as running:
        leaks.add(running.sandbox.api_key, *running.sandbox.webhook_secrets)
        outcomes = create_in_passes(lambda: stripe_payments(running, backend), references)
    # The server has stopped: held requests are over, nothing changes at the sandbox now.
    elapsed = time.perf_counter() - started
    errors = check_outcomes(outcomes)

    # Exactly one session per reference at the sandbox, and it is the one the caller got.
    sessions = running.sandbox.sessions_by_reference()
    assert set(sessions) == set(references)
    assert max(len(ids) for ids in sessions.values()) == 1
    for outcome in outcomes:
        if isinstance(outcome.result, Order):
            assert outcome.result.reference == outcome.reference
            assert [outcome.result.provider_order_id] == sessions[outcome.reference]

    faults = running.faults
    assert faults is not None
    assert set(faults.counts()) == {kind.value for kind in REQUEST_FAULTS}  # every fault struck
    print(  # shown with -s: the figures the docs quote
        f"\nR1 stripe {backend}: {ORDERS} orders, {len(sessions)} sessions, "
        f"{max(len(ids) for ids in sessions.values())} max per reference, {len(errors)} calls "
        f"ended in a typed error "
        f"({collections.Counter(type(o.result).__name__ for o in errors)}), "
        f"{running.sandbox.replays} creates answered from the idempotency key, "
        f"{running.sandbox.requests} requests, faults {dict(faults.counts())}, {elapsed:.1f} s"
    )
