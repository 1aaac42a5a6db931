"""P7: callbacks over HTTP to ``payments serve`` in its own process, against P3's in-process rate.

``payments serve`` runs as a child process (``--workers 1``, and ``--workers 2`` where the
command has the option) on a ledger shared with P3's in-process measurement: a SQLite file
(WAL) and a PostgreSQL schema of its own. Its Binance provider fetches the webhook certificates
from a sandbox process started with the benchmark's signing key, so the callbacks are signed
as the sandbox signs them (``PAY_SUCCESS`` for distinct pending orders, recorded before the
clock starts). This process is the sender: aiohttp on uvloop, 64 callbacks in flight over fresh
keep-alive connections each round, each callback's latency timed; a 503 (a worker still fetching
the certificates) is delivered again, as Binance would, and counted.

Rounds alternate: P3's in-process ``apply_callback`` loop (``common.apply_rate``), then each
server, on the same ledger, so that a busy patch of the shared machine lands on all of them.
The figure is each server's median rate as a ratio to the in-process median, and its CPU per
callback against the in-process loop's; the target is 0.6x with one worker on each store, on
both counts (the in-process CPU per callback at least 0.6x the server's). The CPU time of the
sender (this process) and of the server processes (all workers) is read over every stretch: a
sender near 100% of a core would be the bottleneck, and the server's CPU per callback is what a
busy machine disturbs least.

It runs against any checkout of the project with ``payments serve``: where the command has no
``--workers`` option (before it existed) the two-worker server is reported as not available.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import psutil

from payments_binance.sandbox import SandboxProcess
from payments_core.ledger import open_ledger

from .common import Webhooks, apply_rate, median, pending_order
from .growth import _postgres_schema, _postgres_url

Row = dict[str, Any]
IN_FLIGHT = 64
TARGET = 0.6
CALLBACK_PATH = "/callbacks/binance"
#: Seconds for ``payments serve`` to start, or to stop after SIGINT.
STARTUP_TIMEOUT_S = 60.0
#: Deliveries of one callback before the round gives up on it.
MAX_DELIVERIES = 20
_RUNNING = re.compile(rb"Uvicorn running on (http://\S+)")
_READY = b"Application startup complete."


def has_workers_option() -> bool:
    """Whether this checkout's ``payments serve`` has ``--workers``."""
    done = subprocess.run(  # noqa: S603 - this interpreter, fixed arguments
        [*_cli(), "serve", "--help"], capture_output=True, text=True, check=True
    )
    return "--workers" in done.stdout


def _cli() -> list[str]:
    return [sys.executable, "-c", "from payments_core.cli import main; main()"]


