"""Paired statistics for comparisons: every delta is computed on the same items, with a bootstrap CI."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Delta:
    value: float
    low: float
    high: float
    n: int  # items both systems have a score for

    @property
    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0


def paired_bootstrap(a: Mapping[str, float | None], b: Mapping[str, float | None], seed: int = 0,
                     iters: int = 2000) -> Delta | None:
    """mean(b - a) over items scored in both, with a 95% percentile bootstrap interval (resampling items)."""
    ids = sorted(k for k in a.keys() & b.keys() if a[k] is not None and b[k] is not None)
    if not ids:
        return None
    diffs = [float(b[k]) - float(a[k]) for k in ids]  # type: ignore[arg-type]
    n = len(diffs)
    rng = random.Random(seed)
    means = sorted(sum(diffs[rng.randrange(n)] for _ in range(n)) / n for _ in range(iters))
    return Delta(sum(diffs) / n, means[int(0.025 * iters)], means[int(0.975 * iters) - 1], n)
