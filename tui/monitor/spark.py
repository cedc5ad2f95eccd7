"""Sparklines drawn from exact values: a step line over a time span, one block character per column.

The value decides the block through Decimal arithmetic (only time is a float), so no amount is ever
rounded on its way to the screen, not even for a picture.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

BLOCKS = "▁▂▃▄▅▆▇█"


def sparkline(points: Sequence[tuple[float, Decimal]], start: float, end: float, width: int) -> str:
    """Each column shows the value in force at its right edge; blank before the first point."""
    if not points or width <= 0:
        return ""
    end = max(end, start + 1.0, points[-1][0])  # a span just begun still shows its one value
    columns: list[Decimal | None] = []
    current: Decimal | None = None
    index = 0
    for column in range(width):
        edge = start + (end - start) * (column + 1) / width
        while index < len(points) and points[index][0] <= edge:
            current = points[index][1]
            index += 1
        columns.append(current)
    values = [v for v in columns if v is not None]
    if not values:
        return ""
    low, high = min(values), max(values)
    top = len(BLOCKS) - 1
    return "".join(
        " " if v is None else BLOCKS[top // 2 if high == low else int((v - low) * top / (high - low))] for v in columns
    )
