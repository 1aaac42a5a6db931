"""The contract every payment provider must meet, as a pytest test class to subclass.

A provider author opts in from their own test module::

    import pytest
    from payments_core.testing import ProviderContract

    class TestMyProvider(ProviderContract):
        @pytest.fixture
        def provider_harness(self):
            harness = MyHarness()          # a ProviderHarness subclass
            yield harness
            harness.close()

Each ``test_*`` method checks one named contract. When a provider breaks one, the test fails
with :class:`ContractBroken`, whose message starts ``contract '<name>' broken:``. The
contracts, and the hooks each one calls, are listed by :func:`contracts`.

Every test builds its own :class:`~payments_core.Payments` wired to the provider through a
:class:`~payments_core.testing.harness.FaultInjector`, with a retry policy that never sleeps,
and uses fresh references, so tests may share one harness and its sandbox.
"""

from __future__ import annotations

from typing import Final

import pytest

from payments_core.testing.contract.orders import ErrorContracts, OrderContracts, SurfaceContracts
from payments_core.testing.contract.recorded import RecordedPaymentContracts
from payments_core.testing.contract.runner import Contract, ContractBroken, ContractRun
from payments_core.testing.contract.settlement import CallbackContracts, RefundContracts
from payments_core.testing.contract.telemetry import TelemetryContracts

__all__ = ["Contract", "ContractBroken", "ContractRun", "ProviderContract", "contracts"]


class ProviderContract(
    OrderContracts,
    RefundContracts,
    CallbackContracts,
    RecordedPaymentContracts,
    ErrorContracts,
    SurfaceContracts,
    TelemetryContracts,
):
    """The provider contract suite. Subclass it as ``Test...`` and supply ``provider_harness``.

    ``provider_harness`` is a fixture (any scope) returning a
    :class:`~payments_core.testing.harness.ProviderHarness`. Contracts that need an optional
    capability (``close_order``, a sandbox) skip, saying why, when the provider lacks it.
    """

    pytestmark: Final = [pytest.mark.payments_contract]


def contracts(cls: type | None = None) -> dict[str, Contract]:
    """The contracts a contract class checks (default :class:`ProviderContract`), by name."""
    found: dict[str, Contract] = {}
    for klass in reversed((cls or ProviderContract).__mro__):
        for attribute in vars(klass).values():
            contract = getattr(attribute, "__contract__", None)
            if isinstance(contract, Contract):
                found[contract.name] = contract
    return found
