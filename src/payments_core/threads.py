"""Where the asynchronous facade runs its blocking steps: threads of its own that hand results
back to the event loop in batches.

A step that blocks (the ledger's transaction, the application's hook) must not run on the
event loop. ``asyncio.to_thread`` runs each one in the loop's default executor and wakes the
loop once per step to hand its result back. Under load that wake-up, and the interpreter
passing between the loop's thread and the worker's at each one, cost about as much as a SQLite
callback's whole transaction (docs/performance.md, "Results handed back in batches").

:class:`BlockingThreads` queues the steps; its threads run them one after another and wake
the loop only when nothing is left to run, or when a batch of results is ready. An idle
server hands each result back at once; a busy one hands back many with one wake-up. Each step
runs in a copy of its caller's context (:mod:`contextvars`), as with ``asyncio.to_thread``, so
a step sees the caller's trace.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import threading
from collections import deque
from collections.abc import Callable
from typing import Any, Final, TypeVar

import attrs

__all__ = ["DEFAULT_BATCH", "DEFAULT_IDLE", "BlockingThreads"]

T = TypeVar("T")

#: Results a thread hands back at most with one wake-up of the loop, when the queue stays long.
DEFAULT_BATCH: Final = 32
#: Seconds a thread waits for a call before it ends (so a facade never closed keeps none).
DEFAULT_IDLE: Final = 30.0


@attrs.define(eq=False)
class _Step:
    """One call, the loop and future waiting for it, and what it gave."""

    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any]
    call: Callable[[], object]
    context: contextvars.Context = attrs.field(factory=contextvars.copy_context, init=False)
    result: object = attrs.field(default=None, init=False)
    error: BaseException | None = attrs.field(default=None, init=False)

    def run(self) -> None:
        try:
            self.result = self.context.run(self.call)
        except BaseException as error:  # handed to the awaiting task, as to_thread does
            self.error = error

    def settle(self) -> None:
        if self.future.done():  # the awaiting task was cancelled; the step ran regardless
            return
        if self.error is not None:
            self.future.set_exception(self.error)
        else:
            self.future.set_result(self.result)


def _settle_all(steps: list[_Step]) -> None:
    for step in steps:
        step.settle()


class BlockingThreads:
    """Run blocking calls for event loops on up to ``size`` threads, results handed back in
    batches of at most ``batch``.

    Threads start on first use, and end at :meth:`close` or after ``idle`` seconds without a
    call; a later call starts them again.
    A call still runs to its end when the task awaiting it is cancelled (as with
    ``asyncio.to_thread``); its result is dropped.
    """

    def __init__(
        self,
        size: int,
        *,
        batch: int = DEFAULT_BATCH,
        idle: float = DEFAULT_IDLE,
        name: str = "payments",
    ) -> None:
        if size < 1 or batch < 1:
            raise ValueError(f"size and batch must be at least 1, not {size} and {batch}")
        self.size = size
        self.batch = batch
        self.idle = idle
        self.name = name
        self._lock = threading.Lock()
        self._ready = threading.Condition(self._lock)
        self._waiting: deque[_Step] = deque()
        self._done: list[_Step] = []
        self._threads: list[threading.Thread] = []
        self._idle = 0
        self._closing = False

    async def run(self, call: Callable[[], T]) -> T:
        """``call()`` on one of the threads; its result, or its exception raised here."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        with self._lock:
            self._waiting.append(_Step(loop, future, call))
            if self._idle:
                self._ready.notify()
            elif len(self._threads) < self.size:
                thread = threading.Thread(
                    target=self._work, name=f"{self.name}-{len(self._threads)}", daemon=True
                )
                self._threads.append(thread)
                thread.start()
        return await future

    def close(self) -> None:
        """Let the threads finish what is queued, then stop them and wait for them."""
        with self._lock:
            self._closing = True
            self._ready.notify_all()
            threads, self._threads = self._threads, []
        for thread in threads:
            if thread is not threading.current_thread():
                thread.join()
        with self._lock:
            if not self._threads:
                self._closing = False

    def _work(self) -> None:
        while True:
            with self._lock:
                while not self._waiting:
                    if self._closing:
                        return
                    self._idle += 1
                    woken = self._ready.wait(self.idle)
                    self._idle -= 1
                    if not woken and not self._waiting:  # idle too long: the next call starts one
                        with contextlib.suppress(ValueError):  # close() has let it go already
                            self._threads.remove(threading.current_thread())
                        return
                step = self._waiting.popleft()
                # Nothing else waits to run: what is done goes back now, not after this step.
                ready = self._take_done() if not self._waiting else []
            _hand_back(ready)
            step.run()
            with self._lock:
                self._done.append(step)
                full = len(self._done) >= self.batch
                ready = self._take_done() if full or not self._waiting else []
            _hand_back(ready)

    def _take_done(self) -> list[_Step]:
        done, self._done = self._done, []
        return done

    def __repr__(self) -> str:
        return (
            f"BlockingThreads(size={self.size}, batch={self.batch}, idle={self.idle}, "
            f"name={self.name!r})"
        )


def _hand_back(steps: list[_Step]) -> None:
    """Wake each loop once, to settle all of its steps' futures."""
    by_loop: dict[asyncio.AbstractEventLoop, list[_Step]] = {}
    for step in steps:
        by_loop.setdefault(step.loop, []).append(step)
    for loop, settled in by_loop.items():
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody awaits these now
            loop.call_soon_threadsafe(_settle_all, settled)
