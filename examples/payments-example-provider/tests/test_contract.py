"""ExamplePay against the provider contract suite of ``payments_core.testing``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from payments_example.harness import ExampleHarness

from payments_core.testing import ProviderContract, ProviderHarness


class TestExamplePayContract(ProviderContract):
    """Every contract, run against ExamplePay and its in-process sandbox."""

    @pytest.fixture
    def provider_harness(self) -> Iterator[ProviderHarness]:
        harness = ExampleHarness()
        yield harness
        harness.close()
