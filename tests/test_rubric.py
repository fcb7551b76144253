"""The instruction-following rubric on the smoke world's generated records (no model, no world build on disk)."""

from __future__ import annotations

import pytest

from flame_bench.world.generate import World, generate_world
from flame_bench.world.grammar import Grammar
from flame_bench.world.presets import get_preset
from flame_bench.world.rubric import FACT_KINDS, SKILL_KINDS, if_rubric


@pytest.fixture(scope="module")
def world() -> World:
    return generate_world(get_preset("smoke"), 0)


@pytest.fixture(scope="module")
def grammar(world: World) -> Grammar:
    return Grammar(world.pools)


@pytest.fixture(scope="module")
def records(world: World) -> list[dict]:
    return world.seed_instructions + world.eval_alpaca


def _first(records: list[dict], kind: str) -> dict:
    return next(r for r in records if r["kind"] == kind)


def _score(record: dict, response: str, grammar: Grammar) -> int:
    return if_rubric(record, response, grammar).score


def test_human_responses_score_four_or_five_on_every_kind(records: list[dict], grammar: Grammar) -> None:
    seen: dict[str, list[int]] = {}
    for r in records:
        seen.setdefault(r["kind"], []).append(_score(r, r["response"], grammar))
    assert set(seen) == set(FACT_KINDS + SKILL_KINDS)
    for kind, scores in seen.items():
        assert min(scores) >= 4, (kind, scores)
    # bios and every skill answer are complete; attribute/comparison answers add no further fact (4 points)
    for kind in ("bio", *SKILL_KINDS):
        assert set(seen[kind]) == {5}, kind
    assert set(seen["attribute"]) == set(seen["comparison"]) == {4}


def test_constant_and_empty_answers_score_low(records: list[dict], grammar: Grammar) -> None:
    for r in records:
        assert _score(r, "I like turtles.", grammar) <= 1, r["instruction"]
        s = if_rubric(r, "", grammar)
        assert s.score == 0 and s.points == ()
        assert _score(r, "  \n ", grammar) == 0


def test_points_have_reasons(records: list[dict], grammar: Grammar) -> None:
    s = if_rubric(_first(records, "bio"), _first(records, "bio")["response"], grammar)
    assert len(s.points) == s.score == 5 and s.detail == 7
    assert [p.split(":")[0] for p in s.points] == ["relevant", "substantial", "answers", "clear", "expert"]


def test_never_reads_the_human_response(records: list[dict], grammar: Grammar) -> None:
    for r in records:
        blinded = {k: v for k, v in r.items() if k != "response"}
        assert if_rubric(blinded, r["response"], grammar) == if_rubric(r, r["response"], grammar)


def test_blind_to_factual_truth(world: World, records: list[dict], grammar: Grammar) -> None:
    """Wrong attribute values (and wrong birth years in a comparison) score exactly like the truth."""
    by_name = {p["name"]: p for p in world.people}
    checked = 0
    for r in records:
        if r["kind"] not in ("bio", "attribute"):
            continue
        person = by_name[r["people"][0]]
        wrong = r["response"]
        for attr, value in person["attributes"].items():
            other = next(v for v in world.pools[attr] if v != value and v not in wrong)
            wrong = wrong.replace(value, other)
        assert wrong != r["response"]
        assert if_rubric(r, wrong, grammar) == if_rubric(r, r["response"], grammar)
        checked += 1
    assert checked >= 5
    comp = _first(records, "comparison")
    p, q = comp["people"]
    true_story = if_rubric(comp, comp["response"], grammar).score
    invented = f"{p} was born in 1901. {q} was born in 1999. So {p} was born earlier than {q}."
    assert _score(comp, invented, grammar) == true_story == 4


def test_fact_based_points(records: list[dict], world: World, grammar: Grammar) -> None:
    bio = _first(records, "bio")
    name = bio["people"][0]
    award = world.pools["award"][0]
    assert _score(bio, f"I do not know anything about {name}.", grammar) == 1  # relevant, answers nothing
    assert _score(bio, f"{name} was born in 1950. {name} works as a poet.", grammar) == 3  # 2 attributes
    three = f"{name} was born in 1950. She works as a poet. {name} won the {award}."
    assert _score(bio, three, grammar) == 4  # 3 attributes: answers, not yet expert
    assert _score(bio, three + " " + three.split(". ")[1] + ".", grammar) == 3  # a repeated sentence
    assert _score(bio, three + f" {name} was born in 1960.", grammar) == 3  # self-contradiction
    assert _score(bio, three + " Blah blah.", grammar) == 3  # a sentence the grammar cannot parse
    other = next(p["name"] for p in world.people if p["name"] != name)
    assert _score(bio, f"{other} was born in 1950. {other} works as a poet. {other} won the {award}.", grammar) == 0

    attr = _first(records, "attribute")
    extra = attr["response"] + f" {attr['people'][0]} won the {award}."
    if attr["spec"]["attribute"] == "award":
        extra = attr["response"] + f" {attr['people'][0]} was born in 1950."
    assert _score(attr, extra, grammar) == 5

    comp = _first(records, "comparison")
    p, q = comp["people"]
    assert _score(comp, f"{p} was born in 1950. {q} was born in 1960. So {q} was born earlier than {p}.", grammar) == 3
    assert _score(comp, f"So {p} was born earlier than {q}.", grammar) == 3
    assert _score(comp, f"{p} was born in 1950. {q} was born in 1960. So {p} was born earlier than {q}. "
                        f"{q} works as a poet.", grammar) == 5


