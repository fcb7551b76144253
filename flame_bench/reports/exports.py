"""Run records in the field's own formats, so other tools can read (and recompute) what flame-bench measured.

`flame-bench export RUN --format F --out PATH`:
- `alpaca_eval`: the run's outputs as AlpacaEval model outputs (`[{instruction, output, generator}]`);
- `annotations`: a win-rate run's judgements as AlpacaEval annotations (`[{instruction, output_1, output_2,
  generator_1, generator_2, annotator, preference, raw_completion}]`, output_1 the reference, preference flipped back
  to that order, unparsable replies as NaN), which `alpaca_eval.metrics.get_winrate` turns into the run's win rate
  and standard error;
- `lm-eval`: a folder with lm-eval's results JSON (`results_<date>.json`: results, configs, versions, n-shot,
  n-samples, config) and one `samples_<task>_<date>.jsonl` per task, as `lm_eval --output_path --log_samples`
  writes them, in strict JSON (a NaN or infinite value is written as null, with a warning naming it);
- `factscore`: FActScore's `{topic, output}` JSONL of a factscore_bio run (its input format for `--input_path`),
  and `factscore-scored`: the same lines with the per-fact decisions FActScore's scorer returns
  (`{"atom": ..., "is_supported": ...}`).
The run record stays the source of truth: nothing here is ever read back into it.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

from flame_bench.core.errors import FlameError
from flame_bench.core.io import output_folder, write_text
from flame_bench.core.records import RunRecord, json_safe

BIO_PROMPT = re.compile(r"^\s*tell me a bio of\s+", re.IGNORECASE)  # FActScore's prompt, around the topic
FORMATS = ("alpaca_eval", "annotations", "lm-eval", "factscore", "factscore-scored")


def _generative_rows(record: RunRecord) -> list[dict[str, Any]]:
    rows = [{"instruction": s.get("instruction") or s.get("question", ""), "output": s.get("output", "")}
            for s in record.samples()]
    if not any(r["output"] for r in rows):
        raise FlameError(f"run {record.run_id} has no generated outputs (a {record.task} run); export a generative "
                         "run")
    return rows


def alpaca_eval_annotations(record: RunRecord) -> list[dict[str, Any]]:
    """AlpacaEval annotations of a win-rate run (see the module docstring)."""
    if record.header.get("task", {}).get("kind") != "pairwise" and "win_rate" not in record.metrics:
        raise FlameError(f"run {record.run_id} is a {record.task} run; annotations come from a win-rate run")
    judge = record.header.get("judge") or {}
    reference = (record.header.get("reference") or {}).get("name", "reference")
    out = []
    for s in record.samples():
        score = s.get("model_score")
        out.append({"instruction": s["instruction"], "output_1": s["reference_output"], "output_2": s["output"],
                    "generator_1": reference, "generator_2": record.header["model"]["name"],
                    "annotator": judge.get("name", "judge"),
                    "preference": math.nan if score is None else 1.0 + float(score),
                    "raw_completion": s.get("raw"), "dataset": s.get("kind")})
    return out


def lm_eval_results(record: RunRecord) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(lm-eval results JSON, lm-eval samples) for one run."""
    header = record.header
    task = header.get("extra", {}).get("lm_eval_task") or record.task
    metrics: dict[str, Any] = {"alias": task}
    for key, value in record.metrics.items():
        metrics[f"{key},none"] = value
        metrics[f"{key}_stderr,none"] = "N/A"  # flame-bench reports bootstrap CIs (below), not lm-eval stderrs
    if "standard_error" in record.metrics:
        metrics["win_rate_stderr,none"] = record.metrics["standard_error"]
    for key, (lo, hi) in (header.get("confidence_intervals") or {}).items():
        metrics[f"{key}_ci95,none"] = [lo, hi]
    model = header["model"]
    results = {
        "results": {task: metrics},
        "group_subtasks": {task: []},
        "configs": {task: {"task": task, "flame_bench_task": record.task, "task_version": header["task"]["version"],
                           "output_type": "multiple_choice" if header["task"]["kind"] == "loglikelihood"
                           else "generate_until", "generation_kwargs": header.get("generation"),
                           "metadata": {"config_hash": header.get("config_hash"),
                                        "task_config_hash": header.get("extra", {}).get("task_config_hash")}}},
        "versions": {task: header["task"]["version"]},
        "n-shot": {task: 0},
        "higher_is_better": {task: {m["key"]: m["higher_is_better"] for m in header.get("metric_info", [])}},
        "n-samples": {task: {"original": header["counts"].get("items"), "effective": header["counts"].get("items")}},
        "config": {"model": "flame-bench", "model_args": f"pretrained={model['path']}", "model_sha256": model["sha256"],
                   "judge": header.get("judge"), "seed": header.get("seed"), "limit": header.get("limit")},
        "git_hash": header.get("environment", {}).get("git_commit"),
        "date": header.get("created"),
        "model_name": model["name"],
    }
    samples = []
    for i, s in enumerate(record.samples()):
        row: dict[str, Any] = {"doc_id": i, "doc": {k: v for k, v in s.items() if k not in ("loglikelihoods",)},
                               "target": 0}
        if "loglikelihoods" in s:  # multiple choice: one request per choice; greedy flags are not recorded (null)
            row.update(arguments=[[s["question"], f" {c}"] for c in s["choices"]],
                       resps=[[[ll, None]] for ll in s["loglikelihoods"]],
                       filtered_resps=[[ll, None] for ll in s["loglikelihoods"]], acc=s.get("score"))
        else:
            row.update(arguments=[[s.get("instruction") or s.get("question", "")]], resps=[[s.get("output", "")]],
                       filtered_resps=[s.get("output", "")], score=s.get("score", s.get("model_score")))
        samples.append(row)
    return results, samples


