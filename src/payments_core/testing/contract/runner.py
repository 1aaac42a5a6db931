"""How a contract runs: the :class:`ContractRun` a test gets, the decorator that names it."""

from __future__ import annotations

import inspect
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

import attrs
import pluggy

from payments_core.config import Config
from payments_core.facade import Payments
from payments_core.models import Order, OrderRequest, RefundRequest
from payments_core.money import Money
from payments_core.retry import RetryPolicy
from payments_core.testing.harness import FaultInjector, ProviderHarness

ORDER_REQUEST_FIELDS: Final = frozenset(a.name for a in attrs.fields(OrderRequest))
CALLBACK_URL: Final = "https://merchant.example/payments/callback"
RETRY_AFTER: Final = 7.0
ATTEMPTS: Final = 3


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
        self, *, attempts: int = ATTEMPTS, settings: Mapping[str, Any] | None = None
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

    def close(self) -> None:
        """Close every facade this run opened, and the injector's own transport."""
        for payments in self._opened:
            payments.close()
        self.faults.close()


def contract_test(
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
                raise ContractBroken(name, describe(exc)) from exc
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
