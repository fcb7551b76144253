"""The `flame-bench` command line. Every error a user can cause prints one line naming the problem and the fix."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from flame_bench.errors import FlameError
from flame_bench.ui import console

app = typer.Typer(
    help="flame-bench: does this alignment recipe make my model more factual, and what does it cost in helpfulness?",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)
world_app = typer.Typer(help="Build and inspect the embedded fact world.", no_args_is_help=True)
app.add_typer(world_app, name="world")

DEFAULT_WORLDS = Path("results/worlds")
stdout = console.__class__()  # tables go to stdout, progress to stderr


def default_world_dir(preset: str, seed: int) -> Path:
    return DEFAULT_WORLDS / f"{preset}-s{seed}"


@world_app.command("build")
def world_build(
    preset: Annotated[str, typer.Option(help="World size: smoke (CI), default, large (GPU).")] = "default",
    seed: Annotated[int, typer.Option(help="Seed; the same seed gives byte-identical data files.")] = 0,
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
    )


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}"


def render_probe(result: dict[str, Any]) -> Table:
    table = Table(title=f"Knowledge probe: {result['model']}", caption=(
        f"precision = correct claims / claims per bio (mean over bios); chance = {_pct(result['chance_precision'])}"
    ))
    for col in ("tier", "people", "precision %", "micro precision %", "recall %", "claims/bio",
                "prefers misconception %", "TQA MC1 %"):
        table.add_column(col, justify="right" if col != "tier" else "left")
    for tier, row in result["tiers"].items():
        m = result["misconceptions"].get(tier)
        table.add_row(tier, str(row["people"]), _pct(row["precision"]), _pct(row["micro_precision"]),
                      _pct(row["recall"]), f"{row['claims_per_bio']:.1f}" if row["claims_per_bio"] is not None else "-",
                      _pct(m["prefers_misconception"]) if m else "-", _pct(m["mc1"]) if m else "-")
    return table


@world_app.command("probe")
def world_probe(
    model: Annotated[str | None, typer.Argument(help="Model directory [default: the world's base model].")] = None,
    world: Annotated[Path | None, typer.Option(help="World directory [default: results/worlds/default-s0].")] = None,
    per_tier: Annotated[int | None, typer.Option(help="People per tier [default: the preset's].")] = None,
    seed: Annotated[int, typer.Option(help="Sampling seed for the people.")] = 0,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the full result here.")] = None,
) -> None:
    """Generate bios for people of each popularity tier and report attribute precision and recall."""
    from flame_bench.io import write_json
    from flame_bench.world.probe import probe
    from flame_bench.world.store import WorldDir

    wd = WorldDir.open(world or default_world_dir("default", 0))
    if model is not None and not (Path(model) / "config.json").is_file():
        raise FlameError(f"{model} is not a model directory (no config.json); pass a saved HF model directory")
    result = probe(wd, model, per_tier=per_tier, seed=seed, quiet=False)
    stdout.print(render_probe(result))
    if json_out:
        write_json(json_out, result)


@app.command("pretrain")
def pretrain_cmd(
    out: Annotated[Path, typer.Option(help="Directory for the new base model.")],
    world: Annotated[Path | None, typer.Option(help="World directory [default: results/worlds/default-s0].")] = None,
    steps: Annotated[int | None, typer.Option(help="Training steps [default: the preset's].")] = None,
    seed: Annotated[int, typer.Option(help="Initialisation and data-order seed.")] = 0,
    force: Annotated[bool, typer.Option("--force", help="Replace a non-empty output directory.")] = False,
) -> None:
    """Pretrain another base model on an existing world's corpus (e.g. another budget or seed)."""
    import dataclasses

    from transformers import AutoTokenizer

    from flame_bench.world.presets import ModelSpec
    from flame_bench.world.pretrain import pretrain
    from flame_bench.world.store import WorldDir

    wd = WorldDir.open(world or default_world_dir("default", 0))
    if out.exists() and any(out.iterdir()) and not force:
        raise FlameError(f"{out} is not empty; pass --force to replace it or choose another --out")
    spec = ModelSpec(**wd.manifest["preset"]["model"])
    if steps is not None:
        spec = dataclasses.replace(spec, steps=steps)
    tok = AutoTokenizer.from_pretrained(wd.model_dir)
    record = pretrain([d["text"] for d in wd.records("corpus")], tok, spec, out, seed)
    stdout.print(f"[green]saved[/green] {out} (final loss {record['final_loss']:.3f})")


def main() -> None:
    try:
        app()
    except FlameError as e:
        console.print(f"[red]error:[/red] {e}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/yellow]; completed results are kept, partial ones are discarded")
        sys.exit(130)


if __name__ == "__main__":
    main()
