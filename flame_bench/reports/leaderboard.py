"""The leaderboard: every model's latest run of every task, as a rich table and `results/leaderboard.{md,json}`.

Computed from the run records; a written board also carries over the cells of the board already there whose runs
cannot be read here (e.g. a committed board in a fresh clone), each marked as such and counted on stderr. Writing
takes an exclusive lock and re-reads the records inside it, and each file is replaced atomically, so two
evaluations finishing at once never leave a torn or stale board.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.table import Table
from rich.text import Text

from flame_bench.core.io import locked, write_json, write_text
from flame_bench.core.paths import results_dir
from flame_bench.core.paths import runs_dir as runs_path
from flame_bench.core.records import RunRecord, invalid_value, list_runs, model_label
from flame_bench.reports.runs import md_row
from flame_bench.scoring.quality import weak_note

NOT_HERE, UNREADABLE = "run not in this results/runs", "run record unreadable"


def task_position(task: str) -> int:
    """Tasks appear in their compare-column order (unregistered tasks of old records last)."""
    from flame_bench.core.registry import TASKS

    return TASKS.get(task).position if task in TASKS else 99


def source_label(header: dict[str, Any]) -> str:
    """Which data a run was evaluated on: the world (preset-sSEED) or the real source's name."""
    src = header.get("source") or {}
    if src.get("kind") == "fact-world":
        return f"{src.get('preset')}-s{src.get('seed')}" + (f"__{src['variant']}" if src.get("variant") else "")
    if src.get("kind") == "real":
        return str(src.get("name", "real"))
    world = header.get("world")  # records written before sources existed
    return Path(world["path"]).name if isinstance(world, dict) and world.get("path") else "real"


def _rank(r: RunRecord) -> tuple[bool, str]:
    """A full run outranks any limited one (a `--limit 1` FActScore of 100 must never replace a full 65); among
    equals the latest wins."""
    return (r.header.get("limit") is None, str(r.header.get("created", "")))


def _world_content(header: dict[str, Any]) -> str | None:
    src = header.get("source") or {}
    return src.get("content_sha256") if src.get("kind") == "fact-world" else None


def latest_runs(records: Sequence[RunRecord]) -> dict[tuple[str, str, str], RunRecord]:
    """(source, model, task) -> the run shown for it. Two worlds under one label (a preset whose definition changed,
    e.g. `default` before and after 2026-12-03) stay apart: each such label gets its world's content hash."""
    contents: dict[str, set[str | None]] = {}
    for r in records:
        contents.setdefault(source_label(r.header), set()).add(_world_content(r.header))

    def label(header: dict[str, Any]) -> str:
        name = source_label(header)
        return f"{name}@{str(_world_content(header))[:8]}" if len(contents[name]) > 1 else name

    latest: dict[tuple[str, str, str], RunRecord] = {}
    for r in records:
        key = (label(r.header), model_label(r.header), r.task)
        if key not in latest or _rank(r) >= _rank(latest[key]):
            latest[key] = r
    return latest


def leaderboard_rows(records: Sequence[RunRecord]) -> tuple[list[str], list[dict[str, Any]]]:
    """(task columns, one row per (source, model) with each task's primary metric, its n and its run)."""
    latest = latest_runs(records)
    tasks = sorted({t for _, _, t in latest}, key=lambda t: (task_position(t), t))
    rows = []
    for source, model in sorted({(s, m) for s, m, _ in latest}):
        row: dict[str, Any] = {"model": model, "source": source}
        for task in tasks:
            rec = latest.get((source, model, task))
            if rec is None:
                continue
            key = rec.header["primary_metric"]
            info = next(i for i in rec.header["metric_info"] if i["key"] == key)
            value = rec.metrics.get(key)
            if (bad := invalid_value(value)) is not None:  # shown as invalid, never as a number
                row[task] = {"metric": key, "display": info["display"], "value": None, "invalid": bad,
                             "percent": info.get("percent", True), "run": rec.run_id}
                continue
            row[task] = {"metric": key, "display": info["display"], "value": value,
                         "percent": info.get("percent", True), "run": rec.run_id,
                         "n": (rec.header.get("counts") or {}).get("items"), "limit": rec.header.get("limit"),
                         "reference": (rec.header.get("reference") or {}).get("name"),
                         **({"weak": note} if (note := weak_note(rec.header.get("evaluator_quality") or {})) else {})}
        rows.append(row)
    return tasks, rows


