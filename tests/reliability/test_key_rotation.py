"""R7: the sandbox rotates its webhook key; callbacks signed with either key verify, and a new
serial costs one certificates refresh, not one per callback.

The facade's clock is the wall clock (callback timestamps are real) with a monotonic clock the
test moves past the refresh cool-down, so that a fetch is allowed exactly when the test says.
Certificates fetches are counted at the sandbox: while callbacks alone are being handled, every
merchant API request the sandbox sees is a certificates fetch.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx

from payments_binance import protocol
from payments_binance.sandbox.webhooks import notification_body, signed_headers
from payments_binance.settings import DEFAULT_CERT_REFRESH_COOLDOWN
from payments_core import CallbackDeferred, Money, OrderRequest, PaymentStatus

from .conftest import Harness, MovableClock
from .receiver import CallbackReceiver

BURST = 40


def requests_seen(harness: Harness) -> int:
    count = harness.sandbox.stats()["requests"]
    assert isinstance(count, int)
    return count


def test_rotation_costs_one_refresh_and_both_keys_verify(
    start_sandbox: Callable[..., Harness],
) -> None:
    harness = start_sandbox(deliver_webhooks=True, webhook_retry_schedule=(0, 0, 0, 0, 0))
    sandbox = harness.sandbox
    clock = MovableClock()
    payments = harness.payments(clock=clock)
    creator = harness.payments()
    with CallbackReceiver(payments) as receiver:
        orders = [
            creator.create_order(
                OrderRequest(
                    reference=f"r7-{i}", price=Money("3.00", "USD"), callback_url=receiver.url
                )
            )
            for i in range(2 * BURST + 1)
        ]
        first_key = sandbox.certificate_serial

        # A cold cache: the first callback fetches the certificates once.
        before = requests_seen(harness)
        sandbox.pay(orders[0].provider_order_id)
        sandbox.wait_for_webhooks_sync(timeout=30)
        assert requests_seen(harness) - before == 1

        # The sandbox publishes a second key and signs with it from now on.
        second_key = sandbox.rotate_key()
        assert second_key != first_key
        assert set(sandbox.certificate_serials) == {first_key, second_key}
        clock.offset += DEFAULT_CERT_REFRESH_COOLDOWN + 1

        # A burst of callbacks under the new serial, delivered concurrently: one refresh.
        before = requests_seen(harness)
        for order in orders[1 : BURST + 1]:
            sandbox.pay(order.provider_order_id)
        sandbox.wait_for_webhooks_sync(timeout=60)
        assert requests_seen(harness) - before == 1
        stats = sandbox.stats()
        assert stats["webhooks_delivered"] == BURST + 1
        assert stats["webhooks_failed"] == 0
        acknowledged = [
            a for a in sandbox.webhook_log if a.ok and a.headers[protocol.HEADER_CERTIFICATE_SN]
        ]
        assert {a.headers[protocol.HEADER_CERTIFICATE_SN] for a in acknowledged} == {
            first_key,
            second_key,
        }
        deferred_first = sum(1 for o in receiver.outcomes if o.error is not None)
        assert all(isinstance(o.error, CallbackDeferred) for o in receiver.outcomes if o.error)

        # Callbacks signed with the old key still verify, without any fetch.
        before = requests_seen(harness)
        old = sandbox.keys.keys[0]
        assert old.serial == first_key
        with httpx.Client(timeout=10, trust_env=False) as http:
            for order in orders[BURST + 1 :]:
                paid = sandbox.book.get(order.provider_order_id)
                body = notification_body(paid, protocol.BizStatus.PAY_SUCCESS)
                headers = signed_headers(_OneKey(old), body, time.time_ns() // 1_000_000)
                harness.leaks.add(headers[protocol.HEADER_SIGNATURE])
                response = http.post(receiver.url, content=body, headers=headers)
                assert response.status_code == 200, response.text
                assert receiver.outcomes[-1].result is not None
                event = receiver.outcomes[-1].result.event
                assert event is not None
                assert event.status is PaymentStatus.PAID
                assert event.provider_order_id == order.provider_order_id
        assert requests_seen(harness) - before == 0
    print(  # shown with -s
        f"\nR7: {BURST} callbacks under a new serial, 1 certificates fetch; "
        f"{deferred_first} first deliveries deferred (503) while the fetch was in flight "
        f"(acknowledged on redelivery)"
    )


class _OneKey:
    """A key ring of one key, as ``signed_headers`` reads it."""

    def __init__(self, key: object) -> None:
        self.signing_key = key


def test_unknown_serials_in_a_burst_cost_one_refresh(
    start_sandbox: Callable[..., Harness],
) -> None:
    harness = start_sandbox()
    clock = MovableClock()
    payments = harness.payments(clock=clock)
    sandbox = harness.sandbox
    body = b'{"bizType":"PAY","bizId":1,"bizIdStr":"1","bizStatus":"PAY_SUCCESS","data":"{}"}'
    with CallbackReceiver(payments) as receiver, httpx.Client(timeout=10) as http:
        clock.offset += DEFAULT_CERT_REFRESH_COOLDOWN + 1
        before = requests_seen(harness)
        for i in range(BURST):
            headers = signed_headers(sandbox.keys, body, time.time_ns() // 1_000_000)
            headers[protocol.HEADER_CERTIFICATE_SN] = f"UNKNOWN{i:025d}"
            harness.leaks.add(headers[protocol.HEADER_SIGNATURE])
            assert http.post(receiver.url, content=body, headers=headers).status_code == 401
        assert requests_seen(harness) - before == 1
        assert len(receiver.outcomes) == BURST
        assert all(o.error is not None for o in receiver.outcomes)
