"""Mutation testing of the money-critical code: ``python -m benchmarks.mutation``.

Runs mutmut on each module of ``benchmarks/mutation.toml`` against that module's own test
files, reads every mutant's outcome from mutmut's command line, matches each survivor with its
judgement in the same file, and prints one row per module: mutants, killed, survived,
equivalent, accepted, the score over the non-equivalent mutants. The same goes to JSON
(``--output``; recorded runs are copied into ``benchmarks/recorded/``).

Exit status 1 when a module scores under the threshold or a survivor has no judgement, so that
a new gap cannot pass unnoticed. See docs/mutation.md.

    python -m benchmarks.mutation                       # every module, one worker
    python -m benchmarks.mutation --module money        # one module (repeatable)
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

from .common import machine

REPO = Path(__file__).resolve().parent.parent
CONFIG = Path(__file__).with_name("mutation.toml")
SCRATCH = REPO / "build" / "mutation"
RESULTS = SCRATCH / "report.json"

# mutmut's outcomes (``mutmut results --all true``), by what they mean for the score.
KILLED = {"killed", "timeout", "caught by type check", "segfault"}
SURVIVED = {"survived", "no tests", "suspicious"}


def mangled(function: str) -> str:
    """mutmut's name for a function (``_hmac``) or a method (``Provider._callback``)."""
    if "." in function:
        cls, method = function.split(".", 1)
        return f"xǁ{cls}ǁ{method}"
    return f"x_{function}"


def function_of(mutant: str) -> str:
    """The inverse of :func:`mangled`, from a mutant's full name."""
    name = mutant.rsplit(".", 1)[1].rsplit("__mutmut_", 1)[0]
    if name.startswith("xǁ"):
        cls, method = name[2:].split("ǁ", 1)
        return f"{cls}.{method}"
    return name[2:]


def project_file(root: Path, mutmut: dict[str, Any]) -> str:
    """The pyproject.toml of a module's scratch directory: mutmut's settings and the pytest
    settings of the distribution (warnings are errors there too). JSON strings and lists of
    strings are valid TOML, so they are written with json.dumps."""
    pytest_settings = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    ini = pytest_settings.get("tool", {}).get("pytest", {}).get("ini_options", {})
    if not ini:
        ini = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
        ini = ini["tool"]["pytest"]["ini_options"]
    lines = ["[tool.mutmut]"]
    lines += [f"{key} = {json.dumps(value)}" for key, value in mutmut.items()]
    lines += ["", "[tool.pytest.ini_options]"]
    lines += [
        f"{key} = {json.dumps(ini[key])}"
        for key in ("addopts", "filterwarnings", "markers")
        if key in ini
    ]
    return "\n".join(lines) + "\n"


def mutmut(scratch: Path, *args: str, log: Path | None = None) -> str:
    """Run one mutmut command in a module's scratch directory; its standard output (or, with
    ``log``, nothing: the output goes to that file)."""
    with open(log or os.devnull, "w", encoding="utf-8") as sink:
        done = subprocess.run(  # noqa: S603 - this interpreter, fixed arguments
            [sys.executable, "-m", "mutmut", *args],
            cwd=scratch,
            stdout=sink if log else subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            check=False,
        )
    if done.returncode != 0:
        where = log or done.stdout
        raise RuntimeError(f"mutmut {' '.join(args)} failed in {scratch.name}: {where}")
    return done.stdout or ""


def changed_lines(diff: str) -> tuple[str, str]:
    """The original and the mutated line(s) of ``mutmut show``'s diff, stripped."""
    removed = [line[1:].strip() for line in diff.splitlines() if re.match(r"-(?!--)", line)]
    added = [line[1:].strip() for line in diff.splitlines() if re.match(r"\+(?!\+\+)", line)]
    return " / ".join(removed), " / ".join(added)


def judges(judgement: dict[str, str], function: str, original: str, mutated: str) -> bool:
    """Whether a judgement is about this survivor: same function, and the same mutated line
    (``mutated``) or any mutant of the same original line (``original``, for a line that no
    input can reach)."""
    if judgement["function"] != function:
        return False
    if "mutated" in judgement:
        return judgement["mutated"] == mutated
    return judgement["original"] == original


