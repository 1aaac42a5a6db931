"""Run the benchmarks: ``python -m benchmarks [--quick] [--only P1,P4] [--growth] [--output PATH]``.

Prints a table (figure, target, met?) with the machine it ran on, and writes the same as JSON
(default ``benchmarks/results/latest.json``, not committed; recorded runs are copied into
``benchmarks/recorded/``). ``--profile`` writes pyinstrument profiles of ``create_order`` and
``handle_callback`` instead (see ``benchmarks/profile.py``). A figure that misses its target
is reported, never raised: the exit status is 0 unless a benchmark could not run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from .common import machine
from .suite import BENCHMARKS, DEFAULT

RESULTS = Path(__file__).parent / "results" / "latest.json"


def table(rows: list[dict[str, Any]], box: dict[str, Any]) -> str:
    lines = [
        f"machine: {box['cpu']}, {box['cores']} cores, {box['implementation']} "
        f"{box['python']}, {box['os']}, load {box['load_average']} -> {box['load_after']}",
        "",
        f"{'id':<4} {'met':<5} {'target':<44} figure",
        f"{'-' * 4} {'-' * 5} {'-' * 44} {'-' * 60}",
    ]
    for row in rows:
        met = {True: "yes", False: "NO", None: "n/a"}[row["met"]]
        lines.append(f"{row['id']:<4} {met:<5} {row['target']:<44} {row['figure']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller sizes (a smoke run)")
    parser.add_argument("--only", default="", help="comma-separated ids, e.g. P1,P4")
    parser.add_argument(
        "--growth", action="store_true", help="also the ledger growth curve (minutes)"
    )
    parser.add_argument("--output", type=Path, default=RESULTS, help="where to write the JSON")
    parser.add_argument(
        "--profile", action="store_true", help="profile create_order and handle_callback"
    )
    args = parser.parse_args(argv)
    if args.profile:
        from .profile import main as profile_main

        return profile_main()
    chosen = [i.strip().upper() for i in args.only.split(",") if i.strip()] or list(DEFAULT)
    if args.growth and "GROWTH" not in chosen:
        chosen.append("GROWTH")
    box = machine()
    rows: list[dict[str, Any]] = []
    failed = False
    for name in chosen:
        started = time.perf_counter()
        load = [round(x, 2) for x in os.getloadavg()]
        print(f"running {name} (load {load}) ...", file=sys.stderr, flush=True)
        try:
            row = BENCHMARKS[name](args.quick)
        except Exception:
            failed = True
            row = {
                "id": name,
                "what": "",
                "figure": "could not run: " + traceback.format_exc(limit=3).splitlines()[-1],
                "value": None,
                "target": "",
                "met": None,
            }
        row["seconds"] = round(time.perf_counter() - started, 1)
        row["load_average_before"] = load
        rows.append(row)
    box["load_after"] = [round(x, 2) for x in os.getloadavg()]
    print(table(rows, box))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    document = {"machine": box, "quick": args.quick, "results": rows}
    args.output.write_text(json.dumps(document, indent=2, default=str) + "\n", encoding="utf-8")
    print(f"\nwritten: {args.output}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
