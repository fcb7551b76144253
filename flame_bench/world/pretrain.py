"""Pretrain the world's base model (PT): a tiny LlamaForCausalLM trained from scratch on the corpus.

A plain PyTorch loop (packed sequences, AdamW, warmup + cosine decay) is the fastest option for a model this
small; trl is used where the paper fine-tunes (SFT, DPO). The result is a standard HF directory
(safetensors weights, config, tokenizer, chat template) plus `flame_model.json` with the training record.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from pathlib import Path
from typing import Any

from flame_bench.core.errors import FlameError
from flame_bench.core.io import publish_dir, write_json
from flame_bench.core.runtime import quiet_transformers, torch_setup
from flame_bench.core.ui import progress
from flame_bench.world.presets import ModelSpec


def build_model(tokenizer, spec: ModelSpec, seed: int):
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=spec.hidden,
        intermediate_size=spec.intermediate,
        num_hidden_layers=spec.layers,
        num_attention_heads=spec.heads,
        num_key_value_heads=spec.heads,
        max_position_embeddings=512,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, do_sample=False,
    )
    return model


def pretrain(texts: list[str], tokenizer, spec: ModelSpec, out: Path, seed: int, quiet: bool = False) -> dict[str, Any]:
    """Train on `texts` (one document each) for `spec.steps` steps and save to `out` (built aside, published whole:
    a failed or interrupted run never leaves a model that looks finished)."""
    if spec.steps < 1:
        raise FlameError(f"pretraining needs at least 1 step, got {spec.steps}; pass --steps N with N >= 1")
    device = torch_setup(seed)
    quiet_transformers()
    import torch

    model = build_model(tokenizer, spec, seed).to(device)
    eos = tokenizer.eos_token_id
    docs = [[*ids, eos] for ids in tokenizer(texts, add_special_tokens=True)["input_ids"]]
    n_tokens = sum(len(d) for d in docs)
    gen = torch.Generator().manual_seed(seed)

    def batches():
        """Packed [batch, seq_len+1] windows over the shuffled corpus, epoch after epoch."""
        width = spec.seq_len + 1
        while True:
            order = torch.randperm(len(docs), generator=gen).tolist()
            stream = torch.tensor([t for i in order for t in docs[i]], dtype=torch.long)
            windows = stream[: len(stream) // width * width].view(-1, width)
            windows = windows[torch.randperm(len(windows), generator=gen)]
            for i in range(0, len(windows) - spec.batch_size + 1, spec.batch_size):
                yield windows[i:i + spec.batch_size]

    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": spec.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=spec.lr, betas=(0.9, 0.95),
    )

    def lr_at(step: int) -> float:
        if step < spec.warmup_steps:
            return spec.lr * (step + 1) / spec.warmup_steps
        frac = (step - spec.warmup_steps) / max(1, spec.steps - spec.warmup_steps)
        return spec.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))

    model.train()
    t0 = time.perf_counter()
    seen = 0
    losses: list[float] = []
    it = batches()
    with progress(quiet) as bar:
        task = bar.add_task("pretraining", total=spec.steps, loss=float("nan"), tps=0.0)
        for step in range(spec.steps):
            batch = next(it).to(device)
            for group in opt.param_groups:
                group["lr"] = lr_at(step)
            logits = model(input_ids=batch[:, :-1]).logits
            loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), batch[:, 1:].reshape(-1))
            if not torch.isfinite(loss):
                raise FlameError(f"pretraining loss became {loss.item()} at step {step}; lower the preset's lr")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            seen += batch.numel()
            losses.append(loss.item())
            bar.update(task, advance=1, loss=sum(losses[-20:]) / len(losses[-20:]),
                       tps=seen / (time.perf_counter() - t0))
    wall = time.perf_counter() - t0

    model.eval()
    record = {
        "kind": "flame-bench base model (PT)",
        "architecture": "LlamaForCausalLM",
        "parameters": sum(p.numel() for p in model.parameters()),
        "vocab_size": len(tokenizer),
        "spec": json.loads(json.dumps(spec.__dict__)),
        "seed": seed,
        "corpus_documents": len(docs),
        "corpus_tokens": n_tokens,
        "tokens_trained": seen,
        "epochs": round(seen / max(1, n_tokens), 2),
        "final_loss": round(sum(losses[-50:]) / len(losses[-50:]), 4),
        "wall_seconds": round(wall, 1),
        "tokens_per_second": round(seen / wall, 1),
        "device": str(device),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.parent / f".{out.name}.partial"
    if staging.exists():
        shutil.rmtree(staging)
    try:
        model.save_pretrained(staging, safe_serialization=True)
        tokenizer.save_pretrained(staging)
        write_json(staging / "flame_model.json", record)
        publish_dir(staging, out)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return record
