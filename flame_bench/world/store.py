"""The on-disk fact world: documented JSONL files plus a manifest written last.

Layout of a world directory (all JSONL files start with a `{"__schema__", "version"}` header line):

    manifest.json            schema version, preset, seed, counts, sha256 of every file; written last
    pools.json               attribute value pools (the grammar's closed vocabulary of values)
    people.jsonl             id, name, gender, tier, split, attributes, misconception
    knowledge.jsonl          one wiki-style page per person: title, person_id, text, passages
    corpus.jsonl             pretraining documents: id, person_id, kind (bio|qa|rumour|mention|reading), text
    instructions/seed.jsonl  seed instructions with human responses, fact_based label, kind, spec
    instructions/dpo.jsonl   the DPO instruction pool (no responses)
    eval/bio.jsonl           biography entities stratified by tier
    eval/alpaca.jsonl        Alpaca-style instructions; fact_based ones form Alpaca Fact
    eval/truthfulqa.jsonl    TruthfulQA-style items (mc1_targets / mc2_targets, correct answer first)
    model/                   the base model: HF directory (safetensors, config, tokenizer, chat template)

A world is complete only when `manifest.json` exists and every file it lists has its recorded hash; builds
happen in a sibling `.partial` directory that is renamed into place at the end, so an interrupted build never
looks like a world.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from flame_bench import __version__
from flame_bench.core.errors import FlameError
from flame_bench.core.io import (
    check_output_dir,
    checked_schema_version,
    publish_dir,
    read_json,
    read_jsonl,
    sha256_file,
    staging_dir,
    write_json,
    write_jsonl,
)
from flame_bench.world.generate import World
from flame_bench.world.grammar import Grammar

SCHEMA_VERSION = 1
FILES = {
    "people": "people.jsonl",
    "knowledge": "knowledge.jsonl",
    "corpus": "corpus.jsonl",
    "seed_instructions": "instructions/seed.jsonl",
    "dpo_instructions": "instructions/dpo.jsonl",
    "eval_bio": "eval/bio.jsonl",
    "eval_alpaca": "eval/alpaca.jsonl",
    "eval_truthfulqa": "eval/truthfulqa.jsonl",
}
MODEL_DIR = "model"
TIMING_FILES = (f"{MODEL_DIR}/flame_model.json",)  # build records with wall times: not part of the content


def write_world_data(world: World, out: Path) -> None:
    """Write every data file of `world` into `out` (no manifest yet)."""
    pools = {k: list(v) for k, v in world.pools.items()}
    write_json(out / "pools.json", {"schema_version": SCHEMA_VERSION, "pools": pools})
    for key, rel in FILES.items():
        write_jsonl(out / rel, key, SCHEMA_VERSION, getattr(world, key))


def write_manifest(world: World, out: Path, extra: dict[str, Any]) -> None:
    files = ["pools.json", *FILES.values()]
    model = out / MODEL_DIR
    if model.is_dir():
        files += [str(p.relative_to(out)) for p in sorted(model.rglob("*")) if p.is_file()]
    manifest = {
        "schema_version": SCHEMA_VERSION,
        "flame_bench_version": __version__,
        "preset": world.preset.to_dict(),
        "seed": world.seed,
        "counts": {k: len(getattr(world, k)) for k in FILES},
        "files": {rel: sha256_file(out / rel) for rel in files},
        **extra,
    }
    write_json(out / "manifest.json", manifest)


def _unlisted_files(out: Path) -> list[str] | None:
    """Files under `out` that its world manifest does not list (None: `out` holds no recognisable world)."""
    try:
        manifest = read_json(out / "manifest.json")
    except FlameError:
        return None
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if (not isinstance(manifest.get("schema_version") if isinstance(manifest, dict) else None, int)
            or not isinstance(files, dict) or not all(rel in files for rel in ("pools.json", *FILES.values()))):
        return None
    present = (str(p.relative_to(out)) for p in out.rglob("*") if p.is_file() or p.is_symlink())
    return sorted(rel for rel in present if rel != "manifest.json" and rel not in files)


def prepare_output(out: Path, force: bool) -> Path:
    """Check `out` can receive a world; return the sibling staging directory to build into."""
    if check_output_dir(out, force, "world"):
        unlisted = _unlisted_files(out)  # --force replaces a world, never a user's other files
        if unlisted is None:
            why = "its manifest.json is not a world's" if (out / "manifest.json").is_file() else "no manifest.json"
            raise FlameError(f"{out} is not a flame-bench world ({why}), so --force will not replace it; choose "
                             "another --out")
        if unlisted:
            shown = ", ".join(unlisted[:3]) + (f" and {len(unlisted) - 3} more" if len(unlisted) > 3 else "")
            raise FlameError(f"{out} holds files its world does not list ({shown}), so --force will not replace it; "
                             "move them out or choose another --out")
        with replacing(out):  # fail now, not after the build, when a reader holds the world
            pass
    try:
        staging = staging_dir(out)  # unique: two builds of one --out never share (or delete) a staging directory
    except OSError as e:
        raise FlameError(f"cannot write to {out.parent} ({e.strerror}); choose a writable --out") from None
    return staging


# Readers of a world hold a shared lock on its sibling `.NAME.readers` file until their process ends; replacing a
# world takes it exclusively for the rename, so a world is never swapped under a compare or eval that reads it.
_READER_LOCKS: dict[Path, int] = {}


def _readers_file(path: Path) -> Path:
    return path.parent / f".{path.name}.readers"


def hold_for_reading(path: Path) -> None:
    """Keep `path` from being replaced until this process ends (a no-op where its parent is read-only)."""
    import fcntl

    key = path.resolve()
    if key in _READER_LOCKS:
        return
    try:
        fd = os.open(_readers_file(key), os.O_RDWR | os.O_CREAT, 0o666)
    except OSError:
        return
    fcntl.flock(fd, fcntl.LOCK_SH)  # waits only while a build renames a new world into place
    _READER_LOCKS[key] = fd


@contextmanager
def replacing(out: Path) -> Iterator[None]:
    """Exclusive hold on the world at `out` while it is replaced; refused while another process reads it."""
    import fcntl

    key = out.resolve()
    own = _READER_LOCKS.pop(key, None)  # this process's own reading never blocks its own rebuild
    if own is not None:
        os.close(own)
    try:
        fd = os.open(_readers_file(key), os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as e:
        raise FlameError(f"cannot write to {out.parent} ({e.strerror}); choose a writable --out") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise FlameError(f"the world at {out} is in use by another flame-bench process (a compare, eval or serve "
                             "reading it); let it finish, or build into another --out") from None
        yield
    finally:
        os.close(fd)


def publish(staging: Path, out: Path) -> None:
    """A finished build replaces any previous world in one rename, never while another process reads it."""
    with replacing(out):
        publish_dir(staging, out)


def _world_manifest(path: Path, fix: str) -> dict[str, Any]:
    """The manifest of the world at `path`, if it is one this flame-bench reads; else one line and `fix`."""
    manifest = read_json(path / "manifest.json")
    checked_schema_version(manifest, SCHEMA_VERSION, f"{path}/manifest.json has no schema_version; {fix}",
                           f"{path} was built by a newer flame-bench (world schema {{version}} > {SCHEMA_VERSION}); "
                           "upgrade flame-bench or rebuild the world")
    if not isinstance(manifest.get("files"), dict):
        raise FlameError(f"{path}/manifest.json lists no files; {fix}")
    return manifest


@dataclass
class WorldDir:
    """A validated, complete world directory; data loads lazily."""

    path: Path
    manifest: dict[str, Any]

    @classmethod
    def open(cls, path: str | Path, verify: bool = True) -> WorldDir:
        path = Path(path)
        fix = f"rebuild it with `flame-bench world build --out {path} --force`"
        if path.is_file():
            raise FlameError(f"{path} is a file; pass the world's directory (the folder holding manifest.json)")
        if not path.is_dir():
            raise FlameError(f"no world at {path}; build one with `flame-bench world build --out {path}`")
        if not (path / "manifest.json").exists():
            raise FlameError(f"{path} is not a complete flame-bench world (no manifest.json); {fix}")
        _world_manifest(path, fix)  # a world's manifest: only then is a reader lock made beside the folder
        hold_for_reading(path)  # what is verified here is what this process reads until it ends
        manifest = _world_manifest(path, fix)  # read again under the lock: a build may have replaced it meanwhile
        files = manifest["files"]
        has_model = "base_model" in manifest or (path / MODEL_DIR).is_dir()  # data-only worlds exist in tests
        required = ["pools.json", *FILES.values(), *([f"{MODEL_DIR}/config.json"] if has_model else [])]
        missing = [rel for rel in required if rel not in files]
        weights = any(rel.startswith(f"{MODEL_DIR}/") and rel.endswith(".safetensors") for rel in files)
        if missing or (has_model and not weights):
            what = missing[0] if missing else "the model weights"
            raise FlameError(f"world {path}: its manifest does not list {what} (an incomplete or edited world); {fix}")
        for rel, digest in files.items():
            f = path / rel
            if not f.is_file():
                raise FlameError(f"world {path} is missing {rel}; {fix}")
            if verify and sha256_file(f) != digest:
                raise FlameError(f"world {path}: {rel} does not match its manifest hash (corrupt or edited); {fix}")
        return cls(path, manifest)

    def _read(self, key: str) -> list[dict[str, Any]]:
        return read_jsonl(self.path / FILES[key], key, SCHEMA_VERSION)

    @cached_property
    def pools(self) -> dict[str, tuple[str, ...]]:
        return {k: tuple(v) for k, v in read_json(self.path / "pools.json")["pools"].items()}

    @cached_property
    def grammar(self) -> Grammar:
        return Grammar(self.pools)

    @cached_property
    def people(self) -> list[dict[str, Any]]:
        return self._read("people")

    @cached_property
    def people_by_id(self) -> dict[str, dict[str, Any]]:
        return {p["id"]: p for p in self.people}

    @cached_property
    def people_by_name(self) -> dict[str, dict[str, Any]]:
        return {p["name"]: p for p in self.people}

    @cached_property
    def knowledge(self) -> list[dict[str, Any]]:
        return self._read("knowledge")

    def records(self, key: str) -> list[dict[str, Any]]:
        return self._read(key)

    @cached_property
    def content_sha256(self) -> str:
        """Identity of the world's content: every file's hash except the base model's build record (timings), so
        two builds of the same preset and seed on any machine have the same identity."""
        from flame_bench.core.io import sha256_json

        return sha256_json({rel: h for rel, h in self.manifest["files"].items() if rel not in TIMING_FILES})

    @property
    def model_dir(self) -> Path:
        return self.path / MODEL_DIR

    @property
    def preset_name(self) -> str:
        return str(self.manifest["preset"]["name"])
