"""``payments demo --trace``: the timeline comes from the recorded spans, printed as a tree."""

from __future__ import annotations

import json

from click.testing import CliRunner

from payments_core.cli import cli
from payments_core.telemetry.recording import Recorder


def test_demo_prints_its_span_tree_and_times_steps_by_their_spans(recorder: Recorder) -> None:
    result = CliRunner().invoke(cli, ["demo", "--json", "--trace"])
    assert result.exit_code == 0, result.output
    tree = result.stderr
    assert "demo: create the 1.00 USD order" in tree
    assert "  payments.create_order" in tree
    assert "payments.callback" in tree
    assert "outcome=applied, linked to its creation" in tree
    steps = json.loads(result.stdout)["timeline"]
    recorded = {
        span.name.removeprefix("demo: "): (span.end_time - span.start_time) / 1e6
        for span in recorder.spans()
        if span.name.startswith("demo: ") and span.end_time and span.start_time
    }
    assert {step["step"]: step["ms"] for step in steps} == {
        title: round(ms, 1) for title, ms in recorded.items()
    }
