"""Every hookspec is documented in docs/hooks.md, and every provider hook is exercised by the
contract suite (the contracts declare the hooks they call; the suite checks the declaration
against the calls it records while running).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from payments_core import hookspecs
from payments_core.testing import contracts

HOOKS_DOC = Path(__file__).parents[2] / "docs" / "hooks.md"


def spec_names(spec: type) -> set[str]:
    """Names of the hooks declared on a hookspec class."""
    return {
        name
        for name, member in vars(spec).items()
        if callable(member) and hasattr(member, f"{hookspecs.PROJECT}_spec")
    }


PROVIDER_HOOKS = spec_names(hookspecs.PaymentProvider)
APPLICATION_HOOKS = spec_names(hookspecs.ApplicationHooks)


def test_the_hookspec_classes_declare_hooks() -> None:
    assert {"create_order", "handle_callback", "classify_error"} <= PROVIDER_HOOKS
    assert "payment_status_changed" in APPLICATION_HOOKS


@pytest.mark.parametrize("hook", sorted(PROVIDER_HOOKS | APPLICATION_HOOKS))
def test_every_hook_has_a_heading_in_the_hooks_reference(hook: str) -> None:
    text = HOOKS_DOC.read_text(encoding="utf-8")
    assert re.search(rf"^#{{2,4}} {re.escape(hook)}\s*$", text, re.MULTILINE), (
        f"docs/hooks.md has no '## {hook}' heading"
    )


@pytest.mark.parametrize("hook", sorted(PROVIDER_HOOKS))
def test_every_provider_hook_is_exercised_by_the_contract_suite(hook: str) -> None:
    exercising = sorted(c.name for c in contracts().values() if hook in c.hooks)
    assert exercising, f"no contract of payments_core.testing calls {hook}"


def test_contracts_declare_only_real_provider_hooks() -> None:
    declared = set().union(*(c.hooks for c in contracts().values()))
    assert declared <= PROVIDER_HOOKS, declared - PROVIDER_HOOKS


def test_application_hooks_are_left_to_the_ledger_tests_not_the_provider_contract() -> None:
    # payment_status_changed is implemented by applications, not providers: the provider
    # contract cannot call it, and the ledger's tests pin down "once per real change".
    declared = set().union(*(c.hooks for c in contracts().values()))
    assert not declared & APPLICATION_HOOKS
