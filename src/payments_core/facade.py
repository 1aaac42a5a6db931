"""``Payments``: the one object an application talks to.

It loads the providers, owns the HTTP clients (pooled, with timeouts), the retry policy and the
configuration, and offers each operation twice: ``create_order`` for blocking code and
``create_order_async`` for asyncio. Both run the provider's same sans-I/O operation.

Creating an order is safe to repeat. The provider derives its order id from the caller's
reference, and when a create's outcome is unknown (a timeout, a lost response) or the provider
says the order already exists, the next attempt *queries* the order by its reference instead of
creating one; only if the provider has none is the create sent again.

With a ledger (``Payments(ledger=open_ledger(url))``) the facade also remembers: an order
already recorded for a reference is returned without asking the provider, callbacks are
applied once each (:meth:`Payments.apply_callback`), the application's
``payment_status_changed`` hook hears of each committed change once, and
:meth:`Payments.reconcile` asks the provider about orders whose callback never came.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable, Mapping
from datetime import timedelta
from types import TracebackType
from typing import Any, Self, TypeVar

import attrs
import httpx

from payments_core.config import Config
from payments_core.errors import (
    ConfigurationError,
    LedgerError,
    PaymentsError,
    PluginError,
    ValidationError,
)
from payments_core.http import HttpRequest, HttpResponse, Operation
from payments_core.ledger import ApplyResult, Ledger, RefundOutcome
from payments_core.models import (
    CallbackRequest,
    CallbackResult,
    ErrorCategory,
    ErrorClassification,
    Order,
    OrderRequest,
    PaymentEvent,
    PaymentStatus,
    ProviderInfo,
    Refund,
    RefundRequest,
    RefundStatus,
    StatusChange,
)
from payments_core.outcomes import CallbackOutcome, ReconcileOutcome
from payments_core.plugins import Clock, PluginHost, ProviderFactory, ProviderHooks
from payments_core.redaction import get_logger
from payments_core.refunding import RefundAttempt, check_order_refundable
from payments_core.retry import RetryPolicy, is_retryable
from payments_core.rules import EventFlag
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

#: Categories after which a create must be recovered by a query, never repeated blindly.
RECOVER_BY_QUERY = frozenset({ErrorCategory.OUTCOME_UNKNOWN, ErrorCategory.DUPLICATE_ORDER})


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
    ) -> None:
        self.host = PluginHost(config, clock=clock)
        self.ledger = ledger
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
        self._sending: dict[str, _Sending] = {}
        self._async_sender: AsyncHttpSender | None = None
        self._async_loop: asyncio.AbstractEventLoop | None = None
        self._async_closer: AsyncGenerator[None, None] | None = None

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

    # -- blocking API ----------------------------------------------------------------------

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
        if self.ledger is not None:
            known = self.ledger.get_order(hooks.name, request.reference)
            if known is not None:
                return _same_price(known, request)
        attempt = _CreateAttempt(hooks, request)
        order = self.retry.call(
            lambda: attempt.run(lambda op: self._run(hooks, op)),
            should_retry=_retry_create,
        )
        if self.ledger is None:
            return order
        return _same_price(self.ledger.record_order(order), request)

    def query_order(self, reference: str, *, provider: str | None = None) -> Order | None:
        """The provider's order for ``reference``, or ``None`` if it has none."""
        hooks = self.provider(provider)
        return self.retry.call(
            lambda: self._run(hooks, _need(hooks, "query_order", hooks.query_order(reference))),
            should_retry=is_retryable,
        )

    def close_order(self, reference: str, *, provider: str | None = None) -> bool:
        """Ask the provider to close the unpaid order for ``reference``."""
        hooks = self.provider(provider)
        return self.retry.call(
            lambda: self._run(hooks, _need(hooks, "close_order", hooks.close_order(reference))),
            should_retry=is_retryable,
        )

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
        hooks = self.provider(provider)
        ledger = self.ledger
        order: Order | None
        if ledger is None:
            answer = self.query_order(request.reference, provider=hooks.name)
            if answer is not None and answer.status is PaymentStatus.REFUNDED:
                # Asked again after it refunded everything: the refund, if it is this one.
                known = RefundAttempt(hooks, answer, request, recover=True).known()
                if known is not None:
                    found = self._run(hooks, known)
                    if found is not None:
                        return found
            order = check_order_refundable(answer, request, hooks.name)
            reserved = None
        else:
            order = self._refundable(ledger, hooks, request)
            reserved = ledger.reserve_refund(hooks.name, request)
            if not reserved.created and reserved.refund.status is not RefundStatus.PENDING:
                return reserved.refund
            order = order or ledger.get_order(hooks.name, request.reference)
        assert order is not None  # the reservation found it
        attempt = RefundAttempt(
            hooks, order, request, recover=reserved is not None and not reserved.created
        )
        try:
            refund = self.retry.call(
                lambda: attempt.run(lambda op: self._run(hooks, op)), should_retry=is_retryable
            )
        except PaymentsError:
            if ledger is not None and not attempt.unknown:
                ledger.release_refund(hooks.name, request.reference, request.refund_reference)
            raise
        follow_up = attempt.follow_up(refund)
        if follow_up is not None:
            if ledger is not None:
                # Known by its provider id now, the refund's notification can settle it too.
                self._settled_refund(ledger, ledger.settle_refund(refund))
            try:
                refund = attempt.settled(refund, self._run(hooks, follow_up))
            except PaymentsError as error:
                log.info("refund %s stays pending: %s", request.refund_reference, error)
        if ledger is None:
            return refund
        return self._settled_refund(ledger, ledger.settle_refund(refund))

    def _refundable(
        self, ledger: Ledger, hooks: ProviderHooks, request: RefundRequest
    ) -> Order | None:
        """The ledger's order for the refund, first brought up to date if it is not paid.

        A payment whose callback has not arrived yet is learnt from the provider and applied
        as reconciliation applies it; an order the ledger never saw is recorded. A refund
        recorded before under the refund reference needs neither: it is the answer.
        """
        reference = request.reference
        order = ledger.get_order(hooks.name, reference)
        if order is not None and order.status.is_refundable:
            return order
        if ledger.get_refund(hooks.name, reference, request.refund_reference) is not None:
            return order
        answer = self.query_order(reference, provider=hooks.name)
        if answer is None:
            return order
        if order is None:
            return ledger.record_order(answer)
        if answer.status is not PaymentStatus.PENDING:
            self._apply(ledger, reconciliation_event(hooks.name, answer))
        return ledger.get_order(hooks.name, reference)

    def _settled_refund(self, ledger: Ledger, outcome: RefundOutcome) -> Refund:
        if outcome.change is not None:
            self._announce(ledger, outcome.change)
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
        hooks = self.provider(provider)
        callback = CallbackRequest(headers, body)
        return self._run(hooks, _need(hooks, "handle_callback", hooks.handle_callback(callback)))

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
        return self._settle(ledger, provider, self.handle_callback(provider, headers, body))

    def reconcile(
        self, older_than: timedelta = RECONCILE_AFTER, *, provider: str | None = None
    ) -> list[ReconcileOutcome]:
        """Ask the provider about ledger orders still pending, and apply what it says.

        For each order recorded at least ``older_than`` ago and still ``pending``, queries the
        provider; a final status is applied as the event :func:`reconciliation_event`, exactly
        as a callback would be (once, forward only, announced after the commit). An order the
        provider cannot be asked about is reported with its error; the others go on.

        :param older_than: How long an order must have been pending.
        :param provider: Only reconcile orders of this provider.
        :raises ConfigurationError: if the facade has no ledger.
        :raises LedgerError: if the ledger cannot be read or written.
        """
        ledger = self._need_ledger("reconcile")
        outcomes = []
        for order in _pending(ledger, older_than, provider):
            try:
                answer = self.query_order(order.reference, provider=order.provider)
            except PaymentsError as error:
                outcomes.append(
                    ReconcileOutcome(order=order, answer=None, result=None, error=error)
                )
                continue
            outcomes.append(self._reconciled(ledger, order, answer))
        return outcomes

    # -- asynchronous API ------------------------------------------------------------------

    async def create_order_async(
        self, request: OrderRequest, *, provider: str | None = None
    ) -> Order:
        """Asynchronous :meth:`create_order`."""
        hooks = self.provider(provider)
        ledger = self.ledger
        if ledger is not None:
            known = await asyncio.to_thread(ledger.get_order, hooks.name, request.reference)
            if known is not None:
                return _same_price(known, request)
        attempt = _CreateAttempt(hooks, request)
        order = await self.retry.acall(
            lambda: attempt.arun(lambda op: self._arun(hooks, op)),
            should_retry=_retry_create,
        )
        if ledger is None:
            return order
        return _same_price(await asyncio.to_thread(ledger.record_order, order), request)

    async def query_order_async(
        self, reference: str, *, provider: str | None = None
    ) -> Order | None:
        """Asynchronous :meth:`query_order`."""
        hooks = self.provider(provider)
        return await self.retry.acall(
            lambda: self._arun(hooks, _need(hooks, "query_order", hooks.query_order(reference))),
            should_retry=is_retryable,
        )

    async def close_order_async(self, reference: str, *, provider: str | None = None) -> bool:
        """Asynchronous :meth:`close_order`."""
        hooks = self.provider(provider)
        return await self.retry.acall(
            lambda: self._arun(hooks, _need(hooks, "close_order", hooks.close_order(reference))),
            should_retry=is_retryable,
        )

    async def refund_order_async(
        self, request: RefundRequest, *, provider: str | None = None
    ) -> Refund:
        """Asynchronous :meth:`refund_order`; the ledger's work runs in a worker thread."""
        hooks = self.provider(provider)
        ledger = self.ledger
        order: Order | None
        if ledger is None:
            answer = await self.query_order_async(request.reference, provider=hooks.name)
            if answer is not None and answer.status is PaymentStatus.REFUNDED:
                known = RefundAttempt(hooks, answer, request, recover=True).known()
                if known is not None:
                    found = await self._arun(hooks, known)
                    if found is not None:
                        return found
            order = check_order_refundable(answer, request, hooks.name)
            reserved = None
        else:
            order = await self._refundable_async(ledger, hooks, request)
            reserved = await asyncio.to_thread(ledger.reserve_refund, hooks.name, request)
            if not reserved.created and reserved.refund.status is not RefundStatus.PENDING:
                return reserved.refund
            if order is None:
                order = await asyncio.to_thread(ledger.get_order, hooks.name, request.reference)
        assert order is not None
        attempt = RefundAttempt(
            hooks, order, request, recover=reserved is not None and not reserved.created
        )
        try:
            refund = await self.retry.acall(
                lambda: attempt.arun(lambda op: self._arun(hooks, op)), should_retry=is_retryable
            )
        except PaymentsError:
            if ledger is not None and not attempt.unknown:
                await asyncio.to_thread(
                    ledger.release_refund, hooks.name, request.reference, request.refund_reference
                )
            raise
        follow_up = attempt.follow_up(refund)
        if follow_up is not None:
            if ledger is not None:
                noted = await asyncio.to_thread(ledger.settle_refund, refund)
                await asyncio.to_thread(self._settled_refund, ledger, noted)
            try:
                refund = attempt.settled(refund, await self._arun(hooks, follow_up))
            except PaymentsError as error:
                log.info("refund %s stays pending: %s", request.refund_reference, error)
        if ledger is None:
            return refund
        outcome = await asyncio.to_thread(ledger.settle_refund, refund)
        return await asyncio.to_thread(self._settled_refund, ledger, outcome)

    async def _refundable_async(
        self, ledger: Ledger, hooks: ProviderHooks, request: RefundRequest
    ) -> Order | None:
        reference = request.reference
        order = await asyncio.to_thread(ledger.get_order, hooks.name, reference)
        if order is not None and order.status.is_refundable:
            return order
        known = await asyncio.to_thread(
            ledger.get_refund, hooks.name, reference, request.refund_reference
        )
        if known is not None:
            return order
        answer = await self.query_order_async(reference, provider=hooks.name)
        if answer is None:
            return order
        if order is None:
            return await asyncio.to_thread(ledger.record_order, answer)
        if answer.status is not PaymentStatus.PENDING:
            event = reconciliation_event(hooks.name, answer)
            await asyncio.to_thread(self._apply, ledger, event)
        return await asyncio.to_thread(ledger.get_order, hooks.name, reference)

    async def handle_callback_async(
        self, provider: str, headers: Mapping[str, str], body: bytes
    ) -> CallbackResult:
        """Asynchronous :meth:`handle_callback`."""
        hooks = self.provider(provider)
        callback = CallbackRequest(headers, body)
        return await self._arun(
            hooks, _need(hooks, "handle_callback", hooks.handle_callback(callback))
        )

    async def apply_callback_async(
        self, provider: str, headers: Mapping[str, str], body: bytes
    ) -> CallbackOutcome:
        """Asynchronous :meth:`apply_callback`.

        The ledger's work and the application hook run in a worker thread, so neither blocks
        the event loop.
        """
        ledger = self._need_ledger("apply_callback")
        result = await self.handle_callback_async(provider, headers, body)
        return await asyncio.to_thread(self._settle, ledger, provider, result)

    async def reconcile_async(
        self, older_than: timedelta = RECONCILE_AFTER, *, provider: str | None = None
    ) -> list[ReconcileOutcome]:
        """Asynchronous :meth:`reconcile`."""
        ledger = self._need_ledger("reconcile")
        outcomes = []
        for order in await asyncio.to_thread(_pending, ledger, older_than, provider):
            try:
                answer = await self.query_order_async(order.reference, provider=order.provider)
            except PaymentsError as error:
                outcomes.append(
                    ReconcileOutcome(order=order, answer=None, result=None, error=error)
                )
                continue
            outcomes.append(await asyncio.to_thread(self._reconciled, ledger, order, answer))
        return outcomes

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
        if answer is None or answer.status is PaymentStatus.PENDING:
            return ReconcileOutcome(order=order, answer=answer, result=None)
        result = self._apply(ledger, reconciliation_event(order.provider, answer))
        return ReconcileOutcome(order=order, answer=answer, result=result)

    def _apply(self, ledger: Ledger, event: PaymentEvent) -> ApplyResult:
        # With no application listening, the change needs no announcement, nor a second write.
        listening = self._listening()
        result = ledger.apply_event(event, announced=not listening)
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

    def _listening(self) -> bool:
        """Whether a registered plugin implements ``payment_status_changed``."""
        return bool(self.host.pm.hook.payment_status_changed.get_hookimpls())

    def _announce(self, ledger: Ledger, change: StatusChange) -> bool:
        """Call the application's hook for ``change``, then mark it announced; True if both."""
        # The change is committed and acknowledged whatever the hook does: a failing hook is
        # logged and the change stays in the outbox, for announce_pending_changes.
        try:
            self.host.pm.hook.payment_status_changed(change=change)
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
        if not self._listening():
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

    def _run(self, hooks: ProviderHooks, operation: Operation[T]) -> T:
        send = self._sending.get(hooks.name)
        if send is None:
            send = self._sending[hooks.name] = _Sending(self, hooks.name)
        try:
            return drive(operation, send)
        except PaymentsError as error:
            _classify(hooks, error)
            raise

    def _blocking_sender(self) -> HttpxSender:
        """The blocking client's sender, made on first use (a callback may need none)."""
        sender = self._sender
        if sender is None:
            sender = self._sender = HttpxSender(self.config.http, transport=self._transport)
        return sender

    async def _arun(self, hooks: ProviderHooks, operation: Operation[T]) -> T:
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

        async def send(request: HttpRequest) -> HttpResponse:
            return await sender.send(request, hooks.name)

        try:
            return await drive_async(operation, send)
        except PaymentsError as error:
            _classify(hooks, error)
            raise

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
        """Close the blocking HTTP client and the ledger."""
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

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"Payments(providers={self.provider_names!r})"


