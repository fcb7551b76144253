"""`flame-bench bench`: speed measured as ratios within one run (never as timed assertions in tests).

- FActScore pipeline throughput: atomic facts scored per second (and the share of each stage).
- Generation: completions per second batched vs one prompt at a time, same model and prompts.
- Retrieval: rank-bm25 (the design-card choice) vs bm25s query latency over the large preset's knowledge source.
"""

from __future__ import annotations

import platform
import random
import time
from itertools import pairwise
from pathlib import Path
from typing import Any

from flame_bench.scoring.retrieval import bm25_tokens


def _timed(fn, *args, **kwargs) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


def bench_factscore(world, n_responses: int = 200, repeats: int = 5) -> dict[str, Any]:
    """The world FActScore pipeline on knowledge pages as responses: the median of `repeats` cold runs (a fresh
    scorer each, so no parsed passage or BM25 vector carries over; one run takes ~0.1 s, too short to read alone)."""
    from statistics import median

    from flame_bench.world.factscore import world_factscorer

    pages = world.knowledge[:n_responses]
    times = []
    for _ in range(repeats):
        type(world.grammar).parse_sentence.cache_clear()  # the grammar memoises parsed sentences process-wide
        scorer = world_factscorer(world)
        scorer.splitter("Warm up. The pipeline loads spaCy once.")
        # as the tasks call it: all responses in one batched call (per-fact retrieval, FActScore's query)
        scores, dt = _timed(scorer.score_many, [p["text"] for p in pages], [[p["title"]] for p in pages])
        times.append(dt)
    dt = median(times)
    n_facts = sum(s.n for s in scores)
    split_t = _timed(scorer.splitter.many, [p["text"] for p in pages])[1]
    return {"responses": len(pages), "facts": n_facts, "seconds": dt, "facts_per_second": n_facts / dt,
            "sentence_split_share": split_t / dt}


def bench_generation(world, n_prompts: int = 64, max_new_tokens: int = 64) -> dict[str, Any]:
    from flame_bench.engines.generation import GenerationConfig, generate
    from flame_bench.engines.models import load_model
    from flame_bench.world.probe import PROBE_PROMPT

    model, tok = load_model(world.model_dir)
    prompts = [PROBE_PROMPT.format(instruction=f"Tell me a bio of {p['name']}.") for p in world.people[:n_prompts]]
    cfg = GenerationConfig(max_new_tokens=max_new_tokens)
    generate(model, tok, prompts[:2], cfg)  # warm-up
    _, batched = _timed(generate, model, tok, prompts, GenerationConfig(max_new_tokens=max_new_tokens,
                                                                       batch_size=len(prompts)))
    n_single = min(16, n_prompts)
    _, single = _timed(generate, model, tok, prompts[:n_single], GenerationConfig(max_new_tokens=max_new_tokens,
                                                                                batch_size=1))
    b_rate, s_rate = len(prompts) / batched, n_single / single
    return {"prompts_batched": len(prompts), "prompts_single": n_single, "max_new_tokens": max_new_tokens,
            "batched_per_second": b_rate, "single_per_second": s_rate, "speedup": b_rate / s_rate}


