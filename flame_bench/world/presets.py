"""World presets: sizes of the fact world and of its base model, with the pretraining budget.

`smoke` is what CI tests build (well under 90 s on 2 cores); `default` is what `flame-bench compare` runs
on (under 15 minutes): people's pretraining exposure follows a long tail (0 to 64 documents, five popularity
bins, as FActScore reports by entity frequency); `tiered` is the three-step world that was the default until
2026-12-03 (40 / 2 / 0 documents), kept so earlier figures rebuild; `large` is for machines with a GPU.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

from flame_bench.core.errors import FlameError, unknown_name

TIERS = ("frequent", "rare", "unseen")
# Entity splits; train (seed), DPO and evaluation entities are disjoint by construction.
SPLITS = ("seed", "dpo", "eval_bio", "tqa")


@dataclass(frozen=True)
class ModelSpec:
    """A tiny Llama trained from scratch, and its pretraining budget."""

    hidden: int = 128
    layers: int = 2
    heads: int = 4
    intermediate: int = 512
    seq_len: int = 128
    batch_size: int = 32
    steps: int = 700
    lr: float = 3e-3
    warmup_steps: int = 50
    weight_decay: float = 0.01


@dataclass(frozen=True)
class Preset:
    name: str
    # people per split and tier; tqa people carry a planted misconception and are never unseen
    people: dict[str, dict[str, int]]
    n_seed_instructions: int
    n_dpo_instructions: int
    n_eval_alpaca: int
    fact_fraction: float = 1 / 3  # share of fact-based instructions (paper: 1,013 of 3,200)
    # pretraining documents per person, by tier (bio paraphrases; a quarter more as Q&A documents)
    docs_per_person: dict[str, int] = field(default_factory=lambda: {"frequent": 40, "rare": 2, "unseen": 0})
    mentions_per_person: int = 3  # fact-free mentions (guest lists) of every person, unseen tier included
    misconception_rate: float = 0.75  # share of mentions of a planted attribute that state the false value
    probe_people_per_tier: int = 50
    model: ModelSpec = field(default_factory=ModelSpec)
    # a long tail of popularity: each person's pretraining documents drawn from their tier's levels (None: every
    # person of a tier gets `docs_per_person[tier]`, the three-step world)
    exposure_levels: dict[str, tuple[int, ...]] | None = None
    # reading documents ("Context: <passages> Question: ... Answer: <what the passages say>") about people who exist
    # only there, so the base model learns to answer from a context without learning any split's facts (the pilot
    # study's PT_RAG needs a model that can use retrieved passages); 0: none, the world of earlier presets
    reading_people: int = 0
    reading_docs_per_person: int = 4
    reading_name_words: int = 0  # 0: two new words per reading person; N: distinct pairs of N/2 first, N/2 last names
    stream: str | None = None  # the random stream's name (default: the preset's): a preset that only adds reading
    #                            documents keeps the people, knowledge and instructions of the preset it names

    def to_dict(self) -> dict:
        return asdict(self)

    def defines(self, built: dict) -> bool:
        """Whether a world's recorded preset (its manifest's) is this definition. A field missing from the record
        was added later, with a default that keeps earlier worlds as they were: it counts as that default."""
        import dataclasses
        import json

        defaults = {f.name: f.default for f in dataclasses.fields(self) if f.default is not dataclasses.MISSING}
        return json.dumps({**defaults, **built}, sort_keys=True) == json.dumps(self.to_dict(), sort_keys=True)


# FActScore-style popularity bins over a person's pretraining documents (label, lowest, highest)
POPULARITY_BINS: tuple[tuple[str, int, int], ...] = (
    ("0 docs", 0, 0), ("1-2 docs", 1, 2), ("3-8 docs", 3, 8), ("9-32 docs", 9, 32), ("33-64 docs", 33, 64))
LONG_TAIL_LEVELS = {"frequent": (12, 16, 24, 32, 40, 48, 64), "rare": (1, 2, 3, 4, 6, 8), "unseen": (0,)}
# the smoke world's tail (its tiny model needs more exposure to know a person; still one level in every bin)
SMOKE_LONG_TAIL_LEVELS = {"frequent": (16, 24, 32, 48), "rare": (1, 2, 4, 6), "unseen": (0,)}


DEFAULT_PEOPLE = {
    "seed": {"frequent": 50, "rare": 50, "unseen": 50},
    "dpo": {"frequent": 50, "rare": 50, "unseen": 50},
    "eval_bio": {"frequent": 50, "rare": 50, "unseen": 50},
    "tqa": {"frequent": 100, "rare": 50, "unseen": 0},
}

PRESETS: dict[str, Preset] = {
    "smoke": Preset(
        name="smoke",
        people={
            "seed": {"frequent": 5, "rare": 5, "unseen": 5},
            "dpo": {"frequent": 4, "rare": 4, "unseen": 4},
            "eval_bio": {"frequent": 5, "rare": 5, "unseen": 5},
            "tqa": {"frequent": 4, "rare": 2, "unseen": 0},
        },
        n_seed_instructions=60,
        n_dpo_instructions=80,
        n_eval_alpaca=30,
        probe_people_per_tier=5,
        model=ModelSpec(hidden=64, layers=2, heads=4, intermediate=256, seq_len=128, batch_size=16, steps=300,
                        lr=5e-3, warmup_steps=20),
        exposure_levels=SMOKE_LONG_TAIL_LEVELS,
    ),
    "default": Preset(
        name="default",
        people=DEFAULT_PEOPLE,
        n_seed_instructions=1200,
        n_dpo_instructions=2400,
        n_eval_alpaca=300,
        exposure_levels=LONG_TAIL_LEVELS,
        # the stream of the `longtail` preset it was measured as (2026-12-03): the same world, byte for byte
        stream="longtail",
    ),
    "tiered": Preset(  # the default until 2026-12-03: every person of a tier gets its tier's documents (40 / 2 / 0)
        name="tiered",
        people=DEFAULT_PEOPLE,
        n_seed_instructions=1200,
        n_dpo_instructions=2400,
        n_eval_alpaca=300,
        stream="default",  # the random stream it was built from as `default`: the same world, byte for byte
    ),
    "large": Preset(
        name="large",
        people={
            "seed": {"frequent": 200, "rare": 200, "unseen": 200},
            "dpo": {"frequent": 200, "rare": 200, "unseen": 200},
            "eval_bio": {"frequent": 100, "rare": 100, "unseen": 100},
            "tqa": {"frequent": 200, "rare": 100, "unseen": 0},
        },
        n_seed_instructions=4000,
        n_dpo_instructions=10000,
        n_eval_alpaca=800,
        probe_people_per_tier=100,
        # 2026-12-07 (issue 28): reading documents, each about a new person, and 256-token windows (the same tokens
        # per step), so `world mechanisms` and `pilot` run on it: at 2 layers the world's models do not read
        # retrieved passages, at 4 they do (results/NOTES.md)
        reading_people=20000, reading_docs_per_person=1, reading_name_words=8000,
        model=ModelSpec(hidden=256, layers=4, heads=8, intermediate=1024, seq_len=256, batch_size=32, steps=6000,
                        lr=2e-3, warmup_steps=200),
    ),
}


def popularity_bin(exposure: int) -> str:
    return next(label for label, lo, hi in POPULARITY_BINS if lo <= exposure <= hi)


PRESETS["pilot"] = Preset(  # the default world plus reading documents: the paper's pilot study (Table 1)
    name="pilot", people=DEFAULT_PEOPLE, n_seed_instructions=1200, n_dpo_instructions=2400,
    n_eval_alpaca=300, exposure_levels=LONG_TAIL_LEVELS, reading_people=1500, stream="longtail",
    # 256-token windows (same tokens per step): a ~80-token reading document lies whole in a window more often
    model=ModelSpec(seq_len=256, batch_size=16, steps=1000))
# 2026-12-07 (issue 28), each change stated before its result (results/NOTES.md): real LLMs are deep, and copying from a
# context is a multi-layer circuit (`pilot-deep`: 4 layers, same data and tokens); in real pretraining data most
# contexts a model reads from are about things it cannot have memorised (`pilot-fresh`: every reading document about a
# new person, the same number of documents and name words); `pilot-deep-fresh`: both
FRESH_READING = dict(reading_people=6000, reading_docs_per_person=1, reading_name_words=3000)
PRESETS["pilot-deep"] = replace(PRESETS["pilot"], name="pilot-deep", model=replace(PRESETS["pilot"].model, layers=4))
PRESETS["pilot-fresh"] = replace(PRESETS["pilot"], name="pilot-fresh", **FRESH_READING)
PRESETS["pilot-deep-fresh"] = replace(PRESETS["pilot-deep"], name="pilot-deep-fresh", **FRESH_READING)
PRESETS["smoke-pilot"] = Preset(  # the smoke world plus reading documents: the pilot study's tests
    name="smoke-pilot", people=PRESETS["smoke"].people, n_seed_instructions=60, n_dpo_instructions=80,
    n_eval_alpaca=30, probe_people_per_tier=5,
    model=PRESETS["smoke"].model, exposure_levels=SMOKE_LONG_TAIL_LEVELS, reading_people=40,
    reading_docs_per_person=4, stream="smoke")


RENAMED = {"longtail": "default"}  # 2026-12-03: the long-tail world became the default


def get_preset(name: str) -> Preset:
    if name in RENAMED:
        raise FlameError(f"preset {name!r} is now called {RENAMED[name]!r} (the same world); use --preset "
                         f"{RENAMED[name]}")
    if name not in PRESETS:
        raise unknown_name("preset", name, PRESETS)
    return PRESETS[name]
