"""ExampleCharges, the find-or-create provider, against the contract suite over loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from payments_example.harness import ChargesHarness

from payments_core.testing import ProviderContract, ProviderHarness


@pytest.fixture(scope="module")
def charges_harness() -> Iterator[ChargesHarness]:
    harness = ChargesHarness()
    yield harness
    harness.close()


class TestExampleChargesContract(ProviderContract):
    """Every contract, run against ExampleCharges and its sandbox served on loopback."""

    @pytest.fixture
    def provider_harness(self, charges_harness: ChargesHarness) -> ProviderHarness:
        return charges_harness