def _cell(entry: dict[str, Any] | None) -> str:
    if entry and entry.get("invalid"):
        return f"invalid: {entry['invalid']} (run {entry['run']})"
    if not entry or entry["value"] is None:
        return "-"
    text = f"{100 * entry['value']:.1f}" if entry["percent"] else f"{entry['value']:.2f}"
    # a win rate means nothing without its reference; boards mix comparisons with different references
    notes = [f"vs {entry['reference']}"] if entry.get("reference") else []
    if entry.get("n") is not None:
        notes.append(f"n={entry['n']}" + (" limited" if entry.get("limit") else ""))
    if entry.get("kept"):
        notes.append(UNREADABLE if entry.get("unreadable") else NOT_HERE)
    if entry.get("weak"):  # an evaluator at chance on its check: the number means nothing
        notes.append(f"not meaningful: {entry['weak']}")
    return f"{text} ({', '.join(notes)})" if notes else text


def _header(task: str, rows: list[dict[str, Any]]) -> str:
    entry = next((r[task] for r in rows if task in r), None)
    return f"{task} {entry['display']}" if entry else task


def render_table(tasks: list[str], rows: list[dict[str, Any]]) -> Table:
    table = Table(title="flame-bench leaderboard (per data source: the latest full run per model and task)")
    table.add_column("data")
    table.add_column("model")
    for t in tasks:
        table.add_column(_header(t, rows), justify="right")
    for row in rows:
        table.add_row(Text(row["source"]), Text(row["model"]), *[Text(_cell(row.get(t))) for t in tasks])
    return table


def render_markdown(tasks: list[str], rows: list[dict[str, Any]]) -> str:
    lines = [md_row(["data", "model", *(_header(t, rows) for t in tasks)]), "|---" * (len(tasks) + 2) + "|"]
    lines += [md_row([r["source"], r["model"], *(_cell(r.get(t)) for t in tasks)]) for r in rows]
    return "\n".join(lines) + "\n"


def write_leaderboard(runs_dir: Path | None = None, out_dir: Path | None = None,
                      skipped: list[str] | None = None) -> tuple[list[str], list[dict]]:
    """Rewrite `leaderboard.{md,json}` from the records (a damaged record is skipped and named in `skipped`, and so
    is the number of cells carried over from the board already there: `_keep_unrecomputable`)."""
    out_dir, runs_dir = out_dir or results_dir(), runs_dir or runs_path()
    with locked(out_dir / "leaderboard", "lock"):  # .leaderboard.lock: one writer at a time
        records = list_runs(runs_dir, skipped)
        tasks, rows = leaderboard_rows(records)  # re-read inside the lock: never stale
        tasks, rows = _keep_unrecomputable(out_dir / "leaderboard.json", tasks, rows, {r.run_id for r in records},
                                           skipped, runs_dir)
        write_text(out_dir / "leaderboard.md", render_markdown(tasks, rows))
        write_json(out_dir / "leaderboard.json", {"tasks": tasks, "rows": rows})
    return tasks, rows


def _keep_unrecomputable(board: Path, tasks: list[str], rows: list[dict[str, Any]], local: set[str],
                         skipped: list[str] | None, runs_dir: Path | None = None
                         ) -> tuple[list[str], list[dict[str, Any]]]:
    """The cells of the board already written whose runs are not readable here (e.g. a committed board in a fresh
    clone), kept and marked with why (no such run folder, or its record unreadable): a board never loses a row it
    cannot recompute; a newer local run of the same cell wins. How many were kept is told in `skipped`."""
    from flame_bench.core.errors import FlameError
    from flame_bench.core.io import read_json

    if not board.is_file():
        return tasks, rows
    try:
        old = read_json(board)
        old_rows = old["rows"] if isinstance(old, dict) and isinstance(old.get("rows"), list) else None
    except FlameError as e:
        old_rows, why = None, str(e)
    else:
        why = f"{board}: not a leaderboard (no rows)"
    if old_rows is None:
        if skipped is not None:
            skipped.append(f"{why}; its cells were not carried over")
        return tasks, rows
    by_key = {(r["source"], r["model"]): r for r in rows}
    carried = 0
    for old_row in old_rows:
        if not isinstance(old_row, dict) or not {"source", "model"} <= set(old_row):
            continue
        for task, entry in old_row.items():
            if (task in ("source", "model") or not isinstance(entry, dict) or entry.get("run") in local
                    or task in by_key.get((old_row["source"], old_row["model"]), {})):
                continue
            row = by_key.setdefault((old_row["source"], old_row["model"]),
                                    {"model": old_row["model"], "source": old_row["source"]})
            present = runs_dir is not None and (runs_dir / str(entry.get("run"))).is_dir()
            row[task] = {**{k: v for k, v in entry.items() if k != "unreadable"}, "kept": True,
                         **({"unreadable": True} if present else {})}
            carried += 1
    if carried and skipped is not None:
        skipped.append(f"{board}: {carried} cell(s) carried over whose runs cannot be read here (marked on the "
                       f"board; delete {board.name} and write the board again to drop them)")
    all_tasks = sorted({t for r in by_key.values() for t in r if t not in ("source", "model")},
                       key=lambda t: (task_position(t), t))
    return all_tasks, [by_key[k] for k in sorted(by_key)]
