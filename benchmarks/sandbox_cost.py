"""Where one sandbox request's time goes: ``python -m benchmarks.sandbox_cost``.

Each stage of a v3 create-order request is timed on its own, in this process, over ``--n``
distinct signed requests (median of 5 passes, µs per request): the signature check, the JSON
parse, the field validation, storing the order (in memory, and in a SQLite state file with its
nonce record), the answer (links and envelope), and the whole ASGI app called directly. The HTTP
server's share is measured apart: uvicorn serving a trivial ASGI app in a child process, loaded
by aiohttp from this one, with h11 on asyncio's loop (what the sandbox used before) and with
httptools on uvloop (what it uses now); its CPU time per request is read with psutil.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import psutil

from payments_binance import protocol
from payments_binance.sandbox import Sandbox, SandboxConfig, validation
from payments_binance.sandbox.envelope import success
from payments_binance.sandbox.shared import SharedOrderBook
from payments_binance.sandbox.state import OrderBook

from .sandbox_load import create_body, signed

KEY, SECRET = "cost-key", "cost-secret-0123456789"
BASE = "http://127.0.0.1:1"

_TRIVIAL_SERVER = """
import socket, sys, uvicorn
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    body = b'{"status":"SUCCESS","code":"000000","data":{},"errorMessage":null}'
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})
sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
sock.bind(("127.0.0.1", 0)); sock.listen(2048)
print(sock.getsockname()[1], flush=True)
uvicorn.Server(uvicorn.Config(app, http=sys.argv[1], loop=sys.argv[2], lifespan="off",
    log_level="warning", access_log=False, ws="none")).run(sockets=[sock])
"""


def per_request_us(n: int, run: Callable[[int], object], passes: int = 5) -> float:
    """Median over ``passes`` of the µs per call of ``run(i)`` for i in range(n)."""
    timings = []
    for pass_number in range(passes):
        offset = pass_number * n
        started = time.perf_counter()
        for i in range(n):
            run(offset + i)
        timings.append((time.perf_counter() - started) / n * 1e6)
    return statistics.median(timings)


def requests(count: int, start: int = 0) -> list[tuple[bytes, dict[str, str]]]:
    """Distinct signed create requests (header names lowercased, as ASGI gives them)."""
    out = []
    for i in range(start, start + count):
        body = create_body(f"C{os.getpid()}x{i}")
        headers = signed(KEY, SECRET, body, f"{i:032d}")
        out.append((body, {name.lower(): value for name, value in headers.items()}))
    return out


def stages(n: int, state_dir: str) -> dict[str, float]:
    """µs per request of each stage of the app, and of the whole app called directly."""
    passes = 5
    signed_requests = requests(n * passes)
    config = SandboxConfig(api_key=KEY, api_secret=SECRET, deliver_webhooks=False, base_url=BASE)
    sandbox = Sandbox(config)
    parsed = [validation.parse_body(body) for body, _ in signed_requests]
    news = [validation.create_order(b, api_version="v3", config=config, now=0) for b in parsed]
    memory, shared = OrderBook(), SharedOrderBook(str(Path(state_dir) / "cost.db"))
    store: dict[str, Callable[[int], object]] = {
        "memory": lambda i: memory.create(
            news[i], merchant_key=KEY, merchant_id=1, now=0, default_expire_ms=10**9
        ),
        "sqlite": lambda i: shared.create(
            news[i], merchant_key=KEY, merchant_id=1, now=0, default_expire_ms=10**9
        ),
    }
    figures = {
        "signature and headers (HMAC-SHA512, nonce)": per_request_us(
            n,
            lambda i: sandbox.authenticator.authenticate(
                signed_requests[i][1], signed_requests[i][0]
            ),
        ),
        "JSON parse (exact decimals)": per_request_us(
            n, lambda i: validation.parse_body(signed_requests[i][0])
        ),
        "field validation": per_request_us(
            n,
            lambda i: validation.create_order(parsed[i], api_version="v3", config=config, now=0),
        ),
        "store the order, in memory": per_request_us(n, store["memory"]),
        "store the order, SQLite state": per_request_us(n, store["sqlite"]),
        "record the nonce, SQLite state": per_request_us(
            n, lambda i: shared.first_use(KEY, f"cost{i}", 0, 0)
        ),
    }
    created = list(memory.orders.values())
    figures["answer (links, envelope JSON)"] = per_request_us(
        n, lambda i: success(create_answer(created[i % len(created)]))
    )
    fresh = requests(n * passes, start=n * passes)
    figures["whole ASGI app, called directly"] = asyncio.run(_app_us(sandbox, fresh, n, passes))
    shared.disconnect()
    return figures


def create_answer(order: Any) -> dict[str, object]:
    """The create answer's ``data`` for a stored order, as the endpoint builds it."""
    from payments_binance.sandbox import links

    return {
        "prepayId": order.prepay_id,
        "terminalType": order.request.terminal_type,
        "expireTime": order.expire_time,
        "qrcodeLink": links.qrcode_link(BASE, order),
        "qrContent": links.checkout_url(BASE, order),
        "checkoutUrl": links.checkout_url(BASE, order),
        "deeplink": links.deeplink(BASE, order),
        "universalUrl": links.universal_url(BASE, order),
        "currency": order.request.currency,
        "totalFee": order.request.amount,
    }


