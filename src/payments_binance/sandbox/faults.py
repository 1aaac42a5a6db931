"""Fault injection: named profiles and a seeded injector whose decisions are reproducible.

A :class:`FaultProfile` gives, per merchant API request, the probability of each request fault,
and per webhook event the probability of a duplicate or an out-of-order delivery. The
:class:`FaultInjector` draws one random number per eligible request (and one per webhook event)
from generators seeded with the sandbox seed, so the sequence of decisions depends only on the
seed and the arrival order. A profile whose request probabilities add up to more than 1 is
rejected with ``ValueError``.
"""

from __future__ import annotations

import enum
import random

import attrs

from payments_binance import protocol


class FaultKind(enum.StrEnum):
    """Every fault the sandbox can inject; the value is the name used in stats and logs."""

    RATE_LIMIT_RETRY_AFTER = "rate_limit_retry_after"
    RATE_LIMIT = "rate_limit"
    SERVER_ERROR = "server_error"
    DROP_RESPONSE = "drop_response"
    TIMEOUT = "timeout"
    RESET = "reset"
    DUPLICATE_WEBHOOK = "duplicate_webhook"
    OUT_OF_ORDER_WEBHOOK = "out_of_order_webhook"


def _probability(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{attribute.name} must be a probability in [0, 1], got {value!r}")


@attrs.frozen(kw_only=True)
class FaultProfile:
    """Probabilities of each fault, and the parameters of the faults themselves.

    Request faults (the first six fields) are mutually exclusive per request. ``timeout`` holds
    the request for ``timeout_delay_s`` seconds server-side; with ``timeout_then_process`` the
    request is then handled normally (the client has given up, so the outcome is unknown to it),
    otherwise the connection is closed. ``reorder_max_hold_s`` bounds how long an out-of-order
    webhook waits for the next delivery to overtake it.
    """

    name: str = "custom"
    rate_limit_retry_after: float = attrs.field(default=0.0, validator=_probability)
    rate_limit: float = attrs.field(default=0.0, validator=_probability)
    server_error: float = attrs.field(default=0.0, validator=_probability)
    drop_response: float = attrs.field(default=0.0, validator=_probability)
    timeout: float = attrs.field(default=0.0, validator=_probability)
    reset: float = attrs.field(default=0.0, validator=_probability)
    duplicate_webhook: float = attrs.field(default=0.0, validator=_probability)
    out_of_order_webhook: float = attrs.field(default=0.0, validator=_probability)

    retry_after_s: int = 1
    timeout_delay_s: float = 30.0
    timeout_then_process: bool = True
    server_error_statuses: tuple[int, ...] = attrs.field(default=(500, 503), converter=tuple)
    apply_to_certificates: bool = False
    reorder_max_hold_s: float = 1.0

    def __attrs_post_init__(self) -> None:
        if sum(p for _, p in self.request_weights()) > 1.0 + 1e-9:
            raise ValueError("request fault probabilities must add up to at most 1")
        if not self.server_error_statuses:
            raise ValueError("server_error_statuses must not be empty")

    def request_weights(self) -> tuple[tuple[FaultKind, float], ...]:
        """The request faults in the fixed order in which a random draw is matched against them."""
        return (
            (FaultKind.RATE_LIMIT_RETRY_AFTER, self.rate_limit_retry_after),
            (FaultKind.RATE_LIMIT, self.rate_limit),
            (FaultKind.SERVER_ERROR, self.server_error),
            (FaultKind.DROP_RESPONSE, self.drop_response),
            (FaultKind.TIMEOUT, self.timeout),
            (FaultKind.RESET, self.reset),
        )

    @classmethod
    def named(cls, name: str) -> FaultProfile:
        """The profile called ``name`` (see :data:`PROFILES`); ``KeyError`` if there is none."""
        return PROFILES[name]


#: Named profiles: "flaky" is the request mix of quality bar R1.
PROFILES: dict[str, FaultProfile] = {
    "none": FaultProfile(name="none"),
    "flaky": FaultProfile(
        name="flaky",
        rate_limit_retry_after=0.05,
        rate_limit=0.05,
        server_error=0.10,
        drop_response=0.05,
        timeout=0.05,
        reset=0.02,
    ),
    "webhooks": FaultProfile(name="webhooks", duplicate_webhook=0.3, out_of_order_webhook=0.3),
    "chaos": FaultProfile(
        name="chaos",
        rate_limit_retry_after=0.05,
        rate_limit=0.05,
        server_error=0.10,
        drop_response=0.05,
        timeout=0.05,
        reset=0.02,
        duplicate_webhook=0.3,
        out_of_order_webhook=0.3,
    ),
}


@attrs.frozen
class FaultRecord:
    """One injected fault: the eligible-request (or webhook-event) number, where, and what."""

    seq: int
    target: str
    kind: FaultKind
    status: int | None = None


@attrs.define
class FaultInjector:
    """Makes the seeded fault decisions and remembers every fault it injected, in order."""

    profile: FaultProfile
    seed: int
    log: list[FaultRecord] = attrs.field(factory=list)
    _request_rng: random.Random = attrs.field(init=False)
    _webhook_rng: random.Random = attrs.field(init=False)
    _request_seq: int = attrs.field(init=False, default=0)
    _webhook_seq: int = attrs.field(init=False, default=0)

    def __attrs_post_init__(self) -> None:
        self._request_rng = random.Random(f"requests:{self.seed}")
        self._webhook_rng = random.Random(f"webhooks:{self.seed}")

    def counts(self) -> dict[str, int]:
        """How many faults of each kind were injected so far."""
        counts: dict[str, int] = {}
        for record in self.log:
            counts[record.kind.value] = counts.get(record.kind.value, 0) + 1
        return counts

    def for_request(self, path: str) -> FaultRecord | None:
        """Decide the fault of one merchant API request, or ``None`` for a normal answer."""
        if path == protocol.PATH_CERTIFICATES and not self.profile.apply_to_certificates:
            return None
        self._request_seq += 1
        draw = self._request_rng.random()
        threshold = 0.0
        for kind, probability in self.profile.request_weights():
            threshold += probability
            if draw < threshold:
                status = None
                if kind is FaultKind.SERVER_ERROR:
                    status = self._request_rng.choice(self.profile.server_error_statuses)
                record = FaultRecord(self._request_seq, path, kind, status)
                self.log.append(record)
                return record
        return None

    def for_webhook(self, prepay_id: str) -> frozenset[FaultKind]:
        """Decide whether one webhook event is delivered twice and/or held back out of order."""
        self._webhook_seq += 1
        duplicate = self._webhook_rng.random() < self.profile.duplicate_webhook
        reorder = self._webhook_rng.random() < self.profile.out_of_order_webhook
        kinds = set()
        if duplicate:
            kinds.add(FaultKind.DUPLICATE_WEBHOOK)
        if reorder:
            kinds.add(FaultKind.OUT_OF_ORDER_WEBHOOK)
        for kind in sorted(kinds):
            self.log.append(FaultRecord(self._webhook_seq, prepay_id, kind))
        return frozenset(kinds)
