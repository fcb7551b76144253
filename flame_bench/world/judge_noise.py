"""How noisy the world's reward models should be: each level chosen from a published measurement of the paper's own
kind of judge, before any comparison with it.

RM_IF (the sampled rubric):
Reference (stated before looking at FLAME's result): Yuan et al. 2024 ("Self-Rewarding Language Models"), whose
additive 5-point rubric prompt FLAME's RM_IF uses, report the pairwise accuracy of their Llama-2-70B judge against
held-out human preferences: 78.7% after the first iteration (M1), rising to 81.7% (M3). The world's exact rubric
plays the humans' part here: for pairs of responses to the same instruction whose exact scores differ, the noise
level is the per-criterion misreading rate at which ONE sampled judgement orders the pair as the exact rubric does
78.7% of the time (ties count one half). RM_IF then averages three such judgements, as the paper's does.

The pairs are the outputs saved in fact-world win-rate runs (a model's output against the reference output of each
item): what the world's systems actually write, not a synthetic set.

RM_fact (the fact checker): FLAME's RM_fact checks atomic facts with Inst-LLaMA 7B, Retrieve->LM (no NP), the
estimator whose per-fact behaviour FActScore measured against human annotators (Min et al. 2023, Table 3): it
overestimates FActScore by 14.1 / 17.1 / 0.1 points on InstructGPT / ChatGPT / PerplexityAI bios (human FActScore
42.5 / 58.3 / 71.5), i.e. it accepts unsupported facts. Read as a false-accept rate on unsupported facts, pooled over
the three subjects: (14.1 + 17.1 + 0.1) / (57.5 + 41.7 + 28.5) = 0.245 (per subject 0.245 / 0.410 / 0.004). The world
checker accepts each unsupported fact with that probability and never rejects a supported one. As a check, not a
target: FLAME's Table 10 gives Kendall's tau 0.34 between its checker's and humans' error counts per response; the
command `world rm-fact-noise` shows the tau this rate gives against the world's exact counts on saved outputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from flame_bench.core.errors import FlameError

YUAN_2024_M1_PAIRWISE_ACCURACY = 0.787
# FActScore Table 3, Inst-LLaMA Retrieve->LM: (subject, human FActScore, estimated FActScore)
FACTSCORE_RETRIEVE_LM = (("InstructGPT", 42.5, 56.6), ("ChatGPT", 58.3, 75.4), ("PerplexityAI", 71.5, 71.6))
FLAME_TABLE10_RM_FACT_TAU = 0.34  # instruct Llama 7B, 10 supports, atomic facts (the configuration FLAME adopts)
FACT_CHECKERS = 5  # simulated checkers (salts) averaged per rate
FACT_SWEEP = (0.0, 0.12, 0.245)
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


# -- RM_fact -------------------------------------------------------------------------------------------------------
def published_false_accept_rate() -> dict[str, Any]:
    """The false-accept rate FActScore's Table 3 implies for FLAME's checker, per subject and pooled."""
    per = {name: (est - human) / (100 - human) for name, human, est in FACTSCORE_RETRIEVE_LM}
    pooled = (sum(est - human for _, human, est in FACTSCORE_RETRIEVE_LM)
              / sum(100 - human for _, human, _ in FACTSCORE_RETRIEVE_LM))
    return {"per_subject": per, "pooled": pooled}


# RM_fact's default in the fact world (since 2026-12-03): the pooled rate above, as `world rm-fact-noise` reports it
FLAME_CHECKER_FALSE_ACCEPT = round(published_false_accept_rate()["pooled"], 3)


def kendall_tau_b(x: Sequence[float], y: Sequence[float], rows: int = 512) -> float:
    """Kendall's tau-b (ties in either ranking handled), over all pairs: exact, in numpy, `rows` rows of the pair
    matrix at a time (memory stays O(rows x n) for any number of responses)."""
    import numpy as np

    a, b = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    products = untied_x = untied_y = 0
    for start in range(0, len(a), rows):
        i = np.arange(start, min(start + rows, len(a)))
        upper = np.arange(len(a))[None, :] > i[:, None]  # each pair once
        sx = np.sign(a[i, None] - a[None, :]) * upper
        sy = np.sign(b[i, None] - b[None, :]) * upper
        products += int((sx * sy).sum())
        untied_x += int((sx != 0).sum())
        untied_y += int((sy != 0).sum())
    denominator = float(np.sqrt(untied_x * untied_y))
    return products / denominator if denominator else 0.0


def checked_responses(runs: Sequence[Any]) -> list[tuple[str, list[dict]]]:
    """(item id, atomic facts with exact verdicts and evidence) of every responding output in FActScore runs."""
    out = []
    for run in runs:
        for s in run.samples():
            if not s.get("abstained") and s.get("facts"):
                out.append((f"{Path(run.path).name}/{s['id']}", s["facts"]))
    return out


def lenient_checker_effect(responses: Sequence[tuple[str, list[dict]]], rate: float,
                           checkers: int = FACT_CHECKERS) -> dict[str, float]:
    """What a checker accepting unsupported facts with probability `rate` does to saved outputs, mean over
    `checkers` simulated checkers: FActScore exact and noisy, and Kendall tau-b of the error counts per response."""
    from flame_bench.world.factscore import falsely_accepted

    exact_errors = [sum(not f["supported"] for f in facts) for _, facts in responses]
    exact_fs = sum(1 - e / len(facts) for e, (_, facts) in zip(exact_errors, responses, strict=True)) / len(responses)
    taus, fss = [], []
    for salt in range(checkers):
        errors = [sum(not f["supported"] and not falsely_accepted(f["text"], item, f.get("evidence") or [], rate, salt)
                      for f in facts) for item, facts in responses]
        taus.append(kendall_tau_b(exact_errors, errors))
        fss.append(sum(1 - e / len(facts) for e, (_, facts) in zip(errors, responses, strict=True)) / len(responses))
    return {"factscore_exact": 100 * exact_fs, "factscore_noisy": 100 * sum(fss) / checkers,
            "tau": sum(taus) / checkers}


def fact_noise_report(runs: Sequence[Any], rates: Sequence[float] = FACT_SWEEP) -> dict[str, Any]:
    responses = checked_responses(runs)
    if len(responses) < 50:
        raise FlameError(f"only {len(responses)} scored responses in these runs; run `flame-bench compare` on this "
                         "world first (its Bio and Alpaca Fact runs are the check set)")
    published = published_false_accept_rate()
    return {"published": published, "chosen": FLAME_CHECKER_FALSE_ACCEPT, "responses": len(responses),
            "facts": sum(len(f) for _, f in responses), "tau_reference": FLAME_TABLE10_RM_FACT_TAU,
            "effect": {r: lenient_checker_effect(responses, r) for r in rates},
            "runs": [str(Path(r.path).name) for r in runs]}
