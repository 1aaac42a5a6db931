"""What Money's refusals tell the developer, and minor-unit counts that stay exact whatever the
caller's decimal context: the gaps a mutation run of ``money.py`` found (docs/mutation.md)."""

from __future__ import annotations

import decimal
from collections.abc import Iterator
from decimal import Decimal

import pytest

from payments_core import Money, ValidationError, register_currency
from payments_core.money import CURRENCIES, Currency, currency


@pytest.fixture
def registry() -> Iterator[None]:
    """The global registry, put back as it was after the test."""
    before = dict(CURRENCIES)
    yield
    CURRENCIES.clear()
    CURRENCIES.update(before)


def refusal(amount: object, code: object = "USD") -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        Money(amount, code)  # type: ignore[arg-type]
    return caught.value


def test_a_float_is_refused_saying_why_floats_cannot_hold_money() -> None:
    error = refusal(0.1)
    assert error.field == "amount"
    assert error.reason == (
        "must be a str, int or Decimal, not float: binary floats cannot hold decimal money exactly"
    )


@pytest.mark.parametrize("text", ["nan", "sNaN", "-snan", "+Inf", "infinity", " NaN "])
def test_every_spelling_of_nan_and_infinity_is_refused_as_not_finite(text: str) -> None:
    error = refusal(text)
    assert error.field == "amount"
    assert error.reason == f"must be a finite number, not {text!r}"


@pytest.mark.parametrize(
    ("amount", "named"), [([1], "list"), (object(), "object"), (None, "NoneType")]
)
def test_an_unsupported_amount_type_is_named_in_the_refusal(amount: object, named: str) -> None:
    assert refusal(amount).reason == f"must be a str, int or Decimal, not {named}"


def test_a_non_string_currency_code_is_named_by_its_type() -> None:
    with pytest.raises(ValidationError) as caught:
        currency(840)
    assert (caught.value.field, caught.value.reason) == ("currency", "must be a string, not int")


def test_too_many_places_names_the_currency_and_its_places() -> None:
    error = refusal("1.001", "USD")
    assert error.reason == "1.001 has more decimal places than USD allows (2)"


@pytest.mark.usefixtures("registry")
def test_a_registered_currency_answers_to_its_own_code() -> None:
    entry = register_currency("TKN", 6, crypto=True)
    assert entry == Currency("TKN", 6, crypto=True)
    assert Money("1.5", "TKN").currency_info.code == "TKN"


@pytest.mark.parametrize("precision", [3, 5])
def test_minor_unit_counts_are_exact_whatever_the_callers_decimal_context(
    precision: int,
) -> None:
    with decimal.localcontext(prec=precision):
        assert Money("12345.67", "USD").to_minor() == 1234567
        assert Money.from_minor(1234567, "USD") == Money(Decimal("12345.67"), "USD")


def test_minor_unit_refusals_say_what_was_wrong() -> None:
    with pytest.raises(ValidationError) as finer:
        Money("1.25", "USD").to_minor(1)
    assert finer.value.reason == "1.25 USD is not a whole number of 1-place minor units"
    with pytest.raises(ValidationError) as typed:
        Money.from_minor(1.5, "USD")  # type: ignore[arg-type]
    assert typed.value.reason == "a count of minor units must be an int, not float"
