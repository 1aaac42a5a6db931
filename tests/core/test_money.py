"""Money: exact decimals, quantised per currency, everything else refused with a named field."""

from __future__ import annotations

import copy
import decimal
from decimal import Decimal

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from payments_core import Money, ValidationError, register_currency
from payments_core.money import CURRENCIES


def test_one_dollar_is_accepted_and_exact() -> None:
    money = Money("1.00", "USD")
    assert money.amount == Decimal("1.00")
    assert str(money.amount) == "1.00"
    assert money.currency == "USD"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("1", "1.00"), (1, "1.00"), (Decimal("2.5"), "2.50"), ("0.10", "0.10"), ("12.30", "12.30")],
)
def test_amounts_are_quantised_to_the_currency(raw: object, expected: str) -> None:
    assert str(Money(raw, "USD").amount) == expected


def test_crypto_keeps_eight_places_and_jpy_none() -> None:
    assert Money("0.00000001", "USDT").plain == "0.00000001"
    assert str(Money("0.00000001", "USDT")) == "0.00000001 USDT"
    assert str(Money("150", "JPY").amount) == "150"


@pytest.mark.parametrize(
    ("amount", "currency", "field", "reason_part"),
    [
        (1.0, "USD", "amount", "float"),
        ("NaN", "USD", "amount", "finite"),
        ("inf", "USD", "amount", "finite"),
        ("-Infinity", "USD", "amount", "finite"),
        (Decimal("NaN"), "USD", "amount", "finite"),
        (Decimal("Infinity"), "USD", "amount", "finite"),
        ("1.001", "USD", "amount", "decimal places"),
        ("-1", "USD", "amount", "negative"),
        ("1e3", "USD", "amount", "plain decimal"),
        ("1_000", "USD", "amount", "plain decimal"),
        (" 1.00", "USD", "amount", "plain decimal"),
        (True, "USD", "amount", "bool"),
        (None, "USD", "amount", "NoneType"),
        ("1" * 16, "USD", "amount", "larger"),
        ("1.5", "JPY", "amount", "decimal places"),
        ("1.00", "XXX", "currency", "unknown"),
        ("1.00", "usd", "currency", "unknown"),
        ("1.00", 840, "currency", "string"),
        # several defects at once: the first one found is the one reported
        (1.0, "XXX", "amount", "float"),  # the amount's type before the currency
        ("1e3", "XXX", "amount", "plain decimal"),  # and its form
        (Decimal("NaN"), 840, "amount", "finite"),
        ("-1", "XXX", "currency", "unknown"),  # the currency before the sign
        ("1.001", "XXX", "currency", "unknown"),  # and before the places
        ("1" * 16 + ".001", "USD", "amount", "larger"),  # the size before the places
        ("-1.001", "USD", "amount", "negative"),  # the sign before the places
        ("1000000000000000", "JPY", "amount", "larger"),
        ("1234567890123456.00", "USD", "amount", "larger"),
    ],
)
def test_bad_money_is_refused_naming_the_field_and_its_first_defect(
    amount: object, currency: object, field: str, reason_part: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        Money(amount, currency)  # type: ignore[arg-type]
    assert caught.value.field == field
    assert reason_part in caught.value.reason


def test_registering_a_crypto_asset_gives_its_precision() -> None:
    try:
        register_currency("TESTCOIN", 4, crypto=True)
        assert str(Money("1.2345", "TESTCOIN").amount) == "1.2345"
        with pytest.raises(ValidationError):
            Money("1.23456", "TESTCOIN")
    finally:
        CURRENCIES.pop("TESTCOIN")


@given(
    st.decimals(allow_nan=True, allow_infinity=True, places=None)
    | st.text(max_size=30)
    | st.integers()
    | st.floats(),
    st.sampled_from(sorted(CURRENCIES)) | st.text(max_size=6),
)
def test_any_input_gives_money_or_a_named_validation_error(amount: object, currency: str) -> None:
    try:
        money = Money(amount, currency)  # type: ignore[arg-type]
    except ValidationError as error:
        assert error.field in {"amount", "currency"}
        assert error.reason
    else:
        assert isinstance(money.amount, Decimal)
        assert money.amount.is_finite()
        assert money.amount >= 0
        places = -money.amount.as_tuple().exponent  # type: ignore[operator]
        assert places == CURRENCIES[money.currency].minor_units


# -- the canonical amount and the order of the checks ---------------------------------------


@pytest.mark.parametrize(
    ("amount", "code", "held"),
    [
        ("1.00", "USD", "Decimal('1.00')"),
        ("1.00000000", "USDT", "Decimal('1.00000000')"),
        ("150", "JPY", "Decimal('150')"),
        ("-0", "USD", "Decimal('0.00')"),
        (Decimal("-0.00"), "USD", "Decimal('0.00')"),
        (Decimal("0E-8"), "USD", "Decimal('0.00')"),
        (Decimal("1E+2"), "USD", "Decimal('100.00')"),
        (Decimal("1.000"), "USD", "Decimal('1.00')"),
        ("+1.5", "USD", "Decimal('1.50')"),
        ("999999999999999.99", "USD", "Decimal('999999999999999.99')"),
        ("000000000000000000001.00", "USD", "Decimal('1.00')"),
        ("0999999999999999", "JPY", "Decimal('999999999999999')"),
    ],
)
def test_money_holds_the_amount_with_exactly_the_currencys_places_and_no_sign(
    amount: object, code: str, held: str
) -> None:
    money = Money(amount, code)
    assert repr(money.amount) == held
    assert not money.amount.is_signed()


def test_a_currency_of_eighteen_places_holds_the_largest_amount_exactly() -> None:
    try:
        register_currency("TEST18", 18, crypto=True)
        for amount in ["1." + "1" * 18, "12345678901." + "1" * 18, "999999999999999." + "9" * 18]:
            assert Money(amount, "TEST18").amount == Decimal(amount)
        with pytest.raises(ValidationError, match="larger than any supported amount"):
            Money("1" + "0" * 15, "TEST18")
    finally:
        CURRENCIES.pop("TEST18")


@pytest.mark.parametrize("precision", [3, 6, 12])
def test_money_does_not_depend_on_the_callers_decimal_context(precision: int) -> None:
    with decimal.localcontext(prec=precision, traps=[decimal.Inexact]):
        assert Money("1234567.89", "USD").amount == Decimal("1234567.89")
        assert Money(Decimal("999999999999999.5"), "USD").plain == "999999999999999.50"
        with pytest.raises(ValidationError, match="more decimal places"):
            Money("1234567.891", "USD")


def test_money_still_evolves_pickles_and_compares() -> None:
    money = Money("1.5", "USD")
    assert attrs.evolve(money, amount="2") == Money("2.00", "USD")
    with pytest.raises(ValidationError):
        attrs.evolve(money, amount=1.5)
    assert copy.deepcopy(money) == money
    assert hash(Money("1.50", "USD")) == hash(money)
    assert repr(money) == "Money(amount=Decimal('1.50'), currency='USD')"
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        money.amount = Decimal(2)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("money", "exponent", "count"),
    [
        (Money("12.34", "USD"), None, 1234),
        (Money("0.01", "USD"), None, 1),
        (Money(500, "JPY"), None, 500),
        (Money("1.234", "KWD"), None, 1234),
        (Money(500, "ISK"), 2, 50000),
        (Money("0.00000001", "BTC"), None, 1),
    ],
)
def test_minor_units_count_the_smallest_unit_both_ways(
    money: Money, exponent: int | None, count: int
) -> None:
    assert money.to_minor(exponent) == count
    assert type(money.to_minor(exponent)) is int
    assert Money.from_minor(count, money.currency, exponent) == money


def test_minor_units_refuse_what_the_units_cannot_hold() -> None:
    with pytest.raises(ValidationError) as finer:
        Money("1.25", "USD").to_minor(1)
    assert finer.value.field == "amount"
    with pytest.raises(ValidationError) as fraction:
        Money.from_minor(50050, "ISK", 2)  # 500.50 ISK: ISK has no minor unit
    assert fraction.value.field == "amount"
    for bad in (1.5, True, "100", Decimal(100)):
        with pytest.raises(ValidationError) as typed:
            Money.from_minor(bad, "USD")  # type: ignore[arg-type]
        assert typed.value.field == "amount"
    with pytest.raises(ValidationError) as negative:
        Money.from_minor(-1, "USD")
    assert negative.value.field == "amount"


@given(st.integers(min_value=0, max_value=10**15 - 1), st.sampled_from(["USD", "JPY", "KWD"]))
def test_minor_units_round_trip(count: int, code: str) -> None:
    assert Money.from_minor(count, code).to_minor() == count
