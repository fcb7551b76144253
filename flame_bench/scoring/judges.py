"""Pairwise judges for the Alpaca-style win rate (paper §6.1: head-to-head against a baseline's outputs).

A judge sees one instruction record and two outputs and returns its raw reply as a string, exactly as an LLM judge
would; `parse_pairwise_reply` is the single place that turns any judge's reply into an AlpacaEval preference
(1.0: output_1 preferred, 2.0: output_2, 1.5: tie, None: unparsable). Order randomization, flipping back and the
statistics live in `flame_bench.scoring.winrate`, so a judge never knows which output is the model's.

Judges: the fact world's `world_if` (`flame_bench.world.judge`, blind to truth by design) and the real path's
`llm_pairwise` (`flame_bench.real.components`).
"""

from __future__ import annotations

import re
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class PairwiseJudge(Protocol):
    """Compares two outputs for one instruction and returns the raw reply (parsed by `parse_pairwise_reply`).

    `name`, `version` and `prompt_version` go into cache keys and run records: change `version` when the judge's
    behaviour changes and `prompt_version` when its prompt (or, for a program, its rubric) changes.
    """

    name: str
    version: str
    prompt_version: str

    def compare(self, record: dict[str, Any], output_1: str, output_2: str) -> str: ...


# "Preferred: 1", "Preferred: Output (2)", "preferred: tie"; several such lines must agree.
_PREFERRED = re.compile(r"preferred\s*:\s*(?:output\s*)?[\(\[]?\s*(1\.5|1|2|a|b|tie|draw)\b", re.IGNORECASE)
# A bare verdict: "1", "Output (b)", "[[A]]", "tie", "1.5".
_BARE = re.compile(r"^\W*(?:output\s*)?[\(\[]*\s*(1\.5|1|2|a|b|tie|draw)\s*[\)\]]*\W*$", re.IGNORECASE)
_VERDICT = {"1": 1.0, "a": 1.0, "2": 2.0, "b": 2.0, "1.5": 1.5, "tie": 1.5, "draw": 1.5}
# AlpacaEval's continuous preference, closing a reply: "... -> Preference: 1.273418" (in [1, 2])
_CONTINUOUS = re.compile(r"\bpreference\s*:\s*([0-9]*\.?[0-9]+)\s*$", re.IGNORECASE)


def parse_pairwise_reply(raw: str | None) -> float | None:
    """A judge reply -> 1.0 (output_1 preferred), 2.0 (output_2), 1.5 (tie) or None (unparsable).

    Accepted: one or more "Preferred: <1|2|a|b|tie>" lines that all agree, or a reply that is nothing but a verdict
    ("2", "Output (a)", "[[B]]", "tie"), or one ending in AlpacaEval's continuous "Preference: <p in [1, 2]>".
    Conflicting verdicts or anything else are unparsable (never guessed).
    """
    if not raw or not isinstance(raw, str):
        return None
    if m := _CONTINUOUS.search(raw.strip()):
        value = float(m.group(1))
        return value if 1.0 <= value <= 2.0 else None
    found = {_VERDICT[m.group(1).lower()] for m in _PREFERRED.finditer(raw)}
    if found:
        return found.pop() if len(found) == 1 else None
    m = _BARE.match(raw.strip())
    return _VERDICT[m.group(1).lower()] if m else None
