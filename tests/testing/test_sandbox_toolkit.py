"""The sandbox toolkit itself: fault draws, broken connections, webhook delivery, the handle."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from payments_core import ProviderSandbox
from payments_core.testing import sandbox

# -- the fault draw --------------------------------------------------------------------------


def _decisions(profile: sandbox.FaultProfile, seed: int) -> list[object]:
    faults = sandbox.Faults(profile, seed)
    out: list[object] = []
    for i in range(3_000):
        record = faults.for_request("/v1/orders")
        out.append(record.kind if record else None)
        if i % 3 == 0:
            out.append(faults.for_webhook(str(i)))
    return out


def test_the_draw_depends_only_on_the_seed_and_the_order_of_arrival() -> None:
    chaos = sandbox.PROFILES["chaos"]
    assert _decisions(chaos, 5) == _decisions(chaos, 5)
    assert _decisions(chaos, 5) != _decisions(chaos, 6)


def test_the_flaky_profile_strikes_in_its_stated_proportions() -> None:
    faults = sandbox.Faults(sandbox.PROFILES["flaky"], seed=1)
    n = 20_000
    for _ in range(n):
        faults.for_request("/v1/orders")
    counts = faults.counts()
    stated = dict(sandbox.PROFILES["flaky"].request_weights())
    # As documented: 10% 429 (half with Retry-After), 10% 5xx, 5% answers lost, 5% timeouts,
    # 2% resets.
    assert stated["rate_limit"] == stated["rate_limit_retry_after"] == pytest.approx(0.05)
    assert stated["server_error"] == pytest.approx(0.10)
    assert stated["drop_response"] == stated["timeout"] == pytest.approx(0.05)
    assert stated["reset"] == pytest.approx(0.02)
    assert sum(stated.values()) == pytest.approx(0.32)
    for kind, share in stated.items():
        assert abs(counts[kind] / n - share) < 0.01, (kind, counts[kind])
    assert [record.seq for record in faults.log] == sorted({r.seq for r in faults.log})


def test_a_profile_refuses_impossible_probabilities() -> None:
    with pytest.raises(ValueError, match="at most 1"):
        sandbox.FaultProfile(server_error=0.6, reset=0.5)
    with pytest.raises(ValueError, match="probability"):
        sandbox.FaultProfile(timeout=1.5)
    with pytest.raises(ValueError, match="server_error_statuses"):
        sandbox.FaultProfile(server_error_statuses=())


def test_spared_paths_are_faulted_only_when_the_profile_says_so() -> None:
    spared = sandbox.Faults(sandbox.FaultProfile(reset=1.0), spared={"/keys"})
    assert spared.for_request("/keys") is None
    assert spared.for_request("/v1/orders") == sandbox.FaultRecord(
        1, "/v1/orders", sandbox.FaultKind.RESET
    )
    everywhere = sandbox.Faults(
        sandbox.FaultProfile(reset=1.0, fault_spared_paths=True), spared={"/keys"}
    )
    assert everywhere.for_request("/keys") is not None


# -- faults over a real connection -----------------------------------------------------------


class Counter:
    """A sandbox API that counts the requests it did and answers with the count."""

    def __init__(self) -> None:
        self.done = 0
        self.called = threading.Event()

    def __call__(self, request: sandbox.SandboxRequest) -> sandbox.Answer:
        self.done += 1
        self.called.set()
        return sandbox.Answer(
            200, json.dumps({"done": self.done, "body": request.body.decode()}).encode()
        )


def _refusal(fault: sandbox.FaultRecord) -> sandbox.Answer:
    return sandbox.Answer(fault.status or 429, b'{"error": "refused"}')


@pytest.fixture
def served() -> Iterator[tuple[str, Counter, sandbox.Faults]]:
    api = Counter()
    faults = sandbox.Faults(sandbox.FaultProfile(timeout_delay_s=0.05))
    app = sandbox.sandbox_app(api, faults=faults, refusal=_refusal)
    with sandbox.background_server(app, lifespan="off") as server:
        yield server.url, api, faults


def _strike(faults: sandbox.Faults, kind: str, **details: object) -> None:
    faults.profile = sandbox.FaultProfile(**{kind: 1.0, "timeout_delay_s": 0.05, **details})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kind", "error", "done"),
    [
        ("reset", httpx.ReadError, 0),  # before any work
        ("drop_response", httpx.RemoteProtocolError, 1),  # cut off after the work was done
    ],
)
def test_a_reset_or_a_dropped_answer_reaches_the_client_as_its_httpx_error(
    served: tuple[str, Counter, sandbox.Faults], kind: str, error: type[Exception], done: int
) -> None:
    url, api, faults = served
    _strike(faults, kind)
    with pytest.raises(error):
        httpx.post(f"{url}/v1/orders", content=b"x")
    assert api.done == done


def test_a_stall_outlasts_the_client_and_the_work_is_then_done(
    served: tuple[str, Counter, sandbox.Faults],
) -> None:
    url, api, faults = served
    _strike(faults, "timeout", timeout_delay_s=1.0)
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{url}/v1/orders", content=b"x", timeout=0.1)
    assert api.called.wait(5)  # the client gave up; the sandbox did the work all the same
    assert api.done == 1


def test_a_stall_that_is_not_processed_closes_the_connection(
    served: tuple[str, Counter, sandbox.Faults],
) -> None:
    url, api, faults = served
    _strike(faults, "timeout", timeout_then_process=False)
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.post(f"{url}/v1/orders", content=b"x", timeout=5)
    assert api.done == 0


def test_refusals_carry_retry_after_only_when_the_fault_says_so(
    served: tuple[str, Counter, sandbox.Faults],
) -> None:
    url, api, faults = served
    _strike(faults, "rate_limit_retry_after", retry_after_s=7)
    with_header = httpx.post(f"{url}/v1/orders", content=b"x")
    _strike(faults, "server_error", server_error_statuses=(503,))
    server_error = httpx.post(f"{url}/v1/orders", content=b"x")
    assert (with_header.status_code, with_header.headers["retry-after"]) == (429, "7")
    assert server_error.status_code == 503
    assert "retry-after" not in server_error.headers
    assert api.done == 0
    assert faults.counts() == {"rate_limit_retry_after": 1, "server_error": 1}


def test_stopping_the_server_ends_a_stall_at_once() -> None:
    faults = sandbox.Faults(sandbox.FaultProfile(timeout=1.0, timeout_delay_s=60.0))
    api = Counter()
    arrived = threading.Event()
    app = sandbox.sandbox_app(api, faults=faults, refusal=_refusal)

    async def arriving(scope: Scope, receive: Receive, send: Send) -> None:
        arrived.set()
        await app(scope, receive, send)

    server = sandbox.background_server(arriving, lifespan="off")
    server.start()
    outcome: list[object] = []

    def call() -> None:
        try:
            outcome.append(httpx.post(f"{server.url}/v1/orders", content=b"x", timeout=60))
        except httpx.HTTPError as exc:
            outcome.append(exc)

    caller = threading.Thread(target=call)
    caller.start()
    assert arrived.wait(10)
    started = time.monotonic()
    server.stop()
    caller.join(10)
    assert time.monotonic() - started < 5
    assert isinstance(outcome[0], httpx.RemoteProtocolError)
    assert api.done == 0


def test_pages_are_never_faulted_and_the_transport_calls_the_sandbox_in_process() -> None:
    api = Counter()
    page = Counter()
    faults = sandbox.Faults(sandbox.FaultProfile(reset=1.0))
    app = sandbox.sandbox_app(api, pages={"/checkout/": page}, faults=faults, refusal=_refusal)
    with sandbox.background_server(app, lifespan="off") as server:
        assert httpx.get(f"{server.url}/checkout/o1").status_code == 200
    with httpx.Client(
        transport=sandbox.mock_transport(api), base_url="http://sandbox.test"
    ) as client:
        answer = client.post("/v1/orders", content=b"in process").json()
    assert (page.done, answer) == (1, {"done": 1, "body": "in process"})


# -- webhook delivery ------------------------------------------------------------------------


class Endpoint:
    """A merchant's webhook endpoint: answers with the statuses given, then 200; keeps bodies."""

    def __init__(self, *statuses: int) -> None:
        self.statuses = list(statuses)
        self.bodies: list[bytes] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body, _ = await sandbox.read_body(receive)
        self.bodies.append(body)
        status = self.statuses.pop(0) if self.statuses else 200
        await sandbox.send_answer(send, sandbox.Answer(status, b"{}"))


