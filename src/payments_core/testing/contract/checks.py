"""Checks shared by several contracts: each fails the running contract saying what is wrong."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal

import pytest

from payments_core.classify import classification_for_status
from payments_core.errors import CallbackError, PaymentsError, ProviderError
from payments_core.facade import Payments
from payments_core.models import (
    CallbackRequest,
    CallbackResult,
    ErrorClassification,
    Order,
    OrderRequest,
    PaymentEvent,
    PaymentStatus,
    ProviderInfo,
    Refund,
    RefundRequest,
    RefundStatus,
)
from payments_core.money import CURRENCIES, Money
from payments_core.serialization import converter
from payments_core.testing.contract.runner import ATTEMPTS, RETRY_AFTER, ContractRun, require


def check_money(value: object, where: str) -> Money:
    require(isinstance(value, Money), f"{where} is a {type(value).__name__}, not Money")
    assert isinstance(value, Money)
    require(
        type(value.amount) is Decimal,
        f"{where}.amount is a {type(value.amount).__name__}, not Decimal: money must never "
        "pass through a float",
    )
    return value


def check_aware(value: object, where: str) -> None:
    if value is None:
        return
    require(isinstance(value, datetime), f"{where} is a {type(value).__name__}, not datetime")
    assert isinstance(value, datetime)
    require(value.utcoffset() is not None, f"{where} is a naive datetime")


def check_order(
    order: object, request: OrderRequest, provider: str, *, queried: bool = False
) -> Order:
    require(isinstance(order, Order), f"create_order gave a {type(order).__name__}, not Order")
    assert isinstance(order, Order)
    require(order.provider == provider, f"order.provider is {order.provider!r}, not {provider!r}")
    require(
        order.reference == request.reference,
        f"order.reference is {order.reference!r}, not the request's {request.reference!r}",
    )
    for field in ("provider_order_id", "merchant_order_id"):
        value = getattr(order, field)
        require(
            isinstance(value, str) and value,
            f"order.{field} is {value!r}: it must be a non-empty str (ids exceed float range)",
        )
    require(
        isinstance(order.status, PaymentStatus), f"order.status is {order.status!r}, not a status"
    )
    amount = check_money(order.amount, "order.amount")
    # A query may state only the settlement (say USDT for a USD price); the currency tells.
    require(
        amount == request.price or (queried and amount.currency != request.price.currency),
        f"order.amount is {amount}, but {request.price} was asked for",
    )
    if order.settlement is not None:
        check_money(order.settlement, "order.settlement")
    for field in ("checkout_url", "qr_code_url", "qr_content", "deep_link", "universal_url"):
        value = getattr(order, field)
        require(value is None or isinstance(value, str), f"order.{field} is {value!r}")
    require(
        order.transaction_id is None or isinstance(order.transaction_id, str),
        f"order.transaction_id is {order.transaction_id!r}",
    )
    check_aware(order.expires_at, "order.expires_at")
    return order


def check_refund(refund: object, request: RefundRequest, provider: str) -> Refund:
    require(isinstance(refund, Refund), f"refund_order gave a {type(refund).__name__}")
    assert isinstance(refund, Refund)
    require(refund.provider == provider, f"refund.provider is {refund.provider!r}")
    require(
        (refund.reference, refund.refund_reference)
        == (request.reference, request.refund_reference),
        f"the refund names {refund.reference!r}/{refund.refund_reference!r}, not the request's",
    )
    require(
        isinstance(refund.provider_refund_id, str) and refund.provider_refund_id,
        f"refund.provider_refund_id is {refund.provider_refund_id!r}: it must be a non-empty str",
    )
    amount = check_money(refund.amount, "refund.amount")
    require(amount == request.amount, f"refund.amount is {amount}, {request.amount} was asked")
    require(
        isinstance(refund.status, RefundStatus) and refund.status is not RefundStatus.FAILED,
        f"a valid refund ended {refund.status!r}",
    )
    return refund


def skip_without_refunds(payments: Payments, name: str) -> None:
    if "refund_order" not in payments.describe(name).capabilities:
        pytest.skip("the provider does not list the refund_order capability")


def check_refused(exc: CallbackError, what: str) -> None:
    status = exc.reply.status_code
    require(
        400 <= status < 500,
        f"{what} was refused with HTTP {status}; a refused callback is answered with a 4xx",
    )


def round_trip(model: object, label: str) -> None:
    data = converter.unstructure(model)
    try:
        text = json.dumps(data)
    except TypeError as exc:
        raise AssertionError(f"{label} does not unstructure to JSON-ready data: {exc}") from None
    back = converter.structure(json.loads(text), type(model))
    require(back == model, f"{label} changed in a converter round trip: {model!r} → {back!r}")


def expect_error(fn: Callable[[], object], what: str) -> PaymentsError:
    try:
        result = fn()
    except PaymentsError as error:
        return error
    raise AssertionError(f"{what} succeeded with {result!r}; it should have failed")


def unsupported_currencies(info: ProviderInfo) -> list[str]:
    return sorted(code for code in CURRENCIES if code not in info.currencies)


def unique(run: ContractRun, reference: str) -> str:
    """``reference`` made unique to this example, still a valid reference."""
    return (run.reference("h") + "-" + reference)[:128]


def handle(payments: Payments, provider: str, callback: CallbackRequest) -> CallbackResult:
    return payments.handle_callback(provider, callback.headers, callback.body)


def check_paid_event(result: object, order: Order, provider: str) -> PaymentEvent:
    require(isinstance(result, CallbackResult), f"handle_callback gave {type(result).__name__}")
    assert isinstance(result, CallbackResult)
    require(
        200 <= result.reply.status_code < 300,
        f"a genuine callback was answered with HTTP {result.reply.status_code}",
    )
    event = result.event
    require(isinstance(event, PaymentEvent), f"a paid callback gave event {event!r}")
    assert isinstance(event, PaymentEvent)
    require(event.provider == provider, f"event.provider is {event.provider!r}")
    require(event.status is PaymentStatus.PAID, f"a paid callback gave status {event.status!r}")
    require(
        (event.provider_order_id, event.merchant_order_id)
        == (order.provider_order_id, order.merchant_order_id),
        f"the event names order {event.provider_order_id!r}/{event.merchant_order_id!r}, "
        f"the callback was for {order.provider_order_id!r}/{order.merchant_order_id!r}",
    )
    require(
        isinstance(event.event_id, str) and event.event_id,
        f"event.event_id is {event.event_id!r}",
    )
    if event.amount is not None:
        amount = check_money(event.amount, "event.amount")
        expected = order.settlement or order.amount
        require(amount == expected, f"event.amount is {amount}, the order's {expected}")
    check_aware(event.occurred_at, "event.occurred_at")
    return event


def classification_problems(
    label: str, error: PaymentsError, status: int, with_retry_after: bool
) -> list[str]:
    if not isinstance(error, ProviderError):
        return [f"{label} raised {type(error).__name__}, not ProviderError"]
    problems = []
    if error.status_code != status:
        problems.append(f"{label} gave ProviderError.status_code={error.status_code!r}")
    got: ErrorClassification | None = error.classification
    if got is None:
        return [*problems, f"{label} was not classified"]
    want = classification_for_status(status)
    if (got.category, got.retryable) != (want.category, want.retryable):
        problems.append(
            f"{label} classified {got.category}, retryable={got.retryable}; expected "
            f"{want.category}, retryable={want.retryable}"
        )
    if with_retry_after and got.retry_after != RETRY_AFTER:
        problems.append(
            f"{label}: Retry-After: {int(RETRY_AFTER)} gave retry_after={got.retry_after!r}"
        )
    return problems


def retry_problems(
    label: str, error: PaymentsError, attempts: int, waits: list[float]
) -> list[str]:
    if error.classification is None:
        return []
    wanted = ATTEMPTS if error.classification.retryable else 1
    problems = []
    if attempts != wanted:
        problems.append(f"{label} was sent {attempts} time(s), expected {wanted}")
    retry_after = error.classification.retry_after
    if retry_after is not None and any(wait < retry_after for wait in waits):
        problems.append(f"{label}: waited {waits} despite Retry-After {retry_after}")
    return problems
