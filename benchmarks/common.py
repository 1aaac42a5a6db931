"""What every benchmark shares: the machine's description, interleaved timing, the facade
wired to a sandbox, and signed callbacks.

Each figure is a ratio of two measurements taken side by side in one run: the samples of the
measured code and of its baseline alternate (A B A B ...), so that a slow patch of the machine
(another process, a frequency change) lands on both and cancels out of the ratio.
"""

from __future__ import annotations

import base64
import json
import os
import platform
import secrets
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import attrs
import httpx
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from payments_binance import BinancePayProvider, protocol
from payments_core import Config, Money, Order, Payments, PaymentStatus, RetryPolicy
from payments_core.ledger import open_ledger


def machine() -> dict[str, Any]:
    """CPU model, cores, Python and OS, and the load when the run started."""
    model = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "os": f"{platform.system()} {platform.release()}",
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def interleave(rounds: int, *steps: Callable[[], float]) -> list[list[float]]:
    """Run the steps in turn ``rounds`` times; each returns its own measured seconds."""
    samples: list[list[float]] = [[] for _ in steps]
    for _ in range(rounds):
        for index, step in enumerate(steps):
            samples[index].append(step())
    return samples


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


@attrs.frozen
class FixedClock:
    """A clock that stays put: pre-signed callbacks stay within the timestamp tolerance."""

    moment: datetime

    def now(self) -> datetime:
        return self.moment

    def monotonic(self) -> float:
        return 1_000.0


def facade(
    base_url: str,
    api_key: str,
    api_secret: str,
    *,
    transport: httpx.BaseTransport | None = None,
    clock: FixedClock | None = None,
    async_http: str = "auto",
    ledger: Any = None,
) -> Payments:
    """A facade with only the Binance provider, no retries, pointed at ``base_url``."""
    return Payments(
        Config(),
        providers={"binance": BinancePayProvider},
        load_entry_points=False,
        provider_settings={
            "binance": {"base_url": base_url, "api_key": api_key, "api_secret": api_secret}
        },
        retry=RetryPolicy(max_attempts=1),
        transport=transport,
        clock=clock,
        async_http=async_http,
        ledger=ledger,
    )


class References:
    """Fresh references: the sandbox refuses a second order for the same trade number.

    They are letters and digits only (``{tag}{run}N{i}``), so they also serve as trade numbers
    for the connector, which sends what it is given.
    """

    def __init__(self, tag: str) -> None:
        self.tag = tag
        self.count = 0

    def take(self, n: int) -> list[str]:
        start, self.count = self.count, self.count + n
        return [f"{self.tag}{_RUN}N{i}" for i in range(start, start + n)]


_RUN = f"{os.getpid() % 10_000:04d}{int(time.time()) % 100_000:05d}"


def callback_facade(hooks: Webhooks, moment: datetime, *, ledger: Any = None) -> Payments:
    """A facade that receives ``hooks``'s callbacks at the fixed ``moment`` (no API calls
    but the certificates fetch, which ``hooks`` answers)."""
    return facade(
        "https://bpay.binanceapi.example",
        "bench-key",
        "bench-secret-0123456789",
        transport=hooks.certificates_transport(),
        clock=FixedClock(moment),
        ledger=ledger,
    )


def pending_order(reference: str, prepay_id: str, trade_no: str) -> Order:
    """An unpaid order of 1.00 USDT as the ledger records it, for callbacks to settle."""
    return Order(
        provider="binance",
        reference=reference,
        provider_order_id=prepay_id,
        provider_reference=trade_no,
        status=PaymentStatus.PENDING,
        amount=Money("1.00", "USDT"),
    )


