"""The comparison data model: what every view of a comparison reads (the console and markdown tables, the figure,
the HTML page, saved comparison files, the seed summary).

A `SystemResult` is one system's stages and run records. Columns come from the tasks (`Task.columns`), per-group
views from `Task.breakdowns`, and the training-data table (the paper's Table 11) from each stage's recipe
(`Recipe.training_data`): nothing here names a task or a recipe.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flame_bench.core.records import RunRecord
from flame_bench.core.registry import RECIPES, TASKS
from flame_bench.core.stats import Delta, paired_bootstrap, paired_bootstrap_over_seeds
from flame_bench.core.task_api import Breakdown, Column, Task


@dataclass
class SystemResult:
    name: str
    description: str
    model_dir: Path
    stages: list[dict[str, Any]]
    runs: dict[str, RunRecord] = field(default_factory=dict)
    _samples: dict[str, list[dict[str, Any]]] = field(default_factory=dict, repr=False)

    def metric(self, task: str, key: str) -> float | None:
        return self.runs[task].metrics.get(key) if task in self.runs else None

    def samples(self, task: str) -> list[dict[str, Any]]:
        """A run's samples, read once (deltas, lengths and the figure all need them)."""
        if task not in self._samples:
            self._samples[task] = self.runs[task].samples()
        return self._samples[task]

    def item_scores(self, task: str, key: str) -> dict[str, float | None]:
        return {s["id"]: s.get(key) for s in self.samples(task)}

    def weak_evaluators(self, task: str) -> list[str]:
        """The roles `task`'s run rests on that measured weak (its `evaluator_quality` block)."""
        from flame_bench.scoring.quality import weak_roles

        return weak_roles(self.runs[task].header.get("evaluator_quality") or {}) if task in self.runs else []

    def output_length(self, task: str) -> float:
        outs = [s["output"] for s in self.samples(task)]
        return sum(len(o) for o in outs) / max(1, len(outs))


def table_columns(tasks: list[Task]) -> list[tuple[Task, Column]]:
    return sorted(((t, c) for t in tasks for c in t.columns), key=lambda tc: (tc[1].position, tc[0].name))


def columns_of(results: list[SystemResult]) -> list[tuple[Task, Column]]:
    tasks = [TASKS.get(t) for t in dict.fromkeys(t for r in results for t in r.runs) if t in TASKS]
    return table_columns(tasks)


def deltas(results: list[SystemResult], seed: int = 0) -> dict[str, dict[str, Delta | None]]:
    """Paired deltas of every system against the first, per column that has per-item scores."""
    base = results[0]
    out: dict[str, dict[str, Delta | None]] = {}
    for r in results[1:]:
        out[r.name] = {}
        for task, col in columns_of(results):
            if col.item_key is None:
                continue
            a = base.item_scores(task.name, col.item_key)
            if col.reference_item_score is not None:  # the reference against itself
                a = {k: col.reference_item_score for k in a}
            out[r.name][col.label] = paired_bootstrap(a, r.item_scores(task.name, col.item_key), seed)
    return out


def breakdown_views(tasks: list[Task]) -> list[tuple[Task, Breakdown]]:
    """Every per-group view the tasks declare (`Task.breakdowns`), in task order."""
    return [(t, b) for t in tasks for b in t.breakdowns]


def breakdowns(results: list[SystemResult], seed: int = 0) -> dict[str, dict[str, dict[str, Any]]]:
    """Each declared breakdown of the compared tasks, group by group: {breakdown key: {group: {system: {"value",
    "n", "delta"}}}}, deltas paired within the group vs the first system. A breakdown whose items carry no group
    (e.g. no popularity bins outside a long-tail world) is left out."""
    tasks = [TASKS.get(t) for t in dict.fromkeys(t for r in results for t in r.runs) if t in TASKS]
    out = {}
    for task, view in breakdown_views(tasks):
        if not all(task.name in r.runs for r in results):
            continue
        groups_of = {s["id"]: s.get(view.item_field) for s in results[0].samples(task.name)}
        if any(g is not None for g in groups_of.values()):
            out[view.key] = group_scores(groups_of, {r.name: [r.item_scores(task.name, view.item_key)]
                                                     for r in results}, seed, view.order)
    return out


def breakdown_view(key: str) -> Breakdown | None:
    """The registered breakdown saved under `key` in comparison files."""
    return next((b for _, b in breakdown_views([TASKS.get(n) for n in TASKS.names()]) if b.key == key), None)