def run_module(name: str, spec: dict[str, Any], jobs: int) -> dict[str, Any]:
    """Mutate one module, run its own tests against every mutant, judge the survivors."""
    root = REPO / spec.get("root", ".")
    scratch = SCRATCH / name
    patterns = [f"*.{mangled(f)}__mutmut_*" for f in spec.get("functions", [])]
    if jobs == 0:  # --judge: the last run's outcomes, judged again, with its duration
        took = scratch / "seconds"
        seconds = float(took.read_text("utf-8")) if took.exists() else None
        return judged_outcomes(name, spec, scratch, patterns, seconds)
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    also = spec.get("also", [])
    for part in ("src", "tests", *also):
        (scratch / part).parent.mkdir(parents=True, exist_ok=True)  # also: a/b/tests
        (scratch / part).symlink_to(root / part)
    settings = {
        "source_paths": ["src"],
        "also_copy": also,
        "only_mutate": spec["mutate"],
        "pytest_add_cli_args": ["-q"],
        "pytest_add_cli_args_test_selection": spec["tests"],
    }
    (scratch / "pyproject.toml").write_text(project_file(root, settings), encoding="utf-8")
    commit = subprocess.run(  # noqa: S603 - fixed arguments
        ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],  # noqa: S607 - git from PATH
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    (scratch / "commit").write_text(commit or "unknown", encoding="utf-8")
    started = time.monotonic()
    mutmut(scratch, "run", "--max-children", str(jobs), *patterns, log=scratch / "run.log")
    seconds = round(time.monotonic() - started, 1)
    (scratch / "seconds").write_text(str(seconds), encoding="utf-8")  # for a later --judge
    return judged_outcomes(name, spec, scratch, patterns, seconds)


def judged_outcomes(
    name: str, spec: dict[str, Any], scratch: Path, patterns: list[str], seconds: float | None
) -> dict[str, Any]:
    """The outcome of every mutant of a module's last run, each survivor with its judgement."""
    outcomes: dict[str, str] = {}
    for line in mutmut(scratch, "results", "--all", "true").splitlines():
        mutant, _, status = line.strip().partition(": ")
        if status and (not patterns or any(fnmatch(mutant, p) for p in patterns)):
            outcomes[mutant] = status
    excluded = []
    for left_out in spec.get("excluded", []):  # code no in-process test can switch a mutant on in
        mutants = [m for m in outcomes if function_of(m) == left_out["function"]]
        for mutant in mutants:
            del outcomes[mutant]
        excluded.append({**left_out, "mutants": len(mutants)})
    for function in spec.get("functions", []):
        if not any(function_of(mutant) == function for mutant in outcomes):
            raise RuntimeError(f"{name}: no mutant of {function!r}; is the name right?")
    judged = spec.get("judged", [])
    survivors = []
    for mutant, status in sorted(outcomes.items()):
        if status not in SURVIVED:
            continue
        original, mutated = changed_lines(mutmut(scratch, "show", mutant))
        function = function_of(mutant)
        verdict = next((j for j in judged if judges(j, function, original, mutated)), None)
        survivors.append(
            {
                "mutant": mutant,
                "status": status,
                "function": function,
                "original": original,
                "mutated": mutated,
                "verdict": verdict["verdict"] if verdict else "UNJUDGED",
                "why": verdict["why"] if verdict else "",
            }
        )
    killed = sum(status in KILLED for status in outcomes.values())
    equivalent = sum(s["verdict"] == "equivalent" for s in survivors)
    counted = killed + len(survivors)
    return {
        "module": name,
        "commit": (scratch / "commit").read_text("utf-8") if (scratch / "commit").exists() else "",
        "files": spec["mutate"],
        "tests": spec["tests"],
        "mutants": counted,
        "killed": killed,
        "survived": len(survivors),
        "equivalent": equivalent,
        "accepted": sum(s["verdict"] == "accepted" for s in survivors),
        "gaps": sum(s["verdict"] == "gap" for s in survivors),
        "unjudged": sum(s["verdict"] == "UNJUDGED" for s in survivors),
        "not_run": len(outcomes) - counted,
        "score": round(100 * killed / max(counted - equivalent, 1), 1),
        "seconds": seconds,
        "survivors": survivors,
        "excluded": excluded,
    }


