"""Run the Python examples in the docs as tests (Sybil).

Every ```python block in docs/*.md runs, in order, sharing one namespace per page. A block that
only illustrates (it needs real credentials, say) is preceded by ``<!-- skip: next -->``.
The example apps in ``docs/examples`` are importable by name, as under
``uvicorn --app-dir docs/examples``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from sybil import Sybil
from sybil.parsers.markdown import PythonCodeBlockParser, SkipParser

EXAMPLES = str(Path(__file__).resolve().parent / "examples")


def _examples_importable(namespace: dict[str, Any]) -> None:
    if EXAMPLES not in sys.path:
        sys.path.append(EXAMPLES)


pytest_collect_file = Sybil(
    parsers=[PythonCodeBlockParser(), SkipParser()],
    patterns=["*.md"],
    setup=_examples_importable,
).pytest()
