"""Paired bootstrap deltas."""

from __future__ import annotations

import pytest

from flame_bench.core.stats import paired_bootstrap


def test_paired_delta_uses_only_shared_scored_items() -> None:
    a = {"x": 0.0, "y": 0.5, "z": 1.0, "w": None}
    b = {"x": 1.0, "y": 1.0, "z": 1.0, "w": 1.0, "v": 0.0}
    d = paired_bootstrap(a, b, seed=0)
    assert d is not None and d.n == 3
    assert d.value == pytest.approx((1.0 + 0.5 + 0.0) / 3)
    assert 0.0 <= d.low <= d.value <= d.high <= 1.0


def test_identical_systems_have_a_zero_interval() -> None:
    a = {str(i): i / 10 for i in range(10)}
    d = paired_bootstrap(a, dict(a))
    assert d is not None and (d.value, d.low, d.high) == (0.0, 0.0, 0.0) and not d.excludes_zero


def test_a_consistent_gain_excludes_zero() -> None:
    a = {str(i): 0.2 for i in range(50)}
    b = {str(i): 0.3 + (i % 3) * 0.01 for i in range(50)}
    assert paired_bootstrap(a, b).excludes_zero
    assert paired_bootstrap({}, {}) is None
