"""Run records: one directory per evaluation with a small `run.json` header and streamed `samples.jsonl`.

    results/runs/<task>__<model>__<config hash>/
        run.json       schema version, task + version, model identity, world, generation config, judge, prompt
                       versions, seed, git commit, package versions, metrics with 95% CIs, counts, breakdown
        samples.jsonl  one line per item: prompt, output, per-item scores and their evidence

The directory name derives from the config hash, so the same evaluation re-run lands in the same place. A
record is built in a hidden staging directory and renamed into place: readers only ever see whole records.
`run.json` loads without reading the samples; reports are pure functions of these files.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from flame_bench.core.errors import FlameError
from flame_bench.core.io import checked_schema_version, published_dir, read_json, read_jsonl, write_json, write_jsonl
from flame_bench.core.paths import runs_dir as runs_path

RUN_SCHEMA_VERSION = 1


@dataclass
class RunRecord:
    path: Path
    header: dict[str, Any]

    @property
    def task(self) -> str:
        return str(self.header["task"]["name"])

    @property
    def run_id(self) -> str:
        return self.path.name

    @property
    def metrics(self) -> dict[str, float | None]:
        return self.header["metrics"]

    def samples(self) -> list[dict[str, Any]]:
        return read_jsonl(self.path / "samples.jsonl", "samples", RUN_SCHEMA_VERSION)


def model_label(header: dict[str, Any]) -> str:
    """Whose outputs a run shows: the model's name, plus the serving endpoint when another server generated them
    (`--generation URL`), so a served model never shares or replaces the local model's row. No credentials: the
    URL's user part is dropped (the record holds it redacted already)."""
    name = str(header["model"]["name"])
    backend = (header.get("generation") or {}).get("backend") or {}
    if backend.get("kind") in (None, "hf") or not (backend.get("base_url") or backend.get("model")):
        return name  # the local weights (hf, or vllm on the same files)
    parts = urlsplit(str(backend.get("base_url") or ""))
    url = urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", "")) if parts.netloc else ""
    return f"{name} [gen: {backend.get('model') or backend['kind']}{'@' + url if url else ''}]"


def invalid_value(value: object) -> str | None:
    """"nan", "inf" or "-inf" for a non-finite float (which no view may show as a number), else None."""
    return str(value) if isinstance(value, float) and not math.isfinite(value) else None


def json_safe(obj: Any, where: str = "", found: list[str] | None = None) -> Any:
    """`obj` as strict JSON can hold it: every non-finite float becomes None, its path (e.g. `results.x.m`) and value
    named in `found`."""
    if isinstance(obj, dict):
        return {k: json_safe(v, f"{where}.{k}" if where else str(k), found) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(v, f"{where}[{i}]", found) for i, v in enumerate(obj)]
    if (bad := invalid_value(obj)) is not None:
        if found is not None:
            found.append(f"{where}: {bad}")
        return None
    return obj


def run_dir_name(task: str, model: str, config_hash: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", model).strip("-") or "model"
    return f"{task}__{safe}__{config_hash[:12]}"


def write_run(root: Path, name: str, header: dict[str, Any], samples: list[dict[str, Any]]) -> RunRecord:
    final = root / name
    header = {"schema_version": RUN_SCHEMA_VERSION, **header}
    with published_dir(final) as staging:  # unique: two runs writing the same record never share a staging directory
        write_jsonl(staging / "samples.jsonl", "samples", RUN_SCHEMA_VERSION, samples)
        write_json(staging / "run.json", header)
    return RunRecord(final, header)


def load_run(ref: str | Path, runs_dir: Path | None = None) -> RunRecord:
    """A run by directory path or by name under `runs_dir`."""
    runs_dir = runs_dir or runs_path()
    path = Path(ref)
    if not path.exists() and (runs_dir / str(ref)).exists():
        path = runs_dir / str(ref)
    if not (path / "run.json").is_file():
        raise FlameError(f"no run record at {ref} (expected a directory with run.json); see `flame-bench report`")
    header = read_json(path / "run.json")
    checked_schema_version(header, RUN_SCHEMA_VERSION, f"{path}/run.json is not a flame-bench run record",
                           f"{path} was written by a newer flame-bench (run schema {{version}}); upgrade flame-bench")
    problem = _header_problem(header)
    if problem:
        raise FlameError(f"{path}/run.json is damaged ({problem}); delete the run or re-run its evaluation")
    return RunRecord(path, header)


def _header_problem(header: dict[str, Any]) -> str | None:
    """What makes a run header unusable by reports, if anything."""
    if not isinstance(header.get("task"), dict) or not isinstance(header["task"].get("name"), str):
        return "no task name"
    if not isinstance(header.get("model"), dict) or not isinstance(header["model"].get("name"), str):
        return "no model name"
    metrics = header.get("metrics")
    if not isinstance(metrics, dict):
        return "no metrics"
    bad = [k for k, v in metrics.items() if v is not None and (isinstance(v, bool) or not isinstance(v, int | float))]
    return f"metric {bad[0]!r} is not a number" if bad else None


def list_runs(runs_dir: Path | None = None, skipped: list[str] | None = None) -> list[RunRecord]:
    """Every readable run record; a damaged one is skipped (and named in `skipped`), never fatal to a report of
    the others."""
    runs_dir = runs_dir or runs_path()
    if not runs_dir.is_dir():
        return []
    out = []
    for p in sorted(runs_dir.iterdir()):
        if p.name.startswith(".") or not (p / "run.json").is_file():
            continue
        try:
            out.append(load_run(p))
        except FlameError as e:
            if skipped is not None:
                skipped.append(str(e))
    return out
