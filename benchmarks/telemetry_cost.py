"""What telemetry costs per operation, the three modes taking turns in fresh processes.

``python -m benchmarks.telemetry_cost [--quick] [--rounds N] [--output PATH]`` measures, in
each of three modes:

* ``absent``: ``opentelemetry`` cannot be imported (a finder refuses it before anything else
  is imported), as without the ``otel`` extra;
* ``api``: the API is installed, no SDK configured: every span is the no-op one;
* ``sdk``: the SDK records every span and metric in memory (``telemetry.recording.record``).

What each mode runs, in a child process of its own:

* ``import``: ``import payments_core``, the first thing the child does (P5's import);
* ``create_order``: P1's operation in process, the Binance provider over an httpx mock
  transport answering the canned create (no network, no ledger);
* ``handle_callback``: P2's operation, a signed callback verified and parsed (no ledger, no
  span of its own);
* ``apply_callback``: the traced callback path, a signed callback verified and applied to an
  SQLite ledger, the application hook included.

The machine these run on is shared, and its load moves from minute to minute by more than
telemetry costs. So the modes take turns round by round (each round starts one child per mode,
the order rotating from round to round: ABC, BCA, CAB, ...), each round is short (a batch of a
few hundred operations), and every figure is the median over the rounds with its spread
(interquartile range and min..max). Beside the wall time, the child measures its own CPU time
(``time.process_time``), which other processes disturb far less, and, in the first round, the
Python function calls per operation (a ``sys.setprofile`` counter), which the load cannot move
at all. Each round also gives a paired difference (a mode's CPU per operation minus the absent
mode's, in the same round), whose median and spread say whether a mode is distinguishable
from the absent one.

The load averages at the start and the end are part of the JSON document (recorded runs are
copied into ``benchmarks/recorded/``; ``docs/performance.md`` quotes them). Nothing here
asserts a speed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import partial
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
_CHILD: Final = """
import sys, time
wall, cpu = time.perf_counter(), time.process_time()
import payments_core
imported = (time.perf_counter() - wall, time.process_time() - cpu)
from benchmarks.telemetry_cost import child
child({mode!r}, {sizes!r}, {count!r}, imported)
"""
MODES: Final = ("absent", "api", "sdk")
OPERATIONS: Final = ("import", "create_order", "handle_callback", "apply_callback")
#: Operations per round: (creates, callbacks); the quick sizes are a smoke run.
SIZES: Final = {False: (300, 150), True: (40, 10)}


# -- the child: one mode, one round ------------------------------------------------------------


def child(mode: str, sizes: tuple[int, int], count: bool, imported: tuple[float, float]) -> None:
    """Measure each operation once in this process (already in ``mode``); print JSON."""
    from payments_core import telemetry

    if mode == "sdk":
        from payments_core.telemetry.recording import record

        record()
    chosen = type(telemetry.active).__name__
    expected = {"absent": "QuietTelemetry", "api": "OpenTelemetry", "sdk": "OpenTelemetry"}
    if chosen != expected[mode]:
        raise SystemExit(f"mode {mode}: the core chose {chosen}")
    creates, callbacks = sizes
    found: dict[str, Any] = {"import": {"wall": imported[0], "cpu": imported[1]}}
    for name, operations in (
        ("create_order", _creates(creates)),
        ("handle_callback", _callbacks(callbacks, ledger=False)),
        ("apply_callback", _callbacks(callbacks, ledger=True)),
    ):
        with operations as batch:
            found[name] = _timed(batch, count)
    print(json.dumps(found))


def _timed(operations: list[Callable[[], object]], count: bool) -> dict[str, float]:
    """Seconds (wall and CPU) per operation over ``operations``, after the first as a
    warm-up; with ``count``, also the Python function calls per operation."""
    operations[0]()  # warm-up: first use imports and fetches the certificates
    batch = operations[1:]
    calls = 0
    if count:
        counted, batch = batch[: len(batch) // 4], batch[len(batch) // 4 :]

        def profiler(frame: object, event: str, arg: object) -> None:
            nonlocal calls
            if event == "call":
                calls += 1

        sys.setprofile(profiler)
        try:
            for operation in counted:
                operation()
        finally:
            sys.setprofile(None)
        calls_per = calls / len(counted)
    wall, cpu = time.perf_counter(), time.process_time()
    for operation in batch:
        operation()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    figures = {"wall": wall / len(batch), "cpu": cpu / len(batch)}
    if count:
        figures["calls"] = calls_per
    return figures


@contextmanager
def _creates(n: int) -> Iterator[list[Callable[[], object]]]:
    """One warm-up then ``n`` creates, over a mock transport answering the canned create."""
    import httpx

    from .canned import API_KEY, API_SECRET, _created
    from .common import References, facade
    from .suite import order

    answer = _created("https://canned.example", "STAGE").split(b"\r\n\r\n", 1)[1]
    mock = httpx.MockTransport(lambda request: httpx.Response(200, content=answer))
    payments = facade("https://canned.example", API_KEY, API_SECRET, transport=mock)
    try:

        def create(reference: str) -> object:
            return payments.create_order(order(reference))

        yield [partial(create, reference) for reference in References("telemetry").take(n + 1)]
    finally:
        payments.close()


@contextmanager
def _callbacks(n: int, *, ledger: bool) -> Iterator[list[Callable[[], object]]]:
    """One warm-up then ``n`` signed paid callbacks, each for its own pending order: applied
    to an SQLite ledger (``apply_callback``), or only handled (``handle_callback``)."""
    from payments_core import open_ledger

    from .common import Webhooks, callback_facade, epoch_ms, pending_order

    moment = datetime.now(UTC).replace(microsecond=0)
    hooks = Webhooks()
    with tempfile.TemporaryDirectory() as scratch:
        store = (
            open_ledger(f"sqlite:///{Path(scratch) / 'ledger.sqlite3'}?synchronous=normal")
            if ledger
            else None
        )
        payments = callback_facade(hooks, moment, ledger=store)
        signed = []
        # Signed beforehand: an RSA signature costs more than what is measured.
        for number in range(1, n + 2):
            prepay, trade = str(10**17 + number), f"TELEMETRY{number:08d}"
            if store is not None:
                store.record_order(pending_order(f"telemetry-{number}", prepay, trade))
            headers, body, _, _ = hooks.callback(prepay, trade, now_ms=epoch_ms(moment))
            signed.append((headers, body))
        operation = payments.apply_callback if ledger else payments.handle_callback
        try:
            yield [partial(operation, "binance", headers, body) for headers, body in signed]
        finally:
            payments.close()
            if store is not None:
                store.close()


# -- the parent: rounds, turns, figures --------------------------------------------------------


def run_child(mode: str, quick: bool, count: bool) -> dict[str, dict[str, float]]:
    """One child process in ``mode``: its figures (seconds per operation, calls)."""
    code = (_ABSENT if mode == "absent" else "") + _CHILD.format(
        mode=mode, sizes=SIZES[quick], count=count
    )
    done = subprocess.run(  # noqa: S603 - this interpreter, our own code
        [sys.executable, "-c", code],
        check=True,
        cwd=Path(__file__).parents[1],
        capture_output=True,
        text=True,
    )
    figures: dict[str, dict[str, float]] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def spread(values: Sequence[float]) -> dict[str, float]:
    """Median, quartiles and extremes of ``values``."""
    ordered = sorted(values)
    if len(ordered) > 1:
        q1, _, q3 = statistics.quantiles(ordered, n=4, method="inclusive")
    else:
        q1 = q3 = ordered[0]
    return {
        "median": statistics.median(ordered),
        "q1": q1,
        "q3": q3,
        "min": ordered[0],
        "max": ordered[-1],
    }


def summarise(rounds: list[dict[str, dict[str, dict[str, float]]]]) -> dict[str, Any]:
    """Per operation and mode: wall and CPU µs (median and spread), calls, and per mode the
    paired per-round CPU difference to ``absent`` and the ratio of the medians."""
    summary: dict[str, Any] = {}
    for operation in OPERATIONS:
        by_mode: dict[str, Any] = {}
        for mode in MODES:
            samples = [one[mode][operation] for one in rounds]
            entry: dict[str, Any] = {
                clock: spread([s[clock] * 1e6 for s in samples]) for clock in ("wall", "cpu")
            }
            calls = [s["calls"] for s in samples if "calls" in s]
            if calls:
                entry["calls"] = calls[0]
            if mode != "absent":
                differences = [
                    (one[mode][operation]["cpu"] - one["absent"][operation]["cpu"]) * 1e6
                    for one in rounds
                ]
                entry["cpu_minus_absent"] = spread(differences)
                entry["cpu_ratio"] = entry["cpu"]["median"] / by_mode["absent"]["cpu"]["median"]
            by_mode[mode] = entry
        summary[operation] = by_mode
    return summary


def _shown(figures: dict[str, float]) -> str:
    return f"{figures['median']:.0f} [{figures['q1']:.0f}..{figures['q3']:.0f}]"


def report(summary: dict[str, Any]) -> None:
    """Print the table: CPU and wall µs per operation, median [IQR], calls, differences."""
    print(
        f"\n{'operation':<16} {'mode':<7} {'CPU µs':>16} {'wall µs':>16} {'calls':>7}  "
        "CPU - absent, paired"
    )
    for operation, by_mode in summary.items():
        for mode, entry in by_mode.items():
            calls = f"{entry['calls']:.0f}" if "calls" in entry else "-"
            paired = ""
            if "cpu_minus_absent" in entry:
                difference = entry["cpu_minus_absent"]
                separated = difference["q1"] > 0 or difference["q3"] < 0
                low, high = difference["q1"], difference["q3"]
                paired = (
                    f"{difference['median']:+.0f} [{low:+.0f}..{high:+.0f}]"
                    f" x{entry['cpu_ratio']:.2f}" + ("" if separated else "  (within the spread)")
                )
            print(
                f"{operation:<16} {mode:<7} {_shown(entry['cpu']):>16} "
                f"{_shown(entry['wall']):>16} {calls:>7}  {paired}"
            )


#: The rows of the tables in ``docs/performance.md``: what each operation stands for.
LABELS: Final = {
    "import": "`import payments_core` (P5)",
    "create_order": "`create_order` (P1's operation, mock transport)",
    "handle_callback": "`handle_callback` (P2: verify + parse, no span)",
    "apply_callback": "`apply_callback` (verify + SQLite ledger + hook, traced)",
}


def markdown(summary: dict[str, Any]) -> str:
    """The two tables ``docs/performance.md`` shows: CPU with the ratio to ``absent`` and the
    paired difference; wall time and function calls."""

    def cell(figures: dict[str, float], unit: float, sign: str = "") -> str:
        median, low, high = (figures[key] / unit + 0.0 for key in ("median", "q1", "q3"))
        shape = f"{sign}.{1 if unit > 1 else 0}f"
        return f"{median:{shape}} [{low:{shape}}..{high:{shape}}]"

    cpu = [
        "| CPU µs per operation (import: ms) | absent | API | SDK, in memory |",
        "|---|---|---|---|",
    ]
    wall = [
        "| wall µs per operation (import: ms); calls | absent | API | SDK, in memory |",
        "|---|---|---|---|",
    ]
    for operation, by_mode in summary.items():
        unit = 1000.0 if operation == "import" else 1.0
        cpu_cells, wall_cells = [], []
        for mode, entry in by_mode.items():
            shown = cell(entry["cpu"], unit)
            if mode != "absent":
                difference = cell(entry["cpu_minus_absent"], unit, "+")
                shown += f"; ×{entry['cpu_ratio']:.2f}; {difference}"
            cpu_cells.append(shown)
            calls = f"; {entry['calls']:.0f} calls" if "calls" in entry else ""
            wall_cells.append(cell(entry["wall"], unit) + calls)
        cpu.append(f"| {LABELS[operation]} | " + " | ".join(cpu_cells) + " |")
        wall.append(f"| {LABELS[operation]} | " + " | ".join(wall_cells) + " |")
    return "\n".join(cpu) + "\n\n" + "\n".join(wall)


def main(argv: list[str] | None = None) -> int:
    from .common import machine

    parser = argparse.ArgumentParser(prog="python -m benchmarks.telemetry_cost")
    parser.add_argument("--quick", action="store_true", help="small batches, 3 rounds")
    parser.add_argument("--rounds", type=int, help="rounds (default 20, quick 3)")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    rounds = args.rounds or (3 if args.quick else 20)
    started = machine()
    samples: list[dict[str, dict[str, dict[str, float]]]] = []
    for number in range(rounds):
        turn = MODES[number % len(MODES) :] + MODES[: number % len(MODES)]
        samples.append({mode: run_child(mode, args.quick, number == 0) for mode in turn})
        print(f"round {number + 1}/{rounds} done ({' '.join(turn)})", file=sys.stderr)
    summary = summarise(samples)
    report(summary)
    print("\n" + markdown(summary))
    document = {
        "machine": started,
        "load_average_end": [round(x, 2) for x in os.getloadavg()],
        "ended": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": args.quick,
        "rounds": rounds,
        "sizes": {"creates": SIZES[args.quick][0], "callbacks": SIZES[args.quick][1]},
        "summary_us": summary,
        "rounds_seconds": samples,
    }
    print(f"\nload average: start {started['load_average']}, end {document['load_average_end']}")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    print(f"written: {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
