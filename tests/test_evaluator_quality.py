"""Evaluators that measure themselves: every role a metric rests on is checked on labelled data from the source,
its verdict is recorded beside the metric, a weak one marks every view and stops `compare` unless allowed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import run_cli

from flame_bench.scoring import quality
from flame_bench.world.source import WorldSource


class AlwaysTrue:
    """A verifier that cannot read: every fact supported."""

    name, version = "always_true", "1"

    def verify_many(self, batch):
        return [True for _ in batch]


class PicksSecond:
    """A judge that reads the order, not the answers (SmolLM2's behaviour on judge-check)."""

    name, version, prompt_version = "picks_second", "1", "1"

    def compare(self, record, output_1, output_2):
        return "Preferred: 2"


class Constant:
    """An RM_IF that scores every response alike."""

    identity, stats = {"name": "constant"}, {}

    def score_many(self, records, responses):
        return [3.0 for _ in responses]


class CallsEverythingFactBased:
    name, version = "everything", "1"

    def classify_many(self, instructions):
        return [True for _ in instructions]


def test_floors_come_from_chance():
    assert quality.accuracy_floor(40) == pytest.approx(0.5 + 2 * (0.25 / 40) ** 0.5)  # two SE of a coin
    assert quality.accuracy_floor(10_000) == pytest.approx(0.6)  # never less than 10 points over chance
    assert quality.verdict(0.95, 80) == "ok" and quality.verdict(0.55, 80) == "weak"
    assert quality.verdict(0.95, 80, position_share=0.95) == "weak"  # reads the order


def test_the_worlds_exact_evaluators_are_ok(smoke_world: Path, isolated: Path):
    found = quality.evaluator_quality(WorldSource.open(smoke_world), ["verifier", "pairwise_judge", "classifier",
                                                                      "rm_if"])
    assert {r: q.verdict for r, q in found.items()} == {"verifier": "ok", "pairwise_judge": "ok", "classifier": "ok",
                                                        "rm_if": "ok"}
    assert found["verifier"].accuracy == 1.0 and found["verifier"].n == 2 * quality.N_CLAIM_PAIRS
    cached = list((isolated / "results" / "cache" / "evaluator_quality").glob("*.json"))
    assert len(cached) == 4  # measured once per evaluator identity


def test_stub_evaluators_that_cannot_read_are_weak(smoke_world: Path, isolated: Path,
                                                   monkeypatch: pytest.MonkeyPatch):
    source = WorldSource.open(smoke_world)
    real_scorer = source.factscorer

    def always_true_scorer(k, **kw):
        scorer = real_scorer(k, **kw)
        scorer.verifier = AlwaysTrue()
        return scorer

    monkeypatch.setattr(source, "factscorer", always_true_scorer)
    monkeypatch.setattr(WorldSource, "pairwise_judge", property(lambda self: PicksSecond()))
    monkeypatch.setattr(WorldSource, "fact_classifier", property(lambda self: CallsEverythingFactBased()))
    monkeypatch.setattr(WorldSource, "rm_if", lambda self, policy_model=None: Constant())
    found = quality.evaluator_quality(source, ["verifier", "pairwise_judge", "classifier", "rm_if"])
    assert {r: q.verdict for r, q in found.items()} == {"verifier": "weak", "pairwise_judge": "weak",
                                                        "classifier": "weak", "rm_if": "weak"}
    assert found["verifier"].details["tnr"] == 0.0 and found["verifier"].accuracy == 0.5
    assert found["pairwise_judge"].details["position_share"] == 1.0
    assert "verifier at 50.0% on entity-swap" in found["verifier"].note()


def test_compare_refuses_a_weak_judge_and_marks_its_cells_when_allowed(smoke_world: Path, isolated: Path,
                                                                        monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(WorldSource, "pairwise_judge", property(lambda self: PicksSecond()))
    args = ["compare", "sft", "sft_seen", "--world", str(smoke_world), "--task", "alpaca_winrate",
            "--task", "factscore_bio", "--limit", "6", "--quiet"]
    code, _, err = run_cli(args)
    assert code == 2 and "pairwise_judge at" in err and "--allow-weak-evaluators" in err
    assert "Traceback" not in err and not (isolated / "results" / "systems").exists()  # nothing trained
    code, _, err = run_cli([*args, "--allow-weak-evaluators"])
    assert code == 0, err
    md = next((isolated / "results" / "comparisons").glob("sft_vs_sft_seen__*.md")).read_text()
    assert "† not meaningful: pairwise_judge at" in md
    header = [c.strip() for c in md.splitlines()[0].split("|")]
    row = md.splitlines()[2].split("|")
    assert row[header.index("Win rate")].strip().endswith("†")  # the judged cell is marked
    assert not row[header.index("Bio FS")].strip().endswith("†")  # the verifier is fine
    runs = json.loads(next((isolated / "results" / "comparisons").glob("sft_vs_sft_seen__*.json")).read_text())
    assert runs["evaluator_quality"]["pairwise_judge"]["verdict"] == "weak"
    record = json.loads((Path(runs["systems"][1]["runs"]["alpaca_winrate"]) / "run.json").read_text())
    assert record["evaluator_quality"]["pairwise_judge"]["verdict"] == "weak"
    board = (isolated / "results" / "leaderboard.md").read_text()
    assert "not meaningful: pairwise_judge" in board


def test_the_verifier_check_draws_only_from_pages_no_evaluator_trained_on(smoke_world: Path, isolated: Path,
                                                                          monkeypatch: pytest.MonkeyPatch,
                                                                          tmp_path: Path):
    source = WorldSource.open(smoke_world)
    held_out = source.verifier_check_topics()[5:]  # as if the verifier had trained on the first five pages
    monkeypatch.setattr(source, "verifier_check_topics", lambda: held_out)
    real_scorer, asked = source.factscorer, []

    def recording_scorer(k, **kw):
        scorer = real_scorer(k, **kw)
        score_many = scorer.score_many
        scorer.score_many = lambda texts, topics, *a: asked.extend(t for ts in topics for t in ts) or score_many(
            texts, topics, *a)
        return scorer

    monkeypatch.setattr(source, "factscorer", recording_scorer)
    quality.check_verifier(source)
    assert asked and set(asked) <= set(held_out)

    # the real path: wiki-leads' people list, the pages the offline verifier never trains on (nli_data)
    from flame_bench.real import knowledge
    from flame_bench.real.source import RealSource, RealSpec

    db = tmp_path / "pages.jsonl"
    db.write_text("".join(json.dumps({"title": t, "text": f"{t} is a place."}) + "\n" for t in ("A", "B", "C")))
    monkeypatch.setattr(knowledge, "load_entities", lambda ref, source=None: ["B"])
    assert RealSource(RealSpec(llm="x", knowledge=str(db))).verifier_check_topics() == ["B"]
