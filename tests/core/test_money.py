"""Money: exact decimals, quantised per currency, everything else refused with a named field."""

from __future__ import annotations

from decimal import Decimal

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
