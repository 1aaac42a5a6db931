"""Stripe against the provider contract suite of ``payments_core.testing``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from payments_stripe.harness import StripeHarness

from payments_core.testing import ProviderContract, ProviderHarness


class TestStripeContract(ProviderContract):
    """Every contract, run against Stripe and its in-process sandbox."""

    @pytest.fixture
    def provider_harness(self) -> Iterator[ProviderHarness]:
        harness = StripeHarness()
        yield harness
        harness.close()
