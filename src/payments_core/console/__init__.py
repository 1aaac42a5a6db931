"""The operator's console: the ledger as a person wants to see it, with the few actions they need.

:func:`create_console_app` builds a server-rendered ASGI app (Starlette, Jinja2 templates with
autoescaping, inline CSS and SVG, no JavaScript) that any ASGI application mounts under any
prefix::

    app.mount("/ops/payments", create_console_app(payments, authorize=staff_only))

``authorize(request)`` is the application's: it returns the :class:`Operator` behind a request
(who may only read, who may also act) or ``None`` to refuse it; by default everyone is refused.
``payments console`` serves it for a ledger URL behind a one-time login link
(:class:`OneTimeToken`). Needs the ``console`` extra: ``pip install 'payments-core[console]'``.
See ``docs/operations.md``.
"""

from __future__ import annotations

from payments_core.console.access import Authorize, OneTimeToken, Operator, refuse_everyone
from payments_core.console.app import create_console_app

__all__ = ["Authorize", "OneTimeToken", "Operator", "create_console_app", "refuse_everyone"]
