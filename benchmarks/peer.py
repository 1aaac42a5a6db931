"""Side by side with the peer: Binance's own ``binance-pay-connector`` doing the same work.

The connector (PyPI ``binance-pay-connector`` 1.0.0, the ``bench`` extra) is blocking
(``requests``); it runs its calls one after another and, for concurrency, from threads. Ours
runs them one after another through the blocking API and concurrently through the async API
(aiohttp), and also from threads through the blocking API. The work is one order created and
then queried by its trade number: ``create_order`` + ``query_order`` for ours,
``new_order`` + ``get_order`` for the connector, each signing its own requests.

Two servers, each in its own process, pinned to the other core when there are two
(:func:`pinned`):

- ``PEER``: the sandbox (``payments sandbox``), stateful, as issue 13 asks;
- ``CLIENTS``: the canned-answer server (:mod:`benchmarks.canned`), whose CPU stays low, so
  the ratios are the clients' own; its CPU share is measured (psutil) and recorded.

The connector's ``API`` object keeps the four signed headers in its ``requests.Session``'s
shared headers between signing and sending, so two threads sharing one ``Merchant`` send each
other's signatures: each thread gets its own ``Merchant`` (and session), as a user of it must.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import psutil

from payments_core import HttpRequest, Money, OrderRequest, Payments

from .canned import CannedServer
from .common import References, facade, median

Row = dict[str, Any]
CALLBACK_URL = "https://shop.example/callbacks/binance"


def _ours_order(reference: str) -> OrderRequest:
    return OrderRequest(reference=reference, price=Money("1.00", "USDT"), callback_url=CALLBACK_URL)


def _connector_order(trade_no: str) -> dict[str, Any]:
    return {
        "env": {"terminalType": "WEB"},
        "merchantTradeNo": trade_no,
        "orderAmount": 1.0,
        "currency": "USDT",
        "goods": {
            "goodsType": "02",
            "goodsCategory": "Z000",
            "referenceGoodsId": trade_no,
            "goodsName": "Booking",
        },
    }


# -- pinning ------------------------------------------------------------------------------------


def cpus() -> tuple[set[int], set[int]] | None:
    """(client CPUs, server CPUs) when there are at least two, else ``None`` (no pinning)."""
    available = sorted(os.sched_getaffinity(0))
    if len(available) < 2:
        return None
    return {available[0]}, {available[1]}


def pin_process_tree(pid: int, where: set[int]) -> None:
    """Pin ``pid`` and all its threads (``taskset -a``; else each thread by hand)."""
    taskset = shutil.which("taskset")
    listing = ",".join(map(str, sorted(where)))
    if taskset:
        subprocess.run(  # noqa: S603 - a fixed tool, our own pid
            [taskset, "-a", "-p", "-c", listing, str(pid)], check=True, capture_output=True
        )
        return
    for tid in os.listdir(f"/proc/{pid}/task"):
        os.sched_setaffinity(int(tid), where)


def server_pids(module: str) -> list[int]:
    """This process's children (and theirs) running ``python -m module``."""
    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            if module in child.cmdline():
                found.append(child.pid)
        except psutil.Error:  # gone meanwhile
            continue
    if not found:
        raise RuntimeError(f"no child process runs {module}")
    return found


@contextmanager
def pinned(server_pids: list[int]) -> Iterator[str]:
    """Pin the server's processes to one core and this process to the other, for the block.

    Yields a description for the results ("client cpu 0, server cpu 1", or why not pinned).
    """
    split = cpus()
    if split is None:
        yield "not pinned: one CPU available (client and server share it)"
        return
    client, server = split
    before = os.sched_getaffinity(0)
    for pid in server_pids:
        pin_process_tree(pid, server)
    os.sched_setaffinity(0, client)
    try:
        yield f"client cpu {min(client)}, server cpu {min(server)} (taskset)"
    finally:
        os.sched_setaffinity(0, before)


# -- the two clients ----------------------------------------------------------------------------


class Connector:
    """The peer, one ``Merchant`` per thread (its session's headers carry the signature)."""

    def __init__(self, base_url: str, key: str, secret: str) -> None:
        from binance.pay.merchant import Merchant

        self._make = lambda: Merchant(key, secret, base_url=base_url)
        self._local = threading.local()

    def _merchant(self) -> Any:
        merchant = getattr(self._local, "merchant", None)
        if merchant is None:
            merchant = self._local.merchant = self._make()
        return merchant

    def create_and_query(self, trade_no: str) -> None:
        merchant = self._merchant()
        created = merchant.new_order(_connector_order(trade_no))
        if not isinstance(created, dict) or created.get("status") != "SUCCESS":
            raise RuntimeError(f"connector create failed: {created!r:.200}")
        found = merchant.get_order(merchantTradeNo=trade_no)
        if not isinstance(found, dict) or found.get("status") != "SUCCESS":
            raise RuntimeError(f"connector query failed: {found!r:.200}")