def _deliver(poster: sandbox.WebhookPoster, *deliveries: sandbox.Delivery) -> None:
    async def run() -> None:
        for delivery in deliveries:
            poster.send(delivery)
        assert await asyncio.to_thread(poster.wait_idle, 10)
        await poster.aclose()

    asyncio.run(run())


def test_a_refused_delivery_is_retried_on_the_schedule_and_logged() -> None:
    endpoint = Endpoint(500, 503)
    poster = sandbox.WebhookPoster(retry_schedule=(0.01, 0.01, 0.01))
    with sandbox.background_server(endpoint, lifespan="off") as server:
        _deliver(
            poster, sandbox.Delivery(server.url, {"x-sig": "s"}, b"paid", "evt_1", "paid", "o1")
        )
    assert [(a.attempt, a.status_code, a.ok) for a in poster.log] == [
        (1, 500, False),
        (2, 503, False),
        (3, 200, True),
    ]
    assert endpoint.bodies == [b"paid"] * 3
    assert all(a.headers == {"x-sig": "s"} for a in poster.log)
    assert (poster.delivered, poster.failed, poster.attempts) == (1, 0, 3)


def test_a_delivery_is_given_up_after_the_last_retry_and_signed_afresh_each_time() -> None:
    signatures = iter(range(100))
    poster = sandbox.WebhookPoster(
        retry_schedule=(0.01,), sign=lambda body: {"sig": str(next(signatures))}
    )
    with sandbox.background_server(Endpoint(500, 500, 500), lifespan="off") as server:
        _deliver(poster, sandbox.Delivery(server.url, {}, b"paid", "evt_1"))
    assert [a.headers["sig"] for a in poster.log] == ["0", "1"]
    assert (poster.delivered, poster.failed) == (0, 1)
    assert poster.log[-1].error is not None


