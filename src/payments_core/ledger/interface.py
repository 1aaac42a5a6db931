"""The ledger's interface: what the facade and the command line ask of any store.

Applying an event is one transaction: the event's row (unique per provider and event id) and the
order's status change commit together or not at all, so a duplicate delivery changes nothing.

The applied event's row is also the application's outbox: it is committed with
``announced_at`` empty, and :meth:`Ledger.mark_announced` fills that in once the application's
hook has returned. A change whose announcement never completed (the process died between the
commit and the hook, or the hook raised) stays in :meth:`Ledger.unannounced_changes` until it is
announced again.
"""

from __future__ import annotations

import abc
from datetime import timedelta
from typing import Self

from payments_core.ledger.records import (
    ApplyResult,
    Backlog,
    EventRecord,
    OrderRecord,
    RefundOutcome,
)
from payments_core.models import Order, PaymentEvent, Refund, RefundRequest, StatusChange

__all__ = ["Ledger"]


class Ledger(abc.ABC):
    """Where orders and the events that change them are recorded, once each.

    Every method may raise :class:`~payments_core.errors.LedgerError` when the store cannot be
    reached or refuses a statement; nothing is half-written when it does. A ledger is safe to
    share between threads. Close it (or use it as a context manager) to release its
    connections.
    """

    #: How many of its operations one process may usefully run at once: the asynchronous
    #: facade runs its blocking steps on about as many threads (at least two, so that one slow
    #: application hook never holds every callback up). A store whose writes take turns says 1.
    concurrency: int = 4

    @abc.abstractmethod
    def record_order(self, order: Order) -> Order:
        """Record ``order`` unless one is recorded for its provider and reference already.

        :returns: The stored order: the one given, or the one recorded before, which wins;
            but if the one recorded before has no payment links (it was recovered by a query)
            and ``order`` is the same provider order with links, its links are filled in.
        :raises LedgerError: also if the provider order id is recorded for another reference.
        """

    @abc.abstractmethod
    def get_order(self, provider: str, reference: str) -> Order | None:
        """The order recorded for ``reference`` at ``provider``, or ``None``."""

    @abc.abstractmethod
    def find_orders(self, reference: str) -> list[OrderRecord]:
        """Every order recorded for ``reference``, at any provider, with its times."""

    @abc.abstractmethod
    def apply_event(self, event: PaymentEvent, *, announced: bool = False) -> ApplyResult:
        """Record ``event`` and, if it is a step forward for a matching order, apply it.

        One transaction: the event row (unique per provider and event id) and the order's
        status change commit together. A duplicate event id changes nothing. An event for an
        unknown order, naming mismatched ids, or stating another currency or amount is
        recorded with a flag and changes nothing; so is one that is not a step forward.

        :param announced: Record the change as announced at once (no application listens
            for it), instead of leaving it in :meth:`unannounced_changes` until
            :meth:`mark_announced`.
        """

    @abc.abstractmethod
    def claim_reference(self, provider: str, reference: str, holder: str, hold: timedelta) -> bool:
        """Claim the creation of ``reference``'s order at ``provider`` for ``holder``.

        One statement, so of two instances claiming at once exactly one wins. The claim is
        won when nobody holds it, when its holder's claim has expired, or when ``holder``
        holds it already (the claim is then renewed). It expires ``hold`` after it is won, so
        an instance that crashed while holding it holds it no longer than that.

        :returns: Whether ``holder`` holds the claim now.
        """

    @abc.abstractmethod
    def release_claim(self, provider: str, reference: str, holder: str) -> None:
        """Give up ``holder``'s claim on ``reference`` (nothing if another holds it)."""

    @abc.abstractmethod
    def reserve_refund(
        self, provider: str, request: RefundRequest, *, provider_refund_id: str | None = None
    ) -> RefundOutcome:
        """Record ``request`` as a pending refund, unless its refund reference is recorded.

        One transaction with the order's row locked, so two refunds of one order never both
        pass the check: the order must be recorded, paid (or partly refunded), priced in the
        refund's currency, and the refund must not exceed the price less every refund not
        failed (pending ones count: their money may already be on its way back).

        :returns: The new pending refund (``created``), or the refund recorded before under the
            same refund reference, which the caller must return instead of refunding again.
        :raises ValidationError: naming ``reference`` (no such order, or not paid),
            ``amount.currency``, ``amount`` (more than remains), or ``refund_reference``
            (recorded before for another amount). Nothing is changed.
        :param provider_refund_id: The provider's id of the refund, when it is known before
            the refund is sent (the ``refund_id`` hook): a notice naming it finds the refund
            even before the provider's answer is recorded.
        """

    @abc.abstractmethod
    def settle_refund(self, refund: Refund, *, announced: bool = False) -> RefundOutcome:
        """Record what the provider said of a reserved refund; apply it once if it succeeded.

        A succeeded refund adds to the order's refunded total and moves the order to
        ``partially_refunded``, or ``refunded`` once the total is the price. A refund that is
        final already stays as it is (the provider's answer and its notice may both report
        it: only the first counts). An answer refunding more than remains of the order (the
        price less its other refunds not failed) is not recorded: the outcome is
        ``flagged`` and the refund stays pending.

        The order's move is kept in :meth:`unannounced_changes` until :meth:`mark_announced`,
        as an applied event's is (under the event id
        ``<provider>:refund:<reference>:<refund reference>``).

        :param announced: Record the change as announced at once (no application listens).
        :raises LedgerError: if no refund is reserved under ``refund``'s references.
        """

    @abc.abstractmethod
    def release_refund(self, provider: str, reference: str, refund_reference: str) -> bool:
        """Forget a pending refund the provider refused outright; whether one was removed.

        Only a pending refund is removed: its reservation no longer holds back the amount, and
        the refund reference may be used again.
        """

    @abc.abstractmethod
    def get_refund(self, provider: str, reference: str, refund_reference: str) -> Refund | None:
        """The refund recorded under ``refund_reference`` for the order, or ``None``."""

    @abc.abstractmethod
    def refunds_for(self, provider: str, reference: str) -> list[Refund]:
        """Every refund recorded for an order, oldest first."""

    @abc.abstractmethod
    def pending_orders(self, older_than: timedelta) -> list[OrderRecord]:
        """Orders not yet final that were recorded at least ``older_than`` ago, oldest first.

        Not final: ``pending``, ``confirming`` or ``needs_review``
        (:data:`~payments_core.models.NOT_FINAL`).
        """

    @abc.abstractmethod
    def pending_refunds(self, older_than: timedelta) -> list[Refund]:
        """Refunds still ``pending``, reserved at least ``older_than`` ago, oldest first."""

    @abc.abstractmethod
    def events_for(self, provider: str, reference: str) -> list[EventRecord]:
        """The events recorded for an order, in the order they arrived."""

    @abc.abstractmethod
    def unannounced_changes(
        self, older_than: timedelta = timedelta(0), *, limit: int = 1000
    ) -> list[StatusChange]:
        """Committed status changes whose announcement to the application has not completed.

        :param older_than: Only changes recorded at least this long ago (so that changes
            another process is announcing right now are left to it).
        :param limit: At most this many, oldest first.
        """

    @abc.abstractmethod
    def mark_announced(self, provider: str, event_id: str) -> None:
        """Record that the change made by ``event_id`` has been announced to the application."""

    def trace_context(self, provider: str, reference: str) -> str | None:
        """The W3C ``traceparent`` of the operation that created the order, if one was kept.

        Kept by :meth:`record_order` when a recorded span was running (see
        ``docs/observability.md``); a store that keeps none returns ``None``.
        """
        del provider, reference
        return None

    def backlog(self) -> Backlog | None:
        """What is waiting, for the telemetry's gauges; ``None`` if the store cannot say."""
        return None

    @abc.abstractmethod
    def close(self) -> None:
        """Release the ledger's connections; calling it again does nothing."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
