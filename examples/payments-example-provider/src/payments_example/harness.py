"""The contract suite's harnesses: ExamplePay in process, ExampleCharges over loopback.

Every harness gets a sandbox of its own with fresh credentials. ExamplePay's requests reach it
through :func:`~payments_example.sandbox.sandbox_transport` (no sockets); ExampleCharges' go over
HTTP to :func:`~payments_example.charges_sandbox.serve_charges`. Callbacks are captured rather
than posted, and handed to the suite by ``paid_callback``.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from contextlib import ExitStack

from payments_core import CallbackRequest, Order, Refund
from payments_core.plugins import ProviderFactory
from payments_core.testing import CallbackFormat, InProcessHarness, ProviderHarness
from payments_example import charges_wire, wire
from payments_example.charges import ChargesProvider
from payments_example.charges_sandbox import ChargesSandbox, serve_charges
from payments_example.provider import ExampleProvider
from payments_example.sandbox import ExamplePaySandbox, sandbox_transport

__all__ = ["ChargesHarness", "ExampleHarness"]


class ExampleHarness(InProcessHarness):
    """ExamplePay under test, with a sandbox of its own (parameters: as for the base)."""

    def __init__(
        self, factory: type[ExampleProvider] = ExampleProvider, *, name: str = "example"
    ) -> None:
        # Callbacks stay in ``sandbox.deliveries``; nothing is posted anywhere.
        self.sandbox = ExamplePaySandbox(
            api_key=f"ex_key_{secrets.token_hex(8)}",
            api_secret=secrets.token_hex(24),
            deliver=lambda delivery: None,
        )
        super().__init__(factory, name=name, transport=sandbox_transport(self.sandbox))

    def settings(self) -> Mapping[str, str]:
        return self.sandbox.settings()

    @property
    def callback_format(self) -> CallbackFormat:
        return CallbackFormat(
            signature_header=wire.HEADER_EVENT_SIGNATURE,
            required_headers={wire.HEADER_EVENT_SIGNATURE, wire.HEADER_EVENT_TIMESTAMP},
            timestamp_header=wire.HEADER_EVENT_TIMESTAMP,
        )

    def paid_callback(self, order: Order) -> CallbackRequest:
        delivery = self.sandbox.pay(order.provider_order_id)
        return CallbackRequest(delivery.headers, delivery.body)

    def unfinished_callbacks(self, order: Order) -> list[CallbackRequest]:
        """The payment arrives unconfirmed, then one unit more than asked: held for review."""
        overpaid = format(order.amount.amount + 1, "f")
        deliveries = [
            self.sandbox.receive(order.provider_order_id),
            self.sandbox.hold(order.provider_order_id, overpaid),
        ]
        return [CallbackRequest(delivery.headers, delivery.body) for delivery in deliveries]

    def refund_callback(self, order: Order, refund: Refund) -> CallbackRequest | None:
        # ExamplePay notifies while it answers the refund: the notice is captured already.
        del order
        mark = f'"{refund.provider_refund_id}"'.encode()
        for delivery in reversed(self.sandbox.deliveries):
            if mark in delivery.body:
                return CallbackRequest(delivery.headers, delivery.body)
        return None

    def picked_asset_callback(self, order: Order) -> CallbackRequest:
        # The payer picks BTC at checkout; ExamplePay states no settlement before that.
        delivery = self.sandbox.pay(order.provider_order_id, amount="0.00002000", asset="BTC")
        return CallbackRequest(delivery.headers, delivery.body)

    def order_count(self) -> int:
        return len(self.sandbox.orders)

    def refund_count(self) -> int:
        return self.sandbox.refund_count()

    def secrets(self) -> Mapping[str, str]:
        return {"api_key": self.sandbox.api_key, "api_secret": self.sandbox.api_secret}

    def error_body(self, status_code: int) -> bytes:
        code = next((c for c, s in wire.ERRORS.items() if s == status_code), "internal_error")
        return json.dumps({"error": {"code": code, "message": "injected"}}).encode()


class ChargesHarness(ProviderHarness):
    """ExampleCharges under test, its sandbox served on loopback (real HTTP).

    Callbacks stay in ``sandbox.deliveries``; nothing is posted anywhere.

    :param factory: The provider factory (tests pass deliberately broken variants).
    :param name: The name to register it under.
    """

    def __init__(
        self, factory: ProviderFactory = ChargesProvider, *, name: str = "charges"
    ) -> None:
        self._factory = factory
        self._name = name
        self._stack = ExitStack()
        self.sandbox = ChargesSandbox(
            api_key=f"chg_key_{secrets.token_hex(8)}",
            webhook_secret=secrets.token_hex(24),
            deliver=lambda delivery: None,
        )
        self.running = self._stack.enter_context(serve_charges(self.sandbox))

    @property
    def name(self) -> str:
        return self._name

    def factory(self) -> ProviderFactory:
        return self._factory

    def settings(self) -> Mapping[str, str]:
        return self.running.settings

    @property
    def callback_format(self) -> CallbackFormat:
        # HMAC over the raw body: one header, no timestamp, no key id.
        return CallbackFormat(
            signature_header=charges_wire.HEADER_SIGNATURE,
            required_headers={charges_wire.HEADER_SIGNATURE},
        )

    def paid_callback(self, order: Order) -> CallbackRequest:
        delivery = self.sandbox.pay(order.provider_order_id)
        return CallbackRequest(delivery.headers, delivery.body)

    def order_count(self) -> int:
        return len(self.sandbox.charges)

    def secrets(self) -> Mapping[str, str]:
        return {"api_key": self.sandbox.api_key, "webhook_secret": self.sandbox.webhook_secret}

    def error_body(self, status_code: int) -> bytes:
        codes = charges_wire.ERRORS.items()
        code = next((c for c, s in codes if s == status_code), "internal_error")
        return json.dumps({"error": {"code": code, "message": "injected"}}).encode()

    def close(self) -> None:
        self._stack.close()
