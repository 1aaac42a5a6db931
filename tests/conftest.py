"""Shared test configuration: hypothesis profiles.

``ci`` (selected when ``CI`` is set, or by ``PAYMENTS_HYPOTHESIS_PROFILE=ci``) runs at least
1,000 examples per property; ``dev`` keeps local runs quick.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", max_examples=200, deadline=None)
settings.load_profile(
    os.environ.get("PAYMENTS_HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev")
)
