"""FActScore pipeline on the smoke world: gold bios score 1, swapped facts 0, abstentions are excluded."""

from __future__ import annotations

from pathlib import Path

import pytest

from flame_bench.scoring.factscore import FactScorer, aggregate
from flame_bench.world.factscore import world_factscorer
from flame_bench.world.store import WorldDir


@pytest.fixture(scope="module")
def world(smoke_world: Path) -> WorldDir:
    return WorldDir.open(smoke_world)


@pytest.fixture(scope="module")
def scorer(world: WorldDir) -> FactScorer:
    return world_factscorer(world)


def _page(world: WorldDir, person: dict) -> str:
    return next(k["text"] for k in world.knowledge if k["title"] == person["name"])


def test_gold_biography_scores_one(world: WorldDir, scorer: FactScorer) -> None:
    for person in world.people[:10]:
        s = scorer.score(_page(world, person), [person["name"]])
        assert s.precision() == 1.0 and s.n == 7 and not s.abstained


def test_swapped_attribute_values_score_zero(world: WorldDir, scorer: FactScorer) -> None:
    a = world.people[0]
    text = _page(world, a)
    for attr, value in a["attributes"].items():
        other = next(p["attributes"][attr] for p in world.people if p["attributes"][attr] != value)
        text = text.replace(value, other)
    s = scorer.score(text, [a["name"]])
    assert s.n == 7 and s.precision() == 0.0
    assert s.to_dict()["n_supported"] == 0


def test_gibberish_and_invented_relations_are_never_free(world: WorldDir, scorer: FactScorer) -> None:
    person = world.people[0]
    s = scorer.score(f"{person['name']} likes purple clouds. Zork blip.", [person["name"]])
    assert s.n == 2 and s.precision() == 0.0
    other = world.people[1]
    # a true fact about somebody else is not a fact about the topic
    s = scorer.score(f"{other['name']} was born in {other['attributes']['birth_year']}.", [person["name"]])
    assert s.precision() == 0.0


def test_abstentions_and_empty_outputs_are_excluded(world: WorldDir, scorer: FactScorer) -> None:
    person = world.people[0]
    gold = scorer.score(_page(world, person), [person["name"]])
    empty = scorer.score("", [person["name"]])
    abstain = scorer.score(f"I do not know anything about {person['name']}.", [person["name"]])
    assert empty.abstained and abstain.abstained
    metrics, _ = aggregate([gold, empty, abstain])
    assert metrics["factscore"] == 1.0
    assert metrics["respond_ratio"] == pytest.approx(1 / 3)
    assert metrics["facts_per_response"] == 7


def test_length_penalty_and_counts(world: WorldDir, scorer: FactScorer) -> None:
    person = world.people[0]
    one_fact = f"{person['name']} was born in {person['attributes']['birth_year']}."
    s = scorer.score(one_fact, [person["name"]])
    assert s.precision() == 1.0
    assert s.precision(10) == pytest.approx(2.718281828 ** (1 - 10))
    metrics, _ = aggregate([s, scorer.score(_page(world, person).replace(person["attributes"]["award"], "Zork"),
                                            [person["name"]])])
    assert metrics["correct_per_response"] == pytest.approx((1 + 6) / 2)
    assert metrics["erroneous_per_response"] == pytest.approx((0 + 1) / 2)


def test_pronouns_follow_the_last_named_person(world: WorldDir, scorer: FactScorer) -> None:
    a, b = world.people[0], world.people[1]
    pron = "She" if b["gender"] == "f" else "He"
    text = (f"{b['name']} was born in {b['attributes']['birth_year']}. "
            f"{pron} works as a {b['attributes']['occupation']}.")
    s = scorer.score(text, [b["name"], a["name"]], query=f"Who was born earlier, {b['name']} or {a['name']}?")
    assert s.precision() == 1.0


# -- RM_fact's lenient checker (the fact world's model of FLAME's LLM fact checker) -----------------------------
def _swapped(world: WorldDir, person: dict) -> str:
    text = _page(world, person)
    for attr, value in person["attributes"].items():
        other = next(p["attributes"][attr] for p in world.people if p["attributes"][attr] != value)
        text = text.replace(value, other)
    return text


def test_lenient_checker_accepts_some_unsupported_facts_and_never_rejects_a_supported_one(world: WorldDir) -> None:
    from flame_bench.scoring.factscore import FactScoreReward
    from flame_bench.world.factscore import NoisyWorldVerifier

    exact, lenient = world_factscorer(world, k=10), world_factscorer(world, k=10, verifier_noise=0.245)
    assert isinstance(lenient.verifier, NoisyWorldVerifier)
    assert "accept0.245" in lenient.identity["verifier"]
    assert exact.identity["verifier"] == "world_passages@world-passages-v1"  # exact stage keys unchanged
    people = world.people[:30]
    gold = [_page(world, p) for p in people]
    wrong = [_swapped(world, p) for p in people]
    topics = [[p["name"]] for p in people]
    assert [s.precision() for s in lenient.score_many(gold, topics)] == [1.0] * len(people)
    accepted = [s.supported for s in lenient.score_many(wrong, topics)]
    assert [s.supported for s in exact.score_many(wrong, topics)] == [0] * len(people)
    share = sum(accepted) / (7 * len(people))
    assert 0.12 < share < 0.38, share  # 0.245 of 210 unsupported facts, give or take sampling
    assert accepted == [s.supported for s in lenient.score_many(wrong, topics)]  # the same facts, the same verdicts
    # RM_fact on the lenient checker: another identity (so other stage keys), exact evaluation untouched
    records = [{"instruction": f"Tell me a bio of {p['name']}.", "topics": [p["name"]]} for p in people]
    strict, noisy = FactScoreReward(exact), FactScoreReward(lenient)
    assert strict.identity != noisy.identity
    assert strict.score_many(records, wrong) == [0.0] * len(people)
    assert max(noisy.score_many(records, wrong)) > 0


