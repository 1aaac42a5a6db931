"""What telemetry costs: P1, P2 and P5 three ways, side by side in one run.

``python -m benchmarks.telemetry_cost [--quick] [--output PATH]`` runs ``python -m benchmarks
--only P1,P2,P5`` in a child process for each of:

* ``absent``: ``opentelemetry`` cannot be imported (a finder refuses it, installed by a
  ``sitecustomize`` so that P5's child processes are refused it too), as without the ``otel``
  extra;
* ``api``: the API is installed, no SDK configured: every span is the no-op one;
* ``sdk``: the SDK records every span and metric in memory (``telemetry.recording.record``).

P5 (``import payments_core``, ``payments --help``) runs in child processes, which record
nothing in any mode: the core imports no OpenTelemetry until an operation runs. The three
tables go into one JSON document (recorded runs are copied into
``benchmarks/recorded/``; ``docs/performance.md`` quotes them). The machine is shared: read
differences of a few percent as noise.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Final

RESULTS: Final = Path(__file__).parent / "results" / "telemetry.json"

_ABSENT: Final = """
import sys

class NoOpenTelemetry:
    def find_spec(self, name, path=None, target=None):
        if name == "opentelemetry" or name.startswith("opentelemetry."):
            raise ModuleNotFoundError(name)
        return None

sys.meta_path.insert(0, NoOpenTelemetry())
"""
_SDK: Final = """
from payments_core.telemetry.recording import record

record()
"""
MODES: Final = {"absent": "", "api": "", "sdk": _SDK}


def run(mode: str, quick: bool) -> dict[str, Any]:
    """One ``python -m benchmarks --only P1,P2,P5`` run in ``mode``; its JSON document."""
    with tempfile.TemporaryDirectory() as scratch:
        output = Path(scratch) / "out.json"
        env = dict(os.environ)
        if mode == "absent":
            (Path(scratch) / "sitecustomize.py").write_text(_ABSENT, encoding="utf-8")
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [scratch, env.get("PYTHONPATH")]))
        args = ["--only", "P1,P2,P5", "--output", str(output), *(["--quick"] if quick else [])]
        code = (
            MODES[mode]
            + f"\nimport sys\nfrom benchmarks.__main__ import main\nsys.exit(main({args!r}))\n"
        )
        subprocess.run(  # noqa: S603 - this interpreter, our own code
            [sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[1], env=env
        )
        document: dict[str, Any] = json.loads(output.read_text(encoding="utf-8"))
        return document


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.telemetry_cost")
    parser.add_argument("--quick", action="store_true", help="smaller sizes (a smoke run)")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    runs = {mode: run(mode, args.quick) for mode in MODES}
    from .telemetry_interleaved import measure

    interleaved = measure(args.quick)
    print(f"\n{'id':<4} " + " ".join(f"{mode:<40}" for mode in MODES))
    for index, row in enumerate(runs["absent"]["results"]):
        values = [runs[mode]["results"][index]["figure"][:40] for mode in MODES]
        print(f"{row['id']:<4} " + " ".join(f"{value:<40}" for value in values))
    print("\nin one process, interleaved (us per operation):")
    for operation, figures in interleaved.items():
        shown = ", ".join(f"{mode} {us:.0f}" for mode, us in figures.items())
        print(f"  {operation:<15} {shown}")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    document = {"quick": args.quick, "runs": runs, "interleaved_us": interleaved}
    args.output.write_text(json.dumps(document, indent=2, default=str) + "\n", encoding="utf-8")
    print(f"\nwritten: {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
