"""How a contract runs, and the checks contracts share.

:class:`ContractRun` is a contract test's toolbox; :func:`contract_test` names the test's contract.
Each check fails the running contract saying what is wrong.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import tempfile
import uuid
from collections.abc import Callable, Generator, Mapping
from datetime import datetime
from decimal import Decimal
from functools import partial, wraps
from pathlib import Path
from typing import Any, Final, TypeVar

import attrs
import pytest

from payments_core import (
    CallbackError,
    CallbackRequest,
    CallbackResult,
    Config,
    ErrorClassification,
    Order,
    OrderRequest,
    PaymentEvent,
    Payments,
    PaymentsError,
    PaymentStatus,
    ProviderError,
    Refund,
    RefundRequest,
    RefundStatus,
    RetryPolicy,
    converter,
)
from payments_core.classify import classification_for_status
from payments_core.config import HttpSettings
from payments_core.ledger import Ledger, open_ledger
from payments_core.money import Money
from payments_core.testing.harness import FaultInjector, ProviderHarness
from payments_core.transport import HttpxSender, drive

T = TypeVar("T")

ORDER_REQUEST_FIELDS: Final = frozenset(a.name for a in attrs.fields(OrderRequest))
CALLBACK_URL: Final = "https://merchant.example/payments/callback"
RETRY_AFTER: Final = 7.0
ATTEMPTS: Final = 3
#: How many orders the contracts create between an order and its query or second create.
OTHER_ORDERS: Final = 50


class ContractBroken(AssertionError):
    """A provider broke a contract. The message names it: ``contract 'name' broken: ...``.

    Attributes:
        contract: The name of the broken contract.
    """

    def __init__(self, contract: str, detail: str) -> None:
        super().__init__(f"contract {contract!r} broken: {detail}")
        self.contract = contract


@attrs.frozen
class Contract:
    """One contract of the suite.

    Attributes:
        name: Its name, as failure messages give it (``idempotent-create``).
        hooks: The provider hooks its test calls.
        summary: What a provider must do to meet it.
    """

    name: str
    hooks: frozenset[str]
    summary: str


def require(condition: object, message: str) -> None:
    """Fail the running contract with ``message`` unless ``condition`` holds."""
    if not condition:
        raise AssertionError(message)


def require_type(value: object, kind: type[T], message: str) -> T:
    """``value``; fail the running contract with ``message`` unless it is a ``kind``."""
    if not isinstance(value, kind):
        raise AssertionError(message)
    return value


def require_value(value: T | None, message: str) -> T:
    """``value``; fail the running contract with ``message`` if it is ``None``."""
    if value is None:
        raise AssertionError(message)
    return value


class ContractRun:
    """One contract test's tools: facades wired to the provider, faults, fresh references.

    Attributes:
        harness: The author's harness.
        faults: The transport between the provider and its sandbox.
        sleeps: Every wait the retry policy asked for, in seconds (it never really sleeps).
    """

    def __init__(self, harness: ProviderHarness) -> None:
        self.harness = harness
        self.faults = FaultInjector(harness.transport(), harness.async_transport())
        self.sleeps: list[float] = []
        self._called: set[str] = set()
        self._cleanups = contextlib.ExitStack()

    @property
    def hooks_called(self) -> frozenset[str]:
        """The provider hooks called so far."""
        return frozenset(self._called)

    def payments(
        self,
        *,
        attempts: int = ATTEMPTS,
        settings: Mapping[str, Any] | None = None,
        ledger: Ledger | None = None,
        plugins: tuple[object, ...] = (),
    ) -> Payments:
        """A new facade with the provider alone, its requests passing through :attr:`faults`.

        :param ledger: Its ledger (:meth:`ledger` makes one), if it needs one.
        :param plugins: Application plugins to register (a ``ChangeRecorder``, to hear
            ``payment_status_changed``).
        """

        async def no_sleep(seconds: float) -> None:
            self.sleeps.append(seconds)

        policy = RetryPolicy(
            max_attempts=attempts,
            deadline=3600.0,
            initial_delay=0.0,
            sleep=self.sleeps.append,
            async_sleep=no_sleep,
        )
        payments = Payments(
            Config(),
            providers={self.harness.name: self.harness.factory()},
            provider_settings={
                self.harness.name: self.harness.settings() if settings is None else settings
            },
            load_entry_points=False,
            retry=policy,
            ledger=ledger,
            transport=self.faults,
            async_transport=self.faults,
            plugins=plugins,
        )
        payments.host.pm.add_hookcall_monitoring(
            lambda hook_name, *_: self._called.add(hook_name),
            lambda *_: None,  # the call is recorded before it runs
        )
        return self._cleanups.enter_context(payments)

    def ledger(self) -> Ledger:
        """A new SQLite ledger in a file of its own, closed and removed with the run."""
        folder = tempfile.TemporaryDirectory(prefix="payments-contract-")
        self._cleanups.callback(folder.cleanup)
        ledger = open_ledger(f"sqlite:///{Path(folder.name) / 'ledger.sqlite3'}")
        return self._cleanups.enter_context(ledger)

    def reference(self, label: str) -> str:
        """A reference no other test has used."""
        return f"contract-{label}-{uuid.uuid4().hex[:12]}"

    def request(self, label: str, payments: Payments) -> OrderRequest:
        """A plain request for one unit of the provider's first currency, new reference."""
        info = payments.describe(self.harness.name)
        code = "USD" if "USD" in info.currencies else sorted(info.currencies)[0]
        return OrderRequest(
            reference=self.reference(label),
            price=Money(1, code),
            callback_url=CALLBACK_URL,
            description="Contract test order",
        )

    def paid_order(self, label: str, payments: Payments) -> Order:
        """A new order for two units of the provider's first currency, paid in the sandbox.

        Two units, so that half of it is a whole unit in every currency.
        """
        request = self.request(label, payments)
        request = attrs.evolve(request, price=Money(2, request.price.currency))
        order = payments.create_order(request)
        self.harness.paid_callback(order)
        return order

    def refund_request(self, order: Order, label: str, units: int) -> RefundRequest:
        """A refund of ``units`` of ``order``'s currency, under a new refund reference."""
        return RefundRequest(
            reference=order.reference,
            refund_reference=self.reference(label),
            amount=Money(units, order.amount.currency),
            reason="Contract test refund",
        )

    def refunds_made(self, before: int | None) -> int | None:
        """How many refunds the sandbox made since it held ``before``; ``None`` if unknown."""
        now = self.harness.refund_count()
        return None if now is None or before is None else now - before

    def drive(self, operation: Generator[Any, Any, T]) -> T:
        """Run a provider's ``operation`` straight over :attr:`faults`, outside any facade."""
        sender = HttpxSender(HttpSettings(), transport=self.faults)
        try:
            return drive(operation, partial(sender.send, provider=self.harness.name))
        finally:
            sender.close()

    def close(self) -> None:
        """Close every facade this run opened, and the injector's own transport."""
        self._cleanups.close()
        self.faults.close()


