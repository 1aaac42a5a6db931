"""The callback endpoint under fuzzing, over real HTTP: every bad request gets a 4xx, in JSON.

A uvicorn server runs ``create_callback_app`` for a facade pointed at the sandbox (whose
certificates it has fetched, with one real paid callback applied). Hypothesis then sends 2,000
requests, derandomised: headers made up, replayed from the real callback, or freshly and
correctly signed with the sandbox's key (so the body reaches the parser); bodies of random
bytes, JSON, invalid UTF-8, nesting thousands deep, sizes near the 64 KiB limit and, now and
then, 10 MB (declared or chunked); and, now and then, a body that stops half way (a stalled
sender). Each answer must be a 4xx whose body is a JSON error (``{"error": ...}`` from the
app, ``{"returnCode": "FAIL", ...}`` from the provider); afterwards the ledger holds exactly
what it held before, and the server still applies a real callback.
"""

from __future__ import annotations

import json
import random
import socket
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from payments_binance import protocol
from payments_binance.sandbox.webhooks import signed_headers
from payments_core import Money, OrderRequest, PaymentStatus, open_ledger
from payments_core.asgi import MAX_CALLBACK_BYTES, create_callback_app
from payments_core.serving import BackgroundServer

from .conftest import CALLBACK_PATH, Harness

EXAMPLES = 2000
BODY_TIMEOUT_S = 0.25
TEN_MB = 10 * 1024 * 1024
BINANCE_HEADERS = (
    protocol.HEADER_TIMESTAMP,
    protocol.HEADER_NONCE,
    protocol.HEADER_CERTIFICATE_SN,
    protocol.HEADER_SIGNATURE,
    "content-type",
)
# Headers the HTTP client writes itself: made up, they would be refused by uvicorn's parser
# (as plain text) before the app sees the request.
TRANSPORT_HEADERS = frozenset(
    {"content-length", "transfer-encoding", "host", "connection", "upgrade", "expect", "te"}
)

header_names = st.one_of(
    st.sampled_from(BINANCE_HEADERS),
    st.from_regex(r"[A-Za-z][A-Za-z0-9-]{0,30}", fullmatch=True).filter(
        lambda name: name.lower() not in TRANSPORT_HEADERS
    ),
)
# What HTTP allows in a field value: visible ASCII, space, tab and bytes above 0x7F.
header_values = st.binary(max_size=200).map(
    lambda raw: bytes(b for b in raw if b in (9, 32) or 0x21 <= b <= 0x7E or b >= 0x80).strip()
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=20,
)


def _nested(depth: int, shape: str) -> bytes:
    if shape == "array":
        return b"[" * depth + b"]" * depth
    return b'{"data":' * depth + b"null" + b"}" * depth


bodies = st.one_of(
    st.binary(max_size=2048),
    json_values.map(lambda value: json.dumps(value).encode()),
    st.builds(_nested, st.integers(1, 200_000), st.sampled_from(["array", "object"])),
    st.binary(max_size=64).map(lambda tail: b'{"bizType":"PAY","bizStatus":"\xff\xfe' + tail),
    st.integers(-64, 64).map(lambda delta: b" " * (MAX_CALLBACK_BYTES + delta)),
)
# One request in about 200 carries 10 MB; one in about 200 stalls half way.
# Hypothesis leans on a range's ends; a Random seeded with its draw spreads the choice evenly.
sizes = st.integers(0, 2**32).map(
    lambda seed: {0: "10MB", 1: "stalled"}.get(random.Random(seed).randrange(200), "as drawn")
)


class Case(dict[str, Any]):
    """One fuzzed request; its repr shows a body's start and size, not 200,000 brackets."""

    def __repr__(self) -> str:
        shown = {k: v for k, v in self.items() if k != "body"}
        body = self["body"]
        return f"Case({shown!r}, body={body[:80]!r}... ({len(body)} bytes))"


@st.composite
def fuzzed_requests(draw: st.DrawFn) -> Case:
    return Case(
        headers_from=draw(st.sampled_from(["made up", "replayed", "signed"])),
        headers=draw(st.dictionaries(header_names, header_values, max_size=8)),
        body=draw(bodies),
        size=draw(sizes),
        chunked=draw(st.booleans()),
    )


