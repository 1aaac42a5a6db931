"""A canned-answer Merchant API for client benchmarks: a server that is never the bottleneck.

``python -m benchmarks.canned [--workers N] [--cpus 1]`` listens on an ephemeral loopback
port, prints ``base_url: ...``, ``api_key: ...``, ``api_secret: ...``, ``pids: ...`` and
``ready``, and answers until interrupted. Each request's HMAC-SHA512 signature is checked, as
Binance does (a wrong one gets Binance's 400002 envelope); creates (v2 and v3) and queries get
a valid ``SUCCESS`` answer derived from the request alone: the ``prepayId`` is a digest of
the ``merchantTradeNo``, so a query finds the order a create announced without any state.
Close answers ``true``, the certificates endpoint an empty list.

It is a plain ``asyncio.Protocol`` (on uvloop when installed) over HTTP/1.1 keep-alive
(``Content-Length`` bodies only, pipelining allowed), a few microseconds of CPU per request, so
the client under test is what is measured. ``--workers N`` forks N processes that accept on
one listening socket; ``--cpus`` pins them (``os.sched_setaffinity``). :class:`CannedServer`
runs it as a child process and reports its CPU use (psutil), so each recorded figure can state
the server's headroom.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Final, cast

import psutil

from payments_binance.sandbox import SandboxProcess

API_KEY: Final = "canned-key"
API_SECRET: Final = "canned-secret-0123456789abcdef"
_CREATE_PATHS: Final = (b"/binancepay/openapi/v3/order", b"/binancepay/openapi/v2/order")
_QUERY_PATH: Final = b"/binancepay/openapi/v2/order/query"
_CLOSE_PATH: Final = b"/binancepay/openapi/order/close"
_CERTIFICATES_PATH: Final = b"/binancepay/openapi/certificates"
_MAX_REQUEST: Final = 1 << 20


def prepay_id(trade_no: str) -> str:
    """The order id a create announces and a query finds: a digest of the trade number."""
    digest = hashlib.blake2b(trade_no.encode(), digest_size=7).digest()
    return str(400_000_000_000_000_000 + int.from_bytes(digest, "big"))


def _answer(data: object, status: int = 200, code: str = "000000") -> bytes:
    envelope = {
        "status": "SUCCESS" if code == "000000" else "FAIL",
        "code": code,
        "data": data,
        "errorMessage": None if code == "000000" else "canned refusal",
    }
    body = json.dumps(envelope, separators=(",", ":")).encode()
    reason = b"OK" if status == 200 else b"Bad Request"
    return b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (
        status,
        reason,
        len(body),
        body,
    )


def _created(base_url: str, trade_no: str) -> bytes:
    token = hashlib.blake2b(trade_no.encode(), digest_size=16).hexdigest()
    checkout = f"{base_url}/sandbox/checkout/{token}"
    return _answer(
        {
            "prepayId": prepay_id(trade_no),
            "terminalType": "WEB",
            "expireTime": int(time.time() * 1000) + 3_600_000,
            "qrcodeLink": f"{base_url}/sandbox/qr/{token}.svg",
            "qrContent": checkout,
            "checkoutUrl": checkout,
            "deeplink": f"bnc://app.binance.com/payment/secpay?tempToken={token}",
            "universalUrl": f"{base_url}/sandbox/secpay?linkToken={token}",
            "currency": "USDT",
            "totalFee": "1.00000000",
        }
    )


def _queried(trade_no: str) -> bytes:
    return _answer(
        {
            "merchantId": 100000001,
            "prepayId": prepay_id(trade_no),
            "merchantTradeNo": trade_no,
            "status": "INITIAL",
            "currency": "USDT",
            "orderAmount": "1.00000000",
            "createTime": int(time.time() * 1000),
        }
    )


_BAD_SIGNATURE: Final = _answer(None, 400, "400002")
_BAD_REQUEST: Final = _answer(None, 400, "400000")
_CLOSED: Final = _answer(True)
_CERTIFICATES: Final = _answer([])


def respond(base_url: str, path: bytes, headers: dict[bytes, bytes], body: bytes) -> bytes:
    """The answer to one request: checked like Binance checks it, made from it alone."""
    timestamp = headers.get(b"binancepay-timestamp", b"")
    nonce = headers.get(b"binancepay-nonce", b"")
    signature = headers.get(b"binancepay-signature", b"")
    expected = hmac.new(
        API_SECRET.encode(), b"%s\n%s\n%s\n" % (timestamp, nonce, body), hashlib.sha512
    ).hexdigest()
    if headers.get(b"binancepay-certificate-sn") != API_KEY.encode() or not hmac.compare_digest(
        expected.upper().encode(), signature
    ):
        return _BAD_SIGNATURE
    if path == _CLOSE_PATH:
        return _CLOSED
    if path == _CERTIFICATES_PATH:
        return _CERTIFICATES
    try:
        trade_no = json.loads(body).get("merchantTradeNo")
    except (ValueError, AttributeError):
        return _BAD_REQUEST
    if not isinstance(trade_no, str):
        return _BAD_REQUEST
    if path in _CREATE_PATHS:
        return _created(base_url, trade_no)
    if path == _QUERY_PATH:
        return _queried(trade_no)
    return _BAD_REQUEST


class _Connection(asyncio.Protocol):
    """One keep-alive connection: requests parsed from the buffer as they complete."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but write like one.
        self.transport = cast("asyncio.Transport", transport)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        answers = []
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                break
            head = self.buffer[:end].split(b"\r\n")
            headers = {}
            for line in head[1:]:
                name, _, value = line.partition(b":")
                headers[name.strip().lower()] = value.strip()
            length = int(headers.get(b"content-length", b"0"))
            if end + 4 + length > len(self.buffer):
                break
            body = self.buffer[end + 4 : end + 4 + length]
            self.buffer = self.buffer[end + 4 + length :]
            path = head[0].split(b" ")[1] if head[0].count(b" ") >= 2 else b""
            answers.append(respond(self.base_url, path, headers, body))
        if len(self.buffer) > _MAX_REQUEST and self.transport is not None:
            self.transport.close()
        if answers and self.transport is not None:
            self.transport.write(b"".join(answers))


