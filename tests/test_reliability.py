"""Ways to lose or falsify results, each reproduced as a user would hit it (the reliability issue's catalogue)."""

from __future__ import annotations

import json
import os
import shutil
import socket
from pathlib import Path

import pytest
from conftest import run_cli


@pytest.fixture()
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FLAME_BENCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("FLAME_BENCH_RESULTS", str(tmp_path / "results"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


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
    from flame_bench.llm.client import OpenAIBackend

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
    assert code == 2 and "--steps must be at least 1" in err and not out.exists()
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
