"""SFT recipes (FLAME §1.3-1.6), each wrapping trl's SFTTrainer on the source's seed instructions.

- `sft`       baseline SFT: the base model on the human responses (optionally only instructions about people of
              some tiers: the diagnostic "human responses about seen people only").
- `fact_sft`  SFT^fact: responses elicited from the base model (PT) for every instruction.
- `flame_sft` SFT^flame: human responses for instructions the classifier calls non-fact-based; for fact-based
              ones, responses elicited from PT with a few-shot prompt of the most similar seed instructions and
              their human responses (10 samples, temperature 0.7, top-p 0.9), so SFT never teaches facts the
              base model does not know.

Few-shot budget: the demonstrations are the k most similar seed instructions (BM25 over instructions, the
instruction itself excluded; the paper uses DRAGON+), most similar last, in the source's prompt style for plain-text
base models (`flame_bench.alignment.flame.PT_PROMPT_STYLES`: the world corpus' "Question: ... Answer: ..." documents, or
question/answer blocks for a real base model, each sample cut where the model starts a new question). Only as many
as fit the base model's context are kept (a 128-token world model gets few or none for bios); the effective number
of shots is reported. A base model without a chat template gets flame-bench's plain one before SFT.

Run: `flame-bench train SYSTEM` or `flame-bench compare baseline flame`.
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from flame_bench.alignment.flame import get_pt_style
from flame_bench.alignment.stages import TRAINING_LIMITS, Recipe, StageContext, check_stage_sections, positive
from flame_bench.core.errors import FlameError
from flame_bench.core.registry import RECIPES
from flame_bench.engines.generation import SAMPLING, GenerationConfig
from flame_bench.engines.llm import cut_at_stop

RECIPE_VERSION = "2"  # in stage keys; 2: runs under 20 steps train without warmup (1: a 1-step run had lr 0)


@dataclass
class SFTRecipeConfig:
    LIMITS: ClassVar[dict[str, float]] = TRAINING_LIMITS  # upper bounds (others: MAX_NUMBER)
    learning_rate: float = 3e-4
    epochs: float = 2.0
    batch_size: int = 16
    max_length: int = 192
    people_tiers: list[str] | None = None  # keep fact-based instructions only about people of these groups (tiers)
    shots: int = 5  # FLAME: 5 demonstrations (as many as fit the context)
    pt_samples: int = 10  # FLAME: 10 samples per fact-based instruction
    pt_responses_per_instruction: int = 1  # of the samples, how many enter training (paper leaves it open)
    pt_max_new_tokens: int = 96
    pt_prompt_style: str | None = None  # default: the source's (flame_bench.alignment.flame.PT_PROMPT_STYLES)
    context_tokens: int | None = None  # default: the base model's pretraining sequence length
    max_instructions: int | None = None  # use only the first N seed instructions (smoke runs, real-model checks)
    extra: dict[str, Any] = field(default_factory=dict)
    trainer: dict[str, Any] | None = None  # forwarded to trl's SFTConfig (a stage's `trainer:` mapping)
    peft: dict[str, Any] | None = None  # LoRA (a stage's `peft:` mapping; alignment.training.lora_config)

    def __post_init__(self) -> None:
        check_stage_sections("sft", self.trainer, self.peft)
        positive(self, "learning_rate", "epochs", "batch_size", "max_length", "pt_samples",
                 "pt_responses_per_instruction", "pt_max_new_tokens", "context_tokens", "max_instructions")
        if self.shots < 0:
            raise ValueError(f"shots must be >= 0, got {self.shots}")
        if self.pt_prompt_style is not None:
            get_pt_style(self.pt_prompt_style)


def _context_budget(model_dir: Path, config: SFTRecipeConfig) -> int:
    if config.context_tokens:
        return config.context_tokens
    record = model_dir / "flame_model.json"
    seq_len = json.loads(record.read_text()).get("spec", {}).get("seq_len") if record.is_file() else None
    if seq_len:  # a world base model: its pretraining context
        return int(seq_len)
    config = json.loads((model_dir / "config.json").read_text())
    return min(int(config.get("max_position_embeddings") or 2048), 2048)


def elicit_pt_responses(ctx: StageContext, records: list[dict], seed_pool: list[dict],
                        config: SFTRecipeConfig) -> tuple[list[list[str]], dict[str, float]]:
    """PT(x): `pt_samples` responses per instruction from the base model, prompted with similar demonstrations."""
    from rank_bm25 import BM25Okapi
    from transformers import AutoTokenizer

    from flame_bench.scoring.retrieval import bm25_tokens

    style = get_pt_style(config.pt_prompt_style or ctx.source.pretrained_style)
    tok = AutoTokenizer.from_pretrained(ctx.input_model)
    budget = _context_budget(ctx.input_model, config) - config.pt_max_new_tokens
    index = BM25Okapi([bm25_tokens(r["instruction"]) for r in seed_pool])
    # each demonstration its own document (" EOS BOS"), where the style says so
    separator = f" {tok.eos_token or ''} {tok.bos_token or ''}".rstrip() if style.separator_from_tokenizer else ""
    prompts, shots_used = [], []
    for rec in records:
        query = style.question.format(instruction=rec["instruction"])
        scores = index.get_scores(bm25_tokens(rec["instruction"]))
        order = [i for i in sorted(range(len(seed_pool)), key=lambda i: -scores[i])
                 if seed_pool[i]["instruction"] != rec["instruction"]][: config.shots]
        demos: list[str] = []
        used = len(tok(query)["input_ids"])
        for i in order:  # most similar first; stop when the context is full
            demo = style.demo.format(instruction=seed_pool[i]["instruction"], response=seed_pool[i]["response"],
                                     separator=separator)
            n = len(tok(demo, add_special_tokens=False)["input_ids"])
            if used + n > budget:
                break
            demos.insert(0, demo)  # the most similar demonstration sits closest to the question
            used += n
        shots_used.append(len(demos))
        prompts.append(style.joiner.join([*demos, query]))
    cfg = GenerationConfig(max_new_tokens=config.pt_max_new_tokens, num_return_sequences=config.pt_samples,
                           seed=ctx.seed, batch_size=max(1, 256 // config.pt_samples), **SAMPLING)
    outs = ctx.generator(ctx.input_model, cfg).complete(prompts, add_special_tokens=True)
    if style.stop:
        outs = [[cut_at_stop(o, style.stop) for o in os_] for os_ in outs]
    stats = {"pt_instructions": len(records), "mean_shots": sum(shots_used) / max(1, len(shots_used)),
             "empty_pt_samples": sum(not o.strip() for os_ in outs for o in os_)}
    return outs, stats


def build_dataset(ctx: StageContext, config: SFTRecipeConfig, mode: str) -> tuple[list[dict], dict[str, Any]]:
    from flame_bench.alignment.training import chat_example

    seed_pool = ctx.source.sft_examples()
    records = seed_pool[: config.max_instructions]
    if config.people_tiers is not None:
        unknown = set(config.people_tiers) - set(ctx.source.groups)
        if unknown:
            raise FlameError(f"people_tiers has unknown groups {sorted(unknown)}; use {', '.join(ctx.source.groups)}")
        records = [r for r in records if not r.get("groups") or all(g in config.people_tiers for g in r["groups"])]
    if mode == "human":
        use_pt = [False] * len(records)
    elif mode == "pt":
        use_pt = [True] * len(records)
    else:  # flame: PT responses for what the classifier calls fact-based
        use_pt = ctx.source.fact_classifier.classify_many([r["instruction"] for r in records])
    stats: dict[str, Any] = {"instructions": len(records), "pt_instructions": sum(use_pt)}
    examples = [chat_example(r["instruction"], r["response"]) for r, pt in zip(records, use_pt, strict=True) if not pt]
    pt_records = [r for r, pt in zip(records, use_pt, strict=True) if pt]
    if pt_records:
        outs, pt_stats = elicit_pt_responses(ctx, pt_records, seed_pool, config)
        stats.update(pt_stats)
        rng = random.Random(ctx.seed)
        for rec, samples in zip(pt_records, outs, strict=True):
            usable = [s for s in dict.fromkeys(samples) if s.strip()]
            for s in rng.sample(usable, min(config.pt_responses_per_instruction, len(usable))):
                examples.append(chat_example(rec["instruction"], s))
    random.Random(ctx.seed).shuffle(examples)
    stats["examples"] = len(examples)
    if not examples:
        raise FlameError("SFT has no training examples (every elicited response was empty); check the base model's "
                         "prompt style (pt_prompt_style) or the SFT data")
    return examples, stats


def train_sft(ctx: StageContext, examples: list[dict], config: SFTRecipeConfig) -> dict[str, Any]:
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    from flame_bench.alignment.training import train_trl

    return train_trl(ctx, SFTTrainer, SFTConfig, Dataset.from_list(examples), "SFT", peft=config.peft,
                     trainer_keys=config.trainer, learning_rate=config.learning_rate, num_train_epochs=config.epochs,
                     per_device_train_batch_size=config.batch_size, max_length=config.max_length)


def _recipe(mode: str):
    def run(ctx: StageContext, config: SFTRecipeConfig) -> dict[str, Any]:
        # elicitation on the main process alone; every rank trains on the same examples
        examples, stats = ctx.on_main("examples", lambda: list(build_dataset(ctx, config, mode)))
        return {**stats, **train_sft(ctx, examples, config), "config": asdict(config)}

    return run


def _fingerprint(config: SFTRecipeConfig, source) -> dict[str, Any]:
    return {"pt_prompt_style": get_pt_style(config.pt_prompt_style or source.pretrained_style).version}


def _table11(mode: str):
    def cells(stats: dict[str, Any]) -> dict[str, str]:
        """The seed split of the paper's Table 11: fact-based instructions answered by the base model (SFT^flame)."""
        n, pt = stats["instructions"], stats.get("pt_instructions", 0)
        if mode == "flame":
            return {"seed #inst x∉X_fact": str(n - pt), "seed #inst x∈X_fact": str(pt)}
        return {"seed #inst x∉X_fact": str(n), "seed #inst x∈X_fact": "-"}

    return cells


for _name, _mode, _desc in (
    ("sft", "human", "SFT on the human responses of the seed instructions (baseline)"),
    ("fact_sft", "pt", "SFT^fact: SFT on responses elicited from the base model for every instruction"),
    ("flame_sft", "flame", "SFT^flame: human responses for non-fact-based, base-model responses for fact-based"),
):
    RECIPES.register(_name)(Recipe(_name, RECIPE_VERSION, _desc, SFTRecipeConfig, _recipe(_mode), trainer="sft",
                                   fingerprint=_fingerprint, training_data=_table11(_mode)))
