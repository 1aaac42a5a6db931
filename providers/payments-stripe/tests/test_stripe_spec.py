"""Every answer and webhook of a full sandbox run, checked against Stripe's OpenAPI description.

The run goes through every endpoint the sandbox serves (``ROUTES``), its errors, ``expand[]``
and list filters, and the provider's own flow; every event type it sends (``EVENT_TYPES``) is
among its webhooks. Each answer is validated against the description's answer for its
endpoint and status, each webhook against ``event`` and its object against the schema its
``object`` names. A field the description does not know is reported too, so the sandbox
invents nothing. Each mismatch names the answer and the field's path.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import jsonschema  # type: ignore[import-untyped]
from payments_stripe import wire
from payments_stripe.sandbox import EVENT_TYPES, ROUTES, StripeSandbox, sandbox_transport
from payments_stripe.sandbox_server import new_sandbox

from payments_core import Money, OrderRequest, Payments, RefundRequest

SPEC = Path(__file__).parent / "openapi" / "stripe-2023-08-16-sandbox.json"
_TEMPLATE = re.compile(r"\{[a-z_]+\}")


def _converted(node: Any) -> Any:
    """An OpenAPI 3.0 schema as JSON Schema: ``nullable`` as a ``null`` alternative, and no
    field beyond those an object lists."""
    if isinstance(node, list):
        return [_converted(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {key: _converted(value) for key, value in node.items() if not key.startswith("x-")}
    nullable = converted.pop("nullable", False)
    if "properties" in converted and "additionalProperties" not in converted:
        converted["additionalProperties"] = False
    return {"anyOf": [converted, {"type": "null"}]} if nullable else converted


@cache
def _spec() -> dict[str, Any]:
    spec: dict[str, Any] = _converted(json.loads(SPEC.read_bytes()))
    return spec


def _spec_path(template: str) -> str:
    """The description's path for one of the sandbox's route templates."""
    shape = _TEMPLATE.sub("{}", template)
    (found,) = [p for p in _spec()["paths"] if _TEMPLATE.sub("{}", p) == shape]
    return str(found)


def mismatches(instance: Any, schema: dict[str, Any], where: str) -> list[str]:
    """Each field of ``instance`` missing from, or ill-typed against, ``schema``: by path."""
    validator = jsonschema.Draft202012Validator(
        {**schema, "components": _spec()["components"]},
        format_checker=None,
    )
    found = []
    for error in validator.iter_errors(instance):
        deepest = error
        while deepest.context:
            deepest = jsonschema.exceptions.best_match(deepest.context)
        path = ".".join(str(part) for part in deepest.absolute_path) or "(the whole)"
        found.append(f"{where}: {path}: {deepest.message[:200]}")
    return found


def _schema_of(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _full_run(
    sandbox: StripeSandbox, transport: httpx.MockTransport, make_facade: Callable[..., Payments]
) -> None:
    """Every endpoint, with expansions, filters and refusals, and the provider's flow."""
    headers = {"Authorization": f"Bearer {sandbox.api_key}"}
    api = httpx.Client(transport=transport, base_url=sandbox.base_url, headers=headers)
    form = {"Content-Type": wire.FORM}

    def create(reference: str, amount: int = 1500, extra: Any = None) -> dict[str, Any]:
        fields = {
            "mode": "payment",
            "success_url": "https://shop.example/done",
            "client_reference_id": reference,
            "line_items[0][quantity]": "1",
            "line_items[0][price_data][currency]": "usd",
            "line_items[0][price_data][unit_amount]": str(amount),
            "line_items[0][price_data][product_data][name]": "A booking",
            **(extra or {}),
        }
        answer = api.post(wire.PATH_SESSIONS, content=urlencode(fields), headers=form)
        return dict(answer.json())

    paid = create(
        "spec-paid",
        extra={
            "customer_email": "payer@example.com",
            "locale": "fr",
            "payment_method_types[0]": "card",
            "metadata[k]": "v",
            "expand[0]": "line_items",
        },
    )
    sandbox.pay(paid["id"])
    open_one = create("spec-open")
    api.post(f"{wire.PATH_SESSIONS}/{open_one['id']}/expire", headers=form)
    create("spec-small", amount=10)  # below the minimum: refused
    create("spec-unknown", extra={"foo": "bar"})  # an unknown parameter: refused
    intent = api.get(f"{wire.PATH_SESSIONS}/{paid['id']}").json()["payment_intent"]
    for query in (
        {"expand[]": "payment_intent"},
        {"expand[0]": "payment_intent.latest_charge", "expand[1]": "line_items"},
    ):
        api.get(f"{wire.PATH_SESSIONS}/{paid['id']}", params=query)
    for query in (
        {"limit": "1"},
        {"status": "complete", "expand[]": "data.payment_intent"},
        {"ending_before": open_one["id"]},
        {"payment_intent": intent, "created[gte]": "0"},
        {"status": "nonsense"},
    ):
        api.get(wire.PATH_SESSIONS, params=query)
    api.get(wire.PATH_LINE_ITEMS.format(session_id=paid["id"]))
    api.get(wire.PATH_PAYMENT_INTENT.format(intent_id=intent), params={"expand[]": "latest_charge"})
    api.get(wire.PATH_PAYMENT_INTENT.format(intent_id="pi_missing"))
    refunded = api.post(
        wire.PATH_REFUNDS,
        content=urlencode({"payment_intent": intent, "amount": "500", "reason": "duplicate"}),
        headers={**form, "Idempotency-Key": "spec-refund-1"},
    ).json()
    api.post(
        wire.PATH_REFUNDS,
        content=urlencode({"payment_intent": intent, "reason": "changed my mind"}),
        headers=form,
    )
    api.get(wire.PATH_REFUND.format(refund_id=refunded["id"]), params={"expand[]": "charge"})
    api.get(wire.PATH_REFUNDS, params={"charge": refunded["charge"], "expand[]": "data.charge"})
    api.get(wire.PATH_BALANCE)
    api.get("/v1/customers")  # not imitated: an unknown URL
    with make_facade(sandbox, transport=transport) as payments:
        order = payments.create_order(
            OrderRequest(
                reference="spec-provider",
                price=Money("3.00", "EUR"),
                callback_url="https://shop.example/callbacks/stripe",
            )
        )
        sandbox.pay(order.provider_order_id)
        payments.query_order("spec-provider")
        refund = RefundRequest(
            reference="spec-provider", refund_reference="all", amount=Money("3.00", "EUR")
        )
        payments.refund_order(refund)
        for delivery in sandbox.deliveries:
            payments.handle_callback("stripe", delivery.headers, delivery.body)