def contract_test(
    name: str, *, hooks: set[str], summary: str
) -> Callable[[Callable[[Any, ContractRun], None]], Callable[..., None]]:
    """Turn ``test(self, run)`` into a contract test taking the ``provider_harness`` fixture.

    Any exception from the test becomes :class:`ContractBroken` naming ``name``; a test that
    passes without calling every hook it declares is a bug in the suite, reported as such.
    """

    def decorate(test: Callable[[Any, ContractRun], None]) -> Callable[..., None]:
        @wraps(test)
        def run_contract(self: Any, provider_harness: ProviderHarness) -> None:
            run = ContractRun(provider_harness)
            try:
                test(self, run)
            except Exception as exc:
                raise ContractBroken(name, describe(exc)) from exc
            finally:
                run.close()
            missing = hooks - run.hooks_called
            if missing:
                raise AssertionError(
                    f"payments_core.testing bug: contract {name!r} declares hooks it never "
                    f"called: {sorted(missing)}"
                )

        # pytest asks for the fixtures the wrapper takes, not for the test's ``run``.
        run_contract.__signature__ = inspect.signature(  # type: ignore[attr-defined]
            run_contract, follow_wrapped=False
        )
        run_contract.__contract__ = Contract(  # type: ignore[attr-defined]
            name, frozenset(hooks), summary
        )
        return run_contract

    return decorate


