"""``payments sandbox`` starts on loopback and serves calls signed with the given credentials."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import httpx
from click.testing import CliRunner

from payments_binance import protocol
from payments_binance.sandbox import SandboxProcess, sandbox_command
from payments_binance.sandbox.config import DEFAULT_API_SECRET

from .conftest import signed_headers, v3_order


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_command_serves_create_order_signed_with_given_credentials() -> None:
    port = free_port()
    key, secret = "cli-key-K", "cli-secret-S"
    args = ("--api-key", key, "--api-secret", secret, "--no-webhooks")
    with SandboxProcess(*args, port=port) as process, httpx.Client(trust_env=False) as http:
        assert process.base_url == f"http://127.0.0.1:{port}"
        assert process.info["api_key"] == key
        assert process.info["api_secret"] == secret
        assert process.info["timestamp_window_ms"] == "60000"
        body = json.dumps(v3_order("CLI1")).encode()
        url = process.base_url + protocol.PATH_CREATE_ORDER_V3
        created = http.post(url, content=body, headers=signed_headers(body, key=key, secret=secret))
        assert created.status_code == 200, created.text
        assert int(created.json()["data"]["prepayId"]) > 2**53
        certs_url = process.base_url + protocol.PATH_CERTIFICATES
        certs = http.post(
            certs_url, content=b"", headers=signed_headers(b"", key=key, secret=secret)
        )
        assert certs.json()["data"][0]["certSerial"] == process.info["certificate_serial"]
        default = http.post(url, content=body, headers=signed_headers(body, key="sandbox-key"))
        assert default.json()["code"] == "400004"


def test_command_is_a_click_command_named_sandbox() -> None:
    assert sandbox_command.name == "sandbox"
    result = CliRunner().invoke(sandbox_command, ["--help"])
    assert result.exit_code == 0
    for option in ("--host", "--port", "--api-key", "--api-secret", "--faults", "--seed"):
        assert option in result.output


def test_unknown_fault_profile_is_a_usage_error() -> None:
    result = CliRunner().invoke(sandbox_command, ["--faults", "meteor"])
    assert result.exit_code == 2


def test_zero_workers_or_an_unreachable_state_is_a_usage_error(tmp_path: Path) -> None:
    assert CliRunner().invoke(sandbox_command, ["--workers", "0"]).exit_code == 2
    missing = tmp_path / "no-such-dir" / "state.db"
    result = CliRunner().invoke(sandbox_command, ["--state", str(missing)])
    assert result.exit_code == 2
    assert "--state" in result.output


def test_state_file_keeps_orders_for_the_next_run(tmp_path: Path) -> None:
    state = str(tmp_path / "kept.db")
    body = json.dumps(v3_order("KEPT1")).encode()
    for expected in ("000000", "400201"):  # the second run remembers the first's order
        with SandboxProcess("--no-webhooks", state=state) as process:
            assert process.info["state"] == state
            url = process.base_url + protocol.PATH_CREATE_ORDER_V3
            headers = signed_headers(body, key="sandbox-key", secret=DEFAULT_API_SECRET)
            answer = httpx.post(url, content=body, headers=headers, trust_env=False).json()
            assert answer["code"] == expected
