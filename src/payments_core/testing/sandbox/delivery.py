"""Webhook delivery from a sandbox: events posted, retried on a schedule, held, logged.

:func:`post_delivery` posts a :class:`Delivery` once from the calling thread (a sandbox that
imitates no retries). :class:`WebhookPoster` delivers on an event loop, so delivery never blocks
a request, retries what is not acknowledged, doubles or holds back events as its
:class:`~payments_core.testing.sandbox.Faults` decide, and logs every attempt.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Mapping, Sequence

import attrs
import httpx

from payments_core.testing.sandbox.faults import FaultKind, Faults

__all__ = ["Delivery", "DeliveryAttempt", "WebhookPoster", "post_delivery"]


@attrs.frozen
class Delivery:
    """One webhook event a sandbox sends (or would have sent).

    Attributes:
        url: Where it goes; ``None`` when no endpoint is set.
        headers: Its headers, signature included.
        body: Its body bytes.
        event_id: The event's id.
        type: The event type.
        subject: What the event is about (an order's id, say).
    """

    url: str | None
    headers: Mapping[str, str]
    body: bytes
    event_id: str = ""
    type: str = ""
    subject: str = ""


@attrs.frozen
class DeliveryAttempt:
    """One attempt to deliver an event, or one event not delivered (``skipped`` says why).

    Attributes:
        delivery: The event.
        headers: The headers this attempt sent.
        attempt: 1 for the first attempt, 2 for the first retry, ...; 0 when skipped.
        copy: 2 for the second copy of an event delivered twice.
        status_code: The endpoint's HTTP status; ``None`` when none came back.
        ok: Whether the endpoint acknowledged the event.
        error: Why not, when it did not.
        skipped: Why the event was not sent at all.
    """

    delivery: Delivery
    headers: Mapping[str, str]
    attempt: int
    copy: int = 1
    status_code: int | None = None
    ok: bool = False
    error: str | None = None
    skipped: str | None = None

    @property
    def body(self) -> bytes:
        """The body posted: the event's, the same at every attempt."""
        return self.delivery.body


def post_delivery(delivery: Delivery) -> None:
    """Post ``delivery`` once from this thread; a failure is not retried, nor raised."""
    if delivery.url is None:
        return
    try:
        httpx.post(delivery.url, content=delivery.body, headers=dict(delivery.headers), timeout=10)
    except httpx.HTTPError:
        return  # the merchant finds the payment by querying, as after a real outage


def _success(response: httpx.Response) -> bool:
    return response.is_success


@attrs.define
class WebhookPoster:
    """Delivers webhook events on an event loop, with retries, and keeps the delivery log.

    Every attempt posts the same body; a refusal or a network error is retried after each
    delay of the schedule. Events sent before a loop is bound wait for :meth:`bind`;
    :meth:`wait_idle` lets another thread wait for the deliveries without sleeping.

    :param retry_schedule: Seconds before each retry; after the last, the event is given up.
    :param timeout_s: The timeout of each attempt.
    :param acknowledged: Whether the endpoint's answer acknowledges the event (default 2xx).
    :param sign: Fresh headers for the body at each attempt; default the delivery's own.
    :param faults: Decides which events are delivered twice or out of order.

    Attributes:
        log: Every attempt and skipped event, in the order they happened.
        delivered: Events (copies) acknowledged; ``failed``: given up; ``skipped``: not sent.
        attempts: Posts made.
    """

    retry_schedule: Sequence[float] = ()
    timeout_s: float = 10.0
    acknowledged: Callable[[httpx.Response], bool] = _success
    sign: Callable[[bytes], Mapping[str, str]] | None = None
    faults: Faults | None = None
    log: list[DeliveryAttempt] = attrs.field(factory=list)
    delivered: int = 0
    attempts: int = 0
    failed: int = 0
    skipped: int = 0
    _pending: int = attrs.field(init=False, default=0)
    _idle: threading.Condition = attrs.field(init=False, factory=threading.Condition)
    _queued: list[tuple[Delivery, int, bool]] = attrs.field(init=False, factory=list)
    _loop: asyncio.AbstractEventLoop | None = attrs.field(init=False, default=None)
    _client: httpx.AsyncClient | None = attrs.field(init=False, default=None)
    _tasks: set[asyncio.Task[None]] = attrs.field(init=False, factory=set)
    _first_attempts: int = attrs.field(init=False, default=0)
    _overtaken: asyncio.Condition | None = attrs.field(init=False, default=None)

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Deliver on ``loop`` from now on (call it from that loop); start what waited."""
        self._loop = loop
        self._overtaken = asyncio.Condition()
        queued, self._queued = self._queued, []
        for queued_delivery in queued:
            self._start(*queued_delivery)

    async def aclose(self) -> None:
        """Cancel deliveries still running, close the HTTP client and unbind the loop."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
            self._client = None
        self._loop = None

    def send(self, delivery: Delivery) -> None:
        """Deliver ``delivery`` to its URL (which must be set), with retries; thread-safe."""
        drawn = self.faults.for_webhook(delivery.subject) if self.faults else frozenset()
        copies = 2 if FaultKind.DUPLICATE_WEBHOOK in drawn else 1
        with self._idle:
            self._pending += copies
        for copy in range(1, copies + 1):
            # Only the first copy is held back, so a duplicate can also overtake its original.
            hold = copy == 1 and FaultKind.OUT_OF_ORDER_WEBHOOK in drawn
            self._schedule(delivery, copy, hold)

    def skip(self, delivery: Delivery, reason: str) -> None:
        """Log ``delivery`` as not sent, for ``reason``."""
        with self._idle:
            self.skipped += 1
        self.log.append(DeliveryAttempt(delivery, self._headers(delivery), 0, skipped=reason))

    def wait_idle(self, timeout: float) -> bool:
        """Block until no delivery is pending or running; ``False`` if ``timeout`` passed first.

        :raises RuntimeError: if deliveries wait for a loop and none is bound.
        """
        with self._idle:
            if self._pending and self._loop is None:
                raise RuntimeError("webhooks are queued but no event loop runs the sandbox")
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def _headers(self, delivery: Delivery) -> Mapping[str, str]:
        return delivery.headers if self.sign is None else self.sign(delivery.body)

    def _schedule(self, delivery: Delivery, copy: int, hold: bool) -> None:
        loop = self._loop
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if loop is None and running is not None:
            self.bind(running)
            loop = running
        if loop is None:
            self._queued.append((delivery, copy, hold))
        elif loop is running:
            self._start(delivery, copy, hold)
        else:
            loop.call_soon_threadsafe(self._start, delivery, copy, hold)

    def _start(self, delivery: Delivery, copy: int, hold: bool) -> None:
        task = asyncio.get_running_loop().create_task(self._deliver(delivery, copy, hold))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _hold_until_overtaken(self) -> None:
        # Out-of-order fault: let a later delivery make its first attempt before this one.
        if self._overtaken is None or self.faults is None:
            return
        seen = self._first_attempts
        async with self._overtaken:
            try:
                await asyncio.wait_for(
                    self._overtaken.wait_for(lambda: self._first_attempts > seen),
                    self.faults.profile.reorder_max_hold_s,
                )
            except TimeoutError:
                return

    async def _first_attempt_done(self) -> None:
        self._first_attempts += 1
        if self._overtaken is not None:
            async with self._overtaken:
                self._overtaken.notify_all()

    async def _deliver(self, delivery: Delivery, copy: int, hold: bool) -> None:
        try:
            if hold:
                await self._hold_until_overtaken()
            if self._client is None:
                self._client = httpx.AsyncClient(timeout=self.timeout_s, trust_env=False)
            for attempt, delay in enumerate((0.0, *self.retry_schedule), start=1):
                if delay:
                    await asyncio.sleep(delay)
                if await self._attempt(self._client, delivery, attempt, copy):
                    with self._idle:
                        self.delivered += 1
                    return
            with self._idle:
                self.failed += 1
        finally:
            with self._idle:
                self._pending -= 1
                self._idle.notify_all()

    async def _attempt(
        self, client: httpx.AsyncClient, delivery: Delivery, attempt: int, copy: int
    ) -> bool:
        headers = self._headers(delivery)
        status_code, ok, error = None, False, None
        try:
            assert delivery.url is not None  # send() is given deliveries with a URL
            response = await client.post(delivery.url, content=delivery.body, headers=headers)
            status_code = response.status_code
            ok = self.acknowledged(response)
            if not ok:
                error = f"not acknowledged: HTTP {status_code} {response.text[:200]!r}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        with self._idle:
            self.attempts += 1
        self.log.append(DeliveryAttempt(delivery, headers, attempt, copy, status_code, ok, error))
        if attempt == 1:
            await self._first_attempt_done()
        return ok
