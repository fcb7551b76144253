"""Two recipes behind the world's mechanism probes (`flame-bench world mechanisms`), each a published LLM finding
that FLAME's argument rests on, run on a fact world's training people (seed and DPO splits; never evaluation people):

- `known_sft` (Gekhman et al. 2024, "Does fine-tuning LLMs on new knowledge encourage hallucinations?"): SFT on
  ground-truth bios of people the base model knows, or of people it does not know. Known and unknown are the world's
  ground truth about the base model: the exact FActScore of its greedy bio of each person (known: at least
  `known_min_fs`; unknown: at most `unknown_max_fs`); the same number of people in both arms, each person's bio
  written `paraphrases` times by the world's own bio writer (the human responses' generator), all 7 attributes.
  A constant learning rate, so a chain of stages (1 epoch, then 1 more, then 2, ...) is one run's checkpoints.
- `facttune_dpo` (Tian et al. 2024, "Fine-tuning language models for factuality", FactTune-FS): DPO from the input
  (SFT) model on pairs of its own sampled bios (T 0.7, top-p 0.9), every two of a person's bios whose FActScore
  differs, the higher one chosen (ties dropped), FActScore being the world's exact scorer.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

from flame_bench.alignment.stages import TRAINING_LIMITS, Recipe, StageContext, check_stage_sections, positive
from flame_bench.core.errors import FlameError
from flame_bench.core.registry import RECIPES
from flame_bench.engines.generation import GenerationConfig

RECIPE_VERSION = "1"
KNOWLEDGE = ("known", "unknown")
TRAINING_SPLITS = ("seed", "dpo")
CLASSIFY_MAX_NEW_TOKENS = 128  # the evaluation's budget: a person is known by what a full greedy bio says


def _world(source):
    world = getattr(source, "world", None)
    if world is None:
        raise FlameError("the mechanism recipes run on a fact world (they need its ground truth); use "
                         "`flame-bench world mechanisms`")
    return world


def _instruction(name: str) -> str:
    from flame_bench.world import grammar as g

    return g.BIO_INSTRUCTION.format(S=name)


def training_people(source) -> list[dict[str, Any]]:
    """The world's training people (seed and DPO splits), in the world's order."""
    return [p for p in _world(source).people if p["split"] in TRAINING_SPLITS]


def base_bio_factscores(ctx: StageContext, names: list[str]) -> list[float | None]:
    """The exact FActScore of the base model's greedy bio of each person (None: it stated no fact)."""
    from flame_bench.scoring.factscore import FACTSCORE_K

    base = ctx.source.base_model()
    bios = [o[0].strip() for o in ctx.generator(base, GenerationConfig(max_new_tokens=CLASSIFY_MAX_NEW_TOKENS,
                                                                       batch_size=64)).samples(
        [_instruction(n) for n in names])]
    return [s.precision() for s in ctx.source.factscorer(FACTSCORE_K).score_many(bios, [[n] for n in names])]


def split_by_knowledge(names: list[str], scores: list[float | None], known_min: float, unknown_max: float,
                       people: int, seed: int) -> dict[str, list[str]]:
    """`people` known and `people` unknown names (fewer in both if either group is short), sampled with `seed`."""
    known = [n for n, s in zip(names, scores, strict=True) if s is not None and s >= known_min]
    unknown = [n for n, s in zip(names, scores, strict=True) if s is not None and s <= unknown_max]
    n = min(people, len(known), len(unknown))
    rng = random.Random(seed)
    return {"known": sorted(rng.sample(known, n)), "unknown": sorted(rng.sample(unknown, n))}


@dataclass
class KnownSFTConfig:
    LIMITS: ClassVar[dict[str, float]] = TRAINING_LIMITS
    knowledge: str = "unknown"  # "known" or "unknown": whose ground-truth bios the model is fine-tuned on
    people: int = 50  # per arm (both arms get the same number)
    paraphrases: int = 4  # bios per person, each a different wording of all 7 attributes
    known_min_fs: float = 0.75  # FActScore of the base model's greedy bio at or above which a person is known
    unknown_max_fs: float = 0.25  # ... at or below which a person is unknown
    learning_rate: float = 3e-4  # the baseline SFT's
    epochs: float = 1.0
    batch_size: int = 16
    max_length: int = 192
    trainer: dict[str, Any] | None = None
    peft: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        check_stage_sections("sft", self.trainer, self.peft)
        positive(self, "people", "paraphrases", "learning_rate", "epochs", "batch_size", "max_length")
        if self.knowledge not in KNOWLEDGE:
            raise ValueError(f"knowledge must be one of {', '.join(KNOWLEDGE)}, got {self.knowledge!r}")
        if not 0 <= self.unknown_max_fs < self.known_min_fs <= 1:
            raise ValueError(f"need 0 <= unknown_max_fs < known_min_fs <= 1, got {self.unknown_max_fs} and "
                             f"{self.known_min_fs}")


