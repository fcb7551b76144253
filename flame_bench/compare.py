"""`flame-bench compare A B [C...]`: train what is missing, evaluate every system on every task against the
same reference (the first system, as the paper compares against SFT + DPO), and render FLAME's Table 3 layout
with paired-bootstrap deltas and the factuality-vs-helpfulness figure (the paper's Figure 1).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from rich.table import Table

from flame_bench.cache import GenerationCache
from flame_bench.errors import FlameError
from flame_bench.evaluate import CACHE_DIR, evaluate
from flame_bench.io import read_json, write_json, write_text
from flame_bench.pipeline import run_stages
from flame_bench.records import RunRecord
from flame_bench.stats import Delta, paired_bootstrap
from flame_bench.ui import console

TASKS = ("alpaca_winrate", "factscore_bio", "alpaca_fact", "truthfulqa_mc1", "truthfulqa_mc2")
COMPARISONS_DIR = Path("results/comparisons")
# (column, task, metric key in run.json, per-item key in samples.jsonl, percent)
COLUMNS = (
    ("Win rate", "alpaca_winrate", "win_rate", "model_score", True),
    ("Bio FS", "factscore_bio", "factscore", "factscore", True),
    ("Bio #Corr", "factscore_bio", "correct_per_response", "n_supported", False),
    ("Bio #Err", "factscore_bio", "erroneous_per_response", None, False),
    ("Alpaca Fact FS", "alpaca_fact", "factscore", "factscore", True),
    ("TQA MC1", "truthfulqa_mc1", "mc1", "score", True),
    ("TQA MC2", "truthfulqa_mc2", "mc2", "score", True),
    ("Length", "alpaca_winrate", "mean_length", None, False),
)


@dataclass
class SystemResult:
    name: str
    description: str
    model_dir: Path
    stages: list[dict[str, Any]]
    runs: dict[str, RunRecord] = field(default_factory=dict)
    _samples: dict[str, list[dict[str, Any]]] = field(default_factory=dict, repr=False)

    def metric(self, task: str, key: str) -> float | None:
        return self.runs[task].metrics.get(key)

    def samples(self, task: str) -> list[dict[str, Any]]:
        """A run's samples, read once (deltas, lengths and the figure all need them)."""
        if task not in self._samples:
            self._samples[task] = self.runs[task].samples()
        return self._samples[task]

    def item_scores(self, task: str, key: str) -> dict[str, float | None]:
        return {s["id"]: s.get(key) for s in self.samples(task)}

    def bio_length(self) -> float:
        outs = [s["output"] for s in self.samples("factscore_bio")]
        return sum(len(o) for o in outs) / max(1, len(outs))


def train_and_evaluate(names: list[str], world, seed: int = 0, limit: int | None = None,
                       quiet: bool = False) -> list[SystemResult]:
    from flame_bench.registry import RECIPES
    from flame_bench.systems import load_system

    specs = [load_system(n, known_recipes=RECIPES.names()) for n in names]  # every file checked before training
    if len({s.name for s in specs}) != len(specs):
        raise FlameError("a system is named twice; name each system once")
    cache = GenerationCache(CACHE_DIR / "generations.sqlite")
    results = []
    for spec in specs:
        model, stages = run_stages(spec.base_model, [(s.recipe, dict(s.config)) for s in spec.stages], world, seed,
                                   cache, quiet, where=str(spec.path))
        results.append(SystemResult(spec.name, spec.description, model, stages))
    cache.close()
    reference = str(results[0].model_dir)
    for r in results:
        records = evaluate(str(r.model_dir), list(TASKS), world.path, reference=reference, limit=limit, seed=seed,
                           quiet=quiet, model_name=r.name, reference_name=results[0].name)
        r.runs = {rec.task: rec for rec in records}
    return results


def deltas(results: list[SystemResult], seed: int = 0) -> dict[str, dict[str, Delta | None]]:
    """Paired deltas of every system against the first, per column that has per-item scores."""
    base = results[0]
    out: dict[str, dict[str, Delta | None]] = {}
    for r in results[1:]:
        out[r.name] = {}
        for col, task, _, item_key, _ in COLUMNS:
            if item_key is None:
                continue
            a = base.item_scores(task, item_key)
            if task == "alpaca_winrate":  # the reference system against itself scores 1/2 on every item
                a = {k: 0.5 for k in a}
            out[r.name][col] = paired_bootstrap(a, r.item_scores(task, item_key), seed)
    return out


def _fmt(v: float | None, percent: bool) -> str:
    return "-" if v is None else (f"{100 * v:.1f}" if percent else f"{v:.2f}")


def _fmt_delta(d: Delta | None, percent: bool) -> str:
    if d is None:
        return ""
    k = 100 if percent else 1
    mark = "*" if d.excludes_zero else ""
    return f"{k * d.value:+.1f} [{k * d.low:+.1f}, {k * d.high:+.1f}]{mark}"


def comparison_table(results: list[SystemResult], dl: dict[str, dict[str, Delta | None]]) -> Table:
    table = Table(title=f"flame-bench compare (reference for win rate: {results[0].name})",
                  caption="Table 3 layout; second line: paired delta vs the first system [95% bootstrap CI], "
                          "* = CI excludes 0. Length = mean Alpaca response characters.")
    table.add_column("system")
    for col, *_ in COLUMNS:
        table.add_column(col, justify="right")
    for r in results:
        cells = []
        for col, task, key, _, pct in COLUMNS:
            value = _fmt(r.metric(task, key), pct)
            d = dl.get(r.name, {}).get(col)
            cells.append(value + (f"\n{_fmt_delta(d, pct)}" if d else ""))
        table.add_row(r.name, *cells)
    return table


