"""Code the docs show from the project's sources is that source, word for word.

The docs carry their code on the page (read on GitHub or in an editor, there is no
``literalinclude``). A block that shows a source file, or one class or function of it, is
preceded by ``<!-- source: PATH -->`` or ``<!-- source: PATH::QUALNAME -->`` (the path from the
repository's root) and is compared here with what that file holds now, so it cannot drift:
the same syntax tree and the same comments (ruff formats the page's blocks at their own
indentation, so the line breaks may differ).
"""

from __future__ import annotations

import ast
import io
import re
import textwrap
import tokenize
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
DOCS = ROOT / "docs"
SHOWN = re.compile(
    r"^<!-- source: (?P<path>\S+?)(?:::(?P<name>[\w.]+))? -->\n"
    r"(?:<!--[^\n]*-->\n)*"
    r"```python\n(?P<code>.*?)^```$",
    re.MULTILINE | re.DOTALL,
)


def shown_source(path: str, name: str | None) -> str:
    """The text of ``path`` (from the repository's root), or of its class or function
    ``name`` (dotted for a method), decorators included and dedented."""
    text = (ROOT / path).read_text()
    if name is None:
        return text
    nodes: list[ast.stmt] = ast.parse(text).body
    node: ast.stmt | None = None
    for part in name.split("."):
        node = next(
            (
                n
                for n in nodes
                if isinstance(n, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
                and n.name == part
            ),
            None,
        )
        if node is None:
            raise LookupError(f"{path} has no {name}")
        nodes = node.body  # type: ignore[attr-defined]
    assert node is not None
    first = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))])
    lines = text.splitlines(keepends=True)[first - 1 : node.end_lineno]
    return textwrap.dedent("".join(lines))


def _shown_blocks() -> list[tuple[str, str, str | None, str]]:
    return [
        (page.name, match["path"], match["name"], match["code"])
        for page in sorted(DOCS.glob("*.md"))
        for match in SHOWN.finditer(page.read_text())
    ]


def test_no_page_leaves_its_code_to_an_include() -> None:
    for page in DOCS.glob("*.md"):
        assert "literalinclude" not in page.read_text(), page.name


def test_the_guides_show_their_code() -> None:
    shown = {(page, path, name) for page, path, name, _ in _shown_blocks()}

    assert ("leadscalendar.md", "docs/examples/leadscalendar_app.py", None) in shown
    assert len([page for page, _, _ in shown if page == "writing-a-provider.md"]) >= 4


def _meaning(code: str) -> tuple[str, list[str]]:
    """What formatting cannot change: the syntax tree and the comments."""
    tokens = tokenize.generate_tokens(io.StringIO(code).readline)
    comments = [token.string for token in tokens if token.type == tokenize.COMMENT]
    return ast.dump(ast.parse(code)), comments


@pytest.mark.parametrize(
    ("page", "path", "name", "code"),
    [pytest.param(*block, id=f"{block[0]}:{block[2] or block[1]}") for block in _shown_blocks()],
)
def test_shown_code_is_the_source(page: str, path: str, name: str | None, code: str) -> None:
    assert _meaning(code) == _meaning(shown_source(path, name)), f"{page}: {path}::{name}"
