"""Paired statistics for comparisons: every delta is computed on the same items, with a bootstrap CI."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
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
    return _bootstrap([float(b[k]) - float(a[k]) for k in ids], seed, iters)  # type: ignore[arg-type]


def paired_bootstrap_over_seeds(a: Sequence[Mapping[str, float | None]], b: Sequence[Mapping[str, float | None]],
                                seed: int = 0, iters: int = 2000) -> Delta | None:
    """mean(b - a) over items, each item's difference first averaged over the seeds (`a[i]`, `b[i]`: seed i's
    per-item scores) that scored it in both; the bootstrap resamples items. An item is one unit however many seeds
    saw it, so a system that answers the same in every seed (greedy, untrained) adds no false precision."""
    per_item: dict[str, list[float]] = {}
    for sa, sb in zip(a, b, strict=True):
        for k in sa.keys() & sb.keys():
            if sa[k] is not None and sb[k] is not None:
                per_item.setdefault(k, []).append(float(sb[k]) - float(sa[k]))  # type: ignore[arg-type]
    return _bootstrap([sum(v) / len(v) for _, v in sorted(per_item.items())], seed, iters)


def two_sample_bootstrap(a: Sequence[float], b: Sequence[float], seed: int = 0, iters: int = 2000) -> Delta | None:
    """mean(b) - mean(a) for two groups of different items, with a 95% percentile bootstrap interval (each group
    resampled on its own); `n` is the smaller group's size."""
    if not a or not b:
        return None
    rng = random.Random(seed)
    diffs = sorted(sum(b[rng.randrange(len(b))] for _ in b) / len(b) - sum(a[rng.randrange(len(a))] for _ in a) / len(a)
                   for _ in range(iters))
    return Delta(sum(b) / len(b) - sum(a) / len(a), diffs[int(0.025 * iters)], diffs[int(0.975 * iters) - 1],
                 min(len(a), len(b)))


def bootstrap_interval(values: Sequence[float], seed: int = 0, iters: int = 1000) -> tuple[float, float] | None:
    """95% percentile bootstrap interval of the mean of `values` (resampled with `random.Random(seed)`)."""
    if not values:
        return None
    n = len(values)
    rng = random.Random(seed)
    means = sorted(sum(values[rng.randrange(n)] for _ in range(n)) / n for _ in range(iters))
    return means[int(0.025 * iters)], means[int(0.975 * iters) - 1]


def _bootstrap(diffs: list[float], seed: int, iters: int) -> Delta | None:
    """The mean of `diffs` with a 95% percentile bootstrap interval (resampling the differences)."""
    interval = bootstrap_interval(diffs, seed, iters)
    return None if interval is None else Delta(sum(diffs) / len(diffs), *interval, len(diffs))
