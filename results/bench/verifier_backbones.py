"""A second backbone for the offline verifier, measured against MiniLM-L6 (run it with `python` after `flame-bench
verifier train`, with `flame-bench models add smollm2` done): the only other transformer that installs offline is
SmolLM2-135M (a decoder; `shared/reference/offline_assets.md` lists no other encoder or NLI weights). Both as a 3-way
sequence classifier on the same validation rows, one thread: seconds per training step (batch 32, 128 tokens; the
first step is not counted) and inference pairs per second (batch 64). Ratios within one run, as `flame-bench bench`
reports speed. Writes `verifier_backbones.json` beside itself."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from flame_bench.core.io import read_jsonl
from flame_bench.core.runtime import torch_setup
from flame_bench.engines.models import resolve_model
from flame_bench.real.nli import LABELS, _encode, _fetched, verifier_dir

STEPS, INFERENCE_ROWS = 6, 256


def measure(path: Path, rows: list[dict]) -> dict[str, float]:
    tok = AutoTokenizer.from_pretrained(path)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=len(LABELS), use_safetensors=True)
    model.config.pad_token_id = tok.pad_token_id
    opt = torch.optim.AdamW(model.parameters(), lr=5e-5)
    model.train()
    times = []
    for s in range(STEPS):
        batch = rows[s * 32:(s + 1) * 32]
        enc = _encode(tok, batch, 128)
        t = time.perf_counter()
        model(**enc, labels=torch.tensor([LABELS.index(r["label"]) for r in batch])).loss.backward()
        opt.step()
        opt.zero_grad()
        times.append(time.perf_counter() - t)
    model.eval()
    rest = rows[STEPS * 32:]
    t = time.perf_counter()
    with torch.inference_mode():
        for i in range(0, len(rest), 64):
            model(**_encode(tok, rest[i:i + 64], 128))
    return {"params_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 1),
            "train_s_per_step_b32": round(sum(times[1:]) / (STEPS - 1), 3),
            "inference_pairs_per_s": round(len(rest) / (time.perf_counter() - t), 1)}


def main() -> None:
    torch_setup(0)
    torch.set_num_threads(1)
    validation = sorted((verifier_dir().parent / "nli-data").glob("validation-*.jsonl"))[0]
    rows = random.Random(0).sample(read_jsonl(validation, "flame-bench/nli-examples", 1), 32 * STEPS + INFERENCE_ROWS)
    out = {name: measure(path, rows) for name, path in (("minilm-l6", _fetched("minilm")),
                                                        ("smollm2-135m", resolve_model("smollm2").path))}
    a, b = out["minilm-l6"], out["smollm2-135m"]
    out["smollm2_step_cost_x"] = round(b["train_s_per_step_b32"] / a["train_s_per_step_b32"], 2)
    out["smollm2_inference_slower_x"] = round(a["inference_pairs_per_s"] / b["inference_pairs_per_s"], 2)
    (Path(__file__).with_suffix(".json")).write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
