"""The paper's pilot study (FLAME §3, Table 1) on a fact world: six rows, paired deltas, the paper's directions.

Rows 3-6 are systems (`alignments/systems/pilot_*.yaml`, recipes in `alignments/recipes/pilot.py`) trained and
evaluated on `factscore_bio` by compare's machinery; row 1 is the base model evaluated by the same task (its
plain-text Q&A prompt); row 2 is the base model, greedy, after the top passages of each person's page (the prompt of
the world's reading documents), scored by the same FActScore. Every row answers the same evaluation people, so
rows are compared item by item (paired bootstrap over people).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from rich.table import Table

from flame_bench.core.stats import Delta, paired_bootstrap_over_seeds

BIO_TASK = "factscore_bio"


@dataclass(frozen=True)
class Row:
    key: str
    model: str
    positives: str
    negatives: str
    system: str | None  # None: the base model, evaluated here
    paper: tuple[float, float, float]  # Table 1: FS, #Corr, #Err (Llama-2 7B)


ROWS = (
    Row("(1)", "PT", "-", "-", None, (39.1, 14.4, 22.0)),
    Row("(2)", "PT_RAG", "-", "-", None, (55.4, 18.6, 15.9)),
    Row("(3)", "SFT", "PT", "-", "pilot_sft_pt", (37.9, 13.4, 21.8)),
    Row("(4)", "SFT", "PT_RAG", "-", "pilot_sft_rag", (35.7, 13.5, 23.7)),
    Row("(5)", "DPO", "PT*", "PT*", "pilot_dpo_fs", (41.6, 15.4, 20.7)),
    Row("(6)", "DPO", "PT_RAG", "PT", "pilot_dpo_rag", (23.5, 12.7, 34.9)),
)
# (finding, row, against row, the paper's sign of row minus against)
FINDINGS = (
    ("RAG is more factual", "(2)", "(1)", +1),
    ("SFT on RAG bios is less factual than SFT on PT bios", "(4)", "(3)", -1),
    ("DPO on FActScore-selected pairs helps", "(5)", "(3)", +1),
    ("DPO with RAG positives against PT negatives hurts", "(6)", "(4)", -1),
)


def _summary(metrics: dict[str, Any], breakdown: dict[str, Any]) -> dict[str, Any]:
    """A row from `factscore_bio`'s own aggregates (`flame_bench.scoring.factscore.aggregate`)."""
    from flame_bench.scoring.factscore import popularity_order

    bins = {k: 100 * v["factscore"] for k, v in breakdown.items()
            if k.endswith(" docs") and v.get("factscore") is not None}
    fs = metrics.get("factscore")  # None when every answer abstained: shown as "-", never as 0
    return {"factscore": 100 * fs if fs is not None else None, "correct": metrics.get("correct_per_response"),
            "erroneous": metrics.get("erroneous_per_response"), "respond_ratio": metrics.get("respond_ratio"),
            "by_popularity_bin": dict(sorted(bins.items(), key=lambda kv: popularity_order(kv[0])))}


def pt_rag_result(source, seed: int, quiet: bool):
    """Row 2: the base model's greedy bios of the evaluation people after retrieved passages, FActScore-scored as
    `factscore_bio` scores (same scorer, same k, same aggregates); each sample keeps its prompt."""
    from flame_bench.core.evaluate import EVAL_GENERATION
    from flame_bench.core.paths import generation_cache_path
    from flame_bench.engines.generation import Generator
    from flame_bench.engines.generation_cache import GenerationCache
    from flame_bench.engines.models import resolve_model
    from flame_bench.scoring.factscore import FACTSCORE_K, score_outputs

    items = source.eval_set("bio").items
    prompts = source.bio_rag_prompts([it["topics"][0] for it in items])
    cache = GenerationCache(generation_cache_path())
    try:
        gen = Generator(resolve_model(str(source.base_model()), source), EVAL_GENERATION, cache, quiet)
        outputs = [o[0].strip() for o in gen.complete(prompts, add_special_tokens=True)]
    finally:
        cache.close()
    result = score_outputs(items, outputs, source.factscorer(FACTSCORE_K), seed)
    result.samples = [{**s, "prompt": p} for s, p in zip(result.samples, prompts, strict=True)]
    return result


