"""`flame-bench compare`, `seeds`, `pilot`, `leaderboard`, `gate` and `bench`: experiments end to end."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from flame_bench.alignment import distributed
from flame_bench.cli.root import MAX_SEED, app, stdout, warn_skipped
from flame_bench.core.errors import FlameError, interruptible
from flame_bench.core.ui import console
from flame_bench.experiments.gates import DEFAULT_SPREAD_SEEDS
from flame_bench.world.build import built_default_world, default_world_dir
from flame_bench.world.judge_noise import FLAME_CHECKER_FALSE_ACCEPT


@app.command("bench")
@interruptible
def bench_cmd(
    world: Annotated[Path | None, typer.Option(help="World directory [default: results/worlds/default-s0].")] = None,
    quick: Annotated[bool, typer.Option("--quick", help="Fewer repetitions (a smoke check of the benchmark).")] = False,
    training: Annotated[bool, typer.Option("--training", help="Also trl vs a plain PyTorch loop (SFT, DPO).")] = False,
    truthfulqa: Annotated[str | None, typer.Option(help="Also TruthfulQA MC1+MC2 with this model (e.g. smollm2; "
                                                        "needs `data fetch truthfulqa`): lm-eval's hf model vs "
                                                        "flame-prefix on the same requests.")] = None,
    questions: Annotated[int | None, typer.Option(min=1, help="TruthfulQA questions [default: all].")] = None,
    verification: Annotated[str | None, typer.Option(help="Also FActScore verification: MODEL:RUN_DIR (an HF verifier "
                                                          "and a saved factscore_bio run on wiki-leads), every prompt "
                                                          "in full vs shared passage prefixes.")] = None,
    bios: Annotated[int, typer.Option(min=1, help="Bios of that run to verify.")] = 20,
    numerics: Annotated[bool, typer.Option("--numerics", help="Also training and generation speed in both "
                                                              "numerics modes (native / reproducible).")] = False,
    scale: Annotated[bool, typer.Option("--scale", help="Only the paper-scale plan: LLM call throughput against a "
                                                        "simulated endpoint, bm25s at 100k and 1M passages "
                                                        "projected to 21M, and the pipeline's cost model.")] = False,
    sharded: Annotated[bool, typer.Option("--sharded", help="Only retrieval past memory: a sharded, memory-mapped "
                                                            "bm25s index at 1M and 5M passages (corpus-wide idf), "
                                                            "its top-10 checked against one index, projected to "
                                                            "21M.")] = False,
    out: Annotated[Path, typer.Option(help="Where to write the JSON result.")] = Path("results/bench/latest.json"),
) -> None:
    """Measure pipeline speeds as ratios in one run: FActScore facts/s, batched vs single generation, BM25."""
    from flame_bench.core.io import write_json
    from flame_bench.experiments.bench import bench_table, run_bench
    from flame_bench.world.store import WorldDir

    if sharded:
        from flame_bench.experiments.scale import bench_sharded_retrieval, sharded_table

        result = (bench_sharded_retrieval((20_000, 60_000), 20_000, check_passages=20_000) if quick
                  else bench_sharded_retrieval())
        write_json(out, result)
        stdout.print(sharded_table(result))
        console.print(f"written to {out}")
        return
    if scale:
        from flame_bench.experiments.scale import bench_scale, scale_tables

        result = bench_scale(quick=quick)
        write_json(out, result)
        for table in scale_tables(result):
            stdout.print(table)
        stdout.print(f"written to {out}")
        return

    result = run_bench(WorldDir.open(world or default_world_dir("default", 0)), quick=quick, training=training,
                       truthfulqa=truthfulqa, questions=questions,
                       verification=_model_and_run(verification, bios) if verification else None,
                       numerics=numerics)
    write_json(out, result)
    stdout.print(bench_table(result, out))


def _model_and_run(spec: str, bios: int) -> tuple[str, str, str, int]:
    model, sep, run = spec.partition(":")
    if not sep or not model or not Path(run).is_dir():
        raise FlameError(f"--verification {spec!r}: give MODEL:RUN_DIR, a model and a saved factscore_bio run "
                         "directory (e.g. smollm2:results/real/runs/factscore_bio__smollm2__688dba326c24)")
    return model, run, "wiki-leads", bios


@app.command("compare")
@interruptible
def compare_cmd(
    systems: Annotated[list[str], typer.Argument(help="System names (alignments/systems/*.yaml) or system files; the "
                                                      "first is the reference for the win rate.")],
    preset: Annotated[str, typer.Option(help="World preset; the world is built if missing.")] = "default",
    seed: Annotated[int, typer.Option(min=0, max=MAX_SEED, help="Training, sampling and bootstrap seed.")] = 0,
    world: Annotated[Path | None, typer.Option(help="World directory [default: results/worlds/PRESET-s0].")] = None,
    task: Annotated[list[str] | None, typer.Option("--task", "-t", help="Compare on these tasks only (repeatable) "
                                                                        "[default: every task with columns].")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Evaluate only the first N items of each task.")] = None,
    allow_missing_topics: Annotated[bool, typer.Option(
        "--allow-missing-topics", help="Real data: evaluate the entities the knowledge source has pages for and "
                                       "count the others, instead of stopping.")] = False,
    allow_weak_evaluators: Annotated[bool, typer.Option(
        "--allow-weak-evaluators", help="Run even when an evaluator the numbers rest on measures weak on its check "
                                        "(its cells are marked).")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bars.")] = False,
    html: Annotated[bool, typer.Option("--html", help="Also write one self-contained HTML page (table, figure, "
                                                      "every item's evidence) beside the comparison.")] = False,
    published: Annotated[list[str] | None, typer.Option(help="Also show published numbers, in tables of their own: "
                                                             "flame-paper (its Tables 2 and 3) or "
                                                             "alpaca_eval:<annotator>[:N] (repeatable).")] = None,
    rm_if_noise: Annotated[float, typer.Option(min=0.0, max=0.49, help="Fact world: RM_IF sampled as an LLM judge, "
                                                                      "each rubric criterion misread with this "
                                                                      "probability, 3 samples averaged (0: the exact "
                                                                      "rubric).")] = 0.0,
    world_judge: Annotated[str, typer.Option(help="Fact world: the win rate's pairwise judge, world_if or "
                                                  "world_if_graded (finer scale).")] = "world_if",
    rm_fact_noise: Annotated[float, typer.Option(min=0.0, max=0.49, help="Fact world: RM_fact's fact checker "
                                                                        "accepts unsupported facts with this "
                                                                        "probability, as FLAME's LLM checker does "
                                                                        "(default: the rate FActScore's Table 3 "
                                                                        "measured for it; 0: exact; evaluation "
                                                                        "stays exact).")] = FLAME_CHECKER_FALSE_ACCEPT,
) -> None:
    """Train what is missing, evaluate every system on every task, and render the head-to-head (Table 3)."""
    from flame_bench.alignment.systems import load_system
    from flame_bench.core.registry import RECIPES
    from flame_bench.experiments.compare import save_comparison, train_and_evaluate
    from flame_bench.reports.comparison import breakdown_view, breakdowns, deltas
    from flame_bench.reports.leaderboard import write_leaderboard
    from flame_bench.reports.tables import breakdown_table, comparison_table, training_table

    if len(systems) < 2:
        raise FlameError("compare needs at least two systems, e.g. `flame-bench compare baseline flame`")
    shown = [check_published(p) for p in published or []]  # a bad name is refused before any training
    specs = [load_system(n, known_recipes=RECIPES.names()) for n in systems]
    world_source = None
    if any(s.uses_world for s in specs):
        from flame_bench.world.source import WorldSource

        world_source = WorldSource.open(world or built_default_world(preset, quiet), rm_if_noise, world_judge,
                                        rm_fact_noise)
    results, source = train_and_evaluate(specs, world_source, seed=seed, limit=limit, quiet=quiet, task_names=task,
                                         allow_weak=allow_weak_evaluators, allow_missing_topics=allow_missing_topics)
    if not distributed.is_main():  # under `accelerate launch`: the main process reports and writes
        return
    dl = deltas(results, seed)
    stdout.print(training_table(results))
    stdout.print(comparison_table(results, dl))
    for key, groups in breakdowns(results, seed).items():  # e.g. a long-tail world: Bio FActScore bin by bin
        stdout.print(breakdown_table(breakdown_view(key), groups, [r.name for r in results]))
    save_comparison(results, dl, source, seed, limit, html=html)
    skipped: list[str] = []
    write_leaderboard(skipped=skipped)
    warn_skipped(skipped)
    print_published(shown)


@app.command("pilot")
@interruptible
def pilot_cmd(
    world: Annotated[Path | None, typer.Option(help="World directory with reading documents [default: "
                                                    "results/worlds/pilot-s0, built if missing: the long-tail "
                                                    "world plus reading documents].")] = None,
    seeds: Annotated[list[int] | None, typer.Option("--seed", min=0, max=MAX_SEED,
                                                    help="Training, sampling and bootstrap seed; repeat it to pool "
                                                         "seeds [default: 0].")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bars.")] = False,
) -> None:
    """The paper's pilot study (Table 1): PT and PT_RAG bios, SFT on each, DPO on FActScore-selected pairs and on
    RAG-over-PT pairs; FActScore per row and the paper's four directions checked with paired CIs."""
    from flame_bench.core.io import write_json
    from flame_bench.experiments.pilot import pilot_path, pilot_tables, pooled, run_pilot
    from flame_bench.world.source import WorldSource

    source = WorldSource.open(world or built_default_world("pilot", quiet))
    seeds = sorted(set(seeds or [0]))
    reports = []
    for seed in seeds:
        report = run_pilot(source, seed=seed, quiet=quiet)
        if report is not None:  # None on the other ranks: the main process evaluates and reports
            write_json(pilot_path(source.name, [seed]), report)
            reports.append(report)
        distributed.barrier()  # every rank starts the next seed together
    if not reports:
        return
    shown = reports[0] if len(reports) == 1 else pooled(reports)
    for table in pilot_tables(shown):
        stdout.print(table)
    out = pilot_path(source.name, seeds)
    if len(reports) > 1:
        write_json(out, shown)
    console.print(f"pilot study written to {out}")


