"""Stripe's Checkout API imitated, for demos and tests: stateful, idempotent, signing webhooks.

:class:`StripeSandbox` holds Checkout Sessions and answers API requests as Stripe does: form
bodies parsed and checked field by field, ``Bearer`` keys, ``Idempotency-Key`` replay for 24
hours (a repeat with other parameters is a 400 ``idempotency_error``), lists paged newest
first, errors as ``{"error": {"type", "code", "message", "param"}}``. Paying, expiring or
refunding sends the matching event, signed with ``Stripe-Signature`` under every webhook secret
in use (two during a rotation). It shares only :mod:`payments_stripe.wire` with the provider:
its own form parser, its own signer, so a bug on one side cannot hide one on the other.

Not imitated: minimum charge amounts, taxes, customers, the hosted page's payment methods,
automatic expiry events (a session past ``expires_at`` reads as expired), webhook retries.

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
from urllib.parse import parse_qsl

import attrs
import httpx

from payments_core.testing.sandbox import (
    Answer,
    Delivery,
    SandboxRequest,
    mock_transport,
    post_delivery,
)
from payments_stripe import wire

__all__ = ["StripeRefusal", "StripeSandbox", "api", "sandbox_transport"]

_SESSION_PATH: Final = re.compile(r"/v1/checkout/sessions/([A-Za-z0-9_]+)(/expire)?")
_INTEGER: Final = re.compile(r"(0|[1-9][0-9]{0,17})")
_METADATA_KEY: Final = re.compile(r"metadata\[([^\[\]]{1,40})\]")
_INTENT_METADATA_KEY: Final = re.compile(r"payment_intent_data\[metadata\]\[([^\[\]]{1,40})\]")
_PLAIN_FIELDS: Final = frozenset(
    {
        "mode",
        "client_reference_id",
        "success_url",
        "cancel_url",
        "expires_at",
        "line_items[0][quantity]",
        "line_items[0][price_data][currency]",
        "line_items[0][price_data][unit_amount]",
        "line_items[0][price_data][product_data][name]",
    }
)
_JSON: Final = {"content-type": "application/json"}


class StripeRefusal(Exception):
    """An API error the sandbox answers with."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        kind: str = wire.ERROR_INVALID_REQUEST,
        code: str | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind
        self.code = code
        self.param = param

    def answer(self) -> Answer:
        error: dict[str, str] = {"type": self.kind, "message": str(self)}
        if self.code is not None:
            error["code"] = self.code
        if self.param is not None:
            error["param"] = self.param
        headers = {**_JSON, wire.HEADER_SHOULD_RETRY.lower(): "false"}
        return Answer(self.status, _json({"error": error}), headers)


@attrs.frozen
class _Idempotent:
    """What the sandbox remembers of a key: the parameters and the answer given."""

    fingerprint: tuple[tuple[str, str], ...]  # the path first, then the sorted parameters
    answer: Answer
    at: float


