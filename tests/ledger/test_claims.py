"""The claim on a reference: two instances racing to create at a find-or-create provider.

Each instance is a :class:`~payments_core.Payments` with a ledger of its own connection on one
ledger (one SQLite file, or one PostgreSQL schema), speaking HTTP over loopback to the
ExampleCharges sandbox, which assigns ids itself and refuses no repeat: only the core's claim
keeps the second instance from creating a second charge. The interleaving is forced, without
sleeping: the sandbox holds a create back until the other instance has searched or is
waiting for the claim, and the waiting instance's sleep returns once the other has finished.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from datetime import UTC, datetime, timedelta

import pytest
from payments_example.charges import ChargesProvider
from payments_example.charges_sandbox import ChargesSandbox, serve_charges

from payments_core import (
    ClaimPolicy,
    Ledger,
    Money,
    Order,
    OrderRequest,
    Payments,
    RequestTimeout,
    RetryPolicy,
)
from payments_core.testing import Fault, FaultInjector
from payments_core.testing.sandbox import Answer, RunningSandbox, SandboxRequest

T0 = datetime(2026, 12, 6, 8, 0, tzinfo=UTC)
HOLD = timedelta(seconds=120)
WAIT = 10.0  # seconds a forced interleaving may take before the test gives up on it


class Interleaving:
    """Holds each create back until the other instance has searched or waits for the claim."""

    def __init__(self, sandbox: ChargesSandbox) -> None:
        self.other_ready = threading.Event()
        self.finished = threading.Event()
        self.searches = 0
        self.claim_waits = 0
        self._lock = threading.Lock()
        self._handle = sandbox.handle
        sandbox.handle = self.handle  # type: ignore[method-assign]

    def handle(self, request: SandboxRequest) -> Answer:
        if request.path.endswith("/search"):
            with self._lock:
                self.searches += 1
                if self.searches >= 2:
                    self.other_ready.set()
        elif request.method == "POST":
            assert self.other_ready.wait(WAIT), "the other instance never searched nor waited"
        return self._handle(request)

    def sleep(self, seconds: float) -> None:
        """The waiting instance's sleep: return once the other instance is done."""
        del seconds
        with self._lock:
            self.claim_waits += 1
        self.other_ready.set()
        assert self.finished.wait(WAIT), "the claim's holder never finished"


@pytest.fixture
def charges() -> Iterator[RunningSandbox[ChargesSandbox]]:
    with serve_charges() as running:
        yield running


def instance(
    running: RunningSandbox[ChargesSandbox], ledger: Ledger, sleep: Callable[[float], None]
) -> Payments:
    return Payments(
        providers={"charges": ChargesProvider},
        provider_settings={"charges": running.settings},
        load_entry_points=False,
        retry=RetryPolicy(max_attempts=2, initial_delay=0.0, sleep=sleep),
        ledger=ledger,
    )


def request(reference: str = "booking-7") -> OrderRequest:
    return OrderRequest(
        reference=reference,
        price=Money("12.50", "USD"),
        callback_url="https://merchant.example/payments/callback/charges",
    )


def race(first: Payments, second: Payments, interleaving: Interleaving) -> list[Order]:
    def create(payments: Payments) -> Order:
        try:
            return payments.create_order(request())
        finally:
            interleaving.finished.set()

    with ThreadPoolExecutor(2) as pool:
        return list(pool.map(create, (first, second)))


def test_two_instances_on_one_ledger_make_one_charge(
    charges: RunningSandbox[ChargesSandbox], open_test_ledger: Callable[..., Ledger]
) -> None:
    interleaving = Interleaving(charges.sandbox)
    first = instance(charges, open_test_ledger(), interleaving.sleep)
    second = instance(charges, open_test_ledger(), interleaving.sleep)
    with first, second:
        orders = race(first, second, interleaving)
    assert len(charges.sandbox.charges) == 1
    assert {order.provider_order_id for order in orders} == {charges.sandbox.charges[0].id}
    assert interleaving.claim_waits >= 1  # one of them did wait for the other's claim
    assert interleaving.searches == 1  # and never had to search: the ledger had the order


