"""Where the ledger's names lived before the ledger was split by concern.

Every public name still imports from here, with a :class:`DeprecationWarning` naming its new
module:

* :class:`~payments_core.ledger.Ledger`: :mod:`payments_core.ledger.interface`;
* what it returns (``ApplyResult``, ``RefundOutcome``, ``OrderRecord``, ``EventRecord``):
  :mod:`payments_core.ledger.records`;
* what the facade returns (``CallbackOutcome``, ``ReconcileOutcome``):
  :mod:`payments_core.outcomes`;
* the payment rules (``EventFlag``, ``OrderState``, ``assess_event``, ``assess_refund_notice``,
  ``check_refundable``): :mod:`payments_core.rules`;
* ``safe_url``: :mod:`payments_core.redaction`;
* ``SqlLedger``: :mod:`payments_core.ledger.sql`; ``Connection`` and ``Cursor``:
  :mod:`payments_core.ledger.dbapi`; ``MIGRATIONS``: :mod:`payments_core.ledger.migrations`.
"""

from __future__ import annotations

from payments_core.ledger._moved import moved_names

_RECORDS = "payments_core.ledger.records"
_RULES = "payments_core.rules"

__getattr__ = moved_names(
    __name__,
    {
        "ApplyResult": _RECORDS,
        "EventRecord": _RECORDS,
        "OrderRecord": _RECORDS,
        "RefundOutcome": _RECORDS,
        "CallbackOutcome": "payments_core.outcomes",
        "ReconcileOutcome": "payments_core.outcomes",
        "EventFlag": _RULES,
        "OrderState": _RULES,
        "assess_event": _RULES,
        "assess_refund_notice": _RULES,
        "check_refundable": _RULES,
        "safe_url": "payments_core.redaction",
        "Ledger": "payments_core.ledger.interface",
        "SqlLedger": "payments_core.ledger.sql",
        "Connection": "payments_core.ledger.dbapi",
        "Cursor": "payments_core.ledger.dbapi",
        "MIGRATIONS": "payments_core.ledger.migrations",
    },
)
