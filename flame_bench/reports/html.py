"""One self-contained HTML page per comparison (`compare --html`) or set of runs (`report RUN... --html`).

The page is a pure function of the run records (and the knowledge passages their facts cite): the Table 3 layout
with paired CIs, the factuality-vs-helpfulness plot with CI whiskers and per-group bars (inline SVG drawn here), and
a per-item view rendered by inline vanilla JS from the records embedded as JSON: every bio's atomic facts with their
verdicts and evidence passages, every win-rate item's outputs, judge reply and flip-back. No network: no CDN, no
fonts, and a Content-Security-Policy that forbids any fetch.

    page_data(results, dl, knowledge)  -> the JSON the page embeds (items, passages, table)
    comparison_html(results, dl, ...)  -> the page (str); runs_html(records, ...) for plain runs
"""

from __future__ import annotations

import hashlib
import html
import json
import math
import re
from pathlib import Path
from typing import Any

from flame_bench.core.records import RunRecord, invalid_value, json_safe, model_label
from flame_bench.core.registry import TASKS
from flame_bench.core.stats import Delta
from flame_bench.reports.comparison import SystemResult, columns_of, fmt, fmt_delta, training_columns, training_rows
from flame_bench.reports.figure import PALETTE, Point, axis_limits, figure_points, point_extents


# -- inline SVG --------------------------------------------------------------------------------------------------
def _ticks(lo: float, hi: float, n: int = 6) -> list[float]:
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step) * step
    return [round(first + i * step, 6) for i in range(int((hi - first) / step + 1e-9) + 1)]


def _num(v: float) -> str:
    return f"{v:.1f}"


def scatter_svg(xlabel: str, ylabel: str, points: list[Point], colors: dict[str, str]) -> str:
    """Factuality vs helpfulness: one dot per system (area ~ length), 95% CI whiskers on both axes."""
    w, h, ml, mr, mt, mb = 560, 400, 60, 20, 16, 48
    xs, ys = point_extents(points)
    (x0, x1), (y0, y1) = axis_limits(xs), axis_limits(ys)

    def px(v: float) -> float:
        return ml + (v - x0) / (x1 - x0) * (w - ml - mr)

    def py(v: float) -> float:
        return h - mb - (v - y0) / (y1 - y0) * (h - mt - mb)

    e = html.escape
    out = [f'<svg id="plot" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" '
           f'aria-label="{e(ylabel)} vs {e(xlabel)}" xmlns="http://www.w3.org/2000/svg">',
           f'<rect x="{ml}" y="{mt}" width="{w - ml - mr}" height="{h - mt - mb}" class="frame"/>']
    for t in _ticks(x0, x1):
        out.append(f'<line x1="{_num(px(t))}" x2="{_num(px(t))}" y1="{mt}" y2="{h - mb}" class="grid"/>'
                   f'<text x="{_num(px(t))}" y="{h - mb + 16}" class="tick" text-anchor="middle">{t:g}</text>')
    for t in _ticks(y0, y1):
        out.append(f'<line x1="{ml}" x2="{w - mr}" y1="{_num(py(t))}" y2="{_num(py(t))}" class="grid"/>'
                   f'<text x="{ml - 6}" y="{_num(py(t) + 4)}" class="tick" text-anchor="end">{t:g}</text>')
    out.append(f'<text x="{(ml + w - mr) / 2}" y="{h - 10}" class="axis" text-anchor="middle">{e(xlabel)}</text>'
               f'<text transform="translate(16 {(mt + h - mb) / 2}) rotate(-90)" class="axis" '
               f'text-anchor="middle">{e(ylabel)}</text>')
    placed: list[tuple[float, float, float, float]] = []  # label boxes so far (left, top, right, bottom)
    for p in points:
        c, cx, cy = colors[p.name], px(p.x), py(p.y)
        ci = []
        if p.x_ci:
            ci.append(f"{xlabel.split(':')[0].lower()} CI [{p.x_ci[0]:.1f}, {p.x_ci[1]:.1f}]")
            out.append(f'<path d="M{_num(px(p.x_ci[0]))} {_num(cy)}H{_num(px(p.x_ci[1]))}M{_num(px(p.x_ci[0]))} '
                       f'{_num(cy - 4)}v8M{_num(px(p.x_ci[1]))} {_num(cy - 4)}v8" stroke="{c}" class="whisker"/>')
        if p.y_ci:
            ci.append(f"{ylabel.split(':')[0].lower()} CI [{p.y_ci[0]:.1f}, {p.y_ci[1]:.1f}]")
            out.append(f'<path d="M{_num(cx)} {_num(py(p.y_ci[0]))}V{_num(py(p.y_ci[1]))}M{_num(cx - 4)} '
                       f'{_num(py(p.y_ci[0]))}h8M{_num(cx - 4)} {_num(py(p.y_ci[1]))}h8" stroke="{c}" '
                       f'class="whisker"/>')
        r = min(14.0, max(4.0, math.sqrt(p.length) / 2))
        tip = f"{p.name}: ({p.x:.1f}, {p.y:.1f}), length {p.length:.0f}" + "".join(f"; {s}" for s in ci)
        text = f"{p.name} ({p.length:.0f} chars)"
        lx, ly, anchor = _label_place(cx + r + 3, cy - r - 2, len(text) * LABEL_CHAR_PX, placed, w - mr)
        out.append(f'<circle cx="{_num(cx)}" cy="{_num(cy)}" r="{r:.1f}" fill="{c}" class="dot" '
                   f'data-system="{e(p.name)}"><title>{e(tip)}</title></circle>'
                   f'<text x="{_num(lx)}" y="{_num(ly)}" class="label" text-anchor="{anchor}">{e(text)}</text>')
    out.append("</svg>")
    return "".join(out)


