"""Alignment building blocks on the smoke world: classifier, rewards, pair rules, stages, bad input."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from flame_bench.alignment.flame import PairParams, build_pairs
from flame_bench.alignment.stages import run_stage, run_stages
from flame_bench.alignment.training import as_trl_reward
from flame_bench.core.errors import FlameError
from flame_bench.engines.generation_cache import GenerationCache
from flame_bench.world.source import EntityClassifier, WorldSource, classifier_accuracy


@pytest.fixture(scope="module")
def world(smoke_world: Path) -> WorldSource:
    return WorldSource.open(smoke_world)


def test_classifier_accuracy_is_reported(world: WorldSource) -> None:
    acc = classifier_accuracy(world.world, EntityClassifier(world.world))
    assert set(acc) == {"seed_instructions", "dpo_instructions", "eval_alpaca"}
    assert all(v["accuracy"] == 1.0 for v in acc.values())  # the world's labels follow entity mentions


def test_rewards_and_trl_adapter(world: WorldSource) -> None:
    rec = next(r for r in world.sft_examples() if r["kind"] == "bio")
    assert world.rm_fact.score_many([rec, rec], [rec["response"], ""]) == [1.0, None]
    assert world.rm_if().score_many([rec], [rec["response"]])[0] >= 4
    reward = as_trl_reward(world.rm_fact, {rec["instruction"]: rec})
    prompts = [[{"role": "user", "content": rec["instruction"]}]] * 2
    completions = [[{"role": "assistant", "content": rec["response"]}], [{"role": "assistant", "content": "Blah."}]]
    assert reward(prompts, completions) == [1.0, 0.0]


def test_pair_rules() -> None:
    recs = [{"id": str(i), "instruction": f"q{i}"} for i in range(4)]
    samples = [["a", "b", "c", "d"]] * 4
    if_scores = [[3, 3, 3, 3], [1, 4, 2, 4], [3, 3, 3, 3], [3, 4, 3, 3]]
    fact_scores = [[None] * 4, [0.0, 1.0, 0.5, 1.0], [0.2, 0.9, 0.5, 0.9], [0.5, 0.5, 0.5, 0.5]]
    pairs = build_pairs(recs, samples, if_scores, fact_scores, [False, True, True, True])
    # IF: 0 and 2 tie (dropped); 1 -> (b, a); 3 -> (b, a)
    assert [(p["id"], p["chosen"], p["rejected"]) for p in pairs.if_pairs] == [("1", "b", "a"), ("3", "b", "a")]
    # fact: 1 has an IF gap of 3 between b (1.0) and a (0.0) -> dropped; 2 -> (b, a) with equal IF; 3 ties
    assert [(p["id"], p["chosen"], p["rejected"]) for p in pairs.fact_pairs] == [("2", "b", "a")]
    assert pairs.stats["dropped_if_tie"] == 2 and pairs.stats["dropped_fact_if_gap"] == 1
    assert pairs.stats["dropped_fact_tie"] == 1
    wider = build_pairs(recs, samples, if_scores, fact_scores, [False, True, True, True],
                        params=PairParams(max_if_gap=3.0))
    assert len(wider.fact_pairs) == 2


def test_stage_is_cached_and_config_checked(world: WorldSource, tmp_path: Path) -> None:
    cache = GenerationCache(tmp_path / "cache.sqlite")
    model, rec = run_stage("sft", {"epochs": 1}, world.base_model(), world, 0, cache, root=tmp_path)
    assert (model / "model.safetensors").is_file() and rec["stats"]["steps"] > 0
    again, rec2 = run_stage("sft", {"epochs": 1}, world.base_model(), world, 0, cache, root=tmp_path)
    assert again == model and rec2 == rec  # cached: no retraining
    with pytest.raises(FlameError, match="unknown sft config key 'learning_rat'; did you mean 'learning_rate'"):
        run_stage("sft", {"learning_rat": 1.0}, world.base_model(), world, 0, cache, root=tmp_path)
    with pytest.raises(FlameError, match="unknown recipe 'stf'; did you mean 'sft'"):
        run_stage("stf", {}, world.base_model(), world, 0, cache, root=tmp_path)


def test_nan_loss_stops_with_a_clear_error(world: WorldSource, tmp_path: Path) -> None:
    cache = GenerationCache(tmp_path / "cache.sqlite")
    with pytest.raises(FlameError, match="learning_rate must be a positive number, got inf"):
        run_stage("sft", {"learning_rate": math.inf, "epochs": 1}, world.base_model(), world, 0, cache, root=tmp_path)
    with pytest.raises(FlameError, match="training loss became NaN at step"):
        run_stage("sft", {"learning_rate": 1e38, "epochs": 1}, world.base_model(), world, 0, cache, root=tmp_path)
    assert not list(tmp_path.glob("sft-*/stage.json"))  # nothing published


def test_incompatible_base_model_is_refused(world: WorldSource, tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    from flame_bench.world.tokenizer import build_tokenizer

    other = tmp_path / "other"
    import shutil

    shutil.copytree(world.base_model(), other)
    build_tokenizer(["Alpha beta gamma."]).save_pretrained(other)  # a tokenizer of another world
    assert AutoTokenizer.from_pretrained(other).unk_token == "<unk>"
    with pytest.raises(FlameError, match="cannot encode this world's text"):
        run_stages(str(other), [("sft", {})], world, 0, GenerationCache(tmp_path / "c.sqlite"))


def test_interrupted_stage_resumes_from_its_checkpoint(world: WorldSource, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:

    from transformers import TrainerCallback

    import flame_bench.alignment.training as training
    from flame_bench.core.registry import RECIPES

    RECIPES.names()  # load the recipe modules, then make them checkpoint every 2 steps
    real_config, real_progress = training.trl_config, training.progress_callback
    monkeypatch.setattr(training, "trl_config", lambda *a, **k: real_config(*a, **{**k, "save_steps": 2}))

    class Interrupt(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 5:
                raise KeyboardInterrupt

    monkeypatch.setattr(training, "progress_callback", lambda label, quiet: Interrupt())
    cache = GenerationCache(tmp_path / "cache.sqlite")
    with pytest.raises(KeyboardInterrupt):
        run_stage("sft", {"epochs": 1, "batch_size": 4}, world.base_model(), world, 0, cache, root=tmp_path)
    partial = next(tmp_path.glob(".sft-*.partial"))
    assert (partial / "model.trainer" / "checkpoint-4").is_dir()
    assert not list(tmp_path.glob("sft-*/stage.json"))  # an interrupted stage is never published

    monkeypatch.setattr(training, "progress_callback", real_progress)
    model, record = run_stage("sft", {"epochs": 1, "batch_size": 4}, world.base_model(), world, 0, cache,
                              root=tmp_path)
    assert record["stats"]["resumed_from"].endswith("checkpoint-4")
    assert record["stats"]["steps"] == 15  # 60 examples / batch 4: the run finished where a fresh one would
    assert (model / "model.safetensors").is_file() and not partial.exists()
