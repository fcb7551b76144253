"""`flame-bench world mechanisms`: five LLM behaviours FLAME's argument rests on, each probed on a fact world
independently of FLAME, with the literature's direction beside the world's effect.

- knowledge_by_popularity (control; Mallen et al. 2023, Kandpal et al. 2023, FActScore's rarity bins): the base
  model's greedy bios of evaluation people, FActScore of the most exposed bin minus the unexposed one.
- reading (FLAME Table 1 rows 2 vs 1; FActScore's retrieval-augmented LMs): the base model after the top passages
  of the person's page (PT_RAG) minus the base model alone (PT), paired over people.
- unknown_knowledge_sft (Gekhman et al. 2024): SFT on ground-truth bios of unknown people minus SFT on known people
  (recipe `known_sft`), held-out evaluation people, at 1, 2, 4 and 8 epochs of one constant-lr run; also how fast
  each arm fits its own training people.
- facttune (Tian et al. 2024): DPO on the SFT model's own FActScore-ranked bios (recipe `facttune_dpo`) minus the
  SFT model, greedy and sampled bios.
- dpo_length (control; Singhal et al. 2023, Park et al. 2024): the baseline's DPO on instruction-following pairs
  minus its SFT, words per response on the evaluation instructions.

Every probe's effect is pooled over training seeds with a bootstrap over people (prompts for dpo_length): each
person's difference averaged over the seeds first, so an untrained (greedy base model) row adds no false precision.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from rich.table import Table

from flame_bench.core.stats import Delta, paired_bootstrap_over_seeds, two_sample_bootstrap

MECHANISM_WORLD = "pilot-fresh"  # chosen 2026-12-07 by the rule stated before (results/NOTES.md)
SAMPLED_BIOS = 4  # sampled bios per evaluation person for facttune's sampled FActScore
UNKNOWN_SFT_EPOCHS = (1, 2, 4, 8)  # checkpoints of the unknown-knowledge SFT run (cumulative epochs)
LITERATURE: dict[str, dict[str, Any]] = {
    "knowledge_by_popularity": {
        "unit": "FS",
        "expected": "FS ~80 frequent vs ~20-40 rare",
        "question": "Does the base model know popular people better than rare ones?",
        "measure": "FActScore (%) of greedy base-model bios, most exposed bin minus unexposed bin",
        "sign": +1, "size": "FActScore falls from ~80 to ~20-40 from very frequent to very rare entities "
                            "(Min et al. 2023 Fig. 3); PopQA accuracy rises with popularity (Mallen et al. 2023)",
        "role": "control"},
    "reading": {
        "unit": "FS",
        "expected": "+16.3 FS",
        "question": "Does the model read what it is given (retrieval-augmented bios more factual)?",
        "measure": "FActScore (%), PT_RAG minus PT, paired over evaluation people",
        "sign": +1, "size": "+16.3 FS (FLAME Table 1, rows 2 vs 1, Llama-2 7B)", "role": "mechanism"},
    "unknown_knowledge_sft": {
        "unit": "FS",
        "expected": "-2.2 FS (FLAME); Gekhman",
        "question": "Does fine-tuning on knowledge the model lacks make it hallucinate more?",
        "measure": "held-out FActScore (%), SFT on unknown people's bios minus SFT on known people's, after the "
                   "last checkpoint, paired over evaluation people",
        "sign": -1, "size": "unknown examples fitted more slowly, then held-out accuracy falls as they are "
                            "fitted (Gekhman et al. 2024); FLAME Table 1 rows 4 vs 3: -2.2 FS",
        "role": "mechanism"},
    "facttune": {
        "unit": "FS",
        "expected": "+3.7 FS (FLAME); -58% errors",
        "question": "Does DPO on the model's own samples ranked by FActScore raise factuality?",
        "measure": "greedy FActScore (%), FactTune-FS DPO minus its SFT model, paired over evaluation people",
        "sign": +1, "size": "58% fewer factual errors in Llama-2 7B bios (Tian et al. 2024); FLAME Table 1 "
                            "rows 5 vs 3: +3.7 FS", "role": "mechanism"},
    "dpo_length": {
        "unit": "words",
        "expected": "longer",
        "question": "Does DPO on instruction-following preferences lengthen responses?",
        "measure": "words per response, baseline DPO minus its SFT model, paired over evaluation instructions",
        "sign": +1, "size": "DPO/RLHF responses grow longer (Singhal et al. 2023; Park et al. 2024)",
        "role": "control"},
}


def bio_scores(source, model: Path, names: list[str], cache, samples: int = 0, seed: int = 0,
               rag: bool = False) -> dict[str, dict[str, float | None]]:
    """Per person: FActScore (0-100; None when the bio states no fact), correct and erroneous facts and words of
    `model`'s bio; greedy, or the mean over `samples` sampled bios (T 0.7, top-p 0.9). `rag`: the world's
    retrieval-augmented prompt (a pretrained model only)."""
    from flame_bench.core.evaluate import EVAL_GENERATION
    from flame_bench.engines.generation import SAMPLING, GenerationConfig, Generator
    from flame_bench.engines.models import resolve_model
    from flame_bench.scoring.factscore import FACTSCORE_K, score_per_topic
    from flame_bench.world import grammar as g

    cfg = (GenerationConfig(max_new_tokens=EVAL_GENERATION.max_new_tokens, num_return_sequences=samples, seed=seed,
                            batch_size=max(1, 256 // samples), **SAMPLING) if samples else EVAL_GENERATION)
    gen = Generator(resolve_model(str(model), source), cfg, cache)
    outs = (gen.complete(source.bio_rag_prompts(names), add_special_tokens=True) if rag
            else gen.samples([g.BIO_INSTRUCTION.format(S=n) for n in names]))
    texts_per_name = [[o.strip() for o in os_] for os_ in outs]
    scored = score_per_topic(source.factscorer(FACTSCORE_K), names, texts_per_name)
    result = {}
    for name, texts, mine in zip(names, texts_per_name, scored, strict=True):
        fs = [s.precision() for s in mine if s.precision() is not None]
        result[name] = {"factscore": 100 * sum(fs) / len(fs) if fs else None,
                        "correct": sum(s.supported for s in mine) / len(mine),
                        "erroneous": sum(s.n - s.supported for s in mine) / len(mine),
                        "words": sum(len(t.split()) for t in texts) / len(texts)}
    return result


def _column(scores: dict[str, dict[str, float | None]], key: str) -> dict[str, float | None]:
    return {name: s[key] for name, s in scores.items()}


def _mean(values) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known else None


def _paired(before: list[dict], after: list[dict], key: str, seed: int) -> Delta | None:
    return paired_bootstrap_over_seeds([_column(b, key) for b in before], [_column(a, key) for a in after], seed)


def _effect(delta: Delta | None, sign: int) -> dict[str, Any]:
    from flame_bench.experiments.pilot import verdict

    return {"effect": None if delta is None else round(delta.value, 3),
            "ci95": None if delta is None else [round(delta.low, 3), round(delta.high, 3)],
            "n": 0 if delta is None else delta.n, "verdict": verdict(delta, sign)}


def _delta_dict(delta: Delta | None) -> dict[str, Any] | None:
    return None if delta is None else {"value": round(delta.value, 3), "ci95": [round(delta.low, 3),
                                                                                 round(delta.high, 3)], "n": delta.n}


def _summary(scores: list[dict[str, dict]]) -> dict[str, float | None]:
    """Means over people (and seeds) of each per-person measure."""
    return {key: _mean([s[key] for run in scores for s in run.values()])
            for key in ("factscore", "correct", "erroneous", "words")}


def _by_bin(runs: list[dict[str, dict]], people: list[dict[str, Any]], key: str = "factscore") -> dict[str, Any]:
    """Mean `key` per popularity bin of the people (pretraining documents), over people and seeds."""
    from flame_bench.world.presets import POPULARITY_BINS, popularity_bin

    bins = {p["name"]: popularity_bin(p["exposure"]) for p in people if "exposure" in p}
    out = {}
    for label, _, _ in POPULARITY_BINS:
        values = [run[n][key] for run in runs for n, b in bins.items() if b == label and n in run]
        if values:
            mean = _mean(values)
            out[label] = None if mean is None else round(mean, 2)
    return out


def _eval_people(source) -> list[dict[str, Any]]:
    return [p for p in source.world.people if p["split"] == "eval_bio"]


def probe_knowledge_by_popularity(source, people, base: dict[str, dict], seed: int) -> dict[str, Any]:
    """`base`: the base model's greedy bios, scored (`bio_scores`)."""
    from flame_bench.world.presets import POPULARITY_BINS, popularity_bin

    bins: dict[str, list[float]] = {}
    for p in people:
        if (fs := base[p["name"]]["factscore"]) is not None and "exposure" in p:
            bins.setdefault(popularity_bin(p["exposure"]), []).append(fs)
    labels = [label for label, _, _ in POPULARITY_BINS if label in bins]
    delta = two_sample_bootstrap(bins[labels[0]], bins[labels[-1]], seed) if len(labels) > 1 else None
    return {**_effect(delta, +1), "compared": f"{labels[-1]} minus {labels[0]}" if len(labels) > 1 else None,
            "by_bin": {label: {"people": len(bins[label]), "factscore": round(_mean(bins[label]), 2)}
                       for label in labels}, "seeds": [], "model": str(source.base_model())}


