"""Numeric limits of every setting a system file can give (recipe configs, trl trainer keys, LoRA): one check,
shared by the stage machinery and the trl plumbing."""

from __future__ import annotations

import math
from typing import Any

MAX_NUMBER = 1e9  # no setting needs more; larger ones overflow or never finish (recipe configs and trainer keys)


def check_number(what: str, value: Any, low: float | None = None, high: float | None = None, bounds: str = "[]",
                 integer: bool = False) -> None:
    """ValueError unless `value` is a finite number (an int with `integer`) within `bounds` of low..high, and at
    most MAX_NUMBER."""
    if isinstance(value, bool) or not isinstance(value, int if integer else int | float):
        raise ValueError(f"{what} must be {'int' if integer else 'a number'}, got {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{what} must be a finite number, got {value!r}")
    above = low is None or (value > low if bounds[0] == "(" else value >= low)
    below = high is None or (value < high if bounds[1] == ")" else value <= high)
    if high is not None and not (above and below):
        raise ValueError(f"{what} must be in {bounds[0]}{low}, {high}{bounds[1]}, got {value!r}")
    if not above:
        raise ValueError(f"{what} must be {'>' if bounds[0] == '(' else '>='} {low}, got {value!r}")
    if value > MAX_NUMBER:
        raise ValueError(f"{what} must be at most {MAX_NUMBER:g}, got {value!r}")
