"""The pilot study (the paper's Table 1): reading documents in pretraining, its pair rules, and the whole command."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from conftest import run_cli


def _reading_preset():
    from flame_bench.world.presets import get_preset

    return dataclasses.replace(get_preset("smoke-pilot"), reading_people=20, reading_docs_per_person=3)


def test_reading_documents_answer_from_their_context_about_people_found_nowhere_else() -> None:
    from flame_bench.world import grammar as g
    from flame_bench.world.generate import generate_world

    world = generate_world(_reading_preset(), 0)
    grammar = g.Grammar(world.pools)
    reading = [d for d in world.corpus if d["kind"] == "reading"]
    assert len(reading) == 60 and len({d["id"] for d in world.corpus}) == len(world.corpus)
    names = {p["name"] for p in world.people}
    for doc in reading:
        context, rest = doc["text"].removeprefix("Context: ").split(" Question: ")
        instruction, answer = rest.split(" Answer: ")
        person = instruction.removeprefix("Tell me a bio of ").removesuffix(".")
        assert person not in names and not any(n in doc["text"] for n in names)
        stated = set(grammar.facts(context, topic=person))
        answered = set(grammar.facts(answer, topic=person))
        assert answered and answered == stated  # the answer says what the context says, nothing more
    # the preset it reads from (its random stream) keeps its people, knowledge and instructions
    from flame_bench.world.presets import get_preset

    plain = generate_world(get_preset("smoke"), 0)
    assert not any(d["kind"] == "reading" for d in plain.corpus)
    assert plain.people == world.people and plain.knowledge == world.knowledge
    assert plain.seed_instructions == world.seed_instructions and plain.eval_bio == world.eval_bio
    assert sorted(d["text"] for d in plain.corpus) == sorted(d["text"] for d in world.corpus if d["kind"] != "reading")


def test_reading_people_can_share_first_and_last_names_and_be_read_about_once() -> None:
    import dataclasses

    from flame_bench.world.generate import generate_world

    fresh = dataclasses.replace(_reading_preset(), reading_people=40, reading_docs_per_person=1, reading_name_words=16)
    world = generate_world(fresh, 0)
    reading = [d["text"] for d in world.corpus if d["kind"] == "reading"]
    names = [t.split(" Question: Tell me a bio of ")[1].split(".")[0] for t in reading]
    assert len(reading) == 40 and len(set(names)) == 40  # every document about a person of its own
    assert len({n.split()[0] for n in names}) <= 8 and len({n.split()[1] for n in names}) <= 8  # 16 name words
    assert world.people == generate_world(_reading_preset(), 0).people  # the world's own people stay as they are


def test_pilot_pair_rules() -> None:
    from flame_bench.core.registry import load_builtin

    load_builtin()
    from flame_bench_recipes.pilot import fs_pairs, rag_vs_pt_pairs

    pairs, ties = fs_pairs(["Ann Bo"], [["a", "b", "c", "", "d"]], [[0.5, 1.0, 0.5, None, None]])
    assert ties == 1  # a and c tie; the empty and the unscored bios are left out
    assert {(p["chosen"], p["rejected"]) for p in pairs} == {("b", "a"), ("b", "c")}
    assert all(p["prompt"] == "Tell me a bio of Ann Bo." for p in pairs)
    rag = rag_vs_pt_pairs(["Ann Bo"], [["r1", "same", ""]], [["p1", "same", "p3"]])
    assert [(p["chosen"], p["rejected"]) for p in rag] == [("r1", "p1")]


def test_pilot_configs_are_checked() -> None:
    from flame_bench.core.registry import RECIPES, load_builtin

    load_builtin()
    with pytest.raises(ValueError, match="responses must be one of pt, pt_rag"):
        RECIPES.get("pilot_sft").config_cls(responses="human")
    with pytest.raises(ValueError, match="pairs must be one of fs, rag_vs_pt"):
        RECIPES.get("pilot_dpo").config_cls(pairs="maxmin")


@pytest.fixture()
def pilot_world(smoke_pilot_world: Path) -> Path:
    return smoke_pilot_world


def test_pilot_refuses_a_world_without_reading_documents(smoke_world: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLAME_BENCH_RESULTS", str(tmp_path / "results"))
    code, _, err = run_cli(["pilot", "--world", str(smoke_world), "--quiet"])
    assert code != 0 and "has no reading documents" in err and "--preset pilot" in err
    assert "Traceback" not in err and not (tmp_path / "results" / "systems").exists()  # nothing trained


def test_pilot_command_trains_four_systems_and_checks_the_papers_directions(pilot_world: Path, tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLAME_BENCH_RESULTS", str(tmp_path / "results"))
    code, out, err = run_cli(["pilot", "--world", str(pilot_world), "--quiet"])
    assert code == 0, err
    assert "Table 1" in out and "RAG is more factual" in out
    report = json.loads((tmp_path / "results" / "comparisons" / "pilot__smoke-pilot__seed0.json").read_text())
    rows = {r["row"]: r for r in report["rows"]}
    assert list(rows) == ["(1)", "(2)", "(3)", "(4)", "(5)", "(6)"]
    assert all(r["items"] == 15 and 0 <= r["factscore"] <= 100 for r in rows.values())
    assert all(f["delta"] is not None and f["verdict"] for f in report["findings"])
    # the PT_RAG prompts carry the person's own passages
    assert all(s["prompt"].startswith("Context: ") and s["prompt"].endswith("Answer:") for s in
               report["pt_rag_samples"])
    # training changed the models: every trained row's weights differ from the base model's and from each other's
    from safetensors.torch import load_file

    weights = {k: load_file(str(Path(m) / "model.safetensors")) for k, m in report["models"].items()}
    for key in ("(3)", "(4)", "(5)", "(6)"):
        assert any(not (weights[key][n] == weights["(1)"][n]).all() for n in weights["(1)"]), key
    assert any(not (weights["(5)"][n] == weights["(3)"][n]).all() for n in weights["(3)"])  # DPO moved SFT's weights
    stages = {s["recipe"] + ":" + s["stats"]["config"].get("responses", s["stats"]["config"].get("pairs", "")): s
              for key in ("(3)", "(4)", "(5)", "(6)") for s in report["stages"][key]}
    assert set(stages) == {"pilot_sft:pt", "pilot_sft:pt_rag", "pilot_dpo:fs", "pilot_dpo:rag_vs_pt"}
    assert all(s["stats"]["steps"] > 0 for s in stages.values())
    assert stages["pilot_dpo:fs"]["stats"]["train_pairs"] > 0
    assert stages["pilot_dpo:rag_vs_pt"]["stats"]["train_pairs"] > 0


def test_pilot_seeds_pool_people_averaged_over_seeds() -> None:
    from flame_bench.experiments.pilot import ROWS, pilot_tables, pooled

    def report(seed: int, shift: float) -> dict:
        fs = {r.key: {f"bio{i}": 50.0 + (shift if r.key == "(2)" else 0.0) + i for i in range(20)} for r in ROWS}
        paper = {"factscore": 1.0, "correct": 1.0, "erroneous": 1.0}
        rows = [{"row": r.key, "model": r.model, "positives": r.positives, "negatives": r.negatives,
                 "system": r.system, "paper": paper, "factscore": 59.5 + (shift if r.key == "(2)" else 0.0),
                 "correct": 2.0, "erroneous": 1.0, "respond_ratio": 1.0, "items": 20} for r in ROWS]
        return {"seed": seed, "rows": rows, "item_factscore": fs, "findings": [], "source": {"kind": "fact-world"}}

    both = pooled([report(0, 2.0), report(1, 4.0)])
    rag = next(f for f in both["findings"] if f["row"] == "(2)")
    assert rag["delta"]["n"] == 20 and rag["delta"]["value"] == 3.0 and rag["verdict"] == "agrees*"  # people, once
    row2 = next(r for r in both["rows"] if r["row"] == "(2)")
    assert row2["factscore"] == 62.5 and row2["factscore_std"] == pytest.approx(2 ** 0.5)  # sample std, as seeds
    flat = next(f for f in both["findings"] if f["row"] == "(4)")
    assert flat["delta"]["value"] == 0.0 and flat["verdict"] == "no difference"
    table, checks = pilot_tables(both)
    assert "mean over seeds 0, 1" in str(table.title) and "people, each averaged over seeds" in str(checks.title)
    # a row where every answer abstained has no FActScore: "-" in the table, never a 0 in a mean
    silent = report(2, 0.0)
    silent["rows"][5].update(factscore=None, correct=None, erroneous=None, respond_ratio=0.0)
    three = pooled([report(0, 2.0), report(1, 4.0), silent])
    assert next(r for r in three["rows"] if r["row"] == "(6)")["factscore"] == 59.5  # the two seeds that scored
    lone = pooled([silent])
    assert next(r for r in lone["rows"] if r["row"] == "(6)")["factscore"] is None
    from rich.console import Console

    console = Console(record=True, width=200)
    console.print(pilot_tables(lone)[0])
    line = next(x for x in console.export_text().splitlines() if "(6)" in x)
    assert "- / -" in line and "0.0" not in line.split("│")[5]  # FS and #Corr / #Err shown as unknown