def bench_bm25(seed: int = 0, n_queries: int = 200, k: int = 10, preset: str = "large") -> dict[str, Any]:
    """Global retrieval (FLAME's RM_fact / Alpaca Fact query = the instruction) over a preset's knowledge."""
    import numpy as np
    from rank_bm25 import BM25Okapi

    from flame_bench.world.generate import generate_world
    from flame_bench.world.presets import get_preset

    world = generate_world(get_preset(preset), seed)
    passages = [f"{k_['title']} {p}" for k_ in world.knowledge for p in k_["passages"]]
    corpus = [bm25_tokens(p) for p in passages]
    rng = random.Random(seed)
    queries = [r["instruction"] for r in rng.sample([r for r in world.dpo_instructions if r["fact_based"]],
                                                    n_queries)]
    rank_index, rank_build = _timed(BM25Okapi, corpus)
    rank_top, rank_q = _timed(lambda: [np.argsort(-rank_index.get_scores(bm25_tokens(q)))[:k] for q in queries])
    out: dict[str, Any] = {"passages": len(passages), "queries": n_queries, "k": k,
                           "rank_bm25_build_s": rank_build, "rank_bm25_ms_per_query": 1000 * rank_q / n_queries}
    try:
        import bm25s
    except ImportError:
        out["bm25s"] = "not installed (pip install bm25s)"
        return out
    retriever = bm25s.BM25(method="robertson")
    _, s_build = _timed(retriever.index, corpus, show_progress=False)
    (docs, _), s_q = _timed(retriever.retrieve, [bm25_tokens(q) for q in queries], k=k, show_progress=False)
    overlap = np.mean([len(set(a.tolist()) & set(b.tolist())) / k for a, b in zip(rank_top, docs, strict=True)])
    # the first 3 hits are the asked person's own passages; the tail is full of score ties, ordered differently
    head = np.mean([len(set(a[:3].tolist()) & set(b[:3].tolist())) / 3
                    for a, b in zip(rank_top, docs, strict=True)])
    out.update({"bm25s_build_s": s_build, "bm25s_ms_per_query": 1000 * s_q / n_queries,
                "speedup_bm25s_over_rank_bm25": rank_q / s_q, "top_k_overlap": float(overlap),
                "top_3_overlap": float(head)})
    return out


