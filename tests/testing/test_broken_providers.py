"""The contract suite can fail: each deliberately broken provider is caught, by name."""

from __future__ import annotations

import pytest
from payments_example.charges import ChargesProvider
from payments_example.harness import ChargesHarness, ExampleHarness
from payments_example.provider import ExampleProvider

from payments_core.testing import ContractBroken, ProviderContract, ProviderHarness
from tests.testing import broken

# provider, the contract test that must catch it, the contract it names, a phrase of the detail
CASES = [
    (
        broken.NewOrderOnRepeat,
        "test_same_reference_gives_same_order",
        "idempotent-create",
        "the second create gave order",
    ),
    (
        broken.AcceptsTamperedCallback,
        "test_tampered_callbacks_are_refused",
        "callback-tamper",
        "was accepted",
    ),
    (
        broken.RateLimitNotRetryable,
        "test_http_errors_are_classified",
        "classify-http-status",
        "HTTP 429 classified rate_limited, retryable=False; expected rate_limited, retryable=True",
    ),
    (broken.LogsItsSecret, "test_no_secret_reaches_logs", "no-secrets-in-logs", "api_secret in"),
    (
        broken.TracesItsSecret,
        "test_no_secret_reaches_telemetry",
        "no-secrets-in-telemetry",
        "api_secret in span payments.attempt examplepay.signing_key",
    ),
    (
        broken.FloatAmount,
        "test_valid_requests_give_well_formed_orders",
        "well-formed-order",
        "order.amount is a float, not Money",
    ),
    (
        broken.IgnoresRetryAfter,
        "test_http_errors_are_classified",
        "classify-http-status",
        "Retry-After: 7 gave retry_after=None",
    ),
    (
        broken.SharedEventIds,
        "test_duplicate_callback_is_harmless",
        "callback-duplicate",
        "share event id",
    ),
    (
        broken.CrashesOnGarbage,
        "test_malformed_callbacks_are_refused",
        "callback-garbage",
        "unexpected ",
    ),
    (
        broken.RefusesWithServerError,
        "test_malformed_callbacks_are_refused",
        "callback-garbage",
        "refused with HTTP 500",
    ),
    (
        broken.QueryFindsNothing,
        "test_create_recovers_without_a_second_order",
        "recover-unknown-outcome",
        "ProviderError",
    ),
    (
        broken.ClaimsUnsupportedCurrency,
        "test_unsupported_requests_give_typed_validation_errors",
        "typed-validation",
        "an order in EUR succeeded",
    ),
    (broken.MisnamesItself, "test_describes_itself", "describes-itself", "'examplepay'"),
    (
        broken.NewestPageOnly,
        "test_query_finds_an_order_among_many",
        "query-among-many",
        "after 50 other orders, query_order gave None",
    ),
    (
        broken.ServerIdsDeclaredDerived,
        "test_the_idempotency_pattern_keeps_one_order",
        "idempotency-pattern",
        "a derived_id provider: creating the reference again after 50 other orders gave order",
    ),
    (
        broken.VerifiesReserialisedBody,
        "test_tampered_callbacks_are_refused",
        "callback-tamper",
        "re-serialise the JSON body",
    ),
    (
        broken.RefundsTwice,
        "test_same_refund_reference_gives_same_refund",
        "idempotent-refund",
        "the second refund gave refund",
    ),
    (
        broken.ConfirmingIsPaid,
        "test_not_final_status_never_finalises",
        "not-final-never-finalises",
        "callback 1 of 2 before the payment ended says paid, a final status",
    ),
    (
        broken.RefundIdOnlyInTheAnswer,
        "test_refund_notice_before_the_answer_settles_it",
        "refund-notice-first",
        "arriving before its answer, was not applied (unknown_refund)",
    ),
    (
        broken.QueryForgetsWhatWasPaid,
        "test_what_was_paid_is_recorded",
        "paid-recorded",
        "the query after it None",
    ),
    (
        broken.IgnoresThePickedAsset,
        "test_a_settlement_is_learnt_from_the_payment",
        "settlement-learnt",
        "the event states only USD",
    ),
]


def run_contract(test_name: str, factory: type[ExampleProvider | ChargesProvider]) -> None:
    """Run one contract test of the suite against ``factory``, as pytest would."""
    harness: ProviderHarness
    if issubclass(factory, ChargesProvider):
        harness = ChargesHarness(factory)
    else:
        harness = ExampleHarness(factory)
    try:
        getattr(ProviderContract(), test_name)(harness)
    finally:
        harness.close()


@pytest.mark.parametrize(
    ("factory", "test_name", "contract", "detail"),
    CASES,
    ids=[case[0].__name__ for case in CASES],
)
def test_broken_provider_is_caught_naming_the_contract(
    factory: type[ExampleProvider | ChargesProvider], test_name: str, contract: str, detail: str
) -> None:
    with pytest.raises(ContractBroken) as caught:
        run_contract(test_name, factory)
    assert caught.value.contract == contract
    message = str(caught.value)
    assert message.startswith(f"contract {contract!r} broken: "), message
    assert detail in message, message


@pytest.mark.parametrize(("test_name", "contract"), sorted({(c[1], c[2]) for c in CASES}))
def test_the_working_provider_meets_the_same_contracts(test_name: str, contract: str) -> None:
    run_contract(test_name, ExampleProvider)


@pytest.mark.parametrize(
    ("test_name", "contract"),
    sorted({(c[1], c[2]) for c in CASES if issubclass(c[0], ChargesProvider)}),
)
def test_the_working_find_or_create_provider_meets_them_too(test_name: str, contract: str) -> None:
    run_contract(test_name, ChargesProvider)


def test_every_contract_is_shown_to_fail_by_some_broken_provider() -> None:
    from payments_core.testing import contracts

    caught = {case[2] for case in CASES}
    # These need a provider whose hooks return None or whose sandbox misbehaves; their
    # checks are exercised against the working provider only.
    unbroken = set(contracts()) - caught
    assert unbroken <= {
        "query-order",
        "close-order",
        "callback-accepted",
        "classify-timeout",
        "models-round-trip",
        "async-matches-sync",
        "check-connection",
        "sandbox",
        "commands",
        "over-refund-refused",
        "refund-unpaid-refused",
    }, unbroken
