"""Draw the span tree of one ``payments demo --refund`` run as a waterfall, for the docs.

``python -m benchmarks.trace_waterfall [--output docs/images/demo-trace.png]`` runs the demo
in process with the spans recorded in memory (the OpenTelemetry SDK), then draws each span as
a bar on one time axis, indented by depth, coloured by kind (a demo step, a facade operation, a
provider request, the ledger, the application hook), and prints the tree it drew.
``docs/observability.md`` shows the picture and the tree.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Final

from click.testing import CliRunner

from payments_core.cli import cli
from payments_core.telemetry.recording import record, render_tree, walk

OUTPUT: Final = Path(__file__).parents[1] / "docs" / "images" / "demo-trace.png"
COLOURS: Final = {
    "demo": "#9e9e9e",
    "payments.ledger": "#6a8caf",
    "payments.payment_status_changed": "#b07aa1",
    "http": "#e15759",
    "payments": "#4e79a7",
}


def colour(name: str) -> str:
    if name.startswith(("GET ", "POST ")):
        return COLOURS["http"]
    for prefix, chosen in COLOURS.items():
        if name.startswith(prefix):
            return chosen
    return COLOURS["payments"]


def main(argv: list[str] | None = None) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    parser = argparse.ArgumentParser(prog="python -m benchmarks.trace_waterfall")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    recorder = record()
    recorder.clear()
    result = CliRunner().invoke(cli, ["demo", "--refund", "--json"])
    if result.exit_code != 0:
        print(result.output, file=sys.stderr)
        return 1
    spans = recorder.spans()
    rows = list(walk(spans))
    start = min(span.start_time or 0 for _, span in rows)
    figure, axes = plt.subplots(figsize=(11, 0.24 * len(rows) + 1))
    for index, (depth, span) in enumerate(rows):
        left = ((span.start_time or 0) - start) / 1e6
        width = max(((span.end_time or 0) - (span.start_time or 0)) / 1e6, 0.3)
        axes.barh(index, width, left=left, color=colour(span.name), height=0.7)
        label = f"{'  ' * depth}{span.name}"
        axes.text(-5, index, label, ha="right", va="center", fontsize=7, family="monospace")
        axes.text(left + width + 3, index, f"{width:.1f} ms", va="center", fontsize=6)
    axes.invert_yaxis()
    axes.set_yticks([])
    axes.set_xlabel("milliseconds since the demo began")
    axes.set_title("payments demo --refund: its spans, recorded with the OpenTelemetry SDK")
    axes.spines[["top", "right", "left"]].set_visible(False)
    figure.savefig(args.output, dpi=110, bbox_inches="tight")
    print(render_tree(spans))
    print(f"\nwritten: {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
