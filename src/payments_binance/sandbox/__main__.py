"""``python -m payments_binance.sandbox``: the same as ``payments sandbox``."""

from payments_binance.sandbox.cli import sandbox_command

sandbox_command(prog_name="payments sandbox")
