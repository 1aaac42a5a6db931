"""The facade's operations, each written once for blocking and asynchronous callers.

A *flow* is a generator, as a provider's :data:`~payments_core.http.Operation` is: it yields what
must be done and receives each result. Its steps are an :class:`Exchange` (a provider's request,
sent over the facade's client), a :class:`~payments_core.http.Blocking` step (ledger work, the
application's hook) and a :class:`~payments_core.http.Wait` (a retry's backoff).
:func:`~payments_core.transport.drive` runs a flow for blocking code and
:func:`~payments_core.transport.drive_async` for asyncio, so ``create_order`` and
``create_order_async`` are one flow run by each.

Creating an order is safe to repeat, whichever :class:`~payments_core.models.IdempotencyPattern`
the provider follows. When a create's outcome is unknown (a timeout, a lost response) or the
provider says the order already exists, the next attempt *queries* the order by its reference
instead of creating one; only if the provider has none is the create sent again. At a
find-or-create provider every create is preceded by that query, and with a ledger by a claim on
the reference (:mod:`payments_core.claims`), so two instances never both create.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any, Final, NamedTuple, TypeAlias, TypeVar

import attrs

from payments_core import telemetry
from payments_core.claims import ClaimPolicy, release_claim, wait_for_claim
from payments_core.errors import PaymentsError, PluginError, ValidationError
from payments_core.http import Blocking, HttpRequest, Operation, Wait, blocking
from payments_core.models import (
    ErrorCategory,
    IdempotencyPattern,
    Order,
    OrderRequest,
    PaymentEvent,
)
from payments_core.plugins import ProviderHooks
from payments_core.retry import RetryPolicy, is_retryable

if TYPE_CHECKING:
    from payments_core.ledger import Ledger

__all__ = [
    "RECOVER_BY_QUERY",
    "CreateAttempt",
    "Exchange",
    "Flow",
    "Step",
    "call_provider",
    "close_flow",
    "create_flow",
    "idempotency_of",
    "query_flow",
    "reconciliation_event",
    "same_price",
]

T = TypeVar("T")

#: Categories after which a create must be recovered by a query, never repeated blindly.
RECOVER_BY_QUERY: Final = frozenset({ErrorCategory.OUTCOME_UNKNOWN, ErrorCategory.DUPLICATE_ORDER})


class Exchange(NamedTuple):
    """A step of a flow: send ``request`` to ``provider`` and receive its response."""

    provider: str
    request: HttpRequest


Step: TypeAlias = Exchange | Blocking[Any] | Wait
Flow: TypeAlias = Generator[Step, Any, T]
"""A facade operation: yields steps, receives each one's result, returns ``T``."""


def call_provider(hooks: ProviderHooks, hook: str, operation: Operation[T] | None) -> Flow[T]:
    """The provider's ``operation`` (what its hook ``hook`` returned) as steps of a flow.

    A failure, the provider's or the transport's, is first classified by the provider's
    ``classify_error``.

    :raises PluginError: if the provider does not implement ``hook`` (``operation`` is None).
    """
    if operation is None:
        raise PluginError(f"provider {hooks.name!r} does not implement {hook}", provider=hooks.name)
    name = hooks.name
    try:
        request = next(operation)
        while True:
            request = operation.send((yield Exchange(name, request)))
    except StopIteration as stop:
        result: T = stop.value
        return result
    except PaymentsError as error:
        if error.provider is None:
            error.provider = name
        if error.classification is None:
            error.classification = hooks.classify_error(error)
        raise
    finally:
        operation.close()


def query_flow(hooks: ProviderHooks, reference: str, retry: RetryPolicy) -> Flow[Order | None]:
    """The provider's order for ``reference``, asked again under ``retry``; traced as the
    operation ``query_order``."""
    flow = retry.flow(
        lambda: call_provider(hooks, "query_order", hooks.query_order(reference)),
        should_retry=is_retryable,
    )
    return telemetry.active.operation("query_order", hooks.name, flow, _about(reference))


def close_flow(hooks: ProviderHooks, reference: str, retry: RetryPolicy) -> Flow[bool]:
    """Ask the provider to close the order for ``reference``, again under ``retry``; traced as
    the operation ``close_order``."""
    flow = retry.flow(
        lambda: call_provider(hooks, "close_order", hooks.close_order(reference)),
        should_retry=is_retryable,
    )
    return telemetry.active.operation("close_order", hooks.name, flow, _about(reference))


def create_flow(
    hooks: ProviderHooks,
    request: OrderRequest,
    retry: RetryPolicy,
    ledger: Ledger | None,
    claims: ClaimPolicy | None = None,
) -> Flow[Order]:
    """Create (or find) the provider's order for ``request``; see ``Payments.create_order``.

    Traced as the operation ``create_order``.

    :param claims: How to claim the reference at a find-or-create provider (with a ledger);
        ``None``: no claim, the search before the create alone.
    """
    flow = _create(hooks, request, retry, ledger, claims)
    return telemetry.active.operation("create_order", hooks.name, flow, _about(request.reference))


def _about(reference: str) -> dict[str, str]:
    """The attributes of an operation's span about the order of ``reference``."""
    return {"payments.reference": reference}


