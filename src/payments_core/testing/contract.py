"""The contract every payment provider must meet, as a pytest test class to subclass.

A provider author opts in from their own test module::

    import pytest
    from payments_core.testing import ProviderContract

    class TestMyProvider(ProviderContract):
        @pytest.fixture
        def provider_harness(self):
            harness = MyHarness()          # a ProviderHarness subclass
            yield harness
            harness.close()

Each ``test_*`` method checks one named contract. When a provider breaks one, the test fails
with :class:`ContractBroken`, whose message starts ``contract '<name>' broken:``. The
contracts, and the hooks each one calls, are listed by :func:`contracts`.

Every test builds its own :class:`~payments_core.Payments` wired to the provider through a
:class:`~payments_core.testing.harness.FaultInjector`, with a retry policy that never sleeps,
and uses fresh references, so tests may share one harness and its sandbox.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from functools import partial
from typing import Any, Final, TypeVar

import attrs
import click
import pluggy
import pytest
from click.testing import CliRunner
from hypothesis import given

from payments_core.classify import classification_for_status
from payments_core.config import Config, HttpSettings
from payments_core.errors import (
    CallbackError,
    ConnectError,
    PaymentsError,
    ProviderError,
    RequestTimeout,
    ValidationError,
)
from payments_core.facade import Payments
from payments_core.models import (
    CallbackRequest,
    CallbackResult,
    ErrorCategory,
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
from payments_core.retry import RetryPolicy
from payments_core.serialization import converter
from payments_core.testing.harness import Fault, FaultInjector, ProviderHarness
from payments_core.testing.logs import LogCapture, find_leaks
from payments_core.testing.profiles import contract_settings
from payments_core.testing.strategies import (
    CallbackMutation,
    callback_mutations,
    callback_requests,
    order_requests,
)
from payments_core.transport import HttpxSender, drive

__all__ = ["Contract", "ContractBroken", "ContractRun", "ProviderContract", "contracts"]

T = TypeVar("T")

_ORDER_REQUEST_FIELDS: Final = frozenset(a.name for a in attrs.fields(OrderRequest))
_CALLBACK_URL: Final = "https://merchant.example/payments/callback"
_RETRY_AFTER: Final = 7.0
_ATTEMPTS: Final = 3


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


def _require(condition: object, message: str) -> None:
    """Fail the running contract with ``message`` unless ``condition`` holds."""
    if not condition:
        raise AssertionError(message)


class _HookRecorder:
    """Records which hooks a facade calls, through pluggy's call monitoring."""

    def __init__(self) -> None:
        self.called: set[str] = set()

    def watch(self, pm: pluggy.PluginManager) -> None:
        """Record every hook ``pm`` calls from now on."""
        pm.add_hookcall_monitoring(self._before, self._after)

    def _before(
        self, hook_name: str, hook_impls: Sequence[pluggy.HookImpl], kwargs: Mapping[str, object]
    ) -> None:
        self.called.add(hook_name)

    def _after(
        self,
        outcome: pluggy.Result[object],
        hook_name: str,
        hook_impls: Sequence[pluggy.HookImpl],
        kwargs: Mapping[str, object],
    ) -> None:
        pass  # the call is recorded before it runs


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
        self._recorder = _HookRecorder()
        self._opened: list[Payments] = []

    @property
    def hooks_called(self) -> frozenset[str]:
        """The provider hooks called so far."""
        return frozenset(self._recorder.called)

    def payments(
        self, *, attempts: int = _ATTEMPTS, settings: Mapping[str, Any] | None = None
    ) -> Payments:
        """A new facade with the provider alone, its requests passing through :attr:`faults`."""

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
            transport=self.faults,
            async_transport=self.faults,
        )
        self._recorder.watch(payments.host.pm)
        self._opened.append(payments)
        return payments

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
            callback_url=_CALLBACK_URL,
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

    def close(self) -> None:
        """Close every facade this run opened, and the injector's own transport."""
        for payments in self._opened:
            payments.close()
        self.faults.close()


def _contract(
    name: str, *, hooks: set[str], summary: str
) -> Callable[[Callable[[Any, ContractRun], None]], Callable[..., None]]:
    """Turn ``test(self, run)`` into a contract test taking the ``provider_harness`` fixture.

    Any exception from the test becomes :class:`ContractBroken` naming ``name``; a test that
    passes without calling every hook it declares is a bug in the suite, reported as such.
    """

    def decorate(test: Callable[[Any, ContractRun], None]) -> Callable[..., None]:
        def run_contract(self: Any, provider_harness: ProviderHarness) -> None:
            run = ContractRun(provider_harness)
            try:
                test(self, run)
            except Exception as exc:
                raise ContractBroken(name, _describe(exc)) from exc
            finally:
                run.close()
            missing = hooks - run.hooks_called
            if missing:
                raise AssertionError(
                    f"payments_core.testing bug: contract {name!r} declares hooks it never "
                    f"called: {sorted(missing)}"
                )

        run_contract.__name__ = test.__name__
        run_contract.__qualname__ = test.__qualname__
        run_contract.__doc__ = test.__doc__
        run_contract.__module__ = test.__module__
        run_contract.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
            [
                inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD),
                inspect.Parameter("provider_harness", inspect.Parameter.POSITIONAL_OR_KEYWORD),
            ]
        )
        run_contract.__contract__ = Contract(  # type: ignore[attr-defined]
            name, frozenset(hooks), summary
        )
        return run_contract

    return decorate