def bench_truthfulqa(model_ref: str, n_questions: int | None = None, fp64_sample: int = 40,
                     items: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """TruthfulQA MC1 + MC2 (lm-eval's built-in configs, 6-shot primer, the fetched BIG-bench questions) scored by
    lm-eval's `hf` model and by `flame-prefix` on the same requests: seconds, every log-likelihood's difference,
    MC1/MC2 per item, and each backend's distance from a float64 forward pass on a sample of requests."""
    import copy

    import torch

    from flame_bench.core.errors import FlameError
    from flame_bench.core.registry import TASKS
    from flame_bench.engines.models import load_model, resolve_model
    from flame_bench.real.fetch import load_truthfulqa_items

    tools = next((t.tools for n in TASKS.names() if "make_lm" in (t := TASKS.get(n)).tools), None)
    if tools is None:
        raise FlameError("no registered task offers an lm-eval scorer (Task.tools['make_lm']); nothing to bench")
    items = (items if items is not None else load_truthfulqa_items())[:n_questions]
    path = resolve_model(model_ref).path
    model, _ = load_model(path)
    captured: dict[str, list] = {}
    runs, seconds = {}, {}
    for name in ("hf", "prefix"):
        lm = tools["make_lm"](path, backend=name)
        inner = lm._loglikelihood_tokens

        def capture(requests, *args, _inner=inner, _name=name, **kwargs):
            out = _inner(requests, *args, **kwargs)
            captured.setdefault(f"{_name}_requests", []).extend(requests)
            captured.setdefault(_name, []).extend(out)
            return out

        lm._loglikelihood_tokens = capture
        t0 = time.perf_counter()
        runs[name] = tools["evaluate_mc"](lm, items, ("mc1", "mc2"), real=True)
        seconds[name] = time.perf_counter() - t0
    lls = {n: [ll for ll, _ in captured[n]] for n in ("hf", "prefix")}
    assert [r[1:] for r in captured["hf_requests"]] == [r[1:] for r in captured["prefix_requests"]]
    diffs = [abs(a - b) for a, b in zip(lls["hf"], lls["prefix"], strict=True)]
    greedy_same = all(a[1] == b[1] for a, b in zip(captured["hf"], captured["prefix"], strict=True))
    pairs = {m: list(zip(runs["hf"][m]["items"], runs["prefix"][m]["items"], strict=True)) for m in ("mc1", "mc2")}
    per_item = {"mc1_items_differing": sum(a["score"] != b["score"] for a, b in pairs["mc1"]),
                "mc2_max_item_diff": max((abs(a["score"] - b["score"]) for a, b in pairs["mc2"]), default=0.0)}
    # float64 truth on a sample: how far each float32 backend is from the exact log-likelihood
    m64 = copy.deepcopy(model).double().eval()
    step = max(1, len(diffs) // fp64_sample)
    err = {"hf": 0.0, "prefix": 0.0}
    with torch.inference_mode():
        for i in range(0, len(diffs), step)[:fp64_sample]:
            _, ctx, cont = captured["hf_requests"][i]
            logp = torch.log_softmax(m64(input_ids=torch.tensor([ctx + cont])).logits[0], -1)
            exact = sum(float(logp[len(ctx) - 1 + j, t]) for j, t in enumerate(cont))
            for n in err:
                err[n] = max(err[n], abs(lls[n][i] - exact))
    return {"model": str(path), "questions": len(items), "requests": len(diffs),
            "hf_seconds": seconds["hf"], "prefix_seconds": seconds["prefix"],
            "speedup_prefix_over_hf": seconds["hf"] / seconds["prefix"],
            "max_abs_loglikelihood_diff": max(diffs), "greedy_flags_identical": greedy_same,
            "mc1": {n: runs[n]["mc1"]["value"] for n in runs}, "mc2": {n: runs[n]["mc2"]["value"] for n in runs},
            **per_item, "fp64_sample": len(range(0, len(diffs), step)[:fp64_sample]),
            "max_abs_error_vs_fp64": err}


def bench_verification(model_ref: str, run_dir: str, knowledge: str = "wiki-leads", n_bios: int = 20,
                       with_nli: bool = True) -> dict[str, Any]:
    """FActScore's Retrieve->LM verification of a saved factscore_bio run's atomic facts (its first `n_bios` bios,
    each fact against its recorded evidence passages) by an HF verifier, every prompt in full vs shared passage
    prefixes: seconds, facts per second, and whether every verdict is the same."""
    from flame_bench.core.records import load_run
    from flame_bench.engines.llm.backends import HFBackend
    from flame_bench.engines.models import resolve_model
    from flame_bench.real.components import LLMVerifier
    from flame_bench.real.knowledge import open_knowledge
    from flame_bench.scoring.factscore import AtomicFact

    source = open_knowledge(knowledge)
    by_id = {p.id: p for ps in source.pages.values() for p in ps}
    queries = []
    for sample in load_run(Path(run_dir)).samples()[:n_bios]:
        for f in sample.get("facts") or []:
            passages = [by_id[i] for i in f["evidence"] if i in by_id]
            topic = passages[0].title if passages else ""
            queries.append((AtomicFact(f["text"]), passages, topic))
    path = resolve_model(model_ref).path
    out: dict[str, Any] = {"model": str(path), "run": str(run_dir), "bios": n_bios, "facts": len(queries)}
    verdicts = {}
    for name, share in (("full", False), ("shared", True)):
        verifier = LLMVerifier(HFBackend(path, batch_size=16, share_prefixes=share))
        verifier.verify_many(queries[:2])  # loads the model outside the timing
        verdicts[name], seconds = _timed(verifier.verify_many, queries)
        out[f"{name}_seconds"], out[f"{name}_facts_per_second"] = seconds, len(queries) / seconds
    out["speedup_shared_over_full"] = out["full_seconds"] / out["shared_seconds"]
    out["verdicts_identical"] = verdicts["full"] == verdicts["shared"]
    out["supported"] = sum(verdicts["shared"])
    from flame_bench.core.errors import FlameError
    from flame_bench.real.nli import NLIVerifier

    try:  # the offline NLI verifier on the same facts, when one is trained
        if not with_nli:
            return out
        nli = NLIVerifier()
    except FlameError:
        return out
    nli.verify_many(queries[:2])
    nli_verdicts, seconds = _timed(nli.verify_many, queries)
    out |= {"nli_version": nli.version, "nli_seconds": seconds, "nli_facts_per_second": len(queries) / seconds,
            "speedup_nli_over_shared": out["shared_seconds"] / seconds, "nli_supported": sum(nli_verdicts),
            "nli_agrees_with_llm": sum(a == b for a, b in zip(nli_verdicts, verdicts["shared"], strict=True))
            / max(1, len(queries))}
    return out


def _numerics_child(world_path: str, quick: bool) -> dict[str, Any]:
    """One numerics mode's speeds (run in a fresh process: the mode is fixed when torch loads)."""
    from flame_bench.core import numerics
    from flame_bench.core.runtime import torch_setup
    from flame_bench.world.store import WorldDir

    torch_setup(0)
    world = WorldDir.open(world_path)
    gen = bench_generation(world, 16 if quick else 64)
    train = bench_training(world, steps=5 if quick else 20)
    return {"mode": numerics.mode(), "generation_per_second": gen["batched_per_second"],
            **{k: v for k, v in train.items() if k.endswith("_plain_tokens_per_s")}}


def bench_numerics(world, quick: bool = False) -> dict[str, Any]:
    """Training and generation speed in both numerics modes, each in its own process, and native / reproducible."""
    import json
    import os
    import subprocess
    import sys

    from flame_bench.core import numerics
    runs = {}
    for mode in numerics.MODES:
        env = {k: v for k, v in os.environ.items() if k not in numerics.PINNED} | {numerics.ENV: mode}
        code = ("import json, sys; from flame_bench.experiments.bench import _numerics_child; "
                "print(json.dumps(_numerics_child(sys.argv[1], sys.argv[2] == '1')))")
        done = subprocess.run([sys.executable, "-c", code, str(world.path), "1" if quick else "0"], env=env,
                              capture_output=True, text=True, check=True)
        runs[mode] = json.loads(done.stdout.strip().splitlines()[-1])
    rep, nat = runs["reproducible"], runs["native"]
    ratios = {f"{k}_native_over_reproducible": nat[k] / rep[k] for k in rep if k != "mode"}
    return {"modes": runs, **ratios}


def run_bench(world, quick: bool = False, training: bool = False, truthfulqa: str | None = None,
              questions: int | None = None, verification: tuple[str, str] | None = None,
              numerics: bool = False) -> dict[str, Any]:
    from flame_bench.core.provenance import environment
    from flame_bench.core.runtime import torch_setup

    device = torch_setup(0)
    return {
        "environment": environment() | {"processor": platform.processor(), "device": str(device)},
        "world": str(world.path),
        "factscore": bench_factscore(world, 50 if quick else 200),
        "generation": bench_generation(world, 16 if quick else 64),
        "bm25": bench_bm25(n_queries=20 if quick else 200),
        **({"training": bench_training(world, steps=5 if quick else 20)} if training else {}),
        **({"truthfulqa": bench_truthfulqa(truthfulqa, questions)} if truthfulqa else {}),
        **({"verification": bench_verification(*verification)} if verification else {}),
        **({"numerics": bench_numerics(world, quick)} if numerics else {}),
    }


def _plain_optimizer(model, lr: float):
    """The optimizer trl's configs train with (transformers' defaults: fused AdamW, no weight decay)."""
    import torch

    return torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0, fused=True)


PLAIN_MAX_GRAD_NORM = 1.0  # transformers' default max_grad_norm, which trl's configs keep


def _plain_update(model, opt, loss) -> None:
    import torch

    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), PLAIN_MAX_GRAD_NORM)
    opt.step()


