"""`flame-bench compare A B [C...]`: train what is missing, evaluate every system on every task against the
same reference (the first system, as the paper compares against SFT + DPO), and render FLAME's Table 3 layout
with paired-bootstrap deltas, the Table 11 training-data counts and the factuality-vs-helpfulness figure (the
paper's Figure 1).

The columns come from the tasks (`Task.columns`): a registered task with columns is part of every comparison.
Fact-world systems train and evaluate on the world; systems that name real data train on their own data and are
all evaluated on the first system's evaluation data and evaluators (they must agree, or the comparison is not
paired).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from rich.table import Table
from rich.text import Text

from flame_bench import distributed
from flame_bench.cache import GenerationCache
from flame_bench.errors import FlameError
from flame_bench.evaluate import evaluate
from flame_bench.generation import using_backend
from flame_bench.io import atomic_path, read_json, write_json, write_text
from flame_bench.paths import comparisons_dir, generation_cache_path
from flame_bench.records import RunRecord, invalid_value, load_run
from flame_bench.registry import TASKS
from flame_bench.report import md_row
from flame_bench.scoring.factscore import popularity_order
from flame_bench.stages import check_stages, run_stages
from flame_bench.stats import Delta, paired_bootstrap, paired_bootstrap_over_seeds
from flame_bench.task_api import Column, Task
from flame_bench.ui import console


def compare_tasks(names: list[str] | None = None, source=None) -> list[Task]:
    """The tasks a comparison runs: those named, else every task with columns whose data the source has, in column
    order."""
    if names:
        tasks = [TASKS.get(n) for n in dict.fromkeys(names)]
        without = [t.name for t in tasks if not t.columns]
        if without:
            raise FlameError(f"task {without[0]} declares no compare columns; pick tasks that do")
    else:
        tasks = [TASKS.get(n) for n in TASKS.names() if TASKS.get(n).columns]
        tasks = [t for t in tasks if source is None or not t.data or source.has_eval_set(t.data)]
    return sorted(tasks, key=lambda t: (t.position, t.name))


def table_columns(tasks: list[Task]) -> list[tuple[Task, Column]]:
    return sorted(((t, c) for t in tasks for c in t.columns), key=lambda tc: (tc[1].position, tc[0].name))


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

    def output_length(self, task: str) -> float:
        outs = [s["output"] for s in self.samples(task)]
        return sum(len(o) for o in outs) / max(1, len(outs))


def system_sources(specs: list, world_source, quiet: bool = True) -> list:
    """The source each system trains on; the first one's evaluation data and evaluators serve every system."""
    from flame_bench.real.source import RealSource

    kinds = {s.uses_world for s in specs}
    if len(kinds) > 1:
        world = [s.name for s in specs if s.uses_world]
        real = [s.name for s in specs if not s.uses_world]
        raise FlameError(f"systems {', '.join(world)} use the fact world and {', '.join(real)} real data; a comparison "
                         "is paired on one evaluation set: compare systems of one kind")
    if specs[0].uses_world:
        if world_source is None:
            raise FlameError("fact-world systems need a world; pass --world or --preset")
        return [world_source] * len(specs)
    sources = [RealSource(s.data, quiet=quiet) for s in specs]
    first = sources[0].eval_fingerprint()
    for spec, src in zip(specs[1:], sources[1:], strict=True):
        if src.eval_fingerprint() != first:
            raise FlameError(f"system {spec.name} evaluates on other data or evaluators than {specs[0].name} "
                             f"({spec.path} vs {specs[0].path}); give the systems one data: file")
    return sources


