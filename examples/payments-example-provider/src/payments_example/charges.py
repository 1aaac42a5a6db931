"""ExampleCharges: a find-or-create provider, compact enough to read in one sitting.

ExampleCharges assigns every id itself and takes no idempotency key, as Coinbase Commerce,
BTCPay and NOWPayments do. What it keeps for the merchant is ``metadata``; this provider stores
the caller's reference there, and ``query_order`` searches for it. It declares
:attr:`~payments_core.IdempotencyPattern.FIND_OR_CREATE`, so the core searches before every
create and, with a ledger, lets one application instance at a time create a reference.

Settings (``[providers.charges]`` or the environment): ``base_url``
(``EXAMPLECHARGES_BASE_URL``), ``api_key`` (``EXAMPLECHARGES_API_KEY``), ``webhook_secret``
(``EXAMPLECHARGES_WEBHOOK_SECRET``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from contextlib import AbstractContextManager
from typing import Any, Final
from urllib.parse import urlencode

from payments_core import (
    CallbackPayloadError,
    CallbackReply,
    CallbackRequest,
    CallbackResult,
    CallbackVerificationError,
    IdempotencyPattern,
    Money,
    Order,
    OrderRequest,
    PaymentEvent,
    PaymentStatus,
    ProviderContext,
    ProviderError,
    ProviderInfo,
    ProviderSandbox,
    ResponseLost,
    hookimpl,
)
from payments_core.http import HttpRequest, HttpResponse, Operation
from payments_example import charges_wire as wire
from payments_example.common import CallbackRefusal, api_error, check_currency, refusal, required

__all__ = ["ChargesProvider"]

_STATUSES: Final = {
    wire.STATUS_NEW: PaymentStatus.PENDING,
    wire.STATUS_COMPLETED: PaymentStatus.PAID,
    wire.STATUS_CANCELED: PaymentStatus.CLOSED,
}
_EVENTS: Final = {
    wire.EVENT_CONFIRMED: PaymentStatus.PAID,
    wire.EVENT_CANCELED: PaymentStatus.CLOSED,
}
_ACK: Final = CallbackReply(200, b"{}")


class ChargesProvider:
    """ExampleCharges as a ``payments`` provider plugin (the factory)."""

    def __init__(self, context: ProviderContext) -> None:
        settings = context.settings
        self.name = context.name
        base_url = settings.get("base_url", env="EXAMPLECHARGES_BASE_URL") or wire.DEFAULT_BASE_URL
        self.base_url = base_url.rstrip("/")
        self._api_key = settings.secret("api_key", env="EXAMPLECHARGES_API_KEY")
        self._webhook_secret = settings.secret(
            "webhook_secret", env="EXAMPLECHARGES_WEBHOOK_SECRET"
        )

    @hookimpl
    def describe_provider(self) -> ProviderInfo:
        return ProviderInfo(
            name=self.name,
            display_name="ExampleCharges",
            currencies=frozenset(wire.CURRENCIES),
            capabilities=frozenset({"create_order", "query_order", "close_order", "callbacks"}),
            settings={
                "base_url": "EXAMPLECHARGES_BASE_URL",
                "api_key": "EXAMPLECHARGES_API_KEY",
                "webhook_secret": "EXAMPLECHARGES_WEBHOOK_SECRET",
            },
            # Server-assigned ids, no idempotency key: the core searches before creating.
            idempotency=IdempotencyPattern.FIND_OR_CREATE,
        )

    @hookimpl
    def create_order(self, request: OrderRequest) -> Operation[Order]:
        check_currency(request, wire.CURRENCIES, "ExampleCharges", self.name)
        body = {
            "pricing": {"amount": str(request.price.amount), "currency": request.price.currency},
            "description": request.description,
            # The reference travels with the charge: query_order finds it by this.
            "metadata": {wire.METADATA_REFERENCE: request.reference},
            "callback_url": request.callback_url,
        }
        return self._create(request.reference, json.dumps(body).encode())

    def _create(self, reference: str, body: bytes) -> Operation[Order]:
        response = yield from self._call("POST", wire.PATH_CHARGES, body, "create_order")
        return self._order(reference, self._data(response, "create_order"), "create_order")

    @hookimpl
    def query_order(self, reference: str) -> Operation[Order | None]:
        return self._query(reference)

    def _query(self, reference: str) -> Operation[Order | None]:
        """The charge whose metadata carries ``reference``: the search sees every charge."""
        query = urlencode({f"metadata_{wire.METADATA_REFERENCE}": reference})
        path = f"{wire.PATH_SEARCH}?{query}"
        response = yield from self._call("GET", path, b"", "query_order")
        found = self._data(response, "query_order")
        if not isinstance(found, list):
            raise self._unreadable("query_order")
        # Newest first: if two charges ever carried one reference, the oldest is the order.
        return self._order(reference, found[-1], "query_order") if found else None

    @hookimpl
    def close_order(self, reference: str) -> Operation[bool]:
        return self._close(reference)

    def _close(self, reference: str) -> Operation[bool]:
        order = yield from self._query(reference)
        if order is None:
            raise ProviderError(
                f"ExampleCharges holds no charge for {reference!r}",
                provider=self.name,
                status_code=404,
                provider_code="not_found",
                operation="close_order",
            )
        path = wire.PATH_CANCEL.format(id=order.provider_order_id)
        yield from self._call("POST", path, b"", "close_order")
        return True

    @hookimpl
    def handle_callback(self, callback: CallbackRequest) -> Operation[CallbackResult]:
        return self._callback(callback)

    def _callback(self, callback: CallbackRequest) -> Operation[CallbackResult]:
        yield from ()  # verification needs no request of its own
        if len(callback.body) > wire.CALLBACK_BODY_MAX:
            raise self._refused(CallbackPayloadError, 413, "body too large")
        signature = callback.headers.get(wire.HEADER_SIGNATURE.lower(), "")
        # HMAC over the raw body as received: no timestamp, no key id to look at.
        expected = hmac.new(self._secret().encode(), callback.body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace")):
            raise self._refused(CallbackVerificationError, 401, "signature does not verify")
        try:
            event = json.loads(callback.body)
            charge = event["data"]
            return CallbackResult(
                PaymentEvent(
                    provider=self.name,
                    event_id=str(event["id"]),
                    status=_EVENTS[event["type"]],
                    provider_order_id=str(charge["id"]),
                    provider_reference=str(charge["code"]),
                    amount=_price(charge),
                ),
                _ACK,
            )
        except (KeyError, TypeError, ValueError) as exc:
            why = f"unreadable event ({type(exc).__name__})"
            raise self._refused(CallbackPayloadError, 400, why) from None

    @hookimpl
    def check_connection(self) -> Operation[str]:
        return self._account()

    def _account(self) -> Operation[str]:
        response = yield from self._call("GET", wire.PATH_ACCOUNT, b"", "check_connection")
        return f"ExampleCharges account {self._data(response, 'check_connection')['name']}"

    @hookimpl
    def open_sandbox(self) -> AbstractContextManager[ProviderSandbox]:
        from payments_example.charges_sandbox import serve_charges

        return serve_charges()

    # -- helpers ----------------------------------------------------------------------------

    def _call(self, method: str, path: str, body: bytes, operation: str) -> Operation[HttpResponse]:
        key = required(
            self._api_key, "ExampleCharges", self.name, "api_key", "EXAMPLECHARGES_API_KEY"
        )
        headers = {wire.HEADER_KEY: key, "Content-Type": "application/json"}
        response = yield HttpRequest(
            method, self.base_url + path, headers, body, operation=operation
        )
        if not 200 <= response.status_code < 300:
            raise api_error("ExampleCharges", response, operation, self.name)
        return response

    def _data(self, response: HttpResponse, operation: str) -> Any:
        try:
            return json.loads(response.content)["data"]
        except (ValueError, KeyError, TypeError) as exc:
            raise self._unreadable(operation, exc) from None

    def _order(self, reference: str, charge: Mapping[str, Any], operation: str) -> Order:
        try:
            return Order(
                provider=self.name,
                reference=reference,
                provider_order_id=str(charge["id"]),
                provider_reference=str(charge["code"]),
                status=_STATUSES[charge["status"]],
                amount=_price(charge),
                checkout_url=charge.get("hosted_url"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise self._unreadable(operation, exc) from None

    def _secret(self) -> str:
        return required(
            self._webhook_secret,
            "ExampleCharges",
            self.name,
            "webhook_secret",
            "EXAMPLECHARGES_WEBHOOK_SECRET",
        )

    def _unreadable(self, operation: str, error: Exception | None = None) -> ResponseLost:
        return ResponseLost.unreadable("ExampleCharges", operation, provider=self.name, error=error)

    def _refused(
        self, kind: CallbackRefusal, status: int, why: str
    ) -> CallbackVerificationError | CallbackPayloadError:
        return refusal(kind, "ExampleCharges", self.name, status, why)


def _price(charge: Mapping[str, Any]) -> Money:
    pricing = charge["pricing"]
    if not isinstance(pricing["amount"], str):
        raise TypeError("amount must be a decimal string")
    return Money(pricing["amount"], pricing["currency"])
