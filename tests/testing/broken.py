"""Deliberately broken variants of the ExamplePay and ExampleCharges providers, one flaw each.

Each subclass overrides one hook of the working provider to make one mistake a real provider
could make; the contract suite must catch every one and name the contract it breaks.
"""

from __future__ import annotations

import json
import logging
import uuid

import attrs
from payments_example import charges_wire
from payments_example.charges import ChargesProvider
from payments_example.provider import ExampleProvider

import payments_core
from payments_core.http import HttpResponse, Operation


class NewOrderOnRepeat(ExampleProvider):
    """Derives the merchant order id from a random value instead of the reference."""

    @payments_core.hookimpl
    def create_order(self, request: payments_core.OrderRequest) -> Operation[payments_core.Order]:
        order = yield from super().create_order(attrs.evolve(request, reference=uuid.uuid4().hex))
        return attrs.evolve(order, reference=request.reference)


class AcceptsTamperedCallback(ExampleProvider):
    """Reads callbacks without checking their signature."""

    @payments_core.hookimpl
    def handle_callback(
        self, callback: payments_core.CallbackRequest
    ) -> Operation[payments_core.CallbackResult]:
        yield from ()
        return payments_core.CallbackResult(
            self._event(callback.body), payments_core.CallbackReply(200, b"{}")
        )


class RateLimitNotRetryable(ExampleProvider):
    """Tells the core that HTTP 429 is final."""

    @payments_core.hookimpl
    def classify_error(
        self, error: payments_core.PaymentsError
    ) -> payments_core.ErrorClassification | None:
        if isinstance(error, payments_core.ProviderError) and error.status_code == 429:
            return payments_core.ErrorClassification(
                category=payments_core.ErrorCategory.RATE_LIMITED,
                retryable=False,
                action="give up",
                user_message="Try later.",
                status_code=429,
            )
        return super().classify_error(error)


class LogsItsSecret(ExampleProvider):
    """Logs its credentials while debugging, on a logger without the redacting filter."""

    @payments_core.hookimpl
    def create_order(self, request: payments_core.OrderRequest) -> Operation[payments_core.Order]:
        logging.getLogger("broken.provider").debug(
            "signing with %s", self._api_secret.reveal() if self._api_secret else None
        )
        return super().create_order(request)


class TracesItsSecret(ExampleProvider):
    """Adds its credentials to the span its create runs in, to help someone debug signing."""

    @payments_core.hookimpl
    def create_order(self, request: payments_core.OrderRequest) -> Operation[payments_core.Order]:
        from opentelemetry import trace

        secret = self._api_secret.reveal() if self._api_secret else ""
        trace.get_current_span().set_attribute("examplepay.signing_key", secret)
        return super().create_order(request)


class FloatAmount(ExampleProvider):
    """Parses the order amount into a float."""

    def _order(self, reference: str, response: HttpResponse, operation: str) -> payments_core.Order:
        order = super()._order(reference, response, operation)
        return attrs.evolve(order, amount=float(order.amount.amount))  # type: ignore[arg-type]


class IgnoresRetryAfter(ExampleProvider):
    """Drops the Retry-After the provider sent."""

    def _error(self, response: HttpResponse, operation: str) -> payments_core.ProviderError:
        error = super()._error(response, operation)
        error.retry_after = None
        return error


class SharedEventIds(ExampleProvider):
    """Gives every paid callback the same event id, so a ledger would drop all but one."""

    def _event(self, body: bytes) -> payments_core.PaymentEvent:
        event = super()._event(body)
        return attrs.evolve(event, event_id=f"{event.status}")


class CrashesOnGarbage(ExampleProvider):
    """Peeks into the JSON body before verifying it, and lets a decoding error escape."""

    @payments_core.hookimpl
    def handle_callback(
        self, callback: payments_core.CallbackRequest
    ) -> Operation[payments_core.CallbackResult]:
        json.loads(callback.body)
        return super().handle_callback(callback)


class RefusesWithServerError(ExampleProvider):
    """Answers refused callbacks with HTTP 500, so the provider would keep redelivering."""

    def _refused(
        self,
        kind: type[payments_core.CallbackVerificationError | payments_core.CallbackPayloadError],
        status: int,
        why: str,
    ) -> payments_core.CallbackVerificationError | payments_core.CallbackPayloadError:
        return super()._refused(kind, 500, why)


