"""The paper's pilot study on biographies (FLAME §3, Table 1), as two recipes over a fact world's training people.

Training entities are the world's seed-split people ("Tell me a bio of X"); the base model writes `samples` bios of
each (temperature 0.7, top-p 0.9):
- PT:     the question alone, in the form the base model saw in pretraining ("Question: ... Answer:");
- PT_RAG: the question after the top RAG_PASSAGES passages of the person's page (BM25, the instruction as query),
          in the form of the world's reading documents ("Context: ... Question: ... Answer:"). The paper prepends 10
          passages and 5 demonstrations; a 128-token world model has room for 2 passages and none.

- `pilot_sft` SFT on the PT or the PT_RAG bios (`responses: pt | pt_rag`; rows 3 and 4), every non-empty sample.
- `pilot_dpo` DPO from the SFT model on `pairs`:
    `fs`        the PT bios of each person, every two of them whose FActScore differs, the higher one chosen
                (row 5; the paper's 45 pairs of 10 bios, ties discarded);
    `rag_vs_pt` PT_RAG bios chosen over PT bios, sample k against sample k of the same person (row 6; the paper does
                not say how it pairs them).
FActScore here is the world's exact scorer (FACTSCORE_K passages per fact, as evaluation scores).

Run: `flame-bench pilot` (builds the `pilot` world: the long-tail world plus reading documents that teach the base
model to answer from a context).
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass
from itertools import combinations
from typing import Any, ClassVar

from flame_bench.alignment.stages import TRAINING_LIMITS, Recipe, StageContext, check_stage_sections, positive
from flame_bench.core.errors import FlameError
from flame_bench.core.registry import RECIPES
from flame_bench.engines.generation import SAMPLING, GenerationConfig

RECIPE_VERSION = "1"
PROMPT_VERSION = "pilot-pt-qa-v1+rag-context-v1"
RESPONSES = ("pt", "pt_rag")
PAIRS = ("fs", "rag_vs_pt")


@dataclass
class PilotSFTConfig:
    LIMITS: ClassVar[dict[str, float]] = TRAINING_LIMITS  # upper bounds (others: MAX_NUMBER)
    responses: str = "pt"  # "pt" or "pt_rag": whose bios the model is fine-tuned on
    samples: int = 10  # the paper's 10 bios per training entity
    max_new_tokens: int = 96
    learning_rate: float = 3e-4
    epochs: float = 2.0
    batch_size: int = 16
    max_length: int = 192
    trainer: dict[str, Any] | None = None
    peft: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        check_stage_sections("sft", self.trainer, self.peft)
        positive(self, "samples", "max_new_tokens", "learning_rate", "epochs", "batch_size", "max_length")
        if self.responses not in RESPONSES:
            raise ValueError(f"responses must be one of {', '.join(RESPONSES)}, got {self.responses!r}")


@dataclass
class PilotDPOConfig:
    LIMITS: ClassVar[dict[str, float]] = TRAINING_LIMITS  # upper bounds (others: MAX_NUMBER)
    pairs: str = "fs"  # "fs" (FActScore-selected PT pairs) or "rag_vs_pt"
    samples: int = 10
    max_new_tokens: int = 96
    beta: float = 0.1
    learning_rate: float = 5e-5
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
        if self.pairs not in PAIRS:
            raise ValueError(f"pairs must be one of {', '.join(PAIRS)}, got {self.pairs!r}")


def training_people(source) -> list[str]:
    """The pilot's training entities: the fact world's seed-split people. The world must have reading documents
    (the `pilot` preset): a base model that never saw a context cannot be prompted with one."""
    if not hasattr(source, "reading_training_people"):
        raise FlameError("the pilot study's recipes run on a fact world (they need its training people and its "
                         "exact FActScore); use `flame-bench pilot`")
    return source.reading_training_people()


def _instruction(name: str) -> str:
    from flame_bench.world import grammar as g

    return g.BIO_INSTRUCTION.format(S=name)


def model_bios(ctx: StageContext, model, names: list[str], kind: str, samples: int,
               max_new_tokens: int) -> list[list[str]]:
    """`samples` bios of each person by a pretrained `model`: PT (the bio instruction in the model's Q&A form) or
    PT_RAG (the world's retrieval-augmented prompt, `bio_rag_prompts`)."""
    cfg = GenerationConfig(max_new_tokens=max_new_tokens, num_return_sequences=samples, seed=ctx.seed,
                           batch_size=max(1, 256 // samples), **SAMPLING)
    gen = ctx.generator(model, cfg)
    if gen.kind != "pretrained":
        raise FlameError(f"the pilot's bios come from a pretrained model, but {model} is a chat model; start the "
                         "system from the world's base model (base_model: base)")
    outs = (gen.samples([_instruction(n) for n in names]) if kind == "pt"
            else gen.complete(ctx.source.bio_rag_prompts(names), add_special_tokens=True))
    return [[o.strip() for o in os_] for os_ in outs]


def _sft(ctx: StageContext, config: PilotSFTConfig) -> dict[str, Any]:
    from flame_bench_recipes.sft import train_sft  # a sibling recipe module (flame_bench.core.registry)

    from flame_bench.alignment.training import chat_example

    def build() -> dict[str, Any]:
        names = training_people(ctx.source)
        bios = model_bios(ctx, ctx.input_model, names, config.responses, config.samples, config.max_new_tokens)
        examples = [chat_example(_instruction(n), b) for n, bs in zip(names, bios, strict=True) for b in bs if b]
        return {"examples": examples, "people": len(names), "empty_samples": sum(not b for bs in bios for b in bs)}

    data = ctx.on_main("examples", build)
    if not data["examples"]:
        raise FlameError("the pilot's SFT has no examples: every base-model bio was empty")
    examples = list(data["examples"])
    random.Random(ctx.seed).shuffle(examples)
    stats = {"people": data["people"], "examples": len(examples), "empty_samples": data["empty_samples"]}
    return {**stats, **train_sft(ctx, examples, config), "config": asdict(config)}  # type: ignore[arg-type]


def fs_pairs(names: list[str], bios: list[list[str]], scores: list[list[float | None]]) -> tuple[list[dict], int]:
    """Every two bios of a person whose FActScore differs (ties and unscored bios dropped), the higher chosen;
    returns (pairs, ties)."""
    pairs, ties = [], 0
    for name, bs, fs in zip(names, bios, scores, strict=True):
        scored = [(b, f) for b, f in zip(bs, fs, strict=True) if b and f is not None]
        for (a, fa), (b, fb) in combinations(scored, 2):
            if fa == fb:
                ties += 1
                continue
            (chosen, fc), (rejected, fr) = ((a, fa), (b, fb)) if fa > fb else ((b, fb), (a, fa))
            pairs.append({"prompt": _instruction(name), "chosen": chosen, "rejected": rejected,
                          "chosen_fs": fc, "rejected_fs": fr})
    return pairs, ties


def grouped_factscores(source, names: list[str], bios: list[list[str]]) -> list[list[float | None]]:
    """The exact FActScore (evaluation's scorer) of each person's bios, grouped as `bios` is."""
    from flame_bench.scoring.factscore import FACTSCORE_K, score_per_topic

    return [[s.precision() for s in group]
            for group in score_per_topic(source.factscorer(FACTSCORE_K), names, bios)]


def rag_vs_pt_pairs(names: list[str], rag: list[list[str]], pt: list[list[str]]) -> list[dict]:
    """Sample k of PT_RAG chosen over sample k of PT, per person (both non-empty and different)."""
    return [{"prompt": _instruction(n), "chosen": r, "rejected": p}
            for n, rs, ps in zip(names, rag, pt, strict=True)
            for r, p in zip(rs, ps, strict=True) if r and p and r != p]


def _dpo(ctx: StageContext, config: PilotDPOConfig) -> dict[str, Any]:
    from flame_bench_recipes.dpo import train_dpo  # a sibling recipe module

    from flame_bench.core.io import write_jsonl

    def build() -> dict[str, Any]:
        names = training_people(ctx.source)
        base = ctx.source.base_model()  # the pairs are the base model's bios, whatever the SFT model says
        pt = model_bios(ctx, base, names, "pt", config.samples, config.max_new_tokens)
        if config.pairs == "fs":
            pairs, ties = fs_pairs(names, pt, grouped_factscores(ctx.source, names, pt))
            stats = {"ties": ties}
        else:
            rag = model_bios(ctx, base, names, "pt_rag", config.samples, config.max_new_tokens)
            pairs, stats = rag_vs_pt_pairs(names, rag, pt), {}
        ctx.output_dir.mkdir(parents=True, exist_ok=True)
        write_jsonl(ctx.output_dir.parent / "pairs.jsonl", "pairs", 1, pairs)  # kept next to the model
        return {"pairs": pairs, "people": len(names), **stats}

    data = ctx.on_main("pairs", build)
    if not data["pairs"]:
        raise FlameError(f"the pilot's DPO ({config.pairs}) has no pairs: the base model's bios do not differ")
    stats = {k: v for k, v in data.items() if k != "pairs"} | {"train_pairs": len(data["pairs"])}
    return {**stats, **train_dpo(ctx, data["pairs"], config), "config": asdict(config)}  # type: ignore[arg-type]


def _fingerprint(config, source) -> dict[str, Any]:
    """What the data depend on beyond the models: the prompts (RAG form and passages) and, for FActScore-selected
    pairs, the scorer."""
    from flame_bench.scoring.factscore import FACTSCORE_K
    from flame_bench.world import grammar as g

    out: dict[str, Any] = {"prompts": PROMPT_VERSION, "rag_prompt": g.RAG_PROMPT, "rag_passages": g.RAG_PASSAGES}
    if getattr(config, "pairs", None) == "fs" and getattr(source, "world", None) is not None:
        out["fs_scorer"] = source.factscorer(FACTSCORE_K).identity
    return out


RECIPES.register("pilot_sft")(Recipe("pilot_sft", RECIPE_VERSION, "Pilot (Table 1): SFT on the base model's own bios, "
                                     "plain (PT) or retrieval-augmented (PT_RAG)", PilotSFTConfig, _sft, trainer="sft",
                                     fingerprint=_fingerprint))
RECIPES.register("pilot_dpo")(Recipe("pilot_dpo", RECIPE_VERSION, "Pilot (Table 1): DPO on FActScore-selected PT "
                                     "bio pairs, or PT_RAG bios over PT bios", PilotDPOConfig, _dpo, trainer="dpo",
                                     fingerprint=_fingerprint))