class Webhooks:
    """A webhook key like Binance's: certificates answers and signed PAY callbacks."""

    serial = "BENCHMARKSERIAL0001"

    def __init__(self, private_pem: bytes | None = None) -> None:
        """A new key, or the one in ``private_pem`` (another process's :meth:`private_pem`)."""
        if private_pem is None:
            self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        else:
            key = serialization.load_pem_private_key(private_pem, password=None)
            assert isinstance(key, rsa.RSAPrivateKey)
            self.key = key
        self.public_pem = (
            self.key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode("ascii")
        )

    def private_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def certificates_transport(self) -> httpx.MockTransport:
        """An httpx transport answering the certificates endpoint (nothing else)."""
        answer = json.dumps(
            {
                "status": "SUCCESS",
                "code": "000000",
                "data": [{"certSerial": self.serial, "certPublic": self.public_pem}],
            }
        ).encode()
        return httpx.MockTransport(lambda request: httpx.Response(200, content=answer))

    def callback(
        self,
        prepay_id: str,
        trade_no: str,
        *,
        now_ms: int,
        serial: str | None = None,
        amount: str = "1.00000000",
        currency: str = "USDT",
    ) -> tuple[dict[str, str], bytes, bytes, bytes]:
        """Headers and body of a PAY_SUCCESS callback, plus the raw signature and the signed
        payload (what a bare verify needs)."""
        inner = json.dumps(
            {
                "merchantTradeNo": trade_no,
                "productType": "Booking",
                "productName": "Booking",
                "transactTime": now_ms,
                "tradeType": "WEB",
                "totalFee": amount,
                "currency": currency,
                "transactionId": f"T{prepay_id}",
                "openUserId": "payer",
                "commission": "0.00000000",
            },
            separators=(",", ":"),
        )
        body = json.dumps(
            {
                "bizType": "PAY",
                "bizId": int(prepay_id),
                "bizIdStr": prepay_id,
                "bizStatus": "PAY_SUCCESS",
                "data": inner,
            },
            separators=(",", ":"),
        ).encode()
        nonce = secrets.token_hex(16)
        timestamp = str(now_ms)
        payload = b"%s\n%s\n%s\n" % (timestamp.encode(), nonce.encode(), body)
        signature = self.key.sign(payload, padding.PKCS1v15(), hashes.SHA256())
        headers = {
            "content-type": "application/json",
            protocol.HEADER_TIMESTAMP: timestamp,
            protocol.HEADER_NONCE: nonce,
            protocol.HEADER_CERTIFICATE_SN: serial or self.serial,
            protocol.HEADER_SIGNATURE: base64.b64encode(signature).decode("ascii"),
        }
        return headers, body, signature, payload


def epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def apply_rate(url: str, n: int, fresh: str) -> dict[str, float]:
    """Callbacks applied per second through Payments.apply_callback with the ledger at ``url``
    (P3: in-process, one thread); ``fresh`` keeps references distinct between calls."""
    moment = datetime.now(UTC).replace(microsecond=0)
    hooks = Webhooks()
    ledger = open_ledger(url)
    payments = callback_facade(hooks, moment, ledger=ledger)
    callbacks = []
    first = 2 * 10**17 + secrets.randbelow(10**16)  # a PostgreSQL ledger outlives the run
    for i in range(n):
        prepay = str(first + i)
        trade_no = f"P3{fresh}{i:08d}"[:32]
        ledger.record_order(pending_order(f"p3-{fresh}-{i}", prepay, trade_no))
        callbacks.append(hooks.callback(prepay, trade_no, now_ms=epoch_ms(moment))[:2])
    try:
        payments.handle_callback("binance", *callbacks[0])  # the certificates fetch
        cpu, started = time.process_time(), time.perf_counter()
        applied = sum(
            1
            for headers, body in callbacks
            if (outcome := payments.apply_callback("binance", headers, body)).result is not None
            and outcome.result.applied
        )
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        verify_only = timed(
            lambda: [payments.handle_callback("binance", h, b) for h, b in callbacks]
        )
    finally:
        payments.close()
    return {
        "per_s": n / elapsed,
        "cpu_us": cpu / n * 1e6,
        "applied": applied,
        "verify_only_per_s": n / verify_only,
    }
