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

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from flame_bench.alignment import distributed
from flame_bench.alignment.stages import check_stages, run_stages
from flame_bench.core.errors import FlameError
from flame_bench.core.evaluate import evaluate
from flame_bench.core.io import write_json, write_text
from flame_bench.core.paths import comparisons_dir, generation_cache_path
from flame_bench.core.registry import TASKS
from flame_bench.core.stats import Delta
from flame_bench.core.task_api import Task
from flame_bench.core.ui import console
from flame_bench.engines.generation import using_backend
from flame_bench.engines.generation_cache import GenerationCache
from flame_bench.reports.comparison import (
    SystemResult,
    breakdowns,
    columns_of,
    runs_numerics,
    training_columns,
    training_rows,
)
from flame_bench.reports.figure import figure
from flame_bench.reports.tables import comparison_markdown, training_markdown


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
        tasks = [t for t in tasks if source is None or t.runs_on(source)]
    return sorted(tasks, key=lambda t: (t.position, t.name))


def system_sources(specs: list, world_source, quiet: bool = True, allow_missing_topics: bool = False) -> list:
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
    from dataclasses import replace

    sources = [RealSource(replace(s.data, allow_missing_topics=True) if allow_missing_topics else s.data, quiet=quiet)
               for s in specs]
    first = sources[0].eval_fingerprint()
    for spec, src in zip(specs[1:], sources[1:], strict=True):
        if src.eval_fingerprint() != first:
            raise FlameError(f"system {spec.name} evaluates on other data or evaluators than {specs[0].name} "
                             f"({spec.path} vs {specs[0].path}); give the systems one data: file")
    return sources


def train_and_evaluate(systems: list, world_source=None, seed: int = 0, limit: int | None = None,
                       quiet: bool = False, task_names: list[str] | None = None,
                       allow_weak: bool = False, allow_missing_topics: bool = False
                       ) -> tuple[list[SystemResult], Any]:
    """Train every system (names, files or loaded `SystemSpec`s; stages cached), evaluate each on every compare
    task; returns (results, eval source). Refused before anything trains when an evaluator the numbers rest on
    measures weak on its check, unless `allow_weak` (then its cells are marked)."""
    from flame_bench.alignment.systems import SystemSpec, load_system
    from flame_bench.core.registry import RECIPES

    specs = [s if isinstance(s, SystemSpec) else load_system(s, known_recipes=RECIPES.names())
             for s in systems]  # every file checked before training
    if len({s.name for s in specs}) != len(specs):
        raise FlameError("a system is named twice; name each system once")
    sources = system_sources(specs, world_source, quiet, allow_missing_topics)
    tasks = compare_tasks(task_names, sources[0])
    for src in {id(s): s for s in sources}.values():  # data reads and endpoints answer before anything trains
        src.validate()
    check_evaluators(sources[0], tasks, specs, allow_weak, quiet)
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
    generation = eval_generation(specs, seed)
    for r, spec in zip(results, specs, strict=True):
        with using_backend(spec.generation):
            records = evaluate(str(r.model_dir), [t.name for t in tasks], eval_source, reference=reference, limit=limit,
                               seed=seed, quiet=quiet, model_name=r.name, reference_name=results[0].name,
                               generation=generation)
        r.runs = {rec.task: rec for rec in records}
    return results, eval_source


def eval_generation(specs: list, seed: int):
    """How every system's evaluation outputs are decoded: the system files' `eval_generation` (one for all, since a
    comparison is paired on one decoding), else the default (greedy, 128 new tokens)."""
    from dataclasses import replace

    from flame_bench.core.evaluate import EVAL_GENERATION

    settings = {s.eval_generation for s in specs}
    if len(settings) > 1:
        raise FlameError(f"the systems decode their evaluations differently ({', '.join(str(s.path) for s in specs)}: "
                         "eval_generation); a comparison is paired on one decoding: give them the same")
    chosen = dict(next(iter(settings)))
    if not chosen:
        return EVAL_GENERATION
    temperature = float(chosen.get("temperature", 0.0))
    return replace(EVAL_GENERATION, max_new_tokens=int(chosen.get("max_new_tokens", EVAL_GENERATION.max_new_tokens)),
                   do_sample=temperature > 0, temperature=temperature or 1.0, top_p=float(chosen.get("top_p", 1.0)),
                   seed=seed)