@app.command("seeds")
def seeds_cmd(
    systems: Annotated[list[str], typer.Argument(help="Systems of saved comparisons; deltas are vs the first.")],
    seeds: Annotated[list[int], typer.Option("--seed", min=0, max=MAX_SEED, help="Seeds to combine (repeatable).")],
    world: Annotated[str, typer.Option("--world", "--source", help="Name of the comparisons' source, as in "
                                                                   "their file names (default-s0, smoke-s0, a real "
                                                                   "suite's name).")]
    = "default-s0",
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the summary here.")] = None,
) -> None:
    """Combine saved comparisons over seeds: mean ± std per system, and deltas vs the first system over items, each
    item's difference averaged over the seeds, with a paired bootstrap over items (nothing is retrained or
    regenerated)."""
    from flame_bench.core.io import write_json
    from flame_bench.experiments.seeds import across_seeds, breakdowns_of
    from flame_bench.reports.tables import breakdown_table, seeds_table

    summary = across_seeds(systems, world, sorted(set(seeds)))
    stdout.print(seeds_table(summary, systems))
    over = f", mean over seeds {', '.join(map(str, summary['seeds']))}"
    for view, groups in breakdowns_of(summary):  # deltas pooled over seeds
        stdout.print(breakdown_table(view, groups, systems, over))
    if json_out:
        write_json(json_out, summary)


