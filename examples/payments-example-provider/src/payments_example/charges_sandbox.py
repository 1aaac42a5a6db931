"""ExampleCharges imitated on loopback, built on the sandbox toolkit.

It holds charges in the order they were made and answers as ExampleCharges would: a create
always makes a new charge (there is nothing to refuse a repeat by), the list gives the newest
first, a page at a time, and the search finds the charges whose metadata carries a reference.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import secrets
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qs

import attrs

from payments_core.testing.sandbox import (
    Answer,
    Delivery,
    RunningSandbox,
    SandboxRequest,
    background_server,
    post_delivery,
    sandbox_app,
)
from payments_example import charges_wire as wire

__all__ = ["ChargesSandbox", "SandboxCharge", "serve_charges"]


@attrs.define
class SandboxCharge:
    """A charge as the sandbox holds it."""

    id: str
    code: str
    amount: str
    currency: str
    description: str
    metadata: dict[str, str]
    callback_url: str
    status: str = wire.STATUS_NEW

    def to_json(self, base_url: str) -> dict[str, Any]:
        """The charge as the API shows it."""
        return {
            "id": self.id,
            "code": self.code,
            "pricing": {"amount": self.amount, "currency": self.currency},
            "description": self.description,
            "metadata": self.metadata,
            "status": self.status,
            "hosted_url": f"{base_url}/pay/{self.id}",
        }


class _Refusal(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code

    def answer(self) -> Answer:
        return Answer(
            wire.ERRORS[self.code], _json({"error": {"code": self.code, "message": str(self)}})
        )


# No slots: a test may wrap one of its methods on the instance.
@attrs.define(kw_only=True, eq=False, slots=False)
class ChargesSandbox:
    """ExampleCharges' API with in-memory charges.

    :param api_key: The one API key it accepts (default: a fresh random one).
    :param webhook_secret: The secret callbacks are signed with (default: a fresh random one).
    :param deliver: Sends each callback (default: posted once to the charge's callback URL).

    Attributes:
        charges: Every charge, oldest first.
        deliveries: Every callback sent, oldest first.
    """

    api_key: str = attrs.field(repr=False, factory=lambda: f"chg_key_{secrets.token_hex(8)}")
    webhook_secret: str = attrs.field(repr=False, factory=lambda: secrets.token_hex(24))
    base_url: str = "http://sandbox.examplecharges.invalid"
    deliver: Callable[[Delivery], None] = post_delivery
    charges: list[SandboxCharge] = attrs.field(init=False, factory=list)
    deliveries: list[Delivery] = attrs.field(init=False, factory=list)
    _lock: threading.Lock = attrs.field(init=False, factory=threading.Lock)

    def settings(self) -> dict[str, str]:
        """Provider settings that point at this sandbox: its URL and credentials."""
        return {
            "base_url": self.base_url,
            "api_key": self.api_key,
            "webhook_secret": self.webhook_secret,
        }

    def handle(self, request: SandboxRequest) -> Answer:
        """Answer one API request."""
        try:
            given = request.headers.get(wire.HEADER_KEY.lower(), "")
            if not hmac.compare_digest(given.encode(), self.api_key.encode()):
                raise _Refusal("unknown_key", "unknown API key")
            query = {k: v[-1] for k, v in parse_qs(request.query).items()}
            method, path = request.method, request.path
            if method == "GET" and path == wire.PATH_ACCOUNT:
                return Answer(200, _json({"data": {"name": "sandbox"}}))
            if method == "POST" and path == wire.PATH_CHARGES:
                return Answer(201, _json({"data": self._create(request.body)}))
            if method == "GET" and path == wire.PATH_CHARGES:
                return Answer(200, _json(self._page(query)))
            if method == "GET" and path == wire.PATH_SEARCH:
                reference = query.get(f"metadata_{wire.METADATA_REFERENCE}", "")
                found = [
                    c for c in reversed(self.charges) if c.metadata.get("reference") == reference
                ]
                return Answer(200, _json({"data": [c.to_json(self.base_url) for c in found]}))
            parts = path.removeprefix(wire.PATH_CHARGES + "/").split("/")
            if method == "GET" and len(parts) == 1:
                return Answer(200, _json({"data": self.charge(parts[0]).to_json(self.base_url)}))
            if method == "POST" and parts[1:] == ["cancel"]:
                return Answer(200, _json({"data": self.cancel(parts[0])}))
            raise _Refusal("not_found", f"no endpoint {method} {path}")
        except _Refusal as refusal:
            return refusal.answer()

    def _create(self, body: bytes) -> dict[str, Any]:
        try:
            fields = json.loads(body)
            pricing, metadata = fields["pricing"], fields.get("metadata") or {}
            amount, currency = str(pricing["amount"]), str(pricing["currency"])
            value = Decimal(amount)
            if value <= 0 or value != value.quantize(Decimal(1).scaleb(-wire.CURRENCIES[currency])):
                raise ValueError("amount")
            charge = SandboxCharge(
                id=f"chg_{secrets.token_hex(10)}",
                code=secrets.token_hex(4).upper(),
                amount=amount,
                currency=currency,
                description=str(fields.get("description", "")),
                metadata={str(k): str(v) for k, v in metadata.items()},
                callback_url=str(fields["callback_url"]),
            )
        except (ValueError, KeyError, TypeError, AttributeError, InvalidOperation):
            raise _Refusal(
                "invalid_request", "pricing, metadata or callback_url malformed"
            ) from None
        with self._lock:
            self.charges.append(charge)
        return charge.to_json(self.base_url)

    def _page(self, query: dict[str, str]) -> dict[str, Any]:
        try:
            limit = min(int(query.get("limit", wire.PAGE_DEFAULT)), wire.PAGE_MAX)
        except ValueError:
            raise _Refusal("invalid_request", "limit must be a number") from None
        newest_first = list(reversed(self.charges))
        after = query.get("starting_after")
        if after is not None:
            ids = [c.id for c in newest_first]
            if after not in ids:
                raise _Refusal("invalid_request", "starting_after names no charge")
            newest_first = newest_first[ids.index(after) + 1 :]
        page = newest_first[:limit]
        return {
            "data": [c.to_json(self.base_url) for c in page],
            "has_more": len(newest_first) > limit,
        }

    def _search(self, query: dict[str, str]) -> dict[str, Any]:
        reference = query.get(f"metadata_{wire.METADATA_REFERENCE}", "")
        found = [
            charge.to_json(self.base_url)
            for charge in reversed(self.charges)
            if charge.metadata.get(wire.METADATA_REFERENCE) == reference
        ]
        return {"data": found}

    def charge(self, charge_id: str) -> SandboxCharge:
        """The charge ``charge_id``."""
        for charge in self.charges:
            if charge.id == charge_id:
                return charge
        raise _Refusal("not_found", "no such charge")

    def pay(self, charge_id: str) -> Delivery:
        """Pay the new charge ``charge_id`` and send its ``charge:confirmed`` callback."""
        charge = self._finish(charge_id, wire.STATUS_COMPLETED, ValueError)
        return self._notify(charge, wire.EVENT_CONFIRMED)

    def cancel(self, charge_id: str) -> dict[str, Any]:
        """Cancel a new charge and send its ``charge:canceled`` callback."""
        charge = self._finish(charge_id, wire.STATUS_CANCELED, _not_cancelable)
        self._notify(charge, wire.EVENT_CANCELED)
        return charge.to_json(self.base_url)

    def _finish(
        self, charge_id: str, status: str, refused: Callable[[str], Exception]
    ) -> SandboxCharge:
        """Move the new charge ``charge_id`` to ``status``; ``refused(why)`` if it is not new."""
        with self._lock:
            charge = self.charge(charge_id)
            if charge.status != wire.STATUS_NEW:
                raise refused(f"charge {charge_id} is {charge.status}")
            charge.status = status
        return charge

    def _notify(self, charge: SandboxCharge, event_type: str) -> Delivery:
        event_id = f"evt_{secrets.token_hex(10)}"
        body = _json({"id": event_id, "type": event_type, "data": charge.to_json(self.base_url)})
        signature = hmac.new(self.webhook_secret.encode(), body, hashlib.sha256).hexdigest()
        headers = {"Content-Type": "application/json", wire.HEADER_SIGNATURE: signature}
        delivery = Delivery(charge.callback_url, headers, body)
        self.deliveries.append(delivery)
        self.deliver(delivery)
        return delivery


def _not_cancelable(why: str) -> _Refusal:
    return _Refusal("not_cancelable", why)


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _api(sandbox: ChargesSandbox, request: SandboxRequest) -> Answer:
    return sandbox.handle(request)


@contextmanager
def serve_charges(
    sandbox: ChargesSandbox | None = None, *, host: str = "127.0.0.1", port: int = 0
) -> Iterator[RunningSandbox[ChargesSandbox]]:
    """Serve a sandbox (default: a new one, fresh credentials) on loopback in a thread."""
    sandbox = sandbox or ChargesSandbox()
    app = sandbox_app(functools.partial(_api, sandbox))
    with background_server(app, host, port, name="charges-sandbox", lifespan="off") as server:
        sandbox.base_url = server.url
        checkout_path = "/pay/{}".format
        yield RunningSandbox(server.url, sandbox.settings(), sandbox, checkout_path=checkout_path)
