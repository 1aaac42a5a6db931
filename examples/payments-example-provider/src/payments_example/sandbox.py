"""ExamplePay imitated, for demos and tests: in process, as an ASGI app, or on loopback.

:class:`ExamplePaySandbox` holds the orders and answers API requests as ExamplePay would,
checking every signature and field itself (it shares only :mod:`payments_example.wire` with
the provider, so a bug on one side cannot hide a bug on the other). Three ways to reach it:

* :func:`sandbox_transport` — an ``httpx`` transport that calls it in process, for blocking and
  asynchronous clients alike (no sockets, no threads);
* :func:`build_app` — an ASGI app: the API plus a checkout page with a *Pay* button;
* :func:`serve` — that app served by uvicorn on ``127.0.0.1`` (a free port), in a thread: what
  the provider's ``open_sandbox`` hook returns.

All three are the sandbox toolkit's (:mod:`payments_core.testing.sandbox`) over this sandbox.

Paying an order (:meth:`ExamplePaySandbox.pay`) sends the signed ``order.paid`` callback to the
order's ``callback_url`` through the sandbox's ``deliver`` function. A payment may also arrive
unconfirmed first (:meth:`~ExamplePaySandbox.receive`: ``order.processing``), with the wrong
amount (:meth:`~ExamplePaySandbox.hold`: ``order.held``), or never confirm
(:meth:`~ExamplePaySandbox.fail`: ``order.failed``).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import html
import json
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from decimal import ROUND_DOWN, Decimal
from typing import Any, Final
from urllib.parse import parse_qsl

import attrs
import httpx
from starlette.types import ASGIApp

from payments_core.testing.sandbox import (
    Answer,
    Delivery,
    RunningSandbox,
    SandboxRequest,
    background_server,
    mock_transport,
    post_delivery,
    sandbox_app,
)
from payments_example import wire

__all__ = [
    "ExamplePaySandbox",
    "SandboxOrder",
    "SandboxRefund",
    "build_app",
    "sandbox_transport",
    "serve",
]

_REFUNDABLE: Final = frozenset({wire.STATUS_PAID, wire.STATUS_PARTIALLY_REFUNDED})
_MERCHANT_ORDER_ID: Final = re.compile(rf"[A-Za-z0-9_-]{{1,{wire.MERCHANT_ORDER_ID_MAX}}}")
_AMOUNT: Final = re.compile(r"(0|[1-9][0-9]{0,14})(\.[0-9]+)?")
_ORDER_PATH: Final = re.compile(r"/v1/orders/([^/]+)(/close)?")
_REFUND_PATH: Final = re.compile(r"/v1/orders/([^/]+)/refunds(?:/([^/]+))?")


@attrs.define
class SandboxOrder:
    """An order as the sandbox holds it."""

    id: str
    merchant_order_id: str
    amount: str
    currency: str
    description: str
    callback_url: str
    return_url: str | None
    expires_at: str | None
    status: str = wire.STATUS_OPEN
    payment_id: str | None = None
    paid: dict[str, str] | None = None
    fee: dict[str, str] | None = None
    refunds: dict[str, SandboxRefund] = attrs.field(factory=dict)

    @property
    def refunded(self) -> Decimal:
        """The total of the order's succeeded refunds."""
        return sum(
            (Decimal(r.amount) for r in self.refunds.values() if r.status == wire.REFUND_SUCCEEDED),
            Decimal(0),
        )

    def to_json(self, base_url: str) -> dict[str, Any]:
        """The order as the API shows it."""
        return {
            "id": self.id,
            "merchant_order_id": self.merchant_order_id,
            "amount": self.amount,
            "currency": self.currency,
            "description": self.description,
            "status": self.status,
            "checkout_url": f"{base_url}/checkout/{self.id}",
            "expires_at": self.expires_at,
            "payment_id": self.payment_id,
            "paid": self.paid,
            "fee": self.fee,
            "refunded": str(self.refunded),
        }