def check_evaluators(source, tasks: list[Task], specs: list, allow_weak: bool, quiet: bool) -> dict[str, Any]:
    """The measured quality of every evaluator the comparison rests on: the tasks' (`Task.evaluators`) and, when a
    stage trains on rewards, RM_IF, RM_fact's verifier and the fact-based classifier; one line and a refusal when
    one is weak."""
    from flame_bench.core.registry import RECIPES
    from flame_bench.scoring.quality import evaluator_quality

    roles = [r for t in tasks for r in t.evaluators]
    if any(RECIPES.get(st.recipe).uses_rewards for spec in specs for st in spec.stages if st.recipe in RECIPES):
        roles += ["verifier", "classifier", "rm_if"]
    found = evaluator_quality(source, roles, quiet, stop_at_weak=not allow_weak)
    for q in found.values():
        console.print(f"evaluator quality: {q.note()}", highlight=False)
    weak = [q for q in found.values() if q.verdict == "weak"]
    if weak and not allow_weak:
        raise FlameError(f"{weak[0].note()}, so the numbers resting on it would mean nothing; use a better evaluator "
                         "(`flame-bench verifier-check` / `judge-check` compare them) or pass --allow-weak-evaluators "
                         "to run anyway with those cells marked")
    return found


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
               + f"\nNumerics: {mode} (`flame_bench/core/numerics.py`).\n")
    if not mode.startswith("reproducible"):
        console.print(f"[yellow]note:[/yellow] numerics {mode}: these numbers hold for this machine's float kernels "
                      "only (the default mode, reproducible, gives the same bits on every x86-64 CPU)")
    factual = next((t.name for t, c in columns_of(results) if c.role == "factuality"), None)
    write_json(_beside(out, ".json"), {
        "systems": [{"name": r.name, "description": r.description, "model_dir": str(r.model_dir),
                     "stages": r.stages, "runs": {t: str(rec.path) for t, rec in r.runs.items()},
                     "metrics": {c.label: r.metric(t.name, c.metric) for t, c in columns_of(results)},
                     **({"bio_length": r.output_length(factual)} if factual else {})} for r in results],
        "deltas": {s: {c: (d.__dict__ if d else None) for c, d in cols.items()} for s, cols in dl.items()},
        "training": [dict(zip(("system", *training_columns(results)), row, strict=True))
                     for row in training_rows(results)],
        **breakdowns(results, seed),
        "source": source.spec, "source_fingerprint": source.fingerprint, "seed": seed, "limit": limit,
        "numerics": mode,
        **({"evaluator_quality": quality} if (quality := _evaluator_quality(results)) else {}),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    })
    figure(results, _beside(out, ".png"))
    console.print(f"comparison written to {out}.{{md,json,png}}")
    if html or _beside(out, ".html").exists():  # one self-contained page beside the comparison
        from flame_bench.reports.html import comparison_html

        knowledge = _knowledge_or_none(source)
        write_text(_beside(out, ".html"), comparison_html(results, dl, out.name, knowledge))
        console.print(f"HTML report: {_beside(out, '.html')}")
    return out


def _evaluator_quality(results: list[SystemResult]) -> dict[str, Any]:
    """role -> its measured quality, from the compared runs' records (one evaluation source serves every system)."""
    out: dict[str, Any] = {}
    for r in results:
        for rec in r.runs.values():
            out.update(rec.header.get("evaluator_quality") or {})
    return out


def _beside(out: Path, ext: str) -> Path:
    """`out` + `ext` (never `with_suffix`: a name like "...rmif0.24__seed0" would lose its ".24__seed0")."""
    return out.with_name(out.name + ext)


def _knowledge_or_none(source) -> Any:
    """The evaluation source's knowledge passages (the page shows evidence ids only without them)."""
    try:
        return source.knowledge
    except FlameError:  # e.g. real data without a knowledge source
        return None