class StripeSandbox:
    """Stripe's Checkout Sessions API with in-memory state.

    :param api_key: The one secret key the sandbox accepts (``sk_test_...``).
    :param webhook_secrets: The signing secrets in use, newest first; every webhook carries one
        ``v1`` signature per secret.
    :param base_url: Where the sandbox says it is (checkout links).
    :param webhook_url: Where webhooks go (the account's endpoint); ``None``: kept only.
    :param deliver: Sends each webhook; default :func:`post_delivery`.
    :param clock: Unix seconds now.

    Attributes:
        sessions: Sessions by id, oldest first.
        charges: Charges by PaymentIntent id.
        refunds: Refunds by id, oldest first.
        deliveries: Every webhook sent, oldest first.
        replays: How many creates were answered from an idempotency key.
        requests: How many API requests arrived.
    """

    def __init__(
        self,
        *,
        api_key: str,
        webhook_secrets: Sequence[str],
        base_url: str = "http://sandbox.stripe.invalid",
        webhook_url: str | None = None,
        deliver: Callable[[Delivery], None] = post_delivery,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not webhook_secrets:
            raise ValueError("a sandbox needs at least one webhook secret")
        self.api_key = api_key
        self.webhook_secrets = list(webhook_secrets)
        self.base_url = base_url
        self.webhook_url = webhook_url
        self.deliver = deliver
        self.clock = clock
        self.sessions: dict[str, dict[str, Any]] = {}
        self.charges: dict[str, dict[str, Any]] = {}
        self.refunds: dict[str, dict[str, Any]] = {}
        self.deliveries: list[Delivery] = []
        self.replays = 0
        self.requests = 0
        self._keys: dict[tuple[str, str], _Idempotent] = {}
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        return f"StripeSandbox(base_url={self.base_url!r}, sessions={len(self.sessions)})"

    # -- the API ------------------------------------------------------------------------------

    def handle(
        self, method: str, path: str, query: str, headers: Mapping[str, str], body: bytes
    ) -> Answer:
        """Answer one API request as Stripe would."""
        lowered = {k.lower(): v for k, v in headers.items()}
        with self._lock:
            self.requests += 1
        try:
            self._authenticate(lowered)
            if path == wire.PATH_SESSIONS and method == "POST":
                return self._create(lowered, body)
            if path == wire.PATH_SESSIONS and method == "GET":
                return Answer(200, _json(self._list(_form(query.encode()))))
            if path == wire.PATH_REFUNDS and method == "POST":
                return self._refund_created(lowered, body)
            if path == wire.PATH_REFUNDS and method == "GET":
                return Answer(200, _json(self._list_refunds(_form(query.encode()))))
            if path == wire.PATH_BALANCE and method == "GET":
                return Answer(200, _json(_BALANCE))
            match = _SESSION_PATH.fullmatch(path)
            if match and method == "GET" and not match.group(2):
                with self._lock:
                    return Answer(200, _json(self._view(self._session(match.group(1)))))
            if match and method == "POST" and match.group(2):
                return Answer(200, _json(self.expire(match.group(1))))
            raise StripeRefusal(
                404,
                f"Unrecognized request URL ({method}: {path}).",
                code=wire.CODE_RESOURCE_MISSING,
            )
        except StripeRefusal as refusal:
            return refusal.answer()

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

    def _create(self, headers: Mapping[str, str], body: bytes) -> Answer:
        return self._idempotent(wire.PATH_SESSIONS, headers, body, self._new_session_answer)

    def _new_session_answer(self, fields: dict[str, str]) -> Answer:
        session = self._new_session(fields)  # a validation failure saves nothing
        self.sessions[session["id"]] = session
        return Answer(200, _json(self._view(session)))

    def _idempotent(
        self,
        path: str,
        headers: Mapping[str, str],
        body: bytes,
        make: Callable[[dict[str, str]], Answer],
    ) -> Answer:
        """Run a create under its ``Idempotency-Key``: the first answer, replayed for 24 h."""
        if headers.get("content-type", "").split(";")[0].strip() != wire.FORM:
            raise StripeRefusal(400, f"Requests must be sent as {wire.FORM}.")
        fields = _form(body)
        fingerprint = ((":path", path), *sorted(fields.items()))
        key = headers.get(wire.HEADER_IDEMPOTENCY_KEY.lower())
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
                    return Answer(known.answer.status_code, known.answer.body, headers_out)
            answer = make(fields)
            if key is not None:
                self._keys[(self.api_key, key)] = _Idempotent(fingerprint, answer, self.clock())
        return answer

    def _known(self, key: str) -> _Idempotent | None:
        known = self._keys.get((self.api_key, key))
        if known is not None and self.clock() - known.at > wire.IDEMPOTENCY_WINDOW_SECONDS:
            del self._keys[(self.api_key, key)]
            return None
        return known

    def _new_session(self, fields: dict[str, str]) -> dict[str, Any]:
        unknown = sorted(
            name
            for name in fields
            if name not in _PLAIN_FIELDS
            and not _METADATA_KEY.fullmatch(name)
            and not _INTENT_METADATA_KEY.fullmatch(name)
        )
        if unknown:
            raise StripeRefusal(
                400,
                f"Received unknown parameter: {unknown[0]}",
                code=wire.CODE_PARAMETER_UNKNOWN,
                param=unknown[0],
            )
        if _required(fields, "mode") != "payment":
            raise StripeRefusal(400, "This sandbox imitates mode=payment only.", param="mode")
        currency = _required(fields, "line_items[0][price_data][currency]")
        if currency.upper() not in wire.CURRENCIES or currency != currency.lower():
            raise StripeRefusal(
                400, f"Invalid currency: {currency}.", param="line_items[0][price_data][currency]"
            )
        unit_amount = _integer(fields, "line_items[0][price_data][unit_amount]")
        quantity = _integer(fields, "line_items[0][quantity]")
        if quantity < 1:
            raise StripeRefusal(
                400, "Quantity must be at least 1.", param="line_items[0][quantity]"
            )
        _check_unit_amount(currency.upper(), unit_amount)
        name = _required(fields, "line_items[0][price_data][product_data][name]")
        if not name or len(name) > wire.PRODUCT_NAME_MAX:
            raise StripeRefusal(
                400,
                "A product name is required.",
                param="line_items[0][price_data][product_data][name]",
            )
        reference = fields.get("client_reference_id")
        if reference is not None and not 1 <= len(reference) <= wire.CLIENT_REFERENCE_MAX:
            raise StripeRefusal(
                400, "client_reference_id is too long.", param="client_reference_id"
            )
        for name_, value in fields.items():
            if name_.startswith(("metadata[", "payment_intent_data[")) and (
                len(value) > wire.METADATA_VALUE_MAX
            ):
                raise StripeRefusal(
                    400, "Metadata values can have up to 500 characters.", param=name_
                )
        for url_field in ("success_url", "cancel_url"):
            url = fields.get(url_field)
            if url is not None and not (
                url.startswith(("http://", "https://")) and len(url) <= 5000
            ):
                raise StripeRefusal(400, "Not a valid URL", param=url_field)
        now = int(self.clock())
        expires_at = now + wire.EXPIRES_MAX_SECONDS
        if "expires_at" in fields:
            expires_at = _integer(fields, "expires_at")
            # A little slack either side for the client's clock, as Stripe allows.
            if (
                not now + wire.EXPIRES_MIN_SECONDS - 60
                <= expires_at
                <= now + wire.EXPIRES_MAX_SECONDS + 60
            ):
                raise StripeRefusal(
                    400,
                    "The `expires_at` timestamp must be between 30 minutes and 24 hours from "
                    "Checkout Session creation.",
                    param="expires_at",
                )
        session_id = f"cs_test_{secrets.token_hex(29)}"
        return {
            "id": session_id,
            "object": "checkout.session",
            "amount_subtotal": unit_amount * quantity,
            "amount_total": unit_amount * quantity,
            "cancel_url": fields.get("cancel_url"),
            "client_reference_id": reference,
            "created": now,
            "currency": currency,
            "expires_at": expires_at,
            "livemode": False,
            "metadata": _nested(fields, _METADATA_KEY),
            "mode": "payment",
            "payment_intent": None,
            "payment_status": wire.PAYMENT_UNPAID,
            "status": wire.SESSION_OPEN,
            "success_url": fields.get("success_url"),
            "url": f"{self.base_url}/checkout/{session_id}",
            "_intent_metadata": _nested(fields, _INTENT_METADATA_KEY),
        }

    def _list(self, params: dict[str, str]) -> dict[str, Any]:
        limit = _list_limit(params, {"created[gte]", "payment_intent"})
        since = _integer(params, "created[gte]") if "created[gte]" in params else 0
        with self._lock:
            chosen = [
                self._view(s)
                for s in reversed(self.sessions.values())
                if s["created"] >= since
                and params.get("payment_intent") in (None, s["payment_intent"])
            ]
        return _list_page(wire.PATH_SESSIONS, "checkout.session", chosen, params, limit)

    def _session(self, session_id: str) -> dict[str, Any]:
        session = self.sessions.get(session_id)
        if session is None:
            raise StripeRefusal(
                404,
                f"No such checkout.session: '{session_id}'",
                code=wire.CODE_RESOURCE_MISSING,
                param="session",
            )
        return session

    def _view(self, session: dict[str, Any]) -> dict[str, Any]:
        """The session as the API shows it; one past ``expires_at`` reads as expired."""
        if session["status"] == wire.SESSION_OPEN and self.clock() >= session["expires_at"]:
            session["status"] = wire.SESSION_EXPIRED
        return {k: v for k, v in session.items() if not k.startswith("_")}

    # -- what the payer and the operator do ----------------------------------------------------

    def pay(self, session_id: str) -> Delivery:
        """Pay the open session as the payer would; send ``checkout.session.completed``.

        :raises StripeRefusal: if there is no such session or it is not open.
        """
        with self._lock:
            session = self._session(session_id)
            if self._view(session)["status"] != wire.SESSION_OPEN:
                raise StripeRefusal(400, f"The Checkout Session is {session['status']}, not open.")
            intent = f"pi_{secrets.token_hex(12)}"
            session.update(
                status=wire.SESSION_COMPLETE,
                payment_status=wire.PAYMENT_PAID,
                payment_intent=intent,
            )
            self.charges[intent] = {
                "id": f"ch_{secrets.token_hex(12)}",
                "object": "charge",
                "amount": session["amount_total"],
                "amount_refunded": 0,
                "currency": session["currency"],
                "metadata": dict(session["_intent_metadata"]),
                "paid": True,
                "payment_intent": intent,
                "refunded": False,
                "status": "succeeded",
            }
            view = self._view(session)
        return self._send(wire.EVENT_COMPLETED, view)

    def expire(self, session_id: str) -> dict[str, Any]:
        """Expire an open session (``POST .../expire``); send ``checkout.session.expired``."""
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
            view = self._view(session)
        self._send(wire.EVENT_EXPIRED, view)
        return view

    def refund(self, session_id: str, amount: int | None = None) -> Delivery:
        """Refund a paid session's charge from the Dashboard, wholly or ``amount`` minor
        units; send ``refund.created`` and ``charge.refunded``, return the latter."""
        with self._lock:
            intent = self._session(session_id)["payment_intent"]
            fields = {"payment_intent": intent or ""}
            if amount is not None:
                fields["amount"] = str(amount)
            refund = self._new_refund(fields)
        return self._refund_events(refund)

    def _refund_created(self, headers: Mapping[str, str], body: bytes) -> Answer:
        made: list[dict[str, Any]] = []

        def make(fields: dict[str, str]) -> Answer:
            made.append(self._new_refund(fields))
            return Answer(200, _json(made[-1]))

        answer = self._idempotent(wire.PATH_REFUNDS, headers, body, make)
        if made:  # not a replay: the refund is new, and so are its events
            self._refund_events(made[0])
        return answer

    def _new_refund(self, fields: dict[str, str]) -> dict[str, Any]:
        allowed = {"payment_intent", "amount", "reason"}
        unknown = sorted(n for n in fields if n not in allowed and not _METADATA_KEY.fullmatch(n))
        if unknown:
            raise StripeRefusal(
                400,
                f"Received unknown parameter: {unknown[0]}",
                code=wire.CODE_PARAMETER_UNKNOWN,
                param=unknown[0],
            )
        intent = _required(fields, "payment_intent")
        charge = self.charges.get(intent)
        if charge is None:
            raise StripeRefusal(
                400 if intent else 404,
                f"This PaymentIntent ({intent}) does not have a successful charge to refund.",
                param="payment_intent",
            )
        left = charge["amount"] - charge["amount_refunded"]
        if left == 0:
            raise StripeRefusal(
                400,
                f"Charge {charge['id']} has already been refunded.",
                code=wire.CODE_CHARGE_ALREADY_REFUNDED,
            )
        amount = _integer(fields, "amount") if "amount" in fields else left
        if not 0 < amount <= left:
            raise StripeRefusal(
                400,
                f"Refund amount ({amount}) is greater than unrefunded amount on charge ({left}).",
                code=wire.CODE_AMOUNT_TOO_LARGE,
                param="amount",
            )
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] == charge["amount"]
        refund = {
            "id": f"re_{secrets.token_hex(12)}",
            "object": "refund",
            "amount": amount,
            "charge": charge["id"],
            "created": int(self.clock()),
            "currency": charge["currency"],
            "metadata": _nested(fields, _METADATA_KEY),
            "payment_intent": intent,
            "reason": fields.get("reason"),
            "status": wire.REFUND_SUCCEEDED,  # card refunds succeed at once
        }
        self.refunds[refund["id"]] = refund
        return refund

    def _refund_events(self, refund: Mapping[str, Any]) -> Delivery:
        with self._lock:
            charge = dict(self.charges[refund["payment_intent"]])
        self._send(wire.EVENT_REFUND_CREATED, dict(refund))
        return self._send(wire.EVENT_CHARGE_REFUNDED, charge)

    def _list_refunds(self, params: dict[str, str]) -> dict[str, Any]:
        limit = _list_limit(params, {"payment_intent"})
        with self._lock:
            chosen = [
                dict(r)
                for r in reversed(self.refunds.values())
                if params.get("payment_intent") in (None, r["payment_intent"])
            ]
        return _list_page(wire.PATH_REFUNDS, "refund", chosen, params, limit)

    def _send(self, kind: str, obj: Mapping[str, Any]) -> Delivery:
        created = int(self.clock())
        event_id = f"evt_{secrets.token_hex(12)}"
        event = {
            "id": event_id,
            "object": "event",
            "api_version": wire.API_VERSION,
            "created": created,
            "data": {"object": obj},
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "type": kind,
        }
        body = json.dumps(event, indent=2).encode()  # Stripe sends its events pretty-printed
        signatures = ",".join(
            "v1=" + hmac.new(s.encode(), f"{created}.".encode() + body, hashlib.sha256).hexdigest()
            for s in self.webhook_secrets
        )
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            wire.HEADER_SIGNATURE: f"t={created},{signatures}",
        }
        delivery = Delivery(self.webhook_url, headers, body, event_id, kind)
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