def _serve(sock: socket.socket, base_url: str) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: _Connection(base_url), sock=sock)
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGINT, stop.set)
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        async with server:
            await stop.wait()

    try:  # the sandbox's own event loop (a dependency): less CPU per request than asyncio's
        import uvloop
    except ImportError:
        asyncio.run(main())
    else:
        uvloop.run(main())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.canned", description=__doc__)
    parser.add_argument("--workers", type=int, default=1, help="processes accepting (fork)")
    parser.add_argument("--cpus", default="", help="pin to these CPUs, e.g. 1 or 0,1")
    args = parser.parse_args(argv)
    if args.cpus:
        os.sched_setaffinity(0, {int(c) for c in args.cpus.split(",")})
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    sock.setblocking(False)
    base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    children = []
    for _ in range(args.workers - 1):
        pid = os.fork()
        if pid == 0:
            _serve(sock, base_url)
            os._exit(0)
        children.append(pid)
    pids = [os.getpid(), *children]
    print(f"base_url: {base_url}\napi_key: {API_KEY}\napi_secret: {API_SECRET}")
    print(f"pids: {','.join(map(str, pids))}\nready", flush=True)
    try:
        _serve(sock, base_url)
    finally:
        for pid in children:
            os.kill(pid, signal.SIGTERM)
            os.waitpid(pid, 0)
    return 0


class CannedServer(SandboxProcess):
    """``with CannedServer(workers=1) as server:`` runs it as a child process.

    Started and stopped as :class:`~payments_binance.sandbox.SandboxProcess` starts and stops
    the sandbox (the same ``key: value`` lines, the same Ctrl-C). ``server.cpu_seconds()`` is
    the CPU time its processes have used so far, so a benchmark reads it before and after a
    measured stretch and states the server's share of a core.
    """

    def __init__(self, *, workers: int = 1) -> None:
        super().__init__()
        self.workers = workers
        self._watched: list[psutil.Process] = []

    def __enter__(self) -> CannedServer:
        command = [sys.executable, "-m", "benchmarks.canned", "--workers", str(self.workers)]
        self._process = subprocess.Popen(  # noqa: S603 - our interpreter, fixed module
            command, stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parent.parent
        )
        for line in self._process.stdout or ():
            key, _, value = line.partition(":")
            self.info[key.strip()] = value.strip()
            if key.strip() == "ready":
                self.base_url = self.info["base_url"]
                self._watched = [psutil.Process(int(p)) for p in self.info["pids"].split(",")]
                return self
        self.__exit__(None, None, None)
        raise RuntimeError("the canned server exited before it was ready")

    def cpu_seconds(self) -> float:
        """User + system CPU seconds used by the server's processes so far."""
        total = 0.0
        for process in self._watched:
            times = process.cpu_times()
            total += times.user + times.system
        return total


if __name__ == "__main__":
    sys.exit(main())
