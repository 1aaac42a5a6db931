"""The Stripe sandbox's objects, whole: every field Stripe's API reference requires, and more.

Each builder returns a JSON-ready ``dict`` shaped as Stripe's OpenAPI description gives the
object (``checkout.session``, ``charge``, ``payment_intent``, ``refund``, ``item``, ``event``,
``list``): the fields it marks ``required`` always present, fields Stripe states as ``null``
present as ``None``, so a client reading any of them (the ``stripe`` SDK's attributes, say)
finds it. Keys starting with ``_`` are the sandbox's own bookkeeping and never shown.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from payments_stripe import wire

__all__ = [
    "BALANCE",
    "charge",
    "customer_details",
    "event",
    "line_item",
    "new_id",
    "page",
    "payment_intent",
    "refund",
    "session",
    "shown",
    "to_json",
]

#: The fields of each object Stripe shows as ``null`` here: no customer, tax, shipping,
#: subscription, Connect account or other feature this sandbox leaves out.
_SESSION_NULLS: Final = (
    "after_expiration", "allow_promotion_codes", "billing_address_collection", "consent",
    "consent_collection", "customer", "customer_details", "invoice", "payment_intent",
    "payment_link", "recovered_from", "setup_intent", "shipping_address_collection",
    "shipping_cost", "shipping_details", "submit_type", "subscription",
)  # fmt: skip
_PAYMENT_INTENT_NULLS: Final = (
    "application", "application_fee_amount", "canceled_at", "cancellation_reason", "customer",
    "description", "invoice", "last_payment_error", "next_action", "on_behalf_of",
    "payment_method", "processing", "receipt_email", "review", "setup_future_usage", "shipping",
    "statement_descriptor", "statement_descriptor_suffix", "transfer_data", "transfer_group",
)  # fmt: skip
_CHARGE_NULLS: Final = (
    "application", "application_fee", "application_fee_amount", "balance_transaction",
    "calculated_statement_descriptor", "customer", "description", "failure_balance_transaction",
    "failure_code", "failure_message", "invoice", "on_behalf_of", "payment_method",
    "receipt_number", "receipt_url", "review", "shipping", "source_transfer",
    "statement_descriptor", "statement_descriptor_suffix", "transfer_data", "transfer_group",
)  # fmt: skip
_REFUND_NULLS: Final = (
    "balance_transaction", "receipt_number", "source_transfer_reversal", "transfer_reversal"
)  # fmt: skip
_NO_ADDRESS: Final = dict.fromkeys(("city", "country", "line1", "line2", "postal_code", "state"))

#: The balance of a fresh test account: nothing available, nothing pending.
BALANCE: Final = {
    "object": "balance",
    "available": [{"amount": 0, "currency": "usd", "source_types": {"card": 0}}],
    "livemode": False,
    "pending": [{"amount": 0, "currency": "usd", "source_types": {"card": 0}}],
}


def new_id(prefix: str) -> str:
    """A fresh Stripe-style id: ``req_...``, ``pi_...``, ``evt_...``."""
    return f"{prefix}_{secrets.token_hex(12)}"


def to_json(value: Any) -> bytes:
    """An API answer's body: compact JSON."""
    return json.dumps(value, separators=(",", ":")).encode()


def _stripe_object(
    object_id: str, kind: str, nulls: Iterable[str], **fields: Any
) -> dict[str, Any]:
    """An object in Stripe's order: ``id`` and ``object``, then its fields by name, with each
    of ``nulls`` (the fields this sandbox never fills) as ``None``."""
    every = {**dict.fromkeys(nulls), **fields}
    return {"id": object_id, "object": kind, **dict(sorted(every.items()))}


def shown(stored: Mapping[str, Any]) -> dict[str, Any]:
    """An object as the API shows it: without the sandbox's own ``_`` keys."""
    return {k: v for k, v in stored.items() if not k.startswith("_")}


