"""What a task is: a small declarative value with three steps, `load -> generate -> score`.

- `load(ctx)` returns the evaluation items, taken from the source (`ctx.source`: the fact world or real data;
  a task never asks which);
- `generate(ctx, items)` produces the model's outputs (texts, or per-choice log-likelihoods) as `Generations`;
  the default answers each item's `instruction` through the cached generator;
- `score(ctx, generations)` turns them into a `TaskResult` (metrics, CIs, per-item samples with evidence).

Because scoring only needs the generations, a saved run can be re-scored or re-judged from its record without
generating again (`flame-bench rescore RUN`). A task declares its metrics once (`MetricInfo`) and how `compare` and
the leaderboard show it (`Column`), so adding a task touches only its own folder. Tasks register with
`@TASKS.register()` (the plugins under the top-level `tasks/` folder, or any folder in `FLAME_BENCH_TASK_PATH`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from flame_bench.engines.generation import GenerationConfig
from flame_bench.engines.models import ModelHandle


@dataclass(frozen=True)
class MetricInfo:
    """Declared once; reports, leaderboards and gates read it from here."""

    key: str
    display: str
    higher_is_better: bool = True
    description: str = ""
    percent: bool = True  # shown x100


@dataclass(frozen=True)
class Column:
    """One column of `compare`'s head-to-head table (FLAME's Table 3 layout), declared by the task it shows.

    `item_key`: the per-item score in the run's samples that paired deltas use (None: no delta). `position` orders
    columns across tasks. `reference_item_score`: what the reference system scores on each item when compared with
    itself (a pairwise win rate: 1/2), used instead of its own record. `role` marks the axes of the
    factuality-vs-helpfulness figure ("helpfulness" = x, "factuality" = y).
    """

    label: str
    metric: str
    item_key: str | None = None
    percent: bool = True
    position: int = 50
    reference_item_score: float | None = None
    role: str = ""
    judged: bool = True  # the value rests on the task's evaluators (a response length does not)


@dataclass(frozen=True)
class Breakdown:
    """A per-group view of one per-item score that `compare` and `seeds` show for the task declaring it: items
    grouped by a field their samples carry (e.g. a long-tail world's popularity bin), each system's mean per group
    and its paired delta vs the first system. Items without the field (another world, real data) leave it out.

    `key` names it in comparison files; `title` heads its table, whose first columns are `group_label` and
    `count_label` (items per group); `order` sorts the groups."""

    key: str
    title: str
    item_field: str
    item_key: str
    group_label: str = "group"
    count_label: str = "items"
    percent: bool = True
    order: Callable[[str], Any] = str


@dataclass(frozen=True)
class TaskData:
    """A data set a task brings itself, built from whichever source it runs on, so no framework file names it.

    `world(source)` builds the items on a fact world (its ground truth is `source.world`), `real(source)` on real
    data (e.g. from a file in the task's folder); a kind left None means the task has nothing to evaluate there, and
    `compare` leaves it out. Items are dicts with at least `id` and `instruction`. `version` enters the run key."""

    name: str
    version: str
    world: Callable[[Any], list[dict[str, Any]]] | None = None
    real: Callable[[Any], list[dict[str, Any]]] | None = None

    def builder(self, source: Any) -> Callable[[Any], list[dict[str, Any]]] | None:
        return self.world if source_kind(source) == "fact-world" else self.real

    def items(self, source: Any) -> list[dict[str, Any]]:
        """The items on `source` (built once per source)."""
        build = self.builder(source)
        if build is None:
            from flame_bench.core.errors import FlameError

            raise FlameError(f"task data {self.name!r} has no items on a {source_kind(source)} source; evaluate it "
                             "where it has data")
        cache = vars(source).setdefault("_task_data", {})  # kept on the source: gone with it
        if (self.name, self.version) not in cache:
            cache[(self.name, self.version)] = build(source)
        return cache[(self.name, self.version)]


def source_kind(source: Any) -> str:
    """"fact-world" or "real": the kind a source's spec names."""
    return str((getattr(source, "spec", None) or {}).get("kind", ""))


LM_BACKENDS = {  # log-likelihood tasks: name -> the lm-eval model that scores them (tasks/truthfulqa/task.py make_lm)
    "prefix": "flame-prefix: lm-eval's hf model with shared-prefix scoring (each primer and context once)",
    "hf": "lm-eval's hf model (every choice with its whole context)",
    "vllm": "lm-eval's vllm model (GPU; needs the vllm package)",
}
DEFAULT_LM_BACKEND = "prefix"


@dataclass
class EvalContext:
    source: Any  # flame_bench.core.source.Source: the fact world or real data
    model: ModelHandle
    generation: GenerationConfig = field(default_factory=GenerationConfig)
    seed: int = 0
    reference: Any = None  # pairwise tasks: flame_bench.core.evaluate.Reference
    quiet: bool = True
    lm_backend: str = DEFAULT_LM_BACKEND  # log-likelihood tasks: the lm-eval model that scores them (LM_BACKENDS)
    lm_batch_size: int = 32
    # generate(instructions) -> completions, through the cache; set by the evaluator
    generate: Callable[[list[str]], list[str]] | None = None


@dataclass
class Generations:
    """What a model produced for a task's items, in item order: everything scoring needs, nothing more."""

    items: list[dict[str, Any]]
    outputs: list[Any]  # a text per item, or (log-likelihood tasks) per-choice scores
    references: list[str] | None = None  # pairwise tasks: the reference system's output per item


@dataclass
class TaskResult:
    metrics: dict[str, float | None]  # metric key -> value (fractions, not percent)
    samples: list[dict[str, Any]]  # one per item: id, prompt, output, per-item scores, evidence
    confidence_intervals: dict[str, tuple[float, float]] = field(default_factory=dict)  # 95%, same units
    counts: dict[str, int] = field(default_factory=dict)  # items, dropped, unparsable, abstained, ...
    breakdown: dict[str, dict[str, float | None]] = field(default_factory=dict)  # e.g. per popularity tier
    judge: dict[str, Any] | None = None  # judge / scorer identity (name, version, prompt version, backend)
    prompt_versions: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


def generate_answers(ctx: EvalContext, items: list[dict[str, Any]]) -> Generations:
    """The default `generate`: the model's answer to each item's `instruction`."""
    assert ctx.generate is not None
    return Generations(items, ctx.generate([it["instruction"] for it in items]))


def outputs_from_samples(samples: list[dict[str, Any]]) -> list[Any]:
    """The default way back from a run's samples to its outputs (for re-scoring)."""
    return [s["output"] for s in samples]


@dataclass(frozen=True)
class Task:
    name: str
    version: str
    kind: Literal["generative", "loglikelihood", "pairwise"]
    description: str
    metrics: tuple[MetricInfo, ...]
    load: Callable[[EvalContext], list[dict[str, Any]]]
    score: Callable[[EvalContext, Generations], TaskResult]
    generate: Callable[[EvalContext, list[dict[str, Any]]], Generations] = generate_answers
    outputs_from_samples: Callable[[list[dict[str, Any]]], list[Any]] = outputs_from_samples
    primary_metric: str = ""
    needs_reference: bool = False
    columns: tuple[Column, ...] = ()  # how compare shows it; a task without columns is not part of compare
    # what it evaluates on: one of the source's standard evaluation sets ("bio", "alpaca", "truthfulqa"), or a
    # TaskData it brings; compare skips the task where the source has none
    data: str | TaskData = ""
    breakdowns: tuple[Breakdown, ...] = ()  # per-group views compare and seeds show (e.g. per popularity bin)
    imports: tuple[str, ...] = ()  # formats of outside outputs `flame-bench import` scores as runs of this task
    # the evaluator roles its metrics rest on ("verifier", "pairwise_judge", "classifier"): each role's measured
    # quality is recorded beside the metrics, and a weak one marks them (flame_bench.scoring.quality)
    evaluators: tuple[str, ...] = ()
    # named operations a task offers to commands beyond load/generate/score, found by name, never by task:
    # "lm_eval_export" (source, out_dir) -> lm-eval task names written (`export-tasks`); "make_lm" and
    # "evaluate_mc" (an lm-eval model per scorer and the multiple-choice metrics over it: `bench --truthfulqa`)
    tools: dict[str, Callable[..., Any]] = field(default_factory=dict)

    def runs_on(self, source: Any) -> bool:
        """Whether `source` has data for this task."""
        if isinstance(self.data, TaskData):
            return self.data.builder(source) is not None
        return not self.data or source.has_eval_set(self.data)

    def __hash__(self) -> int:  # tools is a dict: hash by identity of name and version
        return hash((self.name, self.version))

    @property
    def position(self) -> int:
        """Where the task sits among columns (leaderboard order)."""
        return min((c.position for c in self.columns), default=99)
