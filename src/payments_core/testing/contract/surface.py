"""The contracts on the rest of a provider: models, async API, connection check, sandbox."""

from __future__ import annotations

import asyncio
from functools import partial

import attrs
import click
import pytest
from click.testing import CliRunner

from payments_core.config import HttpSettings
from payments_core.models import CallbackResult, Order, PaymentStatus
from payments_core.testing.contract.checks import (
    check_order,
    check_paid_event,
    expect_error,
    handle,
    round_trip,
)
from payments_core.testing.contract.runner import ContractRun, contract_test, require
from payments_core.testing.harness import Fault, FaultInjector
from payments_core.transport import HttpxSender, drive


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
        sender = HttpxSender(HttpSettings(), transport=run.faults)
        try:
            answer = drive(operation, partial(sender.send, provider=run.harness.name))
        finally:
            sender.close()
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
        require(found is not None, "the sandbox lost the order")
        assert found is not None
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
