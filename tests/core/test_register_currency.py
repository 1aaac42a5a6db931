"""``register_currency``: what it refuses (a typed error naming the field, the registry left as
it was), the edges it accepts, and what its ``crypto`` flag changes."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest

from payments_core import Money, PaymentEvent, PaymentStatus, ValidationError, register_currency
from payments_core.money import CURRENCIES, Currency, currency
from payments_core.rules import EventFlag, OrderState, assess_event


@pytest.fixture(autouse=True)
def registry() -> Iterator[dict[str, Currency]]:
    """The global registry, put back as it was after each test."""
    before = dict(CURRENCIES)
    yield before
    CURRENCIES.clear()
    CURRENCIES.update(before)


# -- the code -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "code",
    ["tkn", "Tkn", "1INCH", "X", "ABCDEFGHIJK", "TK-N", "TKN\n", " TKN", "ÄBC", ""],
    ids=[
        "lower-case",
        "mixed-case",
        "leading-digit",
        "one-character",
        "eleven-characters",
        "punctuation",
        "trailing-newline",
        "leading-space",
        "not-ascii",
        "empty",
    ],
)
def test_a_code_that_is_not_an_upper_case_code_is_refused_naming_currency(
    code: str, registry: dict[str, Currency]
) -> None:
    with pytest.raises(ValidationError) as caught:
        register_currency(code, 2)
    assert caught.value.field == "currency"
    assert repr(code) in caught.value.reason
    assert registry == CURRENCIES


@pytest.mark.parametrize("code", ["AB", "ABCDEFGHIJ", "A1"], ids=["two", "ten", "digit-after"])
def test_codes_of_two_to_ten_letters_and_digits_are_registered(code: str) -> None:
    entry = register_currency(code, 2)
    assert CURRENCIES[code] == entry
    assert Money("1.25", code).plain == "1.25"


# -- the minor units ------------------------------------------------------------------------


@pytest.mark.parametrize("minor_units", [-1, 19])
def test_minor_units_outside_0_to_18_are_refused_naming_minor_units(
    minor_units: int, registry: dict[str, Currency]
) -> None:
    with pytest.raises(ValidationError) as caught:
        register_currency("TESTUNITS", minor_units)
    assert caught.value.field == "minor_units"
    assert str(minor_units) in caught.value.reason
    assert registry == CURRENCIES


@pytest.mark.parametrize("minor_units", [0, 18])
def test_minor_units_at_either_end_give_money_of_exactly_that_precision(minor_units: int) -> None:
    register_currency("TESTUNITS", minor_units)
    smallest = Decimal(1).scaleb(-minor_units)
    assert Money(smallest, "TESTUNITS").amount == smallest
    with pytest.raises(ValidationError, match="more decimal places"):
        Money(smallest / 10, "TESTUNITS")


# -- the crypto flag ------------------------------------------------------------------------


def _usd_order_paid_in(code: str) -> EventFlag | None:
    """What the ledger's rule says of a payment in ``code`` for a USD-priced order whose
    settlement (the provider's conversion) it never learnt."""
    state = OrderState("booking-1", "P1", "M1", PaymentStatus.PENDING, Decimal("10.00"), "USD")
    event = PaymentEvent(
        provider="test",
        event_id="test:P1:paid",
        status=PaymentStatus.PAID,
        provider_order_id="P1",
        provider_reference="M1",
        amount=Money("3", code),
    )
    return assess_event(state, event)


def test_a_crypto_asset_may_settle_a_fiat_price_at_a_rate_the_ledger_never_learnt() -> None:
    entry = register_currency("TESTCOIN", 8, crypto=True)
    assert entry.crypto is True
    assert currency("TESTCOIN").crypto is True
    assert _usd_order_paid_in("TESTCOIN") is None


def test_a_currency_is_fiat_unless_flagged_and_fiat_cannot_settle_another_fiat_price() -> None:
    entry = register_currency("TESTFIAT", 2)
    assert entry.crypto is False
    assert currency("TESTFIAT").crypto is False
    assert _usd_order_paid_in("TESTFIAT") is EventFlag.CURRENCY_MISMATCH