_BALANCE: Final = {
    "object": "balance",
    "available": [{"amount": 0, "currency": "usd", "source_types": {"card": 0}}],
    "livemode": False,
    "pending": [{"amount": 0, "currency": "usd", "source_types": {"card": 0}}],
}


def _form(body: bytes) -> dict[str, str]:
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(body))
    except (UnicodeDecodeError, ValueError):
        raise StripeRefusal(400, "The request body could not be parsed as form data.") from None
    fields: dict[str, str] = {}
    for name, value in pairs:
        if name in fields:
            raise StripeRefusal(400, f"Received the parameter {name} twice.", param=name)
        fields[name] = value
    return fields


def _list_limit(params: Mapping[str, str], filters: set[str]) -> int:
    """The ``limit`` of a list request whose only other parameters are ``filters``."""
    unknown = sorted(set(params) - filters - {"limit", "starting_after"})
    if unknown:
        raise StripeRefusal(
            400,
            f"Received unknown parameter: {unknown[0]}",
            code=wire.CODE_PARAMETER_UNKNOWN,
            param=unknown[0],
        )
    limit = _integer(params, "limit") if "limit" in params else 10
    if not 1 <= limit <= wire.LIST_LIMIT_MAX:
        raise StripeRefusal(400, "limit must be between 1 and 100.", param="limit")
    return limit