class _Sending:
    """Sends one provider's requests over the facade's blocking client: one per provider,
    kept, rather than a closure made for every operation."""

    __slots__ = ("_payments", "_provider")

    def __init__(self, payments: Payments, provider: str) -> None:
        self._payments = payments
        self._provider = provider

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self._payments._blocking_sender().send(request, self._provider)


class _CreateAttempt:
    """One create, across attempts: remembers whether the next attempt must query first."""

    def __init__(self, hooks: ProviderHooks, request: OrderRequest) -> None:
        self.hooks = hooks
        self.request = request
        self.recover = False

    def _query(self) -> Operation[Order | None]:
        return _need(self.hooks, "query_order", self.hooks.query_order(self.request.reference))

    def _create(self) -> Operation[Order]:
        return _need(self.hooks, "create_order", self.hooks.create_order(self.request))

    def _note(self, error: PaymentsError) -> bool:
        """Remember whether the next attempt must query first; whether the order exists."""
        category = None if error.classification is None else error.classification.category
        if category in RECOVER_BY_QUERY:
            self.recover = True
        return category is ErrorCategory.DUPLICATE_ORDER

    def _recovered(self, found: Order) -> Order:
        """The found order, with the requested price as its amount; refused if it differs.

        A provider's query may state the amount only in its settlement currency; the
        request says what was ordered. The same reference with another price in the same
        currency is a different order, and must not be taken for this one.
        """
        price = self.request.price
        # The found order's amount is a price to compare when the provider states it beside a
        # different settlement (it kept the price the order was created with), or when it is
        # in the requested currency. An amount in another currency that may only be the
        # settlement cannot be compared, and the request's price is taken.
        stated = found.settlement is not None and found.amount != found.settlement
        if stated or found.amount.currency == price.currency:
            _same_price(found, self.request)
        return attrs.evolve(found, amount=price)

    def run(self, run: Callable[[Operation[Any]], Any]) -> Order:
        if self.recover:
            found: Order | None = run(self._query())
            if found is not None:
                return self._recovered(found)
            self.recover = False
        try:
            created: Order = run(self._create())
        except PaymentsError as error:
            if not self._note(error):
                raise
            duplicate = error
        else:
            return created
        # The provider says the order exists: find it now, in this attempt, rather than after
        # a wait (and even when this was the last attempt).
        found = run(self._query())
        if found is None:  # not visible yet: the next attempt's create asks again
            self.recover = False
            raise duplicate
        return self._recovered(found)

    async def arun(self, run: Callable[[Operation[Any]], Any]) -> Order:
        if self.recover:
            found: Order | None = await run(self._query())
            if found is not None:
                return self._recovered(found)
            self.recover = False
        try:
            created: Order = await run(self._create())
        except PaymentsError as error:
            if not self._note(error):
                raise
            duplicate = error
        else:
            return created
        found = await run(self._query())
        if found is None:
            self.recover = False
            raise duplicate
        return self._recovered(found)


