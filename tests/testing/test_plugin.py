"""The pytest plugin, its fixtures and profiles, and the suite as an author runs it."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
from collections.abc import Callable

import pytest
from payments_example.harness import ExampleHarness
from payments_example.provider import ExampleProvider

from payments_core import Payments
from payments_core.testing.logs import LogCapture, find_leaks
from payments_core.testing.profiles import contract_settings, selected_profile
from payments_core.testing.pytest_plugin import PaymentsFactory, SecretScanner

pytest_plugins = ["pytester"]

AUTHOR_MODULE = textwrap.dedent(
    """
    import pytest
    from payments_core.testing import ProviderContract
    from payments_example.harness import ExampleHarness
    from tests.testing.broken import {factory}

    class TestMyProvider(ProviderContract):
        @pytest.fixture
        def provider_harness(self):
            harness = ExampleHarness({factory})
            yield harness
            harness.close()
    """
)


def test_an_author_sees_the_broken_contract_named_in_the_pytest_report(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_mine=AUTHOR_MODULE.format(factory="NewOrderOnRepeat"))
    result = pytester.runpytest_inprocess("-k", "same_reference or describes")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*ContractBroken: contract 'idempotent-create' broken: *"])


def test_contract_tests_carry_the_marker_the_plugin_registers(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_mine=AUTHOR_MODULE.format(factory="ExampleProvider"))
    pytester.makeini("[pytest]\naddopts = --strict-markers\n")
    result = pytester.runpytest_inprocess("-m", "not payments_contract")
    result.assert_outcomes(deselected=len(_contract_test_names()))


def _contract_test_names() -> list[str]:
    from payments_core.testing import ProviderContract

    return [name for name in dir(ProviderContract) if name.startswith("test_")]


def test_loading_the_plugin_imports_neither_hypothesis_nor_the_contract() -> None:
    code = (
        "import sys, payments_core.testing.pytest_plugin\n"
        "heavy = ('hypothesis', 'payments_core.testing.contract')\n"
        "loaded = [m for m in heavy if m in sys.modules]\n"
        "print(loaded)"
    )
    out = subprocess.run(  # noqa: S603 - our own interpreter, our own code
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_the_package_names_load_on_first_use_and_the_old_fault_name_still_works() -> None:
    import payments_core.testing as testing
    from payments_core.testing.harness import FaultMode, ProviderHarness

    assert testing.ProviderHarness is ProviderHarness
    with pytest.warns(DeprecationWarning, match="FaultKind is deprecated; use FaultMode"):
        assert testing.FaultKind is FaultMode
    with pytest.raises(AttributeError, match="no attribute 'Nothing'"):
        _ = testing.Nothing


def test_payments_factory_builds_facades_with_test_defaults(
    payments_factory: PaymentsFactory,
) -> None:
    harness = ExampleHarness()
    payments = payments_factory(
        {"example": ExampleProvider},
        provider_settings={"example": harness.settings()},
        transport=harness.transport(),
    )
    assert payments.provider_names == ["example"]
    assert payments.query_order("never-created") is None


def test_register_provider_adds_a_provider_for_one_test_only(
    register_provider: Callable[..., object], payments_factory: PaymentsFactory
) -> None:
    payments: Payments = payments_factory()
    register_provider(payments, "example", ExampleProvider, api_key="k" * 8)
    assert payments.provider_names == ["example"]


def test_the_secret_scanner_fails_a_test_that_logged_a_watched_secret() -> None:
    with LogCapture() as logs:
        scanner = SecretScanner(logs)
        scanner.watch("api_secret", "s3cret-value")
        logging.getLogger("anywhere").debug("key is s3cret-value")
    with pytest.raises(pytest.fail.Exception, match="api_secret in log line") as failure:
        scanner.check()
    assert "s3cret-value" not in str(failure.value)


def test_the_secret_scanner_passes_clean_logs(secret_scanner: SecretScanner) -> None:
    secret_scanner.watch("api_secret", "s3cret-value")
    logging.getLogger("anywhere").debug("nothing to see")


def test_a_leak_report_masks_every_secret_in_the_line() -> None:
    leaks = find_leaks(
        {"a": "alpha-secret", "b": "bravo-secret"}, [("x", "alpha-secret bravo-secret")]
    )
    assert leaks == ["a, b in x: '<a> <b>'"]


def test_secrets_too_short_to_search_for_are_refused() -> None:
    with pytest.raises(ValueError, match="too short"):
        find_leaks({"pin": "1234"}, [])


@pytest.mark.parametrize(
    ("environ", "profile"),
    [
        ({}, "payments-dev"),
        ({"CI": "true"}, "payments-ci"),
        ({"PAYMENTS_HYPOTHESIS_PROFILE": "ci"}, "payments-ci"),
        ({"CI": "1", "PAYMENTS_HYPOTHESIS_PROFILE": "dev"}, "payments-dev"),
    ],
)
def test_the_profile_follows_the_environment(environ: dict[str, str], profile: str) -> None:
    assert selected_profile(environ) == profile


def test_an_unknown_profile_name_is_refused() -> None:
    with pytest.raises(ValueError, match="PAYMENTS_HYPOTHESIS_PROFILE"):
        selected_profile({"PAYMENTS_HYPOTHESIS_PROFILE": "fast"})


def test_the_ci_profile_runs_at_least_a_thousand_examples(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "1")
    monkeypatch.delenv("PAYMENTS_HYPOTHESIS_PROFILE", raising=False)
    assert contract_settings().max_examples >= 1000