def _describe(exc: Exception) -> str:
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


def contracts(cls: type | None = None) -> dict[str, Contract]:
    """The contracts a contract class checks (default :class:`ProviderContract`), by name."""
    found: dict[str, Contract] = {}
    for klass in reversed((cls or ProviderContract).__mro__):
        for attribute in vars(klass).values():
            contract = getattr(attribute, "__contract__", None)
            if isinstance(contract, Contract):
                found[contract.name] = contract
    return found


# -- checks shared by several contracts --------------------------------------------------------


def _check_money(value: object, where: str) -> Money:
    _require(isinstance(value, Money), f"{where} is a {type(value).__name__}, not Money")
    assert isinstance(value, Money)
    _require(
        type(value.amount) is Decimal,
        f"{where}.amount is a {type(value.amount).__name__}, not Decimal: money must never "
        "pass through a float",
    )
    return value


def _check_aware(value: object, where: str) -> None:
    if value is None:
        return
    _require(isinstance(value, datetime), f"{where} is a {type(value).__name__}, not datetime")
    assert isinstance(value, datetime)
    _require(value.utcoffset() is not None, f"{where} is a naive datetime")


def _check_order(
    order: object, request: OrderRequest, provider: str, *, queried: bool = False
) -> Order:
    _require(isinstance(order, Order), f"create_order gave a {type(order).__name__}, not Order")
    assert isinstance(order, Order)
    _require(order.provider == provider, f"order.provider is {order.provider!r}, not {provider!r}")
    _require(
        order.reference == request.reference,
        f"order.reference is {order.reference!r}, not the request's {request.reference!r}",
    )
    for field in ("provider_order_id", "merchant_order_id"):
        value = getattr(order, field)
        _require(
            isinstance(value, str) and value,
            f"order.{field} is {value!r}: it must be a non-empty str (ids exceed float range)",
        )
    _require(
        isinstance(order.status, PaymentStatus), f"order.status is {order.status!r}, not a status"
    )
    amount = _check_money(order.amount, "order.amount")
    # A query may state only the settlement (say USDT for a USD price); the currency tells.
    _require(
        amount == request.price or (queried and amount.currency != request.price.currency),
        f"order.amount is {amount}, but {request.price} was asked for",
    )
    if order.settlement is not None:
        _check_money(order.settlement, "order.settlement")
    for field in ("checkout_url", "qr_code_url", "qr_content", "deep_link", "universal_url"):
        value = getattr(order, field)
        _require(value is None or isinstance(value, str), f"order.{field} is {value!r}")
    _require(
        order.transaction_id is None or isinstance(order.transaction_id, str),
        f"order.transaction_id is {order.transaction_id!r}",
    )
    _check_aware(order.expires_at, "order.expires_at")
    return order


def _check_refund(refund: object, request: RefundRequest, provider: str) -> Refund:
    _require(isinstance(refund, Refund), f"refund_order gave a {type(refund).__name__}")
    assert isinstance(refund, Refund)
    _require(refund.provider == provider, f"refund.provider is {refund.provider!r}")
    _require(
        (refund.reference, refund.refund_reference)
        == (request.reference, request.refund_reference),
        f"the refund names {refund.reference!r}/{refund.refund_reference!r}, not the request's",
    )
    _require(
        isinstance(refund.provider_refund_id, str) and refund.provider_refund_id,
        f"refund.provider_refund_id is {refund.provider_refund_id!r}: it must be a non-empty str",
    )
    amount = _check_money(refund.amount, "refund.amount")
    _require(amount == request.amount, f"refund.amount is {amount}, {request.amount} was asked")
    _require(
        isinstance(refund.status, RefundStatus) and refund.status is not RefundStatus.FAILED,
        f"a valid refund ended {refund.status!r}",
    )
    return refund


def _skip_without_refunds(payments: Payments, name: str) -> None:
    if "refund_order" not in payments.describe(name).capabilities:
        pytest.skip("the provider does not list the refund_order capability")


def _check_refused(exc: CallbackError, what: str) -> None:
    status = exc.reply.status_code
    _require(
        400 <= status < 500,
        f"{what} was refused with HTTP {status}; a refused callback is answered with a 4xx",
    )