def ledger_rows(path: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(path) as conn:
        orders = conn.execute("SELECT * FROM orders ORDER BY reference").fetchall()
        events = conn.execute("SELECT * FROM events ORDER BY id").fetchall()
    conn.close()
    return [*orders, *events]


def stalled_request(url: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
    """Send the head and half the body, then nothing more: (status, body) of the answer."""
    host, port = httpx.URL(url).host, httpx.URL(url).port
    assert port is not None
    head = [f"POST {CALLBACK_PATH} HTTP/1.1", f"host: {host}:{port}"]
    head += [f"{name}: {value}" for name, value in headers.items()]
    head.append(f"content-length: {len(body) + 10}")
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall("\r\n".join(head).encode("latin-1") + b"\r\n\r\n" + body[: len(body) // 2])
        answer = b""
        while b"\r\n\r\n" not in answer and (chunk := sock.recv(65536)):
            answer += chunk
        head_bytes, _, payload = answer.partition(b"\r\n\r\n")
        status_line, *header_lines = head_bytes.decode("latin-1").split("\r\n")
        fields = dict(line.lower().split(": ", 1) for line in header_lines)
        while len(payload) < int(fields["content-length"]) and (chunk := sock.recv(65536)):
            payload += chunk
    return int(status_line.split()[1]), payload


def is_json_error(payload: bytes) -> bool:
    decoded = json.loads(payload)
    return isinstance(decoded, dict) and ("error" in decoded or decoded.get("returnCode") == "FAIL")


def paid_notification(harness: Harness, callback_url: str, reference: str, payments: Any) -> Any:
    order = payments.create_order(
        OrderRequest(reference=reference, price=Money("1.00", "USD"), callback_url=callback_url)
    )
    harness.sandbox.pay(order.provider_order_id)
    return next(
        a
        for a in reversed(harness.sandbox.webhook_log)
        if a.delivery.subject == order.provider_order_id
    )


def test_fuzzed_callbacks_get_json_4xx_and_change_nothing(
    start_sandbox: Callable[..., Harness], tmp_path: Path, report_figure: Callable[[str], None]
) -> None:
    harness = start_sandbox()
    database = tmp_path / "ledger.sqlite3"
    payments = harness.payments(ledger=open_ledger(f"sqlite:///{database}"))
    app = create_callback_app(payments, body_timeout=BODY_TIMEOUT_S)
    counts: dict[str, int] = {}
    with BackgroundServer(app) as server, httpx.Client(base_url=server.url, timeout=30) as http:
        callback_url = f"{server.url}{CALLBACK_PATH}"
        real = paid_notification(harness, callback_url, "fuzz-1", payments)
        warm_up = http.post(CALLBACK_PATH, content=real.delivery.body, headers=dict(real.headers))
        assert warm_up.status_code == 200
        before = ledger_rows(database)
        assert len(before) == 2  # the order and its applied event

        def request_headers(case: dict[str, Any], body: bytes) -> dict[str, Any]:
            if case["headers_from"] == "made up":
                return case["headers"]
            if case["headers_from"] == "replayed":
                return {**dict(real.headers), **case["headers"]}
            signed = signed_headers(harness.sandbox.keys, body, time.time_ns() // 1_000_000)
            harness.leaks.add(signed[protocol.HEADER_SIGNATURE])
            return signed

        @settings(
            max_examples=EXAMPLES,
            derandomize=True,
            database=None,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(fuzzed_requests())
        @example(Case(headers_from="signed", headers={}, body=b"{}", size="10MB", chunked=False))
        @example(Case(headers_from="made up", headers={}, body=b"", size="10MB", chunked=True))
        @example(Case(headers_from="signed", headers={}, body=b"[[", size="stalled", chunked=False))
        @example(
            Case(headers_from="replayed", headers={}, body=b"{}", size="stalled", chunked=False)
        )
        def one_request(case: dict[str, Any]) -> None:
            body = b"\x00" * TEN_MB if case["size"] == "10MB" else case["body"]
            headers = request_headers(case, body)
            counts[case["size"]] = counts.get(case["size"], 0) + 1
            if case["size"] == "stalled":
                printable = {
                    k: v.decode("latin-1") if isinstance(v, bytes) else v
                    for k, v in headers.items()
                }
                status, payload = stalled_request(server.url, printable, body[:1000] or b"{}")
                assert status == 408
            else:
                content: Any = body
                if case["chunked"]:
                    content = iter([body[i : i + 65536] for i in range(0, len(body), 65536)])
                answer = http.post(CALLBACK_PATH, content=content, headers=headers)
                status, payload = answer.status_code, answer.content
            assert 400 <= status < 500, (status, payload[:200])
            assert is_json_error(payload), payload[:200]

        one_request()
        after = ledger_rows(database)
        # Still serving: a new callback is applied.
        second = paid_notification(harness, callback_url, "fuzz-2", payments)
        applied = http.post(
            CALLBACK_PATH, content=second.delivery.body, headers=dict(second.headers)
        )
        assert payments.ledger is not None
        paid = payments.ledger.get_order("binance", "fuzz-2")
    assert after == before
    assert applied.status_code == 200
    assert paid is not None
    assert paid.status is PaymentStatus.PAID
    total = sum(counts.values())
    assert total >= EXAMPLES
    report_figure(
        f"{total} fuzzed callbacks over HTTP, all answered 4xx JSON: "
        f"{counts.get('10MB', 0)} of 10 MB, {counts.get('stalled', 0)} stalled; ledger unchanged"
    )