def _list_page(
    url: str, noun: str, newest_first: list[dict[str, Any]], params: Mapping[str, str], limit: int
) -> dict[str, Any]:
    """One page of a list, after ``starting_after`` when it is given."""
    after = params.get("starting_after")
    if after is not None:
        ids = [item["id"] for item in newest_first]
        if after not in ids:
            raise StripeRefusal(
                400,
                f"No such {noun}: '{after}'",
                code=wire.CODE_RESOURCE_MISSING,
                param="starting_after",
            )
        newest_first = newest_first[ids.index(after) + 1 :]
    return {
        "object": "list",
        "url": url,
        "has_more": len(newest_first) > limit,
        "data": newest_first[:limit],
    }


def _required(fields: Mapping[str, str], name: str) -> str:
    value = fields.get(name)
    if value is None:
        raise StripeRefusal(
            400, f"Missing required param: {name}.", code=wire.CODE_PARAMETER_MISSING, param=name
        )
    return value


def _integer(fields: Mapping[str, str], name: str) -> int:
    value = _required(fields, name)
    if not _INTEGER.fullmatch(value):
        raise StripeRefusal(
            400,
            f"Invalid integer: {value[:40]}",
            code=wire.CODE_PARAMETER_INVALID_INTEGER,
            param=name,
        )
    return int(value)


