"""The public hypothesis strategies give what they promise (quality bar R4)."""

from __future__ import annotations

import json
from decimal import Decimal

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from payments_core import CallbackRequest, Money, OrderRequest, ValidationError
from payments_core.money import CURRENCIES
from payments_core.testing.strategies import (
    CallbackFormat,
    CallbackMutation,
    InvalidInput,
    callback_mutations,
    currencies,
    invalid_money_kwargs,
    invalid_order_request_kwargs,
    money,
    order_requests,
    prices,
    urls,
)

FORMAT = CallbackFormat(
    signature_header="X-Sig",
    required_headers={"X-Sig", "X-Time", "X-Serial"},
    timestamp_header="X-Time",
    key_header="X-Serial",
)
GENUINE = CallbackRequest(
    {"X-Sig": "q83vEjRWeJA=" * 8, "X-Time": "1700000000000", "X-Serial": "abc123", "X-Other": "1"},
    json.dumps({"event": "paid", "amount": "1.00", "text": "café"}).encode(),
)


def refused_with_field(invalid: InvalidInput, build: type[OrderRequest] | type[Money]) -> None:
    try:
        built = build(**invalid.kwargs)
    except ValidationError as error:
        assert invalid.names_field(error.field), (error.field, invalid)
    else:
        raise AssertionError(f"{invalid} built {built!r}")


@given(invalid_order_request_kwargs())
def test_an_order_request_with_one_bad_field_is_refused_naming_it(invalid: InvalidInput) -> None:
    refused_with_field(invalid, OrderRequest)


@given(invalid_money_kwargs())
def test_money_with_a_bad_amount_or_currency_is_refused_naming_it(invalid: InvalidInput) -> None:
    refused_with_field(invalid, Money)


@given(order_requests(currencies=["USD", "JPY"]))
def test_order_requests_are_valid_and_priced_in_the_asked_currencies(
    request: OrderRequest,
) -> None:
    assert request.price.currency in {"USD", "JPY"}
    assert request.price.amount > 0
    assert OrderRequest(**attrs.asdict(request, recurse=False)) == request


@given(money(min_value="0.5", max_value=3))
def test_money_stays_within_its_bounds_at_the_currency_precision(value: Money) -> None:
    assert Decimal("0.5") <= value.amount <= 3
    assert type(value.amount) is Decimal
    places = CURRENCIES[value.currency].minor_units
    assert value.amount == value.amount.quantize(Decimal(1).scaleb(-places))


@given(prices(currencies(crypto=True)))
def test_prices_are_positive(price: Money) -> None:
    assert CURRENCIES[price.currency].crypto
    assert not price.is_zero


@given(urls())
def test_urls_pass_the_models_url_check(url: str) -> None:
    OrderRequest(reference="r", price=Money(1, "USD"), callback_url=url)


@given(callback_mutations(FORMAT))
def test_every_callback_mutation_changes_what_is_signed_or_the_proof(
    mutation: CallbackMutation,
) -> None:
    forged = mutation(GENUINE)
    assert (dict(forged.headers), forged.body) != (dict(GENUINE.headers), GENUINE.body), mutation
    if forged.body != GENUINE.body:
        assert dict(forged.headers) == dict(GENUINE.headers)


@given(st.data())
def test_a_mutation_leaves_the_genuine_callback_untouched(data: st.DataObject) -> None:
    before = (dict(GENUINE.headers), GENUINE.body)
    data.draw(callback_mutations(FORMAT))(GENUINE)
    assert (dict(GENUINE.headers), GENUINE.body) == before


# An HMAC over the raw body (Coinbase Commerce's shape): one header, no timestamp, no key name.
BODY_HMAC = CallbackFormat(signature_header="X-CC-Webhook-Signature", required_headers=set())
BODY_SIGNED = CallbackRequest({"X-CC-Webhook-Signature": "ab" * 32}, b'{"id":"e1"}')


@given(callback_mutations(BODY_HMAC))
def test_a_body_hmac_format_is_tampered_only_where_it_keeps_its_proof(
    mutation: CallbackMutation,
) -> None:
    forged = mutation(BODY_SIGNED)
    assert set(forged.headers) <= {"x-cc-webhook-signature"}
    assert (dict(forged.headers), forged.body) != (dict(BODY_SIGNED.headers), BODY_SIGNED.body)
    assert "timestamp" not in mutation.description
    assert "key named" not in mutation.description


def test_serial_header_still_names_the_key_header_with_a_deprecation_warning() -> None:
    with pytest.warns(DeprecationWarning, match="key_header"):
        old = CallbackFormat(
            signature_header="X-Sig", required_headers={"X-Sig"}, serial_header="X-Serial"
        )
    assert old.key_header == "x-serial"
    assert old == CallbackFormat(
        signature_header="X-Sig", required_headers={"X-Sig"}, key_header="X-Serial"
    )