def describe(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    if not isinstance(exc, AssertionError):
        text = f"unexpected {type(exc).__name__}: {text}"
    # Hypothesis notes the falsifying example on the exception; the author needs it.
    notes = [
        note
        for note in getattr(exc, "__notes__", [])
        if note.startswith(("Falsifying", "Failing test case"))
    ]
    return "\n".join([text, *notes])


def check_money(value: object, where: str) -> Money:
    value = require_type(value, Money, f"{where} is a {type(value).__name__}, not Money")
    require(
        type(value.amount) is Decimal,
        f"{where}.amount is a {type(value.amount).__name__}, not Decimal: money must never "
        "pass through a float",
    )
    return value


def check_aware(value: object, where: str) -> None:
    if value is None:
        return
    value = require_type(value, datetime, f"{where} is a {type(value).__name__}, not datetime")
    require(value.utcoffset() is not None, f"{where} is a naive datetime")


def check_order(
    order: object, request: OrderRequest, provider: str, *, queried: bool = False
) -> Order:
    order = require_type(order, Order, f"create_order gave a {type(order).__name__}, not Order")
    require(order.provider == provider, f"order.provider is {order.provider!r}, not {provider!r}")
    require(
        order.reference == request.reference,
        f"order.reference is {order.reference!r}, not the request's {request.reference!r}",
    )
    value = order.provider_order_id
    require(
        isinstance(value, str) and value,
        f"order.provider_order_id is {value!r}: it must be a non-empty str (ids pass 2**53)",
    )
    require(
        order.provider_reference is None
        or (isinstance(order.provider_reference, str) and order.provider_reference),
        f"order.provider_reference is {order.provider_reference!r}: None or a non-empty str",
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
    for field in ("settlement", "paid", "fee"):
        if getattr(order, field) is not None:
            check_money(getattr(order, field), f"order.{field}")
    for field in ("checkout_url", "transaction_id"):
        value = getattr(order, field)
        require(value is None or isinstance(value, str), f"order.{field} is {value!r}")
    require(
        all(isinstance(link, str) for link in order.links.values()),
        f"order.links holds a link that is not a str: {dict(order.links)!r}",
    )
    check_aware(order.expires_at, "order.expires_at")
    return order


def check_refund(refund: object, request: RefundRequest, provider: str) -> Refund:
    refund = require_type(refund, Refund, f"refund_order gave a {type(refund).__name__}")
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


def create_others(run: ContractRun, payments: Payments, label: str) -> None:
    """Create :data:`OTHER_ORDERS` orders under new references (a busy shop, meanwhile)."""
    for index in range(OTHER_ORDERS):
        payments.create_order(run.request(f"{label}-other-{index}", payments))


def skip_without_refunds(payments: Payments, name: str) -> None:
    if "refund_order" not in payments.describe(name).capabilities:
        pytest.skip("the provider does not list the refund_order capability")


def check_refused(
    payments: Payments, provider: str, callback: CallbackRequest, what: str, accepted: str = ""
) -> None:
    """Handle ``callback``, which must be refused with a 4xx; ``accepted`` names it if not."""
    try:
        result = handle(payments, provider, callback)
    except CallbackError as refused:
        status = refused.reply.status_code
        require(
            400 <= status < 500,
            f"{what} was refused with HTTP {status}; a refused callback is answered with a 4xx",
        )
        return
    raise AssertionError(f"{accepted or what} was accepted: {result.event!r}")


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


def unique(run: ContractRun, reference: str) -> str:
    """``reference`` made unique to this example, still a valid reference."""
    return (run.reference("h") + "-" + reference)[:128]


def handle(payments: Payments, provider: str, callback: CallbackRequest) -> CallbackResult:
    return payments.handle_callback(provider, callback.headers, callback.body)


def check_paid_event(result: object, order: Order, provider: str) -> PaymentEvent:
    result = require_type(result, CallbackResult, f"handle_callback gave {type(result).__name__}")
    require(
        200 <= result.reply.status_code < 300,
        f"a genuine callback was answered with HTTP {result.reply.status_code}",
    )
    event = require_type(result.event, PaymentEvent, f"a paid callback gave event {result.event!r}")
    require(event.provider == provider, f"event.provider is {event.provider!r}")
    require(event.status is PaymentStatus.PAID, f"a paid callback gave status {event.status!r}")
    require(
        event.provider_order_id == order.provider_order_id
        and event.provider_reference in {None, order.provider_reference or order.reference},
        f"the event names order {event.provider_order_id!r}/{event.provider_reference!r}, "
        f"the callback was for {order.provider_order_id!r}/{order.provider_reference!r}",
    )
    require(
        isinstance(event.event_id, str) and event.event_id,
        f"event.event_id is {event.event_id!r}",
    )
    for field in ("paid", "fee"):  # optional: what was paid and the provider's fee
        if getattr(event, field) is not None:
            check_money(getattr(event, field), f"event.{field}")
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