def natural_key(name: str) -> list[Any]:
    """Sort key that orders "bin 2" before "bin 10" (groups and bins read in their natural order)."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


LABEL_CHAR_PX, LABEL_LINE_PX = 6.2, 14.0  # the label font's average advance and line height


def _label_place(x: float, y: float, width: float, placed: list[tuple[float, float, float, float]],
                 right_edge: float) -> tuple[float, float, str]:
    """Where a point's label goes: right of the dot (left of it where it would leave the frame), moved down a line
    at a time until its box overlaps no label placed before it. Appends the chosen box to `placed`."""
    anchor, left = ("start", x) if x + width <= right_edge else ("end", x - width)
    top = y - LABEL_LINE_PX + 3
    while any(left < r and left + width > lft and top < b and top + LABEL_LINE_PX > t for lft, t, r, b in placed):
        top += LABEL_LINE_PX
    placed.append((left, top, left + width, top + LABEL_LINE_PX))
    return (x if anchor == "start" else left + width), top + LABEL_LINE_PX - 3, anchor


def group_bars_svg(task: str, metric: str, display: str, percent: bool, groups: list[str],
                   values: dict[str, dict[str, float | None]], colors: dict[str, str]) -> str:
    """Per-group bars of one metric (from each run's `breakdown`), one bar per system; the axis starts at 0."""
    systems = list(values)
    scale = 100 if percent else 1
    top = 100.0 if percent else max([scale * (v or 0) for g in values.values() for v in g.values()] + [1.0]) * 1.15
    slot = max(60, 24 * len(systems) + 24, 7 * max(len(g) for g in groups) + 12)  # room for the group's name
    w, h, ml, mt, mb = max(360, 60 + slot * len(groups)), 240, 48, 12, 44
    bw = (slot - 20) / max(1, len(systems))
    e = html.escape

    def py(v: float) -> float:
        return h - mb - v / top * (h - mt - mb)

    out = [f'<svg class="bars" data-task="{e(task)}" viewBox="0 0 {w} {h}" width="{w}" height="{h}" '
           f'xmlns="http://www.w3.org/2000/svg">']
    for t in _ticks(0, top, 4):
        out.append(f'<line x1="{ml}" x2="{w - 8}" y1="{_num(py(t))}" y2="{_num(py(t))}" class="grid"/>'
                   f'<text x="{ml - 6}" y="{_num(py(t) + 4)}" class="tick" text-anchor="end">{t:g}</text>')
    for gi, g in enumerate(groups):
        gx = ml + 10 + gi * slot
        out.append(f'<text x="{_num(gx + (slot - 20) / 2)}" y="{h - mb + 16}" class="tick" '
                   f'text-anchor="middle">{e(g)}</text>')
        for si, s in enumerate(systems):
            v = values[s].get(g)
            if v is None:
                continue
            x, y = gx + si * bw, py(scale * v)
            out.append(f'<rect x="{_num(x)}" y="{_num(y)}" width="{_num(bw - 2)}" height="{_num(h - mb - y)}" '
                       f'fill="{colors[s]}" data-system="{e(s)}" data-group="{e(g)}">'
                       f'<title>{e(s)}, {e(g)}: {scale * v:.1f}</title></rect>'
                       f'<text x="{_num(x + (bw - 2) / 2)}" y="{_num(y - 3)}" class="barval" '
                       f'text-anchor="middle">{scale * v:.{1 if percent else 2}f}</text>')
    out.append(f'<text x="{w / 2}" y="{h - 8}" class="axis" text-anchor="middle">{e(task)}: {e(display)} by group'
               f'{" (%)" if percent else ""}</text></svg>')
    return "".join(out)


# -- the data the page embeds -------------------------------------------------------------------------------------
def _kind(samples: list[dict[str, Any]]) -> str:
    s = samples[0] if samples else {}
    if "facts" in s:
        return "facts"
    if "reference_output" in s and "model_score" in s:
        return "pairwise"
    if "choices" in s and "chosen" in s:
        return "choices"
    return "other"


def _item_key(task: str, kind: str) -> str | None:
    if task in TASKS:
        key = next((c.item_key for c in TASKS.get(task).columns if c.item_key), None)
        if key:
            return key
    return {"facts": "factscore", "pairwise": "model_score", "choices": "score"}.get(kind)


def _group(sample: dict[str, Any]) -> str:
    if sample.get("group") is not None:
        return str(sample["group"])
    if sample.get("tier") is not None:
        return str(sample["tier"])
    if "fact_based" in sample:  # alpaca_winrate's breakdown labels
        return "fact-based" if sample["fact_based"] else "not fact-based"
    return "all"


def _entry(kind: str, s: dict[str, Any], key: str | None) -> dict[str, Any]:
    """One system's view of one item, compact (the page can hold thousands)."""
    out: dict[str, Any] = {"s": s.get(key) if key else None}
    if "output" in s:
        out["o"] = s["output"]
    if kind == "facts":
        out["a"] = bool(s.get("abstained"))
        out["f"] = [[f.get("text", ""), 1 if f.get("supported") else 0, list(f.get("evidence") or [])]
                    for f in s.get("facts") or []]
    elif kind == "pairwise":
        out.update(r=s.get("reference_output"), raw=s.get("raw"), sw=bool(s.get("swapped")),
                   p=s.get("preference"), j=s.get("judged", s.get("raw") is not None))
    elif kind == "choices":
        out.update(c=s.get("chosen"), t=s.get("chosen_true"), mp=s.get("misconception_preferred"))
    else:
        out["x"] = {k: v for k, v in s.items() if k not in ("id", "output", "instruction") and
                    (v is None or isinstance(v, int | float | bool) or (isinstance(v, str) and len(v) < 200))}
    return out


def _title(s: dict[str, Any]) -> str:
    return str(s.get("instruction") or s.get("question") or s.get("prompt") or s.get("id"))


def task_items(results: list[SystemResult]) -> dict[str, dict[str, Any]]:
    """Per task: its kind, item key and every item with each system's entry (aligned with the systems' order)."""
    names = [t for t in dict.fromkeys(t for r in results for t in r.runs)]
    names.sort(key=lambda t: (TASKS.get(t).position if t in TASKS else 99, t))
    out: dict[str, dict[str, Any]] = {}
    for task in names:
        per = [{s["id"]: s for s in r.samples(task)} if task in r.runs else {} for r in results]
        first = next(p for p in per if p)
        kind = _kind(list(first.values()))
        key = _item_key(task, kind)
        ids = list(dict.fromkeys(i for p in per for i in p))
        items = []
        for i in ids:
            base = next(p[i] for p in per if i in p)
            entries = [_entry(kind, p[i], key) if i in p else None for p in per]
            present = [e for e in entries if e is not None]
            scores = {json.dumps(e["s"]) for e in present}
            differ = len(scores) > 1 if key else len({e.get("o") for e in present}) > 1
            item: dict[str, Any] = {"id": str(i), "g": _group(base), "t": _title(base), "d": differ, "e": entries}
            if kind == "choices":
                item.update(ch=base.get("choices"), lb=base.get("labels"))
            items.append(item)
        info = TASKS.get(task) if task in TASKS else None
        out[task] = {"kind": kind, "key": key, "percent_key": kind in ("facts", "pairwise", "choices"),
                     "description": info.description if info else "", "items": items}
    return out


def evidence_ids(tasks: dict[str, dict[str, Any]]) -> list[str]:
    ids = {pid for t in tasks.values() if t["kind"] == "facts" for it in t["items"] for e in it["e"] if e
           for f in e["f"] for pid in f[2]}
    return sorted(ids)


def passage_texts(ids: list[str], knowledge: Any) -> dict[str, str]:
    """Passage id ("title#i") -> text, for the ids the knowledge source has."""
    out = {}
    for pid in ids:
        title = pid.rpartition("#")[0]
        page = knowledge.pages.get(title) or []
        hit = next((p for p in page if p.id == pid), None)
        if hit is not None:
            out[pid] = hit.text
    return out


def reopen_knowledge(results: list[SystemResult]) -> tuple[Any, str]:
    """The knowledge source of the runs' facts, reopened from a run header's `source_spec`; (None, why) if not."""
    from flame_bench.core.source import open_source

    specs = [rec.header.get("source_spec") for r in results for rec in r.runs.values() if rec.header.get("source_spec")]
    if not specs:
        return None, "the runs do not record their source"
    try:
        return open_source(specs[0]).knowledge, ""
    except Exception as e:  # any failure to reopen leaves the ids on the page, never fails the report
        return None, f"the source could not be reopened ({str(e).splitlines()[0] if str(e) else type(e).__name__})"


def table_columns_of(results: list[SystemResult]) -> list[dict[str, Any]]:
    """The Table 3 columns (the tasks' compare columns), plus each other task's primary metric."""
    cols = [{"label": c.label, "task": t.name, "metric": c.metric, "percent": c.percent,
             **({} if c.judged else {"judged": False})} for t, c in columns_of(results)]
    shown = {c["task"] for c in cols}
    for task in dict.fromkeys(t for r in results for t in r.runs):
        if task in shown:
            continue
        h = next(r.runs[task].header for r in results if task in r.runs)
        info = next((i for i in h.get("metric_info", []) if i["key"] == h.get("primary_metric")), None)
        if info:
            cols.append({"label": f"{task}: {info['display']}", "task": task, "metric": info["key"],
                         "percent": info.get("percent", True)})
    return cols


def page_data(results: list[SystemResult], dl: dict[str, dict[str, Delta | None]] | None = None,
              knowledge: Any = None, knowledge_note: str = "") -> dict[str, Any]:
    """Everything the page shows, from the run records (and the passages of `knowledge`)."""
    tasks = task_items(results)
    ids = evidence_ids(tasks)
    passages = passage_texts(ids, knowledge) if knowledge is not None and ids else {}
    if ids and not passages and not knowledge_note:
        knowledge_note = "the knowledge source has none of the cited passages"
    cols = table_columns_of(results)
    table = {r.name: {c["label"]: _table_cell(r.metric(c["task"], c["metric"]),
                                              (dl or {}).get(r.name, {}).get(c["label"]),
                                              (r.runs[c["task"]].header.get("confidence_intervals") or {}).get(
                                                  c["metric"]) if c["task"] in r.runs else None,
                                              _weak(r, c))
                      for c in cols} for r in results}
    return {
        "systems": [r.name for r in results], "task_order": list(tasks),
        "colors": {r.name: PALETTE[i % len(PALETTE)] for i, r in enumerate(results)},
        "runs": {r.name: {t: rec.run_id for t, rec in r.runs.items()} for r in results},
        "columns": cols, "table": table, "tasks": tasks, "passages": passages,
        "passages_note": "" if passages else knowledge_note,
    }


def _weak(result: SystemResult, col: dict[str, Any]) -> str:
    """Why a cell's value is not meaningful (an evaluator at chance on its check), else ""."""
    from flame_bench.scoring.quality import weak_note

    if not col.get("judged", True) or col["task"] not in result.runs:
        return ""
    return weak_note(result.runs[col["task"]].header.get("evaluator_quality") or {})


def _table_cell(value: float | None, delta: Delta | None, ci: list[float] | None, weak: str = "") -> dict[str, Any]:
    """One Table 3 cell; a non-finite value is null with its "invalid" flag (never a number, never a bare NaN); a
    value resting on a weak evaluator carries why it is not meaningful."""
    if (bad := invalid_value(value)) is not None:
        return {"value": None, "invalid": bad, "delta": None, "ci": None}
    return {"value": value, "delta": delta.__dict__ if delta else None, "ci": ci, **({"weak": weak} if weak else {})}


# -- the page ------------------------------------------------------------------------------------------------------
def _cell(value: float | None, percent: bool, sub: str, column: str, invalid: str | None = None) -> str:
    v = "" if value is None else f' data-value="{value!r}"'
    sub_html = f'<div class="sub">{html.escape(sub)}</div>' if sub else ""
    shown = f"invalid: {invalid}" if invalid else fmt(value, percent)
    return f'<td data-column="{html.escape(column)}"{v}><span class="v">{shown}</span>{sub_html}</td>'


def table_html(data: dict[str, Any], paired: bool) -> str:
    e = html.escape
    head = "".join(f'<th data-column="{e(c["label"])}">{e(c["label"])}</th>' for c in data["columns"])
    rows = []
    for name in data["systems"]:
        cells = []
        for c in data["columns"]:
            cell = data["table"][name][c["label"]]
            if paired:
                d = cell["delta"]
                sub = fmt_delta(Delta(**d), c["percent"]) if d else ""
            else:
                ci = cell["ci"]
                sub = f"[{fmt(ci[0], c['percent'])}, {fmt(ci[1], c['percent'])}]" if ci else ""
            if cell.get("weak"):
                sub = f"{sub} † not meaningful: {cell['weak']}".strip()
            cells.append(_cell(cell["value"], c["percent"], sub, c["label"], cell.get("invalid")))
        rows.append(f'<tr data-system="{e(name)}"><th><span class="sw" style="background:{data["colors"][name]}">'
                    f'</span>{e(name)}</th>{"".join(cells)}</tr>')
    return f'<table id="table3"><thead><tr><th>system</th>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def training_html(results: list[SystemResult]) -> str:
    rows = training_rows(results)
    if not any(r.stages for r in results):
        return ""
    e = html.escape
    head = "".join(f"<th>{e(c)}</th>" for c in ("system", *training_columns(results)))
    body = "".join("<tr>" + "".join(f"<td>{e(v)}</td>" for v in row) + "</tr>" for row in rows)
    return (f'<details><summary>Training data (the paper\'s Table 11 layout)</summary><table id="table11">'
            f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></details>")


def groups_html(results: list[SystemResult], colors: dict[str, str]) -> str:
    """Bars per group for each task whose runs have a breakdown of two groups or more."""
    parts = []
    for task in dict.fromkeys(t for r in results for t in r.runs):
        headers = {r.name: r.runs[task].header for r in results if task in r.runs}
        first = next(iter(headers.values()))
        groups = sorted({g for h in headers.values() for g in (h.get("breakdown") or {})}, key=natural_key)
        if len(groups) < 2:
            continue
        metric = next((c.metric for c in TASKS.get(task).columns if c.role or c.item_key), None) \
            if task in TASKS else None
        metric = metric or first.get("primary_metric")
        info = next((i for i in first.get("metric_info", []) if i["key"] == metric), {"display": metric})
        values = {n: {g: (h.get("breakdown") or {}).get(g, {}).get(metric) for g in groups}
                  for n, h in headers.items()}
        parts.append(group_bars_svg(task, str(metric), str(info["display"]), bool(info.get("percent", True)),
                                    groups, values, colors))
    return "".join(parts)


def render_page(title: str, subtitle: str, data: dict[str, Any], table: str, extra_tables: str, plot: str,
                bars: str) -> str:
    payload = json.dumps(json_safe(data), ensure_ascii=False, separators=(",", ":"), sort_keys=True,
                         allow_nan=False).replace("<", "\\u003c")  # strict JSON: JSON.parse never meets a NaN
    e = html.escape
    plot_block = f'<figure>{plot}<figcaption>dot area and label ~ mean characters of the factuality task\'s ' \
                 f'responses; whiskers: 95% CIs from the run records</figcaption></figure>' if plot else ""
    legend = "".join(f'<span class="sw" style="background:{c}"></span>{e(n)} &nbsp; '
                     for n, c in data["colors"].items())
    bars_block = f"<figure><div>{legend}</div>{bars}<figcaption>per group (e.g. popularity tier), from each run's " \
                 f"breakdown</figcaption></figure>" if bars else ""
    parts = {"TITLE": e(title), "SUBTITLE": e(subtitle), "TABLE": table + extra_tables,
             "PLOT": plot_block + bars_block, "CSS": _CSS, "JS": _JS, "DATA": payload}
    return re.sub(r"\{\{([A-Z]+)\}\}", lambda m: parts[m.group(1)], _PAGE)  # one pass: data is never re-scanned


def _page(results: list[SystemResult], dl: dict[str, dict[str, Delta | None]] | None, title: str, subtitle: str,
          knowledge: Any, knowledge_note: str) -> str:
    data = page_data(results, dl, knowledge, knowledge_note)
    fig = figure_points(results)
    plot = scatter_svg(fig[0], fig[1], fig[2], data["colors"]) if fig else ""
    return render_page(title, subtitle, data, table_html(data, dl is not None), training_html(results), plot,
                       groups_html(results, data["colors"]))


def comparison_html(results: list[SystemResult], dl: dict[str, dict[str, Delta | None]], title: str,
                    knowledge: Any = None) -> str:
    """The comparison's page. `knowledge`: the evaluation source's knowledge (else reopened from the runs)."""
    note = ""
    if knowledge is None:
        knowledge, note = reopen_knowledge(results)
    sub = (f"Table 3 layout: value, then the paired delta vs {results[0].name} [95% bootstrap CI], * = CI excludes "
           f"0. Every number and item below comes from the run records.")
    return _page(results, dl, title, sub, knowledge, note)


def systems_of_runs(records: list[RunRecord]) -> list[SystemResult]:
    """Plain runs as systems: one per model; a second run of a task for the same model becomes a system of its own."""
    systems: dict[str, SystemResult] = {}
    for rec in records:
        name = model_label(rec.header)
        if name in systems and rec.task in systems[name].runs:
            name = f"{name} ({rec.run_id})"
        systems.setdefault(name, SystemResult(name, "", Path(), [])).runs[rec.task] = rec
    return list(systems.values())


def runs_html(records: list[RunRecord], knowledge: Any = None) -> str:
    results = systems_of_runs(records)
    note = ""
    if knowledge is None:
        knowledge, note = reopen_knowledge(results)
    return _page(results, None, f"flame-bench report: {len(records)} runs",
                 "Each value with its 95% CI from the run record; every number and item comes from the run records.",
                 knowledge, note)


def report_name(records: list[RunRecord]) -> str:
    models = "_".join(dict.fromkeys(r.header["model"]["name"] for r in records))
    digest = hashlib.sha256("\n".join(sorted(r.run_id for r in records)).encode()).hexdigest()[:10]
    safe = "".join(ch if ch.isalnum() or ch in "._-" else "-" for ch in models)[:80]
    return f"report__{safe}__{digest}"


_CSS = """
:root{--fg:#1d2330;--muted:#667085;--line:#d9dee7;--bg:#f7f8fa;--ok:#177245;--okbg:#e3f4ea;--bad:#b42318;
--badbg:#fde8e7;--sel:#eef4ff}
*{box-sizing:border-box}body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:var(--fg);
background:var(--bg)}header,section{max-width:1500px;margin:0 auto;padding:12px 20px}
h1{font-size:20px;margin:8px 0 2px}h2{font-size:16px;margin:18px 0 8px}.muted,.sub{color:var(--muted)}
.sub{font-size:12px;white-space:nowrap}table{border-collapse:collapse;background:#fff;margin:6px 0}
th,td{border:1px solid var(--line);padding:4px 8px;text-align:right}th:first-child{text-align:left}
thead th{background:#eef0f4}.sw{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:6px}
.figs{display:flex;flex-wrap:wrap;gap:16px}figure{margin:0;background:#fff;border:1px solid var(--line);padding:8px}
figcaption{font-size:12px;color:var(--muted)}svg .frame{fill:none;stroke:#aab}svg .grid{stroke:#e6e8ee}
svg .tick{font-size:11px;fill:#555}svg .axis{font-size:12px;fill:#222}svg .label{font-size:11px;fill:#222}
svg .barval{font-size:10px;fill:#333}svg .whisker{stroke-width:1.6;fill:none}svg .dot{fill-opacity:.75}
.controls{display:flex;flex-wrap:wrap;gap:12px;align-items:center;margin-bottom:8px}
.controls select,.controls input[type=search]{font:inherit;padding:3px 6px}
.browser{display:grid;grid-template-columns:minmax(280px,26%) 1fr;gap:12px}
#items{max-height:78vh;overflow:auto;background:#fff;border:1px solid var(--line)}
.item{display:block;width:100%;text-align:left;border:0;border-bottom:1px solid var(--line);background:#fff;
padding:6px 8px;cursor:pointer;font:inherit}.item:hover{background:#f3f5f9}.item.sel{background:var(--sel)}
.item .meta{font-size:11px;color:var(--muted)}.chip{display:inline-block;font-size:11px;border-radius:8px;
padding:0 6px;margin:2px 3px 0 0;color:#fff}.tag{font-size:11px;border:1px solid var(--line);border-radius:4px;
padding:0 4px;margin-right:4px}#detail{background:#fff;border:1px solid var(--line);padding:10px 14px;
min-height:200px;max-height:78vh;overflow:auto}.cols{display:grid;gap:12px;
grid-template-columns:repeat(auto-fit,minmax(300px,1fr))}.col{border-top:4px solid #999;padding-top:6px}
.out{white-space:pre-wrap;background:var(--bg);border:1px solid var(--line);padding:6px 8px;border-radius:4px}
ul.facts{list-style:none;padding:0;margin:8px 0}li.fact{border-left:4px solid;padding:3px 8px;margin:3px 0;
cursor:pointer;border-radius:3px}li.fact.supported{border-color:var(--ok);background:var(--okbg)}
li.fact.unsupported{border-color:var(--bad);background:var(--badbg)}.verdict{font-weight:600;margin-right:6px}
.evidence{margin:4px 0 2px 12px;font-size:12px}.passage{margin:3px 0;padding:3px 6px;background:#fff;
border:1px solid var(--line);border-radius:3px}.passage code{color:#344;font-weight:600;margin-right:6px}
pre.raw{white-space:pre-wrap;background:#fbfaf3;border:1px solid #e6e0c4;padding:6px 8px;margin:4px 0}
.win{color:var(--ok);font-weight:600}.loss{color:var(--bad);font-weight:600}.tie{color:#8a6d00;font-weight:600}
table.choices td{text-align:left}td.true{color:var(--ok)}
"""

_JS = r"""
(function () {
  "use strict";
  var t0 = performance.now();
  var D = JSON.parse(document.getElementById("flame-data").textContent);
  var $ = function (id) { return document.getElementById(id); };
  function el(tag, attrs, kids) {
    var n = document.createElement(tag);
    if (attrs) for (var k in attrs) {
      if (k === "text") n.textContent = attrs[k]; else if (k === "cls") n.className = attrs[k];
      else n.setAttribute(k, attrs[k]);
    }
    (kids || []).forEach(function (c) {
      if (c != null) n.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    });
    return n;
  }
  function fmt(v, pct) { return v == null ? "-" : pct ? (100 * v).toFixed(1) : (+v).toFixed(2); }
  var state = {task: "", group: "", differ: false, q: "", sel: null};
  var taskNames = D.task_order;
  var taskSel = $("f-task"), groupSel = $("f-group");
  taskSel.appendChild(el("option", {value: "", text: "all tasks"}));
  taskNames.forEach(function (t) {
    taskSel.appendChild(el("option", {value: t, text: t + " (" + D.tasks[t].items.length + ")"}));
  });
  function fillGroups() {
    var seen = {}, groups = [];
    taskNames.forEach(function (t) {
      if (state.task && t !== state.task) return;
      D.tasks[t].items.forEach(function (it) { if (!seen[it.g]) { seen[it.g] = 1; groups.push(it.g); } });
    });
    groupSel.textContent = "";
    groupSel.appendChild(el("option", {value: "", text: "all groups"}));
    groups.forEach(function (g) { groupSel.appendChild(el("option", {value: g, text: g})); });
    if (groups.indexOf(state.group) < 0) state.group = "";
    groupSel.value = state.group;
  }
  function matches(t, it) {
    if (state.task && t !== state.task) return false;
    if (state.group && it.g !== state.group) return false;
    if (state.differ && !it.d) return false;
    if (state.q) {
      var q = state.q.toLowerCase();
      if ((it.t + " " + it.id).toLowerCase().indexOf(q) < 0 &&
          !it.e.some(function (e) { return e && e.o && e.o.toLowerCase().indexOf(q) >= 0; })) return false;
    }
    return true;
  }
  function renderList() {
    var box = $("items"); box.textContent = "";
    var n = 0, frag = document.createDocumentFragment();
    taskNames.forEach(function (t) {
      var info = D.tasks[t];
      info.items.forEach(function (it) {
        if (!matches(t, it)) return;
        n++;
        var chips = it.e.map(function (e, i) {
          if (!e) return null;
          return el("span", {cls: "chip", style: "background:" + D.colors[D.systems[i]],
                             title: D.systems[i], text: fmt(e.s, info.percent_key)});
        });
        var b = el("button", {cls: "item", "data-task": t, "data-id": it.id, "data-group": it.g}, [
          el("div", {cls: "meta"}, [el("span", {cls: "tag", text: t}), el("span", {cls: "tag", text: it.g}),
                                    it.d ? el("span", {cls: "tag", text: "differ"}) : null]),
          el("div", {text: it.t}), el("div", null, chips)]);
        if (state.sel && state.sel[0] === t && state.sel[1] === it.id) b.className += " sel";
        frag.appendChild(b);
      });
    });
    box.appendChild(frag);
    $("count").textContent = n + " items";
    $("count").setAttribute("data-count", n);
  }
  function passage(pid) {
    var txt = D.passages[pid];
    return el("div", {cls: "passage", "data-passage": pid}, [el("code", {text: pid}),
      txt == null ? el("span", {cls: "muted", text: "(text not available)"}) : el("span", {text: txt})]);
  }
  function factsCol(e) {
    var kids = [el("div", {cls: "out", text: e.o || ""})];
    if (e.a) kids.push(el("p", {cls: "muted", text: "abstained (no atomic facts scored)"}));
    var ul = el("ul", {cls: "facts"});
    e.f.forEach(function (f) {
      var ev = el("div", {cls: "evidence", hidden: ""}, f[2].length ? f[2].map(passage)
        : [el("span", {cls: "muted", text: "no passages retrieved"})]);
      var li = el("li", {cls: "fact " + (f[1] ? "supported" : "unsupported"), title: "click: evidence passages"}, [
        el("span", {cls: "verdict", text: f[1] ? "\u2713 supported" : "\u2717 unsupported"}),
        el("span", {cls: "ftext", text: f[0]}),
        el("span", {cls: "muted", text: " \u00b7 evidence: " + (f[2].join(", ") || "none")}), ev]);
      li.addEventListener("click", function () { ev.hidden = !ev.hidden; li.classList.toggle("open"); });
      ul.appendChild(li);
    });
    kids.push(ul);
    return kids;
  }
  function verdict(s) {
    if (s == null) return el("span", {cls: "muted", text: "unparsable"});
    return s === 1 ? el("span", {cls: "win", text: "win"}) : s === 0 ? el("span", {cls: "loss", text: "loss"})
      : el("span", {cls: "tie", text: "tie"});
  }
  function pairCol(e, it) {
    var kids = [el("div", {cls: "out", text: e.o || ""}), el("p", null, ["verdict vs reference: ", verdict(e.s)])];
    if (e.r != null && e.r !== it.ref) kids.push(el("div", null, [el("b", {text: "this run's reference: "}),
                                                                  el("div", {cls: "out", text: e.r})]));
    if (!e.j) { kids.push(el("p", {cls: "muted", text: "judge not asked (identical outputs: a tie)"})); return kids; }
    kids.push(el("p", {cls: "flip", "data-swapped": e.sw ? "1" : "0"}, [
      "judge saw ", el("b", {text: e.sw ? "output_1 = this system, output_2 = reference (swapped)"
                                        : "output_1 = reference, output_2 = this system"}),
      "; preference " + (e.p == null ? "-" : e.p) + " \u2192 flip-back: score = " +
      (e.sw ? "2 \u2212 pref" : "pref \u2212 1") + " = " + (e.s == null ? "-" : e.s)]));
    kids.push(el("div", null, [el("b", {text: "judge reply"}),
                               el("pre", {cls: "raw", text: e.raw == null ? "" : e.raw})]));
    return kids;
  }
  function choicesCol(e, it) {
    var rows = (it.ch || []).map(function (c, i) {
      var ok = it.lb && it.lb[i];
      return el("tr", null, [el("td", {cls: ok ? "true" : "", text: (ok ? "true: " : "") + c}),
                             el("td", {text: i === e.c ? "\u25c0 chosen" : ""})]);
    });
    return [el("table", {cls: "choices"}, rows), el("p", {text: "score " + fmt(e.s, true)})];
  }
  function otherCol(e) {
    var kids = e.o != null ? [el("div", {cls: "out", text: e.o})] : [];
    var x = e.x || {};
    kids.push(el("table", null, Object.keys(x).map(function (k) {
      return el("tr", null, [el("th", {text: k}), el("td", {text: JSON.stringify(x[k])})]);
    })));
    return kids;
  }
  function showItem(t, id) {
    var info = D.tasks[t], it = info.items.filter(function (x) { return x.id === id; })[0];
    if (!it) return;
    state.sel = [t, id];
    Array.prototype.forEach.call(document.querySelectorAll(".item.sel"), function (b) { b.classList.remove("sel"); });
    Array.prototype.forEach.call(document.querySelectorAll(".item"), function (b) {
      if (b.getAttribute("data-task") === t && b.getAttribute("data-id") === id) b.classList.add("sel");
    });
    var box = $("detail"); box.textContent = "";
    box.setAttribute("data-task", t); box.setAttribute("data-id", id);
    box.appendChild(el("h3", {text: it.t}));
    box.appendChild(el("p", {cls: "muted", text: t + " \u00b7 item " + id + " \u00b7 group " + it.g +
                                                 (it.d ? " \u00b7 the systems differ" : "")}));
    if (info.kind === "pairwise") {
      it.ref = (it.e.filter(function (e) { return e; })[0] || {}).r;
      box.appendChild(el("div", null, [el("b", {text: "reference output"}),
                                       el("div", {cls: "out ref", text: it.ref || ""})]));
    }
    var cols = el("div", {cls: "cols"});
    it.e.forEach(function (e, i) {
      var name = D.systems[i];
      var head = el("h4", null, [name + " \u00b7 " + (info.key || "score") + " " +
                                 (e ? fmt(e.s, info.percent_key) : "-")]);
      var body = !e ? [el("p", {cls: "muted", text: "no run of this task"})]
        : info.kind === "facts" ? factsCol(e) : info.kind === "pairwise" ? pairCol(e, it)
        : info.kind === "choices" ? choicesCol(e, it) : otherCol(e);
      cols.appendChild(el("div", {cls: "col", "data-system": name, style: "border-color:" + D.colors[name]},
                          [head].concat(body)));
    });
    box.appendChild(cols);
  }
  $("items").addEventListener("click", function (ev) {
    var b = ev.target.closest(".item");
    if (b) showItem(b.getAttribute("data-task"), b.getAttribute("data-id"));
  });
  taskSel.addEventListener("change", function () { state.task = taskSel.value; fillGroups(); renderList(); });
  groupSel.addEventListener("change", function () { state.group = groupSel.value; renderList(); });
  $("f-differ").addEventListener("change", function () { state.differ = $("f-differ").checked; renderList(); });
  $("f-q").addEventListener("input", function () { state.q = $("f-q").value; renderList(); });
  if (D.passages_note) $("pnote").textContent = "Evidence passages: ids only (" + D.passages_note + ").";
  fillGroups(); renderList();
  window.flameRenderMs = performance.now() - t0;
  document.body.setAttribute("data-ready", "1");
})();
"""

_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; \
script-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{TITLE}}</title><style>{{CSS}}</style></head>
<body><header><h1>{{TITLE}}</h1><div class="muted">{{SUBTITLE}}</div></header>
<section><h2>Results</h2>{{TABLE}}</section>
<section><h2>Factuality vs helpfulness, and per group</h2><div class="figs">{{PLOT}}</div></section>
<section><h2>Items</h2>
<div class="controls"><label>task <select id="f-task"></select></label>
<label>group <select id="f-group"></select></label>
<label><input type="checkbox" id="f-differ"> only items where the systems differ (per-item score)</label>
<input type="search" id="f-q" placeholder="search text"><span id="count" class="muted"></span>
<span id="pnote" class="muted"></span></div>
<div class="browser"><div id="items"></div><div id="detail"><p class="muted">Click an item: every system's output
side by side, each atomic fact marked supported / unsupported (click a fact for its evidence passages), the judge's
reply and flip-back for win-rate items.</p></div></div></section>
<noscript><p>The per-item view needs JavaScript; the table and figures above do not.</p></noscript>
<script type="application/json" id="flame-data">{{DATA}}</script>
<script>{{JS}}</script>
</body></html>
"""