def _plain_sft_steps(model, batches, lr: float) -> list[float]:
    """Plain PyTorch SFT: forward, masked next-token loss, backward, clipping, AdamW; each step's seconds."""
    opt = _plain_optimizer(model, lr)
    clock = [time.perf_counter()]
    for ids, labels, mask in batches:
        _plain_update(model, opt, model(input_ids=ids, attention_mask=mask, labels=labels).loss)
        clock.append(time.perf_counter())
    return [b - a for a, b in pairwise(clock)]


def _seq_logp(model, ids, labels, mask):
    import torch

    logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1]
    tgt = labels[:, 1:]
    logp = torch.log_softmax(logits.float(), -1).gather(-1, tgt.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return (logp * (tgt != -100)).sum(-1)


def _plain_dpo_steps(model, ref, batches, lr: float, beta: float = 0.1) -> list[float]:
    """Plain PyTorch DPO (sigmoid loss): policy on chosen + rejected, frozen reference, clipping, AdamW; each step's
    seconds."""
    import torch

    opt = _plain_optimizer(model, lr)
    clock = [time.perf_counter()]
    for chosen, rejected in batches:
        with torch.no_grad():
            ref_c, ref_r = _seq_logp(ref, *chosen), _seq_logp(ref, *rejected)
        pol_c, pol_r = _seq_logp(model, *chosen), _seq_logp(model, *rejected)
        _plain_update(model, opt, -torch.nn.functional.logsigmoid(beta * ((pol_c - ref_c) - (pol_r - ref_r))).mean())
        clock.append(time.perf_counter())
    return [b - a for a, b in pairwise(clock)]


def _trl_steps(trainer) -> tuple[float, list[float]]:
    """Run a trl trainer; (seconds of the whole `train()` call, each step's seconds from one step's end to the next,
    the first from the start of training: batch collation, forward, backward, optimizer and trl's own metrics)."""
    from transformers import TrainerCallback

    clock: list[float] = []

    class StepClock(TrainerCallback):
        def on_train_begin(self, *args, **kwargs):
            clock.append(time.perf_counter())

        def on_step_end(self, *args, **kwargs):
            clock.append(time.perf_counter())

    trainer.add_callback(StepClock())
    t0 = time.perf_counter()
    trainer.train()
    return time.perf_counter() - t0, [b - a for a, b in pairwise(clock)]


def _rates(name: str, tokens: int, plain: list[float], trl: tuple[float, list[float]]) -> dict[str, float]:
    """Whole-run tokens/s of each, and the steady-state ratio: median step time after the first (warm-up) step."""
    from statistics import median

    return {f"{name}_plain_tokens_per_s": tokens / sum(plain), f"{name}_trl_tokens_per_s": tokens / trl[0],
            f"{name}_trl_over_plain": sum(plain) / trl[0],
            f"{name}_trl_over_plain_steady": median(plain[1:]) / median(trl[1][1:]),
            f"{name}_trl_setup_seconds": trl[0] - sum(trl[1])}


def _lm_head_cost(patched_model, batches, repeats: int = 3) -> dict[str, float]:
    """What trl's LM head costs: forward + backward of the same batches through the model trl patched, with its
    fused log-prob head (`fused_lm_head=True`, as every trl step calls it) and with the model's own head (logits and
    cross-entropy); median seconds of `repeats` passes each. On CPU trl's head scores every position with plain
    torch tiles (its Triton kernel needs a GPU), and no trl 1.16 config field turns it or its extra outputs off."""
    from statistics import median

    def one_pass(fused: bool) -> float:
        t0 = time.perf_counter()
        for ids, labels, mask in batches:
            out = patched_model(input_ids=ids, attention_mask=mask, labels=labels,
                                **({"fused_lm_head": True} if fused else {}))
            out.loss.backward()
            patched_model.zero_grad(set_to_none=True)
        return time.perf_counter() - t0

    patched_model.train()
    one_pass(False)  # warm-up, not counted
    own, fused = [], []
    for _ in range(repeats):  # interleaved, so neither head gets the warmer machine
        own.append(one_pass(False))
        fused.append(one_pass(True))
    own_s, fused_s = median(own), median(fused)
    return {"lm_head_fused_seconds": fused_s, "lm_head_own_seconds": own_s, "lm_head_fused_over_own": fused_s / own_s}


def bench_training(world, steps: int = 20, batch_size: int = 16) -> dict[str, Any]:
    """trl SFTTrainer / DPOTrainer vs a plain PyTorch loop: same model, same examples, same batch size."""
    import copy
    import tempfile
    from pathlib import Path

    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer, SFTConfig, SFTTrainer

    from flame_bench.alignment.training import chat_example, trl_config
    from flame_bench.core.runtime import quiet_transformers

    quiet_transformers()
    tok = AutoTokenizer.from_pretrained(world.model_dir)
    recs = world.records("seed_instructions")[: steps * batch_size]
    examples = [chat_example(r["instruction"], r["response"]) for r in recs]

    def encode(prompt: str, completion: str) -> tuple[list[int], list[int]]:
        p = tok(tok.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                        add_generation_prompt=True), add_special_tokens=False)["input_ids"]
        c = tok(f"{completion} </s>", add_special_tokens=False)["input_ids"]
        return p + c, [-100] * len(p) + c

    def collate(pairs: list[tuple[list[int], list[int]]]):
        width = max(len(i) for i, _ in pairs)
        ids = torch.full((len(pairs), width), tok.pad_token_id)
        labels = torch.full((len(pairs), width), -100)
        mask = torch.zeros((len(pairs), width), dtype=torch.long)
        for j, (i, lab) in enumerate(pairs):
            ids[j, : len(i)], labels[j, : len(i)], mask[j, : len(i)] = torch.tensor(i), torch.tensor(lab), 1
        return ids, labels, mask

    enc = [encode(r["instruction"], r["response"]) for r in recs]
    sft_batches = [collate(enc[i:i + batch_size]) for i in range(0, len(enc), batch_size)]
    tokens = sum(int(m.sum()) for _, _, m in sft_batches)
    out: dict[str, Any] = {"steps": len(sft_batches), "batch_size": batch_size}
    with tempfile.TemporaryDirectory() as tmp:
        model = AutoModelForCausalLM.from_pretrained(world.model_dir, use_safetensors=True)
        sft_plain = _plain_sft_steps(model, sft_batches, 3e-4)
        model = AutoModelForCausalLM.from_pretrained(world.model_dir, use_safetensors=True)
        args = trl_config(SFTConfig, Path(tmp) / "sft", 0, learning_rate=3e-4, max_steps=len(sft_batches),
                          per_device_train_batch_size=batch_size, max_length=192, save_strategy="no",
                          logging_steps=1000, lr_scheduler_type="constant", train_sampling_strategy="sequential")
        trainer = SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(examples), processing_class=tok)
        out |= _rates("sft", tokens, sft_plain, _trl_steps(trainer))
        out |= _lm_head_cost(trainer.model, sft_batches)

        # DPO: chosen = the human response, rejected = another instruction's response
        pairs = [(r["instruction"], r["response"], recs[(i + 1) % len(recs)]["response"]) for i, r in enumerate(recs)]
        dpo_batches = []
        for i in range(0, len(pairs), batch_size):
            chunk = pairs[i:i + batch_size]
            dpo_batches.append((collate([encode(p, c) for p, c, _ in chunk]),
                                collate([encode(p, r) for p, _, r in chunk])))
        dpo_tokens = sum(int(c[2].sum() + r[2].sum()) for c, r in dpo_batches)
        model = AutoModelForCausalLM.from_pretrained(world.model_dir, use_safetensors=True)
        ref = copy.deepcopy(model).eval()
        dpo_plain = _plain_dpo_steps(model, ref, dpo_batches, 5e-5)
        model = AutoModelForCausalLM.from_pretrained(world.model_dir, use_safetensors=True)
        ds = Dataset.from_list([{"prompt": [{"role": "user", "content": p}],
                                 "chosen": [{"role": "assistant", "content": c}],
                                 "rejected": [{"role": "assistant", "content": r}]} for p, c, r in pairs])
        args = trl_config(DPOConfig, Path(tmp) / "dpo", 0, learning_rate=5e-5, max_steps=len(dpo_batches),
                          per_device_train_batch_size=batch_size, max_length=256, save_strategy="no",
                          logging_steps=1000, lr_scheduler_type="constant", train_sampling_strategy="sequential")
        trainer = DPOTrainer(model=model, ref_model=copy.deepcopy(model).eval(), args=args, train_dataset=ds,
                             processing_class=tok)
        out |= _rates("dpo", dpo_tokens, dpo_plain, _trl_steps(trainer))
    return out


