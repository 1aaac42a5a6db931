"""The core's share of find-or-create: one instance at a time creates a given reference.

A provider that assigns its own ids and knows no idempotency key
(:attr:`~payments_core.models.IdempotencyPattern.FIND_OR_CREATE`) can only be asked "is there an
order carrying this reference?" before a create. Two application instances asking at the same
moment would both hear "no" and both create. With a ledger the facade therefore *claims* the
reference first (:meth:`~payments_core.ledger.Ledger.claim_reference`, one statement, so one
instance wins):

* the winner searches the provider for the reference, creates only if nothing is found, records
  the order and gives the claim up;
* the other waits, looking again every :attr:`ClaimPolicy.poll` seconds (a
  :class:`~payments_core.http.Wait`, slept by the retry policy's sleep), until the order is
  recorded, which it then returns, or until the claim has expired;
* a claim expires :attr:`ClaimPolicy.hold` after it was won: an instance that crashed holding it
  keeps nobody waiting longer than that. Whoever takes the claim over searches the provider
  first, and so finds the order the crashed instance may have created.

A create whose outcome stayed unknown keeps its claim until it expires (the order may exist
and the provider's search may not show it yet); the same instance may take it again at once.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import TYPE_CHECKING

import attrs

from payments_core.http import Wait, blocking
from payments_core.redaction import get_logger

if TYPE_CHECKING:
    from payments_core.flows import Flow
    from payments_core.ledger import Ledger
    from payments_core.models import Order

__all__ = ["ClaimPolicy", "release_claim", "wait_for_claim"]

log = get_logger("payments_core.claims")


@attrs.frozen(kw_only=True)
class ClaimPolicy:
    """How a facade claims references at find-or-create providers.

    Attributes:
        hold: How long a claim holds once won. Longer than a create can take, retries
            included (the retry policy's ``deadline``, 30 s by default, plus one request's
            timeout): a live holder must not lose its claim halfway.
        poll: Seconds between two looks of an instance waiting for another's claim.
        holder: Who claims: one id per facade, so that a facade may take its own claim again.
    """

    hold: timedelta = attrs.field(
        default=timedelta(seconds=120), validator=attrs.validators.gt(timedelta(0))
    )
    poll: float = attrs.field(default=0.5, validator=attrs.validators.gt(0))
    holder: str = attrs.field(factory=lambda: uuid.uuid4().hex)


def wait_for_claim(
    ledger: Ledger, provider: str, reference: str, policy: ClaimPolicy
) -> Flow[Order | None]:
    """Claim ``reference`` for ``policy.holder``, waiting while another instance holds it.

    :returns: ``None`` once the claim is won (the caller creates, then releases it), or the
        order another instance recorded meanwhile (nothing to create; no claim is held).
    """
    while True:
        won = yield from blocking(
            ledger.claim_reference, provider, reference, policy.holder, policy.hold
        )
        # Whoever held the claim may have recorded the order and let go just now.
        known = yield from blocking(ledger.get_order, provider, reference)
        if known is not None:
            if won:
                yield from release_claim(ledger, policy, provider, reference)
            return known
        if won:
            return None
        log.debug("%s at %s is being created by another instance: waiting", reference, provider)
        yield Wait(policy.poll)


def release_claim(ledger: Ledger, policy: ClaimPolicy, provider: str, reference: str) -> Flow[None]:
    """Give up ``policy.holder``'s claim on ``reference`` (the order is recorded, or failed)."""
    yield from blocking(ledger.release_claim, provider, reference, policy.holder)
