"""Atomic, versioned file I/O shared by every stage.

JSONL files start with a header line `{"__schema__": NAME, "version": N}`; readers check both and name the
line number of any malformed line. Every write goes to a temporary file in the same directory and is
renamed into place, so a crash never leaves a half-written file behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from flame_bench.core.errors import FlameError


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path next to `path`; rename it onto `path` only if the block succeeds. Only a regular
    file is ever replaced: a symlink, directory or device at `path` is refused."""
    if path.is_symlink() or (path.exists() and not path.is_file()):
        raise FlameError(f"{path} exists and is not a regular file (a link, directory or device); choose another path")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise FlameError(f"cannot create {path.parent} ({e.strerror}); choose a writable location") from None
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())  # what open() would give; mkstemp's files are owner-only
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def output_folder(path: Path, what: str) -> Path:
    """`path` as the folder `what` writes into, created if needed; a file (or link) there is a one-line error."""
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        raise FlameError(f"{path} exists and is not a folder; {what} writes a folder of files: pass a folder path")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise FlameError(f"cannot create {path} ({e.strerror}); choose a writable location") from None
    return path


def write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: Path, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FlameError(f"{path}: file not found") from None
    except json.JSONDecodeError as e:
        raise FlameError(f"{path}: not valid JSON (line {e.lineno}: {e.msg})") from None


def write_jsonl(path: Path, schema: str, version: int, records: Iterable[dict[str, Any]]) -> None:
    with atomic_path(path) as tmp, tmp.open("w", encoding="utf-8") as f:
        f.write(json.dumps({"__schema__": schema, "version": version}) + "\n")
        for rec in records:
            f.write(json.dumps(rec, ensure_ascii=False, sort_keys=True) + "\n")


def iter_json_lines(path: Path, fix: str = "fix the line or drop it",
                    problem: str = "not valid JSON") -> Iterator[tuple[int, Any]]:
    """(line number, value) of each non-blank line of a JSONL file; a bad line is one error naming it and `fix`."""
    with path.open("rb") as f:  # decoded line by line, so a decoding error names its own line
        for lineno, raw in enumerate(f, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise FlameError(f"{path}:{lineno}: not UTF-8 text; save the file as UTF-8") from None
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as e:
                raise FlameError(f"{path}:{lineno}: {problem} ({e.msg}); {fix}") from None
            yield lineno, value


def read_jsonl(path: Path, schema: str, max_version: int) -> list[dict[str, Any]]:
    """Read a versioned JSONL file (header line first); errors name the file, the line and the fix."""
    if not path.exists():
        raise FlameError(f"{path}: file not found")
    records: list[dict[str, Any]] = []
    for lineno, obj in iter_json_lines(path, "fix or regenerate it", "malformed JSON line"):
        if lineno == 1:
            if not isinstance(obj, dict) or obj.get("__schema__") != schema:
                raise FlameError(f"{path}:1: expected a '{schema}' header line; not a flame-bench {schema} file")
            if int(obj.get("version", 0)) > max_version:
                raise FlameError(f"{path}: schema version {obj['version']} is newer than this flame-bench supports "
                                 f"({max_version}); upgrade flame-bench or rebuild the file")
            continue
        if not isinstance(obj, dict):
            raise FlameError(f"{path}:{lineno}: expected a JSON object")
        records.append(obj)
    return records


@contextmanager
def locked(path: Path, purpose: str = "lock") -> Iterator[None]:
    """An exclusive lock on `path`'s sibling `.NAME.PURPOSE` (held across processes; released on exit or crash).
    Locks of different purposes on one path are independent (a stage holds its build lock while it publishes)."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with (path.parent / f".{path.name}.{purpose}").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextmanager
def _locked_dir(folder: Path) -> Iterator[None]:
    """An exclusive lock on a directory itself (no lock file left behind); renames inside it are quick."""
    import fcntl

    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def staging_dir(final: Path) -> Path:
    """A fresh hidden directory next to `final` to build it in (unique: two builders never share one), with the
    permissions a plain mkdir would give (mkdtemp's are owner-only)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".partial", dir=final.parent))
    path.chmod(0o777 & ~_umask())
    return path


def publish_dir(staging: Path, final: Path) -> None:
    """Move a finished staging directory onto `final`, replacing any previous one, under a lock: readers never see
    a half state and two publishers never interleave their renames."""
    import shutil

    with _locked_dir(final.parent):
        old = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".old", dir=final.parent))
        old.rmdir()
        if final.exists():
            final.rename(old)
        staging.rename(final)
        if old.exists():
            shutil.rmtree(old)


@contextmanager
def published_dir(final: Path) -> Iterator[Path]:
    """Build a directory in a fresh staging directory (yielded) and publish it onto `final` when the block ends
    without an error; the staging directory is removed either way, so a failed build leaves nothing behind."""
    import shutil

    staging = staging_dir(final)
    try:
        yield staging
        publish_dir(staging, final)
    finally:
        if staging.exists():
            shutil.rmtree(staging)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def sha256_json(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def verify_pinned(path: Path, expected_sha256: str, requirement: str) -> str:
    """Check a downloaded release file against its pinned sha256; returns the digest."""
    if not path.is_file():
        raise FlameError(f"{path} does not exist; pass the downloaded file of {requirement}")
    digest = sha256_file(path)
    if digest != expected_sha256:
        raise FlameError(f"{path.name} has sha256 {digest[:16]}…, expected {expected_sha256[:16]}… for "
                         f"{requirement}; the file is corrupt or not the pinned release")
    return digest


def check_output_dir(out: Path, force: bool, what: str) -> bool:
    """Refuse an `--out` that is a file, or a non-empty folder without --force, in one line each. True when `out`
    is a non-empty folder --force may replace once the caller has checked it holds a `what` (a world, a model)."""
    if out.exists() and not out.is_dir():
        raise FlameError(f"{out} exists and is not a directory; choose another --out")
    if out.is_dir() and any(out.iterdir()):
        if not force:
            raise FlameError(f"{out} is not empty; pass --force to replace the {what} there or choose another --out")
        return True
    return False


def checked_schema_version(header: Any, supported: int, missing: str, newer: str) -> int:
    """The `schema_version` of a JSON header (a run record, a world manifest): one line `missing` when it has none,
    `newer` (formatted with {version}) when this flame-bench cannot read it."""
    version = header.get("schema_version") if isinstance(header, dict) else None
    if not isinstance(version, int):
        raise FlameError(missing)
    if version > supported:
        raise FlameError(newer.format(version=version))
    return version