def session(
    *,
    session_id: str,
    created: int,
    expires_at: int,
    currency: str,
    unit_amount: int,
    quantity: int,
    product_name: str,
    url: str,
    fields: Mapping[str, str | None],
    metadata: Mapping[str, str],
    intent_metadata: Mapping[str, str],
    payment_method_types: Sequence[str],
) -> dict[str, Any]:
    """A new, open Checkout Session in ``payment`` mode with one line item.

    :param fields: The create's parameters; those the session shows as given (``success_url``,
        ``cancel_url``, ``client_reference_id``, ``customer_email``, ``locale``) are ``None``
        when absent.
    """
    total = unit_amount * quantity
    visible = _stripe_object(
        session_id,
        "checkout.session",
        _SESSION_NULLS,
        amount_subtotal=total,
        amount_total=total,
        automatic_tax={"enabled": False, "status": None},
        cancel_url=fields.get("cancel_url"),
        client_reference_id=fields.get("client_reference_id"),
        created=created,
        currency=currency,
        custom_fields=[],
        custom_text={"shipping_address": None, "submit": None},
        customer_creation="if_required",
        customer_email=fields.get("customer_email"),
        expires_at=expires_at,
        livemode=False,
        locale=fields.get("locale"),
        metadata=dict(metadata),
        mode="payment",
        payment_method_collection="always",
        payment_method_types=list(payment_method_types),
        payment_status=wire.PAYMENT_UNPAID,
        phone_number_collection={"enabled": False},
        shipping_options=[],
        status=wire.SESSION_OPEN,
        success_url=fields.get("success_url"),
        total_details={"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
        url=url,
    )
    return {
        **visible,
        "_intent_metadata": dict(intent_metadata),
        "_line_item": line_item(currency, unit_amount, quantity, product_name),
    }


def line_item(currency: str, unit_amount: int, quantity: int, description: str) -> dict[str, Any]:
    """A session's line item (``item``), untaxed and undiscounted."""
    total = unit_amount * quantity
    return {
        "id": new_id("li"),
        "object": "item",
        "amount_discount": 0,
        "amount_subtotal": total,
        "amount_tax": 0,
        "amount_total": total,
        "currency": currency,
        "description": description,
        "quantity": quantity,
    }


def customer_details(email: str | None) -> dict[str, Any]:
    """What the payer gave on the hosted page: here only the prefilled email, if any."""
    return {
        "address": None,
        "email": email,
        "name": None,
        "phone": None,
        "tax_exempt": "none",
        "tax_ids": [],
    }


def payment_intent(
    session: Mapping[str, Any], *, intent_id: str, charge_id: str, created: int
) -> dict[str, Any]:
    """The PaymentIntent ``session`` made when it was paid, succeeded with one charge."""
    return _stripe_object(
        intent_id,
        "payment_intent",
        _PAYMENT_INTENT_NULLS,
        amount=session["amount_total"],
        amount_capturable=0,
        amount_received=session["amount_total"],
        capture_method="automatic",
        confirmation_method="automatic",
        created=created,
        currency=session["currency"],
        latest_charge=charge_id,
        livemode=False,
        metadata=dict(session["_intent_metadata"]),
        payment_method_types=list(session["payment_method_types"]),
        status="succeeded",
    )


def charge(
    session: Mapping[str, Any], *, charge_id: str, intent_id: str, created: int
) -> dict[str, Any]:
    """The card charge that paid ``session``: captured and succeeded, nothing refunded yet."""
    email = session["customer_email"]
    return _stripe_object(
        charge_id,
        "charge",
        _CHARGE_NULLS,
        amount=session["amount_total"],
        amount_captured=session["amount_total"],
        amount_refunded=0,
        billing_details={
            "address": dict(_NO_ADDRESS),
            "email": email,
            "name": None,
            "phone": None,
        },
        captured=True,
        created=created,
        currency=session["currency"],
        disputed=False,
        fraud_details={},
        livemode=False,
        metadata=dict(session["_intent_metadata"]),
        paid=True,
        payment_intent=intent_id,
        receipt_email=email,
        refunded=False,
        status="succeeded",
    )


def refund(
    *,
    created: int,
    amount: int,
    charge_id: str,
    currency: str,
    intent_id: str,
    metadata: Mapping[str, str],
    reason: str | None,
) -> dict[str, Any]:
    """A card refund, which succeeds at once."""
    return _stripe_object(
        new_id("re"),
        "refund",
        _REFUND_NULLS,
        amount=amount,
        charge=charge_id,
        created=created,
        currency=currency,
        metadata=dict(metadata),
        payment_intent=intent_id,
        reason=reason,
        status=wire.REFUND_SUCCEEDED,
    )


def event(
    kind: str,
    obj: Mapping[str, Any],
    *,
    created: int,
    request_id: str | None,
    idempotency_key: str | None,
) -> dict[str, Any]:
    """An event about ``obj``; ``request_id`` names the API request that caused it, if any."""
    return {
        "id": new_id("evt"),
        "object": "event",
        "api_version": wire.API_VERSION,
        "created": created,
        "data": {"object": dict(obj)},
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": request_id, "idempotency_key": idempotency_key},
        "type": kind,
    }


def page(url: str, items: Sequence[Mapping[str, Any]], has_more: bool) -> dict[str, Any]:
    """One page of a list."""
    return {"object": "list", "data": list(items), "has_more": has_more, "url": url}
