"""testing-providers.md's contract-suite class runs as shown, with warnings as errors."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

PAGE = Path(__file__).parents[2] / "docs" / "testing-providers.md"


def test_the_class_scoped_harness_example_runs_without_warnings(tmp_path: Path) -> None:
    pytest.importorskip(
        "payments_example", reason="pip install -e examples/payments-example-provider"
    )
    block = re.search(
        r"```python\n(import pytest\nfrom payments_core.testing import ProviderContract\n.*?)```",
        PAGE.read_text(),
        re.DOTALL,
    )
    assert block is not None
    assert '@pytest.fixture(scope="class")' in block[1]
    module = "from payments_example.harness import ExampleHarness as MyHarness\n" + block[1]
    (tmp_path / "test_shown.py").write_text(module)
    (tmp_path / "pytest.ini").write_text("[pytest]\nfilterwarnings = error\n")

    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", "same_reference"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )

    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout
