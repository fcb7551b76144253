"""`flame-bench eval`, `list`, `report`, `rescore`, `export`, `import` and `export-tasks`: runs and their records."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from flame_bench.cli.root import MAX_SEED, app, open_world, print_records, stdout, warn_skipped
from flame_bench.core.errors import FlameError, interruptible
from flame_bench.core.ui import console
from flame_bench.world.build import checked_default_world, default_world_dir


@app.command("eval")
@interruptible
def eval_cmd(
    model: Annotated[str, typer.Argument(help="'base' (the world's base model), an installed model's short name "
                                             "(`flame-bench models add`), a model directory or a hub id.")],
    task: Annotated[list[str], typer.Option("--task", "-t", help="Task name (repeatable), or 'all'.")],
    world: Annotated[Path | None, typer.Option(help="World directory [default: results/worlds/default-s0 for "
                                                     "world models; none (real data) for other models].")] = None,
    knowledge: Annotated[str | None, typer.Option(help="Real path: knowledge source for factscore_bio (wiki-leads, "
                                                       "a FActScore DocDB .db, or a {title, text} .jsonl).")] = None,
    llm: Annotated[str | None, typer.Option(help="Real path: evaluator LLM for decomposer/verifier/judges: a model "
                                                 "name or directory, an OpenAI-compatible base URL, or 'env' "
                                                 "[default: $FLAME_BENCH_LLM_BASE_URL, else smollm2].")] = None,
    verifier: Annotated[str | None, typer.Option(help="Real path: FActScore's verifier: 'nli' (the offline "
                                                      "cross-encoder, `flame-bench verifier train`), 'nli:DIR', or an "
                                                      "LLM as for --llm [default: --llm].")] = None,
    truthfulqa: Annotated[Path | None, typer.Option(
        help="Real path: TruthfulQA items file [default: the hub's 817 questions online, the fetched BIG-bench "
             "299 offline].")] = None,
    alpaca_eval: Annotated[Path | None, typer.Option(help="Real path: AlpacaEval-format JSON of instructions and "
                                                          "reference outputs for alpaca_winrate.")] = None,
    entities: Annotated[Path | None, typer.Option(help="Real path: the people factscore_bio asks about: one name per "
                                                       "line, or FActScore's JSONL (its `topic` field) [default: "
                                                       "the knowledge source's people].")] = None,
    factscore_demos: Annotated[Path | None, typer.Option(help="Real path: FActScore's own decomposition "
                                                              "demonstrations (its demons.json) instead of ours.")
                               ] = None,
    judge: Annotated[str | None, typer.Option(help="Real path: the win-rate judge's protocol on the --llm: "
                                                   "llm_pairwise (default) or alpaca_eval:<config> (AlpacaEval's "
                                                   "annotator, e.g. alpaca_eval:weighted_alpaca_eval_gpt4_turbo)."
                                              )] = None,
    reference: Annotated[str, typer.Option(help="Pairwise reference: 'human', a run, or a model.")] = "human",
    limit: Annotated[int | None, typer.Option(min=1, help="Evaluate only the first N items of each task.")] = None,
    seed: Annotated[int, typer.Option(min=0, max=MAX_SEED,
                                      help="Seed for sampling, order randomization and bootstraps.")] = 0,
    max_new_tokens: Annotated[int, typer.Option(min=1, help="Generation budget per response.")] = 128,
    temperature: Annotated[float, typer.Option(min=0.0, help="0 = greedy (default); > 0 samples.")] = 0.0,
    top_p: Annotated[float, typer.Option(min=0.0, max=1.0, help="Nucleus sampling mass when sampling (0 < p <= 1).")]
    = 1.0,
    batch_size: Annotated[int, typer.Option(min=1, help="Generation batch size.")] = 64,
    lm_backend: Annotated[str, typer.Option(help="Log-likelihood tasks (TruthfulQA): prefix (lm-eval's hf model "
                                                 "with shared-prefix scoring), hf (lm-eval's hf model) or vllm "
                                                 "(GPU).")] = "prefix",
    lm_batch_size: Annotated[int, typer.Option(min=1, help="Log-likelihood batch size (contexts per pass for "
                                                           "prefix, requests per pass for hf and vllm).")] = 32,
    allow_missing_topics: Annotated[bool, typer.Option(
        "--allow-missing-topics", help="Real path: evaluate the entities the knowledge source has pages for and count "
                                       "the others, instead of stopping.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bars.")] = False,
) -> None:
    """Evaluate a model on tasks; writes one run record per task under results/runs/ and prints a report."""
    from flame_bench.core.evaluate import evaluate
    from flame_bench.core.registry import TASKS
    from flame_bench.engines.generation import GenerationConfig

    if top_p <= 0:
        raise FlameError(f"--top-p must be in (0, 1], got {top_p}")
    if not math.isfinite(temperature):
        raise FlameError(f"--temperature must be a finite number >= 0 (0 = greedy), got {temperature}")
    check_lm_backend(lm_backend)
    names = TASKS.names() if "all" in task else task
    gen = GenerationConfig(max_new_tokens=max_new_tokens, do_sample=temperature > 0, temperature=temperature or 1.0,
                           top_p=top_p, batch_size=batch_size, seed=seed)
    real = {k: str(v) for k, v in (("knowledge", knowledge), ("llm", llm), ("truthfulqa", truthfulqa),
                                   ("alpaca_eval", alpaca_eval), ("verifier", verifier), ("judge", judge),
                                   ("entities", entities), ("factscore_demos", factscore_demos),
                                   ("allow_missing_topics", allow_missing_topics or None))
            if v is not None}
    if world is None and is_world_model(model):
        world = default_world_dir("default", 0)
    if world is not None and real:
        raise FlameError(f"--{next(iter(real)).replace('_', '-')} is for real data, not a fact world; drop it or "
                         "evaluate a model that is not a world model")
    source = open_world(world) if world is not None else real_source_from_flags(real, quiet)
    if world is None and any(TASKS.get(n).data == "bio" for n in names):
        source.eval_set("bio")  # every entity has a knowledge page (or is allowed missing) before any generation
    records = evaluate(model, names, source, reference=reference, limit=limit, seed=seed, generation=gen,
                       quiet=quiet, lm_backend=lm_backend, lm_batch_size=lm_batch_size)
    print_records(records)


def check_lm_backend(name: str) -> None:
    from flame_bench.core.errors import unknown_name
    from flame_bench.core.task_api import LM_BACKENDS

    if name not in LM_BACKENDS:
        raise unknown_name("--lm-backend", name, LM_BACKENDS)


def real_source_from_flags(flags: dict[str, str], quiet: bool):
    """The real path's source from `eval`'s flags: every evaluator role on --llm (one cached backend)."""
    from flame_bench.real.source import RealSource, RealSpec

    return RealSource(RealSpec.from_flags(flags), quiet=quiet)


def is_world_model(ref: str) -> bool:
    """'base' and models trained by flame-bench on a fact world (their flame_model.json says so)."""
    from flame_bench.engines.models import is_world_model_dir

    return ref == "base" or is_world_model_dir(Path(ref))


@app.command("list")
def list_cmd() -> None:
    """List registered tasks, scorers, judges, pipeline components, presets and models."""
    from flame_bench.core.registry import CLASSIFIERS, JUDGES, MODELS, RETRIEVERS, SCORERS, SPLITTERS, TASKS
    from flame_bench.world.presets import PRESETS

    table = Table(title="flame-bench registry")
    table.add_column("kind")
    table.add_column("name")
    table.add_column("description", overflow="fold")
    for name in TASKS.names():
        t = TASKS.get(name)
        table.add_row("task", name, f"{t.description} (v{t.version}, {t.kind})")
    for kind, reg in (("scorer", SCORERS), ("judge", JUDGES), ("classifier", CLASSIFIERS), ("splitter", SPLITTERS),
                      ("retriever", RETRIEVERS), ("model", MODELS)):
        for name in reg.names():
            doc = (getattr(reg.get(name), "__doc__", "") or "").strip().splitlines()
            table.add_row(kind, name, doc[0] if doc else "")
    for name, p in PRESETS.items():
        n = sum(sum(t.values()) for t in p.people.values())
        table.add_row("preset", name, f"{n} people, {p.n_seed_instructions} seed instructions")
    stdout.print(table)


@app.command("report")
def report_cmd(
    runs: Annotated[list[str] | None, typer.Argument(help="Run directories or names [default: all runs].")] = None,
    fmt: Annotated[str, typer.Option("--format", help="table, md, csv or json.")] = "table",
    html: Annotated[bool, typer.Option("--html", help="Also write one self-contained HTML page of these runs (every "
                                                      "item's evidence) to results/reports/.")] = False,
) -> None:
    """Render run records (a pure function of results/runs; nothing is regenerated)."""
    from flame_bench.core.errors import unknown_name
    from flame_bench.core.records import list_runs, load_run
    from flame_bench.reports.runs import FORMATS, render_text

    if fmt not in FORMATS:
        raise unknown_name("format", fmt, FORMATS)
    skipped: list[str] = []
    records = [load_run(r) for r in runs] if runs else list_runs(skipped=skipped)
    warn_skipped(skipped)
    if not records:
        raise FlameError("no run records found under results/runs; run `flame-bench eval` first")
    if html:  # one self-contained page under results/reports/
        from flame_bench.core.io import write_text
        from flame_bench.core.paths import results_dir
        from flame_bench.reports.html import report_name, runs_html

        shown, unreadable = [], []
        for r in records:  # the page shows every item: a run whose samples cannot be read is named, not fatal
            try:
                r.samples()
                shown.append(r)
            except FlameError as e:
                unreadable.append(f"{e} (left out of the HTML page)")
        warn_skipped(unreadable)
        if not shown:
            raise FlameError("no run here has readable samples.jsonl for the HTML page; re-run `flame-bench eval`")
        page = results_dir() / "reports" / f"{report_name(shown)}.html"
        write_text(page, runs_html(shown))
        console.print(f"HTML report: {page}")
    if fmt != "table":
        typer.echo(render_text(records, fmt), nl=False)
        return
    print_records(records)


@app.command("rescore")
@interruptible
def rescore_cmd(
    runs: Annotated[list[str], typer.Argument(help="Run ids (folders under results/runs/) or run directories.")],
    llm: Annotated[str | None, typer.Option(help="Real data: judge, decompose and verify with this LLM instead of "
                                                 "the run's.")] = None,
    verifier: Annotated[str | None, typer.Option(help="Real data: FActScore's verifier instead of the run's ('nli', "
                                                      "'nli:DIR' or an LLM).")] = None,
    world_judge: Annotated[str | None, typer.Option(help="Fact world: re-judge win rates with this pairwise judge "
                                                         "(world_if or world_if_graded).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bars.")] = False,
) -> None:
    """Score saved runs again from their records, without generating: reproduces the metrics with today's scorer
    and judge (or re-judges real data with --llm / --verifier); writes the new records and prints them."""
    from flame_bench.core.evaluate import rescore, rescoring_source

    records = [rescore(ref, source=rescoring_source(ref, llm, verifier, world_judge), quiet=quiet) for ref in runs]
    print_records(records)


@app.command("export")
def export_cmd(
    run: Annotated[str, typer.Argument(help="Run id (a folder under results/runs/) or run directory.")],
    out: Annotated[Path, typer.Option(help="Output file (a folder for --format lm-eval).")],
    format: Annotated[str, typer.Option("--format", help="alpaca_eval (model outputs), annotations (AlpacaEval "
                                                          "annotations of a win-rate run), lm-eval (results JSON + "
                                                          "samples), factscore ({topic, output} JSONL) or "
                                                          "factscore-scored (with each fact's decision).")
                      ] = "alpaca_eval",
) -> None:
    """Write a run in another tool's format (the run record stays the source of truth)."""
    from flame_bench.core.records import load_run
    from flame_bench.reports.exports import export

    stdout.print(export(load_run(run), format, out))


