"""The hook specifications every payment provider implements.

Providers implement the hooks of :class:`PaymentProvider` with the ``@payments_core.hookimpl``
marker. Applications may implement :class:`ApplicationHooks` to hear about payments, and any
plugin may wrap provider hooks (``@hookimpl(wrapper=True)``) for logging or metrics.

Routing: each provider is registered under a name. When the core calls a provider hook for
provider ``X`` it calls it on ``X`` alone (pluggy's ``subset_hook_caller`` with every other
*provider* removed), so a hook never needs to ask "is this call for me?". Plugins that are not
providers (wrappers, observers) still see every call.

Provider hooks do no I/O. Those that talk to the provider return an
:data:`~payments_core.http.Operation`, a generator that yields the requests to send and receives
the responses; the core sends them, owns retries and timeouts, and runs the same operation for
sync and async callers. All provider hooks are ``firstresult``: the first non-``None`` result is
the answer.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Protocol

import pluggy

if TYPE_CHECKING:
    import click

    from payments_core.errors import PaymentsError
    from payments_core.http import Operation
    from payments_core.models import (
        CallbackRequest,
        CallbackResult,
        ErrorClassification,
        Order,
        OrderRequest,
        ProviderInfo,
        Refund,
        RefundRequest,
        StatusChange,
    )

__all__ = [
    "PROJECT",
    "ApplicationHooks",
    "PaymentProvider",
    "ProviderSandbox",
    "hookimpl",
    "hookspec",
]

PROJECT = "payments"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


class ProviderSandbox(Protocol):
    """A running local imitation of a provider, as ``open_sandbox`` hands it over.

    Attributes:
        base_url: Where the sandbox's provider API listens (loopback).
        settings: Provider settings that point the provider at it (base URL, credentials).
    """

    base_url: str
    settings: dict[str, str]

    def pay(self, provider_order_id: str) -> None:
        """Pay an order as the payer would, which makes the sandbox send its callback."""

    def checkout_url(self, provider_order_id: str) -> str:
        """The URL of the order's checkout page in the sandbox."""

    def forward_callbacks(self, url: str) -> None:
        """Send the sandbox's callbacks to ``url`` from now on.

        A provider whose callbacks go to endpoints configured on the account (Stripe's
        webhooks), not to the callback URL of each order, has its sandbox deliver them here;
        one that posts each order's callback to that order's URL does nothing.
        """