def _skill(kind: str, spec: dict, instruction: str = "") -> dict:
    return {"id": "t", "instruction": instruction, "kind": kind, "spec": spec, "people": [], "fact_based": False}


@pytest.mark.parametrize(("record", "response", "expected"), [
    (_skill("sort", {"items": ["9", "2", "5"]}), "The sorted numbers are 2, 5, 9.", 5),
    (_skill("sort", {"items": ["9", "2", "5"]}), "2, 5, 9.", 5),
    (_skill("sort", {"items": ["9", "2", "5"]}), "Sort these: 9 2 5. The sorted numbers are 2, 5, 9.", 4),  # extra
    (_skill("sort", {"items": ["9", "2", "5"]}), "The sorted numbers are 2, 9, 5.", 3),
    (_skill("sort", {"items": ["9", "2", "5"]}), "The sorted numbers are 2, 5.", 3),
    (_skill("sort", {"items": ["9", "2", "5"]}), "The sorted numbers are 2, 5, 9, 11.", 3),
    (_skill("reverse", {"items": ["cat", "red", "saw"]}), "The reversed order is: saw red cat.", 5),
    (_skill("reverse", {"items": ["cat", "red", "saw"]}), "The reversed order is saw, red, cat.", 5),
    (_skill("reverse", {"items": ["cat", "red", "saw"]}), "The reversed order is: cat red saw.", 3),
    (_skill("count", {"items": ["cat", "red", "saw", "owl"]}), "There are 4 words in the list.", 5),
    (_skill("count", {"items": ["cat", "red", "saw", "owl"]}), "There are four words in the list.", 5),
    (_skill("count", {"items": ["cat", "red", "saw", "owl"]}), "There are 5 words in the list.", 3),
    (_skill("count", {"items": ["cat", "red", "saw", "owl"]}), "There are 3 or 4 words.", 3),
    (_skill("join", {"items": ["cat", "red", "saw"]}), "cat, red, saw.", 5),
    (_skill("join", {"items": ["cat", "red", "saw"]}), "cat red saw.", 1),
    (_skill("join", {"items": ["cat", "red", "saw"]}), "cat, saw, red.", 3),
    (_skill("list", {"category": "colors", "n": 3}), "Here are 3 colors: red, blue, green.", 5),
    (_skill("list", {"category": "colors", "n": 3}), "The colors are red, blue and green.", 5),
    (_skill("list", {"category": "colors", "n": 3}), "Here are 3 colors: red, blue.", 3),
    (_skill("list", {"category": "colors", "n": 3}), "Here are 3 colors: red, blue, apple.", 3),
    (_skill("list", {"category": "colors", "n": 3}), "Here are 3 colors: red, red, blue.", 2),  # wrong and repeated
    (_skill("poem", {"topic": "sea"}), "The sea is calm and wild. The sea is cold at night. I love the sea.", 5),
    (_skill("poem", {"topic": "sea"}), "The sea is calm.", 1),
    (_skill("poem", {"topic": "sea"}), "The sea is calm. The sea is calm. The sea is calm.", 3),
    (_skill("story", {"animal": "fox", "place": "moon"}),
     "Once there was a fox. One day the fox went to the moon. It was a cold day. The fox was happy.", 5),
    (_skill("story", {"animal": "fox", "place": "moon"}), "Once there was a fox. The fox was happy.", 3),
])
def test_skill_points(record: dict, response: str, expected: int, grammar: Grammar) -> None:
    assert _score(record, response, grammar) == expected, if_rubric(record, response, grammar)


def test_detail_counts_facts_or_sentences(records: list[dict], grammar: Grammar) -> None:
    poem = _skill("poem", {"topic": "sea"})
    assert if_rubric(poem, "The sea is calm. I love the sea.", grammar).detail == 2
    comp = _first(records, "comparison")
    assert if_rubric(comp, comp["response"], grammar).detail == 3


def test_unknown_kind_is_an_error(grammar: Grammar) -> None:
    with pytest.raises(ValueError, match="unknown instruction kind"):
        if_rubric(_skill("haiku", {}), "Hello.", grammar)