def reconciliation_event(provider: str, answer: Order) -> PaymentEvent:
    """The event reconciliation applies for the provider's ``answer`` about an order.

    Its id, ``{provider}:reconcile:{provider_order_id}:{status}``, is the same every time the
    provider gives the same answer, so reconciling twice applies it once.
    """
    return PaymentEvent(
        provider=provider,
        event_id=f"{provider}:reconcile:{answer.provider_order_id}:{answer.status.value}",
        status=answer.status,
        provider_order_id=answer.provider_order_id,
        merchant_order_id=answer.merchant_order_id,
        # What the provider says it holds (the settlement) is what the ledger checks; the
        # amount may only repeat the price the order was created with.
        amount=answer.amount if answer.settlement is None else answer.settlement,
        transaction_id=answer.transaction_id,
    )


def _pending(ledger: Ledger, older_than: timedelta, provider: str | None) -> list[Order]:
    records = ledger.pending_orders(older_than)
    return [r.order for r in records if provider is None or r.order.provider == provider]


def _same_price(known: Order, request: OrderRequest) -> Order:
    """``known``, the order recorded for the request's reference, if it is for the same price.

    A reference names one order: asking again for another price is a mistake to report, not
    an order to hand back (the payer would pay the first price).
    """
    if known.amount != request.price:
        raise ValidationError(
            "reference",
            f"{request.reference!r} already names an order for {known.amount} at "
            f"{known.provider}, not {request.price}",
            provider=known.provider,
        )
    return known


def _retry_create(error: BaseException) -> bool:
    if is_retryable(error):
        return True
    classification = getattr(error, "classification", None)
    return classification is not None and classification.category in RECOVER_BY_QUERY


def _classify(hooks: ProviderHooks, error: PaymentsError) -> None:
    if error.provider is None:
        error.provider = hooks.name
    if error.classification is None:
        error.classification = hooks.classify_error(error)


def _need(hooks: ProviderHooks, hook: str, operation: Operation[T] | None) -> Operation[T]:
    if operation is None:
        raise PluginError(f"provider {hooks.name!r} does not implement {hook}", provider=hooks.name)
    return operation
