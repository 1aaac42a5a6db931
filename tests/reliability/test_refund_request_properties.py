"""R4 for refunds: every refund request ends in a valid object or a typed error naming the field.

Fuzzed at construction (``RefundRequest``, ``Money``), against the ledger's check of a paid
``1.00 USD`` order with part of it refunded (accepted exactly when the amount is in USD and at
most what remains), and through the Binance provider's refund operation, whose body the
sandbox's own validation (which checks as Binance does) must accept.

Examples per property: the loaded hypothesis profile's, as for the order properties.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hypothesis import event, given
from hypothesis import strategies as st

from payments_binance import protocol
from payments_binance.sandbox import validation as sandbox_validation
from payments_binance.trade_no import merchant_trade_no
from payments_core import (
    HttpRequest,
    Money,
    Order,
    PaymentStatus,
    RefundRequest,
    ValidationError,
)
from payments_core.rules import OrderState, check_refundable
from payments_core.testing.strategies import refund_requests

from .test_request_and_callback_properties import (  # provider: the same module-scoped fixture
    PROPERTY,
    amounts,
    currency_codes,
    good_references,
    provider,  # noqa: F401
)

REFUND_FIELDS = {"reference", "refund_reference", "amount", "reason", "callback_url"}
PRICE = Money("1.00", "USD")
ALREADY = Decimal("0.25")  # refunded before: 0.75 USD remains
PAID = Order(
    provider="binance",
    reference="booking-42",
    provider_order_id="383729303729303",
    provider_reference=merchant_trade_no("booking-42"),
    status=PaymentStatus.PARTIALLY_REFUNDED,
    amount=PRICE,
    settlement=Money("1.00000000", "USDT"),
    refunded=Money(ALREADY, "USD"),
)
STATE = OrderState(
    PAID.reference,
    PAID.provider_order_id,
    PAID.provider_reference,
    PAID.status,
    PRICE.amount,
    PRICE.currency,
)

_reference_like = st.one_of(
    good_references,
    st.text(max_size=140),
    st.integers(),
    st.none(),
)
ANY = {
    "reference": _reference_like,
    "refund_reference": _reference_like,
    "amount": st.one_of(st.builds(lambda a, c: (a, c), amounts, currency_codes), st.none()),
    "reason": st.one_of(st.text(max_size=300), st.none(), st.integers()),
    "callback_url": st.one_of(
        st.none(),
        st.sampled_from(["https://a.example/cb", "ftp://a.example/", "https://", "x" * 10]),
        st.integers(),
    ),
}


@st.composite
def refund_kwargs(draw: st.DrawFn) -> dict[str, Any]:
    """Arguments for ``RefundRequest``: valid ones, valid but for one or two fields, or any."""
    valid = draw(refund_requests(PRICE, reference="booking-42"))
    kwargs: dict[str, Any] = {
        "reference": valid.reference,
        "refund_reference": valid.refund_reference,
        "amount": (valid.amount.amount, valid.amount.currency),
        "reason": valid.reason,
        "callback_url": valid.callback_url,
    }
    mode = draw(st.sampled_from(["valid", "valid", "one bad", "two bad", "anything"]))
    count = {"valid": 0, "one bad": 1, "two bad": 2, "anything": len(ANY)}[mode]
    for name in draw(st.lists(st.sampled_from(sorted(ANY)), min_size=count, max_size=count)):
        kwargs[name] = draw(ANY[name])
    return kwargs


def build(kwargs: dict[str, Any]) -> RefundRequest:
    amount = kwargs["amount"]
    return RefundRequest(
        **{**kwargs, "amount": Money(*amount) if isinstance(amount, tuple) else amount}
    )


@PROPERTY
@given(kwargs=refund_kwargs())
def test_refund_request_is_valid_or_names_the_field(
    provider: Any,  # noqa: F811 - the fixture imported above
    kwargs: dict[str, Any],
) -> None:
    try:
        request = build(kwargs)
    except ValidationError as error:
        field = error.field.split(".")[0]
        assert field in REFUND_FIELDS | {"currency"}, error.field
        if field == "currency" or (field == "amount" and error.field != "amount.amount"):
            assert isinstance(kwargs["amount"], tuple) or field == "amount"
        return
    event("RefundRequest built")

    # The ledger's check: accepted exactly when in the price's currency and within what remains.
    fits = request.amount.currency == "USD" and request.amount.amount <= PRICE.amount - ALREADY
    try:
        check_refundable(STATE, request, ALREADY, "binance")
    except ValidationError as error:
        assert not fits, error
        assert error.field in {"amount", "amount.currency"}, error.field
        return
    assert fits
    event("the ledger accepts it")

    # Through the provider: the signed refund, or a ValidationError naming a request field.
    try:
        sent = next(provider.refund_order(PAID, request))
    except ValidationError as error:
        assert error.field.split(".")[0] in REFUND_FIELDS, error.field
        return
    assert isinstance(sent, HttpRequest)
    assert sent.url.endswith(protocol.PATH_REFUND)
    body = sandbox_validation.parse_body(sent.content)
    new = sandbox_validation.refund(body)  # what the provider builds, the sandbox accepts
    assert new.amount == request.amount.amount  # 1 USD is 1 USDT for this order
    event("the sandbox accepts the body")
