"""The contracts on orders and on the provider around them.

Describing the provider; creating, querying and closing orders; the errors on the way
(classification, retries, no secret in logs); the models, the async API, the connection check,
the sandbox and the commands.
"""

from __future__ import annotations

import asyncio
from functools import partial

import attrs
import click
import pytest
from click.testing import CliRunner
from hypothesis import given

from payments_core.errors import ConnectError, PaymentsError, RequestTimeout, ValidationError
from payments_core.models import (
    CallbackResult,
    ErrorCategory,
    IdempotencyPattern,
    Order,
    OrderRequest,
    PaymentStatus,
    ProviderInfo,
)
from payments_core.money import CURRENCIES, Money
from payments_core.testing.contract.runner import (
    ORDER_REQUEST_FIELDS,
    OTHER_ORDERS,
    RETRY_AFTER,
    ContractRun,
    check_order,
    check_paid_event,
    classification_problems,
    contract_test,
    create_others,
    expect_error,
    handle,
    require,
    require_value,
    retry_problems,
    round_trip,
    unique,
)
from payments_core.testing.harness import Fault, FaultInjector
from payments_core.testing.logs import LogCapture, find_leaks
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
        unsupported = sorted(set(CURRENCIES) - set(info.currencies))
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
                (again.provider_order_id, again.provider_reference)
                == (first.provider_order_id, first.provider_reference),
                f"{label} gave order {again.provider_order_id!r}/{again.provider_reference!r}, "
                f"the first gave {first.provider_order_id!r}/{first.provider_reference!r}",
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
        found = require_value(found, "query_order found nothing for a created order")
        check_order(found, request, run.harness.name, queried=True)
        require(
            (found.provider_order_id, found.provider_reference)
            == (created.provider_order_id, created.provider_reference),
            f"query_order gave order {found.provider_order_id!r}, created was "
            f"{created.provider_order_id!r}",
        )
        missing = payments.query_order(run.reference("never-created"))
        require(missing is None, f"query_order for an unknown reference gave {missing!r}")

    @contract_test(
        "query-among-many",
        hooks={"create_order", "query_order"},
        summary=f"query_order finds an order after {OTHER_ORDERS} other orders were created "
        "after it (a search that looks at the newest orders only does not)",
    )
    def test_query_finds_an_order_among_many(self, run: ContractRun) -> None:
        """A query finds an order however many orders came after it."""
        payments = run.payments()
        request = run.request("among-many", payments)
        created = payments.create_order(request)
        create_others(run, payments, "among-many")
        found = payments.query_order(request.reference)
        require(
            found is not None and found.provider_order_id == created.provider_order_id,
            f"after {OTHER_ORDERS} other orders, query_order gave "
            f"{None if found is None else found.provider_order_id!r} for the order "
            f"{created.provider_order_id!r}",
        )

    @contract_test(
        "idempotency-pattern",
        hooks={"create_order", "query_order", "describe_provider", "classify_error"},
        summary="the provider declares its IdempotencyPattern and keeps its promise: a create "
        f"whose answer is lost, {OTHER_ORDERS} other orders, then the same reference created "
        "again by another facade leave one order for the reference, the same one each time",
    )
    def test_the_idempotency_pattern_keeps_one_order(self, run: ContractRun) -> None:
        """Whatever the pattern, a reference becomes one order at the provider."""
        payments = run.payments()
        pattern = payments.describe(run.harness.name).idempotency
        require(
            isinstance(pattern, IdempotencyPattern),
            f"ProviderInfo.idempotency is {pattern!r}, not an IdempotencyPattern",
        )
        request = run.request("pattern", payments)
        before = run.harness.order_count()
        if pattern is IdempotencyPattern.FIND_OR_CREATE:
            run.faults.inject(Fault.forward())  # the search before the create goes through
        run.faults.inject(Fault.timeout())  # the create's answer is lost
        first = payments.create_order(request)
        create_others(run, payments, "pattern")
        again = run.payments().create_order(request)
        made = run.harness.order_count() - before - OTHER_ORDERS
        require(
            again.provider_order_id == first.provider_order_id,
            f"a {pattern.value} provider: creating the reference again after {OTHER_ORDERS} "
            f"other orders gave order {again.provider_order_id!r}, the first create gave "
            f"{first.provider_order_id!r}",
        )
        require(made == 1, f"a {pattern.value} provider holds {made} orders for one reference")

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


