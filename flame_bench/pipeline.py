"""Training systems stage by stage, each stage cached by a content hash of everything it depends on.

A stage's key covers the recipe (name, version, full config), the input model's content hash, the world's
manifest hash, the seed and the instruction classifier. A finished stage lives in
`results/systems/stages/<recipe>-<key>/` (`model/` + `stage.json`); an unfinished one keeps its trainer
checkpoints in a hidden `.partial` sibling, and the next run resumes from them.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from flame_bench.alignment import StageContext
from flame_bench.cache import GenerationCache
from flame_bench.errors import FlameError
from flame_bench.io import publish_dir, read_json, sha256_json, write_json
from flame_bench.models import model_sha256, resolve_model
from flame_bench.registry import RECIPES
from flame_bench.ui import console

SYSTEMS_DIR = Path("results/systems")


def make_config(recipe, overrides: dict[str, Any], where: str):
    fields = {f.name for f in dataclasses.fields(recipe.config_cls)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        from flame_bench.errors import unknown_name

        raise FlameError(f"{where}: {unknown_name(f'{recipe.name} config key', unknown[0], fields)}")
    return recipe.config_cls(**overrides)


def stage_key(recipe, config, input_model: Path, world, seed: int, classifier: str) -> str:
    return sha256_json({"recipe": recipe.name, "version": recipe.version, "config": asdict(config),
                        "input_model": model_sha256(input_model), "world": world.content_sha256,
                        "seed": seed, "classifier": classifier})


def run_stage(recipe_name: str, overrides: dict[str, Any], input_model: Path, world, seed: int,
              cache: GenerationCache, quiet: bool = False, classifier: str = "world_entities",
              where: str = "stage", root: Path = SYSTEMS_DIR) -> tuple[Path, dict[str, Any]]:
    """Run one stage unless a finished copy exists; return (model directory, stage record)."""
    from flame_bench.runtime import quiet_transformers, torch_setup

    torch_setup(seed)
    quiet_transformers()
    recipe = RECIPES.get(recipe_name)
    config = make_config(recipe, overrides, where)
    key = stage_key(recipe, config, input_model, world, seed, classifier)
    final = root / "stages" / f"{recipe.name}-{key[:12]}"
    if (final / "stage.json").is_file():
        return final / "model", read_json(final / "stage.json")
    staging = final.parent / f".{final.name}.partial"
    staging.mkdir(parents=True, exist_ok=True)
    ctx = StageContext(world=world, input_model=input_model, output_dir=staging / "model", seed=seed, cache=cache,
                       quiet=quiet, classifier=classifier)
    if not quiet:
        console.print(f"[bold]stage[/bold] {recipe.name} <- {input_model}")
    t0 = time.perf_counter()
    stats = recipe.run(ctx, config)
    record = {"recipe": recipe.name, "recipe_version": recipe.version, "key": key, "input_model": str(input_model),
              "input_model_sha256": model_sha256(input_model), "seed": seed, "classifier": classifier,
              "seconds": round(time.perf_counter() - t0, 1), "stats": stats}
    write_json(staging / "stage.json", record)
    publish_dir(staging, final)
    return final / "model", record


def check_tokenizer(model_dir: Path, world) -> None:
    """The base model must encode the world's text without unknown tokens and have embeddings for its vocabulary."""
    import json

    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    vocab = json.loads((model_dir / "config.json").read_text()).get("vocab_size")
    if vocab is not None and len(tok) > int(vocab):
        raise FlameError(f"base model {model_dir}: tokenizer has {len(tok)} tokens but the model only {vocab} "
                         "embeddings; the tokenizer does not belong to this model")
    texts = [k["text"] for k in world.knowledge[:50]] + [r["instruction"] for r in world.records("eval_alpaca")[:50]]
    unknown = [t for text in texts for t in tok.tokenize(text) if tok.unk_token is not None and t == tok.unk_token]
    if unknown:
        words = [w for text in texts for w in text.split() if tok.unk_token in tok.tokenize(w)]
        raise FlameError(f"base model {model_dir} cannot encode this world's text ({len(unknown)} unknown tokens, "
                         f"e.g. {words[0]!r}); use the base model of this world or a model with a subword tokenizer")


def run_stages(base_model: str, stages: list[tuple[str, dict[str, Any]]], world, seed: int, cache: GenerationCache,
               quiet: bool = False, where: str = "system") -> tuple[Path, list[dict[str, Any]]]:
    model = resolve_model(base_model, world).path
    check_tokenizer(model, world)
    records = []
    for i, (recipe, overrides) in enumerate(stages):
        model, record = run_stage(recipe, overrides, model, world, seed, cache, quiet, where=f"{where} stage {i + 1}")
        records.append(record)
    return model, records