def comparison_markdown(results: list[SystemResult], dl: dict[str, dict[str, Delta | None]]) -> str:
    head = "| system | " + " | ".join(c for c, *_ in COLUMNS) + " |"
    lines = [head, "|" + "---|" * (len(COLUMNS) + 1)]
    for r in results:
        cells = []
        for col, task, key, _, pct in COLUMNS:
            d = dl.get(r.name, {}).get(col)
            cells.append(_fmt(r.metric(task, key), pct) + (f" ({_fmt_delta(d, pct)})" if d else ""))
        lines.append(f"| {r.name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def figure(results: list[SystemResult], path: Path) -> None:
    """Factuality (Bio FActScore) vs helpfulness (win rate over the first system), dot size = bio length."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.5), dpi=120)
    for r in results:
        x, y = 100 * (r.metric("alpaca_winrate", "win_rate") or 0), 100 * (r.metric("factscore_bio", "factscore") or 0)
        length = r.bio_length()
        ax.scatter([x], [y], s=max(20.0, length), alpha=0.6)
        ax.annotate(f"{r.name}\nlength {length:.0f}", (x, y), textcoords="offset points", xytext=(6, 6), fontsize=8)
    ax.set_xlabel(f"Helpfulness: win rate over {results[0].name} (%)")
    ax.set_ylabel("Factuality: Bio FActScore (%)")
    ax.set_title("Factuality vs helpfulness (dot size = mean bio length, chars)")
    ax.grid(alpha=0.3)
    ax.margins(0.25)  # room for the labels
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def save_comparison(results: list[SystemResult], dl: dict[str, dict[str, Delta | None]], world,
                    seed: int) -> Path:
    name = "_vs_".join(r.name for r in results) + f"__{world.path.name}__seed{seed}"
    out = COMPARISONS_DIR / name
    write_text(out.with_suffix(".md"), comparison_markdown(results, dl))
    write_json(out.with_suffix(".json"), {
        "systems": [{"name": r.name, "description": r.description, "model_dir": str(r.model_dir),
                     "stages": r.stages, "runs": {t: str(rec.path) for t, rec in r.runs.items()},
                     "metrics": {col: r.metric(task, key) for col, task, key, *_ in COLUMNS},
                     "bio_length": r.bio_length()} for r in results],
        "deltas": {s: {c: (d.__dict__ if d else None) for c, d in cols.items()} for s, cols in dl.items()},
        "world": str(world.path), "seed": seed, "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    })
    figure(results, out.with_suffix(".png"))
    console.print(f"comparison written to {out}.{{md,json,png}}")
    return out


def across_seeds(names: list[str], world_name: str, seeds: list[int]) -> dict[str, Any]:
    """Mean and spread over seeds of saved comparisons, plus deltas vs the first system pooled over every
    (seed, item) pair with one paired bootstrap. Reads `results/comparisons/` and the run records only."""
    from statistics import mean, stdev

    from flame_bench.records import load_run

    per_seed: dict[int, dict[str, Any]] = {}
    for seed in seeds:
        found = sorted(COMPARISONS_DIR.glob(f"*__{world_name}__seed{seed}.json"), key=lambda p: p.stat().st_mtime)
        for path in reversed(found):  # the most recent comparison that has every system
            systems = {s["name"]: s for s in read_json(path)["systems"]}
            if all(n in systems for n in names):
                per_seed[seed] = systems
                break
        else:
            raise FlameError(f"no saved comparison of {', '.join(names)} on {world_name} with seed {seed}; run "
                             f"`flame-bench compare {' '.join(names)} --seed {seed}` first")
    summary: dict[str, Any] = {"world": world_name, "seeds": seeds, "systems": {}, "pooled_deltas": {}}
    for name in names:
        summary["systems"][name] = {}
        for col, *_ in COLUMNS:
            vals = [per_seed[s][name]["metrics"][col] for s in seeds]
            vals = [v for v in vals if v is not None]
            summary["systems"][name][col] = {"mean": mean(vals) if vals else None,
                                             "std": stdev(vals) if len(vals) > 1 else None, "values": vals}
    for name in names[1:]:
        summary["pooled_deltas"][name] = {}
        for col, task, _, item_key, _ in COLUMNS:
            if item_key is None:
                continue
            a: dict[str, float | None] = {}
            b: dict[str, float | None] = {}
            for s in seeds:
                base_items = {x["id"]: x.get(item_key) for x in load_run(per_seed[s][names[0]]["runs"][task]).samples()}
                if task == "alpaca_winrate":
                    base_items = {k: 0.5 for k in base_items}
                other = {x["id"]: x.get(item_key) for x in load_run(per_seed[s][name]["runs"][task]).samples()}
                a.update({f"{s}:{k}": v for k, v in base_items.items()})
                b.update({f"{s}:{k}": v for k, v in other.items()})
            d = paired_bootstrap(a, b, seed=0)
            summary["pooled_deltas"][name][col] = d.__dict__ if d else None
    return summary