@app.command("leaderboard")
def leaderboard_cmd(
    write: Annotated[bool, typer.Option("--write", help="Also write results/leaderboard.md and .json.")] = False,
    published: Annotated[list[str] | None, typer.Option(help="Also show published numbers, in tables of their own: "
                                                             "flame-paper or alpaca_eval:<annotator>[:N] "
                                                             "(repeatable).")] = None,
) -> None:
    """All models' latest runs, one column per task (from results/runs; a written board keeps, and marks, cells whose
    runs are not here)."""
    from flame_bench.core.records import list_runs
    from flame_bench.reports.leaderboard import leaderboard_rows, render_table, write_leaderboard

    skipped: list[str] = []
    tasks, rows = write_leaderboard(skipped=skipped) if write else leaderboard_rows(list_runs(skipped=skipped))
    warn_skipped(skipped)
    shown = [check_published(p) for p in published or []]
    if not rows and not shown:
        raise FlameError("no run records under results/runs; run `flame-bench eval` or `flame-bench compare` first")
    if rows:
        stdout.print(render_table(tasks, rows))
    print_published(shown)


def check_published(spec: str) -> str:
    from flame_bench.reports.published import check_published as check

    return check(spec)


def print_published(specs: list[str]) -> None:
    from flame_bench.reports.published import published_tables

    for spec in specs:
        for table in published_tables(spec):
            stdout.print(table)


