"""Generation backends: an OpenAI-compatible server (`flame-bench serve` on 127.0.0.1) gives the in-process greedy
outputs end to end; vLLM's offline engine through a stand-in module; bad specs in one line."""

from __future__ import annotations

import json
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from conftest import run_cli, serving

from flame_bench.core.errors import FlameError
from flame_bench.engines.generation import GenerationConfig, Generator, encode, request_seed, using_backend
from flame_bench.engines.generation_cache import GenerationCache
from flame_bench.engines.models import resolve_model


@pytest.fixture()
def served_base(smoke_world) -> Iterator[str]:
    """The smoke world's base model behind `flame-bench serve`'s server on a free port; yields its base URL."""
    from flame_bench.engines.llm.backends import HFBackend

    with serving(HFBackend(smoke_world / "model", name="base")) as url:
        yield url


def _outputs(results: Path) -> dict[str, str]:
    (run,) = list((results / "runs").glob("factscore_bio__*/samples.jsonl"))
    rows = [json.loads(line) for line in run.read_text().splitlines()[1:]]
    return {r["id"]: r["output"] for r in rows}


def test_eval_through_a_served_model_equals_in_process_greedy_generation(smoke_world, served_base, tmp_path,
                                                                          monkeypatch):
    args = ["eval", "base", "--task", "factscore_bio", "--world", str(smoke_world), "--limit", "6", "--quiet"]
    monkeypatch.setenv("FLAME_BENCH_RESULTS", str(tmp_path / "hf"))
    code, _, err = run_cli(args)
    assert code == 0, err
    monkeypatch.setenv("FLAME_BENCH_RESULTS", str(tmp_path / "served"))
    code, _, err = run_cli(["--generation", served_base, *args])
    run_cli(["--generation", "hf", "list"])  # back to the default for the tests that follow
    assert code == 0, err
    local, served = _outputs(tmp_path / "hf"), _outputs(tmp_path / "served")
    assert len(local) == 6 and local == served  # same token ids in, same greedy tokens out
    assert sum(bool(o) for o in served.values()) >= 5
    (record,) = list((tmp_path / "served" / "runs").glob("factscore_bio__*/run.json"))
    backend = json.loads(record.read_text())["generation"]["backend"]
    assert backend == {"kind": "openai", "base_url": served_base, "model": "base"}  # in the record and its hash
    (hf_record,) = list((tmp_path / "hf" / "runs").glob("factscore_bio__*/run.json"))
    assert "backend" not in json.loads(hf_record.read_text())["generation"]  # hf records are what they were


def test_sampling_through_a_server_is_seeded_per_prompt_and_committed_per_request(smoke_world, served_base,
                                                                                   tmp_path):
    model = resolve_model(str(smoke_world / "model"))
    config = GenerationConfig(max_new_tokens=12, do_sample=True, temperature=0.7, top_p=0.9, num_return_sequences=3,
                              seed=5)
    prompts = [f"Question: Who is person {i}? Answer:" for i in range(4)]
    cache = GenerationCache(tmp_path / "gen.sqlite")
    with using_backend(served_base):
        first = Generator(model, config, cache).complete(prompts)
        assert [len(outs) for outs in first] == [3, 3, 3, 3]
        assert cache.misses == 4
        again = Generator(model, config, GenerationCache(tmp_path / "other.sqlite")).complete(prompts[::-1])
    assert again == first[::-1]  # each prompt's samples depend on its own seed, not on its place in the batch
    assert request_seed(5, prompts[0]) != request_seed(5, prompts[1])
    with using_backend("hf"):  # another engine's samples are never taken from the served ones' cache entries
        Generator(model, GenerationConfig(max_new_tokens=12, do_sample=True, temperature=0.7, top_p=0.9,
                                          num_return_sequences=3, seed=5), cache).complete(prompts[:1])
    assert cache.misses == 5


class _StandInVLLM:
    """Records what flame-bench asks of vLLM; answers with the token count it was given."""

    def __init__(self) -> None:
        self.engines: list[dict] = []
        self.calls: list[tuple[list, list]] = []
        outer = self

        class SamplingParams:
            def __init__(self, **kw):
                self.kw = kw

        class LLM:
            def __init__(self, **kw):
                outer.engines.append(kw)

            def generate(self, prompts, params, use_tqdm=True):
                outer.calls.append((prompts, params))
                return [types.SimpleNamespace(outputs=[types.SimpleNamespace(text=f" {len(p['prompt_token_ids'])}:{j} ")
                                                       for j in range(sp.kw["n"])])
                        for p, sp in zip(prompts, params, strict=True)]

        self.module = types.SimpleNamespace(LLM=LLM, SamplingParams=SamplingParams)


