"""A stage's `trainer:` and `peft:` mappings: forwarded to trl / peft, checked with line numbers, LoRA that trains."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from flame_bench.alignment.stages import run_stage
from flame_bench.alignment.systems import load_system
from flame_bench.core.errors import FlameError
from flame_bench.engines.generation_cache import GenerationCache
from flame_bench.world.source import WorldSource


@pytest.fixture(scope="module")
def world(smoke_world: Path) -> WorldSource:
    return WorldSource.open(smoke_world)


def _weights(model_dir: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(model_dir / "model.safetensors"))


def _system(tmp_path: Path, stage_lines: str) -> Path:
    path = tmp_path / "lora.yaml"
    path.write_text("name: lora\ndescription: x\nbase_model: base\nstages:\n" + stage_lines)
    return path


@pytest.mark.parametrize(("lines", "line", "message"), [
    ("  - recipe: sft\n    trainer:\n      logging_steps: 5\n      gradient_acumulation_steps: 2\n", 8,
     "did you mean 'gradient_accumulation_steps'"),
    ("  - recipe: dpo\n    trainer: {beta: 0.5}\n", 6, "is the recipe's: set config: {beta: ...}"),
    ("  - recipe: sft\n    trainer: {lr_scheduler_type: cosinus}\n", 6, "not a valid SchedulerType"),
    ("  - recipe: sft\n    peft:\n      r: 4\n      lora_alfa: 8\n", 8, "did you mean 'lora_alpha'"),
    ("  - recipe: sft\n    peft: {r: 4, save: both}\n", 6, "peft save must be one of merged, adapter"),
    ("  - recipe: sft\n    peft: [r, 4]\n", 6, "'peft' must be a mapping"),
])
def test_trainer_and_peft_keys_are_checked_with_their_line(tmp_path: Path, lines: str, line: int,
                                                           message: str) -> None:
    path = _system(tmp_path, lines)
    with pytest.raises(FlameError, match=f":{line}: .*") as e:
        load_system(str(path))
    assert message in str(e.value) and "\n" not in str(e.value)


def test_trainer_keys_reach_trl_and_leave_other_stages_keys_alone(world: WorldSource, tmp_path: Path) -> None:
    cache = GenerationCache(tmp_path / "c.sqlite")
    _, plain = run_stage("sft", {"epochs": 1, "batch_size": 8}, world.base_model(), world, 0, cache, root=tmp_path)
    _, accumulated = run_stage("sft", {"epochs": 1, "batch_size": 8, "trainer": {"gradient_accumulation_steps": 2}},
                               world.base_model(), world, 0, cache, root=tmp_path)
    assert accumulated["stats"]["steps"] == math.ceil(plain["stats"]["steps"] / 2)
    assert accumulated["key"] != plain["key"]
    assert "trainer" not in plain["key_parts"]["config"]  # unset: the key stays what it always was


def test_lora_sft_then_dpo_train_merge_and_keep_the_adapter(world: WorldSource, tmp_path: Path) -> None:
    cache = GenerationCache(tmp_path / "c.sqlite")
    lora = {"r": 4, "lora_alpha": 8, "target_modules": "all-linear", "lora_dropout": 0.0}
    base = world.base_model()
    sft_model, sft = run_stage("sft", {"epochs": 1, "learning_rate": 1e-2, "peft": {**lora, "save": "adapter"}},
                               base, world, 0, cache, root=tmp_path)
    assert (sft_model / "adapter" / "adapter_model.safetensors").is_file()
    assert (sft_model / "adapter" / "adapter_config.json").is_file()
    before, after = _weights(base), _weights(sft_model)
    assert set(after) <= set(before)  # merged: the base model's tensors, no lora_A / lora_B left
    assert any(not (before[k] == after[k]).all() for k in after)  # training moved the merged weights
    trainable = sft["stats"]["lora_trainable_parameters"]
    assert 0 < trainable < sum(t.numel() for t in before.values()) / 4
    dpo_model, dpo = run_stage("dpo", {"max_instructions": 16, "batch_size": 8, "learning_rate": 1e-2,
                                       "peft": lora}, sft_model, world, 0, cache, root=tmp_path)
    assert not (dpo_model / "adapter").exists() and dpo["stats"]["steps"] > 0
    merged = _weights(dpo_model)
    assert any(not (after[k] == merged[k]).all() for k in merged)  # DPO with LoRA changed the SFT weights
