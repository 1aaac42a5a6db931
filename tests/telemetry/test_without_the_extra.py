"""Without ``opentelemetry`` nothing is imported and everything works; the logs carry the
trace ids when a span is recorded, and the JSON format is one object a line."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap
from pathlib import Path

from payments_core.telemetry.logs import TRACE_FILTER, JsonFormatter, configure_logging
from payments_core.telemetry.recording import Recorder

REPO = Path(__file__).resolve().parents[2]

# A finder that refuses opentelemetry, as if the otel extra were not installed.
_WITHOUT = textwrap.dedent(
    """
    import sys

    class NoOpenTelemetry:
        def find_spec(self, name, path=None, target=None):
            if name == "opentelemetry" or name.startswith("opentelemetry."):
                raise ModuleNotFoundError(f"No module named {name!r}")
            return None

    sys.meta_path.insert(0, NoOpenTelemetry())
    """
)

_FLOW = textwrap.dedent(
    """
    import logging, sys
    from pathlib import Path
    from tests.telemetry.flow import run_flow
    from payments_core import telemetry

    logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)

    class Nothing:
        def points(self):
            return {}

    recorded = run_flow(Nothing(), Path(sys.argv[1]))
    assert recorded.outcomes == [200, 200, 401], recorded.outcomes
    assert type(telemetry.active).__name__ == "QuietTelemetry"
    loaded = sorted(name for name in sys.modules if name.startswith("opentelemetry"))
    assert loaded == [], loaded
    print("ok")
    """
)


def test_a_full_flow_without_opentelemetry_imports_none_of_it(tmp_path: Path) -> None:
    done = subprocess.run(  # noqa: S603 - this interpreter
        [sys.executable, "-c", _WITHOUT + _FLOW, str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "ok"


def test_log_records_carry_the_trace_and_span_ids(recorder: Recorder) -> None:
    from opentelemetry import trace

    formatter = JsonFormatter()
    log = logging.getLogger("payments_core.test")
    record = log.makeRecord(log.name, logging.INFO, __file__, 1, "inside %s", ("a span",), None)
    with trace.get_tracer("test").start_as_current_span("outer") as span:
        TRACE_FILTER.filter(record)
        ids = span.get_span_context()
    line = json.loads(formatter.format(record))
    assert line["message"] == "inside a span"
    assert line["trace_id"] == f"{ids.trace_id:032x}"
    assert line["span_id"] == f"{ids.span_id:016x}"
    outside = log.makeRecord(log.name, logging.INFO, __file__, 1, "outside", (), None)
    TRACE_FILTER.filter(outside)
    assert json.loads(formatter.format(outside))["trace_id"] == ""


def test_configure_logging_installs_the_chosen_format_and_refuses_others() -> None:
    root = logging.getLogger()
    level = root.level
    handler = configure_logging("json")
    try:
        assert isinstance(handler.formatter, JsonFormatter)
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    try:
        configure_logging("xml")
    except ValueError as error:
        assert "text, json" in str(error)
    else:
        raise AssertionError("an unknown format was accepted")
