"""The mutation run's configuration still names real code and tests: a renamed test file or
function would otherwise leave a module mutated against nothing (docs/mutation.md)."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path
from typing import Any

import pytest
from benchmarks.mutation import CONFIG, REPO, changed_lines, function_of, judges, mangled

MODULES: dict[str, Any] = tomllib.loads(CONFIG.read_text(encoding="utf-8"))["modules"]


def defined(path: Path) -> set[str]:
    """Every top-level function and method of a module, as the config names them."""
    names: set[str] = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.FunctionDef):
            names.add(node.name)
        elif isinstance(node, ast.ClassDef):
            methods = [item for item in node.body if isinstance(item, ast.FunctionDef)]
            names |= {f"{node.name}.{method.name}" for method in methods}
    return names


@pytest.mark.parametrize("name", sorted(MODULES))
def test_each_module_names_code_and_tests_that_exist(name: str) -> None:
    spec = MODULES[name]
    root = REPO / spec.get("root", ".")
    for path in [*spec["mutate"], *spec["tests"], *spec.get("also", [])]:
        assert (root / path.split("::")[0]).exists(), f"{name}: {path} does not exist"
    functions = set().union(*(defined(root / path) for path in spec["mutate"]))
    assert set(spec.get("functions", [])) <= functions
    for judgement in spec.get("judged", []):
        assert judgement["verdict"] in {"equivalent", "accepted", "gap"}
        assert judgement["why"].strip()
        assert judgement["function"] in functions, judgement
    for left_out in spec.get("excluded", []):
        assert left_out["why"].strip()
        assert left_out["function"] in functions, left_out


@pytest.mark.parametrize("function", ["_hmac", "ExampleProvider._callback", "sign"])
def test_a_function_name_survives_mutmuts_mangling(function: str) -> None:
    assert function_of(f"payments_example.provider.{mangled(function)}__mutmut_7") == function


def test_a_survivor_is_matched_by_its_mutated_line_or_by_its_original_line() -> None:
    diff = "--- a.py\n+++ a.py\n@@ -1 +1 @@\n-    if a > b:\n+    if a >= b:\n"
    original, mutated = changed_lines(diff)
    assert (original, mutated) == ("if a > b:", "if a >= b:")
    assert judges({"function": "f", "mutated": "if a >= b:"}, "f", original, mutated)
    assert judges({"function": "f", "original": "if a > b:"}, "f", original, mutated)
    assert not judges({"function": "g", "original": "if a > b:"}, "f", original, mutated)
    assert not judges({"function": "f", "mutated": "if a < b:"}, "f", original, mutated)
