"""Money as an exact ``Decimal`` amount in a known currency.

Amounts are built from ``str``, ``int`` or ``Decimal`` (never ``float``, whose binary value is
not the decimal the caller wrote), quantised to the currency's minor units, and checked: NaN,
infinities, negative amounts and more decimal places than the currency allows are refused
with a :class:`~payments_core.errors.ValidationError` that names the field.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_EVEN, Context, Decimal, InvalidOperation
from typing import Final

import attrs

from payments_core.errors import ValidationError

__all__ = ["CURRENCIES", "Currency", "Money", "currency", "register_currency"]


@attrs.frozen
class Currency:
    """A currency the framework can price in.

    Attributes:
        code: Upper-case code: ISO 4217 for fiat (``USD``), the ticker for crypto (``USDT``).
        minor_units: Decimal places an amount may carry (USD: 2, JPY: 0, USDT: 8).
        crypto: Whether this is a crypto asset rather than a fiat currency.
        quantum: The smallest step of an amount (``Decimal("0.01")`` for USD), derived from
            ``minor_units``.
    """

    code: str
    minor_units: int
    crypto: bool = False
    quantum: Decimal = attrs.field(init=False, repr=False, eq=False)

    @quantum.default
    def _quantum(self) -> Decimal:
        return Decimal(1).scaleb(-self.minor_units)


# ISO 4217 minor units of the fiat currencies providers commonly price in.
_FIAT: Final = {
    "AED": 2, "ARS": 2, "AUD": 2, "BRL": 2, "CAD": 2, "CHF": 2, "CLP": 0, "CNY": 2, "COP": 2,
    "CZK": 2, "DKK": 2, "EUR": 2, "GBP": 2, "HKD": 2, "HUF": 2, "IDR": 2, "ILS": 2, "INR": 2,
    "ISK": 0, "JPY": 0, "KRW": 0, "KWD": 3, "MXN": 2, "MYR": 2, "NGN": 2, "NOK": 2, "NZD": 2,
    "PHP": 2, "PKR": 2, "PLN": 2, "RON": 2, "RUB": 2, "SAR": 2, "SEK": 2, "SGD": 2, "THB": 2,
    "TRY": 2, "TWD": 2, "UAH": 2, "USD": 2, "VND": 0, "ZAR": 2, "BHD": 3, "JOD": 3, "OMR": 3,
}  # fmt: skip
# Crypto assets carry their own precision; Binance Pay accepts at most 8 decimal places.
_CRYPTO: Final = {"BTC": 8, "ETH": 8, "BNB": 8, "USDT": 8, "USDC": 8, "BUSD": 8, "FDUSD": 8}

CURRENCIES: dict[str, Currency] = {
    **{code: Currency(code, units) for code, units in _FIAT.items()},
    **{code: Currency(code, units, crypto=True) for code, units in _CRYPTO.items()},
}

# A plain decimal numeral: no exponent, no underscores, no surrounding space.
_NUMERAL: Final = re.compile(r"[+-]?[0-9]+(?:\.[0-9]+)?")
# No real price needs more: this keeps absurd inputs from reaching a provider.
_MAX_INTEGER_DIGITS: Final = 15
#: The context every quantize runs in, whatever the caller's thread context says: room for the
#: largest amount with the most places a currency may have (15 + 18 digits), and an exact
#: result or an error, never a rounded one.
_CONTEXT: Final = Context(prec=40, rounding=ROUND_HALF_EVEN, traps=[InvalidOperation])


def register_currency(code: str, minor_units: int, *, crypto: bool = False) -> Currency:
    """Add a currency (a provider's crypto asset, say) to the registry and return it."""
    if not re.fullmatch(r"[A-Z][A-Z0-9]{1,9}", code):
        raise ValidationError("currency", f"{code!r} is not an upper-case currency code")
    if not 0 <= minor_units <= 18:
        raise ValidationError("minor_units", f"{minor_units} is outside 0..18")
    entry = Currency(code, minor_units, crypto=crypto)
    CURRENCIES[code] = entry
    return entry


def currency(code: object) -> Currency:
    """Look a currency code up, raising a ``ValidationError`` on ``currency`` if unknown."""
    if not isinstance(code, str):
        raise ValidationError("currency", f"must be a string, not {type(code).__name__}")
    try:
        return CURRENCIES[code]
    except KeyError:
        raise ValidationError("currency", f"unknown currency code {code!r}") from None


_currency = currency  # Money's parameter and attribute named ``currency`` hide the function


def _to_decimal(value: object) -> Decimal:
    if isinstance(value, (bool, float)):
        raise ValidationError(
            "amount",
            f"must be a str, int or Decimal, not {type(value).__name__}: "
            "binary floats cannot hold decimal money exactly",
        )
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValidationError("amount", f"must be a finite number, not {value}")
        return value
    if isinstance(value, str):
        if not _NUMERAL.fullmatch(value):
            lowered = value.strip().lower()
            if lowered.lstrip("+-") in {"nan", "snan", "inf", "infinity"}:
                raise ValidationError("amount", f"must be a finite number, not {value!r}")
            raise ValidationError("amount", f"{value!r} is not a plain decimal number")
        try:
            return Decimal(value)
        except InvalidOperation:  # pragma: no cover - the pattern above admits only numerals
            raise ValidationError("amount", f"{value!r} is not a decimal number") from None
    raise ValidationError("amount", f"must be a str, int or Decimal, not {type(value).__name__}")


def _canonical_amount(value: Decimal, code: str, info: Currency) -> Decimal:
    """``value`` checked for currency ``code`` (registered as ``info``) and quantised to its
    minor units, a negative zero made positive. The checks, in order: negative, too large,
    too many decimal places."""
    if value.is_signed() and value != 0:
        raise ValidationError("amount", f"must not be negative, got {value}")
    # Size first: quantizing a huge value would overflow the decimal context.
    if value.adjusted() >= _MAX_INTEGER_DIGITS:
        raise ValidationError("amount", f"{value} is larger than any supported amount")
    quantized = value.quantize(info.quantum, context=_CONTEXT)
    if value != quantized:
        raise ValidationError(
            "amount",
            f"{value} has more decimal places than {code} allows ({info.minor_units})",
        )
    return quantized.copy_abs() if quantized.is_signed() else quantized


@attrs.frozen(order=False, init=False)
class Money:
    """An exact amount of money.

    ``Money("1.00", "USD")`` and ``Money(1, "USD")`` are equal and both hold ``Decimal("1.00")``.

    Attributes:
        amount: Non-negative ``Decimal``, quantised to the currency's minor units.
        currency: The currency code; must be registered in :data:`CURRENCIES`.

    Raises:
        ValidationError: on ``currency`` for an unknown or non-string code; on ``amount`` for a
            float, NaN, an infinity, a negative value, a malformed string, or more decimal places
            than the currency allows.
    """

    amount: Decimal
    currency: str

    def __init__(self, amount: object, currency: str) -> None:
        # attrs's own __init__ sets the fields once the amount is quantised for the currency.
        # The checks run in this order: the amount's type and form, the currency, then the
        # amount's sign, size and places.
        value = _to_decimal(amount)
        info = _currency(currency)
        self.__attrs_init__(_canonical_amount(value, currency, info), currency)

    @property
    def currency_info(self) -> Currency:
        """The registry entry for :attr:`currency`."""
        return _currency(self.currency)

    @property
    def plain(self) -> str:
        """The amount as a plain decimal numeral, never in exponent form (``"0.00000001"``)."""
        return format(self.amount, "f")

    def to_minor(self, exponent: int | None = None) -> int:
        """The amount as a whole number of minor units: ``Money("12.34", "USD").to_minor()`` is
        ``1234``, ``Money(500, "JPY").to_minor()`` is ``500``.

        :param exponent: The decimal places the count is in, for a provider that counts some
            currency in other units than ISO 4217 does (Stripe counts ISK in hundredths);
            default the currency's own minor units.
        :raises ValidationError: on ``amount`` if the amount is finer than ``exponent`` places.
        """
        places = self.currency_info.minor_units if exponent is None else exponent
        count = self.amount.scaleb(places, context=_CONTEXT)
        if count != count.to_integral_value(context=_CONTEXT):
            raise ValidationError(
                "amount", f"{self} is not a whole number of {places}-place minor units"
            )
        return int(count)

    @classmethod
    def from_minor(cls, count: int, currency: str, exponent: int | None = None) -> Money:
        """Money from a whole number of minor units, the inverse of :meth:`to_minor`.

        :param count: The number of minor units (``1234`` for 12.34 USD); an ``int``, never a
            float or a bool.
        :param exponent: As for :meth:`to_minor`.
        :raises ValidationError: on ``amount`` for a count that is not an ``int``, is negative,
            or (with an ``exponent``) is finer than the currency allows; on ``currency`` for an
            unknown code.
        """
        if type(count) is not int:
            raise ValidationError(
                "amount", f"a count of minor units must be an int, not {type(count).__name__}"
            )
        places = _currency(currency).minor_units if exponent is None else exponent
        return cls(Decimal(count).scaleb(-places, context=_CONTEXT), currency)

    @property
    def is_zero(self) -> bool:
        """Whether the amount is zero."""
        return self.amount == 0

    def __str__(self) -> str:
        return f"{self.plain} {self.currency}"
