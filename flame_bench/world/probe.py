"""`flame-bench world probe`: does the base model know what the world says it knows?

Generates "Tell me a bio of X" answers for sampled evaluation people of each tier, parses them with the
world's grammar and reports attribute precision (correct claims / all claims; a sentence that parses to no
fact is one wrong claim) and recall (attributes stated correctly / all attributes), plus how often the model
prefers a planted misconception over the truth.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from flame_bench.engines.generation import GenerationConfig, continuation_logprobs, generate
from flame_bench.engines.models import load_model
from flame_bench.world import grammar as g
from flame_bench.world.presets import POPULARITY_BINS, TIERS, popularity_bin
from flame_bench.world.store import WorldDir

PROBE_PROMPT = "Question: {instruction} Answer:"  # the Q&A form of the pretraining corpus
PROBE_PROMPT_VERSION = "probe-qa-v1"


def score_bio(world: WorldDir, person: dict[str, Any], text: str) -> dict[str, Any]:
    """Claims in a generated bio, checked against the person's true attributes."""
    correct = wrong = 0
    right_attrs: set[str] = set()
    for sent in world.grammar.parse(text):
        if sent.abstains:
            continue
        if not sent.facts:
            wrong += 1  # unparsable sentence: one unsupported claim
            continue
        for fact in sent.facts:
            f = fact.resolve(person["name"])
            if f.subject == person["name"] and person["attributes"].get(f.attribute) == f.value:
                correct += 1
                right_attrs.add(f.attribute)
            else:
                wrong += 1
    claims = correct + wrong
    return {"claims": claims, "correct": correct, "precision": correct / claims if claims else None,
            "recall": len(right_attrs) / len(g.ATTRIBUTES)}


def chance_precision(world: WorldDir) -> float:
    """Precision of guessing each attribute from its distribution among pretraining people."""
    seen = [p for p in world.people if p["tier"] != "unseen"]
    total = 0.0
    for attr in g.ATTRIBUTES:
        counts = Counter(p["attributes"][attr] for p in seen)
        total += sum((c / len(seen)) ** 2 for c in counts.values())
    return total / len(g.ATTRIBUTES)


def probe(world: WorldDir, model_path: str | Path | None = None, per_tier: int | None = None,
          seed: int = 0, quiet: bool = True) -> dict[str, Any]:
    model, tok = load_model(model_path or world.model_dir)
    per_tier = per_tier or int(world.manifest["preset"]["probe_people_per_tier"])
    rng = random.Random(seed)
    people = []
    for tier in TIERS:
        pool = [p for p in world.people if p["split"] == "eval_bio" and p["tier"] == tier]
        people += rng.sample(pool, min(per_tier, len(pool)))
    prompts = [PROBE_PROMPT.format(instruction=g.BIO_INSTRUCTION.format(S=p["name"])) for p in people]
    outputs = [o[0] for o in generate(model, tok, prompts, GenerationConfig(max_new_tokens=96), quiet=quiet,
                                      description="probing bios")]
    by_tier: dict[str, list[dict[str, Any]]] = defaultdict(list)
    by_bin: dict[str, list[dict[str, Any]]] = defaultdict(list)
    samples = []
    for p, text in zip(people, outputs, strict=True):
        s = score_bio(world, p, text)
        by_tier[p["tier"]].append(s)
        if "exposure" in p:  # a long-tail world: also by popularity bin
            by_bin[popularity_bin(p["exposure"])].append(s)
        samples.append({"name": p["name"], "tier": p["tier"], "output": text, **s,
                        **({"exposure": p["exposure"]} if "exposure" in p else {})})
    rows = {tier: _row(by_tier.get(tier, [])) for tier in TIERS}
    bins = {label: _row(by_bin[label]) for label, _, _ in POPULARITY_BINS if label in by_bin}

    items = world.records("eval_truthfulqa")
    pairs = []
    for it in items:
        ctx = PROBE_PROMPT.format(instruction=it["question"])
        pairs += [(ctx, choice) for choice in it["mc1_targets"]["choices"]]
    lls = continuation_logprobs(model, tok, pairs)
    misc: dict[str, list[tuple[bool, bool]]] = defaultdict(list)
    k = 0
    for it in items:
        n = len(it["mc1_targets"]["choices"])
        ll = lls[k:k + n]
        k += n
        misc[it["tier"]].append((ll[1] > ll[0], max(range(n), key=lambda i: ll[i]) == 0))
    misconceptions = {tier: {"items": len(v), "prefers_misconception": sum(a for a, _ in v) / len(v),
                             "mc1": sum(b for _, b in v) / len(v)} for tier, v in misc.items()}
    return {"model": str(model_path or world.model_dir), "prompt_version": PROBE_PROMPT_VERSION, "seed": seed,
            "chance_precision": chance_precision(world), "tiers": rows, "misconceptions": misconceptions,
            **({"bins": bins} if bins else {}), "samples": samples}


def _row(scores: list[dict[str, Any]]) -> dict[str, Any]:
    precs = [s["precision"] for s in scores if s["precision"] is not None]
    return {
        "people": len(scores),
        "precision": sum(precs) / len(precs) if precs else None,
        "micro_precision": (sum(s["correct"] for s in scores) / max(1, sum(s["claims"] for s in scores))),
        "recall": sum(s["recall"] for s in scores) / len(scores) if scores else None,
        "claims_per_bio": sum(s["claims"] for s in scores) / len(scores) if scores else None,
    }


def probe_table(result: dict[str, Any]):
    """The probe as a rich table: per tier precision, recall, claims per bio, misconception preference."""
    from rich.table import Table

    def pct(x: float | None) -> str:
        return "-" if x is None else f"{100 * x:.1f}"

    table = Table(title=f"Knowledge probe: {result['model']}", caption=(
        f"precision = correct claims / claims per bio (mean over bios); chance = {pct(result['chance_precision'])}"
    ))
    for col in ("tier", "people", "precision %", "micro precision %", "recall %", "claims/bio",
                "prefers misconception %", "TQA MC1 %"):
        table.add_column(col, justify="right" if col != "tier" else "left")
    for tier, row in [*result["tiers"].items(), *result.get("bins", {}).items()]:
        m = result["misconceptions"].get(tier)
        table.add_row(tier, str(row["people"]), pct(row["precision"]), pct(row["micro_precision"]),
                      pct(row["recall"]), f"{row['claims_per_bio']:.1f}" if row["claims_per_bio"] is not None else "-",
                      pct(m["prefers_misconception"]) if m else "-", pct(m["mc1"]) if m else "-")
    return table