class PaymentProvider:
    """Hooks a payment provider implements. Each is called on one named provider only."""

    @hookspec(firstresult=True)
    def describe_provider(self) -> ProviderInfo | None:
        """Describe this provider: name, display name, currencies, capabilities, settings.

        :returns: The provider's :class:`~payments_core.models.ProviderInfo`.

        Stops at the first non-``None`` result.
        """

    @hookspec(firstresult=True)
    def create_order(self, request: OrderRequest) -> Operation[Order] | None:
        """Create an order for ``request``.

        A create may be sent again for the same reference: a retry after a lost answer, or a
        second application instance. One reference must stay one order at the provider, by
        the pattern the provider declares in ``ProviderInfo.idempotency``
        (:class:`~payments_core.models.IdempotencyPattern`), which promises:

        * ``DERIVED_ID``: the id the order is created under is derived from the reference, the
          same every time; a second create is refused (``classify_error`` says
          ``duplicate_order``) or answered with the first order, and ``query_order`` finds it.
        * ``IDEMPOTENCY_KEY``: the request carries a key derived from the reference, and the
          provider answers a repeated key with the order it made the first time.
        * ``FIND_OR_CREATE``: the reference is stored with the order (metadata) and
          ``query_order`` finds it by that, among every order the account holds. The core
          calls ``query_order`` before every create and creates only if it finds nothing; with
          a ledger it also lets one instance at a time create a reference.

        The hook checks the request when it is called (raising ``ValidationError``), before
        the operation sends anything.

        :param request: The validated order request.
        :returns: An operation whose result is the created :class:`~payments_core.models.Order`.
        :raises ValidationError: if the request is valid in general but not for this provider.
        :raises ProviderError: from the operation, when the provider answers with an error.
        :raises ConfigurationError: if credentials are missing.

        Stops at the first non-``None`` result.
        """

    @hookspec(firstresult=True)
    def query_order(self, reference: str) -> Operation[Order | None] | None:
        """Ask the provider for the order it holds for ``reference``.

        Used to recover a create whose outcome is unknown (timeout, lost response, duplicate
        answer), by reconciliation, and before every create at a find-or-create provider. It
        must find the order however many orders were created after it: a search that looks at
        the newest page of a list alone is a bug (the ``query-among-many`` contract).

        :param reference: The caller's reference the order was created for.
        :returns: An operation whose result is the :class:`~payments_core.models.Order`, or
            ``None`` if the provider has no order for that reference.
        :raises ProviderError: from the operation, for any other error answer.

        Stops at the first non-``None`` result.
        """

    @hookspec(firstresult=True)
    def close_order(self, reference: str) -> Operation[bool] | None:
        """Ask the provider to close the unpaid order for ``reference``.

        :param reference: The caller's reference the order was created for.
        :returns: An operation whose result is ``True`` once the provider accepted the close.
            The final state arrives later, by callback or query.
        :raises ProviderError: from the operation, e.g. when the order is already paid.

        Stops at the first non-``None`` result.
        """

    @hookspec(firstresult=True)
    def refund_order(self, order: Order, request: RefundRequest) -> Operation[Refund] | None:
        """Give back ``request.amount`` of the paid ``order``.

        The provider's refund id must be derived from ``(order.reference,
        request.refund_reference)`` deterministically, and sending the same refund twice must
        be safe at the provider (it answers with the refund it made the first time), so that a
        retry after a timeout never refunds twice. The core has checked already that the order
        is paid, that ``request.amount`` is in the order's price currency and that it does not
        exceed what remains (with a ledger).

        :param order: The order as the ledger (or a query) holds it: ids, price, settlement,
            and ``refunded``, the total given back so far, when known.
        :param request: The validated refund request.
        :returns: An operation whose result is the :class:`~payments_core.models.Refund`
            (``PENDING`` if the provider has not said it is done). Its ``amount`` is what the
            provider refunded, in the price's currency, even when that is not what was asked
            (Binance's last refund attempt refunds all that remains); the ledger records it.
        :raises ValidationError: if the request is valid in general but not for this provider.
        :raises ProviderError: from the operation, when the provider refuses the refund.

        Stops at the first non-``None`` result.
        """

    @hookspec(firstresult=True)
    def query_refund(self, order: Order, request: RefundRequest) -> Operation[Refund | None] | None:
        """Ask the provider for the refund it holds for ``request.refund_reference``.

        Used to recover a refund whose outcome is unknown (timeout, lost answer) and to learn
        whether a pending refund is done. Providers that can implement it should: without it
        a refund's unknown outcome is recovered by sending the same refund again.

        :param order: The refunded order (as for :meth:`refund_order`).
        :param request: The refund request the refund was asked with.
        :returns: An operation whose result is the :class:`~payments_core.models.Refund`, or
            ``None`` if the provider holds no such refund.
        :raises ProviderError: from the operation, for any other error answer.

        Stops at the first non-``None`` result.
        """

    @hookspec(firstresult=True)
    def refund_id(self, request: RefundRequest) -> str | None:
        """The provider's id of the refund ``request`` will make, if it is known before sending.

        A provider that names a refund by an id derived from the references (Binance's
        ``refundRequestId``, ExamplePay's ``merchant_refund_id``) returns it here: the ledger
        records it with the refund's reservation, so a refund notice that arrives before the
        refund's own answer finds its refund. A provider whose notices echo the caller's refund
        reference (:attr:`~payments_core.models.RefundNotice.refund_reference`), or that assigns
        its ids itself, need not implement it. Pure: no I/O.

        :param request: The validated refund request.
        :returns: The id, as :attr:`~payments_core.models.Refund.provider_refund_id` will hold
            it; ``None`` if it is not known before the provider answers.

        Stops at the first non-``None`` result.
        """

    @hookspec(firstresult=True)
    def handle_callback(self, callback: CallbackRequest) -> Operation[CallbackResult] | None:
        """Verify and interpret one incoming callback.

        Verification runs over ``callback.body`` exactly as received. The operation may yield
        requests of its own (to fetch the provider's public keys, say).

        :param callback: The raw headers and body bytes.
        :returns: An operation whose result is a :class:`~payments_core.models.CallbackResult`:
            the :class:`~payments_core.models.PaymentEvent` and the acknowledgement to send.
        :raises CallbackVerificationError: signature, signing key, timestamp or headers are
            wrong.
        :raises CallbackPayloadError: malformed, oversized, or of an unknown kind.
        :raises CallbackDeferred: it cannot be verified yet (say, the keys are being fetched);
            the provider will deliver it again.

        Stops at the first non-``None`` result.
        """

    @hookspec(firstresult=True)
    def classify_error(self, error: PaymentsError) -> ErrorClassification | None:
        """Judge a failure: its category, whether to retry, after how long, and what to do.

        The core holds a fallback implementation (``trylast``) that covers HTTP statuses and
        transport failures; a provider refines it with its own error codes and returns
        ``None`` for what it has nothing to add to.

        :param error: A :class:`~payments_core.errors.ProviderError` or
            :class:`~payments_core.errors.TransportError` from one of this provider's operations.
        :returns: The :class:`~payments_core.models.ErrorClassification`, or ``None``.

        Stops at the first non-``None`` result.
        """

    @hookspec(firstresult=True)
    def check_connection(self) -> Operation[str] | None:
        """Make the cheapest authenticated call the provider offers, to prove it is reachable.

        ``payments doctor`` runs it: success means the base URL answers and the credentials
        are accepted. It must not create, change or look up any order.

        :returns: An operation whose result is one line saying what answered (for example
            "2 webhook certificates").
        :raises ConfigurationError: if credentials are missing.
        :raises ProviderError: from the operation, when the provider refuses the call.

        Stops at the first non-``None`` result.
        """

    @hookspec(firstresult=True)
    def open_sandbox(self) -> AbstractContextManager[ProviderSandbox] | None:
        """Start a local imitation of this provider for demos and tests.

        :returns: A context manager that starts the sandbox on loopback and yields a
            :class:`ProviderSandbox`; leaving it stops the sandbox. ``None`` if the provider has
            no sandbox.

        Stops at the first non-``None`` result.
        """

    @hookspec
    def register_commands(self, cli: click.Group) -> None:
        """Add provider-specific subcommands to the ``payments`` command line.

        Called for every loaded plugin, not routed to one provider.

        :param cli: The root ``payments`` command group.
        """


class ApplicationHooks:
    """Hooks an application implements to hear what happened to its payments."""

    @hookspec
    def payment_status_changed(self, change: StatusChange) -> None:
        """An order's status changed, and the change is committed to the ledger.

        Called once per real change, after the commit: a duplicate callback, a late ``closed``
        after ``paid`` or a failed transaction never calls it. Called for every registered
        plugin that implements it. Only a crash (or a raising hook) between the call and the
        ledger's note that it was made brings the same change again, from
        :meth:`~payments_core.Payments.announce_pending_changes`: ignore a repeated
        ``change.event_id``.

        Steps that are not final are announced too: ``confirming`` (the provider saw the
        payment and waits for it to be confirmed: tell the payer "we saw your payment", but
        deliver nothing yet) and ``needs_review`` (paid, but not as asked: someone must accept
        or refuse it at the provider). Deliver on ``paid`` only;
        ``change.new_status.is_final`` says whether the payment has ended.

        :param change: What changed: reference, old and new status, the causing event.
        """
