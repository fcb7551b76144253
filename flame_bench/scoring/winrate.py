"""Alpaca-style pairwise win rate against a reference model's outputs (paper §6.1, §8.1), pure numpy.

Convention (AlpacaEval's): output_1 is the reference, output_2 the evaluated model, and a judge's preference is
1.0 (output_1 better), 2.0 (output_2 better) or 1.5 (tie). Each item's order is randomized deterministically
(`item_swap`), so a judge with a position bias cannot favour either side; `preference_for_model` flips the
preference back to the model's score in {0, 0.5, 1} (1 = model wins). Identical outputs are ties without asking the
judge. Unparsable judge replies are never dropped silently: they are excluded from the rate, counted in
`WinRate.n_unparsable`, and above `max_unparsable_frac` of the judge's replies `score_pairs` stops with a FlameError.

win_rate = 100 * mean(model score), so a tie counts as half a win; standard_error = 100 * SEM (ddof=1).

The length-controlled (LC) win rate is our own offline estimator in the spirit of AlpacaEval 2's GLM (whose
regularization to "gamed" baselines and per-instruction difficulties need downloads): with d = len(model) -
len(reference) in characters and x = tanh(d / std(d)) (x = 0 when std(d) = 0), fit a logistic regression of the
soft score on [1, x] by Newton's method with a small L2 penalty on the slope only, and report 100 * sigmoid(intercept),
the predicted win rate at zero length difference. With equal lengths it equals the raw rate; a model that wins only by
being longer gets a rate near 50. When every score is 1 (or every score 0) the intercept is unbounded and the raw rate
(100 or 0) is returned instead.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from flame_bench.core.errors import FlameError
from flame_bench.scoring.judges import PairwiseJudge, parse_pairwise_reply

LC_L2 = 1.0  # penalty on the length slope (summed log-loss); keeps separable data (wins iff longer) finite


@dataclass(frozen=True)
class WinRate:
    """Win rate (percent) of a model against a reference; ties count one half."""

    n: int  # judged items (identical-output ties included, unparsable replies excluded)
    wins: int
    losses: int
    ties: int
    win_rate: float
    standard_error: float  # nan when n < 2
    length_controlled_win_rate: float | None = None
    length_controlled_standard_error: float | None = None  # bootstrap
    n_unparsable: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def item_swap(item_id: str, seed: int) -> bool:
    """Whether the judge sees (model, reference) instead of (reference, model); stable per (seed, item)."""
    digest = hashlib.sha256(f"flame-bench-pairwise/{seed}/{item_id}".encode()).digest()
    return bool(digest[0] & 1)


def preference_for_model(pref: float, swapped: bool) -> float:
    """Turn a judge's preference in the order it saw into the model's score (1 win, 0.5 tie, 0 loss).

    Not swapped: output_2 is the model, score = pref - 1; swapped: output_1 is the model, score = 2 - pref.
    """
    if not 1.0 <= pref <= 2.0:  # also rejects nan
        raise ValueError(f"a pairwise preference must lie in [1, 2], got {pref!r}")
    return 2.0 - pref if swapped else pref - 1.0


def _as_array(values: Sequence[float] | np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=float).reshape(-1)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite numbers")
    return arr


def _sigmoid(z: np.ndarray | float) -> np.ndarray | float:
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(z)))


def _fit_intercept(x: np.ndarray, y: np.ndarray, l2: float) -> float:
    """Intercept of a logistic regression of soft targets y on [1, x], L2 penalty on the slope only.

    Newton's method with step halving on the penalized log-loss; y must not be all 0 or all 1.
    """
    design = np.column_stack([np.ones_like(x), x])
    penalty = np.array([0.0, l2])
    m = float(np.clip(y.mean(), 1e-12, 1 - 1e-12))
    beta = np.array([math.log(m / (1 - m)), 0.0])

    def objective(b: np.ndarray) -> float:
        z = design @ b
        return float(np.sum(np.logaddexp(0.0, z) - y * z) + 0.5 * l2 * b[1] ** 2)

    current = objective(beta)
    for _ in range(100):
        p = _sigmoid(design @ beta)
        grad = design.T @ (p - y) + penalty * beta
        hess = (design.T * (p * (1 - p))) @ design + np.diag(penalty)
        step = np.linalg.solve(hess + 1e-12 * np.eye(2), grad)
        t = 1.0
        while objective(beta - t * step) > current + 1e-12:
            t *= 0.5
            if t < 1e-8:  # no descent left: converged to numerical precision
                return float(beta[0])
        beta = beta - t * step
        current = objective(beta)
        if np.max(np.abs(t * step)) < 1e-10:
            break
    return float(beta[0])


def length_controlled_win_rate(scores: Sequence[float] | np.ndarray, model_lengths: Sequence[float] | np.ndarray,
                               reference_lengths: Sequence[float] | np.ndarray, l2: float = LC_L2) -> float:
    """Predicted win rate (percent) at zero length difference (see the module docstring)."""
    y = _as_array(scores, "scores")
    d = _as_array(model_lengths, "model_lengths") - _as_array(reference_lengths, "reference_lengths")
    if len(y) != len(d) or len(y) == 0:
        raise ValueError(f"length_controlled_win_rate needs as many lengths as scores ({len(d)} vs {len(y)}), > 0")
    if np.any((y < 0) | (y > 1)):
        raise ValueError("scores must lie in [0, 1]")
    if np.all(y == 1.0) or np.all(y == 0.0):
        return 100.0 * float(y.mean())  # degenerate: intercept unbounded, report the raw rate
    std = float(d.std())
    x = np.tanh(d / std) if std > 0 else np.zeros_like(d)
    return 100.0 * float(_sigmoid(_fit_intercept(x, y, l2)))


def _bootstrap_lc_se(y: np.ndarray, ml: np.ndarray, rl: np.ndarray, n_bootstrap: int, seed: int) -> float:
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(y), size=(n_bootstrap, len(y)))
    values = [length_controlled_win_rate(y[i], ml[i], rl[i]) for i in idx]
    return float(np.std(values, ddof=1))


def win_rate(scores: Sequence[float] | np.ndarray, model_lengths: Sequence[float] | np.ndarray | None = None,
             reference_lengths: Sequence[float] | np.ndarray | None = None, *, n_unparsable: int = 0,
             n_bootstrap: int = 200, seed: int = 0) -> WinRate:
    """Win rate, standard error and (when lengths are given) the LC win rate with a bootstrap standard error.

    `scores` are the model's scores in [0, 1] (1 win, 0.5 tie, 0 loss); `n_bootstrap=0` skips the LC bootstrap.
    """
    y = _as_array(scores, "scores")
    if len(y) == 0:
        raise FlameError("no judged items to compute a win rate from; check the inputs and the judge's replies")
    if np.any((y < 0) | (y > 1)):
        raise ValueError("scores must lie in [0, 1] (1 = model wins, 0.5 = tie, 0 = model loses)")
    n = len(y)
    se = 100.0 * float(y.std(ddof=1)) / math.sqrt(n) if n > 1 else float("nan")
    lc = lc_se = None
    if model_lengths is not None and reference_lengths is not None:
        ml, rl = _as_array(model_lengths, "model_lengths"), _as_array(reference_lengths, "reference_lengths")
        lc = length_controlled_win_rate(y, ml, rl)
        if n_bootstrap > 0 and n > 1:
            lc_se = _bootstrap_lc_se(y, ml, rl, n_bootstrap, seed)
    return WinRate(n=n, wins=int(np.sum(y > 0.5)), losses=int(np.sum(y < 0.5)), ties=int(np.sum(y == 0.5)),
                   win_rate=100.0 * float(y.mean()), standard_error=se, length_controlled_win_rate=lc,
                   length_controlled_standard_error=lc_se, n_unparsable=n_unparsable)


def score_pairs(records: Sequence[dict[str, Any]], model_outputs: Sequence[str], reference_outputs: Sequence[str],
                judge: PairwiseJudge, seed: int, max_unparsable_frac: float = 0.05,
                n_bootstrap: int = 200) -> tuple[list[dict[str, Any]], WinRate]:
    """Judge every (model, reference) pair in randomized order; return per-item rows and the `WinRate`.

    Rows: id, swapped, raw (the judge's reply; None when not asked), preference (in the order the judge saw),
    model_score (None when unparsable), judged (whether the judge was asked), model_length, reference_length.
    """
    if not len(records) == len(model_outputs) == len(reference_outputs):
        raise FlameError(f"score_pairs: {len(records)} records but {len(model_outputs)} model outputs and "
                         f"{len(reference_outputs)} reference outputs; they must be aligned one to one")
    rows: list[dict[str, Any]] = []
    asks: list[tuple[dict[str, Any], str, str]] = []  # (record, output_1, output_2) in the order the judge sees
    for record, model, reference in zip(records, model_outputs, reference_outputs, strict=True):
        item_id = str(record["id"])
        swapped = item_swap(item_id, seed)
        row: dict[str, Any] = {"id": item_id, "swapped": swapped, "model_length": len(model),
                               "reference_length": len(reference)}
        if model.strip() == reference.strip():  # AlpacaEval: identical outputs are a tie, the judge is not asked
            row.update(raw=None, preference=1.5, model_score=0.5, judged=False)
        else:
            asks.append((record, *((model, reference) if swapped else (reference, model))))
            row["judged"] = True
        rows.append(row)
    compare_many = getattr(judge, "compare_many", None)  # LLM judges batch; program judges go one by one
    replies = compare_many(asks) if compare_many else [judge.compare(*a) for a in asks]
    for row, raw in zip([r for r in rows if r["judged"]], replies, strict=True):
        pref = parse_pairwise_reply(raw)
        row.update(raw=raw, preference=pref,
                   model_score=None if pref is None else preference_for_model(pref, row["swapped"]))

    judged = [r for r in rows if r["judged"]]
    bad = [r for r in judged if r["model_score"] is None]
    if judged and len(bad) / len(judged) > max_unparsable_frac:
        raise FlameError(
            f"{len(bad)} of {len(judged)} judge replies were unparsable (threshold {max_unparsable_frac:.0%}); "
            f"judge {getattr(judge, 'name', type(judge).__name__)!r} replied e.g. {str(bad[0]['raw'])[:80]!r}; "
            "fix the judge's prompt or reply format (see parse_pairwise_reply) or raise max_unparsable_frac")
    valid = [r for r in rows if r["model_score"] is not None]
    result = win_rate([r["model_score"] for r in valid], [r["model_length"] for r in valid],
                      [r["reference_length"] for r in valid], n_unparsable=len(bad), n_bootstrap=n_bootstrap,
                      seed=seed)
    return rows, result