def _ours_blocking(payments: Payments, reference: str) -> None:
    payments.create_order(_ours_order(reference))
    if payments.query_order(reference) is None:
        raise RuntimeError(f"the order for {reference} was not found")


async def _ours_async(payments: Payments, reference: str) -> None:
    await payments.create_order_async(_ours_order(reference))
    if await payments.query_order_async(reference) is None:
        raise RuntimeError(f"the order for {reference} was not found")


Timed = tuple[float, float]
"""Pairs per second, and this process's CPU seconds per pair (all its threads)."""


def _timed(n: int, started: float, cpu_started: float) -> Timed:
    return n / (time.perf_counter() - started), (time.process_time() - cpu_started) / n


def _threads(work: Callable[[str], None], names: list[str], width: int) -> Timed:
    """Doing ``work`` for each name with ``width`` threads."""
    started, cpu_started = time.perf_counter(), time.process_time()
    if width == 1:
        for name in names:
            work(name)
    else:
        with ThreadPoolExecutor(width) as pool:
            for _ in pool.map(work, names):
                pass
    return _timed(len(names), started, cpu_started)


async def _gather(payments: Payments, names: list[str], width: int) -> Timed:
    gate = asyncio.Semaphore(width)

    async def one(name: str) -> None:
        async with gate:
            await _ours_async(payments, name)

    started, cpu_started = time.perf_counter(), time.process_time()
    await asyncio.gather(*(one(n) for n in names))
    return _timed(len(names), started, cpu_started)


async def _bare(pairs: list[tuple[HttpRequest, HttpRequest]], width: int) -> Timed:
    import aiohttp

    gate = asyncio.Semaphore(width)
    connector = aiohttp.TCPConnector(limit=100)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def post(request: HttpRequest) -> None:
            async with session.post(
                request.url, data=request.content, headers=dict(request.headers)
            ) as response:
                await response.read()
                if response.status != 200:
                    raise RuntimeError(f"bare aiohttp got {response.status}")

        async def one(create: HttpRequest, query: HttpRequest) -> None:
            async with gate:
                await post(create)
                await post(query)

        await asyncio.gather(*(one(*pair) for pair in pairs[: min(width, len(pairs))]))  # warm
        started, cpu_started = time.perf_counter(), time.process_time()
        await asyncio.gather(*(one(*pair) for pair in pairs))
        return _timed(len(pairs), started, cpu_started)


class _Clients:
    """Ours (blocking, async, threads) and the connector, pointed at one server."""

    def __init__(self, base_url: str, key: str, secret: str) -> None:
        self.blocking = facade(base_url, key, secret)
        # One at a time gets its own facade, as each connector thread has its own session:
        # httpx's pool checks every idle connection on every request (httpcore's
        # _assign_requests_to_connections), so a pool left with ~20 idle connections by the
        # threaded runs makes sequential use slower (see docs/performance.md).
        self.sequential = facade(base_url, key, secret)
        self.connector = Connector(base_url, key, secret)
        self.base = (base_url, key, secret)
        self.names = References("b")
        self.loop = asyncio.new_event_loop()
        self.asynchronous = facade(base_url, key, secret)  # aiohttp when installed
        self.last_cpu = 0.0  # CPU seconds per pair of the last run

    def _rate(self, timed: Timed) -> float:
        rate, self.last_cpu = timed
        return rate

    def ours_threads(self, n: int, width: int) -> float:
        payments = self.sequential if width == 1 else self.blocking
        names = self.names.take(n)
        return self._rate(_threads(lambda r: _ours_blocking(payments, r), names, width))

    def ours_async(self, n: int, width: int) -> float:
        names = self.names.take(n)
        return self._rate(self.loop.run_until_complete(_gather(self.asynchronous, names, width)))

    def bare_aiohttp(self, n: int, width: int) -> float:
        """Pairs/s of the same signed create and query bytes posted by a bare aiohttp session:
        the transport alone, what no client built on it can exceed."""
        hooks = self.blocking.provider("binance")
        pairs = []
        for name in self.names.take(n):
            create = hooks.create_order(_ours_order(name))
            query = hooks.query_order(name)
            assert create is not None
            assert query is not None
            pairs.append((next(create), next(query)))
            create.close()
            query.close()
        return self._rate(self.loop.run_until_complete(_bare(pairs, width)))

    def connector_threads(self, n: int, width: int) -> float:
        names = self.names.take(n)
        return self._rate(_threads(self.connector.create_and_query, names, width))

    def close(self) -> None:
        self.blocking.close()
        self.sequential.close()
        self.loop.run_until_complete(self.asynchronous.aclose())
        self.loop.close()