def test_fact_noise_report_reads_the_published_rates_and_checks_saved_outputs() -> None:
    from types import SimpleNamespace

    from flame_bench.world.judge_noise import fact_noise_report, kendall_tau_b

    assert kendall_tau_b([1, 2, 3, 4], [1, 2, 3, 4]) == 1.0 and kendall_tau_b([1, 2, 3], [3, 2, 1]) == -1.0
    assert kendall_tau_b([1, 1, 2, 2], [1, 2, 1, 2]) == 0.0
    facts = [[{"text": f"fact {i} {j}", "supported": j < i % 5, "evidence": ["p"]} for j in range(5)]
             for i in range(100)]
    run = SimpleNamespace(path="runs/factscore_bio__x__0", samples=lambda: [
        {"id": str(i), "abstained": False, "facts": f} for i, f in enumerate(facts)])
    report = fact_noise_report([run])
    assert report["chosen"] == 0.245 and report["published"]["per_subject"]["ChatGPT"] == pytest.approx(0.410, abs=1e-3)
    exact, chosen = report["effect"][0.0], report["effect"][0.245]
    assert exact["tau"] == 1.0 and exact["factscore_exact"] == exact["factscore_noisy"] == pytest.approx(40.0)
    assert chosen["factscore_noisy"] > chosen["factscore_exact"] and 0.5 < chosen["tau"] < 1.0


def test_the_lenient_checker_is_the_worlds_default_rm_fact_and_the_exact_one_a_named_variant(
        world: WorldDir, tmp_path: Path) -> None:
    import json

    from flame_bench.core.errors import FlameError
    from flame_bench.core.source import open_source
    from flame_bench.world.build import checked_default_world
    from flame_bench.world.judge_noise import FLAME_CHECKER_FALSE_ACCEPT
    from flame_bench.world.source import WorldSource

    default, exact = WorldSource(world), WorldSource(world, rm_fact_noise=0.0)
    assert default.rm_fact_noise == FLAME_CHECKER_FALSE_ACCEPT == 0.245
    assert default.name == world.path.name and "variant" not in default.fingerprint  # the default adds nothing
    assert exact.name == world.path.name + "__rmfact0" and exact.fingerprint["variant"] == "rmfact0"
    assert default.rm_fact.identity != exact.rm_fact.identity  # other stage keys
    assert open_source(default.spec).rm_fact_noise == 0.245 and open_source(exact.spec).rm_fact_noise == 0.0
    old_record = {"kind": "fact-world", "path": str(world.path)}  # written when the exact checker was the default
    assert open_source(old_record).rm_fact_noise == 0.0
    # a results/worlds/default-s0 built from the old (three-step) default is refused, never silently reused
    stale = tmp_path / "default-s0"
    stale.mkdir()
    (stale / "manifest.json").write_text(json.dumps({"preset": {**world.manifest["preset"], "name": "default"}}))
    with pytest.raises(FlameError, match=r"another definition of the 'default' preset.*--force"):
        checked_default_world(stale)
    # a world recorded before a preset field existed is that field's default (the field keeps earlier worlds)
    from flame_bench.world.presets import get_preset

    current = get_preset("default").to_dict()
    before = {k: v for k, v in current.items() if k != "reading_name_words"}
    (stale / "manifest.json").write_text(json.dumps({"preset": before}))
    assert checked_default_world(stale) == stale
    (stale / "manifest.json").write_text(json.dumps({"preset": {**before, "reading_name_words": 10}}))
    with pytest.raises(FlameError, match="another definition"):
        checked_default_world(stale)


def test_the_noise_commands_read_one_run_per_model_of_this_world_and_name_unusable_runs(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from types import SimpleNamespace

    from flame_bench.cli.world import saved_world_runs
    from flame_bench.core.errors import FlameError
    from flame_bench.core.records import write_run

    monkeypatch.setenv("FLAME_BENCH_RESULTS", str(tmp_path / "results"))
    runs = tmp_path / "results" / "runs"
    source = SimpleNamespace(world=SimpleNamespace(content_sha256="w1", path=tmp_path / "w1"))
    for name, task, model, world, created in (("a", "alpaca_winrate", "m1", "w1", "01"),
                                              ("b", "alpaca_winrate", "m1", "w1", "02"),  # m1 again: latest kept
                                              ("c", "alpaca_winrate", "m2", "w1", "03"),
                                              ("d", "alpaca_winrate", "m3", "w2", "04"),  # another world
                                              ("e", "factscore_bio", "m1", "w1", "05")):  # another task
        write_run(runs, name, {"task": {"name": task, "version": "1"}, "model": {"name": model, "sha256": model},
                               "source": {"kind": "fact-world", "content_sha256": world},
                               "created": f"2026-01-01T00:00:{created}", "metrics": {}}, [{"id": "x"}])
    got = saved_world_runs(source, ("alpaca_winrate",), None)
    assert sorted(r.path.name for r in got) == ["b", "c"]
    assert [r.path.name for r in saved_world_runs(source, ("alpaca_winrate",), [str(runs / "a")])] == ["a"]
    with pytest.raises(FlameError, match=r"not runs of the alpaca_winrate task on .*: d, e; name saved runs"):
        saved_world_runs(source, ("alpaca_winrate",), [str(runs / "d"), str(runs / "e")])