class Server:
    """``payments serve`` in a child process, ready once every worker has started.

    Its standard error (uvicorn's log) is drained by a thread in large reads, so that logging
    costs the sender almost nothing; its standard output (the access log, which checkouts
    before ``--access-log`` write by default) goes to ``/dev/null``.
    """

    def __init__(self, workers: int, ledger_url: str, env: Mapping[str, str], cwd: str) -> None:
        self.workers = workers
        self.ledger_url = ledger_url
        self.env = env
        self.cwd = cwd
        self.url = ""
        self.log = bytearray()
        self._ready = threading.Event()
        self._process: subprocess.Popen[bytes] | None = None
        self._reader: threading.Thread | None = None

    def __enter__(self) -> Server:
        command = [*_cli(), "serve", "--port", "0", "--database-url", self.ledger_url]
        if self.workers != 1:
            command += ["--workers", str(self.workers)]
        self._process = process = subprocess.Popen(  # noqa: S603 - this interpreter
            command,
            env=dict(self.env),
            cwd=self.cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self._reader = threading.Thread(target=self._drain, args=(process,), daemon=True)
        self._reader.start()
        if not self._ready.wait(STARTUP_TIMEOUT_S) or process.poll() is not None:
            self.__exit__(None, None, None)
            tail = bytes(self.log[-2000:]).decode(errors="replace")
            raise RuntimeError(f"payments serve did not start:\n{tail}")
        return self

    def _drain(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stderr is not None
        fd = process.stderr.fileno()
        while chunk := os.read(fd, 1 << 16):
            if self._ready.is_set():
                continue  # later lines: read and dropped
            self.log += chunk
            if match := _RUNNING.search(self.log):
                self.url = match.group(1).decode()
            if self.url and self.log.count(_READY) >= self.workers:
                self._ready.set()
        process.stderr.close()
        self._ready.set()  # it exited: __enter__ stops waiting

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    def cpu_seconds(self) -> dict[int, float]:
        """CPU time so far of the command and of each of its worker processes, by pid."""
        root = psutil.Process(self.pid)
        times = {}
        for process in (root, *root.children(recursive=True)):
            try:
                cpu = process.cpu_times()
            except psutil.Error:  # a helper process that has just ended
                continue
            times[process.pid] = cpu.user + cpu.system
        return times

    def __exit__(self, *exc_info: object) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGINT)  # uvicorn's graceful shutdown
        try:
            process.wait(STARTUP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if self._reader is not None:
            self._reader.join(STARTUP_TIMEOUT_S)


class Callbacks:
    """Pending orders recorded in one ledger, and their signed ``PAY_SUCCESS`` callbacks."""

    def __init__(self, ledger_url: str, hooks: Webhooks, serial: str, tag: str) -> None:
        self.ledger = open_ledger(ledger_url)
        self.hooks = hooks
        self.serial = serial
        self.tag = tag
        self.count = 0
        self.first = 4 * 10**17 + int.from_bytes(os.urandom(6), "big")

    def take(self, n: int) -> list[tuple[dict[str, str], bytes]]:
        """``n`` new orders recorded, and their callbacks signed now."""
        now_ms = int(time.time() * 1000)
        callbacks = []
        for i in range(self.count, self.count + n):
            prepay, trade_no = str(self.first + i), f"P7{self.tag}{i:08d}"[:32]
            self.ledger.record_order(pending_order(f"p7-{self.tag}-{i}", prepay, trade_no))
            signed = self.hooks.callback(prepay, trade_no, now_ms=now_ms, serial=self.serial)
            callbacks.append(signed[:2])
        self.count += n
        return callbacks

    def unpaid(self) -> int:
        """Orders still pending: every recorded one was sent its callback."""
        from datetime import timedelta

        return len(self.ledger.pending_orders(timedelta(0)))

    def close(self) -> None:
        self.ledger.close()


async def _send(
    url: str, callbacks: list[tuple[dict[str, str], bytes]], in_flight: int
) -> dict[str, Any]:
    """Deliver every callback, ``in_flight`` at once over fresh connections, each until it is
    acknowledged: the rate, the latencies of the acknowledged deliveries and the deferrals."""
    latencies: list[float] = []
    deferred = 0
    queue = iter(callbacks)
    connector = aiohttp.TCPConnector(limit=in_flight)

    async def sender(session: aiohttp.ClientSession) -> None:
        nonlocal deferred
        for headers, body in queue:
            for _ in range(MAX_DELIVERIES):
                started = time.perf_counter()
                async with session.post(url, data=body, headers=headers) as response:
                    answer = await response.read()
                if response.status == 503:  # keys being fetched: deliver it again
                    deferred += 1
                    continue
                if response.status != 200 or b'"SUCCESS"' not in answer:
                    raise RuntimeError(f"payments serve answered {response.status}: {answer!r}")
                latencies.append(time.perf_counter() - started)
                break
            else:
                raise RuntimeError(f"a callback was deferred {MAX_DELIVERIES} times")

    async with aiohttp.ClientSession(connector=connector) as session:
        cpu = time.process_time()
        started = time.perf_counter()
        await asyncio.gather(*(sender(session) for _ in range(in_flight)))
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu
    return {
        "per_s": len(callbacks) / elapsed,
        "seconds": elapsed,
        "p50_ms": statistics.median(latencies) * 1e3,
        "p99_ms": statistics.quantiles(latencies, n=100)[-1] * 1e3,
        "deferred": deferred,
        "sender_cpu_share": cpu / elapsed,
    }


def _over_http(server: Server, callbacks: list[tuple[dict[str, str], bytes]]) -> dict[str, Any]:
    """One round of ``callbacks`` posted to ``server``, with the server's CPU over it."""
    before = server.cpu_seconds()
    with _event_loop() as runner:
        result = runner.run(_send(server.url + CALLBACK_PATH, callbacks, IN_FLIGHT))
    after = server.cpu_seconds()
    spent = {pid: after[pid] - before.get(pid, 0.0) for pid in after}
    result["server_cpu_us_per_callback"] = sum(spent.values()) / len(callbacks) * 1e6
    result["server_cpu_share"] = sum(spent.values()) / result["seconds"]
    # One worker is the command's own process; several are its children (the busiest).
    workers = [cpu for pid, cpu in spent.items() if (pid == server.pid) == (server.workers == 1)]
    busiest = sorted(workers, reverse=True)[: server.workers]
    result["worker_cpu_shares"] = [cpu / result["seconds"] for cpu in busiest]
    return result


@contextmanager
def _event_loop() -> Iterator[asyncio.Runner]:
    """An asyncio runner on uvloop where installed (the sender's own cost, kept low)."""
    try:
        import uvloop
    except ImportError:
        factory = None
    else:
        factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        yield runner


def _store(
    name: str,
    ledger_url: str,
    worker_counts: list[int],
    sandbox: SandboxProcess,
    hooks: Webhooks,
    n: int,
    rounds: int,
    directory: str,
) -> dict[str, Any]:
    """Alternating rounds on one store: in-process, then each server; medians and ratios."""
    env = _server_env(sandbox)
    fresh = f"{name[:2]}{os.getpid() % 10_000}{int(time.time()) % 100_000}"
    with ExitStack() as stack:
        servers = {
            w: stack.enter_context(Server(w, ledger_url, env, directory)) for w in worker_counts
        }
        callbacks = Callbacks(ledger_url, hooks, sandbox.info["certificate_serial"], fresh)
        stack.callback(callbacks.close)
        for server in servers.values():  # warm-up: connections, each worker's certificates
            _over_http(server, callbacks.take(min(n, 4 * IN_FLIGHT)))
        in_process: list[dict[str, float]] = []
        samples: dict[int, list[dict[str, Any]]] = {w: [] for w in servers}
        for index in range(rounds):
            in_process.append(apply_rate(ledger_url, n, f"{fresh}r{index}"))
            for workers, server in servers.items():
                samples[workers].append(_over_http(server, callbacks.take(n)))
        unpaid = callbacks.unpaid()
    base = median([row["per_s"] for row in in_process])
    base_cpu = median([row["cpu_us"] for row in in_process])
    result: dict[str, Any] = {
        "in_process_per_s": base,
        "in_process_cpu_us_per_callback": base_cpu,
        "in_process_rounds": in_process,
        "unpaid_after": unpaid,
    }
    for workers, rows in samples.items():
        rate = median([row["per_s"] for row in rows])
        result[f"workers_{workers}"] = {
            "per_s": rate,
            "ratio": rate / base,
            "p99_ms": median([row["p99_ms"] for row in rows]),
            "p50_ms": median([row["p50_ms"] for row in rows]),
            "sender_cpu_share": max(row["sender_cpu_share"] for row in rows),
            "server_cpu_us_per_callback": (
                cpu := median([row["server_cpu_us_per_callback"] for row in rows])
            ),
            "server_cpu_over_in_process": cpu / base_cpu,
            "server_cpu_share": median([row["server_cpu_share"] for row in rows]),
            "deferred": sum(row["deferred"] for row in rows),
            "rounds": rows,
        }
    return result


def _server_env(sandbox: SandboxProcess) -> dict[str, str]:
    """This environment without the project's settings, pointed at the sandbox."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PAYMENTS_", "BINANCE_PAY_"))}
    env.update(
        {
            "PAYMENTS_PROVIDERS": "binance",
            "BINANCE_PAY_BASE_URL": sandbox.base_url,
            "BINANCE_PAY_API_KEY": sandbox.info["api_key"],
            "BINANCE_PAY_API_SECRET": sandbox.info["api_secret"],
        }
    )
    return env


def _postgres_reachable() -> str:
    """``""`` if the benchmark's PostgreSQL answers, else why not."""
    try:
        import psycopg

        psycopg.connect(_postgres_url(), connect_timeout=3).close()
    except Exception as exc:  # any failure means: not reachable, skip it
        return f"PostgreSQL skipped: {type(exc).__name__}"
    return ""


def p7(quick: bool) -> Row:
    """Callbacks over HTTP to ``payments serve`` (1 and 2 workers) vs P3's in-process rate."""
    n, rounds = (200, 2) if quick else (600, 3)
    worker_counts = [1, 2] if has_workers_option() else [1]
    hooks = Webhooks()
    load_before = [round(x, 2) for x in os.getloadavg()]
    stores: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as directory:
        key_file = Path(directory) / "webhook-key.pem"
        key_file.write_bytes(hooks.private_pem())
        with SandboxProcess("--no-webhooks", "--signing-key", str(key_file)) as sandbox:
            args = (worker_counts, sandbox, hooks, n, rounds, directory)
            sqlite_url = f"sqlite:///{directory}/ledger.sqlite3"
            stores["sqlite"] = _store("sqlite", sqlite_url, *args)
            skipped = _postgres_reachable()
            if skipped:
                stores["postgres"] = None
            else:
                with _postgres_schema() as url:
                    stores["postgres"] = _store("postgres", url, *args)
    load_after = [round(x, 2) for x in os.getloadavg()]
    parts = []
    for name, label in (("sqlite", "SQLite"), ("postgres", "PostgreSQL")):
        store = stores[name]
        if store is None:
            parts.append(skipped)
            continue
        figures = []
        for workers in (1, 2):
            one = store.get(f"workers_{workers}")
            if one is None:
                figures.append(f"{workers} workers n/a (no --workers)")
                continue
            figures.append(
                f"{workers} worker{'s' * (workers > 1)} {one['per_s']:,.0f}/s = "
                f"{one['ratio']:.2f}x, p99 {one['p99_ms']:.0f} ms, server CPU "
                f"{one['server_cpu_us_per_callback']:,.0f} us/callback "
                f"({one['server_cpu_over_in_process']:.2f}x), sender CPU "
                f"{one['sender_cpu_share']:.0%} of a core"
            )
        parts.append(
            f"{label}: in-process {store['in_process_per_s']:,.0f}/s "
            f"({store['in_process_cpu_us_per_callback']:,.0f} us CPU/callback); "
            + "; ".join(figures)
        )
    # The rate and the CPU per callback, each as a share of the in-process loop's: on a busy
    # disk the server's 64 in flight hide fsync waits the sequential loop sits through, and
    # the CPU share is what stays of HTTP's own cost.
    ratios = [
        min(store["workers_1"]["ratio"], 1 / store["workers_1"]["server_cpu_over_in_process"])
        for store in stores.values()
        if store is not None
    ]
    complete = all(store["unpaid_after"] == 0 for store in stores.values() if store is not None)
    return {
        "id": "P7",
        "what": "callbacks over HTTP to payments serve (own process), 64 in flight, vs P3",
        "figure": " | ".join(parts),
        "value": min(ratios),
        "target": f">= {TARGET}x P3 in-process (rate and CPU), 1 worker, each store",
        "met": complete and min(ratios) >= TARGET,
        "details": {
            "callbacks_per_round": n,
            "rounds": rounds,
            "in_flight": IN_FLIGHT,
            "worker_counts": worker_counts,
            "server": "payments serve (uvicorn), own process; sender: aiohttp on uvloop",
            "placement": "not pinned: the server's workers and the sender share the machine",
            "load_average_before": load_before,
            "load_average_after": load_after,
            "cores": os.cpu_count(),
            "stores": stores,
        },
    }


# -- profiling the server ---------------------------------------------------------------------


def profile(store: str, workers: int, seconds: float, output: Path) -> int:
    """py-spy samples of one ``payments serve`` worker while the sender keeps it busy.

    Writes py-spy's collapsed stacks to ``output`` and prints the functions holding the most
    samples (inclusive), so that where a callback's server time goes can be read at once.
    """
    import shutil

    py_spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or "py-spy"
    hooks = Webhooks()
    with tempfile.TemporaryDirectory() as directory, ExitStack() as stack:
        key_file = Path(directory) / "webhook-key.pem"
        key_file.write_bytes(hooks.private_pem())
        sandbox = stack.enter_context(
            SandboxProcess("--no-webhooks", "--signing-key", str(key_file))
        )
        if store == "sqlite":
            url = f"sqlite:///{directory}/ledger.sqlite3"
        else:
            url = stack.enter_context(_postgres_schema())
        server = stack.enter_context(Server(workers, url, _server_env(sandbox), directory))
        callbacks = Callbacks(url, hooks, sandbox.info["certificate_serial"], "prof")
        stack.callback(callbacks.close)
        _over_http(server, callbacks.take(4 * IN_FLIGHT))  # warm-up
        rate = _over_http(server, callbacks.take(500))["per_s"]
        batch = callbacks.take(int(rate * seconds * 1.5) + IN_FLIGHT)
        target = (
            server.pid
            if workers == 1
            else max(
                server.cpu_seconds().items(),
                key=lambda item: item[1] if item[0] != server.pid else 0,
            )[0]
        )
        recorder = subprocess.Popen(  # noqa: S603 - py-spy from this environment
            [
                py_spy,
                "record",
                "--format",
                "raw",
                "--rate",
                "500",
                "--duration",
                str(int(seconds)),
                "--pid",
                str(target),
                "--output",
                str(output),
                "--nonblocking",
                "--gil",  # what holds the interpreter: the CPU the server spends
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        result = _over_http(server, batch)
        _, errors = recorder.communicate(timeout=seconds + STARTUP_TIMEOUT_S)
    if recorder.returncode != 0:
        print(errors, file=sys.stderr)
        return 1
    print(
        f"{store}, {workers} worker(s): {result['per_s']:,.0f}/s while profiled, server CPU "
        f"{result['server_cpu_us_per_callback']:,.0f} us/callback; samples in {output}"
    )
    print(summary(output.read_text(encoding="utf-8")))
    return 0


#: Where a sample's time goes: the innermost frame from one of these files decides.
STAGES: list[tuple[str, tuple[str, ...]]] = [
    ("ledger (SQL, commit)", ("payments_core/ledger/",)),
    ("provider: verify + parse", ("payments_binance/", "cryptography/")),
    ("facade", ("payments_core/facade.py", "payments_core/plugins.py", "payments_core/http")),
    ("logging (uvicorn's access log)", ("logging/",)),
    (
        "thread hand-off (to_thread)",
        ("asyncio/threads.py", "concurrent/futures/", "threading.py", "asyncio/futures.py"),
    ),
    ("callback app (payments_core.asgi)", ("payments_core/asgi.py",)),
    ("Starlette (middleware, routing, Request)", ("starlette/",)),
    ("uvicorn + httptools (parse, write)", ("uvicorn/", "httptools/")),
    ("event loop", ("asyncio/", "uvloop/")),
]


def stages(collapsed: str) -> dict[str, float]:
    """Each stage's share of py-spy's collapsed samples (see ``STAGES``)."""
    counts: dict[str, int] = {}
    total = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        total += count
        stage = "other"
        for frame in reversed(stack.split(";")):
            stage = next((name for name, files in STAGES if any(f in frame for f in files)), "")
            if stage:
                break
        counts[stage or "other"] = counts.get(stage or "other", 0) + count
    return {name: count / total for name, count in sorted(counts.items(), key=lambda i: -i[1])}


def summary(collapsed: str, top: int = 30) -> str:
    """The stages, then the functions in most samples of py-spy's collapsed stacks."""
    total = 0
    inclusive: dict[str, int] = {}
    own: dict[str, int] = {}
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = [re.sub(r":\d+\)$", ")", frame) for frame in stack.split(";")]
        total += count
        for frame in set(frames):
            inclusive[frame] = inclusive.get(frame, 0) + count
        own[frames[-1]] = own.get(frames[-1], 0) + count
    lines = [f"{total} samples holding the GIL; by stage:"]
    lines += [f"{share:6.1%} {name}" for name, share in stages(collapsed).items()]
    lines.append("inclusive % (own %) function")
    for frame, count in sorted(inclusive.items(), key=lambda item: -item[1])[:top]:
        lines.append(f"{count / total:6.1%} ({own.get(frame, 0) / total:6.1%}) {frame}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """``python -m benchmarks.http_callbacks``: P7 alone (it imports only the project's public
    names, so it runs on a checkout whose other benchmarks do not), or ``--profile``."""
    import argparse
    import json

    from .common import machine

    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.http_callbacks", description=__doc__
    )
    parser.add_argument("--quick", action="store_true", help="smaller rounds (a smoke run)")
    parser.add_argument(
        "--output", type=Path, default=Path(__file__).parent / "results" / "p7.json"
    )
    parser.add_argument("--profile", action="store_true", help="py-spy samples of the server")
    parser.add_argument("--store", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args(argv)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    if args.profile:
        return profile(args.store, args.workers, args.seconds, args.output.with_suffix(".txt"))
    box = machine()
    row = p7(args.quick)
    box["load_after"] = [round(x, 2) for x in os.getloadavg()]
    document = {"machine": box, "quick": args.quick, "results": [row]}
    args.output.write_text(json.dumps(document, indent=2, default=str) + "\n", encoding="utf-8")
    print(row["figure"])
    print(f"\nwritten: {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
