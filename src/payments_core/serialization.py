"""The cattrs converter for every public model.

``converter.unstructure(model)`` gives JSON-ready data; ``converter.structure(data, Model)``
rebuilds the model, running its validation. Money travels as strings (``{"amount": "1.00",
"currency": "USD"}``), never as floats; datetimes as ISO 8601; enums as their values.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

import cattrs

from payments_core.errors import ValidationError
from payments_core.money import Money

__all__ = ["converter"]

converter = cattrs.Converter()


def _structure_money(data: Any, _: type) -> Money:
    if isinstance(data, Money):
        return data
    if not isinstance(data, Mapping) or set(data) != {"amount", "currency"}:
        raise ValidationError("money", "must be an object with exactly amount and currency")
    return Money(data["amount"], data["currency"])


def _structure_datetime(data: Any, _: type) -> datetime:
    if isinstance(data, datetime):
        return data
    if not isinstance(data, str):
        raise ValidationError("datetime", f"must be an ISO 8601 string, not {type(data).__name__}")
    try:
        return datetime.fromisoformat(data)
    except ValueError:
        raise ValidationError("datetime", f"{data!r} is not ISO 8601") from None


def _structure_decimal(data: object) -> Decimal:
    # A float has already lost digits (0.1 is not 1/10): refuse it, as Money does.
    if isinstance(data, Decimal):
        return data
    if isinstance(data, int | str) and not isinstance(data, bool):
        try:
            return Decimal(data)
        except ArithmeticError:
            pass
    raise ValidationError("decimal", f"must be a decimal string or an integer, not {data!r}")


converter.register_unstructure_hook(Money, lambda m: {"amount": m.plain, "currency": m.currency})
converter.register_structure_hook(Money, _structure_money)
converter.register_unstructure_hook(Decimal, lambda d: format(d, "f"))
converter.register_structure_hook(Decimal, lambda d, _: _structure_decimal(d))
converter.register_unstructure_hook(datetime, datetime.isoformat)
converter.register_structure_hook(datetime, _structure_datetime)
# Sets become sorted lists: JSON has no set. A predicate, because cattrs dispatches a field
# typed ``frozenset[str]`` to its own set handler, which would keep the frozenset.
converter.register_unstructure_hook_func(
    lambda t: t is frozenset or getattr(t, "__origin__", None) is frozenset, sorted
)
converter.register_unstructure_hook(bytes, lambda b: b.decode("latin-1"))
converter.register_structure_hook(
    bytes, lambda d, _: d if isinstance(d, bytes) else str(d).encode("latin-1")
)
