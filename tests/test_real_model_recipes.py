"""The recipes are not tied to the tiny world model: a real model (SmolLM2-135M-Instruct, installed with
`flame-bench models add smollm2`) runs FLAME SFT and DPO on the smoke world for a few steps.

Slow (minutes on CPU) and skipped when no real model is installed: tests never download anything.
Select another real model directory with FLAME_BENCH_REAL_MODEL.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from flame_bench.alignment.stages import run_stage
from flame_bench.engines.generation_cache import GenerationCache
from flame_bench.world.source import WorldSource

pytestmark = pytest.mark.slow


def real_model_dir() -> Path | None:
    if os.environ.get("FLAME_BENCH_REAL_MODEL"):
        return Path(os.environ["FLAME_BENCH_REAL_MODEL"])
    from flame_bench.engines.models import installed_models

    return installed_models().get("smollm2")


def test_flame_recipes_train_a_real_model_for_a_few_steps(smoke_world: Path, tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM

    path = real_model_dir()
    if path is None or not path.is_dir():
        pytest.skip("no real model installed (run `flame-bench models add smollm2`)")
    world = WorldSource.open(smoke_world)
    stages = [("flame_sft", {"max_instructions": 8, "pt_samples": 2, "pt_max_new_tokens": 24, "batch_size": 2,
                             "max_length": 96, "epochs": 1.0}),
              ("flame_dpo", {"max_instructions": 8, "samples_per_instruction": 2, "max_new_tokens": 24,
                             "batch_size": 2, "max_length": 96})]
    world.check_model(path)  # a subword tokenizer encodes the world's text
    cache = GenerationCache(tmp_path / "c.sqlite")
    model, records = path, []
    for recipe, overrides in stages:
        model, record = run_stage(recipe, overrides, model, world, seed=0, cache=cache, quiet=True,
                                  root=tmp_path / "systems")
        records.append(record)
    assert [r["recipe"] for r in records] == ["flame_sft", "flame_dpo"]
    sft, dpo = (r["stats"] for r in records)
    assert sft["pt_instructions"] >= 1 and sft["examples"] >= 1
    assert dpo["train_pairs"] >= 1 and dpo["if_pairs"] + dpo["fact_pairs"] >= 1
    trained = AutoModelForCausalLM.from_pretrained(model, use_safetensors=True)
    assert trained.config.model_type == "llama" and trained.config.num_hidden_layers == 30  # SmolLM2, not the tiny one


_DPO_STAGE = """
import json, resource, sys
from pathlib import Path
from flame_bench.engines.generation_cache import GenerationCache
from flame_bench.alignment.stages import run_stage
from flame_bench.world.source import WorldSource
world_dir, model, root, peft = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), json.loads(sys.argv[4])
config = {"max_instructions": 8, "samples_per_instruction": 2, "max_new_tokens": 24, "batch_size": 2,
          "max_length": 96, "learning_rate": 1e-4, **({"peft": peft} if peft else {})}
_, record = run_stage("dpo", config, model, WorldSource.open(world_dir), 0, GenerationCache(root / "c.sqlite"),
                      quiet=True, root=root)
print(json.dumps({"stats": record["stats"], "peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def test_lora_dpo_on_a_real_model_keeps_one_copy_of_the_weights(smoke_world: Path, tmp_path: Path) -> None:
    """LoRA SFT then DPO on SmolLM2 for a few steps: the adapter is saved, and DPO's reference is the policy with
    its adapter disabled, so the DPO process peaks lower than full DPO's (which holds a second, frozen copy)."""
    import json
    import subprocess
    import sys

    path = real_model_dir()
    if path is None or not path.is_dir():
        pytest.skip("no real model installed (run `flame-bench models add smollm2`)")
    world = WorldSource.open(smoke_world)
    lora = {"r": 8, "lora_alpha": 16, "target_modules": "all-linear"}
    sft_model, sft = run_stage("sft", {"max_instructions": 8, "batch_size": 2, "max_length": 96, "epochs": 1.0,
                                       "learning_rate": 1e-4, "peft": {**lora, "save": "adapter"}},
                               path, world, seed=0, cache=GenerationCache(tmp_path / "c.sqlite"), quiet=True,
                               root=tmp_path / "systems")
    assert (sft_model / "adapter" / "adapter_model.safetensors").is_file() and sft["stats"]["steps"] > 0
    runs = {}
    for name, peft in (("full", None), ("lora", lora)):
        proc = subprocess.run([sys.executable, "-c", _DPO_STAGE, str(smoke_world), str(path), str(tmp_path / name),
                               json.dumps(peft)], capture_output=True, text=True, timeout=1800)
        assert proc.returncode == 0, proc.stderr[-3000:]
        runs[name] = json.loads(proc.stdout.strip().splitlines()[-1])
    print({n: r["peak_rss_kb"] for n, r in runs.items()})  # recorded in results/NOTES.md
    assert runs["lora"]["stats"]["lora_trainable_parameters"] > 0 and runs["lora"]["stats"]["steps"] > 0
    assert runs["lora"]["peak_rss_kb"] < runs["full"]["peak_rss_kb"]
