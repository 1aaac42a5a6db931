"""Extract the part of Stripe's OpenAPI description the sandbox answers with.

Usage: ``python extract.py SPEC.json OUT.json``. Keeps the answers (``200`` and ``default``)
of the endpoints the sandbox serves and every component schema they and the webhook objects
reach through ``$ref``, whole; drops only prose (``description``, ``title``) and Stripe's
``x-expansionResources`` (a repeat of the ``anyOf`` beside it). The result is what
``test_stripe_spec.py`` validates against.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

#: The endpoints the sandbox serves, as the description spells them.
PATHS = (
    "/v1/balance",
    "/v1/checkout/sessions",
    "/v1/checkout/sessions/{session}",
    "/v1/checkout/sessions/{session}/expire",
    "/v1/checkout/sessions/{session}/line_items",
    "/v1/payment_intents/{intent}",
    "/v1/refunds",
    "/v1/refunds/{refund}",
)
#: Objects webhooks carry, besides those the answers reach.
OBJECTS = ("event", "checkout.session", "charge", "refund", "payment_intent")
_PROSE = frozenset({"description", "title", "x-expansionResources"})


def _stripped(node: Any, *, names: bool = False) -> Any:
    """``node`` without prose; ``names``: a ``properties`` mapping, whose keys are fields."""
    if isinstance(node, dict):
        return {
            k: _stripped(v, names=k == "properties" and not names)
            for k, v in node.items()
            if names or k not in _PROSE
        }
    if isinstance(node, list):
        return [_stripped(v) for v in node]
    return node


def _refs(node: Any, found: set[str]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                found.add(value.rsplit("/", 1)[-1])
            else:
                _refs(value, found)
    elif isinstance(node, list):
        for value in node:
            _refs(value, found)


def extract(spec: dict[str, Any]) -> dict[str, Any]:
    schemas = spec["components"]["schemas"]
    paths = {
        path: {
            method: {"responses": {c: op["responses"][c] for c in ("200", "default")}}
            for method, op in spec["paths"][path].items()
            if method in ("get", "post")
        }
        for path in PATHS
    }
    todo = set(OBJECTS)
    _refs(paths, todo)
    kept: set[str] = set()
    while todo:
        name = todo.pop()
        if name not in kept:
            kept.add(name)
            _refs(schemas[name], todo)
    return _stripped(
        {
            "info": spec["info"],
            "paths": paths,
            "components": {"schemas": {name: schemas[name] for name in sorted(kept)}},
        }
    )


if __name__ == "__main__":
    source, target = Path(sys.argv[1]), Path(sys.argv[2])
    extracted = extract(json.loads(source.read_bytes()))
    target.write_text(json.dumps(extracted, separators=(",", ":"), sort_keys=True) + "\n")
    print(
        f"{target}: from {source.name} (sha256 {hashlib.sha256(source.read_bytes()).hexdigest()})"
    )