async def _app_us(
    sandbox: Sandbox, signed_requests: list[tuple[bytes, dict[str, str]]], n: int, passes: int
) -> float:
    async def call(body: bytes, headers: dict[str, str]) -> None:
        scope = {
            "type": "http",
            "method": "POST",
            "path": protocol.PATH_CREATE_ORDER_V3,
            "headers": [(k.encode(), v.encode()) for k, v in headers.items()],
            "query_string": b"",
            "scheme": "http",
            "server": ("127.0.0.1", 1),
        }

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start" and message["status"] != 200:
                raise RuntimeError(f"sandbox answered {message['status']}")

        await sandbox.app(scope, receive, send)

    async with sandbox:
        timings = []
        for pass_number in range(passes):
            batch = signed_requests[pass_number * n : (pass_number + 1) * n]
            started = time.perf_counter()
            for body, headers in batch:
                await call(body, headers)
            timings.append((time.perf_counter() - started) / n * 1e6)
    return statistics.median(timings)


async def _load(port: int, n: int, concurrency: int) -> None:
    url = f"http://127.0.0.1:{port}/"
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        queue = iter(range(n))

        async def worker() -> None:
            for _ in queue:
                async with session.post(url, data=b"{}") as response:
                    await response.read()

        await asyncio.gather(*(worker() for _ in range(concurrency)))


def server_us(http: str, loop: str, n: int, rounds: int = 3) -> tuple[float, float]:
    """(CPU µs per request, requests/s) of uvicorn serving a trivial app with ``http``/``loop``."""
    command = [sys.executable, "-c", _TRIVIAL_SERVER, http, loop]
    child = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)  # noqa: S603
    try:
        assert child.stdout is not None
        port = int(child.stdout.readline())
        process = psutil.Process(child.pid)
        asyncio.run(_load(port, 500, 64))  # warm-up
        cpu, rates = [], []
        for _ in range(rounds):
            before = sum(process.cpu_times()[:2])
            started = time.perf_counter()
            asyncio.run(_load(port, n, 64))
            rates.append(n / (time.perf_counter() - started))
            cpu.append((sum(process.cpu_times()[:2]) - before) / n * 1e6)
    finally:
        child.terminate()
        child.wait()
    return statistics.median(cpu), statistics.median(rates)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sandbox_cost", description=__doc__)
    parser.add_argument("--n", type=int, default=2_000, help="requests per pass")
    args = parser.parse_args(argv)
    load = [round(x, 2) for x in os.getloadavg()]
    with tempfile.TemporaryDirectory() as state_dir:
        figures = {name: round(us, 1) for name, us in stages(args.n, state_dir).items()}
    servers = {}
    for http, loop in (("h11", "asyncio"), ("httptools", "uvloop")):
        cpu, rate = server_us(http, loop, args.n * 2)
        servers[f"uvicorn {http} on {loop}, trivial app"] = {
            "cpu_us_per_request": round(cpu, 1),
            "requests_per_s": round(rate),
        }
    result = {
        "load_average_before": load,
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "app_stages_us": figures,
        "http_server": servers,
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