def test_every_answer_and_webhook_of_a_full_run_matches_stripes_description(
    make_facade: Callable[..., Payments],
) -> None:
    sandbox = new_sandbox(deliver=lambda delivery: None)
    exchanges: list[tuple[httpx.Request, httpx.Response]] = []
    inner = sandbox_transport(sandbox)

    def record(request: httpx.Request) -> httpx.Response:
        response = inner.handle_request(request)
        response.read()
        exchanges.append((request, response))
        return response

    _full_run(sandbox, httpx.MockTransport(record), make_facade)

    found: list[str] = []
    served: set[tuple[str, str]] = set()
    for request, response in exchanges:
        where = f"{request.method} {request.url.path} {response.status_code}"
        assert response.headers.get("request-id", "").startswith("req_"), where
        route = next(
            (
                (method, template)
                for method, template in ROUTES
                if method == request.method
                and re.fullmatch(_TEMPLATE.sub("[A-Za-z0-9_]+", template), request.url.path)
            ),
            None,
        )
        if route is None or response.status_code != 200:
            schema = _schema_of("error")
        else:
            served.add(route)
            operation = _spec()["paths"][_spec_path(route[1])][route[0].lower()]
            schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
        found += mismatches(response.json(), schema, where)
    for delivery in sandbox.deliveries:
        event = json.loads(delivery.body)
        where = f"webhook {event['type']}"
        found += mismatches(event, _schema_of("event"), where)
        found += mismatches(
            event["data"]["object"], _schema_of(event["data"]["object"]["object"]), where
        )

    assert found == []
    assert served == set(ROUTES)
    assert {d.type for d in sandbox.deliveries} == EVENT_TYPES
    assert any(r.status_code == 404 for _, r in exchanges)  # the unknown URL's error, checked too


def test_the_check_reports_a_missing_and_an_ill_typed_field_by_path() -> None:
    session = {"id": "cs_test_1", "object": "checkout.session", "created": "yesterday"}

    found = mismatches(session, _schema_of("checkout.session"), "session")

    assert "session: created: 'yesterday' is not of type 'integer'" in found
    assert any("'automatic_tax' is a required property" in line for line in found)
