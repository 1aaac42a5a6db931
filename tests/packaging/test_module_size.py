"""No module of the library grows past what one reader can hold: 700 lines."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LIMIT = 700


def library_modules() -> list[Path]:
    trees = [ROOT / "src", ROOT / "providers", ROOT / "examples"]
    return [
        path
        for tree in trees
        for path in sorted(tree.rglob("*.py"))
        if "tests" not in path.relative_to(ROOT).parts and ".venv" not in path.parts
    ]


def test_the_library_has_modules_to_measure() -> None:
    assert any(path.name == "facade.py" for path in library_modules())


def test_no_library_module_is_longer_than_700_lines() -> None:
    lengths = {
        str(path.relative_to(ROOT)): len(path.read_text(encoding="utf-8").splitlines())
        for path in library_modules()
    }
    too_long = {name: lines for name, lines in lengths.items() if lines > LIMIT}
    assert too_long == {}, f"split these by concern: {too_long}"
