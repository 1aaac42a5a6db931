"""The overview's chart of paid totals per day, laid out here and drawn as inline SVG.

The layout is plain numbers (bars, ticks, labels) so the template only places them; nothing
is drawn in the browser and nothing is fetched.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from decimal import Decimal
from typing import Final

import attrs

from payments_core.console.rows import DailyTotal

__all__ = ["Bar", "CurrencyChart", "daily_charts"]

WIDTH: Final = 640
HEIGHT: Final = 160
#: Room left of the bars for the scale, and below them for the dates.
LEFT: Final = 56
BOTTOM: Final = 20
TOP: Final = 8


@attrs.frozen(kw_only=True)
class Bar:
    """One day's bar: its box, and what it stands for (the bar's tooltip)."""

    x: float
    y: float
    width: float
    height: float
    label: str


@attrs.frozen(kw_only=True)
class CurrencyChart:
    """The bars of one currency over the window, with its scale and date labels."""

    currency: str
    total: Decimal
    orders: int
    maximum: Decimal
    bars: list[Bar]
    ticks: list[tuple[float, str]]
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    baseline: int = HEIGHT - BOTTOM
    top: int = TOP


def daily_charts(totals: Sequence[DailyTotal], first_day: date, days: int) -> list[CurrencyChart]:
    """One chart per currency of ``totals``, a bar per day from ``first_day`` for ``days``."""
    charts = []
    slot = (WIDTH - LEFT) / days
    plot_height = HEIGHT - BOTTOM - TOP
    ticks = [
        (LEFT + slot * index + slot / 2, (first_day + timedelta(days=index)).strftime("%d %b"))
        for index in range(0, days, max(1, days // 5))
    ]
    for currency in sorted({total.currency for total in totals}):
        mine = {total.day: total for total in totals if total.currency == currency}
        maximum = max(total.total for total in mine.values())
        bars = []
        for index in range(days):
            day = first_day + timedelta(days=index)
            found = mine.get(day)
            if found is None or maximum == 0:
                continue
            height = float(found.total / maximum) * plot_height
            bars.append(
                Bar(
                    x=LEFT + slot * index + slot * 0.1,
                    y=HEIGHT - BOTTOM - height,
                    width=slot * 0.8,
                    height=height,
                    label=(
                        f"{day.isoformat()}: {format(found.total, 'f')} {currency} "
                        f"from {found.orders} order(s)"
                    ),
                )
            )
        charts.append(
            CurrencyChart(
                currency=currency,
                total=sum((total.total for total in mine.values()), Decimal(0)),
                orders=sum(total.orders for total in mine.values()),
                maximum=maximum,
                bars=bars,
                ticks=ticks,
            )
        )
    return charts
