"""The field's own tools on our numbers: lm-eval runs our exported TruthfulQA tasks to the same MC1/MC2, AlpacaEval's
annotator config judges a win rate through `flame-bench serve`, and alpaca_eval's metric code recomputes the exported
annotations to the same win rate and standard error."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import run_cli, serving

CHAT_TEMPLATE = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
                 "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def tiny_judge_model(out: Path) -> Path:
    """A random 2-layer Phi with a byte-level BPE tokenizer whose LM-head bias puts "m" and "M" among the top five
    next tokens; which of the two is likelier still depends on the prompt (random weights)."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PhiConfig, PhiForCausalLM, PreTrainedTokenizerFast

    torch.manual_seed(0)
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    corpus = ["Which output is better? The model identifier m or M.", "Tell me about the world, please."] * 20
    bpe.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=300, special_tokens=["<|im_start|>", "<|im_end|>"],
                                                        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token="<|im_start|>", eos_token="<|im_end|>",
                                  pad_token="<|im_end|>")
    tok.chat_template = CHAT_TEMPLATE
    model = PhiForCausalLM(PhiConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                     num_attention_heads=4, max_position_embeddings=4096,
                                     bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                                     pad_token_id=tok.pad_token_id))
    with torch.no_grad():
        for token in ("m", "M"):
            model.lm_head.bias[tok.convert_tokens_to_ids(token)] = 6.0
    model.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    return out


@pytest.fixture()
def served_judge(tmp_path) -> Iterator[tuple[str, Path]]:
    from flame_bench.engines.llm.backends import HFBackend

    model = tiny_judge_model(tmp_path / "judge_model")
    with serving(HFBackend(model, name="tiny-judge")) as url:
        yield url, model