@app.command("import")
@interruptible
def import_cmd(
    path: Annotated[Path, typer.Argument(help="Outputs written elsewhere: FActScore's {topic, output} JSONL.")],
    name: Annotated[str, typer.Option(help="The name the run is recorded under (the system that wrote them).")],
    format: Annotated[str, typer.Option("--format", help="factscore (FActScore's input JSONL).")] = "factscore",
    knowledge: Annotated[str | None, typer.Option(help="Knowledge source (wiki-leads, a DocDB, a JSONL).")] = None,
    llm: Annotated[str | None, typer.Option(help="Evaluator LLM for the decomposer and verifier.")] = None,
    verifier: Annotated[str | None, typer.Option(help="FActScore's verifier: 'nli', 'nli:DIR' or an LLM.")] = None,
    factscore_demos: Annotated[Path | None, typer.Option(help="FActScore's own demons.json for the decomposer.")
                               ] = None,
) -> None:
    """Score outputs from another tool as a factscore_bio run (nothing is generated)."""
    from flame_bench.core.evaluate import import_outputs
    from flame_bench.core.paths import check_name

    check_name(name, "--name")  # before the knowledge source and evaluators are opened
    flags = {k: str(v) for k, v in (("knowledge", knowledge), ("llm", llm), ("verifier", verifier),
                                    ("factscore_demos", factscore_demos)) if v is not None}
    if "knowledge" not in flags:
        raise FlameError("import needs --knowledge (wiki-leads, a FActScore DocDB or a {title, text} JSONL)")
    record = import_outputs(path, format, real_source_from_flags(flags, quiet=True), name)
    print_records([record])


@app.command("export-tasks")
def export_tasks_cmd(
    out: Annotated[Path, typer.Option(help="Folder for the task YAMLs and their data (lm_eval --include_path).")],
    world: Annotated[Path | None, typer.Option(help="World directory [default: results/worlds/default-s0].")] = None,
) -> None:
    """Our TruthfulQA lm-eval tasks with the world's items, runnable by lm-eval itself."""
    from flame_bench.core.registry import TASKS

    exporters = {id(f): f for n in TASKS.names() if (f := TASKS.get(n).tools.get("lm_eval_export"))}
    source = open_world(world or checked_default_world(default_world_dir("default", 0)))
    names = [name for export in exporters.values() for name in export(source, out)]
    stdout.print(f"{', '.join(names)} -> {out}\nrun: lm_eval --model hf --model_args "
                 f"pretrained={source.base_model()},dtype=float32 --device cpu --tasks {','.join(names)} "
                 f"--include_path {out}")
