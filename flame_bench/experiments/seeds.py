"""`flame-bench seeds`: saved comparisons pooled over training seeds: mean ± std per system, deltas over items
(each item's difference averaged over the seeds; the bootstrap resamples items) and every declared breakdown.
Reads comparison files and run records only; nothing is retrained or regenerated."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from flame_bench.core.errors import FlameError
from flame_bench.core.io import read_json
from flame_bench.core.paths import comparisons_dir
from flame_bench.core.records import RunRecord, invalid_value, load_run
from flame_bench.core.registry import TASKS
from flame_bench.core.stats import paired_bootstrap_over_seeds
from flame_bench.core.task_api import Breakdown, Task
from flame_bench.core.ui import console
from flame_bench.reports.comparison import breakdown_views, group_scores, runs_numerics, table_columns


def _item_scores(saved_system: dict[str, Any], task: str, key: str) -> dict[str, Any]:
    return {x["id"]: x.get(key) for x in load_run(saved_system["runs"][task]).samples()}


_SAVED = re.compile(r"^(?P<systems>.+?)__(?P<source>.+)__seed(?P<seed>\d+)(?:__limit(?P<limit>\d+))?\.json$")


def _saved_comparisons() -> list[tuple[Path, list[str], str, int, int | None]]:
    """(file, systems, source, seed, limit) of every saved comparison, from the names `comparison_name` gives."""
    out = []
    for path in sorted(comparisons_dir().glob("*__seed*.json")):
        if m := _SAVED.match(path.name):
            out.append((path, m["systems"].split("_vs_"), m["source"], int(m["seed"]),
                        int(m["limit"]) if m["limit"] else None))
    return out


def _world_flag(source_name: str, saved: list | None = None) -> str:
    """The `--world ...` a suggested `compare` needs to reach `source_name` ("" for the default world and real
    sources, whose systems name their data)."""
    mine = [x for x in (_saved_comparisons() if saved is None else saved) if x[2] == source_name]
    spec = _saved_source(mine[0][0]) if mine else {}
    if spec.get("kind") == "fact-world":
        return f" --world {spec['path']}"
    if spec or source_name == "default-s0":
        return ""
    return f" --world <the folder of world {source_name}>"


def _no_comparison(names: list[str], source_name: str, seed: int) -> FlameError:
    """Why no saved comparison serves `seed`, with what is there instead (systems, sources, seeds, limited runs)."""
    saved = _saved_comparisons()
    held = sorted({n for _, systems, *_ in saved for n in systems})
    unknown = [n for n in names if n not in held]
    if saved and unknown:
        return FlameError(f"no saved comparison holds system {', '.join(map(repr, unknown))} (saved comparisons hold: "
                          f"{', '.join(held)}); check the name")
    mine = [x for x in saved if x[2] == source_name]
    command = f"`flame-bench compare {' '.join(names)} --seed {seed}{_world_flag(source_name, saved)}`"
    if saved and not mine:
        return FlameError(f"no saved comparison on {source_name!r} (saved comparisons are on: "
                          f"{', '.join(sorted({x[2] for x in saved}))}); pass one of them as --world, or run {command}")
    limited = [x[0].name for x in mine if x[3] == seed and x[4] and all(n in x[1] for n in names)]
    if limited:
        return FlameError(f"only a limited comparison of {', '.join(names)} on {source_name} with seed {seed} is "
                          f"saved ({', '.join(limited)}); seeds combines full comparisons: run {command} (no --limit)")
    seeds = sorted({x[3] for x in mine if not x[4] and all(n in x[1] for n in names)})
    there = f" (saved seeds: {', '.join(map(str, seeds))})" if seeds else ""
    return FlameError(f"no saved comparison of {', '.join(names)} on {source_name} with seed {seed}{there}; run "
                      f"{command} first")


def _saved_source(path: Path) -> dict[str, Any]:
    try:
        data = read_json(path)
    except FlameError:
        return {}
    return data["source"] if isinstance(data, dict) and isinstance(data.get("source"), dict) else {}


def _same(a: object, b: object) -> bool:
    return a == b or (invalid_value(a) is not None and invalid_value(a) == invalid_value(b))


def across_seeds(names: list[str], source_name: str, seeds: list[int]) -> dict[str, Any]:
    """Mean and spread over seeds of saved comparisons, plus deltas vs the first system over items, each item's
    difference averaged over the seeds first (`paired_bootstrap_over_seeds`: items are the unit resampled). Reads
    the saved comparisons and the run records only; a comparison whose saved metric is not its run record's (stale
    or edited) is refused, and a non-finite value is left out of mean and std and named."""
    from statistics import mean, stdev

    per_seed: dict[int, dict[str, Any]] = {}
    files: dict[int, Path] = {}
    contents: dict[int, str] = {}  # seed -> the world's content hash its comparison records (newer files carry it)
    for seed in seeds:
        found = sorted(comparisons_dir().glob(f"*__{source_name}__seed{seed}.json"), key=lambda p: p.stat().st_mtime)
        for path in reversed(found):  # the most recent comparison that has every system
            data = read_json(path)
            if not isinstance(data, dict) or "systems" not in data:  # another report (e.g. the pilot study's)
                continue
            listed = data["systems"]
            if not isinstance(listed, list) or not all(isinstance(s, dict) and isinstance(s.get("name"), str)
                                                       and isinstance(s.get("runs"), dict) for s in listed):
                raise FlameError(f"{path}: 'systems' is not a list of systems with their runs (damaged or edited); "
                                 "delete it or re-run the compare that wrote it")
            systems = {s["name"]: s for s in listed}
            if all(n in systems for n in names):
                per_seed[seed], files[seed] = systems, path
                if content := (data.get("source_fingerprint") or {}).get("content_sha256"):
                    contents[seed] = content
                break
        else:
            raise _no_comparison(names, source_name, seed)
    if len(set(contents.values())) > 1:  # e.g. a world rebuilt from another definition of its preset
        seen = ", ".join(f"seed {s}: {c[:8]}" for s, c in sorted(contents.items()))
        raise FlameError(f"the saved comparisons on {source_name} come from different worlds ({seen}); run "
                         f"`flame-bench compare {' '.join(names)} --seed N{_world_flag(source_name)}` again for the "
                         "seeds of the stale world")
    runs0 = per_seed[seeds[0]][names[0]]["runs"]
    cols = table_columns([TASKS.get(t) for t in runs0 if t in TASKS])
    summary: dict[str, Any] = {"source": source_name, "seeds": seeds, "systems": {}, "pooled_deltas": {},
                               "columns": [{"label": c.label, "percent": c.percent} for _, c in cols]}
    records: dict[str, RunRecord] = {}

    def run_of(path: str) -> RunRecord:  # each run record read once
        if path not in records:
            records[path] = load_run(path)
        return records[path]

    left_out: list[str] = []
    for name in names:
        summary["systems"][name] = {}
        for task, col in cols:
            vals = []
            for s in seeds:
                saved = per_seed[s][name]["metrics"].get(col.label)
                if task.name in (runs := per_seed[s][name]["runs"]):
                    rec = run_of(runs[task.name])
                    if not _same(saved, value := rec.metrics.get(col.metric)):
                        raise FlameError(f"{files[s]}: {name} {col.label} is {saved} but its run record {rec.path} "
                                         f"has {value} (a stale or edited comparison); re-run `flame-bench compare "
                                         f"{' '.join(names)} --seed {s}{_world_flag(source_name)}`")
                if bad := invalid_value(saved):
                    left_out.append(f"{name} {col.label} seed {s}: {bad}")
                elif saved is not None:
                    vals.append(saved)
            summary["systems"][name][col.label] = {"mean": mean(vals) if vals else None,
                                                   "std": stdev(vals) if len(vals) > 1 else None, "values": vals}
    if left_out:
        summary["left_out"] = left_out
        console.print(f"[yellow]warning:[/yellow] not a number, left out of mean and std: {'; '.join(left_out)}",
                      highlight=False)
    for name in names[1:]:
        summary["pooled_deltas"][name] = {}
        for task, col in cols:
            if col.item_key is None:
                continue
            a: list[dict[str, float | None]] = []
            b: list[dict[str, float | None]] = []
            for s in seeds:
                base = _item_scores(per_seed[s][names[0]], task.name, col.item_key)
                if col.reference_item_score is not None:
                    base = {k: col.reference_item_score for k in base}
                a.append(base)
                b.append(_item_scores(per_seed[s][name], task.name, col.item_key))
            d = paired_bootstrap_over_seeds(a, b, seed=0)
            summary["pooled_deltas"][name][col.label] = d.__dict__ if d else None
    summary.update(_breakdowns_across_seeds(names, [per_seed[s] for s in seeds], [task for task, _ in cols]))
    summary["numerics"] = runs_numerics(run_of(path) for s in seeds for n in names
                                        for path in per_seed[s][n]["runs"].values())
    return summary


def _breakdowns_across_seeds(names: list[str], per_seed: list[dict[str, Any]],
                             tasks: list[Task]) -> dict[str, dict[str, Any]]:
    """Each declared breakdown over seeds (`comparison.group_scores`); a breakdown without groups is left out."""
    out = {}
    for task, view in breakdown_views(list(dict.fromkeys(tasks))):
        if not all(task.name in systems[n]["runs"] for systems in per_seed for n in names):
            continue
        samples = load_run(per_seed[0][names[0]]["runs"][task.name]).samples()
        groups_of = {x["id"]: x.get(view.item_field) for x in samples}
        if any(g is not None for g in groups_of.values()):
            out[view.key] = group_scores(groups_of, {n: [_item_scores(systems[n], task.name, view.item_key)
                                                         for systems in per_seed] for n in names}, 0, view.order)
    return out


def breakdowns_of(summary: dict[str, Any]) -> list[tuple[Breakdown, dict[str, Any]]]:
    """The declared breakdowns an `across_seeds` summary holds, with their groups."""
    return [(view, summary[view.key]) for _, view in breakdown_views([TASKS.get(n) for n in TASKS.names()])
            if view.key in summary]