def probe_reading(source, people, cache, pt: dict[str, dict], seed: int) -> dict[str, Any]:
    """`pt`: the base model's greedy bios, scored (`bio_scores`)."""
    rag = bio_scores(source, source.base_model(), [p["name"] for p in people], cache, rag=True)
    return {**_effect(_paired([pt], [rag], "factscore", seed), +1), "seeds": [],
            "pt": {**_summary([pt]), "by_bin": _by_bin([pt], people)},
            "pt_rag": {**_summary([rag]), "by_bin": _by_bin([rag], people)},
            "erroneous_delta": _delta_dict(_paired([pt], [rag], "erroneous", seed))}


def probe_unknown_sft(source, people, cache, base: dict[str, dict], seeds: list[int], quiet: bool,
                      overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    from flame_bench.alignment.stages import run_stage

    names = [p["name"] for p in people]
    curve: dict[str, dict[int, list[dict]]] = {"known": {}, "unknown": {}}
    fit: dict[str, dict[int, list[float | None]]] = {"known": {}, "unknown": {}}
    stats: dict[str, Any] = {}
    for seed in seeds:
        for arm in ("known", "unknown"):
            model, done = source.base_model(), 0
            for epochs in UNKNOWN_SFT_EPOCHS:
                config = {**(overrides or {}), "knowledge": arm, "epochs": float(epochs - done)}
                model, record = run_stage("known_sft", config, model,
                                          source, seed, cache, quiet, where=f"unknown_knowledge_sft {arm}")
                done = epochs
                curve[arm].setdefault(epochs, []).append(bio_scores(source, model, names, cache))
                trained = record["stats"]["arms"][arm]
                own = bio_scores(source, model, trained, cache)
                fit[arm].setdefault(epochs, []).append(_mean(_column(own, "factscore").values()))
                stats.setdefault(f"seed{seed}", {})[arm] = {
                    k: record["stats"][k] for k in ("examples", "candidates", "known_candidates",
                                                    "unknown_candidates")}
    last = UNKNOWN_SFT_EPOCHS[-1]
    delta = _paired(curve["known"][last], curve["unknown"][last], "factscore", seeds[0])
    return {**_effect(delta, -1), "seeds": seeds, "stats": stats,
            "base": {**_summary([base]), "by_bin": _by_bin([base], people)},
            "erroneous_delta": _delta_dict(_paired(curve["known"][last], curve["unknown"][last], "erroneous",
                                                   seeds[0])),
            "curve": [{"epochs": e, **{f"{arm}_heldout": {**_summary(curve[arm][e]),
                                                            "by_bin": _by_bin(curve[arm][e], people)} for arm in curve},
                       **{f"{arm}_train_fit_factscore": _mean(fit[arm][e]) for arm in fit},
                       "heldout_delta": _delta_dict(_paired(curve["known"][e], curve["unknown"][e], "factscore",
                                                            seeds[0]))}
                      for e in UNKNOWN_SFT_EPOCHS]}


def probe_facttune_and_length(source, people, cache, seeds: list[int], quiet: bool) -> tuple[dict, dict]:
    from flame_bench.alignment.stages import run_stage

    names = [p["name"] for p in people]
    sft_g, ft_g, sft_s, ft_s, pairs = [], [], [], [], {}
    sft_len: list[dict] = []
    dpo_len: list[dict] = []
    sft_cap: list[float] = []
    dpo_cap: list[float] = []
    alpaca = source.eval_set("alpaca").items
    for seed in seeds:
        sft, _ = run_stage("sft", {}, source.base_model(), source, seed, cache, quiet, where="facttune sft")
        tuned, record = run_stage("facttune_dpo", {}, sft, source, seed, cache, quiet, where="facttune dpo")
        pairs[f"seed{seed}"] = {k: record["stats"].get(k) for k in ("train_pairs", "ties", "mean_fs_gap",
                                                                      "chosen_longer_share", "mean_sample_fs")}
        sft_g.append(bio_scores(source, sft, names, cache))
        ft_g.append(bio_scores(source, tuned, names, cache))
        sft_s.append(bio_scores(source, sft, names, cache, samples=SAMPLED_BIOS, seed=seed))
        ft_s.append(bio_scores(source, tuned, names, cache, samples=SAMPLED_BIOS, seed=seed))
        dpo, _ = run_stage("dpo", {}, sft, source, seed, cache, quiet, where="dpo_length dpo")
        for runs, caps, model in ((sft_len, sft_cap, sft), (dpo_len, dpo_cap, dpo)):
            words, capped = _response_words(source, model, alpaca, cache)
            runs.append(words)
            caps.append(capped)
    s0 = seeds[0]
    facttune = {**_effect(_paired(sft_g, ft_g, "factscore", s0), +1), "seeds": seeds, "pairs": pairs,
                "greedy": {"sft": {**_summary(sft_g), "by_bin": _by_bin(sft_g, people)},
                           "facttune": {**_summary(ft_g), "by_bin": _by_bin(ft_g, people)},
                           "erroneous_delta": _delta_dict(_paired(sft_g, ft_g, "erroneous", s0)),
                           "correct_delta": _delta_dict(_paired(sft_g, ft_g, "correct", s0))},
                "sampled": {"bios_per_person": SAMPLED_BIOS, "sft": _summary(sft_s), "facttune": _summary(ft_s),
                            "factscore_delta": _delta_dict(_paired(sft_s, ft_s, "factscore", s0)),
                            "erroneous_delta": _delta_dict(_paired(sft_s, ft_s, "erroneous", s0))}}
    words = paired_bootstrap_over_seeds(sft_len, dpo_len, s0)
    length = {**_effect(words, +1), "seeds": seeds, "prompts": len(alpaca),
              "sft_words": _mean([_mean(r.values()) for r in sft_len]),
              "dpo_words": _mean([_mean(r.values()) for r in dpo_len]),
              "sft_capped_share": _mean(sft_cap), "dpo_capped_share": _mean(dpo_cap)}
    return facttune, length


def _response_words(source, model: Path, items: list[dict], cache) -> tuple[dict[str, float], float]:
    """Words per greedy response to each item, and the share of responses that ran to the token budget (a response
    cut off mid-loop measures the budget, not the model's length)."""
    from transformers import AutoTokenizer

    from flame_bench.core.evaluate import EVAL_GENERATION
    from flame_bench.engines.generation import Generator
    from flame_bench.engines.models import resolve_model

    outs = Generator(resolve_model(str(model), source), EVAL_GENERATION, cache)([it["instruction"] for it in items])
    tok = AutoTokenizer.from_pretrained(str(model))
    capped = sum(len(tok(o, add_special_tokens=False)["input_ids"]) >= EVAL_GENERATION.max_new_tokens - 1
                 for o in outs)
    return {it["id"]: float(len(o.split())) for it, o in zip(items, outs, strict=True)}, capped / len(outs)


def run_mechanisms(source, seeds: list[int], quiet: bool = False,
                   known_sft: dict[str, Any] | None = None) -> dict[str, Any]:
    """All five probes on `source`'s world; the report `results/mechanisms.json` holds. `known_sft`: settings of the
    unknown-knowledge SFT's recipe other than its defaults (a sensitivity run; recorded in the report)."""
    from flame_bench.core.paths import generation_cache_path
    from flame_bench.core.provenance import environment
    from flame_bench.engines.generation_cache import GenerationCache
    from flame_bench.scoring.factscore import FACTSCORE_K
    from flame_bench.world import grammar as g

    source.reading_training_people()  # a world without reading documents cannot run the reading probe
    people = _eval_people(source)
    names = [p["name"] for p in people]
    cache = GenerationCache(generation_cache_path())
    try:
        base = bio_scores(source, source.base_model(), names, cache)  # three probes start from these
        probes = {"knowledge_by_popularity": probe_knowledge_by_popularity(source, people, base, seeds[0]),
                  "reading": probe_reading(source, people, cache, base, seeds[0]),
                  "unknown_knowledge_sft": probe_unknown_sft(source, people, cache, base, seeds, quiet, known_sft)}
        probes["unknown_knowledge_sft"]["known_sft_overrides"] = known_sft or {}
        probes["facttune"], probes["dpo_length"] = probe_facttune_and_length(source, people, cache, seeds, quiet)
    finally:
        cache.close()
    world = source.world
    return {"scorer": source.factscorer(FACTSCORE_K).identity,
            "prompts": {"bio": g.BIO_INSTRUCTION, "rag": g.RAG_PROMPT, "rag_passages": g.RAG_PASSAGES},
            "world": {"path": str(source.spec["path"]), "name": source.name, "preset": world.preset_name,
                      "content_sha256": world.content_sha256, "base_model": world.manifest.get("base_model", {})
                      .get("parameters"), "model_spec": world.manifest["preset"]["model"]},
            "seeds": seeds, "evaluation_people": len(names),
            "probes": {name: {**LITERATURE[name], **probes[name]} for name in LITERATURE},
            "environment": environment(), "created": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def mechanisms_table(report: dict[str, Any]) -> Table:
    w = report["world"]
    table = Table(title=f"What the world can and cannot show: {w['name']} ({w['base_model']:,} parameters), seeds "
                        f"{', '.join(map(str, report['seeds']))}",
                  caption="effect with its 95% bootstrap CI over people (prompts for dpo_length), pooled over "
                          "training seeds; * CI excludes 0")
    for col in ("probe", "role", "literature", "world effect", "verdict"):
        table.add_column(col, overflow="fold")
    for name, p in report["probes"].items():
        eff = ("-" if p["effect"] is None
               else f"{p['effect']:+.1f} {p['unit']} [{p['ci95'][0]:+.1f}, {p['ci95'][1]:+.1f}]")
        table.add_row(name, p["role"], ("up: " if p["sign"] > 0 else "down: ") + p["expected"], eff, p["verdict"])
    return table
