"""Pairwise judges: the reply parser and the fact world's rubric judge (blind to factual truth by design)."""

from __future__ import annotations

import pytest

from flame_bench.core.errors import FlameError
from flame_bench.core.registry import JUDGES
from flame_bench.scoring.judges import PairwiseJudge, parse_pairwise_reply
from flame_bench.scoring.winrate import score_pairs
from flame_bench.world.generate import World, generate_world
from flame_bench.world.grammar import Grammar
from flame_bench.world.judge import WorldIFJudge
from flame_bench.world.presets import get_preset


@pytest.fixture(scope="module")
def world() -> World:
    return generate_world(get_preset("smoke"), 0)


@pytest.fixture(scope="module")
def judge(world: World) -> WorldIFJudge:
    return WorldIFJudge(Grammar(world.pools))


@pytest.mark.parametrize(("raw", "expected"), [
    ("Output (1): 4 points, detail 1. Output (2): 3 points, detail 1. Preferred: 1", 1.0),
    ("Output (1): 3 points. Output (2): 4 points. Preferred: 2", 2.0),
    ("Output (1): 4 points. Output (2): 4 points. Preferred: tie", 1.5),
    ("preferred: Output (b)", 2.0),
    ("Preferred: 1.5", 1.5),
    ("Preferred: 1.", 1.0),
    ("2", 2.0),
    ("Output (a)", 1.0),
    ("[[B]]", 2.0),
    ("tie", 1.5),
    ("Preferred: 1. On reflection, Preferred: 2", None),  # conflicting verdicts are never guessed
    ("Preferred: apple", None),
    ("Output (1) is better", None),
    ("12", None),
    ("", None),
    (None, None),
])
def test_parse_pairwise_reply(raw: str | None, expected: float | None) -> None:
    assert parse_pairwise_reply(raw) == expected


def test_world_judge_is_registered(judge: WorldIFJudge) -> None:
    assert JUDGES.get("world_if") is WorldIFJudge
    assert isinstance(judge, PairwiseJudge)
    assert judge.name == "world_if" and judge.version and judge.prompt_version


def test_world_judge_prefers_the_task_done(world: World, judge: WorldIFJudge) -> None:
    for r in world.eval_alpaca:
        assert parse_pairwise_reply(judge.compare(r, r["response"], "I like turtles.")) == 1.0
        assert parse_pairwise_reply(judge.compare(r, "I like turtles.", r["response"])) == 2.0
        assert parse_pairwise_reply(judge.compare(r, r["response"], r["response"])) == 1.5


def test_world_judge_reply_format(world: World, judge: WorldIFJudge) -> None:
    r = next(r for r in world.eval_alpaca if r["kind"] == "sort")
    assert judge.compare(r, r["response"], "I like turtles.") == (
        "Output (1): 5 points, detail 1. Output (2): 0 points, detail 1. Preferred: 1")


def test_equal_scores_are_broken_by_detail(world: World, judge: WorldIFJudge) -> None:
    bio = next(r for r in world.seed_instructions if r["kind"] == "bio")
    person = next(p for p in world.people if p["name"] == bio["people"][0])
    name, a = person["name"], person["attributes"]
    five = (f"{name} was born in {a['birth_year']}. {name} comes from {a['birthplace']}. {name} works as a "
            f"{a['occupation']}. {name} studied at {a['university']}. {name} won the {a['award']}.")
    assert parse_pairwise_reply(judge.compare(bio, five, bio["response"])) == 2.0  # both 5 points; 7 facts > 5
    poem = {"id": "x", "instruction": "Write a short poem about the sea.", "kind": "poem", "spec": {"topic": "sea"},
            "people": [], "fact_based": False}
    short = "The sea is calm. The sea is wild. I love the sea."
    assert parse_pairwise_reply(judge.compare(poem, short + " The sea is blue.", short)) == 1.0
    assert parse_pairwise_reply(judge.compare(poem, short, short.replace("wild", "cold"))) == 1.5


def test_world_judge_is_blind_to_truth(world: World, judge: WorldIFJudge) -> None:
    """A bio with every value wrong ties with the true one: factuality is not the judge's job."""
    bio = next(r for r in world.seed_instructions if r["kind"] == "bio")
    person = next(p for p in world.people if p["name"] == bio["people"][0])
    wrong = bio["response"]
    for attr, value in person["attributes"].items():
        wrong = wrong.replace(value, next(v for v in world.pools[attr] if v != value and v not in wrong))
    assert wrong != bio["response"]
    assert parse_pairwise_reply(judge.compare(bio, bio["response"], wrong)) == 1.5


class _BrokenJudge:
    name = "broken"
    version = "0"
    prompt_version = "0"

    def compare(self, record: dict, output_1: str, output_2: str) -> str:
        return "As an AI model I cannot decide."


def test_broken_judge_trips_the_unparsable_threshold(world: World) -> None:
    records = world.eval_alpaca
    with pytest.raises(FlameError, match=r"30 of 30 judge replies were unparsable \(threshold 5%\)"):
        score_pairs(records, ["I like turtles."] * len(records), [r["response"] for r in records], _BrokenJudge(),
                    seed=0)
