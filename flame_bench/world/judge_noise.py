"""How noisy the world's sampled RM_IF should be: chosen from a published judge's accuracy, before any comparison.

Reference (stated before looking at FLAME's result): Yuan et al. 2024 ("Self-Rewarding Language Models"), whose
additive 5-point rubric prompt FLAME's RM_IF uses, report the pairwise accuracy of their Llama-2-70B judge against
held-out human preferences: 78.7% after the first iteration (M1), rising to 81.7% (M3). The world's exact rubric
plays the humans' part here: for pairs of responses to the same instruction whose exact scores differ, the noise
level is the per-criterion misreading rate at which ONE sampled judgement orders the pair as the exact rubric does
78.7% of the time (ties count one half). RM_IF then averages three such judgements, as the paper's does.

The pairs are the outputs saved in fact-world win-rate runs (a model's output against the reference output of each
item): what the world's systems actually write, not a synthetic set.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from flame_bench.errors import FlameError

YUAN_2024_M1_PAIRWISE_ACCURACY = 0.787
GRID = tuple(round(0.01 * i, 2) for i in range(0, 41))  # 0.00 .. 0.40


def scored_pairs(runs: Sequence[Any], records: dict[str, dict], grammar) -> list[tuple[dict, str, str]]:
    """(record, better, worse) by the exact rubric: every two distinct responses to one item (each run's output and
    its reference output) whose exact scores differ (`records`: the world's instruction records by id)."""
    from flame_bench.world.rubric import if_rubric

    responses: dict[str, set[str]] = {}
    for run in runs:
        for s in run.samples():
            responses.setdefault(s["id"], set()).update((s.get("output", ""), s.get("reference_output", "")))
    pairs = []
    for item_id in sorted(responses):
        record = records[item_id]
        scored = sorted((if_rubric(record, r, grammar).score, r) for r in responses[item_id])
        for i, (sa, a) in enumerate(scored):
            pairs += [(record, b, a) for sb, b in scored[i + 1:] if sb > sa]
    return pairs


def pairwise_accuracy(pairs: Sequence[tuple[dict, str, str]], grammar, noise: float, samples: int = 20) -> float:
    """Expected share of pairs one sampled judgement orders as the exact rubric does (ties count 1/2), averaged
    over `samples` independent judgements of each pair."""
    from flame_bench.world.rubric import sampled_rubric_scores

    total = 0.0
    for record, better, worse in pairs:
        his = sampled_rubric_scores(record, better, grammar, noise, range(samples))
        los = sampled_rubric_scores(record, worse, grammar, noise, range(samples))
        total += sum(1.0 if hi > lo else 0.5 if hi == lo else 0.0 for hi, lo in zip(his, los, strict=True))
    return total / (len(pairs) * samples)


def calibrate(runs: Sequence[Any], records: dict[str, dict], grammar, target: float = YUAN_2024_M1_PAIRWISE_ACCURACY,
              grid: Sequence[float] = GRID) -> dict[str, Any]:
    pairs = scored_pairs(runs, records, grammar)
    if len(pairs) < 50:
        raise FlameError(f"only {len(pairs)} response pairs with different rubric scores in these runs; run "
                         "`flame-bench compare` on this world first (its win-rate runs are the calibration set)")
    curve = {p: pairwise_accuracy(pairs, grammar, p) for p in grid}
    chosen = min(grid, key=lambda p: (abs(curve[p] - target), p))
    return {"target": target, "pairs": len(pairs), "curve": curve, "noise": chosen, "accuracy": curve[chosen],
            "runs": [str(Path(r.path).name) for r in runs]}
