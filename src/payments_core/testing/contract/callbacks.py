"""The callback contracts: genuine callbacks accepted once, forged ones refused."""

from __future__ import annotations

from hypothesis import given

from payments_core.errors import CallbackError
from payments_core.models import CallbackRequest
from payments_core.testing.contract.checks import check_paid_event, check_refused, handle
from payments_core.testing.contract.runner import ContractRun, contract_test, require
from payments_core.testing.profiles import contract_settings
from payments_core.testing.strategies import CallbackMutation, callback_mutations, callback_requests


class CallbackContracts:
    """Callbacks: genuine ones accepted once, tampered and malformed ones refused."""

    @contract_test(
        "callback-accepted",
        hooks={"create_order", "handle_callback"},
        summary="a genuine paid callback is accepted (2xx) and says which order was paid, with "
        "a stable event id and exact money",
    )
    def test_genuine_callback_is_accepted(self, run: ContractRun) -> None:
        """A genuine callback verifies and describes the payment."""
        payments = run.payments()
        order = payments.create_order(run.request("callback", payments))
        result = handle(payments, run.harness.name, run.harness.paid_callback(order))
        check_paid_event(result, order, run.harness.name)

    @contract_test(
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
        first = handle(payments, run.harness.name, callback)
        second = handle(payments, run.harness.name, callback)
        third = handle(run.payments(), run.harness.name, callback)
        for label, result in (("a redelivery", second), ("another instance", third)):
            check_paid_event(result, order, run.harness.name)
            require(
                result.event == first.event,
                f"{label} gave event {result.event!r}, the first delivery {first.event!r}",
            )
        other = payments.create_order(run.request("duplicate-other", payments))
        other_result = handle(payments, run.harness.name, run.harness.paid_callback(other))
        assert first.event is not None
        assert other_result.event is not None
        require(
            other_result.event.event_id != first.event.event_id,
            f"two different orders' callbacks share event id {first.event.event_id!r}",
        )

    @contract_test(
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
                check_refused(refused, what)
                return
            raise AssertionError(f"{what} was accepted: {result.event!r}")

        check()

    @contract_test(
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
                check_refused(refused, "a malformed callback")
                return
            raise AssertionError(f"a random callback was accepted: {result.event!r}")

        check()
