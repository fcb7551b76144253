"""The third reliability round: each BAD case reproduced as the catalogue hit it (each failed before its fix), and
the WEAK cases (one line, exit 2, nothing written; faults recovered; views that never contradict their records)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import ClassVar

import pytest
from conftest import run_cli
from test_leaderboard import _run


# B1: --force recognises a world by its schema and file list, and never deletes a file that world does not list
def test_force_refuses_a_foreign_manifest_and_files_a_world_does_not_list(smoke_world: Path, isolated: Path) -> None:
    site = isolated / "site"
    site.mkdir()
    (site / "manifest.json").write_text('{"name": "pwa"}')
    (site / "index.html").write_text("<h1>my site</h1>")
    code, _, err = run_cli(["world", "build", "--preset", "smoke", "--out", str(site), "--force", "--quiet"])
    assert code == 2 and "is not a flame-bench world" in err
    assert (site / "index.html").read_text() == "<h1>my site</h1>"
    world = isolated / "w"
    shutil.copytree(smoke_world, world)
    (world / "eval" / "my_notes.txt").write_text("notes")
    code, _, err = run_cli(["world", "build", "--preset", "smoke", "--out", str(world), "--force", "--quiet"])
    assert code == 2 and "holds files its world does not list (eval/my_notes.txt)" in err
    assert (world / "eval" / "my_notes.txt").read_text() == "notes"


# B2: the whole userinfo is redacted, however many '@' it holds
@pytest.mark.parametrize("url", ["http://alice:s3cr3t@PWtail@127.0.0.1:8000/v1",
                                 "http://alice:s3cr3t/PWtail@127.0.0.1:8000/v1",
                                 "https://s3cr3t@PWtail@host/v1?x=1"])
def test_credentials_with_at_signs_or_slashes_are_redacted_whole(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from flame_bench.core.errors import redact_url
    from flame_bench.engines.generation import backend_identity

    shown = redact_url(f"cannot reach {url}: refused")
    assert "s3cr3t" not in shown and "PWtail" not in shown and "://***@" in shown and shown.endswith(": refused")
    monkeypatch.setenv("FLAME_BENCH_LLM_MODEL", "judge")
    assert "s3cr3t" not in json.dumps(backend_identity(url))  # what a run record stores of --generation URL
    assert redact_url("http://127.0.0.1:8000/v1") == "http://127.0.0.1:8000/v1"


# B5: a world that a process reads is never replaced under it
def test_a_world_in_use_is_never_replaced_under_its_reader(smoke_world: Path, isolated: Path) -> None:
    from flame_bench.world.store import replacing

    world = isolated / "w"
    shutil.copytree(smoke_world, world)
    reader = subprocess.Popen(
        [sys.executable, "-c", "import sys; from flame_bench.world.store import WorldDir; WorldDir.open(sys.argv[1]);"
         " print('open', flush=True); sys.stdin.read()", str(world)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert reader.stdout.readline().strip() == "open"
        before = (world / "manifest.json").read_bytes()
        code, _, err = run_cli(["world", "build", "--preset", "smoke", "--seed", "1", "--out", str(world), "--force",
                                "--quiet"])
        assert code == 2 and "is in use by another flame-bench process" in err, err
        assert (world / "manifest.json").read_bytes() == before
    finally:
        reader.communicate("", timeout=60)
    with replacing(world):  # the reader has ended: the world can be replaced again
        pass


# B7: removing a registry entry never deletes outside the directory flame-bench made for that name
@pytest.mark.parametrize("name", ["..", "."])
def test_removing_an_entry_named_dotdot_keeps_the_other_models(isolated: Path, name: str) -> None:
    models = isolated / "home" / "models"
    (models / "keep").mkdir(parents=True)
    (models / "keep" / "model.safetensors").write_bytes(b"weights")
    (models / "packages" / "keep").mkdir(parents=True)
    registry = {"keep": {"path": str(models / "keep"), "source": "pypi:x"},
                name: {"path": str(models / name), "source": "pypi:y"}}
    (models / "registry.json").write_text(json.dumps(registry))
    code, out, err = run_cli(["models", "remove", name])
    assert code == 0 and f"removed {name}" in out, err
    assert (models / "keep" / "model.safetensors").read_bytes() == b"weights"
    assert (models / "packages" / "keep").is_dir()
    assert set(json.loads((models / "registry.json").read_text())) == {"keep"}


# B4: a published stage is checked against the hashes in its stage.json on every load; a damaged one is never used
def test_a_stage_with_one_flipped_byte_is_rebuilt_never_used(smoke_world: Path, isolated: Path) -> None:
    from flame_bench.alignment.stages import run_stage
    from flame_bench.core.io import sha256_file
    from flame_bench.engines.generation_cache import GenerationCache
    from flame_bench.world.source import WorldSource

    source = WorldSource.open(smoke_world)
    cache, root = GenerationCache(isolated / "c.sqlite"), isolated / "stages"
    model, record = run_stage("sft", {"epochs": 1}, source.base_model(), source, 0, cache, quiet=True, root=root)
    weights = model / "model.safetensors"
    assert record["model_files"]["model.safetensors"] == sha256_file(weights)
    data = bytearray(weights.read_bytes())
    data[-3] ^= 0x01  # one bit of one weight: the file still loads, with another number in it
    weights.write_bytes(bytes(data))
    import io
    from contextlib import redirect_stderr

    from flame_bench.core import ui
    buffer = io.StringIO()
    ui.console.file = buffer
    try:
        with redirect_stderr(io.StringIO()):
            again, rebuilt = run_stage("sft", {"epochs": 1}, source.base_model(), source, 0, cache, quiet=True,
                                       root=root)
    finally:
        ui.console.file = None
    timing = "flame_model.json"  # the build record holds wall times
    assert again == model and rebuilt["model_files"].pop(timing) and record["model_files"].pop(timing)
    assert rebuilt["model_files"] == record["model_files"]  # the same bits, retrained
    assert "does not match its recorded sha256; never used" in " ".join(buffer.getvalue().split())
    assert [p.name for p in root.iterdir() if ".damaged-" in p.name]  # the damaged copy is kept, aside


# B3: a stage that did not train is never published
def test_a_stage_whose_weights_did_not_change_is_refused(smoke_world: Path, isolated: Path) -> None:
    from flame_bench.alignment.stages import check_trained
    from flame_bench.core.errors import FlameError

    same = isolated / "same"
    shutil.copytree(smoke_world / "model", same)
    with pytest.raises(FlameError, match="ran 0 optimizer steps"):
        check_trained(smoke_world / "model", same, {"steps": 0}, "system stage 1")
    with pytest.raises(FlameError, match="left every weight equal to the input model's"):
        check_trained(smoke_world / "model", same, {"steps": 4}, "system stage 1")


# B6: one rule for a topic missing from the knowledge source, on every path: left out, counted, never scored
def test_import_leaves_out_and_counts_a_topic_missing_from_the_knowledge(smoke_world: Path, isolated: Path) -> None:
    model = isolated / "tiny-chat"
    shutil.copytree(smoke_world / "model", model)
    (model / "flame_model.json").unlink()
    kb = isolated / "kb.jsonl"
    kb.write_text(json.dumps({"title": "Ann Lee", "text": "Ann Lee was born in 1900. Ann Lee was a writer."}) + "\n")
    rows = [{"topic": "Ann Lee", "output": "Ann Lee was born in 1900."},
            {"topic": "Nobody Known", "output": "Nobody Known was born in 1900."}]
    (isolated / "out.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    code, _, err = run_cli(["import", str(isolated / "out.jsonl"), "--name", "tool", "--knowledge", str(kb), "--llm",
                            str(model)])
    assert code == 0, err
    header = json.loads(next((isolated / "results" / "runs").glob("factscore_bio__tool__*/run.json")).read_text())
    assert header["counts"]["items"] == 1 and header["counts"]["missing_topics"] == 1
    assert header["extra"]["missing_topics"] == ["Nobody Known"]
    (isolated / "none.jsonl").write_text(json.dumps(rows[1]) + "\n")
    code, _, err = run_cli(["import", str(isolated / "none.jsonl"), "--name", "tool2", "--knowledge", str(kb),
                            "--llm", str(model)])
    assert code == 2 and "none of the 1 topics" in err and "has a page in the knowledge source" in err


def test_rm_fact_gives_no_reward_for_a_topic_missing_from_the_knowledge() -> None:
    from flame_bench.scoring.factscore import FactScoreReward, ResponseScore

    class Scorer:  # records what it is asked to score
        source: ClassVar[dict] = {"Ann Lee": []}
        identity: ClassVar[dict] = {}
        asked: ClassVar[list] = []

        def score_many(self, responses, topics, queries):
            self.asked.extend(t for ts in topics for t in ts)
            return [ResponseScore(abstained=False, facts=[{"text": "x", "supported": True}]) for _ in responses]

    reward = FactScoreReward(Scorer())
    records = [{"instruction": "Tell me about Ann Lee.", "topics": ["Ann Lee"]},
               {"instruction": "Tell me about Zed.", "topics": ["Zed"]}]
    assert reward.score_many(records, ["a", "b"]) == [1.0, None]
    assert Scorer.asked == ["Ann Lee"] and reward.stats["missing_topics"] == 1


# WEAK: each a one-line error, exit 2, nothing written; then the fixed input goes through
def _weak_cases(w: Path, tmp: Path, run: Path) -> list[tuple[list[str], str, list[str] | None]]:
    """(arguments, what the one line says, the fixed arguments that then succeed or None)."""
    (tmp / "a_file").write_text("x")
    (tmp / "outs").mkdir(exist_ok=True)
    (tmp / "seeds_bad").mkdir(exist_ok=True)
    knowledge = tmp / "home" / "data" / "wiki-leads"
    knowledge.mkdir(parents=True, exist_ok=True)
    world = ["--world", str(w)]
    return [
        (["export", str(run), "--format", "lm-eval", "--out", str(tmp / "a_file")],
         "exists and is not a folder; export --format lm-eval writes a folder",
         ["export", str(run), "--format", "lm-eval", "--out", str(tmp / "lm_eval_out")]),
        (["export-tasks", "--out", str(tmp / "a_file"), *world], "exists and is not a folder; export-tasks writes",
         ["export-tasks", "--out", str(tmp / "tasks_out"), *world]),
        (["import", str(tmp / "outs"), "--name", "x", "--knowledge", "kb.jsonl"], "is a directory; pass the", None),
        (["import", str(tmp / "a_file"), "--name", " ", "--knowledge", str(tmp / "kb.jsonl")], "--name is empty",
         None),
        (["eval", "base", "--task", "factscore_bio", "--temperature", "inf", *world],
         "--temperature must be a finite number", None),
        (["verifier-check", "--knowledge", "wiki-leads", "--n", "2"], "does not list its files (damaged or edited)",
         None),
    ]


def test_weak_inputs_get_one_line_exit_2_and_write_nothing(smoke_world: Path, isolated: Path) -> None:
    code, _, err = run_cli(["eval", "base", "--task", "truthfulqa_mc1", "--world", str(smoke_world), "--limit", "2",
                            "--quiet"])
    assert code == 0, err
    run = next((isolated / "results" / "runs").iterdir())
    (isolated / "kb.jsonl").write_text(json.dumps({"title": "A", "text": "A was born."}) + "\n")
    for manifest in ('{"files": {}}', "{}", "[]"):  # a damaged knowledge manifest, three ways
        (isolated / "home" / "data" / "wiki-leads").mkdir(parents=True, exist_ok=True)
        (isolated / "home" / "data" / "wiki-leads" / "manifest.json").write_text(manifest)
        for args, expected, fixed in _weak_cases(smoke_world, isolated, run):
            before = sorted(p for p in isolated.rglob("*") if p.is_file())
            code, _, err = run_cli(args)
            lines = [line for line in err.splitlines() if line.strip()]
            assert code == 2 and len(lines) == 1 and "Traceback" not in err, (args, err)
            assert expected in " ".join(lines[0].split()), (args, lines[0])
            assert sorted(p for p in isolated.rglob("*") if p.is_file()) == before, (args, "wrote files")
            if fixed is not None and manifest == "[]":
                code, _, err = run_cli(fixed)
                assert code == 0, (fixed, err)


# WEAK (faults): a damaged cache is only a cache: moved aside, named, and started afresh
@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_a_damaged_cache_is_moved_aside_and_started_afresh(tmp_path: Path, damage: str) -> None:
    import io

    from flame_bench.core import ui
    from flame_bench.engines.generation_cache import GenerationCache

    path = tmp_path / "generations.sqlite"
    cache = GenerationCache(path)
    cache._db.executemany("INSERT INTO generations VALUES (?, ?)", [(f"k{i}", "v" * 2000) for i in range(200)])
    cache._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    cache._db.close()
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3] if damage == "truncated" else b"SQLite format 3\x00" + b"\x07" * 5000)
    buffer = io.StringIO()
    ui.console.file = buffer
    try:
        again = GenerationCache(path)
    finally:
        ui.console.file = None
    assert again._db.execute("SELECT COUNT(*) FROM generations").fetchone()[0] == 0  # empty, usable
    aside = [p for p in tmp_path.iterdir() if ".damaged-" in p.name]
    assert len(aside) == 1 and aside[0].read_bytes()[:16] == b"SQLite format 3\x00"  # kept for inspection
    said = "".join(buffer.getvalue().split())  # rich wraps long paths
    assert "isdamaged" in said and aside[0].name in said


# WEAK (faults): a stage whose config.json was replaced is never loaded (it could build another, huge model)
def test_a_stage_with_a_replaced_config_is_refused_before_loading(tmp_path: Path) -> None:
    from flame_bench.alignment.stages import model_files, stage_problem
    from flame_bench.core.io import write_json

    stage = tmp_path / "stage"
    (stage / "model").mkdir(parents=True)
    (stage / "model" / "config.json").write_text('{"model_type": "llama", "vocab_size": 542}')
    (stage / "model" / "model.safetensors").write_bytes(b"weights")
    write_json(stage / "stage.json", {"model_files": model_files(stage / "model")})
    assert stage_problem(stage) is None
    (stage / "model" / "config.json").write_text('{"model_type": "llama", "vocab_size": 5}')
    assert stage_problem(stage) == "model/config.json does not match its recorded sha256"
    (stage / "model" / "pytorch_model.bin").write_bytes(b"x")
    write_json(stage / "stage.json", {"model_files": {}})
    assert "records no model file hashes" in stage_problem(stage)


# WEAK (views): a NaN metric is flagged on the leaderboard; a committed board keeps the cells it cannot recompute
def test_a_nan_metric_is_shown_as_invalid_never_as_a_number(tmp_path: Path) -> None:
    from flame_bench.reports.leaderboard import write_leaderboard

    _run(tmp_path / "runs", "flame", "factscore_bio", float("nan"), "2026-01-01T00:00:01")
    write_leaderboard(tmp_path / "runs", tmp_path)
    board = (tmp_path / "leaderboard.md").read_text()
    assert "invalid: nan (run factscore_bio__flame__01)" in board and "| nan" not in board


def test_a_board_never_loses_a_row_it_cannot_recompute(tmp_path: Path) -> None:
    from flame_bench.reports.leaderboard import write_leaderboard

    committed, fresh = tmp_path / "committed_runs", tmp_path / "fresh_runs"
    _run(committed, "baseline", "factscore_bio", 0.40, "2026-01-01T00:00:01")
    _run(committed, "flame", "factscore_bio", 0.50, "2026-01-01T00:00:02")
    write_leaderboard(committed, tmp_path)  # the board as committed
    _run(fresh, "flame", "factscore_bio", 0.55, "2026-01-02T00:00:03")  # a fresh clone re-ran flame only
    _, rows = write_leaderboard(fresh, tmp_path)
    by_model = {r["model"]: r["factscore_bio"] for r in rows}
    assert by_model["flame"]["value"] == 0.55 and not by_model["flame"].get("kept")  # the local run wins
    assert by_model["baseline"]["value"] == 0.40 and by_model["baseline"]["kept"]  # kept, and marked
    assert "40.0 (n=1, run not in this results/runs)" in (tmp_path / "leaderboard.md").read_text()


# WEAK (views): compare never leaves an older .html beside newer records; a damaged comparison JSON is one line
def test_an_existing_html_page_is_regenerated_with_the_records(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                               ) -> None:
    import statistics

    from flame_bench.experiments.compare import save_comparison
    from flame_bench.reports.comparison import SystemResult, deltas

    monkeypatch.setenv("FLAME_BENCH_RESULTS", str(tmp_path / "results"))
    from test_compare import BASE_FS, FLAME_FS, _record

    systems = []
    for name, fs in (("baseline", BASE_FS), ("flame", FLAME_FS)):
        r = SystemResult(name, name, tmp_path, [])
        r.runs = {"factscore_bio": _record(tmp_path / "runs", name, "factscore_bio", "factscore",
                                           statistics.mean(v for v in fs.values() if v is not None), fs,
                                           "factscore")}
        systems.append(r)

    class Source:
        name, spec, fingerprint, knowledge = "w", {"kind": "test"}, {}, None

    out = save_comparison(systems, deltas(systems), Source(), 0)
    page = out.with_name(out.name + ".html")
    assert not page.exists()  # not asked for, none there: none written
    page.write_text("<html>older numbers</html>")
    save_comparison(systems, deltas(systems), Source(), 0)
    assert "older numbers" not in page.read_text() and "flame" in page.read_text()


def test_seeds_over_a_damaged_comparison_is_one_line(isolated: Path) -> None:
    folder = isolated / "results" / "comparisons"
    folder.mkdir(parents=True)
    (folder / "baseline_vs_flame__w__seed0.json").write_text('{"systems": "x"}')
    code, _, err = run_cli(["seeds", "baseline", "flame", "--seed", "0", "--world", "w"])
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and "'systems' is not a list of systems" in lines[0], err


# WEAK (other): --limit covering every item is the full run; report --html leaves out a run without samples
def test_a_limit_covering_every_item_is_not_limited_and_html_skips_unreadable_runs(smoke_world: Path,
                                                                                   isolated: Path) -> None:
    code, _, err = run_cli(["eval", "base", "--task", "truthfulqa_mc1", "--world", str(smoke_world), "--limit",
                            "1000000000", "--quiet"])
    assert code == 0, err
    full = next((isolated / "results" / "runs").iterdir())
    assert json.loads((full / "run.json").read_text())["limit"] is None
    code, _, err = run_cli(["eval", "base", "--task", "truthfulqa_mc2", "--world", str(smoke_world), "--limit", "2",
                            "--quiet"])
    assert code == 0, err
    limited = next(p for p in (isolated / "results" / "runs").iterdir() if p != full)
    assert json.loads((limited / "run.json").read_text())["limit"] == 2
    (limited / "samples.jsonl").unlink()
    code, out, err = run_cli(["report", "--html"])
    assert code == 0, err
    assert "left out of the HTML page" in " ".join((out + err).split())
    assert list((isolated / "results" / "reports").glob("*.html"))


# WEAK (faults): a run interrupted after its last step (disk full while saving) resumes with the real train loss
def test_a_stage_interrupted_after_its_last_step_keeps_its_train_loss(smoke_world: Path, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from transformers import TrainerCallback

    import flame_bench.alignment.training as training
    from flame_bench.alignment.stages import run_stage
    from flame_bench.core.registry import RECIPES
    from flame_bench.engines.generation_cache import GenerationCache
    from flame_bench.world.source import WorldSource

    world = WorldSource.open(smoke_world)
    RECIPES.names()  # load the recipe modules, then make them checkpoint every 5 steps (the last one included)
    real_config, real_progress = training.trl_config, training.progress_callback
    monkeypatch.setattr(training, "trl_config", lambda *a, **k: real_config(*a, **{**k, "save_steps": 5}))

    class FullDisk(TrainerCallback):
        def on_train_end(self, args, state, control, **kwargs):
            raise OSError(28, "No space left on device")

    monkeypatch.setattr(training, "progress_callback", lambda label, quiet: FullDisk())
    cache, config = GenerationCache(tmp_path / "cache.sqlite"), {"epochs": 1, "batch_size": 4}
    with pytest.raises(OSError):
        run_stage("sft", config, world.base_model(), world, 0, cache, root=tmp_path)
    assert (next(tmp_path.glob(".sft-*.partial")) / "model.trainer" / "checkpoint-15").is_dir()
    monkeypatch.setattr(training, "progress_callback", real_progress)
    _, record = run_stage("sft", config, world.base_model(), world, 0, cache, root=tmp_path)
    stats = record["stats"]
    assert stats["resumed_from"].endswith("checkpoint-15") and stats["steps"] == 15
    assert stats["train_loss"] is not None and stats["train_loss"] > 0.0  # the logged losses, not the resumed 0.0


# WEAK (faults): a results folder sqlite cannot write to is one line naming the cache and the fix
def test_a_cache_that_cannot_be_written_is_one_line(smoke_world: Path, isolated: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    import sqlite3

    real_connect = sqlite3.connect

    def read_only(path, *args, **kwargs):  # what sqlite meets in a folder it may not write (root ignores chmod)
        return real_connect(f"file:{path}?mode=ro", *args, uri=True, **kwargs)

    monkeypatch.setattr(sqlite3, "connect", read_only)
    code, _, err = run_cli(["eval", "base", "--task", "factscore_bio", "--world", str(smoke_world), "--limit", "2",
                            "--quiet"])
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert "choose a writable FLAME_BENCH_RESULTS" in lines[0]
    assert not [p for p in isolated.rglob("*") if p.is_file()]
    monkeypatch.setattr(sqlite3, "connect", real_connect)
    assert run_cli(["eval", "base", "--task", "factscore_bio", "--world", str(smoke_world), "--limit", "2",
                    "--quiet"])[0] == 0
