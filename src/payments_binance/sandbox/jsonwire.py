"""The sandbox's own JSON reading and writing, exact for big integers and decimals.

Reading keeps integers as ``int`` and numbers with a fraction or exponent as ``Decimal`` (never
``float``), refuses ``NaN``/``Infinity`` and duplicate keys, and raises :class:`MalformedJSON` for
anything that is not valid UTF-8 JSON. Writing renders ``Decimal`` as a JSON number literal
(``0.88000000``), which the standard encoder cannot do, and produces compact UTF-8.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any, NoReturn


class MalformedJSON(ValueError):
    """The bytes are not one valid JSON document under the sandbox's strict rules."""


def _reject_constant(name: str) -> NoReturn:
    raise MalformedJSON(f"{name} is not valid JSON")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise MalformedJSON(f"duplicate key {key!r}")
        result[key] = value
    return result


def loads(raw: bytes) -> Any:
    """Parse ``raw`` strictly; raises :class:`MalformedJSON` on any defect."""
    try:
        text = raw.decode("utf-8")
        return json.loads(
            text,
            parse_float=Decimal,
            parse_constant=_reject_constant,
            object_pairs_hook=_unique_keys,
        )
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise MalformedJSON(str(exc)) from exc


def dumps(value: object) -> bytes:
    """Serialise ``value`` compactly; ``TypeError`` for a type JSON cannot carry."""
    return _encode(value).encode("utf-8")


def _encode(value: object) -> str:
    if value is None or isinstance(value, bool | int | str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise TypeError(f"{value!r} has no JSON form")
        return format(value, "f")
    if isinstance(value, Mapping):
        items = (f"{json.dumps(str(k), ensure_ascii=False)}:{_encode(v)}" for k, v in value.items())
        return "{" + ",".join(items) + "}"
    if isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        return "[" + ",".join(_encode(v) for v in value) + "]"
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