def train_and_evaluate(names: list[str], world_source=None, seed: int = 0, limit: int | None = None,
                       quiet: bool = False, task_names: list[str] | None = None) -> tuple[list[SystemResult], Any]:
    """Train every system (stages cached), evaluate each on every compare task; returns (results, eval source)."""
    from flame_bench.registry import RECIPES
    from flame_bench.systems import load_system

    specs = [load_system(n, known_recipes=RECIPES.names()) for n in names]  # every file checked before training
    if len({s.name for s in specs}) != len(specs):
        raise FlameError("a system is named twice; name each system once")
    sources = system_sources(specs, world_source, quiet)
    tasks = compare_tasks(task_names, sources[0])
    for src in {id(s): s for s in sources}.values():  # data reads and endpoints answer before anything trains
        src.validate()
    for spec, source in zip(specs, sources, strict=True):  # every base model and stage config, too
        check_stages(spec.base_model, [(s.recipe, dict(s.config)) for s in spec.stages], source, str(spec.path))
    cache = GenerationCache(generation_cache_path())
    results = []
    try:
        for spec, source in zip(specs, sources, strict=True):
            with using_backend(spec.generation):
                model, stages = run_stages(spec.base_model, [(s.recipe, dict(s.config)) for s in spec.stages], source,
                                           seed, cache, quiet, where=str(spec.path))
            results.append(SystemResult(spec.name, spec.description, model, stages))
    finally:
        cache.close()
    eval_source = sources[0]
    if not distributed.is_main():  # under `accelerate launch`: the other ranks only train
        return results, eval_source
    reference = str(results[0].model_dir)
    for r, spec in zip(results, specs, strict=True):
        with using_backend(spec.generation):
            records = evaluate(str(r.model_dir), [t.name for t in tasks], eval_source, reference=reference, limit=limit,
                               seed=seed, quiet=quiet, model_name=r.name, reference_name=results[0].name)
        r.runs = {rec.task: rec for rec in records}
    return results, eval_source


def _columns_of(results: list[SystemResult]) -> list[tuple[Task, Column]]:
    tasks = [TASKS.get(t) for t in dict.fromkeys(t for r in results for t in r.runs) if t in TASKS]
    return table_columns(tasks)


def deltas(results: list[SystemResult], seed: int = 0) -> dict[str, dict[str, Delta | None]]:
    """Paired deltas of every system against the first, per column that has per-item scores."""
    base = results[0]
    out: dict[str, dict[str, Delta | None]] = {}
    for r in results[1:]:
        out[r.name] = {}
        for task, col in _columns_of(results):
            if col.item_key is None:
                continue
            a = base.item_scores(task.name, col.item_key)
            if col.reference_item_score is not None:  # the reference against itself
                a = {k: col.reference_item_score for k in a}
            out[r.name][col.label] = paired_bootstrap(a, r.item_scores(task.name, col.item_key), seed)
    return out


BIN_TASK = "factscore_bio"  # the task whose items carry a popularity bin in a long-tail world


def bin_deltas(results: list[SystemResult], seed: int = 0) -> dict[str, dict[str, Any]]:
    """Bio FActScore per popularity bin (a long-tail world's items carry one) and each system's paired delta against
    the first, bin by bin: {bin: {system: {"value", "n", "delta"}}}; empty when the items carry no bin."""
    if not all(BIN_TASK in r.runs for r in results):
        return {}
    bins_of = {s["id"]: s.get("popularity") for s in results[0].samples(BIN_TASK)}
    return _popularity_bins(bins_of, {r.name: [r.item_scores(BIN_TASK, "factscore")] for r in results}, seed)


def _popularity_bins(bins_of: dict[str, str | None], scores: dict[str, list[dict[str, Any]]],
                     boot_seed: int) -> dict[str, dict[str, Any]]:
    """Per popularity bin, each system's FActScore (`scores`: system -> per-seed item scores; the mean over seeds of
    each seed's mean) and its delta vs the first system, each item's difference averaged over the seeds (with one
    seed, `paired_bootstrap_over_seeds` is the plain paired bootstrap)."""
    from statistics import mean

    base = next(iter(scores))
    out: dict[str, dict[str, Any]] = {}
    for label in sorted({b for b in bins_of.values() if b is not None}, key=popularity_order):
        ids = {k for k, b in bins_of.items() if b == label}
        in_bin = {n: [{k: v for k, v in seed_scores.items() if k in ids} for seed_scores in per_seed]
                  for n, per_seed in scores.items()}
        out[label] = {}
        for n, per_seed in in_bin.items():
            means = [sum(p) / len(p) for m in per_seed if (p := [v for v in m.values() if v is not None])]
            d = None if n == base else paired_bootstrap_over_seeds(in_bin[base], per_seed, boot_seed)
            out[label][n] = {"value": mean(means) if means else None, "n": len(ids), "delta": d.__dict__ if d else None}
    return out