class QueryFindsNothing(ExampleProvider):
    """Never finds an order by its reference, so lost creates cannot be recovered."""

    @payments_core.hookimpl
    def query_order(self, reference: str) -> Operation[payments_core.Order | None]:
        yield from ()
        return None


class ClaimsUnsupportedCurrency(ExampleProvider):
    """Says it takes USD only, but sends orders in any currency to the API."""

    @payments_core.hookimpl
    def describe_provider(self) -> payments_core.ProviderInfo:
        return attrs.evolve(super().describe_provider(), currencies=frozenset({"USD"}))


class MisnamesItself(ExampleProvider):
    """Describes itself under a hard-coded name, not the one it is registered under."""

    @payments_core.hookimpl
    def describe_provider(self) -> payments_core.ProviderInfo:
        return attrs.evolve(super().describe_provider(), name="examplepay")


class RefundsTwice(ExampleProvider):
    """Names each refund afresh instead of deriving its id, so a retried refund pays out again."""

    @payments_core.hookimpl
    def refund_order(
        self, order: payments_core.Order, request: payments_core.RefundRequest
    ) -> Operation[payments_core.Refund]:
        fresh = attrs.evolve(request, refund_reference=uuid.uuid4().hex)
        refund = yield from super().refund_order(order, fresh)
        return attrs.evolve(refund, refund_reference=request.refund_reference)


class ConfirmingIsPaid(ExampleProvider):
    """Reads "processing" (a payment seen, not yet confirmed) as paid: goods go out too early."""

    def _event(self, body: bytes) -> payments_core.PaymentEvent:
        event = super()._event(body)
        if event.status is payments_core.PaymentStatus.CONFIRMING:
            return attrs.evolve(event, status=payments_core.PaymentStatus.PAID)
        return event


class RefundIdOnlyInTheAnswer(ExampleProvider):
    """Tells its refund id only in the refund's answer, though its notices name refunds by it.

    Its notices neither echo the caller's refund reference nor carry an id the ledger could
    know beforehand: a notice that overtakes the answer finds no refund.
    """

    @payments_core.hookimpl
    def refund_id(self, request: payments_core.RefundRequest) -> str | None:
        del request
        return None


class QueryForgetsWhatWasPaid(ExampleProvider):
    """Reads what was paid from callbacks but not from queries, so reconciling loses it."""

    def _order(self, reference: str, response: HttpResponse, operation: str) -> payments_core.Order:
        return attrs.evolve(super()._order(reference, response, operation), paid=None)


class IgnoresThePickedAsset(ExampleProvider):
    """Drops what was paid from its events, so an asset the payer picked is never learnt."""

    def _event(self, body: bytes) -> payments_core.PaymentEvent:
        return attrs.evolve(super()._event(body), paid=None, fee=None)


# -- ExampleCharges, the find-or-create provider ----------------------------------------------


class NewestPageOnly(ChargesProvider):
    """Looks for the reference on the newest page of the charges list alone."""

    @payments_core.hookimpl
    def query_order(self, reference: str) -> Operation[payments_core.Order | None]:
        return self._newest_page(reference)

    def _newest_page(self, reference: str) -> Operation[payments_core.Order | None]:
        path = f"{charges_wire.PATH_CHARGES}?limit={charges_wire.PAGE_DEFAULT}"
        response = yield from self._call("GET", path, b"", "query_order")
        for charge in self._data(response, "query_order"):
            if charge["metadata"].get(charges_wire.METADATA_REFERENCE) == reference:
                return self._order(reference, charge, "query_order")
        return None


class ServerIdsDeclaredDerived(ChargesProvider):
    """Declares a derived id, though its server assigns ids and refuses no repeat."""

    @payments_core.hookimpl
    def describe_provider(self) -> payments_core.ProviderInfo:
        info = super().describe_provider()
        return attrs.evolve(info, idempotency=payments_core.IdempotencyPattern.DERIVED_ID)


class VerifiesReserialisedBody(ChargesProvider):
    """Checks the HMAC over the body parsed and serialised again, not over the bytes received."""

    @payments_core.hookimpl
    def handle_callback(
        self, callback: payments_core.CallbackRequest
    ) -> Operation[payments_core.CallbackResult]:
        try:
            again = json.dumps(json.loads(callback.body), separators=(",", ":")).encode()
        except ValueError:
            again = callback.body
        return self._callback(payments_core.CallbackRequest(callback.headers, again))
