"""The smoke world's base model: loads as a standard HF checkpoint, works with lm-eval, knows its facts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import run_cli

from flame_bench.world.store import WorldDir


def test_smoke_world_is_complete(smoke_world: Path) -> None:
    wd = WorldDir.open(smoke_world)
    files = set(wd.manifest["files"])
    assert {"model/model.safetensors", "model/config.json", "model/tokenizer.json"} <= files
    assert not any(f.endswith((".bin", ".pt", ".pkl")) for f in files)  # safetensors only
    record = json.loads((smoke_world / "model" / "flame_model.json").read_text())
    assert record["spec"] == wd.manifest["preset"]["model"]  # budgets recorded with the model
    assert record["final_loss"] < 2.0


def test_tokenizer_round_trips_world_text(smoke_world: Path) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(smoke_world / "model")
    wd = WorldDir.open(smoke_world)
    texts = [d["text"] for d in wd.records("corpus")[:200]]
    texts += [r["response"] for r in wd.records("seed_instructions")]
    texts += [r["instruction"] for r in wd.records("eval_alpaca")]
    for text in texts:
        ids = tok(text, add_special_tokens=False)["input_ids"]
        assert tok.unk_token_id not in ids, text
        assert tok.decode(ids) == text
    assert tok.convert_ids_to_tokens(tok("Ada")["input_ids"])[0] == "<s>"
    chat = tok.apply_chat_template([{"role": "user", "content": "List 2 colors."}], tokenize=False,
                                   add_generation_prompt=True)
    assert chat == "<|user|> List 2 colors. </s> <|assistant|> "
    assert tok.padding_side == "left" and tok.pad_token_id != tok.eos_token_id


def test_checkpoint_loads_with_automodel_and_generates(smoke_world: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(smoke_world / "model")
    model = AutoModelForCausalLM.from_pretrained(smoke_world / "model", use_safetensors=True)
    person = next(p for p in WorldDir.open(smoke_world).people if p["tier"] == "frequent")
    enc = tok([f"Question: Tell me a bio of {person['name']}. Answer:"], return_tensors="pt")
    with torch.inference_mode():
        out = model.generate(**enc, max_new_tokens=30, do_sample=False)
    text = tok.decode(out[0, enc["input_ids"].shape[1]:], skip_special_tokens=True)
    assert len(text.split()) > 3


def test_lm_eval_hf_backend_scores_loglikelihood_offline(smoke_world: Path) -> None:
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    lm = HFLM(pretrained=str(smoke_world / "model"), device="cpu", batch_size=4, dtype="float32")
    wd = WorldDir.open(smoke_world)
    person = next(p for p in wd.people if p["tier"] == "frequent")
    ctx = f"Question: When was {person['name']} born? Answer:"
    true = f" {person['name']} was born in {person['attributes']['birth_year']}."
    other = str(int(person["attributes"]["birth_year"]) + 1)
    false = f" {person['name']} was born in {other}."
    reqs = [Instance(request_type="loglikelihood", doc={}, arguments=(ctx, c), idx=i)
            for i, c in enumerate((true, false))]
    (ll_true, _), (ll_false, _) = lm.loglikelihood(reqs)
    assert ll_true < 0 and ll_false < 0
    assert ll_true > ll_false  # the model knows a frequent person's birth year


def test_probe_shows_the_tier_regime(smoke_world: Path) -> None:
    report = smoke_world.parent / "p.json"
    code, out, err = run_cli(["world", "probe", "--world", str(smoke_world), "--json", str(report)])
    assert code == 0, err
    assert "Knowledge probe" in out and "frequent" in out
    result = json.loads(report.read_text())
    tiers = result["tiers"]
    assert tiers["frequent"]["precision"] > tiers["unseen"]["precision"]
    assert tiers["frequent"]["recall"] > tiers["unseen"]["recall"]
    assert all(s["output"] for s in result["samples"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["world", "build", "--preset", "defualt"], "unknown preset 'defualt'; did you mean 'default'"),
        (["world", "probe", "--world", "/nonexistent/w"], "no world at /nonexistent/w"),
    ],
)
def test_cli_errors_are_one_line(args: list[str], message: str) -> None:
    code, _, err = run_cli(args)
    assert code == 2
    assert message in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_build_refuses_non_empty_output(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("precious")
    code, _, err = run_cli(["world", "build", "--preset", "smoke", "--out", str(tmp_path), "--quiet"])
    assert code == 2 and "is not empty; pass --force" in err
    assert (tmp_path / "keep.txt").read_text() == "precious"


def test_build_refuses_unwritable_output(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, _, err = run_cli(["world", "build", "--preset", "smoke", "--out", str(blocker / "w"), "--quiet"])
    assert code == 2 and "cannot write to" in err and "Traceback" not in err


def test_probe_rejects_partial_world(smoke_world: Path, tmp_path: Path) -> None:
    import shutil

    partial = tmp_path / "partial"
    shutil.copytree(smoke_world, partial)
    (partial / "model" / "model.safetensors").unlink()
    code, _, err = run_cli(["world", "probe", "--world", str(partial)])
    assert code == 2 and "is missing model/model.safetensors" in err


def test_interrupted_build_leaves_no_world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from flame_bench.world import pretrain

    def crash(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(pretrain, "pretrain", crash)
    out = tmp_path / "w"
    code, _, err = run_cli(["world", "build", "--preset", "smoke", "--out", str(out), "--quiet"])
    assert code == 130 and "interrupted" in err
    assert not out.exists()  # only a hidden .partial staging directory remains
    code, _, err = run_cli(["world", "probe", "--world", str(out)])
    assert code == 2 and "no world at" in err
