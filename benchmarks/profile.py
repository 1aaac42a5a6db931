"""Profiles of ``create_order`` (blocking, against the sandbox in its own process) and of
``handle_callback`` (verify + parse), with pyinstrument: ``python -m benchmarks --profile``.

Prints each profile's call tree (time per frame, shortest frames hidden) and writes the text
to ``benchmarks/results/profile-*.txt``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from pyinstrument import Profiler

from .common import References, Webhooks, callback_facade, epoch_ms, facade
from .suite import order, sandbox_process

RESULTS = Path(__file__).parent / "results"


def _report(name: str, profiler: Profiler) -> None:
    text = profiler.output_text(unicode=False, color=False, show_all=False)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"profile-{name}.txt").write_text(text, encoding="utf-8")
    print(f"== {name}\n{text}")


def profile_create_order(n: int = 1_500) -> None:
    with sandbox_process() as process:
        payments = facade(process.base_url, process.info["api_key"], process.info["api_secret"])
        refs = References("profile")
        try:
            for reference in refs.take(50):
                payments.create_order(order(reference))
            profiler = Profiler(interval=0.0002)
            with profiler:
                for reference in refs.take(n):
                    payments.create_order(order(reference))
        finally:
            payments.close()
    _report("create_order", profiler)


def profile_handle_callback(n: int = 5_000) -> None:
    moment = datetime.now(UTC).replace(microsecond=0)
    hooks = Webhooks()
    payments = callback_facade(hooks, moment)
    callbacks = [
        hooks.callback(str(10**17 + i), f"PROFILE{i:08d}", now_ms=epoch_ms(moment))[:2]
        for i in range(500)
    ]
    try:
        payments.handle_callback("binance", *callbacks[0])
        profiler = Profiler(interval=0.0001)
        with profiler:
            for i in range(n):
                payments.handle_callback("binance", *callbacks[i % len(callbacks)])
    finally:
        payments.close()
    _report("handle_callback", profiler)


def main() -> int:
    profile_create_order()
    profile_handle_callback()
    return 0
