"""A recorded run as the Markdown table of ``docs/performance.md``:
``python -m benchmarks.report benchmarks/recorded/<run>.json [more.json ...]``.

One row per benchmark (id, figure, target, met), then the machine and the load of each run,
so that the table in the docs is the JSON's own words, not a retyping of them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def rows(document: dict[str, Any]) -> list[str]:
    lines = []
    for row in document["results"]:
        met = {True: "yes", False: "**no**", None: "n/a"}[row["met"]]
        figure = row["figure"].replace("|", "\\|")
        lines.append(f"| {row['id']} | {figure} | {row['target']} | {met} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    paths = [Path(p) for p in (sys.argv[1:] if argv is None else argv)]
    out = ["| id | figure | target | met |", "|---|---|---|---|"]
    runs = []
    for path in paths:
        document = json.loads(path.read_text(encoding="utf-8"))
        out += rows(document)
        box = document["machine"]
        runs.append(
            f"`{path.name}`: {box['when']}, {box['cpu']}, {box['cores']} cores, "
            f"{box['implementation']} {box['python']}, {box['os']}, load average "
            f"{', '.join(map(str, box['load_average']))} at the start"
            + (
                f" and {', '.join(map(str, box['load_after']))} at the end"
                if "load_after" in box
                else ""
            )
        )
    print("\n".join(out))
    print()
    for run in runs:
        print(f"- {run}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
