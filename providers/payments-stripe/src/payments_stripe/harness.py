"""The contract suite's harness for Stripe: the provider wired to an in-process sandbox.

Every harness gets a sandbox of its own with fresh test credentials. Requests reach it through
:func:`~payments_stripe.sandbox.sandbox_transport` (no sockets); webhooks are kept rather than
posted, and handed to the suite by :meth:`StripeHarness.paid_callback`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from payments_core import CallbackRequest, Order, Refund
from payments_core.classify import classification_for_status
from payments_core.testing import CallbackFormat, InProcessHarness
from payments_stripe import wire
from payments_stripe.provider import StripeProvider
from payments_stripe.sandbox import sandbox_transport
from payments_stripe.sandbox_server import new_sandbox

__all__ = ["StripeHarness"]

#: The error ``type`` and ``code`` Stripe answers each HTTP status with.
_ERRORS: dict[int, tuple[str, str | None]] = {
    400: (wire.ERROR_INVALID_REQUEST, wire.CODE_PARAMETER_MISSING),
    401: (wire.ERROR_INVALID_REQUEST, None),
    402: (wire.ERROR_CARD, "card_declined"),
    403: (wire.ERROR_INVALID_REQUEST, "secret_key_required"),
    404: (wire.ERROR_INVALID_REQUEST, wire.CODE_RESOURCE_MISSING),
    429: (wire.ERROR_INVALID_REQUEST, wire.CODE_RATE_LIMIT),
}


class StripeHarness(InProcessHarness):
    """Stripe under test, with a sandbox of its own (parameters: as for the base)."""

    def __init__(
        self, factory: type[StripeProvider] = StripeProvider, *, name: str = "stripe"
    ) -> None:
        # Webhooks stay in ``sandbox.deliveries``; nothing is posted anywhere.
        self.sandbox = new_sandbox(deliver=lambda delivery: None)
        super().__init__(factory, name=name, transport=sandbox_transport(self.sandbox))

    def settings(self) -> Mapping[str, str]:
        return {
            "base_url": self.sandbox.base_url,
            "api_key": self.sandbox.api_key,
            "webhook_secret": self.sandbox.webhook_secrets[0],
        }

    @property
    def callback_format(self) -> CallbackFormat:
        # The timestamp travels inside Stripe-Signature (t=...), so there is no header of its own.
        return CallbackFormat(
            signature_header=wire.HEADER_SIGNATURE, required_headers={wire.HEADER_SIGNATURE}
        )

    def paid_callback(self, order: Order) -> CallbackRequest:
        delivery = self.sandbox.pay(order.provider_order_id)
        return CallbackRequest(delivery.headers, delivery.body)

    def refund_callback(self, order: Order, refund: Refund) -> CallbackRequest | None:
        # The sandbox's refund.created, sent while it answered the refund.
        del order
        for delivery in reversed(self.sandbox.deliveries):
            event = json.loads(delivery.body)
            if event["type"] == wire.EVENT_REFUND_CREATED and (
                event["data"]["object"]["id"] == refund.provider_refund_id
            ):
                return CallbackRequest(delivery.headers, delivery.body)
        return None

    def order_count(self) -> int:
        return len(self.sandbox.sessions)

    def refund_count(self) -> int:
        return len(self.sandbox.refunds)

    def secrets(self) -> Mapping[str, str]:
        return {
            "api_key": self.sandbox.api_key,
            **{f"webhook_secret {i}": s for i, s in enumerate(self.sandbox.webhook_secrets)},
        }

    def error_body(self, status_code: int) -> bytes:
        kind, code = _ERRORS.get(status_code, (wire.ERROR_API, None))
        error = {"type": kind, "message": classification_for_status(status_code).action}
        if code is not None:
            error["code"] = code
        return json.dumps({"error": error}).encode()
