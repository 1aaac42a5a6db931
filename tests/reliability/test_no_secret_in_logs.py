"""R6: representative flows at DEBUG, chosen for their error paths; no secret in any log line.

The suite's autouse capture (conftest) checks every test of this directory at teardown; this
file runs the flows that log the most: retries under faults (blocking and asynchronous, both
backends), query and close, a verified and a refused callback, the certificates fetch, a
missing-credentials error. It also shows that the capture is not vacuous: it sees the lines of
those flows, and it does catch a secret that an unfiltered logger lets through.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

import attrs
import pytest

from payments_binance import protocol
from payments_binance.sandbox.webhooks import signed_headers
from payments_core import (
    CallbackVerificationError,
    ConfigurationError,
    Money,
    OrderRequest,
    Payments,
    PaymentsError,
    RetryPolicy,
)
from payments_core.testing.sandbox import PROFILES

from .conftest import API_SECRET, CaptureAll, Harness, Leaks


def no_wait_policy() -> RetryPolicy:
    async def no_async_wait(_: float) -> None:
        await asyncio.sleep(0)

    return RetryPolicy(
        max_attempts=6,
        initial_delay=0,
        max_delay=0,
        sleep=lambda _: None,
        async_sleep=no_async_wait,
    )


def order(reference: str) -> OrderRequest:
    return OrderRequest(
        reference=reference,
        price=Money("9.99", "USD"),
        callback_url="https://shop.example/callbacks/binance",
    )


def test_flows_at_debug_log_no_secret(
    start_sandbox: Callable[..., Harness], debug_logs: CaptureAll, leaks: Leaks
) -> None:
    profile = attrs.evolve(PROFILES["flaky"], timeout_delay_s=0.5)
    harness = start_sandbox(faults=profile, seed=6)
    payments = harness.payments(retry=no_wait_policy(), read_timeout=0.2)
    # A typed error after the last attempt is logged like the rest: carry on.
    for i in range(30):
        with contextlib.suppress(PaymentsError):
            payments.create_order(order(f"r6-sync-{i}"))
    with contextlib.suppress(PaymentsError):
        payments.query_order("r6-sync-0")
    with contextlib.suppress(PaymentsError):
        payments.close_order("r6-sync-1")

    for backend in ("httpx", "aiohttp"):
        facade = harness.payments(retry=no_wait_policy(), read_timeout=0.2, async_http=backend)

        async def run(facade: Payments = facade, backend: str = backend) -> None:
            try:
                for i in range(20):
                    with contextlib.suppress(PaymentsError):
                        await facade.create_order_async(order(f"r6-{backend}-{i}"))
            finally:
                await facade.aclose()

        asyncio.run(run())

    # Callbacks: the first fetches the certificates; a forged one is refused.
    body = b'{"bizType":"PAY","bizIdStr":"1","bizStatus":"PAY_SUCCESS","data":"{\\"a\\":1}"}'
    headers = signed_headers(harness.sandbox.keys, body, time.time_ns() // 1_000_000)
    leaks.add(headers[protocol.HEADER_SIGNATURE])
    with pytest.raises(PaymentsError):
        payments.handle_callback("binance", headers, body)  # verified, then malformed data
    forged = {**headers, protocol.HEADER_SIGNATURE: headers[protocol.HEADER_SIGNATURE][::-1]}
    with pytest.raises(CallbackVerificationError):
        payments.handle_callback("binance", forged, body)

    # Credentials missing: the error names the setting, never a value.
    bare = harness.payments(api_key="", api_secret="")
    with pytest.raises(ConfigurationError) as missing:
        bare.create_order(order("r6-no-credentials"))
    logging.getLogger("payments_core").error("refused: %s", missing.value)

    # The capture saw these flows: transport lines, retries, the certificates fetch.
    text = debug_logs.text
    assert "payments_core.transport DEBUG binance POST" in text
    assert "retrying in" in text
    assert "is not cached: fetching" in text  # the certificates fetch
    assert {"httpx", "payments_core.retry", "payments_binance.webhooks"} <= debug_logs.names
    assert API_SECRET not in text  # the autouse check covers every registered value too


def test_the_capture_catches_a_leak(leaks: Leaks) -> None:
    handler = CaptureAll()
    loose = logging.getLogger("r6.unfiltered.third.party")
    loose.addHandler(handler)
    loose.propagate = False  # kept away from the suite's own capture, which would fail
    try:
        loose.warning("oops %s", API_SECRET)
    finally:
        loose.removeHandler(handler)
        loose.propagate = True
    assert leaks.found_in(handler.text)
