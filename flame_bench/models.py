"""Resolving a MODEL argument to a model directory with an identity (content hash).

Accepted: `base` (the world's pretrained base model), or a local HF model directory with safetensors weights.
Weights are only ever loaded from safetensors; `trust_remote_code` stays off.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from flame_bench.errors import FlameError, unknown_name
from flame_bench.registry import MODELS
from flame_bench.task_api import ModelHandle


@MODELS.register("base")
def world_base_model(world) -> Path:
    """The world's pretrained base model (PT)."""
    if world is None:
        raise FlameError("model 'base' needs a world; pass --world")
    return Path(world.model_dir)


def model_sha256(path: Path) -> str:
    """Hash of the weights, config and tokenizer files: two directories with equal hashes generate equally."""
    h = hashlib.sha256()
    for f in sorted(path.glob("*")):
        if f.is_file() and (f.suffix in (".safetensors", ".json", ".jinja") and f.name != "flame_model.json"):
            h.update(f.name.encode())
            with f.open("rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
    return h.hexdigest()


def check_model_dir(path: Path) -> None:
    if not (path / "config.json").is_file():
        raise FlameError(f"{path} is not a model directory (no config.json); pass a saved HF model directory")
    if not list(path.glob("*.safetensors")):
        pickled = [f.name for f in path.glob("*") if f.suffix in (".bin", ".pt", ".pth", ".ckpt")]
        why = (f"only pickle weights ({', '.join(pickled)}), which flame-bench does not load; convert them to "
               "safetensors") if pickled else "no weights (*.safetensors); finish saving the model or pick another"
        raise FlameError(f"model directory {path} has {why}")


def resolve_model(ref: str, world=None) -> ModelHandle:
    """`ref` is a registered model name or a model directory."""
    path = Path(ref)
    registered = ref in MODELS
    if registered:
        path = MODELS.get(ref)(world)
    elif not path.exists():
        if "/" in ref or ref.startswith("."):
            raise FlameError(f"model directory {ref} does not exist")
        raise unknown_name("model", ref, MODELS.names())
    check_model_dir(path)
    return ModelHandle(name=ref if registered else path.name, path=path.resolve(), sha256=model_sha256(path))


def model_kind(path: Path) -> str:
    """"pretrained" for a world base model (prompted in the corpus' Q&A form), else "chat"."""
    record = path / "flame_model.json"
    if record.is_file():
        kind = json.loads(record.read_text()).get("kind", "")
        if "(PT)" in kind:
            return "pretrained"
    return "chat"