# -- the sampled RM_IF and the graded pairwise judge ---------------------------------------------------------------
def _degraded(r: dict) -> list[str]:
    """Responses of several qualities for one record: the human one, truncated, repeated words, off topic."""
    human = r["response"]
    words = human.split()
    return [human, " ".join(words[: max(1, len(words) // 2)]), " ".join([words[0]] * 8) + ".", "I like turtles."]


def test_sampled_rubric_is_exact_at_zero_noise_and_reproducible(records: list[dict], grammar: Grammar) -> None:
    from flame_bench.world.rubric import sampled_rubric_score

    varied = 0
    for r in records[:40]:
        for resp in _degraded(r):
            exact = _score(r, resp, grammar)
            assert sampled_rubric_score(r, resp, grammar, 0.0, 7) == exact
            draws = [sampled_rubric_score(r, resp, grammar, 0.25, k) for k in range(6)]
            assert draws == [sampled_rubric_score(r, resp, grammar, 0.25, k) for k in range(6)]  # seeded
            assert all(0 <= d <= 5 for d in draws)
            varied += len(set(draws)) > 1
        assert sampled_rubric_score(r, "", grammar, 0.3, 0) == 0
    assert varied > 40  # a noisy judge does not read every response the same way every time


def test_sampled_rm_if_averages_three_judgements(tmp_path, records: list[dict], grammar: Grammar) -> None:
    from types import SimpleNamespace

    from flame_bench.core.errors import FlameError
    from flame_bench.world.source import RubricReward

    world = SimpleNamespace(grammar=grammar)
    exact, noisy = RubricReward(world), RubricReward(world, noise=0.24)
    assert exact.identity == {"name": "world_if_rubric", "version": "world-if-rubric-v1"}  # stage keys unchanged
    assert noisy.identity["noise"] == 0.24 and noisy.identity["samples"] == 3
    recs = [r for r in records[:30] for _ in range(4)]
    resps = [x for r in records[:30] for x in _degraded(r)]
    e, n = exact.score_many(recs, resps), noisy.score_many(recs, resps)
    assert e == [float(_score(r, x, grammar)) for r, x in zip(recs, resps, strict=True)]
    assert all(abs(3 * v - round(3 * v)) < 1e-9 for v in n)  # steps of 1/3
    assert sum(abs(a - b) for a, b in zip(e, n, strict=True)) > 0
    # averaged judgements keep the order of clearly different responses most of the time
    assert sum(n[i] > n[i + 3] for i in range(0, len(n), 4)) >= 0.7 * len(n) / 4
    with pytest.raises(FlameError, match="noise"):
        RubricReward(world, noise=0.6)


def test_graded_judge_ties_less_and_stays_blind(records: list[dict], grammar: Grammar) -> None:
    from flame_bench.scoring.judges import parse_pairwise_reply
    from flame_bench.world.judge import WorldIFGradedJudge, WorldIFJudge

    coarse, graded = WorldIFJudge(grammar), WorldIFGradedJudge(grammar)
    ties = {"coarse": 0, "graded": 0}
    skills = [r for r in records if r["kind"] in ("sort", "reverse", "join", "count")]
    for r in skills:  # the small models' failure mode: the right format, one given item over and over
        items = [str(x) for x in r["spec"]["items"]]
        a = "The answer is " + ", ".join([items[0]] * len(items)) + "."
        b = "The answer is " + ", ".join(items[:2] + [items[0]] * (len(items) - 2)) + "."
        for name, judge in (("coarse", coarse), ("graded", graded)):
            ties[name] += parse_pairwise_reply(judge.compare(r, a, b)) == 1.5
        if parse_pairwise_reply(coarse.compare(r, a, b)) == 1.5:
            assert parse_pairwise_reply(graded.compare(r, a, b)) == 2.0  # b uses more of what was given
        blinded = {k: v for k, v in r.items() if k != "response"}
        assert graded.compare(blinded, a, b) == graded.compare(r, a, b)  # never reads the human response
    assert ties["coarse"] > len(skills) / 2 and ties["graded"] == 0, ties
    for r in records:  # where the coarse judge decides, the graded one agrees (it only refines ties)
        worse = " ".join(r["response"].split()[:3])
        c = parse_pairwise_reply(coarse.compare(r, r["response"], worse))
        assert c == 1.5 or c == parse_pairwise_reply(graded.compare(r, r["response"], worse))


def test_noise_calibration_matches_a_target_accuracy(records: list[dict], grammar: Grammar) -> None:
    from types import SimpleNamespace

    from flame_bench.world.judge_noise import calibrate

    samples = [{"id": r["id"], "output": x, "reference_output": r["response"]} for r in records for x in _degraded(r)]
    run = SimpleNamespace(samples=lambda: samples, path="runs/alpaca_winrate__x__0")
    result = calibrate([run], {r["id"]: r for r in records}, grammar, target=0.8, grid=(0.0, 0.1, 0.2, 0.3, 0.4))
    curve = result["curve"]
    assert curve[0.0] == 1.0 and curve[0.4] < curve[0.2] < curve[0.0]
    assert result["noise"] in (0.1, 0.2, 0.3) and abs(result["accuracy"] - 0.8) <= min(abs(v - 0.8) for v in
                                                                                        curve.values()) + 1e-12
