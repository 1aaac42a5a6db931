"""The ExamplePay provider: the hooks ``payments_core`` calls.

It does no I/O. Hooks that talk to ExamplePay return *operations*, generators that yield the
signed :class:`~payments_core.HttpRequest` to send and receive the
:class:`~payments_core.HttpResponse`; the core sends them, retries them and runs them for
blocking and asynchronous callers alike.

Settings (``[providers.example]`` in the configuration, or the environment):

=================  ==========================  =============================================
key                environment                 meaning
=================  ==========================  =============================================
``base_url``       ``EXAMPLEPAY_BASE_URL``     the API (default: ``wire.DEFAULT_BASE_URL``)
``api_key``        ``EXAMPLEPAY_API_KEY``      the merchant's API key
``api_secret``     ``EXAMPLEPAY_API_SECRET``   the shared secret for signatures
=================  ==========================  =============================================
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Final

from payments_core import (
    CAPABILITIES,
    CallbackPayloadError,
    CallbackReply,
    CallbackRequest,
    CallbackResult,
    CallbackVerificationError,
    ErrorCategory,
    ErrorClassification,
    IdempotencyPattern,
    Money,
    Order,
    OrderRequest,
    PaymentEvent,
    PaymentsError,
    PaymentStatus,
    ProviderContext,
    ProviderError,
    ProviderInfo,
    ProviderSandbox,
    Refund,
    RefundNotice,
    RefundRequest,
    RefundStatus,
    ResponseLost,
    get_logger,
    hookimpl,
)
from payments_core.classify import Judgement, classification
from payments_core.http import HttpRequest, HttpResponse, Operation
from payments_example import wire
from payments_example.common import (
    CallbackRefusal,
    api_error,
    check_currency,
    compact_json,
    refusal,
    required,
)

__all__ = ["ExampleProvider", "merchant_order_id", "merchant_refund_id"]

log = get_logger("payments_example")

_SETTINGS: Final = {
    "base_url": "EXAMPLEPAY_BASE_URL",
    "api_key": "EXAMPLEPAY_API_KEY",
    "api_secret": "EXAMPLEPAY_API_SECRET",
}
_STATUSES: Final = {
    wire.STATUS_OPEN: PaymentStatus.PENDING,
    wire.STATUS_PROCESSING: PaymentStatus.CONFIRMING,
    wire.STATUS_HELD: PaymentStatus.NEEDS_REVIEW,
    wire.STATUS_PAID: PaymentStatus.PAID,
    wire.STATUS_FAILED: PaymentStatus.FAILED,
    wire.STATUS_CLOSED: PaymentStatus.CLOSED,
    wire.STATUS_PARTIALLY_REFUNDED: PaymentStatus.PARTIALLY_REFUNDED,
    wire.STATUS_REFUNDED: PaymentStatus.REFUNDED,
}
_EVENTS: Final = {
    wire.EVENT_PROCESSING: PaymentStatus.CONFIRMING,
    wire.EVENT_HELD: PaymentStatus.NEEDS_REVIEW,
    wire.EVENT_PAID: PaymentStatus.PAID,
    wire.EVENT_FAILED: PaymentStatus.FAILED,
    wire.EVENT_CLOSED: PaymentStatus.CLOSED,
    wire.EVENT_REFUNDED: PaymentStatus.PARTIALLY_REFUNDED,
}
_REFUND_STATUSES: Final = {
    wire.REFUND_SUCCEEDED: RefundStatus.SUCCEEDED,
    wire.REFUND_FAILED: RefundStatus.FAILED,
}
_ACK: Final = CallbackReply(200, b'{"received":true}')
_TRY_AGAIN: Final = "The payment service is busy. Please try again in a moment."
_CANNOT: Final = "We could not start the payment. Please contact support."

# ExamplePay's own codes, where they say more than the HTTP status.
_CODES: Final[Mapping[str, Judgement]] = {
    "duplicate_order": (
        ErrorCategory.DUPLICATE_ORDER,
        False,
        "The order exists already: query it by its reference.",
        _TRY_AGAIN,
    ),
    "order_not_closable": (
        ErrorCategory.INVALID_STATE,
        False,
        "The order is paid or closed already; query it for its state.",
        _CANNOT,
    ),
    "stale_timestamp": (
        ErrorCategory.CLOCK_SKEW,
        True,
        "Our clock is more than 300 s off ExamplePay's: synchronise it (NTP).",
        _TRY_AGAIN,
    ),
    "bad_signature": (
        ErrorCategory.SIGNATURE,
        False,
        "ExamplePay rejected the request signature: check api_secret.",
        _CANNOT,
    ),
    "order_not_refundable": (
        ErrorCategory.INVALID_STATE,
        False,
        "The order is not paid, or is refunded already: query it for its state.",
        _CANNOT,
    ),
    "refund_exceeds_remaining": (
        ErrorCategory.INVALID_REQUEST,
        False,
        "The refund is more than remains of the order: refund less.",
        _CANNOT,
    ),
    "refund_mismatch": (
        ErrorCategory.INVALID_REQUEST,
        False,
        "This refund reference names a refund of another amount: use a new reference.",
        _CANNOT,
    ),
    "unknown_key": (
        ErrorCategory.AUTHENTICATION,
        False,
        "ExamplePay does not know api_key: check it, or renew it in the dashboard.",
        _CANNOT,
    ),
}


def merchant_order_id(reference: str) -> str:
    """ExamplePay's ``merchant_order_id`` for a caller's reference: the same one every time.

    References may hold characters and lengths ExamplePay refuses, so the id is a digest.
    """
    return "ref_" + hashlib.sha256(reference.encode()).hexdigest()[:40]


def merchant_refund_id(reference: str, refund_reference: str) -> str:
    """ExamplePay's ``merchant_refund_id`` for a refund: the same one every time it is asked."""
    # NUL cannot occur in a reference, so the pair is read back unambiguously.
    digest = hashlib.sha256(f"{reference}\x00{refund_reference}".encode()).hexdigest()
    return "rfd_" + digest[:40]