def _check_unit_amount(code: str, count: int) -> None:
    param = "line_items[0][price_data][unit_amount]"
    if count < 1:
        raise StripeRefusal(400, "The amount must be positive.", param=param)
    if count > wire.UNIT_AMOUNT_MAX:
        raise StripeRefusal(
            400,
            "Amount must be no more than 99,999,999 in the currency's smallest unit.",
            code=wire.CODE_AMOUNT_TOO_LARGE,
            param=param,
        )
    if code in wire.THREE_DECIMAL and count % 10:
        raise StripeRefusal(400, f"{code} amounts must end in 0.", param=param)
    if code in wire.HUNDREDTHS_OF_WHOLE_UNITS and count % 100:
        raise StripeRefusal(
            400, f"{code} amounts must be whole units (a multiple of 100).", param=param
        )


def _nested(fields: Mapping[str, str], pattern: re.Pattern[str]) -> dict[str, str]:
    found = {}
    for name, value in fields.items():
        match = pattern.fullmatch(name)
        if match:
            found[match.group(1)] = value
    return found


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def api(sandbox: StripeSandbox, request: SandboxRequest) -> Answer:
    """``sandbox``'s answer to ``request``: what its ASGI app and its transport call."""
    return sandbox.handle(
        request.method, request.path, request.query, request.headers, request.body
    )


def sandbox_transport(sandbox: StripeSandbox) -> httpx.MockTransport:
    """An ``httpx`` transport (blocking and asynchronous) that calls ``sandbox`` in process."""
    return mock_transport(functools.partial(api, sandbox))
