"""``payments serve`` logs one line per request only when asked (``--access-log``).

uvicorn writes its access log to standard output.

Off by default: a provider delivering callbacks at a high rate would otherwise cost the server
a formatted, flushed log line for each one, and the callback's outcome is logged anyway when it
is not an acknowledgement.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from .serve_process import ServeProcess, child_env

ACCESS_LINE = '"POST /callbacks/nobody HTTP/1.1" 404'


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
        answer = httpx.post(f"{serve.url}/callbacks/nobody", content=b"{}")
    assert answer.status_code == 404
    assert serve.returncode == 0, serve.lines
    assert (ACCESS_LINE in output.read_text()) is logged, output.read_text()
