"""Every public name of ``payments_core`` is documented: it appears in some page of docs/."""

from __future__ import annotations

import functools
import re
from pathlib import Path

import pytest

import payments_core

DOCS = Path(__file__).resolve().parents[2] / "docs"


@functools.cache
def documented_words() -> frozenset[str]:
    """Every identifier-like word of the Markdown pages in docs/."""
    return frozenset(
        word
        for page in DOCS.glob("*.md")
        for word in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", page.read_text(encoding="utf-8"))
    )


@pytest.mark.parametrize("name", sorted(payments_core.__all__))
def test_public_name_appears_in_the_docs(name: str) -> None:
    assert name in documented_words(), f"payments_core.{name} is in no page of docs/"


def test_a_name_missing_from_the_docs_is_caught() -> None:
    assert "NoSuchPublicName" not in documented_words()