def bench_table(result: dict[str, Any], out: Any):
    """The benchmark as a rich table of rates and ratios."""
    from rich.table import Table

    table = Table(title="flame-bench bench", caption=f"written to {out}")
    table.add_column("measure")
    table.add_column("value", justify="right")
    fs, gen, bm = result["factscore"], result["generation"], result["bm25"]
    table.add_row("FActScore pipeline: facts scored / s", f"{fs['facts_per_second']:,.0f}")
    table.add_row("  share of time in spaCy sentence splitting", f"{100 * fs['sentence_split_share']:.0f}%")
    table.add_row("generation batched: completions / s", f"{gen['batched_per_second']:.1f}")
    table.add_row("generation one at a time: completions / s", f"{gen['single_per_second']:.2f}")
    table.add_row("batched / single speed-up", f"{gen['speedup']:.1f}x")
    table.add_row(f"rank-bm25 ms / query ({bm['passages']:,} passages)", f"{bm['rank_bm25_ms_per_query']:.1f}")
    if "bm25s_ms_per_query" in bm:
        table.add_row("bm25s ms / query", f"{bm['bm25s_ms_per_query']:.2f}")
        table.add_row("bm25s / rank-bm25 speed-up", f"{bm['speedup_bm25s_over_rank_bm25']:.1f}x")
        table.add_row(f"top-{bm['k']} overlap (top-3)", f"{100 * bm['top_k_overlap']:.1f}% "
                      f"({100 * bm['top_3_overlap']:.1f}%)")
    if "training" in result:
        tr = result["training"]
        for stage in ("sft", "dpo"):
            table.add_row(f"{stage.upper()} tokens/s: trl / plain PyTorch loop",
                          f"{tr[f'{stage}_trl_tokens_per_s']:,.0f} / {tr[f'{stage}_plain_tokens_per_s']:,.0f} "
                          f"= {tr[f'{stage}_trl_over_plain']:.2f}x")
            table.add_row(f"  {stage.upper()} steady state (median step after the first); trl setup seconds",
                          f"{tr[f'{stage}_trl_over_plain_steady']:.2f}x; {tr[f'{stage}_trl_setup_seconds']:.2f} s")
        if "lm_head_fused_over_own" in tr:
            table.add_row("  forward + backward of the SFT batches, seconds: with trl's fused LM head (CPU path) / "
                          "with the model's own head",
                          f"{tr['lm_head_fused_seconds']:.2f} / {tr['lm_head_own_seconds']:.2f} = "
                          f"{tr['lm_head_fused_over_own']:.2f}x the time")
    if "verification" in result:
        v = result["verification"]
        table.add_row(f"FActScore verification ({v['facts']} facts of {v['bios']} bios): facts / s, every prompt in "
                      "full / shared passage prefixes",
                      f"{v['full_facts_per_second']:.1f} / {v['shared_facts_per_second']:.1f} = "
                      f"{v['speedup_shared_over_full']:.1f}x (verdicts identical: "
                      f"{'yes' if v['verdicts_identical'] else 'NO'})")
        if "nli_seconds" in v:
            table.add_row("  offline NLI verifier on the same facts: facts / s; vs the LLM's shared-prefix speed",
                          f"{v['nli_facts_per_second']:.1f}; {v['speedup_nli_over_shared']:.1f}x "
                          f"({v['nli_supported']}/{v['facts']} supported)")
    if "numerics" in result:
        nm = result["numerics"]
        for key, label in (("generation_per_second", "generation, batched prompts / s"),
                           ("sft_plain_tokens_per_s", "SFT training tokens / s"),
                           ("dpo_plain_tokens_per_s", "DPO training tokens / s")):
            if f"{key}_native_over_reproducible" in nm:
                table.add_row(f"numerics modes: {label}, native / reproducible",
                              f"{nm['modes']['native'][key]:.1f} / {nm['modes']['reproducible'][key]:.1f} = "
                              f"{nm[f'{key}_native_over_reproducible']:.2f}x")
    if "truthfulqa" in result:
        tq = result["truthfulqa"]
        table.add_row(f"TruthfulQA MC1+MC2 ({tq['questions']} questions, {tq['requests']:,} requests): "
                      "lm-eval hf / flame-prefix seconds",
                      f"{tq['hf_seconds']:.0f} / {tq['prefix_seconds']:.0f} = {tq['speedup_prefix_over_hf']:.1f}x")
        table.add_row("  max |log-likelihood difference| (greedy flags identical)",
                      f"{tq['max_abs_loglikelihood_diff']:.1e} ({'yes' if tq['greedy_flags_identical'] else 'NO'})")
        table.add_row(f"  max |error| vs float64 on {tq['fp64_sample']} requests: hf / prefix",
                      f"{tq['max_abs_error_vs_fp64']['hf']:.1e} / {tq['max_abs_error_vs_fp64']['prefix']:.1e}")
        table.add_row("  MC1 / MC2: hf, prefix (MC1 items differing; largest MC2 item difference)",
                      f"{tq['mc1']['hf']:.4f}/{tq['mc2']['hf']:.4f}, {tq['mc1']['prefix']:.4f}/"
                      f"{tq['mc2']['prefix']:.4f} ({tq['mc1_items_differing']}; {tq['mc2_max_item_diff']:.1e})")
    return table