def bin_table(bins: dict[str, dict[str, Any]], names: Sequence[str], over: str = "") -> Table:
    """`bin_deltas` (one seed) or `across_seeds`' pooled bins (`over` names the seeds) as a table."""
    table = Table(title=f"Bio FActScore by popularity bin (pretraining documents per person){over}",
                  caption="paired delta vs the first system [95% bootstrap CI], * = CI excludes 0")
    table.add_column("bin")
    table.add_column("people", justify="right")
    for name in names:
        table.add_column(name, justify="right")
    for label, row in bins.items():
        cells = []
        for name in names:
            cell = row[name]
            d = cell["delta"]
            cells.append(_fmt(cell["value"], True) + (f"\n{_fmt_delta(Delta(**d), True)}" if d else ""))
        table.add_row(label, str(next(iter(row.values()))["n"]), *cells)
    return table


def _fmt(v: float | None, percent: bool) -> str:
    return "-" if v is None else (f"{100 * v:.1f}" if percent else f"{v:.2f}")


def _fmt_delta(d: Delta | None, percent: bool) -> str:
    if d is None:
        return ""
    k = 100 if percent else 1
    mark = "*" if d.excludes_zero else ""
    return f"{k * d.value:+.1f} [{k * d.low:+.1f}, {k * d.high:+.1f}]{mark}"


def comparison_table(results: list[SystemResult], dl: dict[str, dict[str, Delta | None]]) -> Table:
    cols = _columns_of(results)
    table = Table(title=f"flame-bench compare (reference for win rate: {results[0].name})",
                  caption="Table 3 layout; second line: paired delta vs the first system [95% bootstrap CI], "
                          "* = CI excludes 0. Length = mean Alpaca response characters.")
    table.add_column("system")
    for _, col in cols:
        table.add_column(col.label, justify="right")
    for r in results:
        cells = []
        for task, col in cols:
            value = _fmt(r.metric(task.name, col.metric), col.percent)
            d = dl.get(r.name, {}).get(col.label)
            cells.append(value + (f"\n{_fmt_delta(d, col.percent)}" if d else ""))
        table.add_row(r.name, *cells)
    return table


def comparison_markdown(results: list[SystemResult], dl: dict[str, dict[str, Delta | None]]) -> str:
    cols = _columns_of(results)
    lines = [md_row(["system", *(c.label for _, c in cols)]), "|" + "---|" * (len(cols) + 1)]
    for r in results:
        cells = []
        for task, col in cols:
            d = dl.get(r.name, {}).get(col.label)
            cells.append(_fmt(r.metric(task.name, col.metric), col.percent) + (
                f" ({_fmt_delta(d, col.percent)})" if d else ""))
        lines.append(md_row([r.name, *cells]))
    return "\n".join(lines) + "\n"


# -- Table 11: what each system trained on ----------------------------------------------------------------------
PAIR_COLUMNS = ("seed #inst x∉X_fact", "seed #inst x∈X_fact", "IF pairs", "fact pairs", "DPO train pairs")


def training_rows(results: list[SystemResult]) -> list[list[str]]:
    """The paper's Table 11 layout from the stage records: the seed split (fact-based = answered by the base model in
    SFT^flame; "-" where no classifier ran) and the preference pairs each DPO stage built and trained on."""
    rows = []
    for r in results:
        nonfact = fact = if_pairs = fact_pairs = train = "-"
        for stage in r.stages:
            stats, recipe = stage["stats"], stage["recipe"]
            if "pairs_digest" in stats:
                uses_if = recipe != "fact_dpo"
                uses_fact = recipe != "dpo"
                if_pairs = f"{stats['if_pairs']}" if uses_if else f"({stats['if_pairs']} unused)"
                fact_pairs = f"{stats['fact_pairs']}" if uses_fact else f"({stats['fact_pairs']} unused)"
                train = str(stats.get("train_pairs", "-"))
            elif "instructions" in stats:
                n, pt = stats["instructions"], stats.get("pt_instructions", 0)
                if recipe == "flame_sft":
                    nonfact, fact = str(n - pt), str(pt)
                else:
                    nonfact, fact = str(n), "-"
        rows.append([r.name, nonfact, fact, if_pairs, fact_pairs, train])
    return rows


