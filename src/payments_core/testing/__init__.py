"""Tools for testing payment providers: the contract suite and hypothesis strategies.

Install with the ``testing`` extra (``pip install payments-core[testing]``), which brings pytest and
hypothesis. The public names:

* :class:`ProviderContract` — the contract suite; subclass it in a test module.
* :class:`ProviderHarness` — what the suite needs to know about a provider and its sandbox;
  :class:`InProcessHarness` — the same for a sandbox in this process, behind a mock transport.
* :class:`CallbackFormat` — where a provider's callbacks keep signature, timestamp, key name.
* :class:`Fault`, :class:`FaultInjector` — failures the suite injects between provider and
  sandbox.
* :class:`ContractBroken` — the failure raised when a contract is broken; :func:`contracts`
  lists the contracts.
* :class:`LogCapture` — captures DEBUG logs and finds secrets in them.
* :class:`ChangeRecorder` — an application plugin recording every status change announced.
* :mod:`payments_core.testing.sandbox` — the toolkit a provider's sandbox is built on.
* :mod:`payments_core.testing.strategies` — hypothesis strategies for money, order requests
  and callbacks.

Names are imported on first use, so importing this package (as the auto-loaded pytest plugin
does) imports neither pytest's contract machinery nor hypothesis.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from payments_core._lazy import lazy_names

if TYPE_CHECKING:
    from payments_core.testing.changes import ChangeRecorder
    from payments_core.testing.contract import (
        Contract,
        ContractBroken,
        ContractRun,
        ProviderContract,
        contracts,
    )
    from payments_core.testing.harness import (
        Fault,
        FaultInjector,
        FaultMode,
        InProcessHarness,
        ProviderHarness,
    )
    from payments_core.testing.logs import LogCapture
    from payments_core.testing.strategies import CallbackFormat, CallbackMutation

__all__ = [
    "CallbackFormat",
    "CallbackMutation",
    "ChangeRecorder",
    "Contract",
    "ContractBroken",
    "ContractRun",
    "Fault",
    "FaultInjector",
    "FaultMode",
    "InProcessHarness",
    "LogCapture",
    "ProviderContract",
    "ProviderHarness",
    "contracts",
]

_HOME: Final = {
    "CallbackFormat": "strategies",
    "CallbackMutation": "strategies",
    "ChangeRecorder": "changes",
    "Contract": "contract",
    "ContractBroken": "contract",
    "ContractRun": "contract",
    "Fault": "harness",
    "FaultInjector": "harness",
    "FaultMode": "harness",
    "InProcessHarness": "harness",
    "LogCapture": "logs",
    "ProviderContract": "contract",
    "ProviderHarness": "harness",
    "contracts": "contract",
}


# FaultKind is renamed: the sandbox toolkit's FaultKind is another thing.
__getattr__ = lazy_names(globals(), _HOME, renamed={"FaultKind": "FaultMode"})