def group_scores(groups_of: dict[str, str | None], scores: dict[str, list[dict[str, Any]]], boot_seed: int,
                 order: Callable[[str], Any] = str) -> dict[str, dict[str, Any]]:
    """Per group (`groups_of`: item id -> group), each system's mean score (`scores`: system -> per-seed item scores;
    the mean over seeds of each seed's mean) and its delta vs the first system, each item's difference averaged
    over the seeds (with one seed, `paired_bootstrap_over_seeds` is the plain paired bootstrap)."""
    from statistics import mean

    base = next(iter(scores))
    out: dict[str, dict[str, Any]] = {}
    for label in sorted({b for b in groups_of.values() if b is not None}, key=order):
        ids = {k for k, b in groups_of.items() if b == label}
        in_bin = {n: [{k: v for k, v in seed_scores.items() if k in ids} for seed_scores in per_seed]
                  for n, per_seed in scores.items()}
        out[label] = {}
        for n, per_seed in in_bin.items():
            means = [sum(p) / len(p) for m in per_seed if (p := [v for v in m.values() if v is not None])]
            d = None if n == base else paired_bootstrap_over_seeds(in_bin[base], per_seed, boot_seed)
            out[label][n] = {"value": mean(means) if means else None, "n": len(ids), "delta": d.__dict__ if d else None}
    return out


def fmt(v: float | None, percent: bool) -> str:
    return "-" if v is None else (f"{100 * v:.1f}" if percent else f"{v:.2f}")


def fmt_delta(d: Delta | None, percent: bool) -> str:
    if d is None:
        return ""
    k = 100 if percent else 1
    mark = "*" if d.excludes_zero else ""
    return f"{k * d.value:+.1f} [{k * d.low:+.1f}, {k * d.high:+.1f}]{mark}"


# -- Table 11: what each system trained on ----------------------------------------------------------------------
TABLE11_COLUMNS = ("seed #inst x∉X_fact", "seed #inst x∈X_fact", "IF pairs", "fact pairs", "DPO train pairs")


def training_columns(results: list[SystemResult]) -> tuple[str, ...]:
    """The paper's Table 11 columns, then any further column a compared system's recipes declare."""
    extra = [c for r in results for cells in _stage_cells(r) for c in cells if c not in TABLE11_COLUMNS]
    return TABLE11_COLUMNS + tuple(dict.fromkeys(extra))


def _stage_cells(result: SystemResult) -> list[dict[str, str]]:
    """What each of a system's stages trained on, as its recipe declares it (`Recipe.training_data`)."""
    cells = []
    for stage in result.stages:
        recipe = RECIPES.get(stage["recipe"]) if stage["recipe"] in RECIPES else None
        if recipe is not None and recipe.training_data is not None:
            cells.append(recipe.training_data(stage["stats"]))
    return cells


def training_rows(results: list[SystemResult]) -> list[list[str]]:
    """The paper's Table 11 layout from the stage records: each stage's recipe fills the cells it declares (a later
    stage's cell replaces an earlier one's); "-" where no stage says."""
    columns = training_columns(results)
    rows = []
    for r in results:
        row = dict.fromkeys(columns, "-")
        for cells in _stage_cells(r):
            row.update(cells)
        rows.append([r.name, *row.values()])
    return rows


def runs_numerics(records) -> str:
    """The numerics mode the runs were made in (`core.numerics`), "mixed: ..." when they differ, "unrecorded"
    for runs made before the mode was recorded."""
    modes = sorted({str((rec.header.get("environment") or {}).get("numerics", "unrecorded")) for rec in records})
    return modes[0] if len(modes) == 1 else "mixed: " + ", ".join(modes)


WEAK_MARK = "†"  # a value resting on an evaluator at chance on its check


def weak_mark(result: SystemResult, task: Task, col: Column) -> str:
    return WEAK_MARK if col.judged and result.weak_evaluators(task.name) else ""


def weak_notes(results: list[SystemResult]) -> list[str]:
    """One line per weak evaluator behind the compared runs, for the footnote of every table that marks them."""
    from flame_bench.scoring.quality import weak_note

    notes = [weak_note(rec.header.get("evaluator_quality") or {}) for r in results for rec in r.runs.values()]
    return [f"{WEAK_MARK} not meaningful: {n}" for n in dict.fromkeys(n for n in notes if n)]