def training_table(results: list[SystemResult]) -> Table:
    table = Table(title="Training data (the paper's Table 11 layout)",
                  caption="SFT^flame answers the fact-based seed instructions with the base model's own samples; "
                          "(n unused) = pairs built but not trained on by that recipe.")
    table.add_column("system")
    for col in PAIR_COLUMNS:
        table.add_column(col, justify="right")
    for row in training_rows(results):
        table.add_row(*row)
    return table


def training_markdown(results: list[SystemResult]) -> str:
    lines = [md_row(["system", *PAIR_COLUMNS]), "|" + "---|" * (len(PAIR_COLUMNS) + 1)]
    lines += [md_row(row) for row in training_rows(results)]
    return "\n".join(lines) + "\n"


# -- figure and files --------------------------------------------------------------------------------------------
def figure(results: list[SystemResult], path: Path) -> bool:
    """Factuality vs helpfulness (the columns with those roles), dot size = mean length of the factuality task's
    outputs, whiskers = the 95% CIs of the run records. False when the comparison has no such columns."""
    cols = {c.role: (t, c) for t, c in _columns_of(results) if c.role}
    if "helpfulness" not in cols or "factuality" not in cols:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # points and 95% CIs from the run headers, honest axes (shared with the HTML page)
    from flame_bench.html_report import PALETTE, axis_limits, figure_points, point_extents

    found = figure_points(results)
    if found is None:
        return False
    xlabel, ylabel, points = found
    fig, ax = plt.subplots(figsize=(6, 4.5), dpi=120)
    for i, p in enumerate(points):
        color = PALETTE[[r.name for r in results].index(p.name) % len(PALETTE)]
        xerr = [[p.x - p.x_ci[0]], [p.x_ci[1] - p.x]] if p.x_ci else None
        yerr = [[p.y - p.y_ci[0]], [p.y_ci[1] - p.y]] if p.y_ci else None
        ax.errorbar([p.x], [p.y], xerr=xerr, yerr=yerr, fmt="none", ecolor=color, capsize=3, lw=1.2, zorder=i)
        ax.scatter([p.x], [p.y], s=max(20.0, p.length), alpha=0.6, color=color, zorder=i + 0.5)
        ax.annotate(f"{p.name}\nlength {p.length:.0f}", (p.x, p.y), textcoords="offset points", xytext=(6, 6),
                    fontsize=8)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title("Factuality vs helpfulness (dot size = mean length, chars; 95% CIs)", fontsize=10)
    ax.grid(alpha=0.3)
    xs, ys = point_extents(points)
    ax.set_xlim(*axis_limits(xs))  # every whisker inside, at least +-5 points around the data: never a zoom
    ax.set_ylim(*axis_limits(ys))
    fig.tight_layout()
    with atomic_path(path) as tmp:  # two comparisons finishing together never leave a torn image
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return True


def comparison_name(names: list[str], source_name: str, seed: int, limit: int | None = None) -> str:
    """A limited comparison gets a name of its own, so it never replaces the full one."""
    return "_vs_".join(names) + f"__{source_name}__seed{seed}" + (f"__limit{limit}" if limit else "")


