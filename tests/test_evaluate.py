"""The evaluator and CLI: run records, cache reuse, reports and bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import run_cli

from flame_bench.core.evaluate import evaluate
from flame_bench.core.records import load_run
from flame_bench.world.source import WorldSource


@pytest.fixture()
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)  # results/ lands here
    return tmp_path


def _strip_timing(header: dict) -> dict:
    return {k: v for k, v in header.items() if k not in ("created", "duration_seconds")}


def test_eval_writes_records_and_reuses_the_cache(smoke_world: Path, workdir: Path) -> None:
    (first,) = evaluate("base", ["factscore_bio"], WorldSource.open(smoke_world), quiet=True)
    header = json.loads((first.path / "run.json").read_text())
    for key in ("schema_version", "task", "model", "source", "source_spec", "generation", "judge", "prompt_versions",
                "seed",
                "config_hash", "environment", "metrics", "confidence_intervals", "counts"):
        assert key in header, key
    assert header["environment"]["packages"]["torch"].startswith("2.13")
    assert header["model"]["sha256"] and header["judge"]["decomposer"].startswith("world_grammar")
    samples = first.samples()
    assert len(samples) == header["counts"]["items"] == 15
    assert {"output", "facts", "factscore"} <= set(samples[0])

    from flame_bench.engines.generation_cache import GenerationCache

    cache_file = workdir / "results" / "cache" / "generations.sqlite"
    n_cached = len(GenerationCache(cache_file).get_many(
        [r[0] for r in GenerationCache(cache_file)._db.execute("SELECT key FROM generations")]))
    assert n_cached == 15
    (second,) = evaluate("base", ["factscore_bio"], WorldSource.open(smoke_world), quiet=True)
    assert second.path == first.path
    assert _strip_timing(second.header) == _strip_timing(header)
    assert second.samples() == samples


def test_eval_cli_prints_report_and_report_renders_formats(smoke_world: Path, workdir: Path) -> None:
    code, out, err = run_cli(["eval", "base", "--task", "factscore_bio", "--world", str(smoke_world), "--limit", "6",
                              "--quiet"])
    assert code == 0, err
    assert "FActScore" in out and "frequent" in out
    run = next((workdir / "results" / "runs").iterdir())
    assert load_run(run).header["counts"]["items"] == 6
    for fmt, marker in (("md", "| task |"), ("csv", "run,task,model"), ("json", '"metric"')):
        code, out, err = run_cli(["report", str(run), "--format", fmt])
        assert code == 0 and marker in out, err
    code, _, err = run_cli(["report", str(run), "--format", "xml"])
    assert code == 2 and "unknown format 'xml'" in err


@pytest.mark.parametrize(("args", "message"), [
    (["eval", "base", "--task", "factscore"], "unknown task 'factscore'; did you mean 'factscore_bio'"),
    (["eval", "bsae", "--task", "factscore_bio"], "unknown model 'bsae'; did you mean 'base'"),
    (["eval", "./nowhere/model", "--task", "factscore_bio"], "model directory ./nowhere/model does not exist"),
    (["eval", "base", "--task", "factscore_bio", "--limit", "0"], "Invalid value for '--limit'"),
])
def test_eval_bad_input_is_one_line(smoke_world: Path, workdir: Path, args: list[str], message: str) -> None:
    code, _, err = run_cli([*args, "--world", str(smoke_world)])
    assert code == 2, err
    assert message in err and "Traceback" not in err


def test_model_without_weights_is_refused(smoke_world: Path, workdir: Path) -> None:
    model = workdir / "empty_model"
    shutil.copytree(smoke_world / "model", model)
    (model / "model.safetensors").unlink()
    code, _, err = run_cli(["eval", str(model), "--task", "factscore_bio", "--world", str(smoke_world)])
    assert code == 2 and "has no model.safetensors (nor model.safetensors.index.json)" in err
    (model / "pytorch_model.bin").write_bytes(b"pickle")
    code, _, err = run_cli(["eval", str(model), "--task", "factscore_bio", "--world", str(smoke_world)])
    assert code == 2 and "pickle weights (pytorch_model.bin) but no model.safetensors" in err


def test_malformed_world_jsonl_names_the_line(smoke_world: Path, workdir: Path) -> None:
    world = workdir / "w"
    shutil.copytree(smoke_world, world)
    path = world / "eval" / "bio.jsonl"
    lines = path.read_text().splitlines()
    lines[3] = lines[3][:-5]
    path.write_text("\n".join(lines) + "\n")
    from flame_bench.core.io import sha256_file
    manifest = json.loads((world / "manifest.json").read_text())
    manifest["files"]["eval/bio.jsonl"] = sha256_file(path)  # a consistent but broken world
    (world / "manifest.json").write_text(json.dumps(manifest))
    code, _, err = run_cli(["eval", "base", "--task", "factscore_bio", "--world", str(world)])
    assert code == 2 and "bio.jsonl:4: malformed JSON line" in err


def test_alpaca_winrate_reference_checks(smoke_world: Path, workdir: Path) -> None:
    world = ["--world", str(smoke_world), "--quiet"]
    code, _, err = run_cli(["eval", "base", "--task", "alpaca_winrate", "--task", "factscore_bio", "--limit", "5",
                              *world])
    assert code == 0, err
    runs = {p.name.split("__")[0]: p for p in (workdir / "results" / "runs").iterdir()}
    # a reference run of another task
    code, _, err = run_cli(["eval", "base", "--task", "alpaca_winrate", "--reference", str(runs["factscore_bio"]),
                            *world])
    assert code == 2 and "is a factscore_bio run" in err
    # a reference run that covered other (fewer) instructions
    code, _, err = run_cli(["eval", "base", "--task", "alpaca_winrate", "--reference", str(runs["alpaca_winrate"]),
                            "--limit", "8", *world])
    assert code == 2 and "covers other instructions (3 of 8 items missing" in err
    # the model against its own outputs: every item is an identical-output tie
    code, _, err = run_cli(["eval", "base", "--task", "alpaca_winrate", "--reference", str(runs["alpaca_winrate"]),
                            "--limit", "5", *world])
    assert code == 0, err
    header = load_run(next(p for p in (workdir / "results" / "runs").iterdir()
                           if p.name.startswith("alpaca_winrate") and p != runs["alpaca_winrate"])).header
    assert header["metrics"]["win_rate"] == 0.5 and header["counts"]["ties"] == 5
    assert header["reference"]["kind"] == "run"


def test_all_tasks_run_on_the_smoke_world(smoke_world: Path, workdir: Path) -> None:
    records = evaluate("base", ["factscore_bio", "alpaca_winrate", "alpaca_fact", "truthfulqa_mc1",
                                "truthfulqa_mc2"], WorldSource.open(smoke_world), limit=6, quiet=True)
    metrics = {r.task: r.metrics for r in records}
    assert metrics["alpaca_winrate"]["win_rate"] < 0.5  # a pretrained model loses to human responses
    for task, key in (("factscore_bio", "factscore"), ("alpaca_fact", "factscore"), ("truthfulqa_mc1", "mc1"),
                      ("truthfulqa_mc2", "mc2")):
        assert 0.0 <= metrics[task][key] <= 1.0


def test_rescoring_a_saved_run_reproduces_its_metrics_without_generating(smoke_world: Path, workdir: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import flame_bench.engines.models
    from flame_bench.core.evaluate import rescore

    source = WorldSource.open(smoke_world)
    runs = evaluate("base", ["factscore_bio", "alpaca_winrate", "alpaca_fact", "truthfulqa_mc1", "truthfulqa_mc2"],
                    source, limit=6, quiet=True)

    def no_model(*args, **kwargs):
        raise AssertionError("re-scoring must not load the model")

    monkeypatch.setattr(flame_bench.engines.models, "load_model", no_model)
    monkeypatch.setattr(flame_bench.engines.models.ModelHandle, "load", no_model)
    for run in runs:
        again = rescore(str(run.path), quiet=True)  # the source reopened from the record
        assert again.metrics == run.metrics, run.task
        assert again.header["confidence_intervals"] == run.header["confidence_intervals"]
        assert again.path == run.path and again.header["rescored_from"] == run.run_id
    code, out, err = run_cli(["rescore", runs[0].run_id, "--quiet"])
    assert code == 0 and "FActScore" in out, err
