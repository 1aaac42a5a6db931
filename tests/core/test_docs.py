"""The docs keep up with the code: every hook and every exception is documented."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

import payments_core
from payments_core import errors, hookspecs

DOCS = Path(__file__).resolve().parents[2] / "docs"


def hookspec_names() -> set[str]:
    names = set()
    for spec_class in (hookspecs.PaymentProvider, hookspecs.ApplicationHooks):
        for name, member in inspect.getmembers(spec_class, inspect.isfunction):
            if hasattr(member, f"{hookspecs.PROJECT}_spec"):
                names.add(name)
    return names


def test_the_hooks_we_were_designed_around_are_specified() -> None:
    assert {"create_order", "handle_callback", "classify_error"} <= hookspec_names()


@pytest.mark.parametrize("hook", sorted(hookspec_names()))
def test_every_hookspec_is_documented(hook: str) -> None:
    headings = re.findall(r"^#{2,3} (\w+)$", (DOCS / "hooks.md").read_text(), re.MULTILINE)
    assert hook in headings, f"docs/hooks.md has no section for hook {hook!r}"


def test_every_hookspec_has_a_docstring() -> None:
    for spec_class in (hookspecs.PaymentProvider, hookspecs.ApplicationHooks):
        for name in hookspec_names() & set(vars(spec_class)):
            assert inspect.getdoc(getattr(spec_class, name)), name


def exception_names() -> set[str]:
    return {
        name
        for name in errors.__all__
        if isinstance(obj := getattr(errors, name), type) and issubclass(obj, Exception)
    }


@pytest.mark.parametrize("name", sorted(exception_names()))
def test_every_exception_is_in_both_trees(name: str) -> None:
    assert name in (errors.__doc__ or ""), f"errors.py docstring tree lacks {name}"
    assert name in (DOCS / "errors.md").read_text(), f"docs/errors.md lacks {name}"
    assert getattr(payments_core, name) is getattr(errors, name)