def test_without_a_shared_claim_the_same_race_makes_two_charges(
    charges: RunningSandbox[ChargesSandbox], tmp_path: object
) -> None:
    # The control: each instance with a ledger of its own, so no claim is shared. Both
    # search, both find nothing, both create. This is what the claim prevents.
    from payments_core import open_ledger

    interleaving = Interleaving(charges.sandbox)
    with (
        open_ledger(f"sqlite:///{tmp_path}/a.sqlite3") as one,
        open_ledger(f"sqlite:///{tmp_path}/b.sqlite3") as other,
    ):
        first = instance(charges, one, interleaving.sleep)
        second = instance(charges, other, interleaving.sleep)
        with first, second:
            race(first, second, interleaving)
    assert len(charges.sandbox.charges) == 2
    assert interleaving.claim_waits == 0


def test_a_crashed_holder_keeps_the_claim_until_it_expires_then_its_order_is_found(
    charges: RunningSandbox[ChargesSandbox], open_test_ledger: Callable[..., Ledger]
) -> None:
    now = [T0]
    ledger = open_test_ledger(clock=lambda: now[0])
    # The crashed instance: it claimed the reference, created the charge, and died before
    # recording it.
    assert ledger.claim_reference("charges", "booking-7", "crashed-instance", HOLD)
    with Payments(
        providers={"charges": ChargesProvider},
        provider_settings={"charges": charges.settings},
        load_entry_points=False,
    ) as without_ledger:
        created = without_ledger.create_order(request())
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += timedelta(seconds=seconds)

    survivor = instance(charges, ledger, sleep)
    survivor.claims = ClaimPolicy(poll=30.0)
    with survivor:
        order = survivor.create_order(request())
        assert ledger.get_order("charges", "booking-7") == order
    assert order.provider_order_id == created.provider_order_id
    assert len(charges.sandbox.charges) == 1
    assert slept == [30.0] * 4  # waited until the crashed claim expired, not a poll longer


def test_a_claim_is_won_once_renewed_by_its_holder_and_taken_over_once_expired(
    open_test_ledger: Callable[..., Ledger],
) -> None:
    now = [T0]
    ledger = open_test_ledger(clock=lambda: now[0])
    assert ledger.claim_reference("charges", "r1", "a", HOLD)
    assert not ledger.claim_reference("charges", "r1", "b", HOLD)
    assert ledger.claim_reference("charges", "r2", "b", HOLD)  # another reference is free
    assert ledger.claim_reference("binance", "r1", "b", HOLD)  # so is another provider
    now[0] += HOLD - timedelta(seconds=1)
    assert ledger.claim_reference("charges", "r1", "a", HOLD)  # renewed by its holder
    now[0] += HOLD - timedelta(seconds=1)
    assert not ledger.claim_reference("charges", "r1", "b", HOLD)  # the renewal holds
    now[0] += timedelta(seconds=1)
    assert ledger.claim_reference("charges", "r1", "b", HOLD)  # expired: taken over
    ledger.release_claim("charges", "r1", "a")  # a no longer holds it: nothing happens
    assert not ledger.claim_reference("charges", "r1", "a", HOLD)
    ledger.release_claim("charges", "r1", "b")
    assert ledger.claim_reference("charges", "r1", "a", HOLD)


def test_a_create_whose_answer_was_lost_keeps_its_claim_and_its_instance_resumes(
    charges: RunningSandbox[ChargesSandbox], open_test_ledger: Callable[..., Ledger]
) -> None:
    ledger = open_test_ledger()
    faults = FaultInjector()
    faults.inject(Fault.forward())  # the search
    faults.inject(Fault.timeout())  # the create: made at ExampleCharges, its answer lost
    holder = Payments(
        providers={"charges": ChargesProvider},
        provider_settings={"charges": charges.settings},
        load_entry_points=False,
        retry=RetryPolicy(max_attempts=1),
        transport=faults,
        ledger=ledger,
    )
    with holder, closing(faults):
        with pytest.raises(RequestTimeout):
            holder.create_order(request())
        # The charge may exist unseen: no other instance may create meanwhile ...
        assert not ledger.claim_reference("charges", "booking-7", "another-instance", HOLD)
        # ... but the holder resumes at once, and finds the charge instead of making another.
        order = holder.create_order(request())
    assert len(charges.sandbox.charges) == 1
    assert order.provider_order_id == charges.sandbox.charges[0].id
