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
    """`ref` is a registered model name ('base'), an installed model's short name (`flame-bench models add`), a
    model directory, or a Hugging Face hub id (org/name; needs the hub)."""
    from flame_bench.model_store import installed_models, resolve_hub_model

    path = Path(ref)
    installed = installed_models()
    registered = ref in MODELS or ref in installed
    if ref in MODELS:
        path = MODELS.get(ref)(world)
    elif ref in installed:
        path = installed[ref]
    elif not path.exists():
        if ref.count("/") == 1 and not ref.startswith((".", "/")):  # a hub id: org/name
            path = resolve_hub_model(ref)
        elif "/" in ref or ref.startswith("."):
            raise FlameError(f"model directory {ref} does not exist")
        else:
            raise unknown_name("model", ref, [*MODELS.names(), *installed])
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


def is_world_model_dir(path: Path) -> bool:
    """A model pretrained or aligned by flame-bench on a fact world (it speaks the world's vocabulary)."""
    record = path / "flame_model.json"
    if not record.is_file():
        return False
    return str(json.loads(record.read_text()).get("kind", "")).startswith("flame-bench ")