def factscore_lines(record: RunRecord, scored: bool = False) -> list[dict[str, Any]]:
    """FActScore's `{topic, output}` lines of a factscore_bio run (with the per-fact decisions when `scored`)."""
    from flame_bench.core.registry import TASKS

    bio_tasks = [n for n in TASKS.names() if "factscore" in TASKS.get(n).imports]  # the task of FActScore's format
    if record.task not in bio_tasks:
        raise FlameError(f"run {record.run_id} is a {record.task} run; FActScore's format is for "
                         f"{' or '.join(bio_tasks) or 'biography'} runs")
    out = []
    for s in record.samples():
        topic = s.get("topic") or BIO_PROMPT.sub("", s.get("instruction", "")).rstrip(".?! ")
        line: dict[str, Any] = {"topic": topic, "output": s["output"]}
        if scored:
            line["decisions"] = None if s.get("abstained") else [
                {"atom": f["text"], "is_supported": bool(f["supported"])} for f in s.get("facts", [])]
        out.append(line)
    return out


def export(record: RunRecord, fmt: str, out: Path) -> str:
    """Write `record` in format `fmt` to `out`; returns a one-line summary."""
    from flame_bench.core.errors import unknown_name
    from flame_bench.real.alpaca_format import write_alpaca_eval

    if fmt not in FORMATS:
        raise unknown_name("export format", fmt, FORMATS)
    if fmt == "alpaca_eval":
        n = write_alpaca_eval(out, _generative_rows(record), generator=record.header["model"]["name"])
        return f"{n} outputs -> {out}"
    if fmt == "annotations":
        rows = alpaca_eval_annotations(record)
        write_text(out, json.dumps(rows, indent=2, ensure_ascii=False, allow_nan=True) + "\n")
        return f"{len(rows)} annotations -> {out}"
    if fmt in ("factscore", "factscore-scored"):
        lines = factscore_lines(record, scored=fmt == "factscore-scored")
        _write_lines(out, lines)
        return f"{len(lines)} FActScore lines -> {out}"
    found: list[str] = []  # lm-eval's readers parse strict JSON: a non-finite value is written as null, and named
    results, samples = lm_eval_results(record)
    results, samples = json_safe(results, "results", found), json_safe(samples, "samples", found)
    task = next(iter(results["results"]))
    stamp = (record.header.get("created") or "run").replace(":", "-")
    output_folder(out, "export --format lm-eval")
    write_text(out / f"results_{stamp}.json", json.dumps(results, indent=2, ensure_ascii=False, allow_nan=False) + "\n")
    _write_lines(out / f"samples_{task}_{stamp}.jsonl", samples)
    if found:
        from flame_bench.core.ui import console

        console.print(f"[yellow]warning:[/yellow] run {record.run_id} holds values that are not numbers, written as "
                      f"null: {'; '.join(found)}", highlight=False)
    return f"lm-eval results and {len(samples)} samples -> {out}"


def _write_lines(path: Path, rows: list[dict[str, Any]]) -> None:
    """Header-less JSONL, as the other tools read it (flame-bench's own files start with a schema line)."""
    write_text(path, "".join(json.dumps(x, ensure_ascii=False) + "\n" for x in rows))
