"""Money: exact decimals, quantised per currency, everything else refused with a named field."""

from __future__ import annotations

import copy
import decimal
from decimal import Decimal
from typing import Any

import attrs
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from payments_core import Money, ValidationError, register_currency
from payments_core.money import CURRENCIES, _to_decimal
from payments_core.money import currency as lookup_currency


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
    ],
)
def test_bad_money_is_refused_naming_the_field(
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


# -- Money's constructor against the attrs-generated one it replaced ----------------------------


#: What the reference quantizes in: its own context, as Money does, never the caller's.
_EXACT = decimal.Context(prec=40, traps=[decimal.InvalidOperation])


@attrs.frozen(order=False)
class ReferenceMoney:
    """``Money`` as first written: attrs's converter, validator and post-init checks."""

    amount: Decimal = attrs.field(converter=_to_decimal)
    currency: str = attrs.field()

    @currency.validator
    def _check_currency(self, attribute: attrs.Attribute[str], value: str) -> None:
        del attribute
        lookup_currency(value)

    def __attrs_post_init__(self) -> None:
        value = self.amount
        if value.is_signed() and value != 0:
            raise ValidationError("amount", f"must not be negative, got {value}")
        if value.adjusted() >= 15:
            raise ValidationError("amount", f"{value} is larger than any supported amount")
        units = lookup_currency(self.currency).minor_units
        if value != value.quantize(Decimal(1).scaleb(-units), context=_EXACT):
            raise ValidationError(
                "amount",
                f"{value} has more decimal places than {self.currency} allows ({units})",
            )
        step = Decimal(1).scaleb(-units)
        object.__setattr__(self, "amount", value.quantize(step, context=_EXACT).copy_abs())


def _outcome(make: Any, amount: object, code: object) -> tuple[str, object]:
    try:
        money = make(amount, code)
    except ValidationError as error:
        return "refused", (error.field, error.reason)
    except Exception as error:  # the point is to compare whatever happens
        return "raised", type(error)
    # repr of the Decimal: the same value *and* the same exponent and sign.
    return "money", (repr(money.amount), money.currency)


_NUMERALS = st.from_regex(r"[+-]?[0-9]{0,20}(\.[0-9]{0,20})?", fullmatch=True)
_DECIMAL_NUMERALS = st.from_regex(r"[+-]?[0-9]{1,20}(\.[0-9]{1,20})?", fullmatch=True)


@given(
    st.one_of(
        _NUMERALS,
        _DECIMAL_NUMERALS.map(Decimal),
        st.decimals(allow_nan=True, allow_infinity=True, places=None),
        st.decimals(allow_nan=True, allow_infinity=True, places=None).map(str),
        st.integers(min_value=-(10**20), max_value=10**20),
        st.floats(),
        st.booleans(),
        st.none(),
        st.text(max_size=12),
        st.sampled_from(["NaN", "-nan", "sNaN", "inf", "-Infinity", "1e3", "-0", "-0.00", "0E-8"]),
    ),
    st.one_of(
        st.sampled_from(sorted(CURRENCIES)),
        st.sampled_from(["XXX", "usd", "", " USD"]),
        st.integers(),
        st.none(),
        st.lists(st.integers(), max_size=1),
    ),
)
@example("1.00", "USD")
@example("1.00000000", "USDT")
@example(Decimal("-0.00"), "USD")
@example("999999999999999.99", "USD")
@example("1000000000000000", "USD")
@example("000000000000000000001.00", "USD")
@example("1.001", "USD")
@example("1.5", "JPY")
@example(Decimal("1E+2"), "USD")
@example(Decimal("1.000"), "USD")
@example(Decimal("NaN"), 840)
@example(1.0, "XXX")
def test_money_builds_and_refuses_exactly_as_the_attrs_generated_constructor(
    amount: object, code: object
) -> None:
    assert _outcome(Money, amount, code) == _outcome(ReferenceMoney, amount, code)


_CANONICAL_LIKE = st.from_regex(r"0{0,3}[0-9]{1,16}(\.[0-9]{0,10})?", fullmatch=True)


@given(
    _CANONICAL_LIKE,
    st.sampled_from(sorted(CURRENCIES)),
    st.sampled_from([None, 3, 6, 12, 28]),
)
@example("1.00", "USD", None)
@example("1.00000000", "USDT", None)
@example("150", "JPY", None)
@example("999999999999999.99", "USD", None)
@example("0999999999999999", "JPY", None)
@example("1000000000000000", "JPY", None)  # 16 integer digits: too large
@example("1234567890123456.00", "USD", None)
@example("123456.78", "USD", 6)  # 8 digits in a 6-digit context: the caller's context is ignored
def test_amounts_in_canonical_form_are_built_exactly_as_the_full_path_builds_them(
    amount: str, code: str, precision: int | None
) -> None:
    with decimal.localcontext() as context:
        if precision is not None:
            context.prec = precision
        assert _outcome(Money, amount, code) == _outcome(ReferenceMoney, amount, code)


def test_a_currency_of_eighteen_places_holds_the_largest_amount_exactly() -> None:
    try:
        register_currency("TEST18", 18, crypto=True)
        for amount in ["1." + "1" * 18, "12345678901." + "1" * 18, "999999999999999." + "9" * 18]:
            assert Money(amount, "TEST18").amount == Decimal(amount)
            assert _outcome(Money, amount, "TEST18") == _outcome(ReferenceMoney, amount, "TEST18")
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