def test_vllm_backend_through_a_stand_in_module(smoke_world, tmp_path, monkeypatch):
    from flame_bench.engines import generation
    vllm = _StandInVLLM()
    monkeypatch.setitem(sys.modules, "vllm", vllm.module)
    generation._vllm_engine.cache_clear()
    model = resolve_model(str(smoke_world / "model"))
    prompts = ["Question: Who is Ada? Answer:", "Question: Tell me a bio of Bo. Answer:"]
    cache = GenerationCache(tmp_path / "gen.sqlite")
    with using_backend("vllm"):
        greedy = Generator(model, GenerationConfig(max_new_tokens=20), cache).complete(prompts)
        sampled = Generator(model, GenerationConfig(max_new_tokens=20, do_sample=True, temperature=0.7, top_p=0.9,
                                                    num_return_sequences=2, seed=3), cache).complete(prompts)
        again = Generator(model, GenerationConfig(max_new_tokens=20), cache).complete(prompts)
    ids = encode(model.path, prompts, add_special_tokens=True)  # a plain-text base model: BOS added, as in hf
    assert greedy == [[f"{len(x)}:0"] for x in ids] == again
    assert sampled == [[f"{len(x)}:0", f"{len(x)}:1"] for x in ids]
    assert len(vllm.calls) == 2  # the repeat came from the cache
    assert vllm.engines == [{"model": str(model.path), "tokenizer": str(model.path), "trust_remote_code": False,
                             "load_format": "safetensors", "seed": 0}]
    (greedy_prompts, greedy_params), (_, sampled_params) = vllm.calls
    assert [p["prompt_token_ids"] for p in greedy_prompts] == ids
    assert greedy_params[0].kw == {"n": 1, "max_tokens": 20, "temperature": 0.0, "top_p": 1.0, "seed": None}
    assert [p.kw["seed"] for p in sampled_params] == [request_seed(3, p) for p in prompts]
    assert sampled_params[0].kw["temperature"] == 0.7 and sampled_params[0].kw["n"] == 2
    generation._vllm_engine.cache_clear()


def test_vllm_missing_is_one_line(smoke_world, tmp_path, monkeypatch):
    from flame_bench.engines import generation
    monkeypatch.setitem(sys.modules, "vllm", None)  # import fails as on a machine without vLLM
    generation._vllm_engine.cache_clear()
    model = resolve_model(str(smoke_world / "model"))
    with using_backend("vllm"), pytest.raises(FlameError, match="pip install vllm"):
        Generator(model, GenerationConfig(), GenerationCache(tmp_path / "g.sqlite")).complete(["Question: x Answer:"])


def test_bad_generation_specs_are_one_line(smoke_world, tmp_path):
    code, _, err = run_cli(["--generation", "vlm", "list"])
    assert code == 2 and "unknown generation backend 'vlm'" in err and "vllm" in err and "Traceback" not in err
    system = tmp_path / "gen_sys.yaml"
    system.write_text(yaml.safe_dump({"name": "gen_sys", "description": "d", "base_model": "base",
                                      "generation": "vlm", "stages": [{"recipe": "sft"}]}, sort_keys=False))
    code, _, err = run_cli(["compare", str(system), "baseline", "--world", str(smoke_world)])
    assert code == 2 and f"{system}:4:" in err and "did you mean 'vllm'" in err


def test_a_backend_other_than_hf_enters_the_stage_key(smoke_world, served_base):
    from flame_bench.alignment.stages import make_config, stage_key
    from flame_bench.core.registry import RECIPES
    from flame_bench.world.source import WorldSource

    world = WorldSource.open(smoke_world)
    recipe = RECIPES.get("flame_sft")
    config = make_config(recipe, {}, "test")
    key_hf, parts_hf = stage_key(recipe, config, world.base_model(), world, 0)
    assert "generation" not in parts_hf  # stage keys of hf runs are what they always were
    with using_backend(served_base):
        key_served, parts_served = stage_key(recipe, config, world.base_model(), world, 0)
    assert parts_served["generation"] == {"kind": "openai", "base_url": served_base, "model": "base"}
    assert key_served != key_hf