def _measure(
    rounds: int,
    steps: dict[str, Callable[[], float]],
    clients: _Clients,
    server_cpu: Callable[[], float] | None,
) -> tuple[dict[str, float], dict[str, float], dict[str, float]]:
    """Medians over interleaved rounds of each step's pairs/s and of the client's CPU µs per
    pair, and the server's largest CPU share of one core."""
    rates: dict[str, list[float]] = {name: [] for name in steps}
    cpu_us: dict[str, list[float]] = {name: [] for name in steps}
    shares: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(rounds):
        for name, step in steps.items():
            before, started = (server_cpu() if server_cpu else 0.0), time.perf_counter()
            rates[name].append(step())
            cpu_us[name].append(clients.last_cpu * 1e6)
            if server_cpu is not None:
                shares[name].append((server_cpu() - before) / (time.perf_counter() - started))
    server = {name: max(values) for name, values in shares.items() if values}
    return (
        {name: median(values) for name, values in rates.items()},
        {name: median(values) for name, values in cpu_us.items()},
        server,
    )


# -- PEER: against the sandbox ------------------------------------------------------------------


def _skipped(name: str, what: str) -> Row | None:
    """A row saying the connector is missing, or ``None`` when it is installed."""
    import importlib.util

    if importlib.util.find_spec("binance") and importlib.util.find_spec("binance.pay"):
        return None
    return {
        "id": name,
        "what": what,
        "figure": "skipped: binance-pay-connector is not installed (pip install -e '.[bench]')",
        "value": None,
        "target": "",
        "met": None,
    }


def peer(quick: bool) -> Row:
    """Ours vs the connector against the sandbox: sequential, and 64 in flight."""
    skipped = _skipped("PEER", "create+query pairs/s vs binance-pay-connector (sandbox)")
    if skipped:
        return skipped
    from .suite import sandbox_process

    rounds, seq_n, conc_n = (2, 60, 200) if quick else (5, 150, 600)
    with sandbox_process() as process, pinned(server_pids("payments_binance.sandbox")) as placement:
        clients = _Clients(process.base_url, process.info["api_key"], process.info["api_secret"])
        try:
            clients.ours_threads(20, 1)  # warm: connections, certificates of nothing, caches
            clients.ours_async(64, 64)
            clients.connector_threads(20, 1)
            clients.connector_threads(64, 64)
            steps = {
                "ours_sequential": lambda: clients.ours_threads(seq_n, 1),
                "connector_sequential": lambda: clients.connector_threads(seq_n, 1),
                "ours_async_64": lambda: clients.ours_async(conc_n, 64),
                "connector_threads_64": lambda: clients.connector_threads(conc_n, 64),
            }
            rates, cpu_us, _ = _measure(rounds, steps, clients, None)
        finally:
            clients.close()
    sequential = rates["ours_sequential"] / rates["connector_sequential"]
    concurrent = rates["ours_async_64"] / rates["connector_threads_64"]
    return {
        "id": "PEER",
        "what": "create+query pairs/s vs binance-pay-connector 1.0.0, sandbox in its process",
        "figure": f"sequential {sequential:.2f}x ({rates['ours_sequential']:,.0f}/s vs "
        f"{rates['connector_sequential']:,.0f}/s); 64 in flight {concurrent:.2f}x "
        f"({rates['ours_async_64']:,.0f}/s async vs {rates['connector_threads_64']:,.0f}/s "
        "threads)",
        "value": concurrent,
        "target": ">= 1.0x sequential; >= 5x at 64 in flight",
        "met": sequential >= 1.0 and concurrent >= 5,
        "details": {
            "server": "payments sandbox (stateful, one process)",
            "placement": placement,
            "pairs_per_s": rates,
            "client_cpu_us_per_pair": cpu_us,
            "sequential_ratio": sequential,
            "concurrent_ratio": concurrent,
            "met_sequential": sequential >= 1.0,
            "met_concurrent": concurrent >= 5,
        },
    }