class ErrorContracts:
    """Errors: classification, the retries it drives, and secrets kept out of logs."""

    @contract_test(
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
            (429, {"Retry-After": str(int(RETRY_AFTER))}),
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
                error = expect_error(partial(payments.create_order, request), label)
            finally:
                run.faults.fail_every_request(None)
            attempts, waits = len(run.faults.requests) - sent, run.sleeps[slept:]
            problems += classification_problems(label, error, status, bool(headers))
            problems += retry_problems(label, error, attempts, waits)
        require(not problems, "; ".join(problems))

    @contract_test(
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
            error = expect_error(
                lambda: payments.query_order(reference), f"a query hit by {fault.kind.value}"
            )
            require(
                isinstance(error, error_type),
                f"{fault.kind.value} raised {type(error).__name__}, not {error_type.__name__}",
            )
            got = error.classification
            got = require_value(got, f"{fault.kind.value}: the error was not classified")
            require(
                (got.category, got.retryable) == (category, True),
                f"{fault.kind.value} classified {got.category}, retryable={got.retryable}; "
                f"expected {category}, retryable=True",
            )

    @contract_test(
        "no-secrets-in-logs",
        hooks={"create_order", "query_order", "handle_callback", "classify_error"},
        summary="through a full flow logged at DEBUG (orders, retries, errors, genuine, tampered "
        "and garbage callbacks), no credential, request signature or callback signature "
        "appears in a log line or an error message",
    )
    def test_no_secret_reaches_logs(self, run: ContractRun) -> None:
        """Secrets stay out of logs and error messages."""
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
            forged = {**genuine.headers, harness.callback_format.signature_header: "0" * 64}
            for headers, body in ((forged, genuine.body), (genuine.headers, b"{not json")):
                errors.append(
                    expect_error(
                        partial(payments.handle_callback, harness.name, headers, body),
                        "a forged callback",
                    )
                )
            for fault in (Fault.answer(401, harness.error_body(401)), Fault.timeout()):
                run.faults.fail_every_request(fault)
                r = run.request("secrets-fault", payments)
                try:
                    errors.append(expect_error(partial(payments.create_order, r), "failed create"))
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
        require(not leaks, f"{len(leaks)} leak(s): " + "; ".join(leaks[:5]))


class SurfaceContracts:
    """Models, the async API, the connection check, the sandbox and the commands."""

    @contract_test(
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
        result = handle(payments, run.harness.name, run.harness.paid_callback(order))
        run.faults.inject(Fault.answer(500, run.harness.error_body(500)))
        error = expect_error(lambda: payments.query_order(request.reference), "a query hit by 500")
        models: list[tuple[str, object]] = [
            ("ProviderInfo", info),
            ("the created Order", order),
            ("the queried Order", found),
            ("the CallbackResult", result),
            ("the ErrorClassification", error.classification),
        ]
        for label, model in models:
            round_trip(model, label)

    @contract_test(
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
        check_order(created, request, run.harness.name)
        again = payments.create_order(request)
        require(
            again.provider_order_id == created.provider_order_id,
            "the blocking create gave another order than the asynchronous one",
        )
        require(
            found is not None and found.provider_order_id == created.provider_order_id,
            f"query_order_async gave {found!r}",
        )
        check_paid_event(result, created, run.harness.name)

    @contract_test(
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
        answer = run.drive(operation)
        require(isinstance(answer, str) and answer, f"check_connection gave {answer!r}")
        require(run.harness.order_count() == before, "check_connection created an order")

    @contract_test(
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
            require(
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
            require(
                isinstance(sandbox.checkout_url(order.provider_order_id), str),
                "sandbox.checkout_url did not give a str",
            )
            sandbox.pay(order.provider_order_id)
            found = payments.query_order(request.reference)
        found = require_value(found, "the sandbox lost the order")
        require(found.status is PaymentStatus.PAID, f"a paid sandbox order reads {found.status}")

    @contract_test(
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
            require(isinstance(command, click.Command), f"command {name!r} is {command!r}")
            outcome = runner.invoke(command, ["--help"])
            require(
                outcome.exit_code == 0,
                f"`payments {name} --help` exited {outcome.exit_code}: {outcome.output[-300:]}",
            )