@app.command("gate")
@interruptible
def gate_cmd(
    update: Annotated[bool, typer.Option("--update", help="Rewrite the golden with the measured values.")] = False,
    note: Annotated[str, typer.Option(help="Why the golden changes (recorded with --update).")] = "",
    seeds: Annotated[int | None, typer.Option("--seeds", min=2, max=20, help="With --update: seeds whose spread "
                                              "sets the cross-platform tolerances [default: "
                                              f"{DEFAULT_SPREAD_SEEDS}].")] = None,
) -> None:
    """Run the smoke regression gate (baseline and flame on a fresh smoke world) against its golden."""
    import tempfile

    from flame_bench.experiments.gates import (
        check_golden,
        golden_path,
        measure_smoke_gate,
        measure_spread,
        write_golden,
    )
    from flame_bench.world.build import build_world
    from flame_bench.world.presets import get_preset
    from flame_bench.world.store import WorldDir

    if not update and (note or seeds is not None):  # checked before minutes of work
        raise FlameError("--seeds/--note need --update (they set how a new golden is measured and why); add "
                         "--update or drop them")
    seeds = seeds or DEFAULT_SPREAD_SEEDS
    if update and not note.strip():
        raise FlameError("updating a golden needs --note saying why the numbers change")
    if not update and not golden_path().is_file():
        raise FlameError(f"no golden at {golden_path()}; create it with `flame-bench gate --update --note ...`")
    with tempfile.TemporaryDirectory(prefix="flame-gate-") as tmp:
        build_world(get_preset("smoke"), 0, Path(tmp) / "world", quiet=True)
        world = WorldDir.open(Path(tmp) / "world")
        measured = measure_smoke_gate(world, Path(tmp))
        if update:  # the cross-platform tolerances: the spread of every value over seeds
            spread = measure_spread(measured, world, Path(tmp), seeds,
                                    on_seed=lambda s: console.print(f"spread: seed {s} of {seeds - 1}"))
            stdout.print(f"golden written: {write_golden(measured, note=note, spread=spread)}")
            return
    if not golden_path().is_file():
        raise FlameError(f"no golden at {golden_path()}; create it with `flame-bench gate --update --note ...`")
    problems, how = check_golden(measured)
    stdout.print(how)
    for p in problems:
        stdout.print(f"[red]FAIL[/red] {p}")
    if problems:
        raise FlameError(f"{len(problems)} gate value(s) moved; see above")
    stdout.print(f"[green]gate passed[/green] ({len(measured)} values within tolerance)")