def known_sft_data(ctx: StageContext, config: KnownSFTConfig) -> dict[str, Any]:
    """Both arms' people (so the two arms' stages agree on who is known) and this arm's examples."""
    from flame_bench.alignment.training import chat_example
    from flame_bench.world.generate import render_bio
    from flame_bench.world.grammar import ATTRIBUTES

    people = training_people(ctx.source)
    names = [p["name"] for p in people]
    scores = base_bio_factscores(ctx, names)
    arms = split_by_knowledge(names, scores, config.known_min_fs, config.unknown_max_fs, config.people, ctx.seed)
    by_name = {p["name"]: p for p in people}
    examples = []
    for name in arms[config.knowledge]:
        rng = random.Random(f"{ctx.seed}:{name}")  # one person's wordings do not depend on who else is in the arm
        for _ in range(config.paraphrases):
            attrs = list(ATTRIBUTES)
            rng.shuffle(attrs)
            examples.append(chat_example(_instruction(name), render_bio(rng, by_name[name], attrs)))
    scored = [s for s in scores if s is not None]
    return {"examples": examples, "arms": arms, "candidates": len(names),
            "known_candidates": sum(s >= config.known_min_fs for s in scored),
            "unknown_candidates": sum(s <= config.unknown_max_fs for s in scored)}


def _known_sft(ctx: StageContext, config: KnownSFTConfig) -> dict[str, Any]:
    from flame_bench_recipes.sft import train_sft  # a sibling recipe module (flame_bench.core.registry)

    data = ctx.on_main("examples", lambda: known_sft_data(ctx, config))
    if not data["examples"]:
        raise FlameError(f"no {config.knowledge} people to fine-tune on ({data['known_candidates']} known, "
                         f"{data['unknown_candidates']} unknown of {data['candidates']}); widen known_min_fs / "
                         "unknown_max_fs")
    examples = list(data["examples"])
    random.Random(ctx.seed).shuffle(examples)
    stats = {k: v for k, v in data.items() if k != "examples"} | {"examples": len(examples)}
    trainer = {"lr_scheduler_type": "constant", "warmup_steps": 0, **(config.trainer or {})}
    train_config = KnownSFTConfig(**{**asdict(config), "trainer": trainer})
    return {**stats, **train_sft(ctx, examples, train_config), "config": asdict(config)}  # type: ignore[arg-type]


@dataclass
class FactTuneConfig:
    LIMITS: ClassVar[dict[str, float]] = TRAINING_LIMITS
    samples: int = 10  # bios per person (the pilot's and Tian et al.'s 10)
    max_new_tokens: int = 128
    beta: float = 0.1
    learning_rate: float = 5e-5  # the pilot's DPO
    epochs: float = 1.0
    batch_size: int = 16
    max_length: int = 256
    trainer: dict[str, Any] | None = None
    peft: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        check_stage_sections("dpo", self.trainer, self.peft)
        positive(self, "samples", "max_new_tokens", "beta", "learning_rate", "epochs", "batch_size", "max_length")
        if self.samples < 2:
            raise ValueError(f"samples must be at least 2 (a pair), got {self.samples}")


def facttune_pairs(ctx: StageContext, config: FactTuneConfig) -> dict[str, Any]:
    """The input model's own bios of every training person, FActScore-ranked into pairs."""
    from flame_bench_recipes.pilot import fs_pairs, grouped_factscores

    from flame_bench.core.io import write_jsonl

    names = [p["name"] for p in training_people(ctx.source)]
    bios = [[b.strip() for b in bs] for bs in ctx.sample_policy([_instruction(n) for n in names], config.samples,
                                                                 config.max_new_tokens)]
    scores = grouped_factscores(ctx.source, names, bios)
    pairs, ties = fs_pairs(names, bios, scores)
    ctx.output_dir.mkdir(parents=True, exist_ok=True)
    write_jsonl(ctx.output_dir.parent / "pairs.jsonl", "pairs", 1, pairs)  # kept next to the model
    gaps = [p["chosen_fs"] - p["rejected_fs"] for p in pairs]
    lengths = [(len(p["chosen"].split()), len(p["rejected"].split())) for p in pairs]
    return {"pairs": pairs, "people": len(names), "ties": ties,
            "mean_fs_gap": sum(gaps) / len(gaps) if gaps else None,
            "chosen_longer_share": (sum(c > r for c, r in lengths) / len(lengths)) if lengths else None,
            "mean_sample_fs": _mean([s for ss in scores for s in ss if s is not None])}


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _facttune(ctx: StageContext, config: FactTuneConfig) -> dict[str, Any]:
    from flame_bench_recipes.dpo import train_dpo  # a sibling recipe module

    _world(ctx.source)
    data = ctx.on_main("pairs", lambda: facttune_pairs(ctx, config))
    if not data["pairs"]:
        raise FlameError("FactTune has no pairs: every two bios of a person score the same; raise samples")
    stats = {k: v for k, v in data.items() if k != "pairs"} | {"train_pairs": len(data["pairs"])}
    return {**stats, **train_dpo(ctx, data["pairs"], config), "config": asdict(config)}  # type: ignore[arg-type]


def _fingerprint(config, source) -> dict[str, Any]:
    """The scorer that picks known people and ranks pairs (evaluation's exact FActScore)."""
    from flame_bench.scoring.factscore import FACTSCORE_K

    return {"fs_scorer": source.factscorer(FACTSCORE_K).identity} if getattr(source, "world", None) else {}


RECIPES.register("known_sft")(Recipe("known_sft", RECIPE_VERSION, "Mechanism probe (Gekhman et al. 2024): SFT on "
                                     "ground-truth bios of people the base model knows, or does not know",
                                     KnownSFTConfig, _known_sft, trainer="sft", fingerprint=_fingerprint))
RECIPES.register("facttune_dpo")(Recipe("facttune_dpo", RECIPE_VERSION, "Mechanism probe (Tian et al. 2024, "
                                        "FactTune-FS): DPO on pairs of the model's own bios ranked by FActScore",
                                        FactTuneConfig, _facttune, trainer="dpo", fingerprint=_fingerprint))
