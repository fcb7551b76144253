"""`flame-bench eval` on real data (no fact world), wired end to end with tiny local stand-ins: the smoke world's
model (copied without its world marker) as the evaluated model and as the evaluator LLM, a JSONL knowledge source,
a TruthfulQA items file and an AlpacaEval file. Checks the plumbing and records, not model quality."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import run_cli


@pytest.fixture(scope="module")
def plain_model(smoke_world: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("plain") / "tiny-chat"
    shutil.copytree(smoke_world / "model", out)
    (out / "flame_model.json").unlink()  # not a world model any more: evaluated on real data
    return out


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    monkeypatch.setenv("FLAME_BENCH_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)  # run records under tmp_path/results


def test_factscore_bio_on_a_jsonl_source_with_an_llm_evaluator(plain_model: Path, tmp_path: Path):
    kb = tmp_path / "kb.jsonl"
    kb.write_text("".join(json.dumps({"title": t, "text": f"{t} was born in 1900. {t} was a writer."}) + "\n"
                          for t in ("Ann Lee", "Bo Park", "Cy Young")))
    code, _, err = run_cli(["eval", str(plain_model), "--task", "factscore_bio", "--knowledge", str(kb),
                              "--llm", str(plain_model), "--limit", "2", "--max-new-tokens", "16", "--quiet"])
    assert code == 0, err
    run_dir = next((tmp_path / "results" / "runs").glob("factscore_bio__tiny-chat__*"))
    header = json.loads((run_dir / "run.json").read_text())
    assert header["source"]["kind"] == "real" and header["source_spec"]["knowledge"] == str(kb)
    assert header["judge"]["evaluator_llm"]["kind"] == "hf" and header["judge"]["knowledge"] == "jsonl:kb.jsonl"
    assert header["counts"]["items"] == 2 and header["counts"]["missing_topics"] == 0
    assert header["prompt_versions"]["verifier"].startswith("factscore-retrieve-lm")


def test_real_path_errors_are_one_line(plain_model: Path):
    code, _, err = run_cli(["eval", str(plain_model), "--task", "factscore_bio"])
    assert code == 2 and "needs a knowledge source: pass --knowledge wiki-leads" in err
    code, _, err = run_cli(["eval", str(plain_model), "--task", "truthfulqa_mc1"])
    assert code == 2 and "run `flame-bench data fetch truthfulqa`" in err
    code, _, err = run_cli(["eval", "base", "--task", "factscore_bio", "--knowledge", "wiki-leads"])
    assert code == 2 and "is for real data, not a fact world" in err


def test_truthfulqa_uses_lm_evals_builtin_prompt_on_a_local_items_file(plain_model: Path, tmp_path: Path):
    items = [{"id": f"q{i}", "question": f"What is {i}?",
              "mc1_targets": {"choices": ["a thing", "nothing"], "labels": [1, 0]},
              "mc2_targets": {"choices": ["a thing", "an object", "nothing"], "labels": [1, 1, 0]}} for i in range(3)]
    path = tmp_path / "tqa.json"
    path.write_text(json.dumps({"items": items}))
    code, _, err = run_cli(["eval", str(plain_model), "--task", "truthfulqa_mc2", "--truthfulqa", str(path),
                              "--quiet"])
    assert code == 0, err
    run_dir = next((tmp_path / "results" / "runs").glob("truthfulqa_mc2__tiny-chat__*"))
    header = json.loads((run_dir / "run.json").read_text())
    assert header["extra"]["lm_eval_task"] == "flame_truthfulqa_real_mc2"
    assert header["extra"]["task_config"] == "truthfulqa_mc2.yaml" and header["counts"]["items"] == 3
    assert 0.0 <= header["metrics"]["mc2"] <= 1.0


def test_alpaca_winrate_on_an_alpaca_eval_file_and_export(plain_model: Path, tmp_path: Path):
    ref = tmp_path / "ref.json"
    ref.write_text(json.dumps([{"instruction": f"Name a colour {i}.", "output": "Blue.", "generator": "gpt-x"}
                               for i in range(4)]))
    code, _, err = run_cli(["eval", str(plain_model), "--task", "alpaca_winrate", "--alpaca-eval", str(ref),
                            "--llm", str(plain_model), "--max-new-tokens", "8", "--quiet"])
    assert code == 0, err
    run_dir = next((tmp_path / "results" / "runs").glob("alpaca_winrate__tiny-chat__*"))
    header = json.loads((run_dir / "run.json").read_text())
    assert header["judge"]["name"] == "llm_pairwise" and header["reference"]["name"] == "gpt-x"
    assert header["counts"]["items"] == 4
    out = tmp_path / "ours.json"
    code, _, err = run_cli(["export", run_dir.name, "--out", str(out)])
    assert code == 0, err
    exported = json.loads(out.read_text())
    assert [r["instruction"] for r in exported] == [f"Name a colour {i}." for i in range(4)]
    assert {r["generator"] for r in exported} == {"tiny-chat"}


def test_alpaca_fact_on_real_data(plain_model: Path, tmp_path: Path):
    ref = tmp_path / "ref.json"
    ref.write_text(json.dumps([{"instruction": f"Who was writer number {i}?", "output": "A writer.",
                                "generator": "gpt-x"} for i in range(3)]))
    kb = tmp_path / "kb.jsonl"
    kb.write_text(json.dumps({"title": "Ann Lee", "text": "Ann Lee was a writer."}) + "\n")
    code, _, err = run_cli(["eval", str(plain_model), "--task", "alpaca_fact", "--alpaca-eval", str(ref),
                            "--knowledge", str(kb), "--llm", str(plain_model), "--max-new-tokens", "8", "--quiet"])
    assert code == 0, err
    run_dir = next((tmp_path / "results" / "runs").glob("alpaca_fact__tiny-chat__*"))
    header = json.loads((run_dir / "run.json").read_text())
    assert header["judge"]["query"] == "instruction" and header["judge"]["classifier"].startswith("llm_fact_based")
    assert header["counts"]["items"] == header["counts"]["classified_fact_based"] <= 3


def test_import_scores_factscore_format_outputs_and_export_writes_them_back(plain_model: Path, tmp_path: Path):
    kb = tmp_path / "kb.jsonl"
    kb.write_text("".join(json.dumps({"title": t, "text": f"{t} was born in 1900. {t} was a writer."}) + "\n"
                          for t in ("Ann Lee", "Bo Park")))
    lines = [{"topic": "Ann Lee", "output": "Ann Lee was born in 1900. Ann Lee was a writer."},
             {"topic": "Bo Park", "output": "I'm sorry, I do not know Bo Park."}]
    (tmp_path / "outputs.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    code, _, err = run_cli(["import", str(tmp_path / "outputs.jsonl"), "--name", "other-tool", "--knowledge",
                            str(kb), "--llm", str(plain_model)])
    assert code == 0, err
    run_dir = next((tmp_path / "results" / "runs").glob("factscore_bio__other-tool__*"))
    header = json.loads((run_dir / "run.json").read_text())
    assert header["imported_from"]["format"] == "factscore" and header["model"]["prompt_format"] == "imported"
    assert header["counts"]["items"] == 2 and header["counts"]["abstained"] == 1
    code, _, err = run_cli(["export", str(run_dir), "--format", "factscore", "--out", str(tmp_path / "back.jsonl")])
    assert code == 0, err
    assert [json.loads(x) for x in (tmp_path / "back.jsonl").read_text().splitlines()] == lines  # round trip
    (tmp_path / "bad.jsonl").write_text('{"topic": "Ann Lee"}\n')
    code, _, err = run_cli(["import", str(tmp_path / "bad.jsonl"), "--name", "x", "--knowledge", str(kb),
                            "--llm", str(plain_model)])
    assert code == 2 and "bad.jsonl:1" in err and "output" in err


def test_an_entity_missing_from_the_knowledge_stops_eval_with_its_near_match(plain_model: Path, tmp_path: Path):
    kb = tmp_path / "kb.jsonl"
    kb.write_text("".join(json.dumps({"title": t, "text": f"{t} was born in 1900. {t} was a writer."}) + "\n"
                          for t in ("Marie Curie", "Bo Park")))
    people = tmp_path / "people.txt"
    people.write_text("Marie Curry\nBo Park\n")
    args = ["eval", str(plain_model), "--task", "factscore_bio", "--knowledge", str(kb), "--entities", str(people),
            "--llm", str(plain_model), "--max-new-tokens", "8", "--quiet"]
    code, _, err = run_cli(args)
    assert code == 2 and "'Marie Curry' (did you mean 'Marie Curie'?)" in err and "--allow-missing-topics" in err
    assert not (tmp_path / "results" / "runs").exists()  # nothing ran
    code, _, err = run_cli([*args, "--allow-missing-topics"])
    assert code == 0, err
    header = json.loads(next((tmp_path / "results" / "runs").glob("factscore_bio__*/run.json")).read_text())
    assert header["counts"]["missing_topics"] == 1 and header["counts"]["items"] == 1  # left out, counted