def _round_trip(model: object, label: str) -> None:
    data = converter.unstructure(model)
    try:
        text = json.dumps(data)
    except TypeError as exc:
        raise AssertionError(f"{label} does not unstructure to JSON-ready data: {exc}") from None
    back = converter.structure(json.loads(text), type(model))
    _require(back == model, f"{label} changed in a converter round trip: {model!r} → {back!r}")


def _expect_error(fn: Callable[[], object], what: str) -> PaymentsError:
    try:
        result = fn()
    except PaymentsError as error:
        return error
    raise AssertionError(f"{what} succeeded with {result!r}; it should have failed")


def _unsupported_currencies(info: ProviderInfo) -> list[str]:
    return sorted(code for code in CURRENCIES if code not in info.currencies)


class ProviderContract:
    """The provider contract suite. Subclass it as ``Test...`` and supply ``provider_harness``.

    ``provider_harness`` is a fixture (any scope) returning a
    :class:`~payments_core.testing.harness.ProviderHarness`. Contracts that need an optional
    capability (``close_order``, a sandbox) skip, saying why, when the provider lacks it.
    """

    pytestmark: Final = [pytest.mark.payments_contract]

    @_contract(
        "describes-itself",
        hooks={"describe_provider"},
        summary="describe_provider returns ProviderInfo with the registered name, a display "
        "name and the registered currencies it accepts",
    )
    def test_describes_itself(self, run: ContractRun) -> None:
        """The provider describes itself under the name it is registered with."""
        info = run.payments().describe(run.harness.name)
        _require(isinstance(info, ProviderInfo), f"describe_provider gave {info!r}")
        _require(info.name == run.harness.name, f"ProviderInfo.name is {info.name!r}")
        _require(info.display_name, "ProviderInfo.display_name is empty")
        _require(info.currencies, "ProviderInfo.currencies is empty: say what you accept")
        unknown = sorted(set(info.currencies) - set(CURRENCIES))
        _require(not unknown, f"ProviderInfo.currencies names unregistered codes {unknown}")

    @_contract(
        "well-formed-order",
        hooks={"create_order", "describe_provider"},
        summary="every valid request gives a pending Order with str ids and the exact Decimal "
        "price, or a ValidationError naming a request field before anything is sent",
    )
    def test_valid_requests_give_well_formed_orders(self, run: ContractRun) -> None:
        """Valid requests of every shape give well-formed orders (or a typed refusal)."""
        payments = run.payments()
        plain = run.request("plain", payments)
        order = _check_order(payments.create_order(plain), plain, run.harness.name)
        _require(order.status is PaymentStatus.PENDING, f"a new order is {order.status}")
        info = payments.describe(run.harness.name)

        @contract_settings()
        @given(order_requests(currencies=info.currencies))
        def check(request: OrderRequest) -> None:
            request = attrs.evolve(request, reference=_unique(run, request.reference))
            sent = len(run.faults.requests)
            try:
                created = payments.create_order(request)
            except ValidationError as error:
                _require(
                    error.field.split(".")[0] in _ORDER_REQUEST_FIELDS,
                    f"ValidationError names {error.field!r}, which is not an OrderRequest field",
                )
                _require(
                    len(run.faults.requests) == sent,
                    f"ValidationError on {error.field!r} came after a request was sent",
                )
                return
            _check_order(created, request, run.harness.name)

        check()

    @_contract(
        "typed-validation",
        hooks={"create_order", "describe_provider"},
        summary="a request in a currency the provider does not accept is refused with a "
        "ValidationError naming price, before anything is sent",
    )
    def test_unsupported_requests_give_typed_validation_errors(self, run: ContractRun) -> None:
        """A currency the provider does not list is refused as a typed validation error."""
        payments = run.payments()
        info = payments.describe(run.harness.name)
        unsupported = _unsupported_currencies(info)
        if not unsupported:
            pytest.skip("the provider accepts every registered currency")
        for code in unsupported:
            request = attrs.evolve(run.request("currency", payments), price=Money(1, code))
            sent = len(run.faults.requests)
            error = _expect_error(partial(payments.create_order, request), f"an order in {code}")
            _require(
                isinstance(error, ValidationError),
                f"an order in {code} raised {type(error).__name__}, not ValidationError",
            )
            assert isinstance(error, ValidationError)
            _require(
                error.field.split(".")[0] == "price",
                f"an order in {code} was refused on {error.field!r}, not on price",
            )
            _require(len(run.faults.requests) == sent, f"an order in {code} was sent anyway")

    @_contract(
        "idempotent-create",
        # Only create_order is certain: a provider may refuse the repeat as a duplicate (then
        # classify_error and query_order recover it) or answer it with the same order.
        hooks={"create_order"},
        summary="creating twice for one reference, from one facade or two, gives the same "
        "provider order, and the provider holds one order",
    )
    def test_same_reference_gives_same_order(self, run: ContractRun) -> None:
        """A repeated create (a retry, a second app instance) never makes a second order."""
        payments = run.payments()
        request = run.request("idempotent", payments)
        before = run.harness.order_count()
        first = payments.create_order(request)
        second = payments.create_order(request)
        third = run.payments().create_order(request)
        for label, again in (("the second create", second), ("another facade's", third)):
            _require(
                (again.provider_order_id, again.merchant_order_id)
                == (first.provider_order_id, first.merchant_order_id),
                f"{label} gave order {again.provider_order_id!r}/{again.merchant_order_id!r}, "
                f"the first gave {first.provider_order_id!r}/{first.merchant_order_id!r}",
            )
        created = run.harness.order_count() - before
        _require(created == 1, f"three creates for one reference left {created} orders")

    @_contract(
        "recover-unknown-outcome",
        hooks={"create_order", "query_order", "classify_error"},
        summary="a create whose answer is lost (timeout) is recovered by query, a refused "
        "connection by sending again: one order either way",
    )
    def test_create_recovers_without_a_second_order(self, run: ContractRun) -> None:
        """Lost answers and refused connections end in exactly one order."""
        payments = run.payments()
        for fault in (Fault.timeout(), Fault.unreachable()):
            request = run.request(fault.kind.value, payments)
            before = run.harness.order_count()
            run.faults.inject(fault)
            order = payments.create_order(request)
            created = run.harness.order_count() - before
            _require(
                order.reference == request.reference,
                f"after {fault.kind.value} the create gave the order of {order.reference!r}",
            )
            _require(created == 1, f"after {fault.kind.value} the provider holds {created} orders")
            again = payments.create_order(request)
            _require(
                again.provider_order_id == order.provider_order_id,
                f"after {fault.kind.value}, creating again gave another provider order",
            )

    @_contract(
        "query-order",
        hooks={"create_order", "query_order"},
        summary="query_order finds a created order by its reference (same ids, amount) and "
        "gives None for a reference the provider never saw",
    )
    def test_query_order_finds_orders_by_reference(self, run: ContractRun) -> None:
        """A query finds what was created, and nothing for an unknown reference."""
        payments = run.payments()
        request = run.request("query", payments)
        created = payments.create_order(request)
        found = payments.query_order(request.reference)
        _require(found is not None, "query_order found nothing for a created order")
        assert found is not None
        _check_order(found, request, run.harness.name, queried=True)
        _require(
            (found.provider_order_id, found.merchant_order_id)
            == (created.provider_order_id, created.merchant_order_id),
            f"query_order gave order {found.provider_order_id!r}, created was "
            f"{created.provider_order_id!r}",
        )
        missing = payments.query_order(run.reference("never-created"))
        _require(missing is None, f"query_order for an unknown reference gave {missing!r}")

    @_contract(
        "close-order",
        hooks={"create_order", "close_order", "describe_provider"},
        summary="close_order accepts closing an unpaid order (providers listing the "
        "close_order capability)",
    )
    def test_close_order_closes_an_unpaid_order(self, run: ContractRun) -> None:
        """An unpaid order can be closed."""
        payments = run.payments()
        if "close_order" not in payments.describe(run.harness.name).capabilities:
            pytest.skip("the provider does not list the close_order capability")
        request = run.request("close", payments)
        payments.create_order(request)
        closed = payments.close_order(request.reference)
        _require(closed is True, f"close_order gave {closed!r}, not True")

    @_contract(
        "idempotent-refund",
        hooks={"create_order", "query_order", "refund_order", "query_refund"},
        summary="refunding twice under one refund reference, from one facade or two, or after "
        "the refund's answer was lost, gives the same refund and the provider makes one "
        "(providers listing the refund_order capability)",
    )
    def test_same_refund_reference_gives_same_refund(self, run: ContractRun) -> None:
        """A repeated refund (a retry, a second app instance, a lost answer) refunds once."""
        payments = run.payments()
        _skip_without_refunds(payments, run.harness.name)
        order = run.paid_order("refund", payments)
        before = run.harness.refund_count()
        request = run.refund_request(order, "refund", 1)
        first = _check_refund(payments.refund_order(request), request, run.harness.name)
        for label, facade in (("the second refund", payments), ("another facade's", None)):
            again = (facade or run.payments()).refund_order(request)
            _require(
                again.provider_refund_id == first.provider_refund_id,
                f"{label} gave refund {again.provider_refund_id!r}, the first gave "
                f"{first.provider_refund_id!r}",
            )
        made = run.refunds_made(before)
        _require(made in {None, 1}, f"three refunds under one refund reference made {made}")
        lost = run.refund_request(order, "refund-lost", 1)
        run.faults.inject(Fault.forward())  # the order's query goes through
        run.faults.inject(Fault.timeout())  # the refund is made, its answer lost
        recovered = _check_refund(payments.refund_order(lost), lost, run.harness.name)
        again = payments.refund_order(lost)
        _require(
            again.provider_refund_id == recovered.provider_refund_id,
            "after a lost answer, refunding again gave another provider refund",
        )
        made = run.refunds_made(before)
        _require(made in {None, 2}, f"two refund references, one answer lost, made {made}")

    @_contract(
        "over-refund-refused",
        hooks={"create_order", "refund_order"},
        summary="a refund of more than remains of a paid order is refused with a typed, "
        "non-retryable error, and refunds nothing",
    )
    def test_over_refund_is_refused(self, run: ContractRun) -> None:
        """No refund gives back more than was paid."""
        payments = run.payments()
        _skip_without_refunds(payments, run.harness.name)
        order = run.paid_order("over-refund", payments)
        payments.refund_order(run.refund_request(order, "over-refund-part", 1))
        before = run.harness.refund_count()
        excess = run.refund_request(order, "over-refund-excess", 2)
        error = _expect_error(
            partial(payments.refund_order, excess), "refunding 2 of what remains 1"
        )
        retryable = error.classification is not None and error.classification.retryable
        _require(
            isinstance(error, ValidationError | ProviderError) and not retryable,
            f"refunding more than remains raised {type(error).__name__} (retryable="
            f"{retryable}): expected a ValidationError or a non-retryable ProviderError",
        )
        made = run.refunds_made(before)
        _require(made in {None, 0}, f"a refund of more than remains made {made} refund(s)")

    @_contract(
        "refund-unpaid-refused",
        hooks={"create_order", "refund_order"},
        summary="the provider refuses to refund an order it holds as unpaid, even when told it "
        "is paid; the facade refuses it with a ValidationError naming reference",
    )
    def test_refund_of_an_unpaid_order_is_refused(self, run: ContractRun) -> None:
        """Nothing is refunded of an order nobody paid."""
        payments = run.payments()
        _skip_without_refunds(payments, run.harness.name)
        order = payments.create_order(run.request("refund-unpaid", payments))
        request = run.refund_request(order, "refund-unpaid", 1)
        before = run.harness.refund_count()
        error = _expect_error(partial(payments.refund_order, request), "refunding an unpaid order")
        _require(
            isinstance(error, ValidationError) and error.field == "reference",
            f"refunding an unpaid order raised {error!r}, not a ValidationError on reference",
        )
        # The provider itself, told by a stale ledger that the order is paid, must refuse too.
        forged = attrs.evolve(order, status=PaymentStatus.PAID)
        operation = payments.provider(run.harness.name).refund_order(forged, request)
        _require(operation is not None, "refund_order gave no operation")
        assert operation is not None
        sender = HttpxSender(HttpSettings(), transport=run.faults)
        try:
            _expect_error(
                lambda: drive(operation, partial(sender.send, provider=run.harness.name)),
                "the provider's refund of an unpaid order",
            )
        finally:
            sender.close()
        made = run.refunds_made(before)
        _require(made in {None, 0}, f"refunding an unpaid order made {made} refund(s)")

    @_contract(
        "callback-accepted",
        hooks={"create_order", "handle_callback"},
        summary="a genuine paid callback is accepted (2xx) and says which order was paid, with "
        "a stable event id and exact money",
    )
    def test_genuine_callback_is_accepted(self, run: ContractRun) -> None:
        """A genuine callback verifies and describes the payment."""
        payments = run.payments()
        order = payments.create_order(run.request("callback", payments))
        result = _handle(payments, run.harness.name, run.harness.paid_callback(order))
        _check_paid_event(result, order, run.harness.name)

    @_contract(
        "callback-duplicate",
        hooks={"create_order", "handle_callback"},
        summary="a callback delivered twice, to one app instance or two, gives the same event "
        "and event id both times; different orders' events have different ids",
    )
    def test_duplicate_callback_is_harmless(self, run: ContractRun) -> None:
        """Redelivery is harmless: same event, same id, acknowledged again."""
        payments = run.payments()
        order = payments.create_order(run.request("duplicate", payments))
        callback = run.harness.paid_callback(order)
        first = _handle(payments, run.harness.name, callback)
        second = _handle(payments, run.harness.name, callback)
        third = _handle(run.payments(), run.harness.name, callback)
        for label, result in (("a redelivery", second), ("another instance", third)):
            _check_paid_event(result, order, run.harness.name)
            _require(
                result.event == first.event,
                f"{label} gave event {result.event!r}, the first delivery {first.event!r}",
            )
        other = payments.create_order(run.request("duplicate-other", payments))
        other_result = _handle(payments, run.harness.name, run.harness.paid_callback(other))
        assert first.event is not None
        assert other_result.event is not None
        _require(
            other_result.event.event_id != first.event.event_id,
            f"two different orders' callbacks share event id {first.event.event_id!r}",
        )

    @_contract(
        "callback-tamper",
        hooks={"create_order", "handle_callback"},
        summary="every tampered copy of a genuine callback (flipped byte, dropped header, "
        "re-serialised body, shifted timestamp, changed serial, bad signature) is refused with "
        "a CallbackError and a 4xx reply",
    )
    def test_tampered_callbacks_are_refused(self, run: ContractRun) -> None:
        """No tampered callback is accepted."""
        payments = run.payments()
        order = payments.create_order(run.request("tamper", payments))
        genuine = run.harness.paid_callback(order)

        @contract_settings()
        @given(callback_mutations(run.harness.callback_format))
        def check(mutation: CallbackMutation) -> None:
            forged = mutation(genuine)
            what = f"a callback tampered by {mutation.description}"
            try:
                result = payments.handle_callback(run.harness.name, forged.headers, forged.body)
            except CallbackError as refused:
                _check_refused(refused, what)
                return
            raise AssertionError(f"{what} was accepted: {result.event!r}")

        check()

    @_contract(
        "callback-garbage",
        hooks={"handle_callback"},
        summary="arbitrary headers and bodies are refused with a CallbackError and a 4xx reply, "
        "never another exception",
    )
    def test_malformed_callbacks_are_refused(self, run: ContractRun) -> None:
        """Random callbacks are refused cleanly."""
        payments = run.payments()

        @contract_settings()
        @given(callback_requests(run.harness.callback_format))
        def check(callback: CallbackRequest) -> None:
            try:
                result = payments.handle_callback(run.harness.name, callback.headers, callback.body)
            except CallbackError as refused:
                _check_refused(refused, "a malformed callback")
                return
            raise AssertionError(f"a random callback was accepted: {result.event!r}")

        check()

    @_contract(
        "classify-http-status",
        hooks={"create_order", "classify_error"},
        summary="HTTP 400, 401, 403, 404, 429 (Retry-After honoured), 500 and 503 are "
        "classified as the core's table says and retried only when retryable",
    )
    def test_http_errors_are_classified(self, run: ContractRun) -> None:
        """Every HTTP error status gets the right category and retry decision."""
        payments = run.payments()
        problems: list[str] = []
        cases: list[tuple[int, dict[str, str]]] = [
            (400, {}),
            (401, {}),
            (403, {}),
            (404, {}),
            (429, {}),
            (429, {"Retry-After": str(int(_RETRY_AFTER))}),
            (500, {}),
            (503, {}),
        ]
        for status, headers in cases:
            label = f"HTTP {status}{' with Retry-After' if headers else ''}"
            run.faults.fail_every_request(
                Fault.answer(status, run.harness.error_body(status), headers)
            )
            sent, slept = len(run.faults.requests), len(run.sleeps)
            request = run.request(f"http-{status}", payments)
            try:
                error = _expect_error(partial(payments.create_order, request), label)
            finally:
                run.faults.fail_every_request(None)
            problems.extend(
                _classification_problems(label, error, status, bool(headers))
                + _retry_problems(
                    label,
                    error,
                    attempts=len(run.faults.requests) - sent,
                    waits=run.sleeps[slept:],
                )
            )
        _require(not problems, "; ".join(problems))

    @_contract(
        "classify-timeout",
        hooks={"create_order", "query_order", "classify_error"},
        summary="a timeout is outcome_unknown and retryable; a refused connection is network "
        "and retryable",
    )
    def test_timeouts_are_classified(self, run: ContractRun) -> None:
        """Timeouts and refused connections are retryable, with the right category."""
        payments = run.payments(attempts=1)
        reference = payments.create_order(run.request("timeout", payments)).reference
        expected = [
            (Fault.timeout(), RequestTimeout, ErrorCategory.OUTCOME_UNKNOWN),
            (Fault.unreachable(), ConnectError, ErrorCategory.NETWORK),
        ]
        for fault, error_type, category in expected:
            run.faults.inject(fault)
            error = _expect_error(
                lambda: payments.query_order(reference), f"a query hit by {fault.kind.value}"
            )
            _require(
                isinstance(error, error_type),
                f"{fault.kind.value} raised {type(error).__name__}, not {error_type.__name__}",
            )
            got = error.classification
            _require(got is not None, f"{fault.kind.value}: the error was not classified")
            assert got is not None
            _require(
                (got.category, got.retryable) == (category, True),
                f"{fault.kind.value} classified {got.category}, retryable={got.retryable}; "
                f"expected {category}, retryable=True",
            )

    @_contract(
        "no-secrets-in-logs",
        hooks={"create_order", "query_order", "handle_callback", "classify_error"},
        summary="through a full flow logged at DEBUG (orders, retries, errors, genuine, tampered "
        "and garbage callbacks), no credential, request signature or callback signature "
        "appears in a log line or an error message",
    )
    def test_no_secret_reaches_logs(self, run: ContractRun) -> None:
        """Secrets stay out of logs and error messages (quality bar R6)."""
        harness = run.harness
        errors: list[PaymentsError] = []
        with LogCapture() as logs:
            payments = run.payments()
            request = run.request("secrets", payments)
            order = payments.create_order(request)
            payments.create_order(request)
            payments.query_order(request.reference)
            genuine = harness.paid_callback(order)
            payments.handle_callback(harness.name, genuine.headers, genuine.body)
            forged = {k: v for k, v in genuine.headers.items()}
            forged[harness.callback_format.signature_header] = "0" * 64
            for headers, body in ((forged, genuine.body), (genuine.headers, b"{not json")):
                errors.append(
                    _expect_error(
                        partial(payments.handle_callback, harness.name, headers, body),
                        "a forged callback",
                    )
                )
            for fault in (Fault.answer(401, harness.error_body(401)), Fault.timeout()):
                run.faults.fail_every_request(fault)
                r = run.request("secrets-fault", payments)
                try:
                    errors.append(_expect_error(partial(payments.create_order, r), "failed create"))
                finally:
                    run.faults.fail_every_request(None)
        secrets = dict(harness.secrets())
        secrets["the callback signature"] = genuine.headers[
            harness.callback_format.signature_header
        ]
        for index, sent in enumerate(run.faults.requests):
            for name, value in sent.headers.items():
                if harness.is_sensitive_request_header(name) and len(value) >= 6:
                    secrets[f"request header {name} #{index}"] = value
        leaks = logs.leaks(secrets) + find_leaks(
            secrets,
            [(f"{type(e).__name__} message", f"{e} {e!r} {e.args!r}") for e in errors],
        )
        _require(not leaks, f"{len(leaks)} leak(s): " + "; ".join(leaks[:5]))

    @_contract(
        "models-round-trip",
        hooks={
            "describe_provider",
            "create_order",
            "query_order",
            "handle_callback",
            "classify_error",
        },
        summary="every model the provider returns survives payments_core.converter, through "
        "JSON, unchanged",
    )
    def test_models_round_trip_through_converter(self, run: ContractRun) -> None:
        """Orders, events, results, classifications and the description round-trip."""
        payments = run.payments(attempts=1)
        info = payments.describe(run.harness.name)
        request = run.request("round-trip", payments)
        order = payments.create_order(request)
        found = payments.query_order(request.reference)
        result = _handle(payments, run.harness.name, run.harness.paid_callback(order))
        run.faults.inject(Fault.answer(500, run.harness.error_body(500)))
        error = _expect_error(lambda: payments.query_order(request.reference), "a query hit by 500")
        models: list[tuple[str, object]] = [
            ("ProviderInfo", info),
            ("the created Order", order),
            ("the queried Order", found),
            ("the CallbackResult", result),
            ("the ErrorClassification", error.classification),
        ]
        for label, model in models:
            _round_trip(model, label)

    @_contract(
        "async-matches-sync",
        hooks={"create_order", "query_order", "handle_callback"},
        summary="the asynchronous API gives the same orders and events as the blocking one",
    )
    def test_async_api_matches_blocking_api(self, run: ContractRun) -> None:
        """One provider implementation serves sync and async callers alike."""
        payments = run.payments()
        request = run.request("async", payments)

        async def flow() -> tuple[Order, Order | None, CallbackResult]:
            async with run.payments() as async_payments:
                created = await async_payments.create_order_async(request)
                found = await async_payments.query_order_async(request.reference)
                callback = run.harness.paid_callback(created)
                result = await async_payments.handle_callback_async(
                    run.harness.name, callback.headers, callback.body
                )
            return created, found, result

        created, found, result = asyncio.run(flow())
        _check_order(created, request, run.harness.name)
        again = payments.create_order(request)
        _require(
            again.provider_order_id == created.provider_order_id,
            "the blocking create gave another order than the asynchronous one",
        )
        _require(
            found is not None and found.provider_order_id == created.provider_order_id,
            f"query_order_async gave {found!r}",
        )
        _check_paid_event(result, created, run.harness.name)

    @_contract(
        "check-connection",
        hooks={"check_connection"},
        summary="check_connection makes one harmless authenticated call and says what "
        "answered; it creates no order",
    )
    def test_check_connection_is_harmless(self, run: ContractRun) -> None:
        """The connection check proves the settings work, and changes nothing."""
        payments = run.payments()
        operation = payments.provider(run.harness.name).check_connection()
        if operation is None:
            pytest.skip("the provider offers no connection check")
        before = run.harness.order_count()
        sender = HttpxSender(HttpSettings(), transport=run.faults)
        try:
            answer = drive(operation, partial(sender.send, provider=run.harness.name))
        finally:
            sender.close()
        _require(isinstance(answer, str) and answer, f"check_connection gave {answer!r}")
        _require(run.harness.order_count() == before, "check_connection created an order")

    @_contract(
        "sandbox",
        hooks={"open_sandbox", "create_order", "query_order"},
        summary="open_sandbox starts a loopback imitation whose settings work: an order "
        "created there and paid with sandbox.pay reads back as paid",
    )
    def test_open_sandbox_serves_the_provider(self, run: ContractRun) -> None:
        """The provider's own sandbox works with the provider."""
        manager = run.payments().provider(run.harness.name).open_sandbox()
        if manager is None:
            pytest.skip("the provider has no sandbox (open_sandbox returned None)")
        with manager as sandbox:
            _require(
                sandbox.base_url.startswith(("http://127.0.0.1", "http://localhost")),
                f"the sandbox listens on {sandbox.base_url!r}, not on loopback",
            )
            # Straight to the sandbox over loopback, not through the harness's transport.
            run.faults.close()
            run.faults = FaultInjector()
            payments = run.payments(settings=sandbox.settings)
            request = attrs.evolve(
                run.request("sandbox", payments),
                callback_url=f"{sandbox.base_url.rstrip('/')}/contract-callback-sink",
            )
            order = payments.create_order(request)
            _require(
                isinstance(sandbox.checkout_url(order.provider_order_id), str),
                "sandbox.checkout_url did not give a str",
            )
            sandbox.pay(order.provider_order_id)
            found = payments.query_order(request.reference)
        _require(found is not None, "the sandbox lost the order")
        assert found is not None
        _require(found.status is PaymentStatus.PAID, f"a paid sandbox order reads {found.status}")

    @_contract(
        "commands",
        hooks={"register_commands"},
        summary="register_commands adds only click commands, each of which answers --help",
    )
    def test_registered_commands_answer_help(self, run: ContractRun) -> None:
        """Provider commands are well-formed click commands."""
        group = click.Group("payments")
        run.payments().host.pm.hook.register_commands(cli=group)
        runner = CliRunner()
        for name, command in group.commands.items():
            _require(isinstance(command, click.Command), f"command {name!r} is {command!r}")
            outcome = runner.invoke(command, ["--help"])
            _require(
                outcome.exit_code == 0,
                f"`payments {name} --help` exited {outcome.exit_code}: {outcome.output[-300:]}",
            )


