"""Hypothesis profiles for the contract suite and for provider tests.

Two profiles are registered (under names that cannot clash with a project's own):

==================  =============  ============================================================
profile             max_examples   selected when
==================  =============  ============================================================
``payments-ci``     1000           ``PAYMENTS_HYPOTHESIS_PROFILE=ci``, or ``CI`` is set
``payments-dev``    50             otherwise (``PAYMENTS_HYPOTHESIS_PROFILE=dev`` forces it)
==================  =============  ============================================================

Importing this module does not import hypothesis. Both profiles have no per-example
deadline: a provider's sandbox may answer over loopback, and a slow machine must not turn into
a failing test.

The contract suite always runs its property tests under :func:`contract_settings`. Other
hypothesis tests are affected only when ``PAYMENTS_HYPOTHESIS_PROFILE`` is set, in which case
the pytest plugin loads the profile for the whole run.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from hypothesis import settings

__all__ = ["PROFILE_ENV", "contract_settings", "register_profiles", "selected_profile"]

#: The environment variable that picks a profile: ``ci`` or ``dev``.
PROFILE_ENV: Final = "PAYMENTS_HYPOTHESIS_PROFILE"

_EXAMPLES: Final = {"ci": 1000, "dev": 50}


def register_profiles() -> None:
    """Register ``payments-ci`` and ``payments-dev`` with hypothesis (idempotent)."""
    from hypothesis import settings

    for name, examples in _EXAMPLES.items():
        settings.register_profile(
            f"payments-{name}", max_examples=examples, deadline=None, print_blob=True
        )


def selected_profile(environ: Mapping[str, str] | None = None) -> str:
    """The name of the profile the environment asks for (``payments-ci`` or ``payments-dev``).

    :raises ValueError: if ``PAYMENTS_HYPOTHESIS_PROFILE`` names neither ``ci`` nor ``dev``.
    """
    env = os.environ if environ is None else environ
    wanted = env.get(PROFILE_ENV, "").strip().lower()
    if wanted and wanted not in _EXAMPLES:
        raise ValueError(f"{PROFILE_ENV}={wanted!r}: expected one of {sorted(_EXAMPLES)}")
    if not wanted:
        wanted = "ci" if env.get("CI") else "dev"
    return f"payments-{wanted}"


def contract_settings() -> settings:
    """The hypothesis settings the contract suite's property tests run under."""
    from hypothesis import settings

    register_profiles()
    # One broken contract is enough to report; hunting for every distinct bug costs minutes.
    return settings(settings.get_profile(selected_profile()), report_multiple_bugs=False)
