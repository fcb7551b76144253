"""Regression gates: a small, deterministic run of the whole pipeline whose key numbers must match committed
goldens (`results/baselines/<gate>.json`) within stated tolerances.

The smoke gate trains `baseline` and `flame` on the smoke world and records what each part of the pipeline
produces: classifier accuracy, rewards of the human responses, pair counts (Table 11), training losses, and the
evaluation metrics. A broken scorer, recipe or pair rule moves one of them. Updating a golden is an explicit
command (`flame-bench gate --update`), never a side effect of a test.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from flame_bench.io import read_json, write_json
from flame_bench.registry import REPO_ROOT

BASELINES_DIR = REPO_ROOT / "results" / "baselines"
# Absolute tolerances. The gate is deterministic on a CPU (fixed seeds, fp32), so they only absorb float noise:
# one flipped fact among the smoke world's 15 bios moves FActScore by ~0.017. Counts and digests are exact.
TOLERANCES = {"count": 0.0, "metric": 1e-4, "loss": 2e-3, "quantity": 1e-3}


def _kind(key: str) -> str:
    if any(w in key for w in ("pairs", "dropped", "examples", "instructions", "digest")):
        return "count"
    if key.endswith(("_length", "per_response")):
        return "quantity"
    return "loss" if "loss" in key else "metric"


def measure_smoke_gate(world, workdir: Path, seed: int = 0) -> dict[str, float | str]:
    """Train and evaluate baseline and flame on `world` (the smoke preset) inside `workdir`."""
    import os

    from flame_bench.alignment import EntityClassifier, Rewards, classifier_accuracy
    from flame_bench.compare import train_and_evaluate
    from flame_bench.evaluate import evaluate

    out: dict[str, float | str] = {}
    acc = classifier_accuracy(world, EntityClassifier(world))
    out["classifier.accuracy.dpo"] = acc["dpo_instructions"]["accuracy"]
    rewards = Rewards(world)
    seed_recs = world.records("seed_instructions")
    out["rm_if.human_mean"] = sum(rewards.rm_if(r, r["response"]) for r in seed_recs) / len(seed_recs)
    facts = [rewards.rm_fact(r, r["response"]) for r in seed_recs if r["fact_based"]]
    out["rm_fact.human_mean"] = sum(f for f in facts if f is not None) / max(1, len(facts))
    cwd = os.getcwd()
    os.chdir(workdir)
    try:
        # the base model against the human responses: exercises the scorer and the judge on a model with knowledge
        for rec in evaluate("base", ["factscore_bio", "alpaca_winrate", "alpaca_fact"], world.path, seed=seed,
                            quiet=True):
            for key, value in rec.metrics.items():
                if value is not None:
                    out[f"base.{rec.task}.{key}"] = value
        results = train_and_evaluate(["baseline", "flame"], world, seed=seed, quiet=True)
    finally:
        os.chdir(cwd)
    for r in results:
        for stage in r.stages:
            for k, v in stage["stats"].items():
                if isinstance(v, (int, float)) and not isinstance(v, bool) and k not in ("train_seconds",):
                    out[f"{r.name}.{stage['recipe']}.{k}"] = float(v)
                elif k == "pairs_digest":
                    out[f"{r.name}.{stage['recipe']}.{k}"] = v
        for task, rec in r.runs.items():
            key = rec.header["primary_metric"]
            out[f"{r.name}.{task}.{key}"] = rec.metrics[key]
    return out


def compare_to_golden(measured: dict[str, float | str], golden: dict[str, float | str]) -> list[str]:
    """Human-readable failures: missing/new keys and values outside tolerance."""
    problems = []
    for key in sorted(golden.keys() | measured.keys()):
        if key not in measured:
            problems.append(f"{key}: in the golden, not measured")
        elif key not in golden:
            problems.append(f"{key}: measured {measured[key]}, not in the golden (update it deliberately)")
        else:
            tol = TOLERANCES[_kind(key)]
            a, b = measured[key], golden[key]
            if isinstance(a, str) or isinstance(b, str):
                if a != b:
                    problems.append(f"{key}: measured {a}, golden {b} (must match exactly)")
            elif (a is None) != (b is None) or (a is not None and not math.isclose(a, b, abs_tol=tol)):
                problems.append(f"{key}: measured {a}, golden {b} (tolerance {tol})")
    return problems


def golden_path(name: str = "smoke_gate") -> Path:
    return BASELINES_DIR / f"{name}.json"


def load_golden(name: str = "smoke_gate") -> dict[str, Any]:
    return read_json(golden_path(name))


def write_golden(measured: dict[str, float | str], name: str = "smoke_gate", note: str = "") -> Path:
    path = golden_path(name)
    write_json(path, {"tolerances": TOLERANCES, "note": note, "values": measured})
    return path
