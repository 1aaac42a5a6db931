"""The threads the asynchronous facade runs its blocking steps on: every result reaches its
caller, in the caller's context, and a busy pool wakes the event loop once per batch."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from payments_core import Payments, open_ledger
from payments_core.threads import BlockingThreads

caller: contextvars.ContextVar[str] = contextvars.ContextVar("caller", default="nobody")


@pytest.fixture
def threads() -> Iterator[BlockingThreads]:
    pool = BlockingThreads(1, batch=32, name="test-blocking")
    yield pool
    pool.close()


class HandBacks:
    """Counts the event loop's wake-ups from other threads, and what each one carried."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.sizes: list[int] = []
        original = loop.call_soon_threadsafe

        def counted(callback: Callable[..., object], *args: Any, **kwargs: Any) -> Any:
            if args and isinstance(args[0], list):
                self.sizes.append(len(args[0]))
            return original(callback, *args, **kwargs)

        loop.call_soon_threadsafe = counted  # type: ignore[method-assign]


def test_a_result_and_an_exception_reach_their_callers(threads: BlockingThreads) -> None:
    def fails() -> None:
        raise KeyError("missing")

    async def main() -> None:
        assert await threads.run(lambda: 6 * 7) == 42
        with pytest.raises(KeyError, match="missing"):
            await threads.run(fails)

    asyncio.run(main())


def test_a_step_runs_on_a_named_thread_in_its_callers_context(threads: BlockingThreads) -> None:
    def where() -> tuple[str, str]:
        return threading.current_thread().name, caller.get()

    async def as_(name: str) -> tuple[str, str]:
        caller.set(name)
        return await threads.run(where)

    async def main() -> list[tuple[str, str]]:
        return list(await asyncio.gather(as_("first"), as_("second")))

    assert asyncio.run(main()) == [("test-blocking-0", "first"), ("test-blocking-0", "second")]


def test_a_busy_pool_hands_back_its_results_with_one_wake_up(threads: BlockingThreads) -> None:
    release = threading.Event()

    async def main() -> list[int]:
        hand_backs = HandBacks(asyncio.get_running_loop())
        blocked = asyncio.ensure_future(threads.run(lambda: release.wait(10)))
        await asyncio.sleep(0)  # the thread takes the first step and blocks on it
        queued = [asyncio.ensure_future(threads.run(lambda i=i: i)) for i in range(10)]
        await asyncio.sleep(0)
        release.set()
        assert await blocked
        assert await asyncio.gather(*queued) == list(range(10))
        return hand_backs.sizes

    # The blocked step and nine queued ones go back together when the last one is taken,
    # the last one on its own: two wake-ups for eleven results.
    assert asyncio.run(main()) == [10, 1]


def test_a_batch_holds_at_most_batch_results() -> None:
    threads = BlockingThreads(1, batch=3)
    release = threading.Event()

    async def main() -> list[int]:
        hand_backs = HandBacks(asyncio.get_running_loop())
        blocked = asyncio.ensure_future(threads.run(lambda: release.wait(10)))
        await asyncio.sleep(0)
        queued = [asyncio.ensure_future(threads.run(lambda i=i: i)) for i in range(8)]
        await asyncio.sleep(0)
        release.set()
        await blocked
        assert await asyncio.gather(*queued) == list(range(8))
        return hand_backs.sizes

    try:
        sizes = asyncio.run(main())
    finally:
        threads.close()
    assert sum(sizes) == 9
    assert max(sizes) <= 3


def test_a_slow_step_holds_back_no_other_result_when_a_second_thread_is_free() -> None:
    threads = BlockingThreads(2)
    release = threading.Event()

    async def main() -> None:
        slow = asyncio.ensure_future(threads.run(lambda: release.wait(10)))
        await asyncio.sleep(0)
        # Answered while the slow step still runs: awaiting them would hang otherwise.
        assert await asyncio.gather(*(threads.run(lambda i=i: i) for i in range(5))) == [
            0,
            1,
            2,
            3,
            4,
        ]
        assert not slow.done()
        release.set()
        assert await slow

    try:
        asyncio.run(main())
    finally:
        threads.close()


def test_a_cancelled_callers_step_still_runs_and_its_result_is_dropped(
    threads: BlockingThreads,
) -> None:
    started, release, ran = threading.Event(), threading.Event(), threading.Event()

    def step() -> str:
        started.set()
        release.wait(10)
        ran.set()
        return "late"

    async def main() -> None:
        task = asyncio.ensure_future(threads.run(step))
        await asyncio.to_thread(started.wait, 10)
        task.cancel()
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await threads.run(lambda: "next") == "next"  # the pool carries on

    asyncio.run(main())
    assert ran.is_set()


def test_close_waits_for_queued_steps_stops_the_threads_and_a_later_call_starts_them(
    threads: BlockingThreads,
) -> None:
    async def main() -> int:
        return await threads.run(lambda: 1)

    assert asyncio.run(main()) == 1
    assert "test-blocking-0" in {t.name for t in threading.enumerate()}
    threads.close()
    assert "test-blocking-0" not in {t.name for t in threading.enumerate()}
    assert asyncio.run(main()) == 1


def test_an_idle_thread_ends_and_a_later_call_starts_another() -> None:
    threads = BlockingThreads(1, idle=0.01, name="test-idle")

    async def main() -> str:
        return await threads.run(lambda: threading.current_thread().name)

    try:
        assert asyncio.run(main()) == "test-idle-0"
        for thread in [t for t in threading.enumerate() if t.name == "test-idle-0"]:
            thread.join(10)  # it ends by itself, idle
            assert not thread.is_alive()
        assert asyncio.run(main()) == "test-idle-0"
    finally:
        threads.close()


@pytest.mark.parametrize(("size", "batch"), [(0, 1), (1, 0)])
def test_a_pool_needs_a_thread_and_a_batch(size: int, batch: int) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        BlockingThreads(size, batch=batch)


def test_the_facade_uses_as_many_threads_as_its_ledger_can_use_and_at_least_two(
    tmp_path: Path,
) -> None:
    sqlite = open_ledger(f"sqlite:///{tmp_path / 'ledger.sqlite3'}")
    assert sqlite.concurrency == 1  # its writes take turns
    with Payments(ledger=sqlite, load_entry_points=False) as payments:
        assert payments._threads.size == 2  # a slow hook never holds up every callback
    busy = open_ledger(f"sqlite:///{tmp_path / 'other.sqlite3'}")
    busy.concurrency = 7
    with Payments(ledger=busy, load_entry_points=False) as payments:
        assert payments._threads.size == 7
    with Payments(load_entry_points=False) as payments:
        assert payments._threads.size == 2