class ExampleProvider:
    """ExamplePay, as a ``payments`` provider plugin (the entry point's factory)."""

    def __init__(self, context: ProviderContext) -> None:
        settings = context.settings
        self.name = context.name
        self._clock = context.clock
        base_url = settings.get("base_url", env=_SETTINGS["base_url"]) or wire.DEFAULT_BASE_URL
        self.base_url = base_url.rstrip("/")
        self._api_key = settings.secret("api_key", env=_SETTINGS["api_key"])
        self._api_secret = settings.secret("api_secret", env=_SETTINGS["api_secret"])

    # -- hooks ------------------------------------------------------------------------------

    @hookimpl
    def describe_provider(self) -> ProviderInfo:
        return ProviderInfo(
            name=self.name,
            display_name="ExamplePay",
            currencies=frozenset(wire.CURRENCIES),
            capabilities=CAPABILITIES,
            settings=dict(_SETTINGS),
            # merchant_order_id is derived from the reference; ExamplePay refuses it twice.
            idempotency=IdempotencyPattern.DERIVED_ID,
        )

    @hookimpl
    def create_order(self, request: OrderRequest) -> Operation[Order]:
        check_currency(request, wire.CURRENCIES, "ExamplePay", self.name)
        body = {
            "merchant_order_id": merchant_order_id(request.reference),
            "amount": str(request.price.amount),
            "currency": request.price.currency,
            "description": request.description,
            "callback_url": request.callback_url,
            "return_url": request.return_url,
            "expires_at": request.expires_at.isoformat() if request.expires_at else None,
        }
        return self._create(request.reference, compact_json(body))

    @hookimpl
    def query_order(self, reference: str) -> Operation[Order | None]:
        return self._query(reference)

    @hookimpl
    def close_order(self, reference: str) -> Operation[bool]:
        return self._close(reference)

    @hookimpl
    def refund_order(self, order: Order, request: RefundRequest) -> Operation[Refund]:
        body = {
            "merchant_refund_id": merchant_refund_id(request.reference, request.refund_reference),
            "amount": str(request.amount.amount),
            "currency": request.amount.currency,
            "reason": request.reason,
        }
        path = wire.PATH_REFUNDS.format(merchant_order_id=merchant_order_id(order.reference))
        return self._send_refund(path, compact_json(body), request)

    @hookimpl
    def refund_id(self, request: RefundRequest) -> str:
        # ExamplePay's notices name the refund by the merchant_refund_id it was sent.
        return merchant_refund_id(request.reference, request.refund_reference)

    @hookimpl
    def query_refund(self, order: Order, request: RefundRequest) -> Operation[Refund | None]:
        return self._query_refund(order, request)

    @hookimpl
    def handle_callback(self, callback: CallbackRequest) -> Operation[CallbackResult]:
        return self._callback(callback)

    @hookimpl
    def classify_error(self, error: PaymentsError) -> ErrorClassification | None:
        if not isinstance(error, ProviderError):
            return None  # transport failures: the core's judgement stands
        code = error.provider_code
        if code is None or code not in _CODES:
            return None  # the core's table judges it by its HTTP status
        return classification(_CODES[code], status_code=error.status_code, provider_code=code)

    @hookimpl
    def check_connection(self) -> Operation[str]:
        return self._account()

    @hookimpl
    def open_sandbox(self) -> AbstractContextManager[ProviderSandbox]:
        from payments_example.sandbox import serve

        return serve()

    # -- operations -------------------------------------------------------------------------

    def _create(self, reference: str, body: bytes) -> Operation[Order]:
        response = yield from self._call("POST", wire.PATH_ORDERS, body, "create_order")
        return self._order(reference, response, "create_order")

    def _query(self, reference: str) -> Operation[Order | None]:
        path = wire.PATH_ORDER.format(merchant_order_id=merchant_order_id(reference))
        response = yield from self._look_up(path, "query_order", missing="order_not_found")
        return None if response is None else self._order(reference, response, "query_order")

    def _close(self, reference: str) -> Operation[bool]:
        path = wire.PATH_CLOSE.format(merchant_order_id=merchant_order_id(reference))
        yield from self._call("POST", path, b"", "close_order")
        return True

    def _send_refund(self, path: str, body: bytes, request: RefundRequest) -> Operation[Refund]:
        response = yield from self._call("POST", path, body, "refund_order")
        return self._refund(request, response, "refund_order")

    def _query_refund(self, order: Order, request: RefundRequest) -> Operation[Refund | None]:
        path = wire.PATH_REFUND.format(
            merchant_order_id=merchant_order_id(order.reference),
            merchant_refund_id=merchant_refund_id(request.reference, request.refund_reference),
        )
        response = yield from self._look_up(path, "query_refund", missing="refund_not_found")
        return None if response is None else self._refund(request, response, "query_refund")

    def _account(self) -> Operation[str]:
        response = yield from self._call("GET", wire.PATH_ACCOUNT, b"", "check_connection")
        try:
            account = json.loads(response.content)["account"]
            return f"ExamplePay account {account['merchant']} ({account['mode']})"
        except (ValueError, KeyError, TypeError):
            raise self._unreadable("check_connection") from None

    def _callback(self, callback: CallbackRequest) -> Operation[CallbackResult]:
        yield from ()  # verification needs no request of its own
        if len(callback.body) > wire.CALLBACK_BODY_MAX:
            raise self._refused(CallbackPayloadError, 413, "body too large")
        timestamp = callback.headers.get(wire.HEADER_EVENT_TIMESTAMP.lower(), "")
        signature = callback.headers.get(wire.HEADER_EVENT_SIGNATURE.lower(), "")
        if not (timestamp and signature):
            raise self._refused(CallbackVerificationError, 401, "signature headers missing")
        if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
            raise self._refused(CallbackVerificationError, 401, "malformed timestamp")
        if abs(self._clock.now().timestamp() - int(timestamp)) > wire.TIMESTAMP_TOLERANCE_SECONDS:
            raise self._refused(CallbackVerificationError, 401, "timestamp outside tolerance")
        expected = _hmac(self._secret(), f"{timestamp}.".encode() + callback.body)
        if not hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace")):
            raise self._refused(CallbackVerificationError, 401, "signature does not verify")
        event = self._event(callback.body)
        log.debug(
            "callback %s verified: order %s is %s",
            event.event_id,
            event.provider_order_id,
            event.status,
        )
        return CallbackResult(event, _ACK)

    # -- helpers ----------------------------------------------------------------------------

    def _call(self, method: str, path: str, body: bytes, operation: str) -> Operation[HttpResponse]:
        """Send one signed request; its answer, if ExamplePay carried it out (any 2xx).

        :raises ProviderError: for any other answer, with ExamplePay's error code if it sent one.
        """
        response = yield self._signed(method, path, body, operation)
        if not 200 <= response.status_code < 300:
            raise self._error(response, operation)
        return response

    def _look_up(
        self, path: str, operation: str, *, missing: str
    ) -> Operation[HttpResponse | None]:
        """GET ``path``; ``None`` when ExamplePay answers 404 with the error code ``missing``."""
        try:
            return (yield from self._call("GET", path, b"", operation))
        except ProviderError as error:
            if error.status_code == 404 and error.provider_code == missing:
                return None
            raise

    def _secret(self) -> str:
        return required(
            self._api_secret, "ExamplePay", self.name, "api_secret", _SETTINGS["api_secret"]
        )

    def _signed(self, method: str, path: str, body: bytes, operation: str) -> HttpRequest:
        key = required(self._api_key, "ExamplePay", self.name, "api_key", _SETTINGS["api_key"])
        timestamp = str(int(self._clock.now().timestamp()))
        payload = f"{timestamp}\n{method}\n{path}\n".encode() + body
        headers = {
            wire.HEADER_KEY: key,
            wire.HEADER_TIMESTAMP: timestamp,
            wire.HEADER_SIGNATURE: _hmac(self._secret(), payload),
        }
        if body:
            headers["Content-Type"] = "application/json"
        return HttpRequest(method, self.base_url + path, headers, body, operation=operation)

    def _order(self, reference: str, response: HttpResponse, operation: str) -> Order:
        try:
            data = json.loads(response.content)["order"]
            if not isinstance(data["amount"], str):
                raise TypeError("amount must be a decimal string")
            return Order(
                provider=self.name,
                reference=reference,
                provider_order_id=str(data["id"]),
                provider_reference=str(data["merchant_order_id"]),
                status=_STATUSES[data["status"]],
                amount=Money(data["amount"], data["currency"]),
                checkout_url=data.get("checkout_url"),
                expires_at=_datetime(data.get("expires_at")),
                transaction_id=data.get("payment_id"),
                paid=_money(data.get("paid")),
                fee=_money(data.get("fee")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise self._unreadable(operation, exc) from None

    def _refund(self, request: RefundRequest, response: HttpResponse, operation: str) -> Refund:
        try:
            document = json.loads(response.content)
            data, order = document["refund"], document["order"]
            if not isinstance(data["amount"], str):
                raise TypeError("amount must be a decimal string")
            return Refund(
                provider=self.name,
                reference=request.reference,
                refund_reference=request.refund_reference,
                provider_refund_id=str(data["merchant_refund_id"]),
                provider_order_id=str(order["id"]),
                amount=Money(data["amount"], data["currency"]),
                status=_REFUND_STATUSES[data["status"]],
                reason=str(data.get("reason") or ""),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise self._unreadable(operation, exc) from None

    def _unreadable(self, operation: str, error: Exception | None = None) -> ResponseLost:
        """A success answer we cannot read: what was asked may have happened (outcome unknown)."""
        return ResponseLost.unreadable("ExamplePay", operation, provider=self.name, error=error)

    def _error(self, response: HttpResponse, operation: str) -> ProviderError:
        header = wire.HEADER_REQUEST_ID.lower()
        return api_error("ExamplePay", response, operation, self.name, header)

    def _event(self, body: bytes) -> PaymentEvent:
        try:
            document = json.loads(body)
            order = document["order"]
            status = _EVENTS[document["type"]]
            created = document["created"]
            if not (isinstance(created, int) and isinstance(order["amount"], str)):
                raise TypeError("created must be an integer and amount a decimal string")
            notice = None
            amount = Money(order["amount"], order["currency"])
            if "refund" in document:
                refund = document["refund"]
                if not isinstance(refund["amount"], str):
                    raise TypeError("a refund amount must be a decimal string")
                notice = RefundNotice(
                    provider_refund_id=str(refund["merchant_refund_id"]),
                    status=_REFUND_STATUSES[refund["status"]],
                    amount=Money(refund["amount"], refund["currency"]),
                )
                amount = Money(refund["amount"], refund["currency"])
                status = _STATUSES[order["status"]]
            return PaymentEvent(
                provider=self.name,
                event_id=str(document["event_id"]),
                status=status,
                provider_order_id=str(order["id"]),
                provider_reference=str(order["merchant_order_id"]),
                amount=amount,
                occurred_at=datetime.fromtimestamp(created, UTC),
                transaction_id=order.get("payment_id"),
                paid=_money(order.get("paid")),
                fee=_money(order.get("fee")),
                refund=notice,
            )
        except (KeyError, TypeError, ValueError, OverflowError, OSError) as exc:
            raise self._refused(
                CallbackPayloadError, 400, f"unreadable event ({type(exc).__name__})"
            ) from None

    def _refused(
        self, kind: CallbackRefusal, status: int, why: str
    ) -> CallbackVerificationError | CallbackPayloadError:
        return refusal(kind, "ExamplePay", self.name, status, why)


def _hmac(secret: str, payload: bytes) -> str:
    return hmac.new(secret.encode(), payload, hashlib.sha256).hexdigest()


def _money(value: object) -> Money | None:
    """ExamplePay's ``{"amount": "...", "currency": "..."}``, or ``None`` for null."""
    if value is None:
        return None
    if not (isinstance(value, dict) and isinstance(value["amount"], str)):
        raise TypeError("money must be an object with a decimal string amount")
    return Money(value["amount"], value["currency"])


def _datetime(value: object) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError("a time must be an ISO 8601 string")
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise ValueError("a time must carry its offset")
    return moment