def test_alpaca_eval_annotator_through_serve_and_alpaca_eval_recomputes_the_win_rate(served_judge, tmp_path,
                                                                                     monkeypatch):
    from alpaca_eval.metrics import get_winrate  # a dev dependency (pyproject)

    url, model = served_judge
    items = [{"instruction": f"Tell me about topic {i}.", "output": f"Topic {i} is a thing that matters.",
              "generator": "human"} for i in range(12)]
    (tmp_path / "alpaca.json").write_text(json.dumps(items))
    monkeypatch.setenv("FLAME_BENCH_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("FLAME_BENCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("FLAME_BENCH_LLM_MODEL", "tiny-judge")
    code, _, err = run_cli(["eval", str(model), "--task", "alpaca_winrate", "--alpaca-eval",
                              str(tmp_path / "alpaca.json"), "--llm", url, "--max-new-tokens", "12",
                              "--judge", "alpaca_eval:weighted_alpaca_eval_gpt4_turbo", "--quiet"])
    assert code == 0, err
    (run_dir,) = list((tmp_path / "results" / "runs").glob("alpaca_winrate__*"))
    header = json.loads((run_dir / "run.json").read_text())
    assert header["judge"]["name"] == "alpaca_eval:weighted_alpaca_eval_gpt4_turbo"
    samples = [json.loads(x) for x in (run_dir / "samples.jsonl").read_text().splitlines()[1:]]
    assert all("Preference:" in s["raw"] for s in samples if s["judged"])  # alpaca_eval's logprob_parser read it
    prefs = {round(s["preference"], 6) for s in samples if s["judged"]}
    assert len(prefs) > 3 and all(1 < p < 2 for p in prefs)  # weighted, content-dependent preferences

    code, _, err = run_cli(["export", str(run_dir), "--format", "annotations", "--out", str(tmp_path / "ann.json")])
    assert code == 0, err
    theirs = get_winrate(json.loads((tmp_path / "ann.json").read_text()))
    ours = header["metrics"]
    assert math.isclose(theirs["win_rate"], 100 * ours["win_rate"], rel_tol=1e-9, abs_tol=1e-9)
    assert math.isclose(theirs["standard_error"], 100 * ours["standard_error"], rel_tol=1e-9, abs_tol=1e-9)
    assert theirs["n_total"] == len(samples)


def test_lm_eval_runs_our_exported_truthfulqa_tasks_to_the_same_numbers(smoke_world, tmp_path, monkeypatch):
    tasks_dir = tmp_path / "tasks"
    code, _, err = run_cli(["export-tasks", "--world", str(smoke_world), "--out", str(tasks_dir)])
    assert code == 0, err
    monkeypatch.setenv("FLAME_BENCH_RESULTS", str(tmp_path / "results"))
    code, _, err = run_cli(["eval", "base", "--world", str(smoke_world), "--task", "truthfulqa_mc1", "--task",
                            "truthfulqa_mc2", "--lm-backend", "hf", "--quiet"])
    assert code == 0, err
    ours = {}
    for run in (tmp_path / "results" / "runs").glob("truthfulqa_*"):
        ours.update(json.loads((run / "run.json").read_text())["metrics"])
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    done = subprocess.run([str(Path(sys.executable).parent / "lm_eval"), "--model", "hf", "--model_args",
                           f"pretrained={smoke_world / 'model'},dtype=float32", "--device", "cpu", "--batch_size", "32",
                           "--tasks", "flame_truthfulqa_mc1,flame_truthfulqa_mc2", "--include_path", str(tasks_dir),
                           "--output_path", str(tmp_path / "lm_eval_out")],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    (results,) = list((tmp_path / "lm_eval_out").rglob("results_*.json"))
    theirs = json.loads(results.read_text())["results"]
    assert theirs["flame_truthfulqa_mc1"]["acc,none"] == ours["mc1"]  # exactly: the same configs, data and model
    assert theirs["flame_truthfulqa_mc2"]["acc,none"] == ours["mc2"]

    run = next((tmp_path / "results" / "runs").glob("truthfulqa_mc2__*"))
    code, _, err = run_cli(["export", str(run), "--format", "lm-eval", "--out", str(tmp_path / "as_lm_eval")])
    assert code == 0, err
    (exported,) = list((tmp_path / "as_lm_eval").glob("results_*.json"))
    assert json.loads(exported.read_text())["results"]["flame_truthfulqa_mc2"]["mc2,none"] == ours["mc2"]
    (samples,) = list((tmp_path / "as_lm_eval").glob("samples_flame_truthfulqa_mc2_*.jsonl"))
    rows = [json.loads(x) for x in samples.read_text().splitlines()]
    assert len(rows) == json.loads((run / "run.json").read_text())["counts"]["items"]
    assert all(len(r["filtered_resps"]) == len(r["doc"]["choices"]) for r in rows)


def test_factscore_export_formats(smoke_world, tmp_path, monkeypatch):
    monkeypatch.setenv("FLAME_BENCH_RESULTS", str(tmp_path / "results"))
    code, _, err = run_cli(["eval", "base", "--world", str(smoke_world), "--task", "factscore_bio", "--limit", "4",
                            "--quiet"])
    assert code == 0, err
    run = next((tmp_path / "results" / "runs").glob("factscore_bio__*"))
    for fmt in ("factscore", "factscore-scored"):
        code, _, err = run_cli(["export", str(run), "--format", fmt, "--out", str(tmp_path / f"{fmt}.jsonl")])
        assert code == 0, err
    plain = [json.loads(x) for x in (tmp_path / "factscore.jsonl").read_text().splitlines()]
    scored = [json.loads(x) for x in (tmp_path / "factscore-scored.jsonl").read_text().splitlines()]
    assert len(plain) == 4 and set(plain[0]) == {"topic", "output"} and not plain[0]["topic"].startswith("Tell")
    samples = [json.loads(x) for x in (run / "samples.jsonl").read_text().splitlines()[1:]]
    for line, sample in zip(scored, samples, strict=True):
        if line["decisions"] is not None:
            assert [d["is_supported"] for d in line["decisions"]] == [f["supported"] for f in sample["facts"]]
    code, _, err = run_cli(["export", str(run), "--format", "annotations", "--out", str(tmp_path / "a.json")])
    assert code == 2 and "win-rate run" in err
    code, _, err = run_cli(["export", str(run), "--format", "lmeval", "--out", str(tmp_path / "x")])
    assert code == 2 and "did you mean 'lm-eval'" in err


def test_a_users_entity_list_in_factscores_own_format(tmp_path):
    from flame_bench.real.data import load_items, make_spec

    labelled = tmp_path / "InstructGPT.jsonl"  # FActScore's labelled files: one {"topic", "output", ...} per line
    labelled.write_text("".join(json.dumps({"input": f"Question: Tell me a bio of {n}.", "output": "...", "topic": n,
                                            "annotations": []}) + "\n" for n in ("Ada Lovelace", "Alan Turing")))
    names = tmp_path / "prompt_entities.txt"  # its unlabelled entity lists: one name per line
    names.write_text("Grace Hopper\n\nKatherine Johnson\n")
    for path, expected in ((labelled, ["Ada Lovelace", "Alan Turing"]), (names, ["Grace Hopper", "Katherine Johnson"])):
        items, _ = load_items(make_spec({"path": str(path), "shape": "bio-entities"}, tmp_path, "--entities"), False)
        assert [it["name"] for it in items] == expected
        assert items[0]["instruction"] == f"Tell me a bio of {expected[0]}."


def test_factscores_own_demonstrations_build_its_prompt(tmp_path):
    from flame_bench.real.components import DECOMPOSE_HEADER, FActScoreDemos, LLMDecomposer

    demons = {f"Demo sentence number {i} about a painter." if i != 9 else "She was born in Lagos in 1932.":
              [f"Fact {i}a.", f"Fact {i}b."] for i in range(12)}
    (tmp_path / "demons.json").write_text(json.dumps(demons))
    demos = FActScoreDemos(tmp_path / "demons.json")
    prompt = demos.prompt("He was born in Lagos.")
    blocks = prompt.split(DECOMPOSE_HEADER)[1:]
    assert len(blocks) == 7 + 1 + 1  # FActScore's 7 fixed demonstrations, its 1 BM25 match, then the sentence
    assert blocks[7].startswith("She was born in Lagos in 1932.\n- Fact 9a.\n- Fact 9b.\n")
    assert blocks[-1] == "He was born in Lagos.\n"
    decomposer = LLMDecomposer(backend=None, demos=demos)
    assert decomposer.version.startswith("factscore-breakdown-demons-v3@")
    assert decomposer.prompt("x") == demos.prompt("x")
    assert LLMDecomposer(backend=None).version.startswith("factscore-breakdown-ownshots-v3")
    (tmp_path / "bad.json").write_text("[1, 2]")
    code, _, err = run_cli(["eval", "smollm2", "--task", "factscore_bio", "--factscore-demos",
                            str(tmp_path / "bad.json")])
    assert code == 2 and "expected FActScore's {sentence: [facts]} JSON" in err


def test_published_numbers_are_shown_in_tables_of_their_own(tmp_path, monkeypatch):
    monkeypatch.setenv("FLAME_BENCH_RESULTS", str(tmp_path / "results"))  # no local runs at all
    code, out, err = run_cli(["leaderboard", "--published", "flame-paper", "--published",
                              "alpaca_eval:weighted_alpaca_eval_gpt4_turbo:3"])
    assert code == 0, err
    assert out.count("PUBLISHED, not run here") == 3  # Table 2, Table 3, the AlpacaEval leaderboard
    assert "SFT^flame + DPO^flame (FLAME)" in out and "47.9" in out and "alpaca_eval_gpt4_turbo_fn" in out
    assert "top 3 of" in out
    for bad, says in (("flame-papr", "did you mean 'flame-paper'"), ("alpaca_eval:gpt5", "AlpacaEval leaderboard"),
                      ("alpaca_eval:weighted_alpaca_eval_gpt4_turbo:0", "positive number")):
        code, _, err = run_cli(["leaderboard", "--published", bad])
        assert code == 2 and says in err and "Traceback" not in err, err
