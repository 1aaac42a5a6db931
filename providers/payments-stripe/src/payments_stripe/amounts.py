"""Prices in Stripe's units: whole numbers of each currency's smallest unit, as Stripe counts it.

Stripe states every amount as an integer (``unit_amount=100`` is 1.00 USD, ``500`` is 500 JPY).
The count goes through :meth:`payments_core.Money.to_minor`, with Stripe's own places where
they differ from ISO 4217 (ISK: none in ISO, hundredths at Stripe), and Stripe's extra rules:
three-decimal currencies must end in 0, and no count may exceed eight digits.
"""

from __future__ import annotations

from payments_core import Money, ValidationError
from payments_stripe import wire

__all__ = ["exponent", "from_stripe", "to_stripe"]


def exponent(code: str) -> int:
    """The decimal places Stripe counts ``code`` in (``USD`` 2, ``JPY`` 0, ``KWD`` 3)."""
    if code in wire.ZERO_DECIMAL:
        return 0
    if code in wire.THREE_DECIMAL:
        return 3
    return 2  # every other currency, ISK included, is counted in hundredths


def to_stripe(price: Money, *, field: str = "price.amount") -> tuple[int, str]:
    """``(unit_amount, currency)`` for ``price``: ``Money("1.00", "USD")`` gives ``(100, "usd")``.

    :raises ValidationError: on ``field`` if Stripe cannot take the amount: a three-decimal
        amount whose last place is not 0, or more than 99,999,999 minor units.
    """
    code = price.currency
    count = price.to_minor(exponent(code))
    if code in wire.THREE_DECIMAL and count % 10:
        raise ValidationError(
            field,
            f"Stripe takes {code} amounts in whole hundredths (the third place 0), not {price}",
        )
    if count > wire.UNIT_AMOUNT_MAX:
        raise ValidationError(
            field,
            f"{price} is more than Stripe takes in one payment ({wire.UNIT_AMOUNT_MAX:,} units)",
        )
    return count, code.lower()


def from_stripe(count: object, currency: object) -> Money:
    """The :class:`Money` Stripe means by ``count`` minor units of ``currency`` (``"usd"``).

    :raises ValidationError: if the count is not a non-negative ``int`` (never a float), the
        currency is unknown, or the count has places the currency does not (ISK ``50050``).
    """
    if not isinstance(currency, str):
        raise ValidationError("currency", f"must be a string, not {type(currency).__name__}")
    code = currency.upper()
    return Money.from_minor(count, code, exponent(code))  # type: ignore[arg-type]
