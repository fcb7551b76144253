"""The source: everything a task or a training stage needs, from one place.

A source supplies the data (seed SFT examples with human responses, the DPO prompt pool, evaluation sets, the
knowledge source) and the evaluators (the fact-based instruction classifier, RM_IF, RM_fact, the FActScore scorer
and the pairwise judge). Two kinds exist and nothing downstream asks which one it has:

- `flame_bench.world.source.WorldSource`: the fact world, with program judges that know the ground truth;
- `flame_bench.real.source.RealSource`: real data files and LLM evaluators (a local model, the stage's own model,
  or an OpenAI-compatible endpoint), built once from a system file's `data:`/`evaluator:` blocks or the command line.

Items are plain dicts. Every item has an `id` and an `instruction`; fact-based items carry `topics` (knowledge
pages to retrieve from; empty = the whole source) and every evaluation item a `group` (popularity tier, or "all").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable


@dataclass
class EvalSet:
    """An evaluation set: its items, facts about the data worth recording, and its identity (for run configs)."""

    items: list[dict[str, Any]]
    identity: dict[str, Any] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)  # e.g. missing_topics
    extra: dict[str, Any] = field(default_factory=dict)
    format: str = ""  # how the items are to be prompted, where a task supports several (TruthfulQA)


@dataclass
class Reference:
    """The reference system of a pairwise task: item id -> output."""

    name: str
    identity: dict[str, Any]
    outputs: dict[str, str]


@runtime_checkable
class Classifier(Protocol):
    """The fact-based instruction classifier (FLAME's Figure 4 question: does answering need world knowledge?)."""

    name: str
    version: str

    def classify_many(self, instructions: Sequence[str]) -> list[bool]: ...


@runtime_checkable
class Reward(Protocol):
    """RM_IF or RM_fact: one score per (prompt record, response); None when the response cannot be scored.

    `identity` (name, version, backend) goes into stage keys; `stats` counts what went wrong (unparsable replies).
    """

    identity: dict[str, Any]
    stats: dict[str, int]

    def score_many(self, records: Sequence[dict[str, Any]], responses: Sequence[str]) -> list[float | None]: ...


class Source(Protocol):
    name: str  # short label for file names (a world directory's name, a suite's name)
    groups: tuple[str, ...]  # the evaluation groups in display order (popularity tiers; ("all",) for real data)
    pretrained_style: str  # how a plain-text base model is prompted with demonstrations (flame.PT_PROMPT_STYLES)

    @property
    def spec(self) -> dict[str, Any]:
        """How to open this source again (paths), for run records and re-scoring."""
        ...

    @property
    def fingerprint(self) -> dict[str, Any]:
        """What the source IS (content hashes and evaluator identities, no paths); run configs hash it."""
        ...

    def training_fingerprint(self) -> dict[str, Any]:
        """What training stages depend on (training data, knowledge, classifier and rewards); stage keys hash it."""
        ...

    def base_model(self) -> Path: ...

    def validate(self, training: bool = True) -> None:
        """Check everything that can be checked before any work starts (data files, endpoints); one-line errors."""
        ...

    def check_model(self, model_dir: Path) -> None:
        """Refuse a model that cannot read this source's text (one line naming the problem)."""
        ...

    def sft_examples(self) -> list[dict[str, Any]]:
        """Seed instructions with human responses: id, instruction, response, fact_based (label or None), groups."""
        ...

    def dpo_prompts(self) -> list[dict[str, Any]]:
        """The DPO instruction pool: id, instruction, topics (plus whatever the source's judges read)."""
        ...

    def has_eval_set(self, name: str) -> bool:
        """Whether the source has the data of evaluation set `name` (compare skips tasks that read one it lacks)."""
        ...

    def eval_set(self, name: str) -> EvalSet:
        """"bio" (biography entities), "alpaca" (instructions with reference outputs), "truthfulqa"."""
        ...

    def dataset_reference(self) -> Reference:
        """The reference outputs that come with the "alpaca" evaluation set (`--reference human`)."""
        ...

    @property
    def knowledge(self) -> Any: ...  # flame_bench.scoring.retrieval.KnowledgeSource

    def verifier_check_topics(self) -> list[str]:
        """The knowledge pages the verifier's quality check draws claims from: pages no evaluator was trained on."""
        ...

    @property
    def fact_classifier(self) -> Classifier: ...

    def rm_if(self, policy_model: Path | None = None) -> Reward:
        """RM_IF; `policy_model` is the stage's input model (the paper's self-rewarding judge, where asked for)."""
        ...

    @property
    def rm_fact(self) -> Reward: ...

    def factscorer(self, k: int) -> Any:  # flame_bench.scoring.factscore.FactScorer
        ...

    @property
    def pairwise_judge(self) -> Any: ...  # flame_bench.scoring.judges.PairwiseJudge


def open_source(spec: dict[str, Any] | None) -> Source:
    """Open a source again from its `spec` (as run records keep it), through the kind's registered opener."""
    from flame_bench.core.errors import FlameError
    from flame_bench.core.registry import SOURCE_KINDS

    kind = (spec or {}).get("kind")
    if not isinstance(kind, str) or kind not in SOURCE_KINDS:
        raise FlameError(f"cannot reopen a source of kind {kind!r}; pass the data explicitly (--world or a system)")
    return SOURCE_KINDS.get(kind)(spec)
