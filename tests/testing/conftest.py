"""The broken providers here are variants of the ExamplePay example provider.

CI installs it (``pip install -e examples/payments-example-provider``). Where it is not
installed, the package is imported from its source directory instead, so that this suite does
not depend on the install. The import does not touch ``sys.path``: a directory on it would also
expose any build metadata lying there, and with it a ``payments.providers`` entry point that
every other test in the run would then load.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

if importlib.util.find_spec("payments_example") is None:
    _package = Path(__file__).parents[2] / "examples/payments-example-provider/src/payments_example"
    _spec = importlib.util.spec_from_file_location(
        "payments_example", _package / "__init__.py", submodule_search_locations=[str(_package)]
    )
    assert _spec is not None
    assert _spec.loader is not None
    _module = importlib.util.module_from_spec(_spec)
    sys.modules["payments_example"] = _module
    _spec.loader.exec_module(_module)