def run_pilot(world_source, seed: int = 0, quiet: bool = False) -> dict[str, Any] | None:
    """Train rows 3-6, evaluate all six rows on the world's evaluation bios, and compare them pairwise (None on the
    other ranks under `accelerate launch`: the main process evaluates and reports)."""
    from flame_bench.alignment import distributed
    from flame_bench.core.evaluate import evaluate
    from flame_bench.experiments.compare import train_and_evaluate

    world_source.reading_training_people()  # a world without reading documents is refused before anything trains
    systems = [r.system for r in ROWS if r.system]
    results, source = train_and_evaluate(systems, world_source, seed=seed, quiet=quiet, task_names=[BIO_TASK])
    if not distributed.is_main():
        return None
    base = evaluate(str(source.base_model()), [BIO_TASK], source, seed=seed, quiet=quiet, model_name="pt",
                    reference_name="pt")[0]
    rag = pt_rag_result(source, seed, quiet)
    rows = {"(1)": (base.samples(), base.metrics, base.header.get("breakdown") or {}),
            "(2)": (rag.samples, rag.metrics, rag.breakdown)}
    runs, models = {"(1)": str(base.path)}, {"(1)": str(source.base_model()), "(2)": str(source.base_model())}
    stages: dict[str, Any] = {}
    for row in ROWS[2:]:
        r = next(x for x in results if x.name == row.system)
        rec = r.runs[BIO_TASK]
        rows[row.key] = (r.samples(BIO_TASK), rec.metrics, rec.header.get("breakdown") or {})
        runs[row.key], stages[row.key], models[row.key] = str(rec.path), r.stages, str(r.model_dir)
    fs = {k: {s["id"]: (100 * s["factscore"] if s.get("factscore") is not None else None) for s in samples}
          for k, (samples, _, _) in rows.items()}
    return {"rows": [{"row": r.key, "model": r.model, "positives": r.positives, "negatives": r.negatives,
                      "system": r.system, "items": len(rows[r.key][0]),
                      "paper": dict(zip(("factscore", "correct", "erroneous"), r.paper, strict=True)),
                      **_summary(rows[r.key][1], rows[r.key][2])} for r in ROWS],
            "findings": findings([fs], seed), "runs": runs, "models": models, "stages": stages, "source": source.spec,
            "seed": seed, "item_factscore": fs, "pt_rag_samples": rows["(2)"][0],
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def pooled(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """Several seeds' reports as one: each row's mean and std over seeds, and each finding's paired delta over
    people, each person's FActScore averaged over the seeds first (a bootstrap over people, not over (seed, person)
    pairs)."""
    from statistics import mean, stdev

    def over_seeds(values: list[float | None]) -> float | None:
        known = [v for v in values if v is not None]
        return mean(known) if known else None

    rows = []
    for i, row in enumerate(reports[0]["rows"]):
        per_seed = [r["rows"][i] for r in reports]
        scored = [x["factscore"] for x in per_seed if x["factscore"] is not None]
        rows.append({**{k: row[k] for k in ("row", "model", "positives", "negatives", "system", "paper")},
                     **{k: over_seeds([x[k] for x in per_seed]) for k in ("factscore", "correct", "erroneous",
                                                                           "respond_ratio")},
                     "factscore_std": stdev(scored) if len(scored) > 1 else None, "items": row["items"]})
    return {"rows": rows, "findings": findings([r["item_factscore"] for r in reports], reports[0]["seed"]),
            "seeds": [r["seed"] for r in reports],
            "source": reports[0]["source"], "per_seed": [{f["row"]: f["delta"] for f in r["findings"]}
                                                         for r in reports]}


def findings(per_seed_fs: list[dict[str, dict[str, float | None]]], seed: int) -> list[dict[str, Any]]:
    """The paper's four directions, each a paired delta over people (row -> person -> FS, one mapping per seed). People
    are the unit resampled, each averaged over the seeds: a greedy row (PT, PT_RAG) is the same in every seed, and
    counting its people once per seed would narrow the interval without new evidence."""
    from dataclasses import asdict

    out = []
    for text, row, against, sign in FINDINGS:
        d = paired_bootstrap_over_seeds([fs[against] for fs in per_seed_fs], [fs[row] for fs in per_seed_fs], seed)
        out.append({"finding": text, "row": row, "against": against, "paper_sign": sign,
                    "delta": asdict(d) if d else None, "verdict": verdict(d, sign)})
    return out


def verdict(d: Delta | None, sign: int) -> str:
    """Whether a measured delta goes the paper's way; `*`: its 95% CI excludes 0."""
    if d is None:
        return "no paired items"
    if d.value == 0 and not d.excludes_zero:
        return "no difference"
    same = d.value * sign > 0
    if d.excludes_zero:
        return "agrees*" if same else "opposite*"
    return "same sign, CI spans 0" if same else "opposite sign, CI spans 0"


def pilot_tables(report: dict[str, Any]) -> tuple[Table, Table]:
    seeds = report.get("seeds")
    over = f", mean over seeds {', '.join(map(str, seeds))}" if seeds else ""
    rows = Table(title=f"Pilot study on bios (the paper's Table 1 layout{over}); paper: Llama-2 7B")
    for col in ("row", "model", "Pos.", "Neg.", "FS", "#Corr / #Err", "respond", "paper FS", "paper #Corr / #Err"):
        rows.add_column(col, justify="right" if col not in ("model", "Pos.", "Neg.") else "left")
    for r in report["rows"]:
        fs = _fmt(r["factscore"], ".1f") + (f" ± {r['factscore_std']:.1f}" if r.get("factscore_std") is not None
                                             else "")
        rows.add_row(r["row"], r["model"], r["positives"], r["negatives"], fs,
                     f"{_fmt(r['correct'], '.2f')} / {_fmt(r['erroneous'], '.2f')}",
                     _fmt(100 * r["respond_ratio"] if r["respond_ratio"] is not None else None, ".0f") + "%",
                     f"{r['paper']['factscore']:.1f}", f"{r['paper']['correct']:.1f} / {r['paper']['erroneous']:.1f}")
    pairs = "people, each averaged over seeds" if seeds else "evaluation people"
    checks = Table(title=f"The paper's findings, re-checked (paired FS delta over {pairs}, 95% bootstrap CI)",
                   caption="paired over the people both rows answered (an abstention has no FActScore), so a delta "
                           "can differ from the difference of the table's FS")
    for col in ("finding", "rows", "delta FS", "paper", "here"):
        checks.add_column(col)
    for f in report["findings"]:
        d = f["delta"]
        checks.add_row(f["finding"], f"{f['row']} - {f['against']}",
                       f"{d['value']:+.1f} [{d['low']:+.1f}, {d['high']:+.1f}]" if d else "-",
                       "up" if f["paper_sign"] > 0 else "down", f["verdict"])
    return rows, checks


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def pilot_path(source_name: str, seeds: list[int]) -> Path:
    from flame_bench.core.paths import comparisons_dir

    return comparisons_dir() / f"pilot__{source_name}__seed{'-'.join(map(str, seeds))}.json"
