"""How ``payments serve`` answers and logs a request: the access log only when asked.

``--access-log`` writes uvicorn's line per request on standard output, with the client's
address as a proxy on loopback forwards it. Off by default: a provider delivering callbacks at
a high rate would otherwise cost the server a formatted, written line for each one. No answer
names the server's software.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from .serve_process import ServeProcess, child_env

#: The client's address as the proxy in front forwards it (TEST-NET-3), and the request.
FORWARDED = "203.0.113.7"
ACCESS_LINE = f'{FORWARDED}:0 - "POST /callbacks/nobody HTTP/1.1" 404'


@pytest.mark.parametrize(
    ("args", "workers", "logged"),
    [([], None, False), (["--access-log"], None, True), (["--access-log"], 2, True)],
    ids=["default", "access-log", "access-log-two-workers"],
)
def test_serve_writes_the_access_log_only_with_access_log(
    tmp_path: Path, args: list[str], workers: int | None, logged: bool
) -> None:
    env = child_env({"PAYMENTS_DATABASE_URL": f"sqlite:///{tmp_path / 'ledger.sqlite3'}"})
    output = tmp_path / "stdout.log"
    with ServeProcess(args, env, workers=workers, stdout=output) as serve:
        answer = httpx.post(
            f"{serve.url}/callbacks/nobody", content=b"{}", headers={"x-forwarded-for": FORWARDED}
        )
    assert answer.status_code == 404
    assert "server" not in answer.headers
    assert serve.returncode == 0, serve.lines
    assert (ACCESS_LINE in output.read_text()) is logged, output.read_text()