def table(rows: list[dict[str, Any]], threshold: float) -> str:
    head = (
        f"{'module':<26} {'mutants':>7} {'killed':>6} {'survived':>8} {'equiv':>5} "
        f"{'accepted':>8} {'gaps':>4} {'unjudged':>8} {'score':>6}  met  seconds"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        met = "yes" if r["score"] >= threshold and not r["unjudged"] else "NO"
        lines.append(
            f"{r['module']:<26} {r['mutants']:>7} {r['killed']:>6} {r['survived']:>8} "
            f"{r['equivalent']:>5} {r['accepted']:>8} {r.get('gaps', 0):>4} {r['unjudged']:>8} "
            f"{r['score']:>5}%  "
            f"{met:<4} {r['seconds']}"
        )
    for r in rows:
        for s in r["survivors"]:
            if s["verdict"] == "UNJUDGED":
                lines.append(f"UNJUDGED {s['mutant']} ({s['status']}): {s['mutated']}")
    return "\n".join(lines)


def markdown(report: dict[str, Any]) -> str:
    """A recorded report as docs/mutation.md shows it: the table, then every judgement."""
    lines = [
        "| module | commit | mutants | killed | survived | equivalent | accepted | gaps | unjudged "
        "| score |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in report["modules"]:
        lines.append(
            f"| {r['module']} | {r.get('commit', '')} | {r['mutants']} | {r['killed']} | "
            f"{r['survived']} | {r['equivalent']} | {r['accepted']} | {r.get('gaps', 0)} | "
            f"{r['unjudged']} | {r['score']}% |"
        )
    for r in report["modules"]:
        if r["survivors"]:
            lines += ["", f"**{r['module']}**", ""]
        for s in r["survivors"]:
            why = " ".join(s["why"].split()) or "not judged yet"
            lines.append(f"- `{s['function']}`: `{s['mutated']}`: {s['verdict']}. {why}")
        for x in r.get("excluded", []):
            why = " ".join(x["why"].split())
            lines.append(
                f"- `{x['function']}`: {x['mutants']} mutants left out of the count. {why}"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.mutation", description=__doc__)
    parser.add_argument("--module", action="append", help="run only this module (repeatable)")
    parser.add_argument("--jobs", type=int, default=1, help="mutmut worker processes (1)")
    parser.add_argument("--output", type=Path, default=RESULTS, help="the JSON report")
    parser.add_argument(
        "--update", action="store_true", help="keep the other modules already in --output"
    )
    parser.add_argument(
        "--judge", action="store_true", help="judge the last run's survivors again, run nothing"
    )
    parser.add_argument(
        "--markdown", type=Path, help="print this recorded report as docs/mutation.md shows it"
    )
    args = parser.parse_args(argv)
    if args.markdown:
        print(markdown(json.loads(args.markdown.read_text("utf-8"))))
        return 0
    config = tomllib.loads(CONFIG.read_text(encoding="utf-8"))
    modules: dict[str, Any] = config["modules"]
    unknown = sorted(set(args.module or ()) - set(modules))
    if unknown:
        parser.error(f"no such module {unknown}; the modules are {sorted(modules)}")
    os.nice(10)  # the machine is shared: mutmut and every test process it starts yield to others
    box = machine()
    rows: list[dict[str, Any]] = []
    failed: list[str] = []
    for name in args.module or list(modules):
        print(f"== {name}", flush=True)
        try:
            rows.append(run_module(name, modules[name], 0 if args.judge else args.jobs))
        except RuntimeError as error:  # one module's failure does not hide the others' figures
            print(error, file=sys.stderr)
            failed.append(name)
    box["load_after"] = [round(x, 2) for x in os.getloadavg()]
    print(table(rows, config["threshold"]))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    if args.update and args.output.exists():
        kept = json.loads(args.output.read_text("utf-8"))["modules"]
        ran = {row["module"] for row in rows}
        for row in rows:  # a --judge run keeps the duration of the run it judged
            before = [k for k in kept if k["module"] == row["module"]]
            if row["seconds"] is None and before:
                row["seconds"] = before[0]["seconds"]
        order = list(modules)
        rows = sorted(
            [row for row in kept if row["module"] not in ran] + rows,
            key=lambda row: order.index(row["module"]) if row["module"] in order else len(order),
        )
    report = {"machine": box, "threshold": config["threshold"], "modules": rows, "failed": failed}
    args.output.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", "utf-8")
    print(f"JSON: {args.output}")
    short = [r["module"] for r in rows if r["score"] < config["threshold"] or r["unjudged"]]
    if failed:
        print(f"could not run: {', '.join(failed)}")
    return 1 if short or failed else 0


if __name__ == "__main__":
    sys.exit(main())
