"""A process that creates orders through ``Payments.create_order``, for the client crash test.

``python -m tests.ledger.create_worker COUNT`` creates (or finds) the orders ``client-0`` to
``client-{COUNT-1}`` one after the other, with the provider, ledger and retry policy from the
environment and ``$PAYMENTS_CONFIG``. It prints ``ready``, then a line per retry (the retry
policy's log) and ``created REF PROVIDER_ORDER_ID`` per order, flushed at once, so that the
test can kill it with SIGKILL in the middle of a create's retries.
"""

from __future__ import annotations

import logging
import os
import sys

from payments_core import Money, OrderRequest, Payments, open_ledger

NOWHERE = "http://127.0.0.1:9/callbacks/binance"


def main(count: int) -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("retry %(message)s"))
    retry_log = logging.getLogger("payments_core.retry")
    retry_log.addHandler(handler)
    retry_log.setLevel(logging.INFO)
    with Payments(ledger=open_ledger(os.environ["PAYMENTS_DATABASE_URL"])) as payments:
        print("ready", flush=True)
        for i in range(count):
            request = OrderRequest(
                reference=f"client-{i}", price=Money("1.00", "USD"), callback_url=NOWHERE
            )
            order = payments.create_order(request, provider="binance")
            print(f"created {order.reference} {order.provider_order_id}", flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]))
