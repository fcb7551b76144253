"""How good is a pairwise judge? Measured on human preferences, never assumed.

BIG-bench's HHH-alignment pairs (221: an instruction, the response people judged more helpful, honest and harmless,
and a worse one; `flame-bench data fetch hhh`) are shown to each judge in both orders. Reported per judge: agreement
with the human choice over all 2 x n judgements (a tie counts half), the share of pairs whose two verdicts agree with
each other once the order is undone (consistency), and how often it picks whichever output came first (position
bias; 50% is unbiased). Two world-free references frame the numbers: `always_first` and `longer_wins`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from flame_bench.core.errors import FlameError
from flame_bench.core.paths import data_dir

Verdicts = Callable[[Sequence[tuple[str, str, str]]], list[str]]  # (instruction, a, b) -> "1" | "2" | "tie"


def load_pairs(limit: int | None = None) -> list[dict[str, Any]]:
    from flame_bench.real.fetch import HHH_FILE

    path = data_dir() / "hhh" / HHH_FILE
    if not path.is_file():
        raise FlameError("HHH-alignment is not fetched; run `flame-bench data fetch hhh`")
    with path.open(encoding="utf-8") as f:
        pairs = [json.loads(line) for line in f]
    return pairs[:limit]


def always_first(items: Sequence[tuple[str, str, str]]) -> list[str]:
    return ["1" for _ in items]


def longer_wins(items: Sequence[tuple[str, str, str]]) -> list[str]:
    return ["tie" if len(a) == len(b) else "1" if len(a) > len(b) else "2" for _, a, b in items]


def llm_verdicts(judge: Any) -> Verdicts:
    """Adapt a pairwise judge (`compare_many` replies ending in "Preferred: 1|2|tie") to verdicts."""

    def run(items: Sequence[tuple[str, str, str]]) -> list[str]:
        replies = judge.compare_many([({"instruction": i}, a, b) for i, a, b in items])
        return [r.rsplit("Preferred:", 1)[-1].strip() if "Preferred:" in r else "tie" for r in replies]

    return run


def measure(pairs: Sequence[dict[str, Any]], judges: dict[str, Verdicts]) -> dict[str, dict[str, Any]]:
    items = [(p["instruction"], p["chosen"], p["rejected"]) for p in pairs]  # chosen shown first
    swapped = [(i, b, a) for i, a, b in items]  # chosen shown second
    out = {}
    for name, fn in judges.items():
        first, second = fn(items), fn(swapped)
        score = {"1": 1.0, "tie": 0.5, "2": 0.0}
        agree = [score[v] for v in first] + [1.0 - score[v] for v in second]
        consistent = sum((a == "1" and b == "2") or (a == "2" and b == "1") for a, b in zip(first, second,
                                                                                              strict=True))
        picks_first = sum(v == "1" for v in first + second)
        by_subset: dict[str, list[float]] = {}
        for p, a, b in zip(pairs, first, second, strict=True):
            by_subset.setdefault(p["subset"], []).extend([score[a], 1.0 - score[b]])
        out[name] = {"agreement": sum(agree) / len(agree), "consistent": consistent / len(pairs),
                     "first_position": picks_first / (2 * len(pairs)), "pairs": len(pairs),
                     "by_subset": {s: sum(v) / len(v) for s, v in sorted(by_subset.items())}}
    return out


def run_checks(pairs: list, llm_specs: list[str]) -> dict[str, dict[str, Any]]:
    """`flame-bench judge-check`: the reference judges and each LLM of `llm_specs` ('none' names no LLM) as an
    AlpacaEval-style pairwise judge, measured on `pairs` in both orders."""
    from flame_bench.engines.llm.resolve import evaluator_backend
    from flame_bench.real.components import LLMPairwiseJudge

    judges = {"always_first": always_first, "longer_wins": longer_wins}
    for spec in [s for s in llm_specs or [None] if s != "none"]:
        backend = evaluator_backend(spec, quiet=False)
        judges[f"{backend.identity.get('model', spec)} (llm_pairwise)"] = llm_verdicts(LLMPairwiseJudge(backend))
    return measure(pairs, judges)
