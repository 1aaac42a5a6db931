"""The Binance Pay provider against the contract suite, on the real sandbox over loopback.

One sandbox server serves the module; every test gets a fresh harness (the suite uses fresh
references, so tests never see each other's orders). Webhook delivery is switched off: the
sandbox still signs each notification with its RSA key and logs it, and the harness hands that
exact notification to the suite as the genuine callback.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta

import pytest

from payments_binance import BinancePayProvider, protocol
from payments_binance.sandbox import Sandbox, SandboxConfig, SandboxServer
from payments_core import (
    CallbackRequest,
    Money,
    Order,
    OrderRequest,
    Payments,
    Refund,
    RetryPolicy,
    ValidationError,
)
from payments_core.testing import CallbackFormat, ProviderContract, ProviderHarness

API_KEY = f"contract-key-{secrets.token_hex(8)}"
API_SECRET = secrets.token_hex(32)


class BinanceHarness(ProviderHarness):
    """Binance Pay, pointed at a sandbox served on loopback."""

    def __init__(self, server: SandboxServer) -> None:
        self.server = server
        self.sandbox: Sandbox = server.sandbox

    @property
    def name(self) -> str:
        return "binance"

    def factory(self) -> type[BinancePayProvider]:
        return BinancePayProvider

    def settings(self) -> Mapping[str, str]:
        return {"base_url": self.server.base_url, "api_key": API_KEY, "api_secret": API_SECRET}

    @property
    def callback_format(self) -> CallbackFormat:
        return CallbackFormat(
            signature_header=protocol.HEADER_SIGNATURE,
            required_headers={
                protocol.HEADER_TIMESTAMP,
                protocol.HEADER_NONCE,
                protocol.HEADER_CERTIFICATE_SN,
                protocol.HEADER_SIGNATURE,
            },
            timestamp_header=protocol.HEADER_TIMESTAMP,
            key_header=protocol.HEADER_CERTIFICATE_SN,
        )

    def paid_callback(self, order: Order) -> CallbackRequest:
        self.sandbox.pay(order.provider_order_id)
        notification = next(
            attempt
            for attempt in reversed(self.sandbox.webhook_log)
            if attempt.delivery.subject == order.provider_order_id
            and attempt.delivery.type == protocol.BizStatus.PAY_SUCCESS
        )
        return CallbackRequest(notification.headers, notification.delivery.body)

    def refund_callback(self, order: Order, refund: Refund) -> CallbackRequest | None:
        # The sandbox settles a refund in its request, or here when it is left pending.
        self.sandbox.settle_refund(str(refund.provider_refund_id))
        mark = str(refund.provider_refund_id).encode()  # inside the JSON text of "data"
        notification = next(
            attempt
            for attempt in reversed(self.sandbox.webhook_log)
            if attempt.delivery.subject == order.provider_order_id and mark in attempt.delivery.body
        )
        return CallbackRequest(notification.headers, notification.delivery.body)

    def order_count(self) -> int:
        return len(self.sandbox.orders)

    def secrets(self) -> Mapping[str, str]:
        pem = self.sandbox.keys.signing_key.private_pem().decode()
        key_lines = [line for line in pem.splitlines() if line and not line.startswith("-----")]
        return {
            "api_key": API_KEY,
            "api_secret": API_SECRET,
            "the private key (PEM)": pem,
            "a line of the private key": key_lines[len(key_lines) // 2],
        }


@pytest.fixture(scope="module")
def sandbox_server() -> Iterator[SandboxServer]:
    config = SandboxConfig(api_key=API_KEY, api_secret=API_SECRET, deliver_webhooks=False)
    with SandboxServer(Sandbox(config), host="127.0.0.1", port=0) as server:
        yield server


class TestBinanceContract(ProviderContract):
    """Every contract, run against Binance Pay and its sandbox."""

    @pytest.fixture
    def provider_harness(self, sandbox_server: SandboxServer) -> ProviderHarness:
        return BinanceHarness(sandbox_server)


def test_an_expiry_beyond_binances_limit_is_a_validation_error(
    sandbox_server: SandboxServer,
) -> None:
    harness = BinanceHarness(sandbox_server)
    request = OrderRequest(
        reference=f"contract-expiry-{secrets.token_hex(6)}",
        price=Money("1.00", "USD"),
        callback_url="https://merchant.example/payments/callback",
        expires_at=datetime.now(UTC) + timedelta(days=16),
    )
    with (
        Payments(
            providers={"binance": BinancePayProvider},
            provider_settings={"binance": harness.settings()},
            load_entry_points=False,
            retry=RetryPolicy(max_attempts=1),
        ) as payments,
        pytest.raises(ValidationError) as refused,
    ):
        payments.create_order(request)
    assert refused.value.field == "expires_at"
