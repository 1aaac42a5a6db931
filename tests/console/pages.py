"""Reading the console's pages in tests: an element's text, a form's hidden fields."""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

_CSRF = re.compile(r'name="csrf" value="([0-9a-f]*)"')


def csrf_of(page: str) -> str:
    """The CSRF token of the page's forms."""
    found = _CSRF.search(page)
    assert found is not None, "the page has no form with a CSRF token"
    return found[1]


def hidden_fields(page: str, form_id: str) -> dict[str, str]:
    """The named inputs (hidden or not) of the form ``form_id``, with their values."""
    start = page.index(f'id="{form_id}"')
    form = page[start : page.index("</form>", start)]
    return {
        name: html.unescape(value)
        for name, value in re.findall(r'<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"', form)
    }


class _Text(HTMLParser):
    def __init__(self, element_id: str) -> None:
        super().__init__()
        self.element_id = element_id
        self.depth = 0
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.depth:
            self.depth += tag not in {"input", "br", "meta", "line", "rect"}
        elif ("id", self.element_id) in attrs:
            self.depth = 1

    def handle_endtag(self, tag: str) -> None:
        if self.depth:
            self.depth -= 1

    def handle_data(self, data: str) -> None:
        if self.depth:
            self.parts.append(data)


def text_of(page: str, element_id: str) -> str:
    """The text inside the element ``element_id``, whitespace collapsed."""
    parser = _Text(element_id)
    parser.feed(page)
    return " ".join(" ".join(parser.parts).split())