def save_comparison(results: list[SystemResult], dl: dict[str, dict[str, Delta | None]], source,
                    seed: int, limit: int | None = None, html: bool = False) -> Path:
    """The comparison's .md, .json and .png (and .html when asked, or when one is there already: a page beside
    the records never shows older numbers than they do)."""
    if not any(rec.header.get("limit") for r in results for rec in r.runs.values()):
        limit = None  # a --limit that covered every item of every task: the full comparison
    out = comparisons_dir() / comparison_name([r.name for r in results], source.name, seed, limit)
    mode = runs_numerics(rec for r in results for rec in r.runs.values())
    write_text(_beside(out, ".md"), comparison_markdown(results, dl) + "\n" + training_markdown(results)
               + f"\nNumerics: {mode} (`flame_bench/numerics.py`).\n")
    if not mode.startswith("reproducible"):
        console.print(f"[yellow]note:[/yellow] numerics {mode}: these numbers hold for this machine's float kernels "
                      "only (the default mode, reproducible, gives the same bits on every x86-64 CPU)")
    factual = next((t.name for t, c in _columns_of(results) if c.role == "factuality"), None)
    write_json(_beside(out, ".json"), {
        "systems": [{"name": r.name, "description": r.description, "model_dir": str(r.model_dir),
                     "stages": r.stages, "runs": {t: str(rec.path) for t, rec in r.runs.items()},
                     "metrics": {c.label: r.metric(t.name, c.metric) for t, c in _columns_of(results)},
                     **({"bio_length": r.output_length(factual)} if factual else {})} for r in results],
        "deltas": {s: {c: (d.__dict__ if d else None) for c, d in cols.items()} for s, cols in dl.items()},
        "training": [dict(zip(("system", *PAIR_COLUMNS), row, strict=True)) for row in training_rows(results)],
        **({"by_popularity_bin": bins} if (bins := bin_deltas(results, seed)) else {}),
        "source": source.spec, "source_fingerprint": source.fingerprint, "seed": seed, "limit": limit,
        "numerics": mode,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    })
    figure(results, _beside(out, ".png"))
    console.print(f"comparison written to {out}.{{md,json,png}}")
    if html or _beside(out, ".html").exists():  # one self-contained page beside the comparison
        from flame_bench.html_report import comparison_html

        knowledge = _knowledge_or_none(source)
        write_text(_beside(out, ".html"), comparison_html(results, dl, out.name, knowledge))
        console.print(f"HTML report: {_beside(out, '.html')}")
    return out


def runs_numerics(records) -> str:
    """The numerics mode the runs were made in (`flame_bench.numerics`), "mixed: ..." when they differ, "unrecorded"
    for runs made before the mode was recorded."""
    modes = sorted({str((rec.header.get("environment") or {}).get("numerics", "unrecorded")) for rec in records})
    return modes[0] if len(modes) == 1 else "mixed: " + ", ".join(modes)


def _beside(out: Path, ext: str) -> Path:
    """`out` + `ext` (never `with_suffix`: a name like "...rmif0.24__seed0" would lose its ".24__seed0")."""
    return out.with_name(out.name + ext)


def _knowledge_or_none(source) -> Any:
    """The evaluation source's knowledge passages (the page shows evidence ids only without them)."""
    try:
        return source.knowledge
    except FlameError:  # e.g. real data without a knowledge source
        return None


def _item_scores(saved_system: dict[str, Any], task: str, key: str) -> dict[str, Any]:
    return {x["id"]: x.get(key) for x in load_run(saved_system["runs"][task]).samples()}


_SAVED = re.compile(r"^(?P<systems>.+?)__(?P<source>.+)__seed(?P<seed>\d+)(?:__limit(?P<limit>\d+))?\.json$")


def _saved_comparisons() -> list[tuple[Path, list[str], str, int, int | None]]:
    """(file, systems, source, seed, limit) of every saved comparison, from the names `comparison_name` gives."""
    out = []
    for path in sorted(comparisons_dir().glob("*__seed*.json")):
        if m := _SAVED.match(path.name):
            out.append((path, m["systems"].split("_vs_"), m["source"], int(m["seed"]),
                        int(m["limit"]) if m["limit"] else None))
    return out


def _world_flag(source_name: str, saved: list | None = None) -> str:
    """The `--world ...` a suggested `compare` needs to reach `source_name` ("" for the default world and real
    sources, whose systems name their data)."""
    mine = [x for x in (_saved_comparisons() if saved is None else saved) if x[2] == source_name]
    spec = _saved_source(mine[0][0]) if mine else {}
    if spec.get("kind") == "fact-world":
        return f" --world {spec['path']}"
    if spec or source_name == "default-s0":
        return ""
    return f" --world <the folder of world {source_name}>"