@attrs.define
class SandboxRefund:
    """A refund as the sandbox holds it."""

    id: str
    merchant_refund_id: str
    amount: str
    currency: str
    reason: str
    status: str = wire.REFUND_SUCCEEDED

    def to_json(self) -> dict[str, Any]:
        """The refund as the API shows it."""
        return {
            "id": self.id,
            "merchant_refund_id": self.merchant_refund_id,
            "amount": self.amount,
            "currency": self.currency,
            "reason": self.reason,
            "status": self.status,
        }


class _Refusal(Exception):
    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.field = field

    def answer(self) -> Answer:
        error = {"code": self.code, "message": str(self), "field": self.field}
        shown = {name: value for name, value in error.items() if value is not None}
        return Answer(wire.ERRORS[self.code], _json({"error": shown}))


# No slots: a test may wrap one of its methods on the instance.
@attrs.define(kw_only=True, eq=False, slots=False)
class ExamplePaySandbox:
    """ExamplePay's API with in-memory orders.

    :param api_key: The one API key the sandbox accepts (default: a fresh random one).
    :param api_secret: The shared secret for request and callback signatures (default: a
        fresh random one).
    :param base_url: Where the sandbox says it is (checkout links); :func:`serve` sets it.
    :param deliver: Sends each callback; default
        :func:`~payments_core.testing.sandbox.post_delivery`.
    :param clock: Unix seconds now.

    Attributes:
        orders: Orders by ``merchant_order_id``.
        deliveries: Every callback sent, oldest first.
    """

    api_key: str = attrs.field(repr=False, factory=lambda: f"ex_key_{secrets.token_hex(8)}")
    api_secret: str = attrs.field(repr=False, factory=lambda: secrets.token_hex(24))
    base_url: str = "http://sandbox.examplepay.invalid"
    deliver: Callable[[Delivery], None] = post_delivery
    clock: Callable[[], float] = time.time
    orders: dict[str, SandboxOrder] = attrs.field(init=False, factory=dict)
    deliveries: list[Delivery] = attrs.field(init=False, factory=list)
    _lock: threading.Lock = attrs.field(init=False, factory=threading.Lock)

    def settings(self) -> dict[str, str]:
        """Provider settings that point at this sandbox: its URL and credentials."""
        return {"base_url": self.base_url, "api_key": self.api_key, "api_secret": self.api_secret}

    # -- the merchant API ---------------------------------------------------------------------

    def handle(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> Answer:
        """Answer one API request as ExamplePay would."""
        try:
            self._authenticate(method, path, {k.lower(): v for k, v in headers.items()}, body)
            if method == "GET" and path == wire.PATH_ACCOUNT:
                return Answer(200, _json({"account": {"merchant": "sandbox", "mode": "test"}}))
            if method == "POST" and path == wire.PATH_ORDERS:
                return Answer(201, _json({"order": self._create(body)}))
            refund_path = _REFUND_PATH.fullmatch(path)
            if refund_path and method == "POST" and not refund_path.group(2):
                return self._refund(refund_path.group(1), body)
            if refund_path and method == "GET" and refund_path.group(2):
                return self._find_refund(refund_path.group(1), refund_path.group(2))
            match = _ORDER_PATH.fullmatch(path)
            if match and method == "GET" and not match.group(2):
                return Answer(
                    200, _json({"order": self._find(match.group(1)).to_json(self.base_url)})
                )
            if match and method == "POST" and match.group(2):
                return Answer(200, _json({"order": self.close(match.group(1))}))
            raise _Refusal("not_found", f"no endpoint {method} {path}")
        except _Refusal as refusal:
            return refusal.answer()

    def _authenticate(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes
    ) -> None:
        if not hmac.compare_digest(
            headers.get(wire.HEADER_KEY.lower(), "").encode(), self.api_key.encode()
        ):
            raise _Refusal("unknown_key", "unknown API key")
        timestamp = headers.get(wire.HEADER_TIMESTAMP.lower(), "")
        if not (timestamp.isascii() and timestamp.isdigit()):
            raise _Refusal("stale_timestamp", "timestamp missing or malformed")
        if abs(self.clock() - int(timestamp)) > wire.TIMESTAMP_TOLERANCE_SECONDS:
            raise _Refusal("stale_timestamp", "timestamp outside the 300 s window")
        payload = f"{timestamp}\n{method}\n{path}\n".encode() + body
        expected = hmac.new(self.api_secret.encode(), payload, hashlib.sha256).hexdigest()
        given = headers.get(wire.HEADER_SIGNATURE.lower(), "")
        if not hmac.compare_digest(expected.encode(), given.encode("utf-8", "replace")):
            raise _Refusal("bad_signature", "signature does not match")

    def _create(self, body: bytes) -> dict[str, Any]:
        fields = _object(body)
        order = SandboxOrder(
            id=f"ord_{secrets.token_hex(12)}",
            merchant_order_id=_field(fields, "merchant_order_id", _MERCHANT_ORDER_ID),
            amount=_field(fields, "amount", _AMOUNT),
            currency=_field(fields, "currency", re.compile("|".join(wire.CURRENCIES))),
            description=_text(fields, "description", wire.DESCRIPTION_MAX),
            callback_url=_url(fields, "callback_url"),
            return_url=_optional(fields, "return_url", _url),
            expires_at=_optional(fields, "expires_at", _timestamp),
        )
        _check_amount(order.amount, order.currency)
        with self._lock:
            if order.merchant_order_id in self.orders:
                raise _Refusal("duplicate_order", "an order with this merchant_order_id exists")
            self.orders[order.merchant_order_id] = order
        return order.to_json(self.base_url)

    def _find(self, merchant_order_id: str) -> SandboxOrder:
        order = self.orders.get(merchant_order_id)
        if order is None:
            raise _Refusal("order_not_found", "no order with this merchant_order_id")
        return order

    def _refund(self, merchant_order_id: str, body: bytes) -> Answer:
        fields = _object(body)
        merchant_refund_id = _field(fields, "merchant_refund_id", _MERCHANT_ORDER_ID)
        amount = _field(fields, "amount", _AMOUNT)
        currency = _field(fields, "currency", re.compile("|".join(wire.CURRENCIES)))
        reason = _text(fields, "reason", wire.REASON_MAX)
        _check_amount(amount, currency)
        with self._lock:
            order = self._find(merchant_order_id)
            known = order.refunds.get(merchant_refund_id)
            if known is not None:
                # The same refund asked again: the one made the first time, never a second.
                if (Decimal(known.amount), known.currency) != (Decimal(amount), currency):
                    raise _Refusal("refund_mismatch", "this merchant_refund_id names another")
                return Answer(
                    200, _json({"refund": known.to_json(), "order": order.to_json(self.base_url)})
                )
            if order.status not in _REFUNDABLE:
                raise _Refusal("order_not_refundable", f"the order is {order.status}")
            if currency != order.currency:
                raise _Refusal("invalid_request", "currency must be the order's", "currency")
            if Decimal(amount) > Decimal(order.amount) - order.refunded:
                raise _Refusal("refund_exceeds_remaining", "more than remains", "amount")
            refund = SandboxRefund(
                f"rfd_{secrets.token_hex(12)}", merchant_refund_id, amount, currency, reason
            )
            order.refunds[merchant_refund_id] = refund
            full = order.refunded >= Decimal(order.amount)
            order.status = wire.STATUS_REFUNDED if full else wire.STATUS_PARTIALLY_REFUNDED
        self._notify(order, wire.EVENT_REFUNDED, refund=refund)
        return Answer(
            201, _json({"refund": refund.to_json(), "order": order.to_json(self.base_url)})
        )

    def _find_refund(self, merchant_order_id: str, merchant_refund_id: str) -> Answer:
        order = self._find(merchant_order_id)
        refund = order.refunds.get(merchant_refund_id)
        if refund is None:
            raise _Refusal("refund_not_found", "no refund with this merchant_refund_id")
        return Answer(
            200, _json({"refund": refund.to_json(), "order": order.to_json(self.base_url)})
        )

    def refund_count(self) -> int:
        """How many refunds the sandbox holds in all."""
        return sum(len(order.refunds) for order in self.orders.values())

    # -- what the payer and the sandbox operator do ---------------------------------------------

    def order_by_id(self, order_id: str) -> SandboxOrder:
        """The order with ExamplePay id ``order_id``.

        :raises KeyError: if there is none.
        """
        for order in self.orders.values():
            if order.id == order_id:
                return order
        raise KeyError(order_id)

    def pay(
        self, order_id: str, *, amount: str | None = None, asset: str | None = None
    ) -> Delivery:
        """Pay the order ``order_id`` and send its ``order.paid`` callback.

        An open order is paid at once; a ``processing`` one is confirmed, a ``held`` one
        accepted (as the merchant would in ExamplePay's dashboard). The payer pays the price,
        or picks another asset (:data:`wire.ASSETS`) and pays ``amount`` of it: the order then
        says what was paid in that asset, which the merchant learns only now. ExamplePay keeps
        :data:`wire.FEE_RATE` of what was paid as its fee.

        :raises KeyError: if there is no such order.
        :raises ValueError: if it is neither open, processing nor held, or the asset or amount
            is not one to pay with.
        """
        started = (wire.STATUS_OPEN, wire.STATUS_PROCESSING, wire.STATUS_HELD)
        return self._move(
            order_id, started, wire.STATUS_PAID, wire.EVENT_PAID, paid=(amount, asset), fee=True
        )

    def receive(self, order_id: str) -> Delivery:
        """A payment for the open order ``order_id`` arrives, not yet confirmed.

        The order becomes ``processing`` and its ``order.processing`` callback is sent;
        :meth:`pay` confirms it, :meth:`hold` finds its amount wrong, :meth:`fail` drops it.

        :raises KeyError: if there is no such order.
        :raises ValueError: if it is not open.
        """
        return self._move(
            order_id, (wire.STATUS_OPEN,), wire.STATUS_PROCESSING, wire.EVENT_PROCESSING
        )

    def hold(self, order_id: str, paid: str) -> Delivery:
        """``paid`` arrived for the order ``order_id`` instead of its amount: hold it.

        The order becomes ``held`` (it awaits the merchant's review) and its ``order.held``
        callback, stating what was ``paid`` in the order's currency, is sent.

        :raises KeyError: if there is no such order.
        :raises ValueError: if it is neither open nor processing, or ``paid`` is its amount.
        """
        order = self.order_by_id(order_id)
        if Decimal(paid) == Decimal(order.amount):
            raise ValueError(f"{paid} is the amount of order {order_id}: nothing to hold")
        started = (wire.STATUS_OPEN, wire.STATUS_PROCESSING)
        return self._move(
            order_id, started, wire.STATUS_HELD, wire.EVENT_HELD, paid=(paid, order.currency)
        )

    def fail(self, order_id: str) -> Delivery:
        """The payment of order ``order_id`` never confirmed, or the merchant refused it.

        :raises KeyError: if there is no such order.
        :raises ValueError: if it is neither processing nor held.
        """
        started = (wire.STATUS_PROCESSING, wire.STATUS_HELD)
        return self._move(order_id, started, wire.STATUS_FAILED, wire.EVENT_FAILED)

    def _move(
        self,
        order_id: str,
        started: tuple[str, ...],
        status: str,
        event_type: str,
        *,
        paid: tuple[str | None, str | None] | None = None,
        fee: bool = False,
    ) -> Delivery:
        """Move the order to ``status`` and send ``event_type``.

        ``paid`` is what arrived, ``(amount, asset)``; ``(None, None)`` keeps what arrived
        before (a held payment the merchant accepts), or else the price. With ``fee``,
        ExamplePay's fee on what was paid is recorded.
        """
        with self._lock:
            order = self.order_by_id(order_id)
            if order.status not in started:
                raise ValueError(f"order {order_id} is {order.status}, not {' or '.join(started)}")
            if paid is not None:
                order.paid = _paid(order, *paid)
            if fee and order.paid is not None:
                order.fee = _fee(order.paid)
            order.status = status
            if order.payment_id is None:
                order.payment_id = f"pay_{secrets.token_hex(12)}"
        return self._notify(order, event_type)

    def close(self, merchant_order_id: str) -> dict[str, Any]:
        """Close an open order and send its ``order.closed`` callback; return the order."""
        with self._lock:
            order = self._find(merchant_order_id)
            if order.status != wire.STATUS_OPEN:
                raise _Refusal("order_not_closable", f"the order is {order.status}")
            order.status = wire.STATUS_CLOSED
        self._notify(order, wire.EVENT_CLOSED)
        return order.to_json(self.base_url)

    def _notify(
        self, order: SandboxOrder, event_type: str, *, refund: SandboxRefund | None = None
    ) -> Delivery:
        created = int(self.clock())
        event: dict[str, Any] = {
            "event_id": f"evt_{secrets.token_hex(12)}",
            "type": event_type,
            "created": created,
            "order": order.to_json(self.base_url),
        }
        if refund is not None:
            event["refund"] = refund.to_json()
        body = _json(event)
        timestamp = str(created)
        signature = hmac.new(
            self.api_secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256
        ).hexdigest()
        delivery = Delivery(
            order.callback_url,
            {
                "Content-Type": "application/json",
                wire.HEADER_EVENT_TIMESTAMP: timestamp,
                wire.HEADER_EVENT_SIGNATURE: signature,
            },
            body,
        )
        self.deliveries.append(delivery)
        self.deliver(delivery)
        return delivery


def _paid(order: SandboxOrder, amount: str | None, asset: str | None) -> dict[str, str]:
    """What arrived for ``order``: ``amount`` of ``asset``, else what arrived before or the price.

    :raises ValueError: if the asset is not one to pay with, or the amount is malformed.
    """
    if asset is None:
        return order.paid or {"amount": order.amount, "currency": order.currency}
    if asset not in wire.ASSETS or amount is None or not _AMOUNT.fullmatch(amount):
        raise ValueError(f"cannot pay {amount} {asset}")
    return {"amount": amount, "currency": asset}


def _fee(paid: Mapping[str, str]) -> dict[str, str]:
    """ExamplePay's fee on what was ``paid``: :data:`wire.FEE_RATE` of it, rounded down."""
    places = Decimal(1).scaleb(-wire.ASSETS[paid["currency"]])
    fee = (Decimal(paid["amount"]) * Decimal(wire.FEE_RATE)).quantize(places, ROUND_DOWN)
    return {"amount": format(fee, "f"), "currency": paid["currency"]}


def _object(body: bytes) -> dict[str, Any]:
    try:
        fields = json.loads(body)
    except ValueError:
        raise _Refusal("invalid_request", "body is not JSON") from None
    if not isinstance(fields, dict):
        raise _Refusal("invalid_request", "body must be a JSON object")
    return fields


def _field(fields: Mapping[str, Any], name: str, pattern: re.Pattern[str]) -> str:
    value = fields.get(name)
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise _Refusal("invalid_request", f"{name} is missing or malformed", name)
    return value


def _text(fields: Mapping[str, Any], name: str, maximum: int) -> str:
    value = fields.get(name)
    if not isinstance(value, str) or len(value) > maximum:
        raise _Refusal("invalid_request", f"{name} must be text of at most {maximum}", name)
    return value


def _url(fields: Mapping[str, Any], name: str) -> str:
    value = _text(fields, name, 2048)
    if not value.startswith(("http://", "https://")):
        raise _Refusal("invalid_request", f"{name} must be an http or https URL", name)
    return value


def _optional(
    fields: Mapping[str, Any], name: str, check: Callable[[Mapping[str, Any], str], str]
) -> str | None:
    return None if fields.get(name) is None else check(fields, name)


def _timestamp(fields: Mapping[str, Any], name: str) -> str:
    value = _text(fields, name, 64)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise _Refusal("invalid_request", f"{name} must be an ISO 8601 time", name) from None
    if moment.tzinfo is None:
        raise _Refusal("invalid_request", f"{name} must carry its UTC offset", name)
    return value


def _check_amount(amount: str, currency: str) -> None:
    places = wire.CURRENCIES[currency]
    value = Decimal(amount)
    if value <= 0 or value != value.quantize(Decimal(1).scaleb(-places)):
        raise _Refusal(
            "invalid_request", f"amount must be positive with at most {places} decimals", "amount"
        )


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


# -- ways in ----------------------------------------------------------------------------------


def sandbox_transport(sandbox: ExamplePaySandbox) -> httpx.MockTransport:
    """An ``httpx`` transport (blocking and asynchronous) that calls ``sandbox`` in process."""
    return mock_transport(functools.partial(_api, sandbox))


def build_app(sandbox: ExamplePaySandbox) -> ASGIApp:
    """The sandbox as an ASGI app: the API under ``/v1``, checkout pages under ``/checkout``."""
    return sandbox_app(
        functools.partial(_api, sandbox),
        pages={"/checkout/": functools.partial(_checkout, sandbox)},
    )


def _api(sandbox: ExamplePaySandbox, request: SandboxRequest) -> Answer:
    return sandbox.handle(request.method, request.path, request.headers, request.body)


def _checkout(sandbox: ExamplePaySandbox, request: SandboxRequest) -> Answer:
    """The payer's page: pay the price, or pick an asset (a form's ``asset`` and ``amount``)."""
    page = {"content-type": "text/html; charset=utf-8"}
    try:
        order = sandbox.order_by_id(request.path.removeprefix("/checkout/"))
    except KeyError:
        return Answer(404, b"<h1>No such order</h1>", page)
    if request.method == "POST" and order.status == wire.STATUS_OPEN:
        form = dict(parse_qsl(request.body.decode("utf-8", "replace")))
        try:
            sandbox.pay(order.id, amount=form.get("amount"), asset=form.get("asset"))
        except ValueError as refused:
            return Answer(400, f"<h1>{html.escape(str(refused))}</h1>".encode(), page)
    assets = "".join(f"<option>{asset}</option>" for asset in wire.ASSETS)
    action = (
        '<form method="post"><button>Pay</button></form>'
        '<form method="post"><input name="amount" placeholder="amount">'
        f'<select name="asset">{assets}</select><button>Pay in another asset</button></form>'
        if order.status == wire.STATUS_OPEN
        else f"<p>This order is {order.status}.</p>"
    )
    text = (
        "<!doctype html><title>ExamplePay sandbox</title>"
        f"<h1>Pay {order.amount} {order.currency}</h1>{action}"
    )
    return Answer(200, text.encode(), page)


@contextmanager
def serve(
    sandbox: ExamplePaySandbox | None = None, *, host: str = "127.0.0.1", port: int = 0
) -> Iterator[RunningSandbox[ExamplePaySandbox]]:
    """Serve a sandbox with uvicorn in a thread; stop it on leaving the block.

    :param sandbox: The sandbox to serve; default a new one with fresh credentials.
    :param port: ``0`` picks a free port.
    :raises RuntimeError: if it cannot listen there.
    """
    sandbox = sandbox or ExamplePaySandbox()
    app = build_app(sandbox)
    with background_server(app, host, port, name="examplepay-sandbox", lifespan="off") as server:
        sandbox.base_url = server.url
        yield RunningSandbox(server.url, sandbox.settings(), sandbox)
