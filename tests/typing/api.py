"""The public API of ``payments_core``, called as an application or a provider author would.

This file is checked by ``mypy --strict tests/typing/`` and never run: each ``assert_type``
pins down the type a user's code sees, so a signature that loses its precision (an ``Any``
creeping in, a return type widened to ``object``) fails CI.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, assert_type

import httpx

import payments_core
from payments_core.ledger import ApplyResult, CallbackOutcome, ReconcileOutcome
from payments_core.testing import Fault, FaultInjector, LogCapture, ProviderHarness


def ok(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, request=request)


# -- values ----------------------------------------------------------------------------------

price = payments_core.Money("1.00", "USD")
assert_type(price, payments_core.Money)
assert_type(price.amount, Decimal)
assert_type(price.currency, str)
assert_type(price.to_minor(), int)
assert_type(payments_core.Money.from_minor(100, "USD"), payments_core.Money)
assert_type(payments_core.Money(Decimal("0.40"), "USD").is_zero, bool)
assert_type(payments_core.register_currency("XTS", 2), payments_core.Currency)

request = payments_core.OrderRequest(
    reference="booking-42",
    price=price,
    callback_url="https://leadscalendar.example/callbacks/binance",
    description="Booking 42",
    expires_at=datetime.now(UTC) + timedelta(minutes=15),
)
assert_type(request.transaction_type, payments_core.TransactionType)
assert_type(request.fiat, str)
assert_type(request.expires_at, datetime | None)

cancel = payments_core.RefundRequest(
    reference="booking-42", refund_reference="cancel-1", amount=payments_core.Money("0.40", "USD")
)
assert_type(cancel.amount, payments_core.Money)
assert_type(cancel.callback_url, str | None)

# -- configuration -----------------------------------------------------------------------------

config = payments_core.Config.load(environ={"PAYMENTS_DEFAULT_PROVIDER": "binance"})
assert_type(config, payments_core.Config)
assert_type(config.default_provider, str | None)
assert_type(config.providers, tuple[str, ...] | None)
policy = payments_core.RetryPolicy(max_attempts=3, deadline=10.0)
assert_type(policy.max_attempts, int)

# -- the facade, blocking ----------------------------------------------------------------------

ledger = payments_core.open_ledger("sqlite:///payments.sqlite3")
assert_type(ledger, payments_core.Ledger)
assert_type(ledger.get_order("binance", "booking-42"), payments_core.Order | None)
assert_type(ledger.refunds_for("binance", "booking-42"), list[payments_core.Refund])

with payments_core.Payments(
    config, retry=policy, ledger=ledger, transport=httpx.MockTransport(ok)
) as pay:
    assert_type(pay.provider_names, list[str])
    assert_type(pay.describe(), payments_core.ProviderInfo)
    order = pay.create_order(request)
    assert_type(order, payments_core.Order)
    assert_type(order.status, payments_core.PaymentStatus)
    assert_type(order.status.is_final, bool)
    assert_type(order.status.can_become(payments_core.PaymentStatus.CONFIRMING), bool)
    assert_type(order.checkout_url, str | None)
    assert_type(order.links, Mapping[str, str])
    assert_type(order.links.get("qr_image"), str | None)
    assert_type(order.provider_reference, str | None)
    assert_type(order.paid, payments_core.Money | None)
    assert_type(order.fee, payments_core.Money | None)
    assert_type(order.amount, payments_core.Money)
    assert_type(pay.query_order("booking-42"), payments_core.Order | None)
    assert_type(pay.close_order("booking-42", provider="binance"), bool)
    refund = pay.refund_order(cancel)
    assert_type(refund, payments_core.Refund)
    assert_type(refund.status, payments_core.RefundStatus)
    assert_type(pay.refunds("booking-42"), list[payments_core.Refund])
    headers: Mapping[str, str] = {"content-type": "application/json"}
    result = pay.handle_callback("binance", headers, b"{}")
    assert_type(result, payments_core.CallbackResult)
    assert_type(result.event, payments_core.PaymentEvent | None)
    assert_type(result.reply.status_code, int)
    outcome = pay.apply_callback("binance", headers, b"{}")
    assert_type(outcome, CallbackOutcome)
    assert_type(outcome.result, ApplyResult | None)
    assert_type(pay.reconcile(timedelta(minutes=30)), list[ReconcileOutcome])
    assert_type(pay.reconcile_order("booking-42"), ReconcileOutcome)
    assert_type(pay.announce_pending_changes(), int)

# -- the facade, asynchronous ------------------------------------------------------------------


async def checkout_async() -> None:
    async with payments_core.Payments(load_entry_points=True, async_http="httpx") as payments:
        assert_type(await payments.create_order_async(request), payments_core.Order)
        assert_type(await payments.query_order_async("booking-42"), payments_core.Order | None)
        assert_type(await payments.close_order_async("booking-42"), bool)
        assert_type(await payments.refund_order_async(cancel), payments_core.Refund)
        assert_type(
            await payments.handle_callback_async("binance", {}, b""), payments_core.CallbackResult
        )
        assert_type(await payments.apply_callback_async("binance", {}, b""), CallbackOutcome)
        assert_type(await payments.reconcile_async(), list[ReconcileOutcome])
        assert_type(await payments.reconcile_order_async("booking-42"), ReconcileOutcome)
        assert_type(await payments.announce_pending_changes_async(), int)


# -- errors, caught as a user who writes `import payments_core` would catch them -------------


def judge(payments: payments_core.Payments) -> str:
    try:
        payments.create_order(request)
    except payments_core.ValidationError as error:
        assert_type(error.field, str)
        assert_type(error.reason, str)
        return error.field
    except payments_core.ProviderError as error:
        assert_type(error.status_code, int | None)
        assert_type(error.provider_code, str | None)
        assert_type(error.retry_after, float | None)
        return error.message
    except payments_core.CallbackError as error:
        return str(error.reply.status_code)
    except payments_core.ConfigurationError as error:
        assert_type(error.provider, str | None)
        return error.message
    except payments_core.PaymentsError as error:
        judgement = error.classification
        assert_type(judgement, payments_core.ErrorClassification | None)
        if judgement is not None:
            assert_type(judgement.category, payments_core.ErrorCategory)
            assert_type(judgement.retryable, bool)
            return judgement.user_message
        return str(error)
    return "created"


# -- testing helpers ---------------------------------------------------------------------------

with LogCapture() as logs:
    assert_type(logs.leaks({"api_secret": "s3cret"}), list[str])

injector = FaultInjector(httpx.MockTransport(ok))
injector.inject(Fault.answer(429, headers={"Retry-After": "1"}), times=2)
injector.inject(Fault.timeout())
assert_type(injector.requests, list[httpx.Request])


def harness_name(harness: ProviderHarness) -> str:
    assert_type(harness.settings(), Mapping[str, Any])
    return harness.name
