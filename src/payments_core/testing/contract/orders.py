"""The order contracts: describing the provider, creating, querying and closing orders."""

from __future__ import annotations

from functools import partial

import attrs
import pytest
from hypothesis import given

from payments_core.errors import ValidationError
from payments_core.models import OrderRequest, PaymentStatus, ProviderInfo
from payments_core.money import CURRENCIES, Money
from payments_core.testing.contract.checks import (
    check_order,
    expect_error,
    unique,
    unsupported_currencies,
)
from payments_core.testing.contract.runner import (
    ORDER_REQUEST_FIELDS,
    ContractRun,
    contract_test,
    require,
)
from payments_core.testing.harness import Fault
from payments_core.testing.profiles import contract_settings
from payments_core.testing.strategies import order_requests


class OrderContracts:
    """Orders: the provider's description, creating, querying and closing."""

    @contract_test(
        "describes-itself",
        hooks={"describe_provider"},
        summary="describe_provider returns ProviderInfo with the registered name, a display "
        "name and the registered currencies it accepts",
    )
    def test_describes_itself(self, run: ContractRun) -> None:
        """The provider describes itself under the name it is registered with."""
        info = run.payments().describe(run.harness.name)
        require(isinstance(info, ProviderInfo), f"describe_provider gave {info!r}")
        require(info.name == run.harness.name, f"ProviderInfo.name is {info.name!r}")
        require(info.display_name, "ProviderInfo.display_name is empty")
        require(info.currencies, "ProviderInfo.currencies is empty: say what you accept")
        unknown = sorted(set(info.currencies) - set(CURRENCIES))
        require(not unknown, f"ProviderInfo.currencies names unregistered codes {unknown}")

    @contract_test(
        "well-formed-order",
        hooks={"create_order", "describe_provider"},
        summary="every valid request gives a pending Order with str ids and the exact Decimal "
        "price, or a ValidationError naming a request field before anything is sent",
    )
    def test_valid_requests_give_well_formed_orders(self, run: ContractRun) -> None:
        """Valid requests of every shape give well-formed orders (or a typed refusal)."""
        payments = run.payments()
        plain = run.request("plain", payments)
        order = check_order(payments.create_order(plain), plain, run.harness.name)
        require(order.status is PaymentStatus.PENDING, f"a new order is {order.status}")
        info = payments.describe(run.harness.name)

        @contract_settings()
        @given(order_requests(currencies=info.currencies))
        def check(request: OrderRequest) -> None:
            request = attrs.evolve(request, reference=unique(run, request.reference))
            sent = len(run.faults.requests)
            try:
                created = payments.create_order(request)
            except ValidationError as error:
                require(
                    error.field.split(".")[0] in ORDER_REQUEST_FIELDS,
                    f"ValidationError names {error.field!r}, which is not an OrderRequest field",
                )
                require(
                    len(run.faults.requests) == sent,
                    f"ValidationError on {error.field!r} came after a request was sent",
                )
                return
            check_order(created, request, run.harness.name)

        check()

    @contract_test(
        "typed-validation",
        hooks={"create_order", "describe_provider"},
        summary="a request in a currency the provider does not accept is refused with a "
        "ValidationError naming price, before anything is sent",
    )
    def test_unsupported_requests_give_typed_validation_errors(self, run: ContractRun) -> None:
        """A currency the provider does not list is refused as a typed validation error."""
        payments = run.payments()
        info = payments.describe(run.harness.name)
        unsupported = unsupported_currencies(info)
        if not unsupported:
            pytest.skip("the provider accepts every registered currency")
        for code in unsupported:
            request = attrs.evolve(run.request("currency", payments), price=Money(1, code))
            sent = len(run.faults.requests)
            error = expect_error(partial(payments.create_order, request), f"an order in {code}")
            require(
                isinstance(error, ValidationError),
                f"an order in {code} raised {type(error).__name__}, not ValidationError",
            )
            assert isinstance(error, ValidationError)
            require(
                error.field.split(".")[0] == "price",
                f"an order in {code} was refused on {error.field!r}, not on price",
            )
            require(len(run.faults.requests) == sent, f"an order in {code} was sent anyway")

    @contract_test(
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
            require(
                (again.provider_order_id, again.merchant_order_id)
                == (first.provider_order_id, first.merchant_order_id),
                f"{label} gave order {again.provider_order_id!r}/{again.merchant_order_id!r}, "
                f"the first gave {first.provider_order_id!r}/{first.merchant_order_id!r}",
            )
        created = run.harness.order_count() - before
        require(created == 1, f"three creates for one reference left {created} orders")

    @contract_test(
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
            require(
                order.reference == request.reference,
                f"after {fault.kind.value} the create gave the order of {order.reference!r}",
            )
            require(created == 1, f"after {fault.kind.value} the provider holds {created} orders")
            again = payments.create_order(request)
            require(
                again.provider_order_id == order.provider_order_id,
                f"after {fault.kind.value}, creating again gave another provider order",
            )

    @contract_test(
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
        require(found is not None, "query_order found nothing for a created order")
        assert found is not None
        check_order(found, request, run.harness.name, queried=True)
        require(
            (found.provider_order_id, found.merchant_order_id)
            == (created.provider_order_id, created.merchant_order_id),
            f"query_order gave order {found.provider_order_id!r}, created was "
            f"{created.provider_order_id!r}",
        )
        missing = payments.query_order(run.reference("never-created"))
        require(missing is None, f"query_order for an unknown reference gave {missing!r}")

    @contract_test(
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
        require(closed is True, f"close_order gave {closed!r}, not True")
