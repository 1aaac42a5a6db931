"""Faults a sandbox injects: their kinds, named profiles, and one reproducible draw.

A :class:`FaultProfile` gives, per API request, the probability of each request fault, and per
webhook event the probability of a duplicate or an out-of-order delivery. :class:`Faults`
draws one random number per eligible request (and one pair per webhook event) from generators
started from a number the caller chooses, so the sequence of decisions depends only on that
number and the arrival order, and it remembers every fault in a log. A probability outside
[0, 1], or request probabilities adding up to more than 1, raise ``ValueError``.
"""

from __future__ import annotations

import enum
import random
import threading
from collections import Counter
from collections.abc import Collection
from typing import Any

import attrs

__all__ = ["PROFILES", "REQUEST_FAULTS", "FaultKind", "FaultProfile", "FaultRecord", "Faults"]


class FaultKind(enum.StrEnum):
    """Every fault a sandbox can inject; the value names it in counts and logs."""

    RATE_LIMIT_RETRY_AFTER = "rate_limit_retry_after"
    RATE_LIMIT = "rate_limit"
    SERVER_ERROR = "server_error"
    DROP_RESPONSE = "drop_response"
    TIMEOUT = "timeout"
    RESET = "reset"
    DUPLICATE_WEBHOOK = "duplicate_webhook"
    OUT_OF_ORDER_WEBHOOK = "out_of_order_webhook"


#: The request faults, in the fixed order in which a draw is matched against them.
REQUEST_FAULTS = tuple(FaultKind)[:6]


def _probability(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{attribute.name} must be a probability in [0, 1], got {value!r}")


@attrs.frozen(kw_only=True)
class FaultProfile:
    """Probabilities of each fault, and the parameters of the faults themselves.

    Request faults (the first six fields) exclude each other per request:

    * ``rate_limit_retry_after``, ``rate_limit``: a 429, with ``Retry-After: retry_after_s``
      or without;
    * ``server_error``: one of ``server_error_statuses``;
    * ``drop_response``: the request is done, its answer lost halfway (the connection closes);
    * ``timeout``: the request is held ``timeout_delay_s`` seconds; with
      ``timeout_then_process`` it is then done (the client has given up, so the outcome is
      unknown to it), otherwise the connection is closed;
    * ``reset``: the connection is reset before anything is done.

    ``duplicate_webhook`` sends an event twice; ``out_of_order_webhook`` holds its delivery
    until a later one has overtaken it, for at most ``reorder_max_hold_s``. Paths a sandbox
    spares (a key-discovery endpoint, say) are faulted only with ``fault_spared_paths``.
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
    fault_spared_paths: bool = False
    reorder_max_hold_s: float = 1.0

    def __attrs_post_init__(self) -> None:
        if sum(p for _, p in self.request_weights()) > 1.0 + 1e-9:
            raise ValueError("request fault probabilities must add up to at most 1")
        if not self.server_error_statuses:
            raise ValueError("server_error_statuses must not be empty")

    def request_weights(self) -> tuple[tuple[FaultKind, float], ...]:
        """Each request fault with its probability, in the order a draw is matched."""
        return tuple((kind, getattr(self, kind.value)) for kind in REQUEST_FAULTS)


_FLAKY_REQUESTS: dict[str, Any] = {
    "rate_limit_retry_after": 0.05,
    "rate_limit": 0.05,
    "server_error": 0.10,
    "drop_response": 0.05,
    "timeout": 0.05,
    "reset": 0.02,
}
_WEBHOOK_MIX: dict[str, Any] = {"duplicate_webhook": 0.3, "out_of_order_webhook": 0.3}

#: The named profiles. "flaky": 10% 429 (half with ``Retry-After``), 10% 5xx, 5% answers
#: lost after the work is done, 5% timeouts, 2% connection resets; "webhooks": 30% of events
#: delivered twice, 30% out of order; "chaos": both.
PROFILES: dict[str, FaultProfile] = {
    "none": FaultProfile(name="none"),
    "flaky": FaultProfile(name="flaky", **_FLAKY_REQUESTS),
    "webhooks": FaultProfile(name="webhooks", **_WEBHOOK_MIX),
    "chaos": FaultProfile(name="chaos", **_FLAKY_REQUESTS, **_WEBHOOK_MIX),
}


@attrs.frozen
class FaultRecord:
    """One injected fault: the eligible request's (or webhook event's) number, where, what.

    Attributes:
        seq: The number of the request or event among those eligible, from 1.
        target: The request's path, or what the event is about.
        kind: The fault.
        status: The HTTP status of a ``server_error``.
    """

    seq: int
    target: str
    kind: FaultKind
    status: int | None = None


@attrs.define
class Faults:
    """A sandbox's fault decisions: drawn in a reproducible order, each one logged.

    :param profile: The probabilities (it may be replaced while the sandbox runs).
    :param seed: Starts the random generators: the same number, the same decisions.
    :param spared: Request paths never faulted, unless the profile says otherwise.

    Attributes:
        log: Every injected fault, in the order it was decided.
    """

    profile: FaultProfile
    seed: int = 0
    spared: Collection[str] = frozenset()
    log: list[FaultRecord] = attrs.field(factory=list)
    _requests: random.Random = attrs.field(init=False)
    _webhooks: random.Random = attrs.field(init=False)
    _request_seq: int = attrs.field(init=False, default=0)
    _webhook_seq: int = attrs.field(init=False, default=0)
    _lock: threading.Lock = attrs.field(init=False, factory=threading.Lock)

    def __attrs_post_init__(self) -> None:
        self._requests = random.Random(f"requests:{self.seed}")
        self._webhooks = random.Random(f"webhooks:{self.seed}")

    def counts(self) -> Counter[str]:
        """How many faults of each kind were injected so far, by the kind's value."""
        return Counter(record.kind.value for record in self.log)

    def for_request(self, path: str) -> FaultRecord | None:
        """The fault of one API request to ``path``, or ``None`` for a normal answer."""
        if path in self.spared and not self.profile.fault_spared_paths:
            return None
        with self._lock:
            self._request_seq += 1
            draw, threshold = self._requests.random(), 0.0
            for kind, probability in self.profile.request_weights():
                threshold += probability
                if draw < threshold:
                    status = None
                    if kind is FaultKind.SERVER_ERROR:
                        status = self._requests.choice(self.profile.server_error_statuses)
                    record = FaultRecord(self._request_seq, path, kind, status)
                    self.log.append(record)
                    return record
        return None

    def for_webhook(self, target: str) -> frozenset[FaultKind]:
        """Whether one webhook event is delivered twice and/or held back out of order."""
        with self._lock:
            self._webhook_seq += 1
            drawn = {
                FaultKind.DUPLICATE_WEBHOOK: self._webhooks.random(),
                FaultKind.OUT_OF_ORDER_WEBHOOK: self._webhooks.random(),
            }
            kinds = frozenset(k for k, draw in drawn.items() if draw < getattr(self.profile, k))
            self.log.extend(FaultRecord(self._webhook_seq, target, k) for k in sorted(kinds))
        return kinds
