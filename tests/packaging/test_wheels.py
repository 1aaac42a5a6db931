"""The built distributions, installed as a user installs them: wheels, not the source tree.

Builds the sdist and wheel of the core, the Stripe provider and the example provider with
``python -m build`` (the wheel from the sdist, so a file missing from either shows), checks
them with ``twine check``, installs the wheels into a fresh virtual environment, and there runs
the demo, the Stripe demo with a refund, and the three providers' contract suites. Package data
(the checkout page's HTML, certificates) left out of a wheel fails here, not at a user's.

It takes a minute or two (pip's cache is used): ``-m "not wheels"`` leaves it out of a quick run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

pytestmark = pytest.mark.wheels

ROOT = Path(__file__).parents[2]
PROJECTS = {
    "payments-core": ROOT,
    "payments-stripe": ROOT / "providers" / "payments-stripe",
    "payments-exampleprovider": ROOT / "examples" / "payments-example-provider",
}
CONTRACT_SUITES = {
    "binance": ROOT / "tests" / "binance_contract" / "test_contract.py",
    "stripe": PROJECTS["payments-stripe"] / "tests" / "test_stripe_contract.py",
    "example": PROJECTS["payments-exampleprovider"] / "tests" / "test_contract.py",
}


def _run(*command: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(  # noqa: S603 - our own interpreter and tools, fixed arguments
        [str(part) for part in command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, (
        f"{command} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    )
    return done.stdout


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sdists and wheels of the three distributions."""
    out = tmp_path_factory.mktemp("dist")
    for project in PROJECTS.values():
        _run(sys.executable, "-m", "build", "--outdir", out, project, cwd=out)
    return out


@pytest.fixture(scope="module")
def installed(dist: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment holding the wheels (not the source tree); its bin/."""
    home = tmp_path_factory.mktemp("venv")
    venv.create(home, with_pip=True)
    bin_dir = home / "bin"
    wheel = {name: next(dist.glob(f"{name.replace('-', '_')}-*.whl")) for name in PROJECTS}
    _run(
        bin_dir / "python",
        "-m",
        "pip",
        "install",
        "-q",
        "--find-links",
        dist,
        f"{wheel['payments-core']}[testing]",
        f"{wheel['payments-stripe']}[test]",
        wheel["payments-exampleprovider"],
        cwd=home,
    )
    return bin_dir


def test_every_distribution_builds_an_sdist_and_a_wheel_that_twine_accepts(dist: Path) -> None:
    built = sorted(path.name for path in dist.iterdir())

    assert built == [
        "payments_core-0.1.0-py3-none-any.whl",
        "payments_core-0.1.0.tar.gz",
        "payments_exampleprovider-0.1.0-py3-none-any.whl",
        "payments_exampleprovider-0.1.0.tar.gz",
        "payments_stripe-0.1.0-py3-none-any.whl",
        "payments_stripe-0.1.0.tar.gz",
    ]
    _run(sys.executable, "-m", "twine", "check", "--strict", *sorted(dist.iterdir()), cwd=dist)


def _clean_env(bin_dir: Path) -> dict[str, str]:
    kept = {k: v for k, v in os.environ.items() if not k.startswith(("PAYMENTS_", "BINANCE_"))}
    return {**kept, "PATH": f"{bin_dir}{os.pathsep}{kept.get('PATH', '')}"}


def test_the_installed_wheels_are_what_runs(installed: Path, tmp_path: Path) -> None:
    where = _run(
        installed / "python",
        "-c",
        "import payments_core, payments_stripe; print(payments_core.__file__)",
        cwd=tmp_path,
        env=_clean_env(installed),
    )

    assert str(installed.parent) in where
    assert str(ROOT) not in where
    version = _run(installed / "payments", "--version", cwd=tmp_path, env=_clean_env(installed))
    assert version == "payments, version 0.1.0\n"


def test_the_demo_runs_from_the_wheels(installed: Path, tmp_path: Path) -> None:
    out = _run(installed / "payments", "demo", "--json", cwd=tmp_path, env=_clean_env(installed))

    assert json.loads(out)["status"] == "paid"


def test_the_stripe_demo_with_a_refund_runs_from_the_wheels(
    installed: Path, tmp_path: Path
) -> None:
    out = _run(
        installed / "payments",
        "demo",
        "--provider",
        "stripe",
        "--refund",
        "--json",
        cwd=tmp_path,
        env=_clean_env(installed),
    )

    assert json.loads(out)["status"] == "refunded"


def test_the_contract_suites_pass_against_the_wheels(installed: Path, tmp_path: Path) -> None:
    for provider, suite in CONTRACT_SUITES.items():
        shutil.copy(suite, tmp_path / f"test_{provider}_contract.py")
    (tmp_path / "pytest.ini").write_text("[pytest]\nfilterwarnings = error\n")

    out = _run(
        installed / "python",
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        tmp_path,
        cwd=tmp_path,
        env=_clean_env(installed),
    )

    assert " passed" in out
    assert "failed" not in out
