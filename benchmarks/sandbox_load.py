"""Requests per second the sandbox serves: ``python -m benchmarks.sandbox_load [--workers 1,2]``.

The sandbox runs in its own process(es) (``SandboxProcess``, webhooks off); this process is the
load client. It signs every create-order request before the clock starts (distinct trade numbers
and nonces, fresh timestamps), then posts them with aiohttp, ``--concurrency`` in flight, so what
is timed is the sandbox's work plus a lean client's. Each worker count is measured in
alternating rounds (1, N, 1, N, ...) so that a busy patch of the shared machine lands on both;
the median round is reported with the load average, and so is the CPU time the sandbox
process(es) spent per order (psutil, all workers included), which a busy machine changes less.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import itertools
import json
import os
import statistics
import time
from collections.abc import Sequence
from typing import Any

import aiohttp
import psutil

from payments_binance import protocol
from payments_binance.sandbox import SandboxProcess

_trade_numbers = itertools.count()
_run = f"{os.getpid()}{int(time.time())}"


def create_body(trade_no: str) -> bytes:
    """A v3 create-order body of 1.00 USDT."""
    return json.dumps(
        {
            "env": {"terminalType": "WEB"},
            "merchantTradeNo": trade_no,
            "orderAmount": "1.00",
            "currency": "USDT",
            "description": "Booking fee",
            "goodsDetails": [
                {
                    "goodsType": "02",
                    "goodsCategory": "Z000",
                    "referenceGoodsId": "fee",
                    "goodsName": "Booking fee",
                }
            ],
        },
        separators=(",", ":"),
    ).encode()


def signed(key: str, secret: str, body: bytes, nonce: str) -> dict[str, str]:
    """The Binance signing headers for ``body``."""
    timestamp = str(time.time_ns() // 1_000_000)
    payload = f"{timestamp}\n{nonce}\n".encode() + body + b"\n"
    signature = hmac.new(secret.encode(), payload, hashlib.sha512).hexdigest().upper()
    return {
        "content-type": "application/json",
        protocol.HEADER_TIMESTAMP: timestamp,
        protocol.HEADER_NONCE: nonce,
        protocol.HEADER_CERTIFICATE_SN: key,
        protocol.HEADER_SIGNATURE: signature,
    }


async def blast(
    session: aiohttp.ClientSession, url: str, key: str, secret: str, n: int, concurrency: int
) -> float:
    """Create ``n`` orders with ``concurrency`` in flight; orders per second."""
    requests = []
    for _ in range(n):
        number = next(_trade_numbers)
        body = create_body(f"L{_run}x{number}")
        requests.append((body, signed(key, secret, body, f"{_run}{number:032d}"[-32:])))
    queue = iter(requests)

    async def worker() -> None:
        for body, headers in queue:
            async with session.post(url, data=body, headers=headers) as response:
                answer = await response.read()
                if response.status != 200 or b'"000000"' not in answer:
                    raise RuntimeError(f"sandbox answered {response.status}: {answer[:200]!r}")

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return n / (time.perf_counter() - started)


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of a process and all its descendants so far."""
    root = psutil.Process(pid)
    total = 0.0
    for process in (root, *root.children(recursive=True)):
        times = process.cpu_times()
        total += times.user + times.system
    return total


async def measure(
    processes: Sequence[SandboxProcess], n: int, concurrency: int, rounds: int
) -> tuple[list[list[float]], list[list[float]]]:
    """Alternating rounds over the running sandboxes: the rates of each, and its CPU µs/order."""
    rates: list[list[float]] = [[] for _ in processes]
    cpu_us: list[list[float]] = [[] for _ in processes]
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        for process in processes:  # warm-up: connections, workers, caches
            await blast(session, *_target(process), min(n, 500), concurrency)
        for _ in range(rounds):
            for index, process in enumerate(processes):
                before = cpu_seconds(process.pid)
                rates[index].append(await blast(session, *_target(process), n, concurrency))
                cpu_us[index].append((cpu_seconds(process.pid) - before) / n * 1e6)
    return rates, cpu_us


def _target(process: SandboxProcess) -> tuple[str, str, str]:
    url = process.base_url + protocol.PATH_CREATE_ORDER_V3
    return url, process.info["api_key"], process.info["api_secret"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sandbox_load", description=__doc__)
    parser.add_argument("--workers", default="1,2", help="worker counts to compare, e.g. 1,2,4")
    parser.add_argument("--n", type=int, default=3_000, help="orders per round")
    parser.add_argument("--concurrency", type=int, default=64, help="requests in flight")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--state", default=None, help="--state for every sandbox (file or URL)")
    args = parser.parse_args(argv)
    counts = [int(part) for part in args.workers.split(",")]
    load_before = os.getloadavg()
    processes = []
    for workers in counts:
        processes.append(SandboxProcess("--no-webhooks", workers=workers, state=args.state))
    try:
        for process in processes:
            process.__enter__()
        samples, cpu_us = asyncio.run(measure(processes, args.n, args.concurrency, args.rounds))
    finally:
        for process in processes:
            process.__exit__(None, None, None)
    result: dict[str, Any] = {
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "concurrency": args.concurrency,
        "orders_per_round": args.n,
    }
    base = statistics.median(samples[0])
    for workers, rates, cpu in zip(counts, samples, cpu_us, strict=True):
        median = statistics.median(rates)
        result[f"workers={workers}"] = {
            "median_per_s": round(median),
            "ratio_to_first": round(median / base, 2),
            "sandbox_cpu_us_per_order": round(statistics.median(cpu)),
            "rounds": [round(rate) for rate in rates],
        }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
