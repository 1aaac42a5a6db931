"""When to try an operation again, and how long to wait first.

The decision is driven by the :class:`~payments_core.models.ErrorClassification` that
``classify_error`` attached to each failure: only ``retryable`` failures are retried; waits grow
exponentially with full jitter, never below a ``Retry-After`` the provider sent; attempts are
bounded, and so is the total time (the deadline), including the wait about to start.

The loop itself is tenacity's, driven step by step (:meth:`RetryPolicy.flow`), so that one
retried operation serves blocking and asynchronous callers: a backoff is a step the runner
sleeps. The clock and the sleep functions are injected, so tests run a whole schedule without
sleeping. The first attempt runs before tenacity is set up: most calls succeed at once. When it
fails, tenacity takes over with its failure as attempt 1 (not repeated), so the schedule is the
one tenacity alone would have run.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Generator, Mapping
from typing import Any, TypeVar

import attrs
import tenacity

from payments_core import telemetry
from payments_core.errors import ConfigurationError, PaymentsError
from payments_core.http import Wait
from payments_core.models import ErrorCategory
from payments_core.redaction import get_logger
from payments_core.transport import drive, drive_async

__all__ = ["RetryPolicy"]

T = TypeVar("T")
S = TypeVar("S")
log = get_logger("payments_core.retry")


@attrs.frozen(kw_only=True)
class RetryPolicy:
    """Bounds and timing of retries.

    Attributes:
        max_attempts: Attempts in all, the first included.
        deadline: Seconds from the first attempt after which no new attempt starts, and no
            wait is begun that would end past it.
        initial_delay: The base of the exponential backoff, in seconds.
        max_delay: The longest backoff wait (a ``Retry-After`` may ask for longer, within
            the deadline).
        clock: Monotonic seconds; injected by tests.
        sleep: Blocking sleep; injected by tests.
        async_sleep: Asynchronous sleep; injected by tests.
        rng: Source of jitter.
    """

    max_attempts: int = attrs.field(default=5, validator=attrs.validators.ge(1))
    deadline: float = attrs.field(default=30.0, validator=attrs.validators.gt(0))
    initial_delay: float = attrs.field(default=0.5, validator=attrs.validators.ge(0))
    max_delay: float = attrs.field(default=8.0, validator=attrs.validators.ge(0))
    clock: Callable[[], float] = attrs.field(default=time.monotonic, repr=False)
    sleep: Callable[[float], None] = attrs.field(default=time.sleep, repr=False)
    async_sleep: Callable[[float], Awaitable[None]] = attrs.field(default=asyncio.sleep, repr=False)
    rng: random.Random = attrs.field(factory=random.Random, repr=False, eq=False)

    @classmethod
    def from_settings(cls, values: Mapping[str, object]) -> RetryPolicy:
        """Build a policy from ``[payments.retry]`` values.

        :raises ConfigurationError: for an unknown key or a value of the wrong type.
        """
        known = {"max_attempts": int, "deadline": float, "initial_delay": float, "max_delay": float}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ConfigurationError(f"[payments.retry] has unknown keys: {', '.join(unknown)}")
        try:
            return cls(**{key: known[key](value) for key, value in values.items()})
        except (TypeError, ValueError) as exc:
            raise ConfigurationError(f"[payments.retry]: {exc}") from None

    def backoff(self, attempt: int) -> float:
        """The jittered exponential wait after failed attempt number ``attempt`` (1-based)."""
        ceiling = min(self.max_delay, self.initial_delay * 2 ** (attempt - 1))
        return self.rng.uniform(0, ceiling)

    def wait_for(self, error: BaseException | None, attempt: int) -> float:
        """How long to wait after ``error`` ended attempt number ``attempt``."""
        classification = getattr(error, "classification", None)
        if classification is not None and classification.category is ErrorCategory.DUPLICATE_ORDER:
            return 0.0  # the order exists: the next attempt is a query, no need to wait
        delay = self.backoff(attempt)
        if classification is not None and classification.retry_after is not None:
            delay = max(delay, classification.retry_after)
        return delay

    def flow(
        self,
        attempt: Callable[[], Generator[S, Any, T]],
        *,
        should_retry: Callable[[BaseException], bool],
    ) -> Generator[S | Wait, Any, T]:
        """The steps of ``attempt()``, repeated until it succeeds or the policy gives up (then
        the last error is raised); each backoff is a :class:`~payments_core.http.Wait` step.

        ``attempt`` makes a new flow for each attempt. Run the result with
        :func:`~payments_core.transport.drive` or :func:`~payments_core.transport.drive_async`.
        """
        started = self.clock()
        try:
            return (yield from _traced(attempt(), 1))
        except Exception as error:  # whatever the attempt raises, the predicate judges
            if not _retries(error, should_retry):
                raise
            failed: Exception | None = error
        stop, wait, before_sleep = self._schedule(started)
        retry = tenacity.retry_if_exception(should_retry)
        retrying = tenacity.Retrying(
            stop=stop, wait=wait, retry=retry, before_sleep=before_sleep, reraise=True
        )
        retrying.begin()
        state = tenacity.RetryCallState(retrying, fn=None, args=(), kwargs={})
        while True:
            action = retrying.iter(state)
            if isinstance(action, tenacity.DoAttempt):
                if failed is None:  # the first failure is tenacity's attempt 1, not repeated
                    try:
                        numbered = _traced(attempt(), state.attempt_number)
                        state.set_result((yield from numbered))
                        continue
                    except Exception as error:
                        failed = error
                state.set_exception((type(failed), failed, failed.__traceback__))
                failed = None
            elif isinstance(action, tenacity.DoSleep):
                state.prepare_for_next_attempt()
                yield Wait(float(action))
            else:
                result: T = action
                return result

    def call(self, fn: Callable[[], T], *, should_retry: Callable[[BaseException], bool]) -> T:
        """Run ``fn`` until it succeeds or the policy gives up; re-raise the last error."""
        steps = self.flow(lambda: _attempt(fn), should_retry=should_retry)
        result: T = drive(steps, _call, sleep=self.sleep)
        return result

    async def acall(
        self, fn: Callable[[], Awaitable[T]], *, should_retry: Callable[[BaseException], bool]
    ) -> T:
        """Asynchronous :meth:`call`."""
        steps = self.flow(lambda: _attempt(fn), should_retry=should_retry)
        result: T = await drive_async(steps, _call, sleep=self.async_sleep)
        return result

    def _schedule(
        self, started: float
    ) -> tuple[
        Callable[[tenacity.RetryCallState], bool],
        Callable[[tenacity.RetryCallState], float],
        Callable[[tenacity.RetryCallState], None],
    ]:

        def wait(state: tenacity.RetryCallState) -> float:
            error = state.outcome.exception() if state.outcome else None
            return self.wait_for(error, state.attempt_number)

        def stop(state: tenacity.RetryCallState) -> bool:
            upcoming = state.upcoming_sleep or 0.0
            out_of_attempts = state.attempt_number >= self.max_attempts
            out_of_time = self.clock() - started + upcoming > self.deadline
            return out_of_attempts or out_of_time

        def before_sleep(state: tenacity.RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            category = getattr(getattr(error, "classification", None), "category", None)
            telemetry.active.retrying(error, state.attempt_number, state.upcoming_sleep or 0.0)
            log.info(
                "attempt %d failed (%s: %s); retrying in %.3fs",
                state.attempt_number,
                type(error).__name__,
                category,
                state.upcoming_sleep,
            )

        return stop, wait, before_sleep


def _traced(steps: Generator[S, Any, T], number: int) -> Generator[S, Any, T]:
    """One attempt's steps as the span ``payments.attempt`` (its number an attribute)."""
    return telemetry.active.traced("payments.attempt", steps, {"payments.attempt": number})


def _retries(error: BaseException, should_retry: Callable[[BaseException], bool]) -> bool:
    # tenacity's own test after a failed attempt: an explicit TryAgain is retried whatever the
    # predicate says; anything else is retried when the predicate says so.
    return isinstance(error, tenacity.TryAgain) or should_retry(error)


def is_retryable(error: BaseException) -> bool:
    """Whether the classification attached to ``error`` allows another attempt."""
    if not isinstance(error, PaymentsError) or error.classification is None:
        return False
    return error.classification.retryable


def _attempt(fn: Callable[[], object]) -> Generator[Callable[[], object], Any, Any]:
    # One attempt of a plain function, as a step: the runner's send calls it (and awaits it).
    return (yield fn)


def _call(fn: Callable[[], Any]) -> Any:
    return fn()
