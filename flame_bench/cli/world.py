"""`flame-bench world ...` and `pretrain`: build, probe and re-check the fact world."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from flame_bench.cli.root import MAX_SEED, app, open_world, stdout, world_app
from flame_bench.core.errors import FlameError, interruptible
from flame_bench.world.build import checked_default_world, default_world_dir


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


@world_app.command("mechanisms")
@interruptible
def world_mechanisms(
    world: Annotated[Path | None, typer.Option(help="World directory with reading documents [default: "
                                                    "results/worlds/pilot-fresh-s0, the mechanism world, built "
                                                    "if missing].")] = None,
    seeds: Annotated[list[int] | None, typer.Option("--seed", min=0, max=MAX_SEED,
                                                    help="Training seed; repeat it to pool seeds [default: 0].")]
    = None,
    out: Annotated[Path, typer.Option(help="Where to write the report.")] = Path("results/mechanisms.json"),
    known_sft: Annotated[list[str] | None, typer.Option("--known-sft", help="KEY=VALUE: a setting of the unknown-"
                                                        "knowledge SFT's recipe (known_sft), e.g. learning_rate=1e-4 "
                                                        "or people=100 (repeatable; a sensitivity run).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bars.")] = False,
) -> None:
    """Probe five LLM behaviours FLAME rests on, independently of FLAME: knowledge by popularity, reading,
    unknown-knowledge SFT, FactTune DPO, DPO lengthening; each effect with its CI beside the literature's direction."""
    from flame_bench.core.io import write_json
    from flame_bench.core.ui import console
    from flame_bench.experiments.mechanisms import MECHANISM_WORLD, mechanisms_table, run_mechanisms
    from flame_bench.world.build import built_default_world
    from flame_bench.world.source import WorldSource

    source = WorldSource.open(world or built_default_world(MECHANISM_WORLD, quiet))
    overrides = _known_sft_settings(known_sft or [])
    report = run_mechanisms(source, sorted(set(seeds or [0])), quiet=quiet, known_sft=overrides)
    write_json(out, report)
    stdout.print(mechanisms_table(report))
    console.print(f"mechanism probes written to {out}")


def _known_sft_settings(pairs: list[str]) -> dict[str, float | int]:
    """`--known-sft KEY=VALUE` settings, each checked by the recipe's own config before anything trains."""
    import dataclasses

    from flame_bench.core.errors import unknown_name
    from flame_bench.core.registry import RECIPES, load_builtin

    load_builtin()
    out: dict[str, float | int] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or key in ("knowledge", "epochs"):
            raise FlameError(f"--known-sft {pair!r}: give KEY=VALUE for a setting of known_sft other than knowledge "
                             "and epochs (the probe sets those), e.g. --known-sft learning_rate=1e-4")
        try:
            out[key] = int(value) if value.strip().lstrip("-").isdigit() else float(value)
        except ValueError:
            raise FlameError(f"--known-sft {pair!r}: {value!r} is not a number") from None
    config_cls = RECIPES.get("known_sft").config_cls
    settings = {f.name for f in dataclasses.fields(config_cls)} - {"knowledge", "epochs", "trainer", "peft"}
    for key in out:
        if key not in settings:
            raise FlameError(f"--known-sft: {unknown_name('known_sft setting', key, settings)}")
    try:
        config_cls(**out)
    except ValueError as e:
        raise FlameError(f"--known-sft: {e}") from None
    return out


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
    from flame_bench.core.io import check_output_dir

    if check_output_dir(out, force, "model") and not (out / "config.json").is_file():
        raise FlameError(f"{out} is not a model directory, so --force will not replace it; choose another --out")
    if steps is not None and steps < 1:
        raise FlameError(f"--steps must be at least 1, got {steps}")
    spec = ModelSpec(**wd.manifest["preset"]["model"])
    if steps is not None:
        spec = dataclasses.replace(spec, steps=steps)
    tok = AutoTokenizer.from_pretrained(wd.model_dir)
    record = pretrain([d["text"] for d in wd.records("corpus")], tok, spec, out, seed)
    stdout.print(f"[green]saved[/green] {out} (final loss {record['final_loss']:.3f})")
