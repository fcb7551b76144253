"""World generation: determinism, disjointness, sizes, grammar round trips, schema round trips."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from flame_bench.core.errors import FlameError
from flame_bench.core.io import read_jsonl, write_jsonl
from flame_bench.world import grammar as g
from flame_bench.world.generate import generate_world
from flame_bench.world.presets import PRESETS, get_preset
from flame_bench.world.store import FILES, SCHEMA_VERSION, WorldDir, write_manifest, write_world_data


@pytest.fixture(scope="module")
def default_world():
    return generate_world(get_preset("default"), seed=0)


def _write(world, out: Path) -> Path:
    out.mkdir(parents=True)
    write_world_data(world, out)
    write_manifest(world, out, {})
    return out


def test_same_seed_gives_byte_identical_files(tmp_path: Path) -> None:
    a = _write(generate_world(get_preset("smoke"), 7), tmp_path / "a")
    b = _write(generate_world(get_preset("smoke"), 7), tmp_path / "b")
    c = _write(generate_world(get_preset("smoke"), 8), tmp_path / "c")
    for rel in ["pools.json", *FILES.values()]:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
    assert (a / "people.jsonl").read_bytes() != (c / "people.jsonl").read_bytes()


def test_default_preset_sizes(default_world) -> None:
    w = default_world
    tiers = Counter(r["tier"] for r in w.eval_bio)
    assert len(w.eval_bio) >= 150 and all(tiers[t] >= 50 for t in ("frequent", "rare", "unseen"))
    assert len(w.eval_alpaca) >= 300
    fact_share = sum(r["fact_based"] for r in w.eval_alpaca) / len(w.eval_alpaca)
    assert 0.25 < fact_share < 0.4
    assert len(w.eval_truthfulqa) >= 150
    assert len(w.seed_instructions) >= 1000 and len(w.dpo_instructions) >= 2000
    seed_fact = [r for r in w.seed_instructions if r["fact_based"]]
    assert {w_p["tier"] for r in seed_fact for w_p in w.people if w_p["name"] in r["people"]} == {
        "frequent", "rare", "unseen"}
    assert {r["kind"] for r in w.seed_instructions} >= {"bio", "attribute", "comparison", "list", "sort", "reverse",
                                                        "count", "join", "poem", "story"}
    assert all(len(p["attributes"]) >= 6 for p in w.people)


def test_splits_are_disjoint(default_world) -> None:
    w = default_world
    split_of = {p["name"]: p["split"] for p in w.people}
    for key, split in (("seed_instructions", "seed"), ("dpo_instructions", "dpo"), ("eval_alpaca", "eval_bio")):
        assert {split_of[n] for r in getattr(w, key) for n in r["people"]} <= {split}, key
    texts = [set(r["instruction"] for r in getattr(w, k)) for k in ("seed_instructions", "dpo_instructions",
                                                                     "eval_alpaca")]
    texts.append({r["instruction"] for r in w.eval_bio})
    for i in range(len(texts)):
        for j in range(i + 1, len(texts)):
            assert not texts[i] & texts[j]
    assert {split_of[p["name"]] for p in w.people if p["id"] in {r["person_id"] for r in w.eval_bio}} == {"eval_bio"}
    assert {w.people[int(r["person_id"][1:])]["split"] for r in w.eval_truthfulqa} == {"tqa"}


def test_names_never_collide(default_world) -> None:
    w = default_world
    names = [p["name"] for p in w.people]
    assert len(set(names)) == len(names)
    name_words = [x for n in names for x in n.split()]
    assert len(set(name_words)) == len(name_words)
    value_words = {x for vs in w.pools.values() for v in vs for x in v.split()}
    assert not set(name_words) & value_words


def test_pretraining_knowledge_follows_tiers(default_world) -> None:
    """Unseen people are named in the corpus but no fact about them is ever stated; frequent >> rare."""
    w = default_world
    grammar = g.Grammar(w.pools)
    by_id = {p["id"]: p for p in w.people}
    facts_about: Counter[str] = Counter()
    for doc in w.corpus:
        if doc["kind"] == "mention":
            assert not grammar.facts(doc["text"])
            continue
        person = by_id[doc["person_id"]]
        facts_about[person["tier"]] += len(grammar.facts(doc["text"], topic=person["name"]))
    assert facts_about["unseen"] == 0
    assert facts_about["frequent"] > 5 * facts_about["rare"] > 0
    listed = [d["text"].split(". ")[0].removeprefix("The guest list included ") for d in w.corpus
              if d["kind"] == "mention"]
    mentioned = {n for names in listed for n in names.split(", ")}
    assert {p["name"] for p in w.people if p["tier"] == "unseen"} <= mentioned


def test_misconceptions_are_planted_and_outnumber_truth(default_world) -> None:
    w = default_world
    person = next(p for p in w.people if p["misconception"])
    misc = person["misconception"]
    texts = [d["text"] for d in w.corpus if d["person_id"] == person["id"]]
    false = sum(misc["value"] in t for t in texts)
    true = sum(person["attributes"][misc["attribute"]] in t for t in texts)
    assert false > true
    item = next(i for i in w.eval_truthfulqa if i["person_id"] == person["id"])
    assert item["mc1_targets"]["labels"][0] == 1 and sum(item["mc1_targets"]["labels"]) == 1
    assert item["misconception"] in item["mc1_targets"]["choices"]


def test_grammar_round_trips_every_template(default_world) -> None:
    grammar = g.Grammar(default_world.pools)
    for attr, templates in g.FACT_TEMPLATES.items():
        value = default_world.pools[attr][3]
        for t in templates:
            assert grammar.facts(t.format(S="Ada Lovelace", V=value)) == [g.Fact("Ada Lovelace", attr, value)]
    (a1, a2), t = g.COMPOUND_TEMPLATES[0]
    v1, v2 = default_world.pools[a1][0], default_world.pools[a2][0]
    assert grammar.facts(t.format(S="She", V1=v1, V2=v2), topic="Ada Lovelace") == [
        g.Fact("Ada Lovelace", a1, v1), g.Fact("Ada Lovelace", a2, v2)]
    assert not grammar.parse_sentence("Ada Lovelace likes purple clouds.").parsed
    assert grammar.parse_sentence("I do not know anything about Ada Lovelace.").abstains


def test_knowledge_and_human_responses_state_only_true_facts(default_world) -> None:
    w = default_world
    grammar = g.Grammar(w.pools)
    by_name = {p["name"]: p for p in w.people}
    for page in w.knowledge:
        person = by_name[page["title"]]
        facts = grammar.facts(page["text"], topic=person["name"])
        assert {f.attribute for f in facts} == set(g.ATTRIBUTES)
        assert all(person["attributes"][f.attribute] == f.value for f in facts)
        assert " ".join(page["passages"]) == page["text"]
    for r in w.seed_instructions:
        if not r["fact_based"]:
            continue
        topic = r["people"][0]
        for f in grammar.facts(r["response"], topic=topic):
            if f.attribute == "born_before":
                assert int(by_name[f.subject]["attributes"]["birth_year"]) < int(by_name[f.value]["attributes"][
                    "birth_year"])
            else:
                assert by_name[f.subject]["attributes"][f.attribute] == f.value


def test_world_dir_round_trip_and_validation(tmp_path: Path) -> None:
    world = generate_world(get_preset("smoke"), 0)
    out = _write(world, tmp_path / "w")
    wd = WorldDir.open(out)
    assert wd.people == world.people
    assert wd.records("eval_truthfulqa") == world.eval_truthfulqa
    assert wd.pools == world.pools

    (out / "eval" / "bio.jsonl").write_text((out / "eval" / "bio.jsonl").read_text() + "{}\n")
    with pytest.raises(FlameError, match="does not match its manifest hash"):
        WorldDir.open(out)
    (out / "manifest.json").unlink()
    with pytest.raises(FlameError, match="not a complete flame-bench world"):
        WorldDir.open(out)


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    world = generate_world(get_preset("smoke"), 0)
    out = _write(world, tmp_path / "w")
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["schema_version"] = SCHEMA_VERSION + 1
    (out / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(FlameError, match="newer flame-bench"):
        WorldDir.open(out)


def test_jsonl_errors_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    write_jsonl(path, "people", 1, [{"a": 1}, {"a": 2}])
    assert read_jsonl(path, "people", 1) == [{"a": 1}, {"a": 2}]
    path.write_text(path.read_text() + '{"a": 3\n')
    with pytest.raises(FlameError, match=r"x\.jsonl:4: malformed JSON line"):
        read_jsonl(path, "people", 1)
    with pytest.raises(FlameError, match="newer than this flame-bench supports"):
        write_jsonl(path, "people", 2, [])
        read_jsonl(path, "people", 1)
    with pytest.raises(FlameError, match="expected a 'knowledge' header"):
        read_jsonl(path, "knowledge", 2)


def test_presets_are_registered() -> None:
    assert set(PRESETS) == {"smoke", "default", "tiered", "large", "pilot", "pilot-deep", "pilot-fresh",
                            "pilot-deep-fresh", "smoke-pilot"}
    with pytest.raises(FlameError, match="did you mean 'default'"):
        get_preset("defualt")
    with pytest.raises(FlameError, match="'longtail' is now called 'default'"):
        get_preset("longtail")


def test_default_world_draws_each_persons_exposure_from_a_long_tail_and_the_tiered_world_keeps_three_steps(
        default_world) -> None:
    from flame_bench.world.presets import LONG_TAIL_LEVELS, POPULARITY_BINS, popularity_bin

    tail = default_world
    docs = Counter(d["person_id"] for d in tail.corpus if d["person_id"])
    for p in tail.people:
        assert p["exposure"] in LONG_TAIL_LEVELS[p["tier"]]
        assert docs.get(p["id"], 0) == p["exposure"] + p["exposure"] // 4  # bios, then a quarter more Q&A
    bins = Counter(popularity_bin(it["exposure"]) for it in tail.eval_bio)
    assert set(bins) == {label for label, _, _ in POPULARITY_BINS} and min(bins.values()) >= 10, bins
    tiered = generate_world(get_preset("tiered"), 0)
    assert all("exposure" not in p for p in tiered.people)
    docs = Counter(d["person_id"] for d in tiered.corpus if d["person_id"])
    per_tier = {"frequent": 40, "rare": 2, "unseen": 0}
    assert all(docs.get(p["id"], 0) == per_tier[p["tier"]] + per_tier[p["tier"]] // 4 for p in tiered.people)
