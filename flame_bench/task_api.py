"""What a task is: a small declarative value plus a `run(ctx)` that returns per-item samples and metrics.

Tasks register with `@TASKS.register()` at their definition site (the plugins under the top-level `tasks/`
folder). The evaluator builds an `EvalContext`, calls `task.run(ctx)`, and writes the returned `TaskResult`
as a run record (`flame_bench.records`); reports read only those records.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from flame_bench.generation import GenerationConfig


@dataclass(frozen=True)
class MetricInfo:
    """Declared once; reports, leaderboards and gates read it from here."""

    key: str
    display: str
    higher_is_better: bool = True
    description: str = ""
    percent: bool = True  # shown x100


@dataclass
class ModelHandle:
    """A model directory plus its identity; weights load lazily (safetensors only)."""

    name: str
    path: Path
    sha256: str
    _loaded: tuple[Any, Any] | None = field(default=None, repr=False)

    def load(self) -> tuple[Any, Any]:
        if self._loaded is None:
            from flame_bench.world.probe import load_model

            self._loaded = load_model(self.path)
        return self._loaded


@dataclass
class EvalContext:
    world: Any  # flame_bench.world.store.WorldDir
    model: ModelHandle
    generation: GenerationConfig = field(default_factory=GenerationConfig)
    limit: int | None = None
    seed: int = 0
    reference: Any = None  # pairwise tasks: a loaded reference run (records.RunRecord)
    cache: Any = None  # flame_bench.cache.GenerationCache
    quiet: bool = True
    options: dict[str, Any] = field(default_factory=dict)
    # generate(prompts) -> completions, through the cache; set by the evaluator
    generate: Callable[[list[str]], list[str]] | None = None


@dataclass
class TaskResult:
    metrics: dict[str, float | None]  # metric key -> value (fractions, not percent)
    samples: list[dict[str, Any]]  # one per item: id, prompt, output, per-item scores, evidence
    confidence_intervals: dict[str, tuple[float, float]] = field(default_factory=dict)  # 95%, same units
    counts: dict[str, int] = field(default_factory=dict)  # items, dropped, unparsable, abstained, ...
    breakdown: dict[str, dict[str, float | None]] = field(default_factory=dict)  # e.g. per popularity tier
    judge: dict[str, Any] | None = None  # judge identity (name, version, prompt version)
    prompt_versions: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Task:
    name: str
    version: str
    kind: Literal["generative", "loglikelihood", "pairwise"]
    description: str
    metrics: tuple[MetricInfo, ...]
    run: Callable[[EvalContext], TaskResult]
    primary_metric: str = ""
    needs_reference: bool = False
