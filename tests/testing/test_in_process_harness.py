"""Building blocks for provider authors: InProcessHarness and ResponseLost.unreadable."""

from __future__ import annotations

import httpx
import pytest
from payments_example.harness import ExampleHarness
from payments_example.provider import ExampleProvider

from payments_core import Money, OrderRequest, RetryPolicy
from payments_core.errors import ResponseLost
from payments_core.testing import Fault, FaultInjector, InProcessHarness
from payments_core.testing.pytest_plugin import PaymentsFactory


def test_an_in_process_harness_serves_both_kinds_of_caller_through_its_one_transport() -> None:
    harness = ExampleHarness(name="mine")
    assert isinstance(harness, InProcessHarness)
    assert harness.name == "mine"
    assert harness.factory() is ExampleProvider
    assert isinstance(harness.transport(), httpx.MockTransport)
    assert harness.async_transport() is harness.transport()


def test_an_unreadable_success_answer_is_an_unknown_outcome_naming_no_content(
    payments_factory: PaymentsFactory,
) -> None:
    harness = ExampleHarness()
    injector = FaultInjector(harness.transport(), harness.async_transport())
    injector.fail_every_request(Fault.answer(201, b'{"order": "secret-ish text"}'))
    payments = payments_factory(
        {harness.name: harness.factory()},
        provider_settings={harness.name: harness.settings()},
        transport=injector,
        retry=RetryPolicy(max_attempts=1),
    )
    request = OrderRequest(
        reference="booking-1",
        price=Money("1.00", "USD"),
        callback_url="https://leadscalendar.example/callbacks/example",
    )
    with pytest.raises(ResponseLost) as lost:
        payments.create_order(request)
    assert str(lost.value) == "ExamplePay's answer to create_order is unreadable (TypeError)"
    assert lost.value.operation == "create_order"
    assert lost.value.provider == harness.name
    assert lost.value.request_sent


def test_unreadable_names_the_error_type_only_when_there_is_one() -> None:
    lost = ResponseLost.unreadable("Stripe", "query_order", provider="stripe")
    assert str(lost) == "Stripe's answer to query_order is unreadable"
