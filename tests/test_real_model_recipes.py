"""The recipes are not tied to the tiny world model: a real model (SmolLM2-135M-Instruct, installed with
`flame-bench models add smollm2`) runs FLAME SFT and DPO on the smoke world for a few steps.

Slow (minutes on CPU) and skipped when no real model is installed: tests never download anything.
Select another real model directory with FLAME_BENCH_REAL_MODEL.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from flame_bench.cache import GenerationCache
from flame_bench.stages import run_stage
from flame_bench.world.source import WorldSource

pytestmark = pytest.mark.slow


def real_model_dir() -> Path | None:
    if os.environ.get("FLAME_BENCH_REAL_MODEL"):
        return Path(os.environ["FLAME_BENCH_REAL_MODEL"])
    from flame_bench.models import installed_models

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
