"""Pairwise judges for the Alpaca-style win rate (paper §6.1: head-to-head against a baseline's outputs).

A judge sees one instruction record and two outputs and returns its raw reply as a string, exactly as an LLM judge
would; `parse_pairwise_reply` is the single place that turns any judge's reply into an AlpacaEval preference
(1.0: output_1 preferred, 2.0: output_2, 1.5: tie, None: unparsable). Order randomization, flipping back and the
statistics live in `flame_bench.scoring.winrate`, so a judge never knows which output is the model's.

The fact world's judge, `world_if`, is BLIND TO FACTUAL TRUTH BY DESIGN: it scores both outputs with the
instruction-following rubric `if_rubric` (task completion and detail, never the knowledge source), like
AlpacaEval's GPT-4 judge, which does not check facts either. A detailed hallucinated biography therefore beats an
honest short one; measuring factuality is FActScore's job. This is what makes the paper's helpfulness-vs-factuality
trade-off visible in the fact world.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from flame_bench.registry import JUDGES
from flame_bench.scoring.rubric import RUBRIC_VERSION, RubricScore, if_rubric
from flame_bench.world.grammar import Grammar


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


def parse_pairwise_reply(raw: str | None) -> float | None:
    """A judge reply -> 1.0 (output_1 preferred), 2.0 (output_2), 1.5 (tie) or None (unparsable).

    Accepted: one or more "Preferred: <1|2|a|b|tie>" lines that all agree, or a reply that is nothing but a verdict
    ("2", "Output (a)", "[[B]]", "tie"). Conflicting verdicts or anything else are unparsable (never guessed).
    """
    if not raw or not isinstance(raw, str):
        return None
    found = {_VERDICT[m.group(1).lower()] for m in _PREFERRED.finditer(raw)}
    if found:
        return found.pop() if len(found) == 1 else None
    m = _BARE.match(raw.strip())
    return _VERDICT[m.group(1).lower()] if m else None


def format_reply(score_1: RubricScore, score_2: RubricScore, preferred: float) -> str:
    verdict = {1.0: "1", 2.0: "2", 1.5: "tie"}[preferred]
    return (f"Output (1): {score_1.score} points, detail {score_1.detail}. "
            f"Output (2): {score_2.score} points, detail {score_2.detail}. Preferred: {verdict}")


def rubric_preference(score_1: RubricScore, score_2: RubricScore) -> float:
    """Higher rubric score wins; equal scores go to more detail; equal detail is a tie."""
    key_1, key_2 = (score_1.score, score_1.detail), (score_2.score, score_2.detail)
    return 1.0 if key_1 > key_2 else 2.0 if key_2 > key_1 else 1.5


@JUDGES.register("world_if")
@dataclass
class WorldIFJudge:
    """The fact world's judge: `if_rubric` on both outputs, ties broken by detail (blind to factual truth).

    Detail is the number of distinct facts about the asked people (fact-based) or of sentences (skills).
    """

    grammar: Grammar = field(repr=False)
    name: str = "world_if"
    version: str = "world-if-v1"
    prompt_version: str = RUBRIC_VERSION

    def compare(self, record: dict[str, Any], output_1: str, output_2: str) -> str:
        s1, s2 = if_rubric(record, output_1, self.grammar), if_rubric(record, output_2, self.grammar)
        return format_reply(s1, s2, rubric_preference(s1, s2))
