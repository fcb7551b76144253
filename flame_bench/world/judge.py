"""The fact world's pairwise judge, `world_if`: BLIND TO FACTUAL TRUTH BY DESIGN.

It scores both outputs with the instruction-following rubric `if_rubric` (task completion and detail, never the
knowledge source), like AlpacaEval's GPT-4 judge, which does not check facts either. A detailed hallucinated
biography therefore beats an honest short one; measuring factuality is FActScore's job. This is what makes the
paper's helpfulness-vs-factuality trade-off visible in the fact world.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flame_bench.core.registry import JUDGES
from flame_bench.world.grammar import Grammar
from flame_bench.world.rubric import RUBRIC_VERSION, RubricScore, if_rubric, partial_credit

VERDICT = {1.0: "1", 2.0: "2", 1.5: "tie"}  # a preference as the reply states it


def preferred(key_1: tuple, key_2: tuple) -> float:
    """1.0 when the first output's key is higher, 2.0 when the second's is, 1.5 (a tie) when they are equal."""
    return 1.0 if key_1 > key_2 else 2.0 if key_2 > key_1 else 1.5


def format_reply(score_1: RubricScore, score_2: RubricScore, preference: float) -> str:
    return (f"Output (1): {score_1.score} points, detail {score_1.detail}. "
            f"Output (2): {score_2.score} points, detail {score_2.detail}. Preferred: {VERDICT[preference]}")


def rubric_preference(score_1: RubricScore, score_2: RubricScore) -> float:
    """Higher rubric score wins; equal scores go to more detail; equal detail is a tie."""
    return preferred((score_1.score, score_1.detail), (score_2.score, score_2.detail))


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


GRADED_VERSION = "world-if-graded-v2"


@JUDGES.register("world_if_graded")
@dataclass
class WorldIFGradedJudge:
    """`world_if` on a finer scale (still blind to truth): the rubric's 0..5 first, then partial credit (coverage of
    what the instruction gives and fluency, `rubric.partial_credit`, compared at 0.001), then detail. Two outputs tie
    only when all three agree."""

    grammar: Grammar = field(repr=False)
    name: str = "world_if_graded"
    version: str = GRADED_VERSION
    prompt_version: str = f"{RUBRIC_VERSION}+partial-credit-v2"

    def compare(self, record: dict[str, Any], output_1: str, output_2: str) -> str:
        s1, s2 = if_rubric(record, output_1, self.grammar), if_rubric(record, output_2, self.grammar)
        c1, c2 = round(partial_credit(record, output_1), 3), round(partial_credit(record, output_2), 3)
        verdict = VERDICT[preferred((s1.score, c1, s1.detail), (s2.score, c2, s2.detail))]
        return (f"Output (1): {s1.score} points, coverage {c1:.3f}, detail {s1.detail}. Output (2): {s2.score} "
                f"points, coverage {c2:.3f}, detail {s2.detail}. Preferred: {verdict}")
