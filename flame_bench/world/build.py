"""`flame-bench world build`: generate the world, build its tokenizer, pretrain its base model, publish; and where
the preset worlds live (results/worlds/PRESET-sSEED), built on first use."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from flame_bench.alignment import distributed
from flame_bench.core import numerics
from flame_bench.core.errors import FlameError
from flame_bench.core.io import sha256_file
from flame_bench.core.ui import console
from flame_bench.world import grammar as g
from flame_bench.world.generate import World, generate_world
from flame_bench.world.presets import Preset
from flame_bench.world.store import MODEL_DIR, prepare_output, publish, write_manifest, write_world_data


def world_texts(world: World) -> Iterator[str]:
    """Every text the world can show a model; the tokenizer's vocabulary is built from these."""
    yield from (d["text"] for d in world.corpus)
    yield from (k["text"] for k in world.knowledge)
    for key in ("seed_instructions", "dpo_instructions", "eval_alpaca"):
        for r in getattr(world, key):
            yield r["instruction"]
            yield r.get("response") or ""
    yield from (r["instruction"] for r in world.eval_bio)
    for item in world.eval_truthfulqa:
        yield item["question"]
        yield from item["mc2_targets"]["choices"]
    yield from (t.format(S="") for t in g.ABSTENTION_TEMPLATES)
    yield "Question: Answer: Instruction: Response:"


def build_world(preset: Preset, seed: int, out: Path, force: bool = False, quiet: bool = False) -> dict[str, Any]:
    from flame_bench.world.pretrain import pretrain
    from flame_bench.world.tokenizer import build_tokenizer

    staging = prepare_output(out, force)
    try:
        t0 = time.perf_counter()
        world = generate_world(preset, seed)
        write_world_data(world, staging)
        t_data = time.perf_counter() - t0
        tokenizer = build_tokenizer(world_texts(world))
        record = pretrain([d["text"] for d in world.corpus], tokenizer, preset.model, staging / MODEL_DIR, seed,
                          quiet)
        # the exact-file digest (`sha256sum model/model.safetensors`) compares builds across machines
        record["weights_sha256"] = sha256_file(staging / MODEL_DIR / "model.safetensors")
        record["numerics"] = numerics.mode()
        write_manifest(world, staging, {"build_seconds": {"data": round(t_data, 2),
                                                          "pretrain": record["wall_seconds"]}, "base_model": record})
        publish(staging, out)
    finally:  # a failed or interrupted build leaves nothing behind (and never anything that looks like a world)
        if staging.exists():
            shutil.rmtree(staging)
    return {"out": str(out), "data_seconds": t_data, **record}


def default_world_dir(preset: str, seed: int) -> Path:
    from flame_bench.core.paths import worlds_dir

    return worlds_dir() / f"{preset}-s{seed}"


def built_default_world(preset: str, quiet: bool) -> Path:
    """results/worlds/PRESET-s0, built first if missing (under `accelerate launch` one process builds, the others
    wait); an unknown preset is refused before anything is built."""
    from flame_bench.world.presets import get_preset

    world_dir = default_world_dir(preset, 0)
    if not (world_dir / "manifest.json").is_file():
        spec = get_preset(preset)
        if distributed.is_main():
            console.print(f"building the {preset} world first: {world_dir}")
            build_world(spec, 0, world_dir, force=True, quiet=quiet)
        distributed.barrier()
    return checked_default_world(world_dir, preset)


def checked_default_world(world_dir: Path, preset: str = "default") -> Path:
    """`world_dir` (results/worlds/PRESET-sN), refused if it was built from another definition of PRESET than
    this version's (before 2026-12-03 `default` was the three-step world now called `tiered`)."""
    import json

    from flame_bench.world.presets import get_preset

    manifest = world_dir / "manifest.json"
    if manifest.is_file():
        built = json.loads(manifest.read_text()).get("preset")
        if not get_preset(preset).defines(built):
            raise FlameError(f"{world_dir} was built from another definition of the {preset!r} preset (before "
                             f"2026-12-03 'default' was the three-step world now called 'tiered'); rebuild it with "
                             f"`flame-bench world build --preset {preset} --force`, or pass it as --world")
    return world_dir
