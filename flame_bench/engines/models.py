"""Models: the one home of what a model directory is, how it is identified, loaded and named.

A model is an HF causal-LM directory with safetensors weights (pickles are never loaded, `trust_remote_code` stays
off). `resolve_model` turns a MODEL argument into a `ModelHandle` (directory + content hash): a registered name
(`base`: the source's base model), an installed model's short name (`flame-bench models add`, recorded in
`models_dir()/registry.json`), a model directory, or a Hugging Face hub id (safetensors, config and tokenizer only).
Installing models (GGUF conversion, wheels) lives in `flame_bench.engines.model_install`, which builds on this module.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flame_bench.core.errors import FlameError, unknown_name
from flame_bench.core.io import read_json
from flame_bench.core.paths import models_dir
from flame_bench.core.registry import MODELS

HUB_ALLOW_PATTERNS = ["*.safetensors", "*.json", "*.jinja", "tokenizer*", "*.txt", "*.model"]
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")


@dataclass
class ModelHandle:
    """A model directory plus its identity; weights load lazily (safetensors only)."""

    name: str
    path: Path
    sha256: str
    _loaded: tuple[Any, Any] | None = field(default=None, repr=False)

    def load(self) -> tuple[Any, Any]:
        if self._loaded is None:
            self._loaded = load_model(self.path)
        return self._loaded


@MODELS.register("base")
def source_base_model(source) -> Path:
    """The source's base model (the fact world's pretrained PT)."""
    if source is None:
        raise FlameError("model 'base' needs a fact world or a system with a base model; pass --world")
    return Path(source.base_model())


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
    """A loadable model directory: config.json plus its safetensors weights (`model.safetensors`, or shards listed in
    `model.safetensors.index.json`). Other *.safetensors files (adapters) are not the model's weights, and a pickle
    is never loaded in their place."""
    if not (path / "config.json").is_file():
        raise FlameError(f"{path} is not a model directory (no config.json); pass a saved HF model directory")
    if not ((path / "model.safetensors").is_file() or (path / "model.safetensors.index.json").is_file()):
        pickled = [f.name for f in path.glob("*") if f.suffix in PICKLE_SUFFIXES]
        why = (f"pickle weights ({', '.join(pickled)}) but no model.safetensors; flame-bench never loads pickles: "
               "convert them to safetensors") if pickled else (
            "no model.safetensors (nor model.safetensors.index.json); finish saving the model or pick another")
        raise FlameError(f"model directory {path} has {why}")


def load_model(path: str | Path):
    """(model, tokenizer) of an HF causal LM directory: safetensors only, no remote code, eval mode, best device.

    A tokenizer without a pad token pads with its eos token (Llama-3 style); one with neither cannot batch.
    """
    from transformers import AutoTokenizer

    from flame_bench.core.runtime import quiet_transformers, torch_setup

    device = torch_setup()
    quiet_transformers()
    tok = AutoTokenizer.from_pretrained(path)
    ensure_pad_token(tok, path)
    return load_weights(path).to(device).eval(), tok


def load_weights(path: str | Path):
    """The causal LM of a model directory from its safetensors (never a pickle, never remote code); a corrupt or
    truncated weights file is one line, not a traceback."""
    from transformers import AutoModelForCausalLM

    try:
        return AutoModelForCausalLM.from_pretrained(path, use_safetensors=True, trust_remote_code=False)
    except Exception as e:  # safetensors' own errors, OSError, header parse errors: all mean the same to a user
        cause = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
        raise FlameError(f"cannot load the weights of {path} ({type(e).__name__}: {cause}); the file is corrupt or "
                         "incomplete: save or install the model again") from None


def ensure_pad_token(tok, where: str | Path) -> None:
    """Give a tokenizer a pad token (its eos) so batches can be padded; refuse one with neither."""
    if tok.pad_token is None:
        if tok.eos_token is None:
            raise FlameError(f"the tokenizer of {where} has no pad token and no eos token, so generations cannot be "
                             "batched or ended; add an eos token to its tokenizer_config.json")
        tok.pad_token = tok.eos_token


# A base model without a chat template (a pretrained checkpoint) gets this one for SFT; its eos ends each turn.
PLAIN_CHAT_TEMPLATE = (
    "{% for m in messages %}{% if m['role'] == 'user' %}Question: {{ m['content'] }}\n"
    "{% elif m['role'] == 'assistant' %}Answer: {{ m['content'] }}{{ eos_token }}\n"
    "{% else %}{{ m['content'] }}\n{% endif %}{% endfor %}{% if add_generation_prompt %}Answer:{% endif %}")


def ensure_chat_template(tok) -> bool:
    """Give a tokenizer without a chat template flame-bench's plain one; True if it had to."""
    if getattr(tok, "chat_template", None):
        return False
    tok.chat_template = PLAIN_CHAT_TEMPLATE
    return True