# -- CLIENTS: against the canned-answer server --------------------------------------------------


def clients(quick: bool) -> Row:
    """Ours vs the connector at 1, 16 and 64 in flight, and ours async vs ours with threads,
    against the canned-answer server (its CPU measured)."""
    skipped = _skipped("CLIENTS", "create+query pairs/s vs binance-pay-connector (canned)")
    if skipped:
        return skipped
    rounds, n = (2, 150) if quick else (3, 500)
    with CannedServer() as server, pinned(server_pids("benchmarks.canned")) as placement:
        both = _Clients(server.base_url, server.info["api_key"], server.info["api_secret"])
        try:
            both.ours_threads(20, 1)
            both.ours_async(64, 64)
            both.ours_threads(64, 64)
            both.connector_threads(20, 1)
            both.connector_threads(64, 64)
            steps: dict[str, Callable[[], float]] = {}
            for width in (1, 16, 64):
                steps[f"ours_async_{width}"] = lambda w=width: both.ours_async(n, w)
                steps[f"connector_threads_{width}"] = lambda w=width: both.connector_threads(n, w)
                if width > 1:
                    steps[f"ours_threads_{width}"] = lambda w=width: both.ours_threads(n, w)
            steps["ours_sequential"] = lambda: both.ours_threads(n, 1)
            steps["bare_aiohttp_64"] = lambda: both.bare_aiohttp(n, 64)
            rates, cpu_us, server_cpu = _measure(rounds, steps, both, server.cpu_seconds)
        finally:
            both.close()
    ratios = {
        f"ours_vs_connector_{w}": rates[f"ours_async_{w}"] / rates[f"connector_threads_{w}"]
        for w in (1, 16, 64)
    }
    ratios["ours_sequential_vs_connector"] = rates["ours_sequential"] / rates["connector_threads_1"]
    for w in (16, 64):
        ratios[f"ours_async_vs_ours_threads_{w}"] = (
            rates[f"ours_async_{w}"] / rates[f"ours_threads_{w}"]
        )
    ratios["bare_aiohttp_vs_connector_64"] = (
        rates["bare_aiohttp_64"] / rates["connector_threads_64"]
    )
    ratios["bare_aiohttp_vs_ours_64"] = rates["bare_aiohttp_64"] / rates["ours_async_64"]
    busiest = max(server_cpu.values())
    met = (
        ratios["ours_vs_connector_64"] >= 5
        and ratios["ours_sequential_vs_connector"] >= 1.0
        and busiest < 0.5
    )
    return {
        "id": "CLIENTS",
        "what": "create+query pairs/s vs the connector at 1/16/64 in flight, canned server",
        "figure": (
            f"vs connector: 1 {ratios['ours_vs_connector_1']:.2f}x "
            f"(blocking {ratios['ours_sequential_vs_connector']:.2f}x), "
            f"16 {ratios['ours_vs_connector_16']:.2f}x, 64 {ratios['ours_vs_connector_64']:.2f}x "
            f"({rates['ours_async_64']:,.0f}/s vs {rates['connector_threads_64']:,.0f}/s); "
            f"async vs our threads: 16 {ratios['ours_async_vs_ours_threads_16']:.2f}x, "
            f"64 {ratios['ours_async_vs_ours_threads_64']:.2f}x; bare aiohttp (same bytes) "
            f"{ratios['bare_aiohttp_vs_connector_64']:.2f}x the connector at 64; client CPU per "
            f"pair at 64: ours {cpu_us['ours_async_64']:.0f} us, bare aiohttp "
            f"{cpu_us['bare_aiohttp_64']:.0f} us, connector {cpu_us['connector_threads_64']:.0f} "
            "us; "
            f"server CPU <= {busiest:.0%} of a core"
        ),
        "value": ratios["ours_vs_connector_64"],
        "target": ">= 5x at 64; >= 1.0x sequential; server CPU < 50%",
        "met": met,
        "details": {
            "server": "benchmarks.canned (stateless, signature checked, one process)",
            "placement": placement,
            "pairs_per_s": rates,
            "client_cpu_us_per_pair": cpu_us,
            "ratios": ratios,
            "server_cpu_share_max": server_cpu,
            "server_cpu_below_half": busiest < 0.5,
        },
    }
