"""The factuality-vs-helpfulness figure (the paper's Figure 1): its points and honest axes, shared by the PNG
beside a comparison and the HTML page's inline SVG."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from flame_bench.core.io import atomic_path
from flame_bench.core.records import RunRecord
from flame_bench.reports.comparison import SystemResult, columns_of

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf")  # matplotlib's tab10: the PNG figure's colours, in the same order
MIN_PAD = 5.0  # points of padding around the data (and whiskers) on the plot's axes


# -- the figure's points (shared with the HTML page) ------------------------------------------------------------------
@dataclass
class Point:
    name: str
    x: float  # percent
    y: float
    x_ci: tuple[float, float] | None  # 95% CI from the run header, percent
    y_ci: tuple[float, float] | None
    length: float  # mean characters of the factuality task's outputs


def _ci(record: RunRecord | None, metric: str) -> tuple[float, float] | None:
    ci = (record.header.get("confidence_intervals") or {}).get(metric) if record else None
    return (100 * ci[0], 100 * ci[1]) if ci and None not in ci[:2] else None


def figure_points(results: list[SystemResult]) -> tuple[str, str, list[Point]] | None:
    """(x label, y label, points) of the factuality-vs-helpfulness figure, or None without those columns."""
    cols = {c.role: (t, c) for t, c in columns_of(results) if c.role}
    if "helpfulness" not in cols or "factuality" not in cols:
        return None
    (xt, xc), (yt, yc) = cols["helpfulness"], cols["factuality"]
    points = []
    for r in results:
        if xt.name not in r.runs or yt.name not in r.runs:
            continue
        x, y = r.metric(xt.name, xc.metric), r.metric(yt.name, yc.metric)
        if x is None or y is None:
            continue
        points.append(Point(r.name, 100 * x, 100 * y, _ci(r.runs[xt.name], xc.metric), _ci(r.runs[yt.name], yc.metric),
                            r.output_length(yt.name)))
    if not points:
        return None
    first = next(r for r in results if xt.name in r.runs)
    reference = (first.runs[xt.name].header.get("judge") or {}).get("reference") or results[0].name
    return (f"Helpfulness: {xc.label.lower()} over {reference} (%)", f"Factuality: {yc.label} (%)", points)


def axis_limits(values: list[float], pad: float = MIN_PAD) -> tuple[float, float]:
    """Honest axes: every value (points and whisker ends) inside, padded by at least `pad` points; clipped near
    [0, 100] where the data stay inside it (a little room beyond, so a point at 0 or 100 stays visible)."""
    lo, hi = min(values), max(values)
    pad = max(pad, 0.1 * (hi - lo))
    edge = 0.25 * pad
    low, high = lo - pad, hi + pad
    return (max(-edge, low) if lo >= 0 else low), (min(100 + edge, high) if hi <= 100 else high)


def point_extents(points: list[Point]) -> tuple[list[float], list[float]]:
    xs = [v for p in points for v in (p.x, *(p.x_ci or ()))]
    ys = [v for p in points for v in (p.y, *(p.y_ci or ()))]
    return xs, ys



def figure(results: list[SystemResult], path: Path) -> bool:
    """Factuality vs helpfulness (the columns with those roles), dot size = mean length of the factuality task's
    outputs, whiskers = the 95% CIs of the run records. False when the comparison has no such columns."""
    cols = {c.role: (t, c) for t, c in columns_of(results) if c.role}
    if "helpfulness" not in cols or "factuality" not in cols:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    found = figure_points(results)
    if found is None:
        return False
    xlabel, ylabel, points = found
    fig, ax = plt.subplots(figsize=(6, 4.5), dpi=120)
    for i, p in enumerate(points):
        color = PALETTE[[r.name for r in results].index(p.name) % len(PALETTE)]
        xerr = [[p.x - p.x_ci[0]], [p.x_ci[1] - p.x]] if p.x_ci else None
        yerr = [[p.y - p.y_ci[0]], [p.y_ci[1] - p.y]] if p.y_ci else None
        ax.errorbar([p.x], [p.y], xerr=xerr, yerr=yerr, fmt="none", ecolor=color, capsize=3, lw=1.2, zorder=i)
        ax.scatter([p.x], [p.y], s=max(20.0, p.length), alpha=0.6, color=color, zorder=i + 0.5)
        ax.annotate(f"{p.name}\nlength {p.length:.0f}", (p.x, p.y), textcoords="offset points", xytext=(6, 6),
                    fontsize=8)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title("Factuality vs helpfulness (dot size = mean length, chars; 95% CIs)", fontsize=10)
    ax.grid(alpha=0.3)
    xs, ys = point_extents(points)
    ax.set_xlim(*axis_limits(xs))  # every whisker inside, at least +-5 points around the data: never a zoom
    ax.set_ylim(*axis_limits(ys))
    fig.tight_layout()
    with atomic_path(path) as tmp:  # two comparisons finishing together never leave a torn image
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return True
