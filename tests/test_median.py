"""The refresher's median of its round trips is `statistics.median`'s, without importing `statistics` (issue 24:
`--once` loads only what it uses)."""

from __future__ import annotations

import random
import statistics

import pytest

from tui.engine.refresher import median


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 8, 13])
def test_median_is_statistics_median(size: int) -> None:
    draw = random.Random(size)
    for _ in range(50):
        values = [draw.uniform(0.0, 2.0) for _ in range(size)]
        assert median(values) == statistics.median(values)
    assert median([3.0, 1.0, 2.0, 10.0]) == 2.5  # unsorted, even: the mean of the middle two