def _no_comparison(names: list[str], source_name: str, seed: int) -> FlameError:
    """Why no saved comparison serves `seed`, with what is there instead (systems, sources, seeds, limited runs)."""
    saved = _saved_comparisons()
    held = sorted({n for _, systems, *_ in saved for n in systems})
    unknown = [n for n in names if n not in held]
    if saved and unknown:
        return FlameError(f"no saved comparison holds system {', '.join(map(repr, unknown))} (saved comparisons hold: "
                          f"{', '.join(held)}); check the name")
    mine = [x for x in saved if x[2] == source_name]
    command = f"`flame-bench compare {' '.join(names)} --seed {seed}{_world_flag(source_name, saved)}`"
    if saved and not mine:
        return FlameError(f"no saved comparison on {source_name!r} (saved comparisons are on: "
                          f"{', '.join(sorted({x[2] for x in saved}))}); pass one of them as --world, or run {command}")
    limited = [x[0].name for x in mine if x[3] == seed and x[4] and all(n in x[1] for n in names)]
    if limited:
        return FlameError(f"only a limited comparison of {', '.join(names)} on {source_name} with seed {seed} is "
                          f"saved ({', '.join(limited)}); seeds combines full comparisons: run {command} (no --limit)")
    seeds = sorted({x[3] for x in mine if not x[4] and all(n in x[1] for n in names)})
    there = f" (saved seeds: {', '.join(map(str, seeds))})" if seeds else ""
    return FlameError(f"no saved comparison of {', '.join(names)} on {source_name} with seed {seed}{there}; run "
                      f"{command} first")


def _saved_source(path: Path) -> dict[str, Any]:
    try:
        data = read_json(path)
    except FlameError:
        return {}
    return data["source"] if isinstance(data, dict) and isinstance(data.get("source"), dict) else {}


def _same(a: object, b: object) -> bool:
    return a == b or (invalid_value(a) is not None and invalid_value(a) == invalid_value(b))


def across_seeds(names: list[str], source_name: str, seeds: list[int]) -> dict[str, Any]:
    """Mean and spread over seeds of saved comparisons, plus deltas vs the first system over items, each item's
    difference averaged over the seeds first (`paired_bootstrap_over_seeds`: items are the unit resampled). Reads
    the saved comparisons and the run records only; a comparison whose saved metric is not its run record's (stale
    or edited) is refused, and a non-finite value is left out of mean and std and named."""
    from statistics import mean, stdev

    per_seed: dict[int, dict[str, Any]] = {}
    files: dict[int, Path] = {}
    contents: dict[int, str] = {}  # seed -> the world's content hash its comparison records (newer files carry it)
    for seed in seeds:
        found = sorted(comparisons_dir().glob(f"*__{source_name}__seed{seed}.json"), key=lambda p: p.stat().st_mtime)
        for path in reversed(found):  # the most recent comparison that has every system
            data = read_json(path)
            if not isinstance(data, dict) or "systems" not in data:  # another report (e.g. the pilot study's)
                continue
            listed = data["systems"]
            if not isinstance(listed, list) or not all(isinstance(s, dict) and isinstance(s.get("name"), str)
                                                       and isinstance(s.get("runs"), dict) for s in listed):
                raise FlameError(f"{path}: 'systems' is not a list of systems with their runs (damaged or edited); "
                                 "delete it or re-run the compare that wrote it")
            systems = {s["name"]: s for s in listed}
            if all(n in systems for n in names):
                per_seed[seed], files[seed] = systems, path
                if content := (data.get("source_fingerprint") or {}).get("content_sha256"):
                    contents[seed] = content
                break
        else:
            raise _no_comparison(names, source_name, seed)
    if len(set(contents.values())) > 1:  # e.g. a world rebuilt from another definition of its preset
        seen = ", ".join(f"seed {s}: {c[:8]}" for s, c in sorted(contents.items()))
        raise FlameError(f"the saved comparisons on {source_name} come from different worlds ({seen}); run "
                         f"`flame-bench compare {' '.join(names)} --seed N{_world_flag(source_name)}` again for the "
                         "seeds of the stale world")
    runs0 = per_seed[seeds[0]][names[0]]["runs"]
    cols = table_columns([TASKS.get(t) for t in runs0 if t in TASKS])
    summary: dict[str, Any] = {"source": source_name, "seeds": seeds, "systems": {}, "pooled_deltas": {},
                               "columns": [{"label": c.label, "percent": c.percent} for _, c in cols]}
    records: dict[str, RunRecord] = {}

    def run_of(path: str) -> RunRecord:  # each run record read once
        if path not in records:
            records[path] = load_run(path)
        return records[path]

    left_out: list[str] = []
    for name in names:
        summary["systems"][name] = {}
        for task, col in cols:
            vals = []
            for s in seeds:
                saved = per_seed[s][name]["metrics"].get(col.label)
                if task.name in (runs := per_seed[s][name]["runs"]):
                    rec = run_of(runs[task.name])
                    if not _same(saved, value := rec.metrics.get(col.metric)):
                        raise FlameError(f"{files[s]}: {name} {col.label} is {saved} but its run record {rec.path} "
                                         f"has {value} (a stale or edited comparison); re-run `flame-bench compare "
                                         f"{' '.join(names)} --seed {s}{_world_flag(source_name)}`")
                if bad := invalid_value(saved):
                    left_out.append(f"{name} {col.label} seed {s}: {bad}")
                elif saved is not None:
                    vals.append(saved)
            summary["systems"][name][col.label] = {"mean": mean(vals) if vals else None,
                                                   "std": stdev(vals) if len(vals) > 1 else None, "values": vals}
    if left_out:
        summary["left_out"] = left_out
        console.print(f"[yellow]warning:[/yellow] not a number, left out of mean and std: {'; '.join(left_out)}",
                      highlight=False)
    for name in names[1:]:
        summary["pooled_deltas"][name] = {}
        for task, col in cols:
            if col.item_key is None:
                continue
            a: list[dict[str, float | None]] = []
            b: list[dict[str, float | None]] = []
            for s in seeds:
                base = _item_scores(per_seed[s][names[0]], task.name, col.item_key)
                if col.reference_item_score is not None:
                    base = {k: col.reference_item_score for k in base}
                a.append(base)
                b.append(_item_scores(per_seed[s][name], task.name, col.item_key))
            d = paired_bootstrap_over_seeds(a, b, seed=0)
            summary["pooled_deltas"][name][col.label] = d.__dict__ if d else None
    if bins := _bins_across_seeds(names, [per_seed[s] for s in seeds]):
        summary["by_popularity_bin"] = bins
    summary["numerics"] = runs_numerics(run_of(path) for s in seeds for n in names
                                        for path in per_seed[s][n]["runs"].values())
    return summary


