"""``Payments``: the one object an application talks to.

It loads the providers, owns the HTTP clients (pooled, with timeouts), the retry policy and the
configuration, and offers each operation twice: ``create_order`` for blocking code and
``create_order_async`` for asyncio. Both run the same flow (:mod:`payments_core.flows`): the
provider's sans-I/O operations, the ledger's steps and the retry policy's waits, written once.

Creating an order is safe to repeat, whichever idempotency pattern the provider follows
(:class:`~payments_core.models.IdempotencyPattern`): after an unknown outcome (a timeout, a
lost response) or a duplicate answer the order is *queried*, and created again only if the
provider has none. A find-or-create provider is searched before every create, and with a
ledger only one instance at a time creates a reference (:mod:`payments_core.claims`).

With a ledger (``Payments(ledger=open_ledger(url))``) the facade also remembers: an order
already recorded for a reference is returned without asking the provider, callbacks are
applied once each (:meth:`Payments.apply_callback`), the application's
``payment_status_changed`` hook hears of each committed change once, and
:meth:`Payments.reconcile` asks the provider about orders whose callback never came.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Mapping
from datetime import timedelta
from typing import Any, Self, TypeVar

import httpx

from payments_core import telemetry
from payments_core.claims import ClaimPolicy
from payments_core.config import Config
from payments_core.errors import (
    ConfigurationError,
    LedgerError,
    PaymentsError,
    PluginError,
    ValidationError,
)
from payments_core.flows import (
    Exchange,
    Flow,
    call_provider,
    close_flow,
    create_flow,
    query_flow,
    reconciliation_event,
)
from payments_core.http import HttpResponse, blocking
from payments_core.ledger import ApplyResult, Ledger
from payments_core.models import (
    CallbackRequest,
    CallbackResult,
    ErrorClassification,
    Order,
    OrderRequest,
    PaymentEvent,
    ProviderInfo,
    Refund,
    RefundRequest,
    StatusChange,
)
from payments_core.outcomes import CallbackOutcome, ReconcileOutcome
from payments_core.plugins import Clock, PluginHost, ProviderFactory, ProviderHooks
from payments_core.redaction import get_logger
from payments_core.refunding import reconcile_refunds_flow, refund_flow
from payments_core.retry import RetryPolicy
from payments_core.rules import EventFlag, worth_applying
from payments_core.threads import BlockingThreads
from payments_core.transport import (
    AsyncHttpSender,
    HttpxSender,
    async_sender,
    drive,
    drive_async,
    resolve_async_backend,
)

__all__ = ["RECONCILE_AFTER", "Payments", "reconciliation_event"]

T = TypeVar("T")
log = get_logger("payments_core.facade")

#: How long an order stays pending before :meth:`Payments.reconcile` asks the provider.
RECONCILE_AFTER = timedelta(minutes=15)


class Payments:
    """The facade over every loaded provider.

    :param config: The configuration; read from the environment (and ``$PAYMENTS_CONFIG``) if
        not given.
    :param providers: Providers to register in code, name → factory, besides (or instead of)
        the installed entry points.
    :param provider_settings: Per-provider values that override the configuration
        (``{"binance": {"base_url": ...}}``).
    :param plugins: Other plugins to register: observers, wrappers, application hooks.
    :param load_entry_points: Whether to load the ``payments.providers`` entry points.
    :param retry: The retry policy; built from ``[payments.retry]`` if not given.
    :param transport: An ``httpx`` transport for the blocking client (tests inject mocks).
    :param async_transport: An ``httpx`` transport for the asynchronous client.
    :param async_http: The asynchronous HTTP backend: ``"auto"`` (aiohttp when installed and no
        ``async_transport`` is given, else httpx), ``"httpx"`` or ``"aiohttp"``.
    :param clock: The clock handed to providers.
    :param ledger: Where orders and callback events are recorded
        (:func:`~payments_core.ledger.open_ledger`). Needed by :meth:`apply_callback` and
        :meth:`reconcile`; the facade closes it when it is closed.
    :param claims: How long a claim on a reference holds, and how often an instance waiting
        for another's claim looks again, at find-or-create providers
        (:mod:`payments_core.claims`); default :class:`~payments_core.claims.ClaimPolicy`.

    Use it as a context manager, or call :meth:`close` / :meth:`aclose`, to release the
    connection pools (and the ledger's connections).
    """

    def __init__(
        self,
        config: Config | None = None,
        *,
        providers: Mapping[str, ProviderFactory] | None = None,
        provider_settings: Mapping[str, Mapping[str, Any]] | None = None,
        plugins: tuple[object, ...] = (),
        load_entry_points: bool = True,
        retry: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
        async_transport: httpx.AsyncBaseTransport | None = None,
        async_http: str = "auto",
        clock: Clock | None = None,
        ledger: Ledger | None = None,
        claims: ClaimPolicy | None = None,
    ) -> None:
        self.host = PluginHost(config, clock=clock)
        self.ledger = ledger
        self.claims = claims if claims is not None else ClaimPolicy()
        self.config = self.host.config
        overrides = dict(provider_settings or {})
        for name, factory in (providers or {}).items():
            self.host.register_provider(name, factory, **overrides.get(name, {}))
        if load_entry_points:
            self.host.load_entry_points(settings=overrides)
        for plugin in plugins:
            self.host.register(plugin)
        self.retry = retry if retry is not None else RetryPolicy.from_settings(self.config.retry)
        self._transport = transport
        self._async_transport = async_transport
        self._async_http = resolve_async_backend(async_http, transport=async_transport)
        self._sender: HttpxSender | None = None
        self._async_sender: AsyncHttpSender | None = None
        self._async_loop: asyncio.AbstractEventLoop | None = None
        self._async_closer: AsyncGenerator[None, None] | None = None
        self._threads = BlockingThreads(max(2, ledger.concurrency if ledger is not None else 2))

    # -- providers -------------------------------------------------------------------------

    @property
    def provider_names(self) -> list[str]:
        """Names of the loaded providers."""
        return self.host.provider_names

    @property
    def default_provider(self) -> str:
        """The configured default provider, or the only one loaded.

        :raises PluginError: if none is configured and not exactly one is loaded.
        """
        if self.config.default_provider:
            return self.config.default_provider
        names = self.provider_names
        if len(names) == 1:
            return names[0]
        raise PluginError(
            "name a provider: none is configured as default (PAYMENTS_DEFAULT_PROVIDER) and "
            f"{len(names)} are loaded ({', '.join(names) or 'none'})"
        )

    def provider(self, name: str | None = None) -> ProviderHooks:
        """The hooks of provider ``name`` (default: :attr:`default_provider`)."""
        return self.host.provider(name or self.default_provider)

    def describe(self, provider: str | None = None) -> ProviderInfo:
        """The provider's description of itself."""
        hooks = self.provider(provider)
        info = hooks.describe_provider()
        if info is None:
            raise PluginError(f"provider {hooks.name!r} does not describe itself")
        return info

    def classify_error(
        self, error: PaymentsError, provider: str | None = None
    ) -> ErrorClassification:
        """Judge ``error`` with the provider's ``classify_error`` (and the core's fallback)."""
        return self.provider(provider or error.provider).classify_error(error)

    # -- operations: each for blocking code, then for asyncio, over one flow ---------------

    def create_order(self, request: OrderRequest, *, provider: str | None = None) -> Order:
        """Create (or find) the provider's order for ``request.reference``.

        Retries retryable failures under the policy. After an unknown outcome or a
        duplicate answer, recovers the order by querying it: never a second order.

        With a ledger, an order already recorded for the reference is returned without
        calling the provider, and a new one is recorded; if a concurrent caller recorded the
        reference first, its order is returned.

        :raises ValidationError: if the provider refuses the request's values, or the
            reference already names an order for another price (``field == "reference"``).
        :raises ProviderError: with ``classification`` set, once the policy gives up.
        :raises TransportError: with ``classification`` set, once the policy gives up.
        :raises LedgerError: if the ledger cannot be read or written.
        """
        hooks = self.provider(provider)
        return self._run(create_flow(hooks, request, self.retry, self.ledger, self.claims))

    async def create_order_async(
        self, request: OrderRequest, *, provider: str | None = None
    ) -> Order:
        """Asynchronous :meth:`create_order`; the ledger's work runs in a worker thread."""
        hooks = self.provider(provider)
        return await self._arun(create_flow(hooks, request, self.retry, self.ledger, self.claims))

    def query_order(self, reference: str, *, provider: str | None = None) -> Order | None:
        """The provider's order for ``reference``, or ``None`` if it has none."""
        return self._run(query_flow(self.provider(provider), reference, self.retry))

    async def query_order_async(
        self, reference: str, *, provider: str | None = None
    ) -> Order | None:
        """Asynchronous :meth:`query_order`."""
        return await self._arun(query_flow(self.provider(provider), reference, self.retry))

    def close_order(self, reference: str, *, provider: str | None = None) -> bool:
        """Ask the provider to close the unpaid order for ``reference``."""
        return self._run(close_flow(self.provider(provider), reference, self.retry))

    async def close_order_async(self, reference: str, *, provider: str | None = None) -> bool:
        """Asynchronous :meth:`close_order`."""
        return await self._arun(close_flow(self.provider(provider), reference, self.retry))

    def refund_order(self, request: RefundRequest, *, provider: str | None = None) -> Refund:
        """Give back ``request.amount`` of the paid order for ``request.reference``.

        Safe to repeat: the same refund reference always names the same refund. After an
        unknown outcome (a timeout, a lost answer) the refund is recovered by ``query_refund``,
        and sent again, with the same provider refund id, only if the provider holds none.

        With a ledger, the refund is checked and reserved there before the provider is asked
        (a refund reference recorded before is returned as it stands, with no provider call
        once it is final); the provider's answer is recorded, and once the refund succeeded
        the order's refunded total grows, its status moves to ``partially_refunded`` or
        ``refunded``, and ``payment_status_changed`` hears of the move once. A refund the
        provider refused outright is forgotten, so its reference may be used again; one whose
        outcome stayed unknown stays pending, and asking again settles it.

        Without a ledger the order is queried and checked as the provider states it, and the
        provider alone guards against refunding more than was paid.

        :returns: The refund: ``succeeded``, or ``pending`` while the provider has not said it
            is done (its callback, or asking again, settles it).
        :raises ValidationError: nothing changed: naming ``reference`` (no such order, or not
            paid), ``amount.currency`` (not the price's currency), ``amount`` (more than
            remains to refund) or ``refund_reference`` (it names a refund of another amount).
        :raises ProviderError: with ``classification`` set, once the policy gives up.
        :raises TransportError: with ``classification`` set, once the policy gives up.
        :raises LedgerError: if the ledger cannot be read or written.
        """
        return self._run(self._refund_flow(self.provider(provider), request))

    async def refund_order_async(
        self, request: RefundRequest, *, provider: str | None = None
    ) -> Refund:
        """Asynchronous :meth:`refund_order`; the ledger's work runs in a worker thread."""
        return await self._arun(self._refund_flow(self.provider(provider), request))

    def _refund_flow(self, hooks: ProviderHooks, request: RefundRequest) -> Flow[Refund]:
        steps = refund_flow(
            hooks, request, self.retry, self.ledger, apply=self._apply, settle=self._settle_refund
        )
        attributes = {"payments.reference": request.reference}
        return telemetry.active.operation("refund_order", hooks.name, steps, attributes)

    def _settle_refund(self, ledger: Ledger, refund: Refund) -> Refund:
        """Record the provider's answer about ``refund``; announce the order's move, if any."""
        listening = self.host.status_listened
        outcome = ledger.settle_refund(refund, announced=not listening)
        if outcome.change is not None and listening:
            self._announce(ledger, outcome.change)
        elif outcome.flagged is not None:
            log.warning(
                "%s answered refund %s of %s with %s, not recorded: %s",
                refund.provider,
                refund.refund_reference,
                refund.reference,
                refund.amount,
                outcome.flagged,
            )
        return outcome.refund

    def refunds(self, reference: str, *, provider: str | None = None) -> list[Refund]:
        """Every refund the ledger holds for the order of ``reference``, oldest first.

        :raises ConfigurationError: if the facade has no ledger.
        """
        ledger = self._need_ledger("refunds")
        return ledger.refunds_for(self.provider(provider).name, reference)

    def handle_callback(
        self, provider: str, headers: Mapping[str, str], body: bytes
    ) -> CallbackResult:
        """Verify and interpret one incoming callback (no ledger: see the ledger's ``apply``).

        :raises CallbackError: if the callback is refused; its ``reply`` is the HTTP answer.
        :raises CallbackDeferred: if it cannot be checked yet; answer 503 so it comes again.
        """
        return self._run(self._callback_flow(provider, headers, body))

    async def handle_callback_async(
        self, provider: str, headers: Mapping[str, str], body: bytes
    ) -> CallbackResult:
        """Asynchronous :meth:`handle_callback`."""
        return await self._arun(self._callback_flow(provider, headers, body))

    def _callback_flow(
        self, provider: str, headers: Mapping[str, str], body: bytes
    ) -> Flow[CallbackResult]:
        hooks = self.provider(provider)
        callback = CallbackRequest(headers, body)
        return call_provider(hooks, "handle_callback", hooks.handle_callback(callback))

    def apply_callback(
        self, provider: str, headers: Mapping[str, str], body: bytes
    ) -> CallbackOutcome:
        """Verify one callback, apply its event to the ledger, and tell the application.

        The event and the order's status change commit in one transaction; after the commit,
        ``payment_status_changed`` is called once if the status really changed. A duplicate, a
        late ``closed`` after ``paid`` or a flagged event changes nothing and calls nothing,
        and is acknowledged all the same: send ``outcome.reply`` back to the provider.

        :param provider: The provider the callback came for (from the callback URL).
        :param headers: The request headers as received.
        :param body: The raw body bytes, untouched.
        :raises ConfigurationError: if the facade has no ledger.
        :raises CallbackError: if the callback is refused; nothing is recorded; answer with
            its ``reply``.
        :raises CallbackDeferred: if it cannot be checked yet; nothing is recorded; answer 503
            so that the provider delivers it again.
        :raises LedgerError: if the event could not be recorded; answer with an error (not the
            acknowledgement) so that the provider delivers it again.
        """
        ledger = self._need_ledger("apply_callback")
        flow = self._apply_callback_flow(ledger, provider, headers, body)
        return self._run(telemetry.active.callback(provider, flow))

    async def apply_callback_async(
        self, provider: str, headers: Mapping[str, str], body: bytes
    ) -> CallbackOutcome:
        """Asynchronous :meth:`apply_callback`; the ledger's work and the application hook
        run in a worker thread, so neither blocks the event loop."""
        ledger = self._need_ledger("apply_callback")
        flow = self._apply_callback_flow(ledger, provider, headers, body)
        return await self._arun(telemetry.active.callback(provider, flow))

    def _apply_callback_flow(
        self, ledger: Ledger, provider: str, headers: Mapping[str, str], body: bytes
    ) -> Flow[CallbackOutcome]:
        verified = self._callback_flow(provider, headers, body)  # verification and parsing
        result = yield from telemetry.active.traced("payments.callback.verify", verified)
        return (yield from blocking(self._settle, ledger, provider, result))

    def reconcile(
        self, older_than: timedelta = RECONCILE_AFTER, *, provider: str | None = None
    ) -> list[ReconcileOutcome]:
        """Ask the provider about ledger orders not yet final, and apply what it says.

        For each order recorded at least ``older_than`` ago and still ``pending``,
        ``confirming`` or ``needs_review``, queries the provider; a final status, or a step
        forward between those three (``pending`` to ``confirming``), is applied as the event
        :func:`reconciliation_event`, exactly as a callback would be (once, forward only,
        announced after the commit). An order the provider cannot be asked about is reported
        with its error; the others go on.

        :param older_than: How long an order must have been waiting.
        :param provider: Only reconcile orders of this provider.
        :raises ConfigurationError: if the facade has no ledger.
        :raises LedgerError: if the ledger cannot be read or written.
        """
        return self._run(self._reconcile_flow(older_than, provider))

    async def reconcile_async(
        self, older_than: timedelta = RECONCILE_AFTER, *, provider: str | None = None
    ) -> list[ReconcileOutcome]:
        """Asynchronous :meth:`reconcile`."""
        return await self._arun(self._reconcile_flow(older_than, provider))

    def _reconcile_flow(
        self, older_than: timedelta, provider: str | None
    ) -> Flow[list[ReconcileOutcome]]:
        flow = self._reconcile_steps(self._need_ledger("reconcile"), older_than, provider)
        return telemetry.active.operation("reconcile", provider or "any", flow)

    def _reconcile_steps(
        self, ledger: Ledger, older_than: timedelta, provider: str | None
    ) -> Flow[list[ReconcileOutcome]]:
        outcomes = []
        for order in (yield from blocking(_pending, ledger, older_than, provider)):
            try:
                answer = yield from query_flow(
                    self.provider(order.provider), order.reference, self.retry
                )
            except PaymentsError as error:
                outcomes.append(
                    ReconcileOutcome(order=order, answer=None, result=None, error=error)
                )
                continue
            outcomes.append((yield from blocking(self._reconciled, ledger, order, answer)))
        return outcomes

    def reconcile_refunds(
        self, older_than: timedelta = RECONCILE_AFTER, *, provider: str | None = None
    ) -> list[Refund]:
        """Ask the provider about ledger refunds still pending, and record what it says.

        For each refund reserved at least ``older_than`` ago and still ``pending``, asks the
        provider through ``query_refund``; a final answer settles the refund exactly as its
        answer or its notice would (once; the order's move announced through the outbox). A
        refund the provider cannot be asked about stays pending and the others go on.

        :returns: The refunds checked, as the ledger now holds them.
        :raises ConfigurationError: if the facade has no ledger.
        :raises LedgerError: if the ledger cannot be read or written.
        """
        ledger = self._need_ledger("reconcile_refunds")
        return self._run(self._reconcile_refunds_flow(ledger, older_than, provider))

    async def reconcile_refunds_async(
        self, older_than: timedelta = RECONCILE_AFTER, *, provider: str | None = None
    ) -> list[Refund]:
        """Asynchronous :meth:`reconcile_refunds`."""
        ledger = self._need_ledger("reconcile_refunds")
        return await self._arun(self._reconcile_refunds_flow(ledger, older_than, provider))

    def _reconcile_refunds_flow(
        self, ledger: Ledger, older_than: timedelta, provider: str | None
    ) -> Flow[list[Refund]]:
        return reconcile_refunds_flow(
            self.provider, self.retry, ledger, older_than, provider, settle=self._settle_refund
        )

    def reconcile_order(self, reference: str, *, provider: str | None = None) -> ReconcileOutcome:
        """Ask the provider about one ledger order now, and apply what it says.

        As :meth:`reconcile` does for each order not yet final, whatever the order's age or
        status: a final answer, or a step forward, is applied once, forward only, and announced
        after the commit.

        :raises ConfigurationError: if the facade has no ledger.
        :raises ValidationError: naming ``reference`` if the ledger has no such order.
        :raises ProviderError: with ``classification`` set, once the policy gives up.
        :raises TransportError: with ``classification`` set, once the policy gives up.
        """
        ledger = self._need_ledger("reconcile_order")
        return self._run(self._reconcile_order_flow(ledger, self.provider(provider), reference))

    async def reconcile_order_async(
        self, reference: str, *, provider: str | None = None
    ) -> ReconcileOutcome:
        """Asynchronous :meth:`reconcile_order`."""
        ledger = self._need_ledger("reconcile_order")
        hooks = self.provider(provider)
        return await self._arun(self._reconcile_order_flow(ledger, hooks, reference))

    def _reconcile_order_flow(
        self, ledger: Ledger, hooks: ProviderHooks, reference: str
    ) -> Flow[ReconcileOutcome]:
        order = yield from blocking(ledger.get_order, hooks.name, reference)
        if order is None:
            raise ValidationError(
                "reference",
                f"no order is recorded for {reference!r} at {hooks.name}",
                provider=hooks.name,
            )
        answer = yield from query_flow(hooks, reference, self.retry)
        return (yield from blocking(self._reconciled, ledger, order, answer))

    # -- the ledger ------------------------------------------------------------------------

    def _need_ledger(self, operation: str) -> Ledger:
        if self.ledger is None:
            raise ConfigurationError(
                f"{operation} needs a ledger: Payments(ledger=open_ledger(url)), with the URL "
                "from PAYMENTS_DATABASE_URL"
            )
        return self.ledger

    def _settle(self, ledger: Ledger, provider: str, result: CallbackResult) -> CallbackOutcome:
        event = result.event
        if event is None:
            return CallbackOutcome(reply=result.reply, event=None, result=None)
        if event.provider != provider:
            raise PluginError(
                f"provider {provider!r} returned an event of provider {event.provider!r}",
                provider=provider,
            )
        return CallbackOutcome(reply=result.reply, event=event, result=self._apply(ledger, event))

    def _reconciled(self, ledger: Ledger, order: Order, answer: Order | None) -> ReconcileOutcome:
        if answer is None or not worth_applying(order.status, answer.status):
            return ReconcileOutcome(order=order, answer=answer, result=None)
        result = self._apply(ledger, reconciliation_event(order.provider, answer))
        return ReconcileOutcome(order=order, answer=answer, result=result)

    def _apply(self, ledger: Ledger, event: PaymentEvent) -> ApplyResult:
        # With no application listening, the change needs no announcement, nor a second write.
        listening = self.host.status_listened
        result = ledger.apply_event(event, announced=not listening)
        telemetry.active.link_order(ledger, event.provider, result.reference)
        if result.change is not None and listening:
            self._announce(ledger, result.change)
        elif result.flagged not in {None, EventFlag.STALE}:
            log.warning(
                "%s event %s recorded but not applied: %s",
                event.provider,
                event.event_id,
                result.flagged,
            )
        return result

    def _announce(self, ledger: Ledger, change: StatusChange) -> bool:
        """Call the application's hook for ``change``, then mark it announced; True if both."""
        # The change is committed and acknowledged whatever the hook does: a failing hook is
        # logged and the change stays in the outbox, for announce_pending_changes.
        try:
            self.host.payment_status_changed(change)
        except Exception:
            log.exception(
                "payment_status_changed failed for %s order %s (%s -> %s, event %s); the "
                "change is committed and will be announced again by announce_pending_changes",
                change.provider,
                change.reference,
                change.old_status,
                change.new_status,
                change.event_id,
            )
            return False
        try:
            ledger.mark_announced(change.provider, change.event_id)
        except LedgerError as error:
            log.warning(
                "%s event %s was announced but could not be marked so; it will be announced "
                "again: %s",
                change.provider,
                change.event_id,
                error,
            )
            return False
        return True

    def announce_pending_changes(self, older_than: timedelta = timedelta(0)) -> int:
        """Announce committed changes whose announcement never completed; how many now did.

        A change is committed before the application's ``payment_status_changed`` hook
        hears of it, and marked announced after the hook returns. If the process dies in
        between, or the hook raises, the change stays pending in the ledger (its outbox);
        this calls the hook for each such change, oldest first, and marks it. A change may so
        reach the hook more than once (never less): ``change.event_id`` is its stable id for
        the application to ignore a repeat. ``payments serve`` calls it at startup and
        ``payments reconcile`` on every run.

        With no plugin implementing the hook registered, it does nothing and returns 0: the
        changes wait for a process that has the application's plugins.

        :param older_than: Only changes committed at least this long ago; another process
            may be announcing younger ones right now.
        :raises ConfigurationError: if the facade has no ledger.
        :raises LedgerError: if the ledger cannot be read.
        """
        ledger = self._need_ledger("announce_pending_changes")
        if not self.host.status_listened:
            return 0
        announced = 0
        while changes := ledger.unannounced_changes(older_than):
            done = [self._announce(ledger, change) for change in changes]
            announced += sum(done)
            if not all(done):  # a failing hook or ledger: leave the rest for the next call
                break
        return announced

    async def announce_pending_changes_async(self, older_than: timedelta = timedelta(0)) -> int:
        """Asynchronous :meth:`announce_pending_changes` (the hooks run in a worker thread)."""
        return await asyncio.to_thread(self.announce_pending_changes, older_than)

    # -- running operations ----------------------------------------------------------------

    def _run(self, flow: Flow[T]) -> T:
        return drive(flow, self._send, sleep=self.retry.sleep)

    def _send(self, exchange: Exchange) -> HttpResponse:
        # The blocking client is made on first use: a callback may need none.
        sender = self._sender
        if sender is None:
            sender = self._sender = HttpxSender(self.config.http, transport=self._transport)
        return sender.send(exchange.request, exchange.provider)

    async def _arun(self, flow: Flow[T]) -> T:
        sender = self._async_sender
        loop = asyncio.get_running_loop()
        if sender is not None and self._async_loop is not loop:
            self._leave_loop()
            sender = None
        if sender is None:
            sender = self._async_sender = async_sender(
                self._async_http, self.config.http, transport=self._async_transport
            )
            self._async_loop = loop
            self._async_closer = self._close_with_loop(sender)
            await anext(self._async_closer)

        def send(exchange: Exchange) -> Awaitable[HttpResponse]:
            return sender.send(exchange.request, exchange.provider)

        return await drive_async(
            flow, send, sleep=self.retry.async_sleep, run_blocking=self._threads.run
        )

    async def _close_with_loop(self, sender: AsyncHttpSender) -> AsyncGenerator[None, None]:
        """Close ``sender`` when its event loop shuts down, or at :meth:`aclose`.

        A started async generator is finalised by ``loop.shutdown_asyncgens()``, which
        ``asyncio.run`` calls while the loop still runs: so code that calls ``asyncio.run``
        per request leaves no client (nor connection) behind.
        """
        try:
            yield
        finally:
            if self._async_sender is sender:
                self._async_sender = self._async_loop = self._async_closer = None
            await sender.aclose()

    def _leave_loop(self) -> None:
        """Drop the async client of an event loop that has ended (``asyncio.run`` per call).

        Its connections belong to that loop and cannot be used, nor closed, from another.
        :raises ConfigurationError: if that loop still runs: one facade serves one loop at a
            time.
        """
        old = self._async_loop
        if old is not None and not old.is_closed():
            raise ConfigurationError(
                "this Payments object's async client belongs to another event loop, which "
                "has not been closed; use one Payments per event loop"
            )
        log.warning(
            "an event loop ended without shutting down its async generators, so its HTTP "
            "connections were left open; use asyncio.run, or 'await payments.aclose()'"
        )
        self._async_sender = self._async_loop = self._async_closer = None

    # -- lifecycle -------------------------------------------------------------------------

    def close(self) -> None:
        """Close the blocking HTTP client, the threads of blocking steps, and the ledger."""
        self._threads.close()
        if self._sender is not None:
            self._sender.close()
            self._sender = None
        if self.ledger is not None:
            self.ledger.close()

    async def aclose(self) -> None:
        """Close both HTTP clients and the ledger."""
        self.close()
        if self._async_sender is not None and self._async_loop is not asyncio.get_running_loop():
            self._leave_loop()
        if self._async_closer is not None:
            await self._async_closer.aclose()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"Payments(providers={self.provider_names!r})"


def _pending(ledger: Ledger, older_than: timedelta, provider: str | None) -> list[Order]:
    records = ledger.pending_orders(older_than)
    return [r.order for r in records if provider is None or r.order.provider == provider]