def test_a_held_delivery_arrives_after_the_one_that_overtakes_it() -> None:
    profile = sandbox.FaultProfile(out_of_order_webhook=0.5, reorder_max_hold_s=10.0)
    seed = next(s for s in range(1_000) if _held_then_not(profile, s))
    poster = sandbox.WebhookPoster(faults=sandbox.Faults(profile, seed))
    endpoint = Endpoint()
    with sandbox.background_server(endpoint, lifespan="off") as server:
        _deliver(
            poster,
            sandbox.Delivery(server.url, {}, b"first"),
            sandbox.Delivery(server.url, {}, b"second"),
        )
    assert endpoint.bodies == [b"second", b"first"]


def _held_then_not(profile: sandbox.FaultProfile, seed: int) -> bool:
    faults = sandbox.Faults(profile, seed)
    return faults.for_webhook("a") == {
        sandbox.FaultKind.OUT_OF_ORDER_WEBHOOK
    } and not faults.for_webhook("b")


def test_a_duplicated_event_is_delivered_twice_and_a_skipped_one_only_logged() -> None:
    poster = sandbox.WebhookPoster(
        faults=sandbox.Faults(sandbox.FaultProfile(duplicate_webhook=1.0))
    )
    endpoint = Endpoint()
    with sandbox.background_server(endpoint, lifespan="off") as server:
        _deliver(poster, sandbox.Delivery(server.url, {}, b"twice", subject="o1"))
    poster.skip(sandbox.Delivery(None, {}, b"nowhere"), "no endpoint")
    assert endpoint.bodies == [b"twice", b"twice"]
    assert sorted(a.copy for a in poster.log if a.ok) == [1, 2]
    assert [(a.attempt, a.skipped) for a in poster.log if not a.ok] == [(0, "no endpoint")]
    assert (poster.delivered, poster.skipped) == (2, 1)


# -- the handle ------------------------------------------------------------------------------


class Shop:
    def __init__(self) -> None:
        self.paid: list[str] = []
        self.webhook_url: str | None = None

    def pay(self, provider_order_id: str) -> None:
        self.paid.append(provider_order_id)


def test_a_running_sandbox_is_what_open_sandbox_hands_over() -> None:
    shop = Shop()
    running: ProviderSandbox = sandbox.RunningSandbox(
        "http://127.0.0.1:1", {"api_key": "sk_secret"}, shop
    )
    running.pay("o1")
    running.forward_callbacks("http://merchant.test/hooks")  # each order's own URL: no-op
    assert running.checkout_url("o1") == "http://127.0.0.1:1/checkout/o1"
    forwarding = sandbox.RunningSandbox(
        "http://127.0.0.1:1",
        {},
        shop,
        checkout_path=lambda order_id: f"/pay/{order_id}",
        forward=lambda url: setattr(shop, "webhook_url", url),
    )
    forwarding.forward_callbacks("http://merchant.test/hooks")
    assert (shop.paid, shop.webhook_url) == (["o1"], "http://merchant.test/hooks")
    assert forwarding.checkout_url("o2") == "http://127.0.0.1:1/pay/o2"
    assert "sk_secret" not in repr(running)