def _bins_across_seeds(names: list[str], per_seed: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Bio FActScore per popularity bin over seeds (`_popularity_bins`); empty without bins."""
    if not all(BIN_TASK in systems[n]["runs"] for systems in per_seed for n in names):
        return {}
    bins_of = {x["id"]: x.get("popularity") for x in load_run(per_seed[0][names[0]]["runs"][BIN_TASK]).samples()}
    return _popularity_bins(bins_of, {n: [_item_scores(systems[n], BIN_TASK, "factscore") for systems in per_seed]
                                      for n in names}, 0)


def seeds_table(summary: dict[str, Any], systems: list[str]) -> Table:
    """`across_seeds` as a table: mean ± std over seeds, and the pooled paired delta vs the first system."""
    table = Table(title=f"{summary['source']}, seeds {', '.join(map(str, summary['seeds']))}: mean ± std over "
                        f"seeds; pooled paired delta vs {systems[0]} [95% CI], * = excludes 0")
    table.add_column("system")
    for col in summary["columns"]:
        table.add_column(col["label"], justify="right")
    for name in systems:
        cells = []
        for col in summary["columns"]:
            m = summary["systems"][name][col["label"]]
            scale = 100 if col["percent"] else 1
            cell = "-" if m["mean"] is None else f"{scale * m['mean']:.1f}" + (
                f" ± {scale * m['std']:.1f}" if m["std"] is not None else "")
            d = summary["pooled_deltas"].get(name, {}).get(col["label"])
            if d:
                star = "*" if d["low"] > 0 or d["high"] < 0 else ""
                cell += f"\n{scale * d['value']:+.1f} [{scale * d['low']:+.1f}, {scale * d['high']:+.1f}]{star}"
            cells.append(cell)
        table.add_row(Text(name), *cells)
    return table