def _create(
    hooks: ProviderHooks,
    request: OrderRequest,
    retry: RetryPolicy,
    ledger: Ledger | None,
    claims: ClaimPolicy | None,
) -> Flow[Order]:
    if ledger is not None:
        known = yield from blocking(ledger.get_order, hooks.name, request.reference)
        if known is not None:
            telemetry.active.outcome("recorded_before")
            return same_price(known, request)
    find_first = idempotency_of(hooks) is IdempotencyPattern.FIND_OR_CREATE
    claimed: tuple[Ledger, ClaimPolicy] | None = None
    if find_first and ledger is not None and claims is not None:
        known = yield from wait_for_claim(ledger, hooks.name, request.reference, claims)
        if known is not None:
            return same_price(known, request)
        claimed = (ledger, claims)
    attempt = CreateAttempt(hooks, request, find_first=find_first)
    try:
        order = yield from retry.flow(attempt.flow, should_retry=_retry_create)
        if ledger is None:
            return order
        stored = yield from blocking(ledger.record_order, order)
    except PaymentsError as error:
        # After an unknown outcome the order may exist unseen: the claim stays until it
        # expires (this facade may take it again at once).
        if claimed is not None and _category(error) is not ErrorCategory.OUTCOME_UNKNOWN:
            yield from release_claim(*claimed, hooks.name, request.reference)
        raise
    if claimed is not None:
        yield from release_claim(*claimed, hooks.name, request.reference)
    return same_price(stored, request)


def idempotency_of(hooks: ProviderHooks) -> IdempotencyPattern:
    """The idempotency pattern the provider declares (``DERIVED_ID`` if it says nothing)."""
    info = hooks.describe_provider()
    return IdempotencyPattern.DERIVED_ID if info is None else info.idempotency


def _category(error: PaymentsError) -> ErrorCategory | None:
    return None if error.classification is None else error.classification.category


class CreateAttempt:
    """One create, across attempts: remembers whether the next attempt must query first."""

    def __init__(
        self, hooks: ProviderHooks, request: OrderRequest, *, find_first: bool = False
    ) -> None:
        self.hooks = hooks
        self.request = request
        # A find-or-create provider is searched before its first create too.
        self.recover = find_first

    def flow(self) -> Flow[Order]:
        """One attempt: the query first if the last outcome was unknown, else the create."""
        # The hook checks the request when called: a refusal comes before anything is sent.
        create = self.hooks.create_order(self.request)
        if self.recover:
            found = yield from self._query()
            if found is not None:
                return self._recovered(found)
            self.recover = False
        try:
            return (yield from call_provider(self.hooks, "create_order", create))
        except PaymentsError as error:
            if not self._note(error):
                raise
            duplicate = error
        # The provider says the order exists: find it now, in this attempt, rather than after
        # a wait (and even when this was the last attempt).
        found = yield from self._query()
        if found is None:  # not visible yet: the next attempt's create asks again
            self.recover = False
            raise duplicate
        return self._recovered(found)

    def _query(self) -> Flow[Order | None]:
        hooks = self.hooks
        return call_provider(hooks, "query_order", hooks.query_order(self.request.reference))

    def _note(self, error: PaymentsError) -> bool:
        """Remember whether the next attempt must query first; whether the order exists."""
        category = _category(error)
        if category in RECOVER_BY_QUERY:
            self.recover = True
        return category is ErrorCategory.DUPLICATE_ORDER

    def _recovered(self, found: Order) -> Order:
        """The found order, with the requested price as its amount; refused if it differs.

        Telemetry hears of it: the event ``payments.recovered_by_query``, and the outcome
        ``recovered`` for the create.

        A provider's query may state the amount only in its settlement currency; the
        request says what was ordered. The same reference with another price in the same
        currency is a different order, and must not be taken for this one.
        """
        telemetry.active.note("payments.recovered_by_query")
        telemetry.active.outcome("recovered")
        price = self.request.price
        # The found order's amount is a price to compare when the provider states it beside a
        # different settlement (it kept the price the order was created with), or when it is
        # in the requested currency. An amount in another currency that may only be the
        # settlement cannot be compared, and the request's price is taken.
        stated = found.settlement is not None and found.amount != found.settlement
        if stated or found.amount.currency == price.currency:
            same_price(found, self.request)
        return attrs.evolve(found, amount=price)


def same_price(known: Order, request: OrderRequest) -> Order:
    """``known``, the order recorded for the request's reference, if it is for the same price.

    A reference names one order: asking again for another price is a mistake to report, not
    an order to hand back (the payer would pay the first price).

    :raises ValidationError: naming ``reference`` if the prices differ.
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
    recover = isinstance(error, PaymentsError) and _category(error) in RECOVER_BY_QUERY
    return recover or is_retryable(error)


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
        provider_reference=answer.provider_reference,
        # What the provider says it holds (the settlement) is what the ledger checks; the
        # amount may only repeat the price the order was created with.
        amount=answer.amount if answer.settlement is None else answer.settlement,
        transaction_id=answer.transaction_id,
        paid=answer.paid,
        fee=answer.fee,
    )
