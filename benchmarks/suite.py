"""P1 to P7 (docs/performance.md). Each function returns one row of the results table."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import psutil
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from payments_binance import webhooks
from payments_binance.sandbox import SandboxProcess
from payments_core import (
    CallbackRequest,
    CallbackResult,
    HttpRequest,
    HttpResponse,
    Money,
    OrderRequest,
    PaymentEvent,
    Payments,
    PaymentStatus,
)
from payments_core.ledger import open_ledger
from payments_core.transport import drive

from .common import (
    References,
    Webhooks,
    apply_rate,
    callback_facade,
    epoch_ms,
    facade,
    interleave,
    median,
    timed,
)
from .growth import _postgres_schema, growth, postgres_growth
from .http_callbacks import p7
from .peer import clients, peer, pinned, server_pids
from .postgres_workers import workers

Row = dict[str, Any]
CALLBACK_URL = "https://shop.example/callbacks/binance"


def order(reference: str) -> OrderRequest:
    return OrderRequest(reference=reference, price=Money("1.00", "USD"), callback_url=CALLBACK_URL)


def presigned(payments: Payments, references: list[str]) -> list[HttpRequest]:
    """The exact signed create requests the provider would send for ``references``."""
    hooks = payments.provider("binance")
    requests = []
    for reference in references:
        operation = hooks.create_order(order(reference))
        requests.append(next(operation))
        operation.close()
    return requests


@contextmanager
def sandbox_process(*args: str) -> Iterator[SandboxProcess]:
    with SandboxProcess("--no-webhooks", *args) as process:
        yield process


def _credentials(process: SandboxProcess) -> tuple[str, str, str]:
    return process.base_url, process.info["api_key"], process.info["api_secret"]


# -- P1 ---------------------------------------------------------------------------------------


def p1(quick: bool) -> Row:
    """create_order end to end vs a bare httpx POST of the same pre-signed bytes."""
    n = 100 if quick else 400
    stages = _p1_stages(2_000 if quick else 10_000)
    with sandbox_process() as process, pinned(server_pids("payments_binance.sandbox")) as where:
        base_url, key, secret = _credentials(process)
        payments = facade(base_url, key, secret)
        bare = httpx.Client(trust_env=False, timeout=10)
        refs = References("p1")
        try:
            for reference in refs.take(30):  # warm both connections
                payments.create_order(order(reference))
            for request in presigned(payments, refs.take(30)):
                bare.post(request.url, content=request.content, headers=request.headers)
            ours: list[float] = []
            base: list[float] = []
            for _ in range(0, n, 50):  # sign shortly before sending: 60 s window
                requests = presigned(payments, refs.take(50))
                references = refs.take(50)
                for reference, request in zip(references, requests, strict=True):
                    ours.append(timed(lambda r=reference: payments.create_order(order(r))))
                    base.append(
                        timed(
                            lambda q=request: bare.post(
                                q.url, content=q.content, headers=q.headers
                            ).raise_for_status()
                        )
                    )
        finally:
            payments.close()
            bare.close()
    overhead = median(ours) / median(base) - 1
    return {
        "id": "P1",
        "what": "create_order end to end vs bare httpx POST of the same signed bytes",
        "figure": f"median overhead {overhead:+.1%} "
        f"({median(ours) * 1e3:.2f} ms vs {median(base) * 1e3:.2f} ms); in-process stages (us): "
        + ", ".join(f"{name} {us:.1f}" for name, us in stages.items()),
        "value": overhead,
        "target": "overhead <= 15%",
        "met": overhead <= 0.15,
        "details": {
            "samples": len(ours),
            "median_ms": median(ours) * 1e3,
            "bare_median_ms": median(base) * 1e3,
            "p90_ms": statistics.quantiles(ours, n=10)[-1] * 1e3,
            "bare_p90_ms": statistics.quantiles(base, n=10)[-1] * 1e3,
            "placement": where,
            "server": "payments sandbox (stateful, one process)",
            "stages_us": stages,
        },
    }


def _p1_stages(n: int) -> dict[str, float]:
    """Where a create's client CPU goes, in-process over an httpx ``MockTransport`` that
    answers the canned create answer: each stage's median microseconds, interleaved.

    ``httpx post`` is the floor's own CPU (the bare client over the same mock transport);
    ``library`` is ours minus it, split into the caller's ``OrderRequest``, building and
    signing the request (pluggy's call, trade number, body, nonce, HMAC), reading the answer
    (envelope, create result, ``Order``) and the rest (facade, retry, transport wrapper).
    """
    from .canned import API_KEY, API_SECRET, _created

    answer = _created("https://canned.example", "STAGE").split(b"\r\n\r\n", 1)[1]
    mock = httpx.MockTransport(lambda request: httpx.Response(200, content=answer))
    payments = facade("https://canned.example", API_KEY, API_SECRET, transport=mock)
    bare = httpx.Client(transport=mock, trust_env=False)
    hooks = payments.provider("binance")
    refs = References("stage")
    signed = presigned(payments, refs.take(1))[0]
    response = HttpResponse(200, {"content-type": "application/json"}, answer)

    def batch(step: Callable[[str], object]) -> Callable[[], float]:
        def run() -> float:
            names = refs.take(200)
            started = time.perf_counter()
            for name in names:
                step(name)
            return (time.perf_counter() - started) / len(names)

        return run

    def build(name: str) -> None:
        operation = hooks.create_order(order(name))
        assert operation is not None
        next(operation)
        operation.close()

    def build_and_read(name: str) -> None:
        operation = hooks.create_order(order(name))
        assert operation is not None
        next(operation)
        try:
            operation.send(response)
        except StopIteration:
            return

    steps = {
        "ours": batch(lambda name: payments.create_order(order(name))),
        "httpx post": batch(
            lambda name: bare.post(signed.url, content=signed.content, headers=signed.headers)
        ),
        "OrderRequest": batch(order),
        "build": batch(build),
        "build+read": batch(build_and_read),
    }
    try:
        for step in steps.values():
            step()
        rounds = max(3, n // 200)
        per = {
            name: median(values) * 1e6
            for name, values in zip(steps, interleave(rounds, *steps.values()), strict=True)
        }
    finally:
        payments.close()
        bare.close()
    library = per["ours"] - per["httpx post"]
    return {
        "httpx post (floor)": per["httpx post"],
        "library": library,
        "OrderRequest": per["OrderRequest"],
        "build + sign": per["build"] - per["OrderRequest"],
        "read answer": per["build+read"] - per["build"],
        "facade + retry + transport": library - per["build+read"],
    }


# -- P2 ---------------------------------------------------------------------------------------


def p2(quick: bool) -> Row:
    """Verified callbacks (verify + parse, no ledger) vs the floor: RSA verify + one JSON parse.

    Besides the whole, each stage is timed on its own, interleaved with the rest: the facade
    (``CallbackRequest``, pluggy's call, running the operation), the checks before the verify
    (size, headers, timestamp, signature decoding, the key), the verify, and the reading of the
    verified body (its parse and the event).
    """
    n, rounds = (200, 5) if quick else (500, 15)
    moment = datetime.now(UTC).replace(microsecond=0)
    hooks = Webhooks()
    payments = callback_facade(hooks, moment)
    callbacks = [
        hooks.callback(str(10**17 + i), f"P2TRADE{i:08d}", now_ms=epoch_ms(moment))
        for i in range(n)
    ]
    public_key = hooks.key.public_key()
    pkcs1, sha256 = padding.PKCS1v15(), hashes.SHA256()
    operation_of = payments.provider("binance").handle_callback
    requests = [CallbackRequest(headers, body) for headers, body, _, _ in callbacks]

    def loop(step: Callable[[tuple[dict[str, str], bytes, bytes, bytes]], object]) -> float:
        started = time.perf_counter()
        for callback in callbacks:
            step(callback)
        return time.perf_counter() - started

    def ours() -> float:
        return loop(lambda c: payments.handle_callback("binance", c[0], c[1]))

    def floor() -> float:
        return loop(lambda c: (public_key.verify(c[2], c[3], pkcs1, sha256), json.loads(c[1])))

    def rsa_only() -> float:
        return loop(lambda c: public_key.verify(c[2], c[3], pkcs1, sha256))

    def json_only() -> float:
        return loop(lambda c: json.loads(c[1]))

    def design_floor() -> float:
        # What the API promises, built directly after the floor: the nested data parsed too,
        # and the CallbackRequest, Money, PaymentEvent and CallbackResult the hooks exchange.
        def step(c: tuple[dict[str, str], bytes, bytes, bytes]) -> object:
            public_key.verify(c[2], c[3], pkcs1, sha256)
            request = CallbackRequest(c[0], c[1])
            body = json.loads(request.body)
            data = json.loads(body["data"])
            event = PaymentEvent(
                provider="binance",
                event_id=f"binance:{body['bizIdStr']}:{body['bizStatus']}",
                status=PaymentStatus.PAID,
                provider_order_id=body["bizIdStr"],
                provider_reference=data["merchantTradeNo"],
                amount=Money(data["totalFee"], data["currency"]),
                transaction_id=data["transactionId"],
            )
            return CallbackResult(event, webhooks.ACK)

        return loop(step)

    def operation() -> float:  # the provider's operation alone: no CallbackRequest, no pluggy
        started = time.perf_counter()
        for request in requests:
            drive(operation_of(request), _no_requests)
        return time.perf_counter() - started

    def reading() -> float:
        return loop(lambda c: webhooks._interpret(c[1], "binance"))

    def nothing() -> float:  # the loop and the lambda: subtracted from every stage
        return loop(lambda c: None)

    steps = {
        "ours": ours,
        "floor": floor,
        "design floor": design_floor,
        "rsa": rsa_only,
        "json": json_only,
        "operation": operation,
        "reading": reading,
        "loop": nothing,
    }
    try:
        ours()  # fetches the certificates once
        timings = dict(zip(steps, interleave(rounds, *steps.values()), strict=True))
    finally:
        payments.close()
    per = {name: median(values) / n * 1e6 for name, values in timings.items()}
    loop_us = per["loop"]
    stages = {
        "facade (CallbackRequest, pluggy, drive)": per["ours"] - per["operation"],
        "checks before the verify": per["operation"] - per["rsa"] - per["reading"] + loop_us,
        "RSA verify": per["rsa"] - loop_us,
        "reading: parse + event": per["reading"] - loop_us,
    }
    ratio = median(timings["ours"]) / median(timings["floor"])
    over_rsa = median(timings["ours"]) / median(timings["rsa"])
    return {
        "id": "P2",
        "what": "verified callbacks/s (verify + parse) vs RSA verify + one JSON parse",
        "figure": f"{ratio:.2f}x the floor ({per['ours']:.1f} us vs {per['floor']:.1f} us; "
        f"{over_rsa:.2f}x RSA alone; {per['ours'] / per['design floor']:.2f}x the models built "
        f"directly, {per['design floor']:.1f} us); stages: "
        + ", ".join(f"{name} {us:.1f}" for name, us in stages.items()),
        "value": ratio,
        "target": "<= 1.5x RSA verify + JSON parse",
        "met": ratio <= 1.5,
        "details": {
            "callbacks_per_s": n / median(timings["ours"]),
            "floor_per_s": n / median(timings["floor"]),
            "per_callback_us": per["ours"],
            "floor_us": per["floor"],
            "design_floor_us": per["design floor"],
            "bare_rsa_us": per["rsa"],
            "bare_json_us": per["json"],
            "over_rsa_alone": over_rsa,
            "stages_us": stages,
            "loop_us": loop_us,
        },
    }


def _no_requests(request: HttpRequest) -> HttpResponse:
    raise AssertionError(f"a cached certificate needs no request, got {request.url}")


# -- P3 ---------------------------------------------------------------------------------------


def _postgres_url() -> str:
    return os.environ.get("PAYMENTS_TEST_POSTGRES_URL", "postgresql://127.0.0.1:5432/test")


def p3(quick: bool) -> Row:
    """Callbacks applied per second: SQLite (WAL) and PostgreSQL, rounds alternating, so that
    a busy stretch of the shared machine lands on both and their ratio holds."""
    n, rounds = (500, 2) if quick else (1_000, 3)
    fresh = f"{os.getpid()}{int(time.time())}"
    details: dict[str, Any] = {"callbacks": n, "rounds": rounds}
    postgres_note = ""
    try:
        import psycopg

        psycopg.connect(_postgres_url(), connect_timeout=3).close()
    except Exception as exc:  # any failure means: not reachable, skip it
        postgres_note = f"PostgreSQL skipped: {type(exc).__name__}"
    sqlite_rounds: list[dict[str, float]] = []
    postgres_rounds: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory() as directory, ExitStack() as stack:
        # A schema of its own: the shared one may be older.
        postgres = None if postgres_note else stack.enter_context(_postgres_schema())
        for index in range(rounds):
            url = f"sqlite:///{directory}/ledger.sqlite3"
            sqlite_rounds.append(apply_rate(url, n, f"{fresh}s{index}"))
            if postgres is not None:
                postgres_rounds.append(apply_rate(postgres, n, f"{fresh}p{index}"))
    sqlite = _median_round(sqlite_rounds)
    details["sqlite"] = sqlite | {"rounds": sqlite_rounds}
    ratio = None
    if postgres_rounds:
        pg = _median_round(postgres_rounds)
        details["postgres"] = pg | {"rounds": postgres_rounds}
        ratio = details["postgres_over_sqlite"] = pg["per_s"] / sqlite["per_s"]
        postgres_note = f"PostgreSQL {pg['per_s']:,.0f}/s = {ratio:.2f}x SQLite"
    applied = all(r["applied"] == n for r in sqlite_rounds + postgres_rounds)
    return {
        "id": "P3",
        "what": "callbacks applied/s (verify + parse + one ledger transaction)",
        "figure": f"SQLite WAL {sqlite['per_s']:,.0f}/s; {postgres_note}",
        "value": sqlite["per_s"],
        "target": ">= 1,000/s SQLite on 2 cores; PostgreSQL >= 0.6x SQLite",
        "met": sqlite["per_s"] >= 1_000 and applied and (ratio is None or ratio >= 0.6),
        "details": details,
    }


def _median_round(rounds: list[dict[str, float]]) -> dict[str, float]:
    """Each figure's median over the rounds."""
    return {key: median([r[key] for r in rounds]) for key in rounds[0]}


# -- P4 ---------------------------------------------------------------------------------------

IN_FLIGHT = 64


async def _gather_limited(coroutines: list[Any], limit: int) -> None:
    gate = asyncio.Semaphore(limit)

    async def one(coroutine: Any) -> None:
        async with gate:
            await coroutine

    await asyncio.gather(*(one(c) for c in coroutines))


def p4(quick: bool) -> Row:
    """64 in flight through the async API vs sequential, and vs bare aiohttp (same bytes)."""
    rounds, seq_n, conc_n = (3, 100, 400) if quick else (5, 200, 1_000)
    with sandbox_process() as process, pinned(server_pids("payments_binance.sandbox")) as where:
        base_url, key, secret = _credentials(process)
        row = asyncio.run(_p4(base_url, key, secret, rounds, seq_n, conc_n))
    row["details"]["placement"] = where
    row["details"]["server"] = "payments sandbox (stateful, one process)"
    return row


async def _p4(base_url: str, key: str, secret: str, rounds: int, seq_n: int, conc_n: int) -> Row:
    ours = facade(base_url, key, secret)  # async_http="auto": aiohttp when installed
    with_httpx = facade(base_url, key, secret, async_http="httpx")
    refs = References("p4")
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100))
    try:

        async def sequential(payments: Payments, n: int = seq_n) -> float:
            references = refs.take(n)
            started = time.perf_counter()
            for reference in references:
                await payments.create_order_async(order(reference))
            return n / (time.perf_counter() - started)

        async def concurrent(payments: Payments, n: int = conc_n) -> float:
            references = refs.take(n)
            started = time.perf_counter()
            await _gather_limited(
                [payments.create_order_async(order(r)) for r in references], IN_FLIGHT
            )
            return n / (time.perf_counter() - started)

        async def bare() -> float:
            requests = presigned(ours, refs.take(conc_n))

            async def post(request: HttpRequest) -> None:
                async with session.post(
                    request.url, data=request.content, headers=dict(request.headers)
                ) as response:
                    await response.read()
                    assert response.status == 200

            started = time.perf_counter()
            await _gather_limited([post(r) for r in requests], IN_FLIGHT)
            return conc_n / (time.perf_counter() - started)

        await concurrent(ours, 200)  # warm-up: connections, certificates of nothing, caches
        await concurrent(with_httpx, 200)
        await bare()
        samples: dict[str, list[float]] = {
            "seq": [],
            "c64": [],
            "bare": [],
            "httpx": [],
            "httpx_seq": [],
        }
        for _ in range(rounds):
            samples["seq"].append(await sequential(ours))
            samples["c64"].append(await concurrent(ours))
            samples["bare"].append(await bare())
            samples["httpx"].append(await concurrent(with_httpx, conc_n // 2))
            samples["httpx_seq"].append(await sequential(with_httpx, seq_n // 2))
    finally:
        await session.close()
        await ours.aclose()
        await with_httpx.aclose()
    seq, c64, bare_rate, httpx_rate, httpx_seq = (
        median(samples[k]) for k in ("seq", "c64", "bare", "httpx", "httpx_seq")
    )
    speedup = c64 / seq
    gap = bare_rate / c64
    return {
        "id": "P4",
        "what": "64 in flight via create_order_async, sandbox in its own process",
        "figure": f"{c64:,.0f}/s = {speedup:.2f}x sequential ({seq:,.0f}/s); the sandbox's "
        f"ceiling (bare aiohttp / our sequential) {bare_rate / seq:.2f}x; bare aiohttp "
        f"{bare_rate:,.0f}/s = {gap:.2f}x ours; httpx backend {httpx_rate:,.0f}/s = "
        f"{httpx_rate / httpx_seq:.2f}x its sequential ({httpx_seq:,.0f}/s)",
        "value": speedup,
        "target": ">= 3x sequential; bare aiohttp <= 2x ours",
        "met": speedup >= 3 and gap <= 2,
        "details": {
            "sequential_per_s": seq,
            "concurrent_per_s": c64,
            "bare_aiohttp_per_s": bare_rate,
            "httpx_backend_concurrent_per_s": httpx_rate,
            "httpx_backend_sequential_per_s": httpx_seq,
            "httpx_backend_speedup": httpx_rate / httpx_seq,
            "speedup": speedup,
            "met_speedup": speedup >= 3,
            "bare_over_ours": gap,
            "ceiling_bare_over_sequential": bare_rate / seq,
            "met_bare": gap <= 2,
            "samples": samples,
        },
    }


# -- P5 ---------------------------------------------------------------------------------------


def _import_us(python: str) -> int:
    done = subprocess.run(  # noqa: S603 - our interpreter, fixed arguments
        [python, "-X", "importtime", "-c", "import payments_core"],
        capture_output=True,
        text=True,
        check=True,
    )
    for line in reversed(done.stderr.splitlines()):
        match = re.match(r"import time:\s+\d+\s+\|\s+(\d+)\s+\|\s*payments_core$", line)
        if match:
            return int(match.group(1))
    raise RuntimeError("payments_core not in the -X importtime output")


def _wall(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, capture_output=True, check=True)  # noqa: S603
    return time.perf_counter() - started


def p5(quick: bool) -> Row:
    """Import time of payments_core and wall time of ``payments --help`` (medians)."""
    runs = 5 if quick else 11
    python = sys.executable
    cli = shutil.which("payments", path=str(Path(python).parent)) or "payments"
    imports, helps, bare = [], [], []
    for _ in range(runs):  # interleaved with the bare interpreter start, for scale
        imports.append(_import_us(python) / 1e3)
        helps.append(_wall([cli, "--help"]) * 1e3)
        bare.append(_wall([python, "-c", "pass"]) * 1e3)
    imp, hlp, start = median(imports), median(helps), median(bare)
    return {
        "id": "P5",
        "what": "import payments_core (-X importtime) and `payments --help` wall time",
        "figure": f"import {imp:.0f} ms; --help {hlp:.0f} ms (bare interpreter {start:.0f} ms)",
        "value": imp,
        "target": "import <= 150 ms; --help <= 300 ms",
        "met": imp <= 150 and hlp <= 300,
        "details": {
            "import_ms": imports,
            "help_ms": helps,
            "bare_python_ms": bare,
            "import_median_ms": imp,
            "help_median_ms": hlp,
        },
    }


# -- P6 ---------------------------------------------------------------------------------------


def p6(quick: bool) -> Row:
    """Peak RSS over 10,000 orders created and settled in one process, and the RSS slope."""
    n, warm, step = (2_000, 500, 250) if quick else (10_000, 1_000, 500)
    hooks = Webhooks()
    me = psutil.Process()
    with tempfile.TemporaryDirectory() as directory:
        key_file = Path(directory) / "webhook-key.pem"
        key_file.write_bytes(hooks.private_pem())
        with sandbox_process("--signing-key", str(key_file)) as process:
            base_url, key, secret = _credentials(process)
            serial = process.info["certificate_serial"]
            ledger = open_ledger(f"sqlite:///{directory}/ledger.sqlite3")
            payments = facade(base_url, key, secret, ledger=ledger)
            refs = References("p6")
            points: list[tuple[int, int]] = []
            settled = 0
            started = time.perf_counter()
            try:
                for i, reference in enumerate(refs.take(n), start=1):
                    created = payments.create_order(order(reference))
                    headers, body, _, _ = hooks.callback(
                        created.provider_order_id,
                        created.provider_reference,
                        now_ms=int(time.time() * 1000),
                        serial=serial,
                    )
                    outcome = payments.apply_callback("binance", headers, body)
                    settled += bool(outcome.result and outcome.result.applied)
                    if i % step == 0:
                        points.append((i, me.memory_info().rss))
            finally:
                payments.close()
            elapsed = time.perf_counter() - started
    after = [(i, rss) for i, rss in points if i > warm]
    xs = [float(i) for i, _ in after]
    ys = [float(rss) for _, rss in after]
    slope = statistics.linear_regression(xs, ys).slope if len(after) >= 2 else float("nan")
    peak = _peak_rss()
    growth = ys[-1] - ys[0] if ys else 0.0
    return {
        "id": "P6",
        "what": f"{n:,} orders created and settled (ledger applied) in one process",
        "figure": f"peak RSS {peak / 2**20:.0f} MiB; slope after warm-up {slope:+.0f} B/order "
        f"({growth / 2**20:+.1f} MiB over {len(after) and int(xs[-1] - xs[0]):,} orders)",
        "value": slope,
        "target": "peak reported; no growth per order after warm-up",
        "met": settled == n and slope < 1_024,  # under 1 KiB/order: noise, not a leak
        "details": {
            "orders": n,
            "settled": settled,
            "seconds": elapsed,
            "peak_rss_bytes": peak,
            "rss_points": points,
            "slope_bytes_per_order": slope,
        },
    }


def _peak_rss() -> int:
    import resource

    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


BENCHMARKS = {
    "P1": p1,
    "P2": p2,
    "P3": p3,
    "P4": p4,
    "P5": p5,
    "P6": p6,
    "P7": p7,
    "PEER": peer,
    "CLIENTS": clients,
    "GROWTH": growth,
    "GROWTH_PG": postgres_growth,
    "WORKERS": workers,
}
#: What runs without --only: GROWTH takes minutes and runs with --growth; WORKERS (several
#: servers on PostgreSQL) runs when asked for.
DEFAULT = [name for name in BENCHMARKS if name not in {"GROWTH", "GROWTH_PG", "WORKERS"}]
