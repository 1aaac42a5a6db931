"""The sandbox's own JSON reading and writing, exact for big integers and decimals.

Reading keeps integers as ``int`` and numbers with a fraction or exponent as ``Decimal`` (never
``float``), refuses ``NaN``/``Infinity`` and duplicate keys, and raises :class:`MalformedJSON` for
anything that is not valid UTF-8 JSON. Writing renders ``Decimal`` as a JSON number literal
(``0.88000000``), which the standard encoder cannot do on its own, and produces compact UTF-8.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any, NoReturn

#: A Decimal is first written as the string ``"<MARK>index<MARK>"`` (NUL is escaped in JSON as
#: ``\u0000``), then replaced by its digits: one pass of the C encoder instead of a call per value.
_MARK = "\x00"
_MARKED = re.compile(r'"\\u0000([0-9]+)\\u0000"')


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


_DECODER = json.JSONDecoder(
    parse_float=Decimal, parse_constant=_reject_constant, object_pairs_hook=_unique_keys
)


def loads(raw: bytes) -> Any:
    """Parse ``raw`` strictly; raises :class:`MalformedJSON` on any defect."""
    try:
        return _DECODER.decode(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise MalformedJSON(str(exc)) from exc


def dumps(value: object) -> bytes:
    """Serialise ``value`` compactly; ``TypeError`` for a type JSON cannot carry."""
    decimals: list[str] = []

    def stand_in(item: object) -> object:
        # Called by the C encoder for what it cannot write: Decimals become marked strings.
        if isinstance(item, Decimal):
            if not item.is_finite():
                raise TypeError(f"{item!r} has no JSON form")
            decimals.append(format(item, "f"))
            return f"{_MARK}{len(decimals) - 1}{_MARK}"
        if isinstance(item, Mapping):
            return dict(item)
        if isinstance(item, Sequence) and not isinstance(item, bytes | bytearray):
            return list(item)
        raise TypeError(f"{type(item).__name__} is not JSON serialisable")

    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=stand_in)
    if decimals:
        marked = _MARKED.findall(text)
        if len(marked) != len(decimals):  # a string of the input looked like a mark
            return _encode(value).encode("utf-8")
        text = _MARKED.sub(lambda match: decimals[int(match.group(1))], text)
    return text.encode("utf-8")


def _encode(value: object) -> str:
    """The slow, mark-free writer, for the (contrived) input that holds a mark itself."""
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
