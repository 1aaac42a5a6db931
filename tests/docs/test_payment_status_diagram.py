"""The state diagram in docs/ledger.md draws the rule the code applies, and nothing else.

Its source, docs/diagrams/payment-status.dot, holds one ``a -> b`` per line; those arrows must
be exactly the moves :data:`payments_core.models.FORWARD` allows, and the committed SVG (made
by docs/diagrams/render) must name every status and draw every arrow.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from payments_core.models import FORWARD, PaymentStatus

DOCS = Path(__file__).resolve().parents[2] / "docs"
SOURCE = DOCS / "diagrams" / "payment-status.dot"
PICTURE = DOCS / "images" / "payment-status.svg"
EDGE = re.compile(r"\s*([a-z_]+)\s*->\s*([a-z_]+)\s*(\[[^\]]*\])?\s*;\s*")


def drawn_edges(text: str) -> set[tuple[str, str]]:
    """The arrows of a DOT source, refusing any ``->`` line it cannot read as one arrow."""
    edges = set()
    for number, line in enumerate(text.splitlines(), 1):
        code = line.split("//", 1)[0]
        if "->" not in code:
            continue
        match = EDGE.fullmatch(code)
        assert match, f"line {number} is not one 'a -> b;' arrow: {line!r}"
        edges.add((match.group(1), match.group(2)))
    return edges


def allowed_edges() -> set[tuple[str, str]]:
    return {(old.value, new.value) for old, targets in FORWARD.items() for new in targets}


def test_the_diagram_source_draws_exactly_the_moves_the_code_allows() -> None:
    drawn = drawn_edges(SOURCE.read_text(encoding="utf-8"))
    allowed = allowed_edges()
    assert drawn - allowed == set(), "drawn but not allowed"
    assert allowed - drawn == set(), "allowed but not drawn"


def test_the_rule_agrees_with_the_table_it_is_drawn_from() -> None:
    for old in PaymentStatus:
        for new in PaymentStatus:
            assert old.can_become(new) == ((old.value, new.value) in allowed_edges())


def test_the_parser_refuses_an_arrow_it_cannot_read() -> None:
    assert drawn_edges("a -> b;\nc -> d [style=dotted]; // note\n") == {("a", "b"), ("c", "d")}
    with pytest.raises(AssertionError, match="line 2 is not one"):
        drawn_edges("a -> b;\na -> b -> c;\n")


def test_the_committed_picture_names_every_status_and_draws_every_arrow() -> None:
    svg = PICTURE.read_text(encoding="utf-8")
    shown = set(re.findall(r"<text[^>]*>([^<]+)</text>", svg))
    missing = [status.value for status in PaymentStatus if status.value not in shown]
    assert missing == [], "statuses the picture does not name"
    # graphviz titles each arrow "a&#45;&gt;b": the picture is rendered from today's source.
    titles = set(re.findall(r"<title>([a-z_]+)&#45;&gt;([a-z_]+)</title>", svg))
    assert titles == allowed_edges(), "rerun docs/diagrams/render"