def _unique(run: ContractRun, reference: str) -> str:
    """``reference`` made unique to this example, still a valid reference."""
    return (run.reference("h") + "-" + reference)[:128]


def _handle(payments: Payments, provider: str, callback: CallbackRequest) -> CallbackResult:
    return payments.handle_callback(provider, callback.headers, callback.body)


def _check_paid_event(result: object, order: Order, provider: str) -> PaymentEvent:
    _require(isinstance(result, CallbackResult), f"handle_callback gave {type(result).__name__}")
    assert isinstance(result, CallbackResult)
    _require(
        200 <= result.reply.status_code < 300,
        f"a genuine callback was answered with HTTP {result.reply.status_code}",
    )
    event = result.event
    _require(isinstance(event, PaymentEvent), f"a paid callback gave event {event!r}")
    assert isinstance(event, PaymentEvent)
    _require(event.provider == provider, f"event.provider is {event.provider!r}")
    _require(event.status is PaymentStatus.PAID, f"a paid callback gave status {event.status!r}")
    _require(
        (event.provider_order_id, event.merchant_order_id)
        == (order.provider_order_id, order.merchant_order_id),
        f"the event names order {event.provider_order_id!r}/{event.merchant_order_id!r}, "
        f"the callback was for {order.provider_order_id!r}/{order.merchant_order_id!r}",
    )
    _require(
        isinstance(event.event_id, str) and event.event_id,
        f"event.event_id is {event.event_id!r}",
    )
    if event.amount is not None:
        amount = _check_money(event.amount, "event.amount")
        expected = order.settlement or order.amount
        _require(amount == expected, f"event.amount is {amount}, the order's {expected}")
    _check_aware(event.occurred_at, "event.occurred_at")
    return event


def _classification_problems(
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
    if with_retry_after and got.retry_after != _RETRY_AFTER:
        problems.append(
            f"{label}: Retry-After: {int(_RETRY_AFTER)} gave retry_after={got.retry_after!r}"
        )
    return problems


def _retry_problems(
    label: str, error: PaymentsError, attempts: int, waits: list[float]
) -> list[str]:
    if error.classification is None:
        return []
    wanted = _ATTEMPTS if error.classification.retryable else 1
    problems = []
    if attempts != wanted:
        problems.append(f"{label} was sent {attempts} time(s), expected {wanted}")
    retry_after = error.classification.retry_after
    if retry_after is not None and any(wait < retry_after for wait in waits):
        problems.append(f"{label}: waited {waits} despite Retry-After {retry_after}")
    return problems
