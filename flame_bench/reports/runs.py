"""Reports: pure functions of run records (never regenerate, never re-judge)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import Any

from rich.table import Table
from rich.text import Text

from flame_bench.core.records import RunRecord, invalid_value, json_safe, model_label

FORMATS = ("table", "md", "csv", "json")
_MD_ESCAPES = str.maketrans({"\\": "\\\\", "|": "\\|", "&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": " ", "\n": " "})


def md_cell(value: object) -> str:
    """One markdown table cell: a `|` never opens a column, no HTML is ever live, a newline never ends the row."""
    return str(value).translate(_MD_ESCAPES)


def md_row(cells: Sequence[object]) -> str:
    """One markdown table row; every markdown table (leaderboard, report, comparison) is written with it."""
    return "| " + " | ".join(md_cell(c) for c in cells) + " |"


def csv_cell(value: object) -> object:
    """A text cell a spreadsheet would run as a formula (`=`, `+`, `-`, `@` first) gets a leading `'`; numbers stay."""
    return f"'{value}" if isinstance(value, str) and value[:1] in ("=", "+", "-", "@") else value


def _fmt(value: float | None, info: dict[str, Any]) -> str:
    if (bad := invalid_value(value)) is not None:
        return f"invalid: {bad}"
    if value is None:
        return "-"
    return f"{100 * value:.1f}" if info.get("percent", True) else f"{value:.2f}"


def run_rows(records: Sequence[RunRecord]) -> list[dict[str, Any]]:
    """One row per (run, metric) with value, 95% CI and the run's identity; a non-finite value is None with an
    "invalid" flag ("nan"), its CI None."""
    rows = []
    for r in records:
        h = r.header
        for info in h["metric_info"]:
            key = info["key"]
            value = h["metrics"].get(key)
            ci = h.get("confidence_intervals", {}).get(key)
            row = {
                "run": r.run_id, "task": r.task, "model": model_label(h), "metric": key,
                "display": info["display"], "value": value, "ci_low": ci[0] if ci else None,
                "ci_high": ci[1] if ci else None, "percent": info.get("percent", True),
                "n": h["counts"].get("items"),
                "evaluators": evaluators_cell(h.get("evaluator_quality") or {}),
            }
            if (bad := invalid_value(value)) is not None:
                row.update(value=None, ci_low=None, ci_high=None, invalid=bad)
            rows.append(json_safe(row))
    return rows


def warn_invalid(rows: Sequence[dict[str, Any]]) -> None:
    """One stderr line naming every metric shown as invalid (a non-finite value in its run record)."""
    from flame_bench.core.ui import console

    bad = [f"{r['run']} {r['metric']}: {r['invalid']}" for r in rows if r.get("invalid")]
    if bad:
        console.print(f"[yellow]warning:[/yellow] {len(bad)} metric(s) are not numbers in their run records, shown "
                      f"as invalid: {'; '.join(bad)}", highlight=False, markup=True)


def evaluators_cell(quality: dict[str, Any]) -> str:
    """A record's `evaluator_quality` in a few words: "verifier ok", "pairwise_judge weak (50.0%)", "-" for none."""
    parts = []
    for role, q in quality.items():
        acc = q.get("accuracy") if isinstance(q, dict) else None
        parts.append(f"{role} {q.get('verdict', '?') if isinstance(q, dict) else '?'}"
                     + (f" ({100 * acc:.1f}%)" if isinstance(acc, int | float) else ""))
    return ", ".join(parts) or "-"


def _cell(row: dict[str, Any]) -> str:
    if row.get("invalid"):
        return f"invalid: {row['invalid']}"
    text = _fmt(row["value"], row) + ("†" if " weak" in row.get("evaluators", "") else "")
    if row["ci_low"] is not None:
        text += f" [{_fmt(row['ci_low'], row)}, {_fmt(row['ci_high'], row)}]"
    return text


def runs_table(records: Sequence[RunRecord]) -> Table:
    table = Table(title="flame-bench runs", caption="percent metrics x100; [95% CI]")
    for col in ("task", "model", "metric", "value [95% CI]", "n", "evaluators", "run"):
        table.add_column(col, overflow="fold")
    rows = run_rows(records)
    warn_invalid(rows)
    for row in rows:
        table.add_row(*(Text(str(c)) for c in (row["task"], row["model"], row["display"], _cell(row), row["n"],
                                              row["evaluators"], row["run"])))
    from flame_bench.scoring.quality import weak_note

    notes = dict.fromkeys(n for r in records if (n := weak_note(r.header.get("evaluator_quality") or {})))
    if notes:
        table.caption += "".join(f"\n† not meaningful: {n}" for n in notes)
    return table


def breakdown_table(record: RunRecord) -> Table | None:
    """Per-group (e.g. per-tier) metrics of one run."""
    h = record.header
    if len(h.get("breakdown") or {}) < 2:  # one group says nothing the runs table does not
        return None
    infos = [i for i in h["metric_info"] if any(i["key"] in g for g in h["breakdown"].values())]
    table = Table(title=Text(f"{record.task} by group: {model_label(h)}"))
    table.add_column("group")
    for i in infos:
        table.add_column(i["display"], justify="right")
    for group, metrics in h["breakdown"].items():
        table.add_row(Text(str(group)), *[_fmt(metrics.get(i["key"]), i) for i in infos])
    return table


def render_text(records: Sequence[RunRecord], fmt: str) -> str:
    """`fmt` md, csv or json (strict JSON: an invalid value is null with its "invalid" flag)."""
    rows = run_rows(records)
    warn_invalid(rows)
    if fmt == "json":
        return json.dumps([{k: v for k, v in r.items() if k != "percent"} for r in rows], indent=2, allow_nan=False)
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=["run", "task", "model", "metric", "value", "ci_low", "ci_high", "n",
                                            "evaluators"],
                           extrasaction="ignore", lineterminator="\n")
        w.writeheader()
        w.writerows({k: r["invalid"] if k == "value" and r.get("invalid") else csv_cell(v) for k, v in r.items()}
                    for r in rows)
        return buf.getvalue()
    lines = [md_row(("task", "model", "metric", "value [95% CI]", "n")), "|---|---|---|---|---|"]
    lines += [md_row((r["task"], r["model"], r["display"], _cell(r), r["n"])) for r in rows]
    return "\n".join(lines) + "\n"
