"""Stripe's Checkout API imitated, for demos and tests: stateful, idempotent, signing webhooks.

:class:`StripeSandbox` holds Checkout Sessions, their PaymentIntents, charges and refunds, and
answers API requests as Stripe does: form bodies parsed and checked field by field, ``Bearer``
keys, ``Idempotency-Key`` replay for 24 hours (a repeat with other parameters is a 400
``idempotency_error``), lists paged newest first both ways, ``expand[]``, a ``Request-Id`` on
every answer, errors as ``{"error": {"type", "code", "message", "param", "doc_url"}}``.
Objects are whole (:mod:`payments_stripe.sandbox_objects`). Paying, expiring or refunding
sends the matching event, signed with ``Stripe-Signature`` under every webhook secret in use
(two during a rotation); an event an API request caused names it in ``request``. It shares
only :mod:`payments_stripe.wire` with the provider: its own form parser, its own signer, so a
bug on one side cannot hide one on the other.

Stripe's refusals it imitates, each switchable: minimum charge amounts
(``validate_minimums``) and the refund ``reason`` values (``validate_refund_reasons``).
Not imitated: taxes, customers, payment methods other than cards, automatic expiry events (a
session past ``expires_at`` reads as expired), webhook retries. An endpoint or parameter it
does not know is answered as Stripe answers an unknown one.

Ways in: :func:`sandbox_transport` (in process, for ``httpx``), and
:mod:`payments_stripe.sandbox_server` (served on loopback, with injected faults).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import re
import secrets
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

import attrs
import httpx

from payments_core.testing.sandbox import (
    Answer,
    Delivery,
    SandboxRequest,
    mock_transport,
    post_delivery,
)
from payments_stripe import sandbox_objects as objects
from payments_stripe import sandbox_params as params
from payments_stripe import wire
from payments_stripe.sandbox_params import StripeRefusal

__all__ = ["EVENT_TYPES", "ROUTES", "StripeRefusal", "StripeSandbox", "api", "sandbox_transport"]

#: The API's routes: method, path (as :mod:`~payments_stripe.wire` spells it), handler.
_ROUTE_TABLE: Final = (
    ("POST", wire.PATH_SESSIONS, "_create_session"),
    ("GET", wire.PATH_SESSIONS, "_list_sessions"),
    ("GET", wire.PATH_SESSION, "_retrieve_session"),
    ("POST", wire.PATH_EXPIRE, "_expire_session"),
    ("GET", wire.PATH_LINE_ITEMS, "_list_line_items"),
    ("GET", wire.PATH_PAYMENT_INTENT, "_retrieve_intent"),
    ("POST", wire.PATH_REFUNDS, "_create_refund"),
    ("GET", wire.PATH_REFUNDS, "_list_refunds"),
    ("GET", wire.PATH_REFUND, "_retrieve_refund"),
    ("GET", wire.PATH_BALANCE, "_balance"),
)
#: Every endpoint the sandbox serves, as ``(method, path template)``.
ROUTES: Final = tuple((method, path) for method, path, _ in _ROUTE_TABLE)
#: Every event type the sandbox sends.
EVENT_TYPES: Final = frozenset(
    {
        wire.EVENT_COMPLETED,
        wire.EVENT_EXPIRED,
        wire.EVENT_REFUND_CREATED,
        wire.EVENT_CHARGE_REFUNDED,
    }
)
_PATTERNS: Final = tuple(
    (method, re.compile(re.sub(r"\\\{[a-z_]+\\\}", "([A-Za-z0-9_]+)", re.escape(path))), name)
    for method, path, name in _ROUTE_TABLE
)


@attrs.frozen
class _Call:
    """The API request being answered: its ``Request-Id``, headers (lower-case names), query
    parameters and body."""

    request_id: str | None = None
    headers: Mapping[str, str] = attrs.field(factory=dict)
    query: Mapping[str, str] = attrs.field(factory=dict)
    body: bytes = b""

    @property
    def idempotency_key(self) -> str | None:
        return self.headers.get(wire.HEADER_IDEMPOTENCY_KEY.lower())


#: What the payer on the hosted page and the Dashboard do: no API request of the account.
_NO_CALL: Final = _Call()

#: The fields ``expand[]`` turns from an id into an object; a second path through one of them
#: (``payment_intent`` after ``payment_intent.latest_charge``) finds it expanded already.
_EXPANDABLE: Final = frozenset({"line_items", "payment_intent", "latest_charge", "charge"})


@attrs.frozen
class _Idempotent:
    """What the sandbox remembers of a key: the parameters and the answer given."""

    fingerprint: tuple[tuple[str, str], ...]  # the path first, then the sorted parameters
    answer: Answer
    at: float


def _secrets(webhook_secrets: Sequence[str]) -> list[str]:
    if not webhook_secrets:
        raise ValueError("a sandbox needs at least one webhook secret")
    return list(webhook_secrets)


# No slots: a test may wrap one of its methods on the instance.
@attrs.define(kw_only=True, eq=False, repr=False, slots=False)
class StripeSandbox:
    """Stripe's Checkout Sessions API with in-memory state.

    :param api_key: The one secret key the sandbox accepts (``sk_test_...``).
    :param webhook_secrets: The signing secrets in use, newest first; every webhook carries one
        ``v1`` signature per secret.
    :param base_url: Where the sandbox says it is (checkout links).
    :param webhook_url: Where webhooks go (the account's endpoint); ``None``: kept only.
    :param deliver: Sends each webhook; default :func:`post_delivery`.
    :param clock: Unix seconds now.
    :param validate_minimums: Refuse a session below Stripe's minimum charge for its currency,
        as Stripe does (``amount_too_small``).
    :param validate_refund_reasons: Refuse a refund ``reason`` outside Stripe's three.

    Attributes:
        sessions: Sessions by id, oldest first.
        intents: PaymentIntents by id, oldest first (one per paid session).
        charges: Charges by PaymentIntent id.
        refunds: Refunds by id, oldest first.
        deliveries: Every webhook sent, oldest first.
        replays: How many creates were answered from an idempotency key.
        requests: How many API requests arrived.
    """

    api_key: str
    webhook_secrets: list[str] = attrs.field(converter=_secrets)
    base_url: str = "http://sandbox.stripe.invalid"
    webhook_url: str | None = None
    deliver: Callable[[Delivery], None] = post_delivery
    clock: Callable[[], float] = time.time
    validate_minimums: bool = True
    validate_refund_reasons: bool = True
    sessions: dict[str, dict[str, Any]] = attrs.field(init=False, factory=dict)
    intents: dict[str, dict[str, Any]] = attrs.field(init=False, factory=dict)
    charges: dict[str, dict[str, Any]] = attrs.field(init=False, factory=dict)
    refunds: dict[str, dict[str, Any]] = attrs.field(init=False, factory=dict)
    deliveries: list[Delivery] = attrs.field(init=False, factory=list)
    replays: int = attrs.field(init=False, default=0)
    requests: int = attrs.field(init=False, default=0)
    _keys: dict[tuple[str, str], _Idempotent] = attrs.field(init=False, factory=dict)
    _lock: threading.RLock = attrs.field(init=False, factory=threading.RLock)

    def __repr__(self) -> str:
        return f"StripeSandbox(base_url={self.base_url!r}, sessions={len(self.sessions)})"

    # -- the API ------------------------------------------------------------------------------

    def handle(
        self, method: str, path: str, query: str, headers: Mapping[str, str], body: bytes
    ) -> Answer:
        """Answer one API request as Stripe would, with a ``Request-Id`` of its own."""
        request_id = objects.new_id("req")
        with self._lock:
            self.requests += 1
        try:
            lowered = {k.lower(): v for k, v in headers.items()}
            self._authenticate(lowered)
            call = _Call(request_id, lowered, params.form(query.encode()), body)
            answer = self._route(method, path, call)
        except StripeRefusal as refusal:
            answer = refusal.answer()
        headers_out = {**answer.headers, wire.HEADER_REQUEST_ID.lower(): request_id}
        return Answer(answer.status_code, answer.body, headers_out)

    def _route(self, method: str, path: str, call: _Call) -> Answer:
        for route_method, pattern, name in _PATTERNS:
            match = pattern.fullmatch(path)
            if match and route_method == method:
                handler: Callable[..., Answer] = getattr(self, name)
                return handler(call, *match.groups())
        raise StripeRefusal(
            404,
            f"Unrecognized request URL ({method}: {path}). Please see https://stripe.com/docs "
            "or we can help at https://support.stripe.com/.",
        )

    def _authenticate(self, headers: Mapping[str, str]) -> None:
        scheme, _, key = headers.get("authorization", "").partition(" ")
        if scheme != "Bearer" or not key:
            raise StripeRefusal(
                401,
                "You did not provide an API key. Provide it in the Authorization header, "
                "using Bearer auth.",
            )
        if not hmac.compare_digest(key.encode(), self.api_key.encode()):
            raise StripeRefusal(401, f"Invalid API Key provided: {key[:8]}****{key[-4:]}")

    def _idempotent(
        self, path: str, call: _Call, make: Callable[[dict[str, str]], dict[str, Any]]
    ) -> tuple[Answer, dict[str, Any] | None]:
        """Run a ``POST`` under its ``Idempotency-Key``: the first answer, replayed for 24 h.

        Returns the answer and the object ``make`` made, ``None`` when the answer is a replay.
        """
        params.no_query(call.query)
        content_type = call.headers.get("content-type", "").split(";")[0].strip()
        if call.body and content_type != wire.FORM:
            raise StripeRefusal(400, f"Requests must be sent as {wire.FORM}.")
        fields = params.form(call.body)
        fingerprint = ((":path", path), *sorted(fields.items()))
        key = call.idempotency_key
        if key is not None and not 1 <= len(key) <= 255:
            raise StripeRefusal(400, "Idempotency keys must be 1 to 255 characters long.")
        with self._lock:
            if key is not None:
                known = self._known(key)
                if known is not None:
                    if known.fingerprint != fingerprint:
                        raise StripeRefusal(
                            400,
                            "Keys for idempotent requests can only be used with the same "
                            "parameters they were first used with. Try using a key other than "
                            f"'{key}' if you meant to execute a different request.",
                            kind=wire.ERROR_IDEMPOTENCY,
                        )
                    self.replays += 1
                    headers_out = {**known.answer.headers, "idempotent-replayed": "true"}
                    return Answer(known.answer.status_code, known.answer.body, headers_out), None
            made = make(fields)
            answer = self._answer(made, fields)
            if key is not None:
                self._keys[(self.api_key, key)] = _Idempotent(fingerprint, answer, self.clock())
        return answer, made

    def _known(self, key: str) -> _Idempotent | None:
        known = self._keys.get((self.api_key, key))
        if known is not None and self.clock() - known.at > wire.IDEMPOTENCY_WINDOW_SECONDS:
            del self._keys[(self.api_key, key)]
            return None
        return known

    # -- Checkout Sessions ----------------------------------------------------------------------

    def _create_session(self, call: _Call) -> Answer:
        def make(fields: dict[str, str]) -> dict[str, Any]:
            session = self._new_session(fields)  # a validation failure saves nothing
            self.sessions[session["id"]] = session
            return self._view(session)

        return self._idempotent(wire.PATH_SESSIONS, call, make)[0]

    def _new_session(self, fields: dict[str, str]) -> dict[str, Any]:
        params.refuse_unknown(n for n in fields if not params.SESSION_FIELD.fullmatch(n))
        if params.required(fields, "mode") != "payment":
            raise StripeRefusal(400, "This sandbox imitates mode=payment only.", param="mode")
        currency = params.required(fields, "line_items[0][price_data][currency]")
        if currency.upper() not in wire.CURRENCIES or currency != currency.lower():
            raise StripeRefusal(
                400, f"Invalid currency: {currency}.", param="line_items[0][price_data][currency]"
            )
        unit_amount = params.integer(fields, "line_items[0][price_data][unit_amount]")
        quantity = params.integer(fields, "line_items[0][quantity]")
        if quantity < 1:
            raise StripeRefusal(
                400, "Quantity must be at least 1.", param="line_items[0][quantity]"
            )
        params.check_unit_amount(currency.upper(), unit_amount)
        if self.validate_minimums:
            params.check_minimum(currency.upper(), unit_amount * quantity)
        name = params.required(fields, "line_items[0][price_data][product_data][name]")
        if not name or len(name) > wire.PRODUCT_NAME_MAX:
            raise StripeRefusal(
                400,
                "A product name is required.",
                param="line_items[0][price_data][product_data][name]",
            )
        params.check_session_texts(fields)
        now = int(self.clock())
        session_id = f"cs_test_{secrets.token_hex(29)}"
        return objects.session(
            session_id=session_id,
            created=now,
            expires_at=params.expires_at(fields, now),
            currency=currency,
            unit_amount=unit_amount,
            quantity=quantity,
            product_name=name,
            url=f"{self.base_url}/checkout/{session_id}",
            fields=fields,
            metadata=params.nested(fields, params.METADATA_KEY),
            intent_metadata=params.nested(fields, params.INTENT_METADATA_KEY),
            payment_method_types=params.method_types(fields),
        )

    def _list_sessions(self, call: _Call) -> Answer:
        filters = {"payment_intent", "status", *params.CREATED_FILTERS}
        params.refuse_unknown(params.unlisted(call.query, filters))
        status = call.query.get("status")
        if status not in (None, wire.SESSION_OPEN, wire.SESSION_COMPLETE, wire.SESSION_EXPIRED):
            raise StripeRefusal(
                400, "Invalid status: must be one of complete, expired, or open", param="status"
            )
        created = params.created_filter(call.query)
        with self._lock:
            chosen = [
                view
                for view in map(self._view, reversed(self.sessions.values()))
                if created(view["created"])
                and call.query.get("payment_intent") in (None, view["payment_intent"])
                and status in (None, view["status"])
            ]
            return self._list_answer(wire.PATH_SESSIONS, "checkout.session", chosen, call.query)

    def _retrieve_session(self, call: _Call, session_id: str) -> Answer:
        params.refuse_unknown(params.unlisted(call.query, set(), paged=False))
        with self._lock:
            return self._answer(self._view(self._session(session_id)), call.query)

    def _expire_session(self, call: _Call, session_id: str) -> Answer:
        def make(fields: dict[str, str]) -> dict[str, Any]:
            params.refuse_unknown(params.unlisted(fields, set(), paged=False))
            return self._expired(session_id)

        path = wire.PATH_EXPIRE.format(session_id=session_id)
        answer, expired = self._idempotent(path, call, make)
        if expired is not None:  # not a replay: the event is new
            self._send(wire.EVENT_EXPIRED, expired, call)
        return answer

    def _list_line_items(self, call: _Call, session_id: str) -> Answer:
        params.refuse_unknown(params.unlisted(call.query, set()))
        with self._lock:
            item = self._session(session_id)["_line_item"]
            url = wire.PATH_LINE_ITEMS.format(session_id=session_id)
            return self._list_answer(url, "item", [item], call.query)

    def _session(self, session_id: str) -> dict[str, Any]:
        return params.found(
            self.sessions.get(session_id), "checkout.session", session_id, "session"
        )

    def _view(self, session: dict[str, Any]) -> dict[str, Any]:
        """The session as the API shows it: one past ``expires_at`` reads as expired, and only
        an open one has a ``url``."""
        if session["status"] == wire.SESSION_OPEN and self.clock() >= session["expires_at"]:
            session["status"] = wire.SESSION_EXPIRED
        view = objects.shown(session)
        if view["status"] != wire.SESSION_OPEN:
            view["url"] = None
        return view

    # -- PaymentIntents, charges, refunds, balance -----------------------------------------------

    def _retrieve_intent(self, call: _Call, intent_id: str) -> Answer:
        params.refuse_unknown(params.unlisted(call.query, set(), paged=False))
        with self._lock:
            intent = params.found(
                self.intents.get(intent_id), "payment_intent", intent_id, "intent"
            )
            return self._answer(intent, call.query)

    def _retrieve_refund(self, call: _Call, refund_id: str) -> Answer:
        params.refuse_unknown(params.unlisted(call.query, set(), paged=False))
        with self._lock:
            refund = params.found(self.refunds.get(refund_id), "refund", refund_id, "refund")
            return self._answer(refund, call.query)

    def _balance(self, call: _Call) -> Answer:
        params.refuse_unknown(params.unlisted(call.query, set(), paged=False))
        return _ok(objects.BALANCE)

    def _charge(self, charge_id: str) -> dict[str, Any]:
        found = next((c for c in self.charges.values() if c["id"] == charge_id), None)
        return params.found(found, "charge", charge_id, "charge")

    def _answer(self, obj: Mapping[str, Any], asked: Mapping[str, str]) -> Answer:
        """``obj`` as the API answers with it: each dotted path the ``expand[]`` parameters in
        ``asked`` name expanded."""
        return _ok(params.expanded(obj, params.expansions(asked), self._expansion))

    def _expansion(self, obj: Mapping[str, Any], field: str, asked: str) -> Any:
        kind, value = obj.get("object"), obj.get(field)
        if isinstance(value, dict) and field in _EXPANDABLE:
            return value  # expanded by an earlier path of the same request
        if (kind, field) == ("checkout.session", "line_items"):
            item = self.sessions[obj["id"]]["_line_item"]
            url = wire.PATH_LINE_ITEMS.format(session_id=obj["id"])
            return objects.page(url, [item], has_more=False)
        if field == "payment_intent" and kind in {"checkout.session", "charge", "refund"}:
            return None if value is None else dict(self.intents[value])
        if (kind, field) in {("payment_intent", "latest_charge"), ("refund", "charge")}:
            return None if value is None else dict(self._charge(value))
        if (kind, field) == ("checkout.session", "customer") and value is None:
            return None
        raise StripeRefusal(400, f"This property cannot be expanded ({asked}).")

    def _list_answer(
        self, url: str, noun: str, newest_first: list[dict[str, Any]], query: Mapping[str, str]
    ) -> Answer:
        items, has_more = params.page_of(noun, [objects.shown(i) for i in newest_first], query)
        return self._answer(objects.page(url, items, has_more), query)

    # -- what the payer and the operator do ----------------------------------------------------

    def pay(self, session_id: str) -> Delivery:
        """Pay the open session as the payer would; send ``checkout.session.completed``.

        :raises StripeRefusal: if there is no such session or it is not open.
        """
        with self._lock:
            session = self._session(session_id)
            if self._view(session)["status"] != wire.SESSION_OPEN:
                raise StripeRefusal(400, f"The Checkout Session is {session['status']}, not open.")
            now = int(self.clock())
            intent_id, charge_id = objects.new_id("pi"), objects.new_id("ch")
            self.intents[intent_id] = objects.payment_intent(
                session, intent_id=intent_id, charge_id=charge_id, created=now
            )
            self.charges[intent_id] = objects.charge(
                session, charge_id=charge_id, intent_id=intent_id, created=now
            )
            session.update(
                status=wire.SESSION_COMPLETE,
                payment_status=wire.PAYMENT_PAID,
                payment_intent=intent_id,
                customer_details=objects.customer_details(session["customer_email"]),
            )
            view = self._view(session)
        return self._send(wire.EVENT_COMPLETED, view, _NO_CALL)

    def expire(self, session_id: str) -> dict[str, Any]:
        """Expire an open session, as the Dashboard does; send ``checkout.session.expired``."""
        view = self._expired(session_id)
        self._send(wire.EVENT_EXPIRED, view, _NO_CALL)
        return view

    def _expired(self, session_id: str) -> dict[str, Any]:
        """Mark an open session expired; the caller sends the event, holding no lock."""
        with self._lock:
            session = self._session(session_id)
            status = self._view(session)["status"]
            if status != wire.SESSION_OPEN:
                raise StripeRefusal(
                    400,
                    'Only Checkout Sessions with a status in ["open"] can be expired. This '
                    f"Checkout Session has a status of `{status}`.",
                )
            session["status"] = wire.SESSION_EXPIRED
            return self._view(session)

    def refund(self, session_id: str, amount: int | None = None) -> Delivery:
        """Refund a paid session's charge from the Dashboard, wholly or ``amount`` minor
        units; send ``refund.created`` and ``charge.refunded``, return the latter."""
        with self._lock:
            intent = self._session(session_id)["payment_intent"]
            fields = {"payment_intent": intent or ""}
            if amount is not None:
                fields["amount"] = str(amount)
            refund = self._new_refund(fields)
        return self._refund_events(refund, _NO_CALL)

    def _create_refund(self, call: _Call) -> Answer:
        answer, made = self._idempotent(wire.PATH_REFUNDS, call, self._new_refund)
        if made is not None:  # not a replay: the refund is new, and so are its events
            self._refund_events(made, call)
        return answer

    def _new_refund(self, fields: dict[str, str]) -> dict[str, Any]:
        params.refuse_unknown(n for n in fields if not params.REFUND_FIELD.fullmatch(n))
        charge = self._refunded_charge(fields)
        left = charge["amount"] - charge["amount_refunded"]
        if left == 0:
            raise StripeRefusal(
                400,
                f"Charge {charge['id']} has already been refunded.",
                code=wire.CODE_CHARGE_ALREADY_REFUNDED,
            )
        amount = params.integer(fields, "amount") if "amount" in fields else left
        if not 0 < amount <= left:
            raise StripeRefusal(
                400,
                f"Refund amount ({amount}) is greater than unrefunded amount on charge ({left}).",
                code=wire.CODE_AMOUNT_TOO_LARGE,
                param="amount",
            )
        reason = fields.get("reason")
        if self.validate_refund_reasons:
            params.check_refund_reason(reason)
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] == charge["amount"]
        refund = objects.refund(
            created=int(self.clock()),
            amount=amount,
            charge_id=charge["id"],
            currency=charge["currency"],
            intent_id=charge["payment_intent"],
            metadata=params.nested(fields, params.METADATA_KEY),
            reason=reason,
        )
        self.refunds[refund["id"]] = refund
        return refund

    def _refunded_charge(self, fields: Mapping[str, str]) -> dict[str, Any]:
        """The charge a refund is for: named by ``charge``, or by ``payment_intent``."""
        if "charge" in fields:
            charge = self._charge(fields["charge"])
            if fields.get("payment_intent") not in (None, charge["payment_intent"]):
                raise StripeRefusal(
                    400,
                    f"The charge {charge['id']} does not belong to the PaymentIntent "
                    f"{fields['payment_intent']}.",
                    param="payment_intent",
                )
            return charge
        if "payment_intent" not in fields:
            raise StripeRefusal(
                400,
                "One of `charge` or `payment_intent` is required.",
                code=wire.CODE_PARAMETER_MISSING,
            )
        intent = fields["payment_intent"]
        paid = self.charges.get(intent)
        if paid is None:
            raise StripeRefusal(
                400 if intent else 404,
                f"This PaymentIntent ({intent}) does not have a successful charge to refund.",
                param="payment_intent",
            )
        return paid

    def _refund_events(self, refund: Mapping[str, Any], call: _Call) -> Delivery:
        with self._lock:
            charge = dict(self.charges[refund["payment_intent"]])
        self._send(wire.EVENT_REFUND_CREATED, dict(refund), call)
        return self._send(wire.EVENT_CHARGE_REFUNDED, charge, call)

    def _list_refunds(self, call: _Call) -> Answer:
        params.refuse_unknown(
            params.unlisted(call.query, {"payment_intent", "charge", *params.CREATED_FILTERS})
        )
        created = params.created_filter(call.query)
        with self._lock:
            chosen = [
                r
                for r in reversed(self.refunds.values())
                if call.query.get("payment_intent") in (None, r["payment_intent"])
                and call.query.get("charge") in (None, r["charge"])
                and created(r["created"])
            ]
            return self._list_answer(wire.PATH_REFUNDS, "refund", chosen, call.query)

    # -- webhooks ------------------------------------------------------------------------------

    def _send(self, kind: str, obj: Mapping[str, Any], call: _Call) -> Delivery:
        created = int(self.clock())
        event = objects.event(
            kind,
            obj,
            created=created,
            request_id=call.request_id,
            idempotency_key=call.idempotency_key,
        )
        body = json.dumps(event, indent=2).encode()  # Stripe sends its events pretty-printed
        signatures = ",".join(
            "v1=" + hmac.new(s.encode(), f"{created}.".encode() + body, hashlib.sha256).hexdigest()
            for s in self.webhook_secrets
        )
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            wire.HEADER_SIGNATURE: f"t={created},{signatures}",
        }
        delivery = Delivery(self.webhook_url, headers, body, event["id"], kind)
        with self._lock:
            self.deliveries.append(delivery)
        self.deliver(delivery)
        return delivery

    def sessions_by_reference(self) -> dict[str, list[str]]:
        """Session ids by ``client_reference_id``: more than one for a reference is a duplicate."""
        with self._lock:
            found: dict[str, list[str]] = {}
            for session in self.sessions.values():
                found.setdefault(session["client_reference_id"], []).append(session["id"])
            return found


def _ok(document: Mapping[str, Any]) -> Answer:
    return Answer(200, objects.to_json(document))


def api(sandbox: StripeSandbox, request: SandboxRequest) -> Answer:
    """``sandbox``'s answer to ``request``: what its ASGI app and its transport call."""
    return sandbox.handle(
        request.method, request.path, request.query, request.headers, request.body
    )


def sandbox_transport(sandbox: StripeSandbox) -> httpx.MockTransport:
    """An ``httpx`` transport (blocking and asynchronous) that calls ``sandbox`` in process."""
    return mock_transport(functools.partial(api, sandbox))
