"""Regression gates: a small, deterministic run of the whole pipeline whose key numbers must match committed
goldens (`results/baselines/<gate>.json`) within stated tolerances.

The smoke gate trains `baseline` and `flame` on the smoke world and records what each part of the pipeline
produces: classifier accuracy, rewards of the human responses, pair counts (Table 11), training losses, and the
evaluation metrics. A broken scorer, recipe or pair rule moves one of them. Updating a golden is an explicit
command (`flame-bench gate --update --note WHY`), never a side effect of a test.

Determinism is per platform. Float kernels differ between CPUs (AVX-512 and AVX2 code paths round fp32 sums
differently), and a sampled token flips when two probabilities straddle the draw. In the default numerics mode
(`flame_bench.core.numerics`: ATen and MKL pinned to AVX2) every x86-64 CPU is one platform, so the whole golden,
base-model weight digest and pair digests included, is enforced on any of them within `TOLERANCES`. Where bitwise
equality cannot be had (`FLAME_BENCH_NUMERICS=native`, another architecture, a GPU) the programs' values are still
exact (classifier accuracy, RM_IF and RM_fact of the human responses), digests are not compared, and every other
value must lie within its cross-platform tolerance: `SPREAD_SIGMAS` standard deviations of that value over seeds,
measured when the golden was written (`gate --update --seeds N`): the trained systems' values over training seeds
on the seed-0 smoke world, the base model's over world seeds (its pretraining is what another platform changes).
Other kernels perturb a run no more than another seed does; a broken recipe, scorer or pair rule moves it further.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from flame_bench.core import numerics, shipped
from flame_bench.core.io import read_json, sha256_file, write_json
from flame_bench.world.store import MODEL_DIR

BASELINES_DIR = shipped.baselines_dir()
# Absolute tolerances. The gate is deterministic on a CPU (fixed seeds, fp32), so they only absorb float noise:
# one flipped fact among the smoke world's 15 bios moves FActScore by ~0.017. Counts and digests are exact.
TOLERANCES = {"count": 0.0, "metric": 1e-4, "loss": 2e-3, "quantity": 1e-3}
PROGRAM_PREFIXES = ("classifier.", "rm_if.", "rm_fact.")  # pure programs: exact everywhere
SPREAD_SIGMAS = 3.0  # cross-platform tolerance in standard deviations over seeds (fixed before any was measured)
DEFAULT_SPREAD_SEEDS = 5


def platform_fingerprint() -> str:
    """Which machines give bit-identical numbers: in the reproducible numerics mode every x86-64 CPU is one
    platform ("x86_64/reproducible(...)"); otherwise the CPU vendor and the kernels torch picks on it
    (e.g. "x86_64/GenuineIntel/AVX512/native")."""
    import platform

    import torch

    mode = numerics.mode()
    if mode != "native" and platform.machine() == "x86_64" and not torch.cuda.is_available():
        return f"x86_64/{mode}"

    try:
        cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8")
    except OSError:
        cpuinfo = ""
    vendor = next((line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("vendor_id")),
                  "")
    device = "cuda" if torch.cuda.is_available() else torch.backends.cpu.get_cpu_capability()
    return "/".join(x for x in (platform.machine(), vendor, device, mode) if x)


def _kind(key: str) -> str:
    if any(w in key for w in ("pairs", "dropped", "examples", "instructions", "digest")):
        return "count"
    if key.endswith(("_length", "per_response")):
        return "quantity"
    return "loss" if "loss" in key else "metric"


def measure_smoke_gate(world, workdir: Path, seed: int = 0, base: bool = True, trained: bool = True
                       ) -> dict[str, float | str]:
    """Train and evaluate baseline and flame on `world` (the smoke preset), with every result under `workdir`
    (`base` / `trained` False: leave out the base model's values / the trained systems')."""
    from flame_bench.core.evaluate import evaluate
    from flame_bench.core.paths import results_dir_set
    from flame_bench.experiments.compare import train_and_evaluate
    from flame_bench.world.source import WorldSource, classifier_accuracy

    source = WorldSource(world)
    out: dict[str, float | str] = {}
    # the pretrained weights themselves: equal bit for bit wherever the numerics mode is the same
    out["base.weights_digest"] = sha256_file(world.path / MODEL_DIR / "model.safetensors")
    acc = classifier_accuracy(world, source.fact_classifier)
    out["classifier.accuracy.dpo"] = acc["dpo_instructions"]["accuracy"]
    seed_recs = [r for r in source.sft_examples()]
    if_scores = source.rm_if().score_many(seed_recs, [r["response"] for r in seed_recs])
    out["rm_if.human_mean"] = sum(if_scores) / len(seed_recs)  # type: ignore[arg-type]
    fact_recs = [r for r in seed_recs if r["fact_based"]]
    facts = source.rm_fact.score_many(fact_recs, [r["response"] for r in fact_recs])
    out["rm_fact.human_mean"] = sum(f for f in facts if f is not None) / max(1, len(facts))
    with results_dir_set(workdir / "results"):
        # the base model against the human responses: exercises the scorer and the judge on a model with knowledge
        for rec in evaluate("base", ["factscore_bio", "alpaca_winrate", "alpaca_fact"], source, seed=seed,
                            quiet=True) if base else []:
            for key, value in rec.metrics.items():
                if value is not None:
                    out[f"base.{rec.task}.{key}"] = value
        if not trained:
            return out
        results, _ = train_and_evaluate(["baseline", "flame"], source, seed=seed, quiet=True)
    from flame_bench.scoring.factscore import WORK_COUNTERS

    rm_fact_work = tuple(f"rm_fact_{k}" for k in WORK_COUNTERS)  # a DPO stage's record of RM_fact's counters
    for r in results:
        for stage in r.stages:
            for k, v in stage["stats"].items():
                if k.startswith(rm_fact_work):  # what RM_fact's scoring took (the cost model's input): what it
                    continue                     # produced, the pairs, is gated by their digest
                if isinstance(v, (int, float)) and not isinstance(v, bool) and k not in ("train_seconds",):
                    out[f"{r.name}.{stage['recipe']}.{k}"] = float(v)
                elif k == "pairs_digest":
                    out[f"{r.name}.{stage['recipe']}.{k}"] = v
        for task, rec in r.runs.items():
            key = rec.header["primary_metric"]
            out[f"{r.name}.{task}.{key}"] = rec.metrics[key]
    return out


def compare_to_golden(measured: dict[str, float | str], golden: dict[str, float | str],
                      same_platform: bool = True, cross_tolerances: dict[str, float] | None = None) -> list[str]:
    """Human-readable failures: missing/new keys and values outside tolerance. On another platform
    `cross_tolerances` (the golden's seed-spread tolerances) bound every non-program value; without them only the
    programs' values are enforced (a golden written before tolerances were measured)."""
    problems = []
    for key in sorted(golden.keys() | measured.keys()):
        program = key.startswith(PROGRAM_PREFIXES)
        if not same_platform and ("digest" in key or (not program and cross_tolerances is None)):
            continue  # weights and pair sets are bitwise only within one platform
        if key not in measured:
            problems.append(f"{key}: in the golden, not measured")
        elif key not in golden:
            problems.append(f"{key}: measured {measured[key]}, not in the golden (update it deliberately)")
        else:
            tol = (0.0 if program else TOLERANCES[_kind(key)] if same_platform
                   else (cross_tolerances or {}).get(key, TOLERANCES[_kind(key)]))
            a, b = measured[key], golden[key]
            if isinstance(a, str) or isinstance(b, str):
                if a != b:
                    problems.append(f"{key}: measured {a}, golden {b} (must match exactly)")
            elif (a is None) != (b is None) or (a is not None and not math.isclose(
                    a, b, abs_tol=tol, rel_tol=0.0 if program else 1e-9)):
                problems.append(f"{key}: measured {a}, golden {b} (tolerance {tol:.4g})")
    return problems


def measure_spread(golden_values: dict[str, float | str], world0, workdir: Path, seeds: int,
                   on_seed: Any = None) -> dict[str, Any]:
    """Each numeric value's standard deviation over `seeds` runs (seed 0 is `golden_values`) and the cross-platform
    tolerance it gives: max(the same-platform tolerance, SPREAD_SIGMAS x std). Trained systems' values vary the
    training seed on the seed-0 smoke world; the base model's vary the world seed."""
    import statistics

    from flame_bench.world.build import build_world
    from flame_bench.world.presets import get_preset
    from flame_bench.world.store import WorldDir

    runs = [golden_values]
    for seed in range(1, seeds):
        if on_seed:
            on_seed(seed)
        build_world(get_preset("smoke"), seed, workdir / f"world-s{seed}", quiet=True)
        values = measure_smoke_gate(WorldDir.open(workdir / f"world-s{seed}"), workdir / f"base-s{seed}",
                                    seed=seed, trained=False)
        values.update(measure_smoke_gate(world0, workdir / f"trained-s{seed}", seed=seed, base=False))
        runs.append(values)
    std: dict[str, float] = {}
    for key, value in golden_values.items():
        if isinstance(value, str) or key.startswith(PROGRAM_PREFIXES):
            continue
        seen = [r[key] for r in runs if isinstance(r.get(key), (int, float))]
        std[key] = statistics.stdev(seen) if len(seen) > 1 else 0.0
    return {"seeds": seeds, "sigmas": SPREAD_SIGMAS, "std": std,
            "tolerances": {k: max(TOLERANCES[_kind(k)], SPREAD_SIGMAS * v) for k, v in std.items()}}


def golden_path(name: str = "smoke_gate") -> Path:
    return BASELINES_DIR / f"{name}.json"


def load_golden(name: str = "smoke_gate") -> dict[str, Any]:
    return read_json(golden_path(name))


def write_golden(measured: dict[str, float | str], name: str = "smoke_gate", note: str = "",
                 spread: dict[str, Any] | None = None) -> Path:
    path = golden_path(name)
    write_json(path, {"tolerances": TOLERANCES, "note": note, "platform": platform_fingerprint(),
                      "values": measured, **({"cross_platform": spread} if spread else {})})
    return path


def check_golden(measured: dict[str, float | str], name: str = "smoke_gate") -> tuple[list[str], str]:
    """(problems, a line saying how strictly it was checked)."""
    golden = load_golden(name)
    here, there = platform_fingerprint(), golden.get("platform", "unknown")
    same = here == there
    spread = golden.get("cross_platform")
    if same:
        how = f"every value checked (golden measured on this platform, {here})"
    elif spread:
        how = (f"golden measured on {there}, this is {here}: programs exactly, digests not compared, every other "
               f"value within {spread['sigmas']:g} standard deviations over {spread['seeds']} seeds")
    else:
        how = (f"golden measured on {there}, this is {here}, and it holds no seed spread: only the programs' values "
               "are enforced; rewrite it with `flame-bench gate --update --seeds 5 --note ...`")
    return compare_to_golden(measured, golden["values"], same_platform=same,
                             cross_tolerances=spread["tolerances"] if spread else None), how