def has_chat_template(path: Path) -> bool:
    if (path / "chat_template.jinja").is_file() or (path / "chat_template.json").is_file():
        return True
    config = path / "tokenizer_config.json"
    return config.is_file() and bool(json.loads(config.read_text()).get("chat_template"))


def model_record(path: Path) -> dict[str, Any]:
    """`flame_model.json` of a model flame-bench made ({} for any other model)."""
    record = path / "flame_model.json"
    return json.loads(record.read_text()) if record.is_file() else {}


def model_kind(path: Path) -> str:
    """"pretrained" for a model prompted in plain text (the world's base model, any model without a chat template),
    else "chat"."""
    if "(PT)" in str(model_record(path).get("kind", "")) or not has_chat_template(path):
        return "pretrained"
    return "chat"


def is_world_model_dir(path: Path) -> bool:
    """A model pretrained or aligned by flame-bench on a fact world (it speaks the world's vocabulary)."""
    return str(model_record(path).get("kind", "")).startswith("flame-bench ")


# -- installed short names (written by flame_bench.engines.model_install) ---------------------------------------------
def registry_path() -> Path:
    """`{name: {"path", "source", "added", ...}}` of every installed model."""
    return models_dir() / "registry.json"


def model_registry() -> dict[str, dict]:
    path = registry_path()
    return read_json(path) if path.is_file() else {}


def installed_models() -> dict[str, Path]:
    """Short name -> model directory, for every installed or registered model."""
    return {name: Path(entry["path"]) for name, entry in model_registry().items()}


def _hub_offline() -> bool:
    return any(os.environ.get(v, "").lower() in ("1", "true", "yes", "on") for v in ("HF_HUB_OFFLINE",
                                                                                     "TRANSFORMERS_OFFLINE"))


def resolve_hub_model(repo_id: str) -> Path:
    """A hub id ("org/name") downloaded as safetensors + config + tokenizer (never code, never pickles).

    Offline (HF_HUB_OFFLINE=1) only an already-cached snapshot is used.
    """
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    offline = _hub_offline()
    try:
        return Path(snapshot_download(repo_id, allow_patterns=HUB_ALLOW_PATTERNS, local_files_only=offline))
    except LocalEntryNotFoundError:  # no network (or offline mode) and nothing cached
        why = "offline (HF_HUB_OFFLINE=1) and has no cached copy" if offline else "unreachable (offline)"
        raise FlameError(f"model {repo_id!r} is not a local directory and the Hugging Face hub is {why}; pass a "
                         "local model directory or `flame-bench models add`") from None
    except Exception as e:  # missing repos, gated models, HTTP errors: one line, the cause named
        cause = f"{type(e).__name__}: {(str(e).strip().splitlines() or ['?'])[0][:100]}"
        raise FlameError(f"model {repo_id!r} could not be fetched from the Hugging Face hub ({cause}); pass a local "
                         "model directory") from None


def resolve_model(ref: str, source=None) -> ModelHandle:
    """`ref` is a registered model name ('base'), an installed model's short name (`flame-bench models add`), a
    model directory, or a Hugging Face hub id (org/name; needs the hub)."""
    if not ref or not ref.strip():
        raise FlameError("empty model name; pass 'base', an installed model's name, a model directory or a hub id")
    path = Path(ref)
    installed = installed_models()
    registered = ref in MODELS or ref in installed
    if ref in MODELS:
        path = MODELS.get(ref)(source)
    elif ref in installed:
        path = installed[ref]
    elif not path.exists():
        if ref.count("/") == 1 and not ref.startswith((".", "/")):  # a hub id: org/name
            path = resolve_hub_model(ref)
        elif "/" in ref or ref.startswith("."):
            raise FlameError(f"model directory {ref} does not exist")
        else:
            raise unknown_name("model", ref, [*MODELS.names(), *installed])
    if path.is_file():
        raise FlameError(f"{ref} is a file; pass a model directory (with config.json and *.safetensors)")
    check_model_dir(path)
    return ModelHandle(name=ref if registered else path.name, path=path.resolve(), sha256=model_sha256(path))
