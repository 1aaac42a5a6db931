"""The Stripe provider: Checkout Sessions behind the hooks ``payments_core`` calls.

It does no I/O. Hooks that talk to Stripe return *operations*, generators that yield the
:class:`~payments_core.HttpRequest` to send and receive the :class:`~payments_core.HttpResponse`;
the core sends them over its own httpx clients, retries them and runs them for blocking and
asynchronous callers alike. The ``stripe`` SDK is not used.

An order is one Checkout Session in ``payment`` mode with one line item for the price.

* **One session per reference.** The create carries ``Idempotency-Key:
  payments-create-<reference>``: for 24 hours Stripe answers every repeat with the same
  session, so a create whose answer was lost is recovered by sending it again. After 24 hours
  the key is forgotten, and so is an unpaid session (Stripe expires it within 24 hours).
* **Query by reference.** Stripe cannot look a session up by our id. The reference travels as
  ``client_reference_id`` (and in ``metadata``), and :meth:`StripeProvider.query_order` pages
  through the sessions created within ``query_window_hours`` (default 72), newest first.
* **Callbacks** are Stripe webhooks, sent to the endpoints configured on the account (not to
  a URL per session: ``OrderRequest.callback_url`` is not sent), verified with the
  ``Stripe-Signature`` scheme (:mod:`payments_stripe.signatures`).

Settings (``[providers.stripe]`` in the configuration, or the environment):

======================  ===============================  =================================
key                     environment                      meaning
======================  ===============================  =================================
``api_key``             ``STRIPE_API_KEY``               the secret key (``sk_test_...``)
``webhook_secret``      ``STRIPE_WEBHOOK_SECRET``        the endpoint's signing secret
``base_url``            ``STRIPE_BASE_URL``              default ``https://api.stripe.com``
``query_window_hours``  ``STRIPE_QUERY_WINDOW_HOURS``    how far back a query looks (72)
``return_url``          ``STRIPE_RETURN_URL``            where the payer lands when the
                                                         order names no ``return_url``
======================  ===============================  =================================

Every session carries ``success_url`` and ``cancel_url``: Stripe's API reference lists
``success_url`` as required for a hosted session, so a create without one would fail on live
Stripe for every order. They come from the order's ``return_url`` and ``cancel_url``, else
the ``return_url`` setting, else the site of the order's ``callback_url`` (its scheme and
host: the merchant's own).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import quote, urlencode, urlsplit

from payments_core import (
    CAPABILITIES,
    CallbackPayloadError,
    CallbackReply,
    CallbackRequest,
    CallbackResult,
    CallbackVerificationError,
    ConfigurationError,
    ErrorClassification,
    IdempotencyPattern,
    Money,
    Order,
    OrderRequest,
    PaymentEvent,
    PaymentsError,
    PaymentStatus,
    ProviderContext,
    ProviderInfo,
    ProviderSandbox,
    Refund,
    RefundNotice,
    RefundRequest,
    RefundStatus,
    ResponseLost,
    ValidationError,
    get_logger,
    hookimpl,
)
from payments_core.errors import parse_retry_after
from payments_core.http import HttpRequest, HttpResponse, Operation
from payments_core.money import CURRENCIES
from payments_stripe import wire
from payments_stripe.amounts import from_stripe, to_stripe
from payments_stripe.classification import StripeError, classify
from payments_stripe.signatures import SignatureRefused, verify

__all__ = ["StripeProvider", "idempotency_key", "refund_idempotency_key"]

log = get_logger("payments_stripe")

_ACK: Final = CallbackReply(200, b'{"received":true}')
_SETTINGS: Final = {
    "api_key": "STRIPE_API_KEY",
    "webhook_secret": "STRIPE_WEBHOOK_SECRET",
    "base_url": "STRIPE_BASE_URL",
    "query_window_hours": "STRIPE_QUERY_WINDOW_HOURS",
    "return_url": "STRIPE_RETURN_URL",
}
#: Events that say a session's payment succeeded, failed, or that it expired.
_SESSION_EVENTS: Final = {
    wire.EVENT_COMPLETED: PaymentStatus.PAID,
    wire.EVENT_ASYNC_SUCCEEDED: PaymentStatus.PAID,
    wire.EVENT_ASYNC_FAILED: PaymentStatus.FAILED,
    wire.EVENT_EXPIRED: PaymentStatus.EXPIRED,
}
_SETTLED: Final = frozenset({wire.PAYMENT_PAID, wire.PAYMENT_NOT_REQUIRED})
_REFUND_STATUSES: Final = {
    wire.REFUND_SUCCEEDED: RefundStatus.SUCCEEDED,
    wire.REFUND_PENDING: RefundStatus.PENDING,
    wire.REFUND_REQUIRES_ACTION: RefundStatus.PENDING,
    wire.REFUND_FAILED: RefundStatus.FAILED,
    wire.REFUND_CANCELED: RefundStatus.FAILED,
}
#: Events whose object is a Refund: each says how one refund stands.
_REFUND_EVENTS: Final = frozenset(
    {
        wire.EVENT_REFUND_CREATED,
        wire.EVENT_REFUND_UPDATED,
        wire.EVENT_REFUND_FAILED,
        wire.EVENT_CHARGE_REFUND_UPDATED,
    }
)


def idempotency_key(reference: str) -> str:
    """The ``Idempotency-Key`` of the create for ``reference``: the same one every time."""
    return f"payments-create-{reference}"


def refund_idempotency_key(reference: str, refund_reference: str) -> str:
    """The ``Idempotency-Key`` of a refund: the same for the same two references.

    A digest, since the two references together may exceed Stripe's 255 characters.
    """
    digest = hashlib.sha256(f"{reference}\x00{refund_reference}".encode()).hexdigest()
    return f"payments-refund-{digest[:48]}"


class StripeProvider:
    """Stripe Checkout, as a ``payments`` provider plugin (the entry point's factory)."""

    def __init__(self, context: ProviderContext) -> None:
        settings = context.settings
        self.name = context.name
        self._clock = context.clock
        base_url = settings.get("base_url", env=_SETTINGS["base_url"]) or wire.DEFAULT_BASE_URL
        self.base_url = base_url.rstrip("/")
        self._api_key = settings.secret("api_key", env=_SETTINGS["api_key"])
        self._webhook_secret = settings.secret("webhook_secret", env=_SETTINGS["webhook_secret"])
        hours = settings.number(
            "query_window_hours", env=_SETTINGS["query_window_hours"], default=72
        )
        if not 24 <= hours <= 24 * 90:
            raise ConfigurationError(
                f"query_window_hours must be 24 to {24 * 90} (sessions live up to 24 h), "
                f"not {hours}",
                provider=self.name,
            )
        self.query_window_s = int(hours * 3600)
        self.return_url = settings.get("return_url", env=_SETTINGS["return_url"])
        if self.return_url is not None and not self.return_url.startswith(("https://", "http://")):
            raise ConfigurationError(
                f"return_url must be an http(s) URL, not {self.return_url!r}", provider=self.name
            )

    def __repr__(self) -> str:
        return f"StripeProvider(name={self.name!r}, base_url={self.base_url!r})"

    # -- hooks ------------------------------------------------------------------------------

    @hookimpl
    def describe_provider(self) -> ProviderInfo:
        return ProviderInfo(
            name=self.name,
            display_name="Stripe Checkout",
            currencies=frozenset(wire.CURRENCIES & CURRENCIES.keys()),
            capabilities=CAPABILITIES,
            settings=dict(_SETTINGS),
            # Every create carries Idempotency-Key: the key derived from the reference.
            idempotency=IdempotencyPattern.IDEMPOTENCY_KEY,
        )

    @hookimpl
    def create_order(self, request: OrderRequest) -> Operation[Order]:
        return self._create(request, self._session_form(request))

    @hookimpl
    def classify_error(self, error: PaymentsError) -> ErrorClassification | None:
        return classify(error)

    @hookimpl
    def open_sandbox(self) -> AbstractContextManager[ProviderSandbox]:
        from payments_stripe.sandbox_server import serve

        return serve()

    # -- building requests --------------------------------------------------------------------

    def _session_form(self, request: OrderRequest) -> bytes:
        """The create's form body: the same bytes for the same request, every time.

        :raises ValidationError: before anything is sent, if Stripe cannot take the request.
        """
        if request.price.currency not in wire.CURRENCIES:
            raise ValidationError(
                "price.currency",
                f"Stripe Checkout here takes {', '.join(sorted(wire.CURRENCIES))}, "
                f"not {request.price.currency}",
                provider=self.name,
            )
        unit_amount, currency = to_stripe(request.price)
        minimum = wire.MINIMUM_CHARGE.get(request.price.currency)
        if minimum is not None and unit_amount < minimum:
            raise ValidationError(
                "price.amount",
                f"Stripe charges at least {from_stripe(minimum, currency)}",
                provider=self.name,
            )
        reference = request.reference
        name = request.description or f"Order {reference}"
        fields = [
            ("mode", "payment"),
            ("client_reference_id", reference),
            (f"metadata[{wire.METADATA_REFERENCE}]", reference),
            (f"payment_intent_data[metadata][{wire.METADATA_REFERENCE}]", reference),
            ("line_items[0][quantity]", "1"),
            ("line_items[0][price_data][currency]", currency),
            ("line_items[0][price_data][unit_amount]", str(unit_amount)),
            ("line_items[0][price_data][product_data][name]", name[: wire.PRODUCT_NAME_MAX]),
        ]
        success_url = request.return_url or self.return_url or _site(request.callback_url)
        fields.append(("success_url", success_url))
        fields.append(("cancel_url", request.cancel_url or success_url))
        if request.expires_at is not None:
            fields.append(("expires_at", str(self._expires_at(request.expires_at))))
        return urlencode(fields).encode()

    def _expires_at(self, moment: datetime) -> int:
        ahead = moment.timestamp() - self._clock.now().timestamp()
        if not wire.EXPIRES_MIN_SECONDS <= ahead <= wire.EXPIRES_MAX_SECONDS:
            raise ValidationError(
                "expires_at",
                "Stripe Checkout needs a session to expire 30 minutes to 24 hours from now",
                provider=self.name,
            )
        return int(moment.timestamp())

    def _request(
        self,
        method: str,
        path: str,
        operation: str,
        *,
        form: bytes = b"",
        idempotency: str | None = None,
    ) -> HttpRequest:
        key = self._api_key
        if key is None:
            raise ConfigurationError(
                f"Stripe needs api_key ([providers.{self.name}] or {_SETTINGS['api_key']})",
                provider=self.name,
            )
        headers = {"Authorization": f"Bearer {key.reveal()}", wire.HEADER_VERSION: wire.API_VERSION}
        if method == "POST":
            headers["Content-Type"] = wire.FORM
        if idempotency is not None:
            headers[wire.HEADER_IDEMPOTENCY_KEY] = idempotency
        return HttpRequest(method, self.base_url + path, headers, form, operation=operation)

    # -- operations: the hooks that talk to Stripe (create_order's first), and their steps ----

    def _create(self, request: OrderRequest, form: bytes) -> Operation[Order]:
        sent = self._request(
            "POST",
            wire.PATH_SESSIONS,
            "create_order",
            form=form,
            idempotency=idempotency_key(request.reference),
        )
        response = yield sent
        session = self._answer(response, "create_order")
        return self._order(request.reference, session, "create_order")

    def _find(self, reference: str, operation: str) -> Operation[dict[str, Any] | None]:
        """The newest session for ``reference`` created within the query window, or ``None``."""
        since = int(self._clock.now().timestamp()) - self.query_window_s
        params = [("limit", str(wire.LIST_LIMIT_MAX)), ("created[gte]", str(since))]
        return self._first(
            wire.PATH_SESSIONS,
            params,
            operation,
            lambda session: session.get("client_reference_id") == reference,
        )

    def _first(
        self,
        path: str,
        params: list[tuple[str, str]],
        operation: str,
        wanted: Callable[[dict[str, Any]], bool],
    ) -> Operation[dict[str, Any] | None]:
        """The first object of the list at ``path`` that is ``wanted``, paging on while the
        list has more (``starting_after`` the last object of a page), or ``None``."""
        query = params
        while True:
            response = yield self._request("GET", f"{path}?{urlencode(query)}", operation)
            page, has_more = self._page(response, operation)
            found = next((item for item in page if wanted(item)), None)
            if found is not None or not (has_more and page):
                return found
            query = [*params, ("starting_after", str(page[-1]["id"]))]

    @hookimpl
    def query_order(self, reference: str) -> Operation[Order | None]:
        session = yield from self._find(reference, "query_order")
        return None if session is None else self._order(reference, session, "query_order")

    @hookimpl
    def close_order(self, reference: str) -> Operation[bool]:
        session = yield from self._find(reference, "close_order")
        if session is None:
            raise StripeError(
                f"Stripe holds no session for reference {reference!r} to expire",
                provider=self.name,
                status_code=404,
                provider_code=wire.CODE_RESOURCE_MISSING,
                operation="close_order",
            )
        path = wire.PATH_EXPIRE.format(session_id=quote(str(session["id"]), safe=""))
        response = yield self._request("POST", path, "close_order")
        self._answer(response, "close_order")
        return True

    def _intent(self, order: Order, operation: str) -> Operation[str]:
        """The PaymentIntent that paid ``order``: the order's, or its session's.

        :raises ValidationError: on ``reference`` if Stripe holds the order as unpaid.
        """
        if order.transaction_id is not None:
            return order.transaction_id
        session = yield from self._find(order.reference, operation)
        intent = None if session is None else session.get("payment_intent")
        if not isinstance(intent, str) or not intent:
            raise ValidationError(
                "reference",
                f"Stripe holds no paid session for {order.reference!r}: nothing to refund",
                provider=self.name,
            )
        return intent

    @hookimpl
    def refund_order(self, order: Order, request: RefundRequest) -> Operation[Refund]:
        amount, _ = to_stripe(request.amount, field="amount")
        intent = yield from self._intent(order, "refund_order")
        fields = [
            ("payment_intent", intent),
            ("amount", str(amount)),
            (f"metadata[{wire.METADATA_REFERENCE}]", request.reference),
            (f"metadata[{wire.METADATA_REFUND_REFERENCE}]", request.refund_reference),
        ]
        if request.reason:
            fields.append((f"metadata[{wire.METADATA_REFUND_REASON}]", request.reason))
        response = yield self._request(
            "POST",
            wire.PATH_REFUNDS,
            "refund_order",
            form=urlencode(fields).encode(),
            idempotency=refund_idempotency_key(request.reference, request.refund_reference),
        )
        return self._refund_of(
            request, order, self._answer(response, "refund_order"), "refund_order"
        )

    @hookimpl
    def query_refund(self, order: Order, request: RefundRequest) -> Operation[Refund | None]:
        intent = yield from self._intent(order, "query_refund")

        def ours(refund: dict[str, Any]) -> bool:
            metadata = refund.get("metadata")
            return isinstance(metadata, dict) and (
                metadata.get(wire.METADATA_REFERENCE),
                metadata.get(wire.METADATA_REFUND_REFERENCE),
            ) == (request.reference, request.refund_reference)

        params = [("payment_intent", intent), ("limit", str(wire.LIST_LIMIT_MAX))]
        refund = yield from self._first(wire.PATH_REFUNDS, params, "query_refund", ours)
        return None if refund is None else self._refund_of(request, order, refund, "query_refund")

    def _refund_of(
        self, request: RefundRequest, order: Order, refund: Mapping[str, Any], operation: str
    ) -> Refund:
        try:
            return Refund(
                provider=self.name,
                reference=request.reference,
                refund_reference=request.refund_reference,
                provider_refund_id=_text(refund["id"]),
                provider_order_id=order.provider_order_id,
                amount=from_stripe(refund["amount"], refund["currency"]),
                status=_REFUND_STATUSES[refund["status"]],
                reason=request.reason,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise self._unreadable(operation, exc) from None

    @hookimpl
    def check_connection(self) -> Operation[str]:
        response = yield self._request("GET", wire.PATH_BALANCE, "check_connection")
        balance = self._answer(response, "check_connection")
        available = balance.get("available")
        mode = "live" if balance.get("livemode") is True else "test"
        count = len(available) if isinstance(available, list) else 0
        return f"Stripe balance in {count} currencies ({mode} mode)"

    @hookimpl
    def handle_callback(self, callback: CallbackRequest) -> Operation[CallbackResult]:
        if len(callback.body) > wire.CALLBACK_BODY_MAX:
            raise self._refused(CallbackPayloadError, 413, "body too large")
        header = callback.headers.get(wire.HEADER_SIGNATURE.lower(), "")
        try:
            verify(header, callback.body, self._secret(), now=self._clock.now().timestamp())
        except SignatureRefused as refusal:
            raise self._refused(CallbackVerificationError, 400, str(refusal)) from None
        event_id, kind, created, data = self._event(callback.body)
        if kind in _SESSION_EVENTS:
            event = self._session_event(event_id, kind, created, data)
        elif kind in _REFUND_EVENTS:
            event = yield from self._refund_event(event_id, created, data)
        else:
            event = None  # a verified event of a kind that moves no order: acknowledged
        log.debug("webhook %s (%s) verified: %s", event_id, kind, event and event.status)
        return CallbackResult(event, _ACK)

    # -- reading answers ----------------------------------------------------------------------

    def _answer(self, response: HttpResponse, operation: str) -> dict[str, Any]:
        if response.status_code != 200:
            raise self._error(response, operation)
        try:
            document = json.loads(response.content)
        except ValueError:
            document = None
        if not isinstance(document, dict):
            # A success we cannot read: the session may exist, so the outcome is unknown.
            raise self._unreadable(operation)
        return document

    def _page(self, response: HttpResponse, operation: str) -> tuple[list[dict[str, Any]], bool]:
        page = self._answer(response, operation)
        sessions = page.get("data")
        if not (
            isinstance(sessions, list)
            and all(isinstance(s, dict) and isinstance(s.get("id"), str) for s in sessions)
        ):
            raise self._unreadable(operation)
        return sessions, page.get("has_more") is True

    def _order(self, reference: str, session: Mapping[str, Any], operation: str) -> Order:
        try:
            if session.get("client_reference_id") != reference:
                raise ValueError("the session is for another reference")
            expires = session.get("expires_at")
            return Order(
                provider=self.name,
                reference=reference,
                provider_order_id=_text(session["id"]),
                status=_status(session),
                amount=from_stripe(session["amount_total"], session["currency"]),
                checkout_url=_optional_text(session.get("url")),
                expires_at=None if expires is None else _moment(expires),
                transaction_id=_optional_text(session.get("payment_intent")),
                paid=_paid(session),
            )
        except (KeyError, TypeError, ValueError, OverflowError, OSError) as exc:
            raise self._unreadable(operation, exc) from None

    def _unreadable(self, operation: str, error: Exception | None = None) -> ResponseLost:
        """A success answer we cannot read: what was asked may have happened (outcome unknown)."""
        return ResponseLost.unreadable("Stripe", operation, provider=self.name, error=error)

    def _error(self, response: HttpResponse, operation: str) -> StripeError:
        error: dict[str, Any] = {}
        try:
            document = json.loads(response.content)
            if isinstance(document, dict) and isinstance(document.get("error"), dict):
                error = document["error"]
        except ValueError:
            pass
        kind = error.get("type") if isinstance(error.get("type"), str) else None
        code = error.get("code") if isinstance(error.get("code"), str) else None
        should_retry = response.headers.get(wire.HEADER_SHOULD_RETRY.lower())
        return StripeError(
            f"Stripe refused {operation}: HTTP {response.status_code}"
            + (f" ({code or kind})" if code or kind else ""),
            provider=self.name,
            status_code=response.status_code,
            provider_code=code or kind,
            error_type=kind,
            should_retry={"true": True, "false": False}.get(should_retry or ""),
            request_id=response.headers.get(wire.HEADER_REQUEST_ID.lower()),
            retry_after=parse_retry_after(response.headers),
            operation=operation,
        )

    def _event(self, body: bytes) -> tuple[str, str, int, dict[str, Any]]:
        try:
            document = json.loads(body)
            event_id, kind, created = document["id"], document["type"], document["created"]
            data = document["data"]["object"]
            if not (
                isinstance(event_id, str)
                and event_id
                and isinstance(kind, str)
                and type(created) is int
                and isinstance(data, dict)
            ):
                raise TypeError("id, type, created or data.object has the wrong type")
            return event_id, kind, created, data
        except (KeyError, TypeError, ValueError, UnicodeDecodeError) as exc:
            raise self._refused(
                CallbackPayloadError, 400, f"unreadable event ({type(exc).__name__})"
            ) from None

    def _session_event(
        self, event_id: str, kind: str, created: int, session: Mapping[str, Any]
    ) -> PaymentEvent | None:
        status = _SESSION_EVENTS[kind]
        try:
            reference = session.get("client_reference_id")
            if reference is None:
                return None  # a session this provider did not create (a Payment Link, say)
            if kind == wire.EVENT_COMPLETED and session.get("payment_status") not in _SETTLED:
                # A delayed method (a bank debit): seen, and async_payment_* will end it.
                status = PaymentStatus.CONFIRMING
            return PaymentEvent(
                provider=self.name,
                event_id=event_id,
                status=status,
                provider_order_id=_text(session["id"]),
                provider_reference=_text(reference),
                amount=from_stripe(session["amount_total"], session["currency"]),
                occurred_at=_moment(created),
                transaction_id=_optional_text(session.get("payment_intent")),
                paid=_paid(session),
            )
        except (KeyError, TypeError, ValueError, OverflowError, OSError) as exc:
            raise self._refused(
                CallbackPayloadError, 400, f"unreadable session ({type(exc).__name__})"
            ) from None

    def _refund_event(
        self, event_id: str, created: int, refund: Mapping[str, Any]
    ) -> Operation[PaymentEvent | None]:
        """A refund that ended (succeeded or failed), as a notice for the session it refunds.

        A refund names its PaymentIntent, not the session: the session is looked up by it.
        ``charge.refunded`` is acknowledged and left alone: each refund's own event tells it.
        """
        try:
            status = _REFUND_STATUSES[refund["status"]]
            intent = refund["payment_intent"]
            amount = from_stripe(refund["amount"], refund["currency"])
            refund_id = _text(refund["id"])
        except (KeyError, TypeError, ValueError) as exc:
            raise self._refused(
                CallbackPayloadError, 400, f"unreadable refund ({type(exc).__name__})"
            ) from None
        if status is RefundStatus.PENDING or not isinstance(intent, str) or not intent:
            return None  # not done yet, or not a PaymentIntent's refund
        params = urlencode([("payment_intent", intent), ("limit", "1")])
        response = yield self._request("GET", f"{wire.PATH_SESSIONS}?{params}", "handle_callback")
        sessions, _ = self._page(response, "handle_callback")
        reference = sessions[0].get("client_reference_id") if sessions else None
        if not isinstance(reference, str):
            return None  # the charge was not paid through one of our sessions
        whole = sessions[0].get("amount_total") == refund["amount"]
        return PaymentEvent(
            provider=self.name,
            event_id=event_id,
            # What Stripe's refund alone suggests; the ledger decides from its own totals.
            status=(
                PaymentStatus.PAID
                if status is RefundStatus.FAILED
                else PaymentStatus.REFUNDED
                if whole
                else PaymentStatus.PARTIALLY_REFUNDED
            ),
            provider_order_id=str(sessions[0]["id"]),
            provider_reference=reference,
            amount=amount,
            occurred_at=_moment(created),
            transaction_id=intent,
            refund=RefundNotice(
                provider_refund_id=refund_id,
                status=status,
                amount=amount,
                refund_reference=_echoed_refund_reference(refund),
            ),
        )

    def _secret(self) -> str:
        if self._webhook_secret is None:
            raise ConfigurationError(
                f"Stripe needs webhook_secret ([providers.{self.name}] or "
                f"{_SETTINGS['webhook_secret']}) to verify webhooks",
                provider=self.name,
            )
        return self._webhook_secret.reveal()

    def _refused(
        self, kind: type[CallbackVerificationError | CallbackPayloadError], status: int, why: str
    ) -> CallbackVerificationError | CallbackPayloadError:
        log.info("refused a Stripe webhook: %s", why)
        return kind(
            f"Stripe webhook refused: {why}",
            provider=self.name,
            reply=CallbackReply(status, json.dumps({"error": why}).encode()),
        )


def _site(url: str) -> str:
    """The site a URL is on: its scheme and host, with ``/``."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/"


def _status(session: Mapping[str, Any]) -> PaymentStatus:
    state = session["status"]
    if state == wire.SESSION_OPEN:
        return PaymentStatus.PENDING
    if state == wire.SESSION_EXPIRED:
        return PaymentStatus.EXPIRED
    if state == wire.SESSION_COMPLETE:
        # Complete but unpaid: a delayed method (a bank debit) is still under way.
        paid = session.get("payment_status") in _SETTLED
        return PaymentStatus.PAID if paid else PaymentStatus.CONFIRMING
    raise ValueError("unknown session status")


def _paid(session: Mapping[str, Any]) -> Money | None:
    """What the payer paid: the session's total, once Stripe says it is paid.

    Stripe's fee is not here: it sits on the charge's balance transaction, which neither the
    session nor its webhook carries, so ``fee`` stays ``None`` rather than cost a request.
    """
    if session.get("payment_status") != wire.PAYMENT_PAID:
        return None
    return from_stripe(session["amount_total"], session["currency"])


def _text(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise TypeError("an id must be a non-empty string")
    return value


def _optional_text(value: object) -> str | None:
    return None if value is None else _text(value)


def _moment(value: object) -> datetime:
    if type(value) is not int:
        raise TypeError("a time must be integer Unix seconds")
    return datetime.fromtimestamp(value, UTC)


def _echoed_refund_reference(refund: Mapping[str, Any]) -> str | None:
    """The caller's refund reference the refund keeps in its metadata, if it keeps one."""
    metadata = refund.get("metadata")
    if not isinstance(metadata, Mapping):
        return None
    echoed = metadata.get(wire.METADATA_REFUND_REFERENCE)
    return echoed if isinstance(echoed, str) and echoed else None
