"""``payments console`` as a real child process: loopback, a login link that works once."""

from __future__ import annotations

import re
import signal
import subprocess
from pathlib import Path

import httpx

from payments_core import open_ledger
from tests.ledger.serve_process import STARTUP_TIMEOUT_S, child_env, cli_command


def test_payments_console_prints_a_one_time_link_on_loopback(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    open_ledger(url).close()
    console = subprocess.Popen(  # noqa: S603 - this interpreter, our own arguments
        cli_command("console", "--port", "0", "--database-url", url),
        env=child_env({"PAYMENTS_PROVIDERS": "binance"}),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines = []
    link = None
    try:
        assert console.stderr is not None
        # The socket listens before the link is printed: a request waits for the server.
        for line in console.stderr:
            lines.append(line)
            found = re.search(r"http://\S+/login\?token=\S+", line)
            if found:
                link = found[0]
                break
        assert link is not None, lines
        assert link.startswith("http://127.0.0.1:")
        with httpx.Client(timeout=STARTUP_TIMEOUT_S) as browser:
            opened = browser.get(link, follow_redirects=True)
            assert opened.status_code == 200
            assert "(payments console)" in opened.text
        assert httpx.get(link).status_code == 403  # once only
    finally:
        console.send_signal(signal.SIGINT)
        _, rest = console.communicate(timeout=STARTUP_TIMEOUT_S)
    assert console.returncode == 0, rest
    assert lines[0].startswith("ledger sqlite:///")
