"""Names that moved when the ledger was split still import from where they were, with a warning."""

from __future__ import annotations

import importlib
import subprocess
import sys
import warnings

import pytest

import payments_core.ledger
import payments_core.ledger.base

_NEW_HOMES = {
    "payments_core.ledger.records": ("ApplyResult", "EventRecord", "OrderRecord", "RefundOutcome"),
    "payments_core.outcomes": ("CallbackOutcome", "ReconcileOutcome"),
    "payments_core.rules": (
        "EventFlag",
        "OrderState",
        "assess_event",
        "assess_refund_notice",
        "check_refundable",
    ),
    "payments_core.redaction": ("safe_url",),
    "payments_core.ledger.interface": ("Ledger",),
    "payments_core.ledger.sql": ("SqlLedger",),
    "payments_core.ledger.dbapi": ("Connection", "Cursor"),
    "payments_core.ledger.migrations": ("MIGRATIONS",),
}
MOVED = {name: module for module, names in _NEW_HOMES.items() for name in names}


@pytest.mark.parametrize(("name", "module"), MOVED.items())
def test_a_name_from_ledger_base_warns_and_is_the_moved_object(name: str, module: str) -> None:
    message = rf"base\.{name} has moved: import it from {module}"
    with pytest.warns(DeprecationWarning, match=message):
        found = getattr(payments_core.ledger.base, name)
    assert found is getattr(importlib.import_module(module), name)


def test_safe_url_from_the_ledger_package_warns() -> None:
    from payments_core.redaction import safe_url

    with pytest.warns(DeprecationWarning, match="import it from payments_core.redaction"):
        assert payments_core.ledger.safe_url is safe_url


@pytest.mark.parametrize("module", [payments_core.ledger.base, payments_core.ledger])
def test_the_warning_points_at_the_code_that_used_the_old_name(module: object) -> None:
    """Its filename is the caller's (this test), so default filters show it where it is used."""
    name = "ApplyResult" if module is payments_core.ledger.base else "safe_url"
    with pytest.warns(DeprecationWarning, match="has moved") as caught:
        getattr(module, name)
    assert caught[0].filename == __file__


def test_the_ledger_package_exports_its_names_without_a_warning() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for name in payments_core.ledger.__all__:
            assert getattr(payments_core.ledger, name) is not None
    from payments_core.outcomes import CallbackOutcome, ReconcileOutcome

    assert payments_core.ledger.CallbackOutcome is CallbackOutcome
    assert payments_core.ledger.ReconcileOutcome is ReconcileOutcome


def test_an_unknown_name_is_still_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'Nothing'"):
        payments_core.ledger.base.Nothing  # noqa: B018
    with pytest.raises(AttributeError, match="no attribute 'Nothing'"):
        payments_core.ledger.Nothing  # noqa: B018


def test_the_rules_and_the_outcomes_import_in_either_order_without_the_store() -> None:
    script = (
        "import sys, payments_core.rules, payments_core.refunding\n"
        "assert not [m for m in sys.modules if m.startswith('payments_core.ledger')], sys.modules\n"
        "import payments_core.outcomes, payments_core.ledger\n"
        "assert 'payments_core.ledger.sql' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-W", "error", "-c", script], check=True)  # noqa: S603 - this interpreter
