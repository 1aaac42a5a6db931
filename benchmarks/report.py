"""A recorded run as the Markdown table of ``docs/performance.md``:
``python -m benchmarks.report benchmarks/recorded/<run>.json [more.json ...]``.

One row per benchmark (id, figure, target, met), then the machine and the load of each run,
so that the table in the docs is the JSON's own words, not a retyping of them. A run with P7
also gets P7's own table: one row per store and worker count.
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


def p7_rows(document: dict[str, Any]) -> list[str]:
    """P7's table: each store and worker count against the in-process rate of the same run."""
    lines = []
    for row in document["results"]:
        if row["id"] != "P7" or not row.get("details"):
            continue
        for store, figures in row["details"]["stores"].items():
            if figures is None:
                lines.append(f"| {store} | | skipped | | | | | | |")
                continue
            lines.append(
                f"| {store} | in-process (P3's loop) | {figures['in_process_per_s']:,.0f} | 1.00x"
                f" | | | {figures['in_process_cpu_us_per_callback']:,.0f} | | |"
            )
            for workers in (1, 2):
                one = figures.get(f"workers_{workers}")
                if one is None:
                    lines.append(f"| {store} | serve, {workers} workers | n/a | | | | | | |")
                    continue
                shares = " + ".join(
                    f"{share:.0%}" for share in one["rounds"][-1].get("worker_cpu_shares", [])
                )
                lines.append(
                    f"| {store} | serve, {workers} worker{'s' * (workers > 1)} "
                    f"| {one['per_s']:,.0f} | {one['ratio']:.2f}x | {one['p50_ms']:.0f} "
                    f"| {one['p99_ms']:.0f} | {one['server_cpu_us_per_callback']:,.0f} "
                    f"({one['server_cpu_over_in_process']:.2f}x) | {shares} "
                    f"| {one['sender_cpu_share']:.0%} |"
                )
    if not lines:
        return []
    return [
        "| store | server | callbacks/s | vs in-process | p50 ms | p99 ms "
        "| CPU µs per callback | workers' CPU (last round) | sender CPU (busiest round) |",
        "|---|---|---|---|---|---|---|---|---|",
        *lines,
    ]


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
    for path in paths:
        if p7 := p7_rows(json.loads(path.read_text(encoding="utf-8"))):
            print(f"\nP7 in `{path.name}`:\n")
            print("\n".join(p7))
    return 0


if __name__ == "__main__":
    sys.exit(main())
