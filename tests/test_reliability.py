"""Ways to lose or falsify results, each reproduced as a user would hit it (the reliability issue's catalogue)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import run_cli


def test_force_never_deletes_a_directory_that_is_not_a_world(isolated: Path) -> None:
    mine = isolated / "my_thesis"
    mine.mkdir()
    (mine / "chapter1.tex").write_text("years of work")
    code, _, err = run_cli(["world", "build", "--preset", "smoke", "--out", str(mine), "--force", "--quiet"])
    assert code == 2 and "is not a flame-bench world (no manifest.json), so --force will not replace it" in err
    assert (mine / "chapter1.tex").read_text() == "years of work"


def test_credentials_in_an_endpoint_url_never_reach_errors_or_records(isolated: Path, smoke_world: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from flame_bench.real.source import RealSpec

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("FLAME_BENCH_LLM_MODEL", "judge")
    url = f"http://alice:s3cret-PASS@127.0.0.1:{port}/v1"
    ref = isolated / "ref.json"
    ref.write_text(json.dumps([{"instruction": "Hi.", "output": "Hello.", "generator": "x"}]))
    model = isolated / "plain"
    shutil.copytree(smoke_world / "model", model)
    (model / "flame_model.json").unlink()
    code, out, err = run_cli(["eval", str(model), "--task", "alpaca_winrate", "--alpaca-eval", str(ref), "--llm", url,
                              "--quiet"])
    assert code == 2 and "connection refused" in err and "***@127.0.0.1" in err and "s3cret-PASS" not in err + out
    from flame_bench.engines.llm.client import OpenAIBackend

    backend = OpenAIBackend(url, "judge", max_retries=1, backoff=0.0)
    assert "s3cret" not in repr(backend) and "s3cret" not in json.dumps(backend.identity)
    with pytest.raises(Exception) as failure:
        backend.complete(["ping"], max_tokens=1)
    assert "s3cret" not in str(failure.value) and "***@127.0.0.1" in str(failure.value)
    assert "s3cret" not in json.dumps(RealSpec(llm=url, roles={"judge": url}).to_dict())


def test_a_manifest_that_lists_no_files_is_not_a_world(smoke_world: Path, isolated: Path) -> None:
    world = isolated / "w"
    shutil.copytree(smoke_world, world)
    manifest = json.loads((world / "manifest.json").read_text())
    (world / "manifest.json").write_text(json.dumps({**manifest, "files": {}}))
    lines = (world / "eval" / "bio.jsonl").read_text().splitlines()
    (world / "eval" / "bio.jsonl").write_text("\n".join(lines[:3]) + "\n")  # truncated, unnoticed without hashes
    code, _, err = run_cli(["eval", "base", "--task", "factscore_bio", "--world", str(world)])
    assert code == 2 and "its manifest does not list pools.json" in err


def test_export_refuses_to_replace_a_link_or_a_device(smoke_world: Path, isolated: Path) -> None:
    code, _, err = run_cli(["eval", "base", "--task", "alpaca_winrate", "--world", str(smoke_world), "--limit", "2",
                            "--quiet"])
    assert code == 0, err
    run = next((isolated / "results" / "runs").iterdir())
    target = isolated / "precious.txt"
    target.write_text("keep me")
    link = isolated / "out.json"
    link.symlink_to(target)
    code, _, err = run_cli(["export", run.name, "--out", str(link)])
    assert code == 2 and "is not a regular file" in err and target.read_text() == "keep me" and link.is_symlink()
    if os.path.exists("/dev/null"):
        code, _, err = run_cli(["export", run.name, "--out", "/dev/null"])
        assert code == 2 and "is not a regular file" in err and Path("/dev/null").is_char_device()


def test_pretraining_zero_steps_is_refused_and_writes_nothing(smoke_world: Path, isolated: Path) -> None:
    out = isolated / "pt"
    code, _, err = run_cli(["pretrain", "--world", str(smoke_world), "--out", str(out), "--steps", "0"])
    assert code == 2 and "--steps" in err and not out.exists()
    from flame_bench.world.presets import ModelSpec
    from flame_bench.world.pretrain import pretrain

    with pytest.raises(Exception, match="at least 1 step"):
        pretrain(["a b c"], None, ModelSpec(steps=0), out, 0)
    assert not out.exists()


def test_evaluating_a_model_of_another_world_is_refused(smoke_world: Path, isolated: Path) -> None:
    from flame_bench.world.tokenizer import build_tokenizer

    other = isolated / "other-world-model"
    shutil.copytree(smoke_world / "model", other)
    build_tokenizer(["Alpha beta gamma."]).save_pretrained(other)  # the tokenizer of another world
    code, _, err = run_cli(["eval", str(other), "--task", "factscore_bio", "--world", str(smoke_world)])
    assert code == 2 and "cannot encode this world's text" in err
    assert not (isolated / "results" / "runs").exists()  # no FActScore 0.0 on any board


def test_a_pickle_beside_the_safetensors_is_never_loaded(smoke_world: Path, isolated: Path) -> None:
    import pickle

    model = isolated / "m"
    shutil.copytree(smoke_world / "model", model)
    marker = isolated / "pwned"

    class Payload:
        def __reduce__(self):
            return (Path.write_text, (marker, "the pickle ran"))

    (model / "pytorch_model.bin").write_bytes(pickle.dumps(Payload()))
    code, _, err = run_cli(["eval", str(model), "--task", "truthfulqa_mc1", "--task", "factscore_bio", "--world",
                            str(smoke_world), "--limit", "2", "--quiet"])
    assert code == 0, err
    assert not marker.exists()  # neither lm-eval's HFLM nor generation touched the pickle
    # the weights under another name (an adapter's, say): transformers alone would fall back to the pickle
    (model / "model.safetensors").rename(model / "adapter.safetensors")
    code, _, err = run_cli(["eval", str(model), "--task", "truthfulqa_mc1", "--world", str(smoke_world), "--limit",
                            "2", "--quiet"])
    assert code == 2 and "pickle weights (pytorch_model.bin) but no model.safetensors" in err
    assert not marker.exists()


def test_a_judging_run_killed_midway_resumes_with_only_the_missing_calls(tmp_path: Path) -> None:
    from flame_bench.engines.llm.cache import CachedBackend, LLMCache

    class Flaky:
        cache_chunk = 4

        def __init__(self, die_after: int | None):
            self.sent, self.die_after = 0, die_after
            self.identity = {"kind": "scripted", "model": "judge"}

        def complete(self, prompts, max_tokens=128, temperature=0.0, stop=(), seed=None):
            if self.die_after is not None and self.sent >= self.die_after:
                raise KeyboardInterrupt  # the process is killed mid-way
            self.sent += len(prompts)
            return [f"answer to {p}" for p in prompts]

    prompts = [f"q{i}" for i in range(10)]
    first = Flaky(die_after=8)
    with pytest.raises(KeyboardInterrupt):
        CachedBackend(first, LLMCache(tmp_path / "llm.sqlite")).complete(prompts)
    assert first.sent == 8
    second = Flaky(die_after=None)
    out = CachedBackend(second, LLMCache(tmp_path / "llm.sqlite")).complete(prompts)
    assert second.sent == 2 and out == [f"answer to {p}" for p in prompts]  # only the 2 missing calls


def test_generations_are_committed_batch_by_batch(tmp_path: Path) -> None:
    from flame_bench.engines.generation_cache import GenerationCache

    cache = GenerationCache(tmp_path / "g.sqlite")

    def dies_after_one_batch(todo, on_batch):
        on_batch(todo[:2], [["a"], ["b"]])
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        cache.generate("model", {}, ["p1", "p2", "p3"], dies_after_one_batch)
    asked: list[str] = []

    def finish(todo, on_batch):
        asked.extend(todo)
        on_batch(todo, [["c"]])

    assert cache.generate("model", {}, ["p1", "p2", "p3"], finish) == [["a"], ["b"], ["c"]]
    assert asked == ["p3"]


def _bad_inputs(w: Path, tmp: Path) -> list[tuple[list[str], str]]:
    """(arguments, what the one line must say) for bad input to every command."""
    (tmp / "latin1.yaml").write_bytes("name: caf\xe9\n".encode("latin-1"))
    (tmp / "fast.yaml").write_text("name: fast\ndescription: x\nbase_model: base\nstages:\n  - recipe: sft\n"
                                   "    config: {learning_rate: fast}\n")
    (tmp / "twice.yaml").write_text("name: twice\ndescription: x\nbase_model: base\nstages:\n  - recipe: sft\n"
                                    "stages:\n  - recipe: dpo\n")
    (tmp / "negative.yaml").write_text("name: negative\ndescription: x\nbase_model: base\nstages:\n"
                                       "  - recipe: sft\n    config: {epochs: -3}\n")
    (tmp / "a_file").write_text("x")
    (tmp / "a_dir").mkdir(exist_ok=True)
    world = ["--world", str(w)]
    return [
        (["eval", "base", "--task", "factscore_bio", "--seed", "99999999999999999999", *world], "--seed"),
        (["eval", "base", "--task", "factscore_bio", "--batch-size", "0", *world], "--batch-size"),
        (["eval", "base", "--task", "factscore_bio", "--max-new-tokens", "-1", *world], "--max-new-tokens"),
        (["eval", "base", "--task", "factscore_bio", "--temperature", "-1", *world], "--temperature"),
        (["eval", "base", "--task", "factscore_bio", "--top-p", "5", *world], "--top-p"),
        (["eval", "base", "--task", "factscore_bio", "--top-p", "0", *world], "--top-p must be in (0, 1]"),
        (["eval", "base", "--task", "factscore_bio", "--limit", "0", *world], "--limit"),
        (["eval", "base", "--task", "truthfulqa_mc1", "--lm-backend", "prefx", *world], "did you mean 'prefix'"),
        (["eval", "base", "--task", "truthfulqa_mc1", "--lm-batch-size", "0", *world], "--lm-batch-size"),
        (["eval", "base", "--task", "factscore_bio", "--verifier", "nli", *world], "--verifier is for real data"),
        (["verifier", "train", "--max-length", "8"], "--max-length"),
        (["judge-check", "--n", "0"], "--n"),
        (["--workers", "0", "list"], "--workers"),
        (["eval", "base", "--task", "factscor", *world], "did you mean 'factscore_bio'"),
        (["eval", "", "--task", "factscore_bio", *world], "empty model name"),
        (["eval", "base", "--task", "factscore_bio", "--world", str(w / "manifest.json")], "is a file"),
        (["eval", "base", "--task", "alpaca_winrate", "--reference", "no_such_run", *world],
         "is not 'human', a run id"),
        (["eval", "base", "--task"], "requires an argument"),
        (["eval"], "Missing argument 'model'"),
        (["serve", "smollm2", "--port", "99999"], "--port"),
        (["pretrain", "--out", str(tmp / "a_file"), *world], "is not a directory"),
        (["pretrain", "--out", str(tmp / "pt"), "--steps", "0", *world], "--steps"),
        (["compare", str(tmp / "latin1.yaml"), "sft", *world], "not UTF-8"),
        (["compare", "sft", str(tmp / "fast.yaml"), *world], "learning_rate must be float, got 'fast'"),
        (["compare", "sft", str(tmp / "twice.yaml"), *world], "key 'stages' is given twice"),
        (["compare", "sft", str(tmp / "negative.yaml"), *world], "epochs must be a positive number, got -3"),
        (["compare", "sft", "sft_flame", "--task", "bogus", *world], "unknown task 'bogus'"),
        (["compare", "sft", *world], "compare needs at least two systems"),
        (["world", "build", "--preset", "bogus"], "unknown preset 'bogus'"),
        (["world", "probe", "--per-tier", "0", *world], "--per-tier"),
        (["report", str(tmp / "a_dir")], "no run record at"),
        (["report", "--format", "xml"], "unknown format 'xml'"),
        (["leaderboard"], "no run records"),
        (["export", "nope", "--out", str(tmp / "o.json")], "no run record at nope"),
        (["rescore", "nope"], "no run record at nope"),
        (["data", "fetch", "bogus"], "unknown dataset 'bogus'"),
        (["models", "add", "bogus"], "unknown installable model 'bogus'"),
        (["models", "remove", "bogus"], "unknown installed model 'bogus'"),
        (["seeds", "a", "b", "--seed", "-1"], "--seed"),
        (["seeds", "a", "b", "--seed", "0"], "no saved comparison of a, b"),
        (["verifier-check", "--n", "0"], "--n"),
        (["bench", "--world", "/nonexistent/w"], "no world at /nonexistent/w"),
        (["gate", "--update"], "needs --note"),
        (["bogus-command"], "No such command"),
    ]


def test_every_command_answers_bad_input_with_one_line_and_writes_nothing(smoke_world: Path, isolated: Path) -> None:
    results = isolated / "results"
    for args, expected in _bad_inputs(smoke_world, isolated):
        code, _, err = run_cli(args)
        lines = [line for line in err.splitlines() if line.strip()]
        assert code == 2, (args, code, err)
        assert len(lines) == 1 and "Traceback" not in err, (args, err)
        assert expected in lines[0], (args, lines[0])
        assert not results.exists() or not any(p for p in results.rglob("*") if p.is_file()), (args, "wrote files")


def run_concurrent_compares(world: Path, results: Path, systems: tuple[str, ...] = ("baseline", "flame"),
                            extra: tuple[str, ...] = ()) -> list[subprocess.CompletedProcess]:
    """Two identical `compare` processes started together on one empty results tree."""
    env = {**os.environ, "FLAME_BENCH_RESULTS": str(results)}
    args = [sys.executable, "-m", "flame_bench.cli", "compare", *systems, "--world", str(world), "--quiet", *extra]
    procs = [subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for _ in range(2)]
    return [subprocess.CompletedProcess(args, p.wait(timeout=900), *p.communicate()) for p in procs]


def test_two_concurrent_compares_share_one_cache_safely(smoke_world: Path, isolated: Path) -> None:
    results = isolated / "results"
    a, b = run_concurrent_compares(smoke_world, results, extra=("--task", "factscore_bio", "--task", "alpaca_winrate"))
    assert a.returncode == 0 and b.returncode == 0, (a.stderr[-800:], b.stderr[-800:])
    table = [line for line in a.stdout.splitlines() if "│" in line]
    assert table and table == [line for line in b.stdout.splitlines() if "│" in line]  # identical tables
    stages = sorted((results / "systems" / "stages").glob("*/stage.json"))
    assert len(stages) == 4  # each stage trained and published once, never twice, never half
    for record in stages:
        assert (record.parent / "model" / "model.safetensors").is_file()
        if "dpo" in record.parent.name:
            assert (record.parent / "pairs.jsonl").is_file()
    assert not list((results / "systems" / "stages").glob(".*.partial"))


def test_a_limited_comparison_gets_files_of_its_own() -> None:
    from flame_bench.experiments.compare import comparison_name

    full = comparison_name(["baseline", "flame"], "default-s0", 0)
    assert full == "baseline_vs_flame__default-s0__seed0"
    assert comparison_name(["baseline", "flame"], "default-s0", 0, limit=2) == full + "__limit2"


def test_the_world_identity_ignores_build_timings(smoke_world: Path, isolated: Path) -> None:
    """Two builds of one preset and seed on any machine have one identity, so stage caches and goldens travel."""
    from flame_bench.core.io import sha256_file
    from flame_bench.world.store import WorldDir

    other = isolated / "w"
    shutil.copytree(smoke_world, other)
    record = other / "model" / "flame_model.json"
    record.write_text(record.read_text().replace('"wall_seconds"', '"wall_seconds_elsewhere"'))
    manifest = json.loads((other / "manifest.json").read_text())
    manifest["files"]["model/flame_model.json"] = sha256_file(record)
    (other / "manifest.json").write_text(json.dumps(manifest))
    assert WorldDir.open(other).content_sha256 == WorldDir.open(smoke_world).content_sha256


def test_damaged_records_and_weights_are_one_line_and_never_block_the_others(smoke_world: Path,
                                                                            isolated: Path) -> None:
    code, _, err = run_cli(["eval", "base", "--task", "factscore_bio", "--world", str(smoke_world), "--limit", "2",
                            "--quiet"])
    assert code == 0, err
    runs = isolated / "results" / "runs"
    for name, header in (("no_model", {"schema_version": 1, "task": {"name": "x"}, "metrics": {}}),
                         ("string_metric", {"schema_version": 1, "task": {"name": "x"}, "model": {"name": "m"},
                                            "metrics": {"factscore": "high"}})):
        (runs / name).mkdir()
        (runs / name / "run.json").write_text(json.dumps(header))
    code, _, err = run_cli(["leaderboard", "--write"])
    assert code == 0 and "| base |" in (isolated / "results" / "leaderboard.md").read_text()
    assert "skipped" in err and "no model name" in err and "metric 'factscore' is not a number" in err
    model = isolated / "flipped"
    shutil.copytree(smoke_world / "model", model)
    weights = bytearray((model / "model.safetensors").read_bytes())
    weights[:8] = b"\xff" * 8  # the header length: garbage
    (model / "model.safetensors").write_bytes(bytes(weights))
    code, _, err = run_cli(["eval", str(model), "--task", "factscore_bio", "--world", str(smoke_world), "--quiet"])
    assert code == 2 and "cannot load the weights" in err and "Traceback" not in err


def test_serve_refuses_a_huge_announced_body() -> None:
    import http.client

    from flame_bench.engines.llm.serve import MAX_REQUEST_BYTES, make_server

    class Echo:
        name = "echo"

    server = make_server(Echo(), port=0)
    import threading

    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=10)
        conn.putrequest("POST", "/v1/completions")
        conn.putheader("Content-Length", str(MAX_REQUEST_BYTES * 1000))
        conn.endheaders()
        reply = conn.getresponse()
        assert reply.status == 413
    finally:
        server.shutdown()
        server.server_close()


def test_two_world_builds_into_one_directory_at_once(isolated: Path) -> None:
    out = isolated / "w"
    env = {**os.environ, "FLAME_BENCH_RESULTS": str(isolated / "results")}
    args = [sys.executable, "-m", "flame_bench.cli", "world", "build", "--preset", "smoke", "--out", str(out),
            "--quiet"]
    procs = [subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for _ in range(2)]
    codes = [p.wait(timeout=600) for p in procs]
    assert codes == [0, 0], [p.stderr.read()[-500:] for p in procs]
    from flame_bench.world.store import WorldDir

    WorldDir.open(out)  # complete and verified
    # no staging left behind; only the world's lock file (readers share it, a rebuild takes it alone)
    assert [p.name for p in isolated.iterdir() if p.name.startswith(".w.")] == [".w.readers"]


def test_a_planted_pickle_in_an_interrupted_stage_never_runs(smoke_world: Path, isolated: Path) -> None:
    """Resuming loads trainer state from the stage's `.partial` folder: a pickle planted there must not execute,
    and the refusal is one line naming the folder to delete."""
    import pickle

    from flame_bench.alignment.stages import make_config, stage_key
    from flame_bench.core.errors import FlameError
    from flame_bench.core.registry import RECIPES
    from flame_bench.engines.generation_cache import GenerationCache
    from flame_bench.world.source import WorldSource

    source = WorldSource.open(smoke_world)
    recipe = RECIPES.get("sft")
    key = stage_key(recipe, make_config(recipe, {"epochs": 1}, "test"), source.base_model(), source, 0)[0]
    checkpoint = isolated / "stages" / f".sft-{key[:12]}.partial" / "model.trainer" / "checkpoint-2"
    checkpoint.mkdir(parents=True)
    marker = isolated / "pwned"

    class Payload:
        def __reduce__(self):
            return (Path.write_text, (marker, "the pickle ran"))

    for name in ("optimizer.pt", "scheduler.pt", "rng_state.pth", "training_args.bin"):
        (checkpoint / name).write_bytes(pickle.dumps(Payload()))
    (checkpoint / "trainer_state.json").write_text(json.dumps({"global_step": 2, "log_history": []}))
    shutil.copy(smoke_world / "model" / "config.json", checkpoint / "config.json")
    shutil.copy(smoke_world / "model" / "model.safetensors", checkpoint / "model.safetensors")
    from flame_bench.alignment.stages import run_stage

    with pytest.raises(FlameError, match=r"cannot resume from the checkpoint .*checkpoint-2 .*delete"):
        run_stage("sft", {"epochs": 1}, source.base_model(), source, 0, GenerationCache(isolated / "c.sqlite"),
                  quiet=True, root=isolated / "stages")
    assert not marker.exists()
