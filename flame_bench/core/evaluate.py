"""The evaluator: model + tasks + source -> run records.

For each task: `load` its items from the source (the first `limit` of them), `generate` the model's outputs
through the cached generator, `score` them, and write one run record. `rescore` repeats only the last step on a
saved record's outputs. Reports only ever read the records.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from flame_bench.core.errors import FlameError
from flame_bench.core.io import sha256_json
from flame_bench.core.paths import check_name, generation_cache_path
from flame_bench.core.paths import runs_dir as default_runs_dir
from flame_bench.core.provenance import environment
from flame_bench.core.records import RunRecord, load_run, run_dir_name, write_run
from flame_bench.core.registry import TASKS
from flame_bench.core.source import Reference, open_source
from flame_bench.core.task_api import DEFAULT_LM_BACKEND, EvalContext, Generations, Task, TaskResult
from flame_bench.core.ui import console
from flame_bench.engines.generation import (
    PROMPT_FORMAT_VERSIONS,
    GenerationConfig,
    Generator,
    backend_identity,
    current_generation_backend,
)
from flame_bench.engines.generation_cache import GenerationCache
from flame_bench.engines.models import ModelHandle, model_kind, resolve_model

EVAL_GENERATION = GenerationConfig(max_new_tokens=128, batch_size=64)


def resolve_reference(ref: str, source, generator_for, runs_dir: Path, name: str | None = None) -> Reference:
    """`human` (the references that come with the source's evaluation set), a run record, or a model (its outputs
    are generated)."""
    if ref == "human":
        return source.dataset_reference()
    path = Path(ref)
    if (path / "run.json").is_file() or (runs_dir / ref / "run.json").is_file():
        run = load_run(ref, runs_dir)
        if not _answers_reference_items(run.task):
            raise FlameError(f"reference run {run.run_id} is a {run.task} run; pass a run of {_pairwise_names()}, "
                             "a model, or 'human'")
        outputs = {s["id"]: s["output"] for s in run.samples()}
        return Reference(run.header["model"]["name"], {"kind": "run", "run_id": run.run_id,
                                                        "model_sha256": run.header["model"]["sha256"]}, outputs)
    items = source.eval_set("alpaca").items
    try:
        model = resolve_model(ref, source)
    except FlameError as e:
        runs = sorted(p.name for t in _pairwise_names().split(" or ") for p in runs_dir.glob(f"{t}__*")
                      ) if runs_dir.is_dir() else []
        example = f" (e.g. {runs[-1]})" if runs else ""
        raise FlameError(f"--reference {ref!r} is not 'human', a run id under {runs_dir}{example} nor a model "
                         f"({e})") from None
    outs = generator_for(model)([it["instruction"] for it in items])
    return Reference(name or model.name, {"kind": "model", "model": str(model.path), "model_sha256": model.sha256},
                     {it["id"]: o for it, o in zip(items, outs, strict=True)})


def task_quality(task: Task, source, quiet: bool = True) -> dict[str, Any]:
    """The measured quality of every evaluator `task`'s metrics rest on (`Task.evaluators`), as records carry it;
    a weak one is named on the console."""
    from dataclasses import asdict

    from flame_bench.scoring.quality import evaluator_quality

    found = evaluator_quality(source, task.evaluators, quiet)
    for q in found.values():
        if q.verdict == "weak":
            console.print(f"[yellow]warning:[/yellow] {task.name}: {q.note()}; its numbers are not meaningful",
                          highlight=False)
    return {role: asdict(q) for role, q in found.items()}


def _answers_reference_items(task_name: str) -> bool:
    """Whether a run of `task_name` answered the instructions a pairwise reference covers (the source's "alpaca"
    evaluation set), so its outputs can serve as one."""
    return task_name in TASKS and TASKS.get(task_name).data == "alpaca"


def _pairwise_names() -> str:
    return " or ".join(n for n in TASKS.names() if TASKS.get(n).kind == "pairwise") or "a pairwise task"


def _header(task: Task, model: ModelHandle, source, generation: GenerationConfig, result: TaskResult,
            reference: Reference | None, seed: int, limit: int | None, t0: float,
            backend: dict[str, Any] | None = None) -> dict[str, Any]:
    gen = None if task.kind == "loglikelihood" else generation.to_dict() | ({"backend": backend} if backend else {})
    spec = {
        "task": {"name": task.name, "version": task.version, "kind": task.kind},
        "model": {"name": model.name, "path": str(model.path), "sha256": model.sha256,
                  "prompt_format": model_kind(model.path)},
        "source": source.fingerprint,
        "generation": gen,  # with the generation backend when not hf (hf records keep their hashes)
        "judge": result.judge,
        "reference": reference.identity | {"name": reference.name} if reference and task.needs_reference else None,
        "seed": seed,
        "limit": limit,
    }
    return {
        **spec,
        "config_hash": sha256_json(spec),
        "source_spec": source.spec,  # where the source was opened from (paths): not part of the config's identity
        "prompt_versions": {"prompt_format": PROMPT_FORMAT_VERSIONS[model_kind(model.path)],
                            **result.prompt_versions},
        "primary_metric": task.primary_metric,
        "metric_info": [m.__dict__ for m in task.metrics],
        "metrics": result.metrics,
        "confidence_intervals": {k: list(v) for k, v in result.confidence_intervals.items()},
        "breakdown": result.breakdown,
        "counts": result.counts,
        "extra": result.extra,
        "environment": environment(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "duration_seconds": round(time.perf_counter() - t0, 2),
    }


def evaluate(model_ref: str, task_names: list[str], source, reference: str = "human", limit: int | None = None,
             seed: int = 0, generation: GenerationConfig = EVAL_GENERATION, runs_dir: Path | None = None,
             cache_path: Path | None = None, quiet: bool = False, model_name: str | None = None,
             reference_name: str | None = None, lm_backend: str = DEFAULT_LM_BACKEND, lm_batch_size: int = 32
             ) -> list[RunRecord]:
    """Evaluate `model_ref` on every task over `source`; returns the run records written. `lm_backend` and
    `lm_batch_size`: what scores log-likelihood tasks (see tasks/truthfulqa/task.py's LM_BACKENDS)."""
    if limit is not None and limit < 1:
        raise FlameError(f"--limit must be a positive number of items, got {limit}")
    runs_dir = runs_dir or default_runs_dir()
    tasks: list[Task] = [TASKS.get(name) for name in dict.fromkeys(task_names)]  # all names checked first
    model = resolve_model(model_ref, source)
    source.check_model(model.path)  # e.g. a model of another world, whose tokenizer cannot read this one's text
    if model_name:
        model.name = model_name  # e.g. the system whose stage directory this is
    generators: dict[str, Generator] = {}
    caches: list[GenerationCache] = []  # opened on first use: bad input never leaves a cache file behind

    def generator_for(m: ModelHandle) -> Generator:
        if not caches:
            caches.append(GenerationCache(cache_path or generation_cache_path()))
        if m.sha256 not in generators:
            generators[m.sha256] = Generator(m, generation, caches[0], quiet)
        return generators[m.sha256]

    ref = None
    if any(t.needs_reference for t in tasks):
        ref = resolve_reference(reference, source, generator_for, runs_dir, reference_name)
    records = []
    try:
        for task in tasks:
            t0 = time.perf_counter()
            ctx = EvalContext(source=source, model=model, generation=generation, seed=seed,
                              reference=ref if task.needs_reference else None, quiet=quiet,
                              lm_backend=lm_backend, lm_batch_size=lm_batch_size,
                              generate=lambda instructions: generator_for(model)(instructions))
            every = task.load(ctx)
            items = every[:limit]
            cut = limit if limit is not None and limit < len(every) else None  # a limit covering all is no limit
            result = task.score(ctx, task.generate(ctx, items))
            header = _header(task, model, source, generation, result, ctx.reference, seed, cut, t0,
                             backend_identity(current_generation_backend()))
            header["evaluator_quality"] = task_quality(task, source, quiet)
            record = write_run(runs_dir, run_dir_name(task.name, model.name, header["config_hash"]), header,
                               result.samples)
            records.append(record)
            if not quiet:
                console.print(f"[green]{task.name}[/green] -> {record.path}")
        if not quiet and caches:
            console.print(f"generation cache: {caches[0].hits} hits, {caches[0].misses} generated")
    finally:
        for cache in caches:
            cache.close()
    return records


def rescore(run_ref: str, source=None, runs_dir: Path | None = None, quiet: bool = True) -> RunRecord:
    """Score a saved run's outputs again (no generation): with today's scorer and judge, or another source's
    evaluators. Writes a record beside it (the same directory when nothing about the scoring changed)."""
    runs_dir = runs_dir or default_runs_dir()
    run = load_run(run_ref, runs_dir)
    h = run.header
    if "imported_from" in h:  # its items were made from the imported file, which the record does not hold
        raise FlameError(f"run {run.run_id} was imported, so it is rescored by importing its file again: "
                         f"`flame-bench import {h['imported_from'].get('path', 'FILE')} --name {h['model']['name']} "
                         "--knowledge ...` (with --llm / --verifier to re-judge)")
    task = TASKS.get(run.task)
    source = source or open_source(h.get("source_spec"))
    model = ModelHandle(name=h["model"]["name"], path=Path(h["model"]["path"]), sha256=h["model"]["sha256"])
    samples = run.samples()
    reference = None
    if task.needs_reference:
        r = h.get("reference") or {}
        reference = Reference(r.get("name", "reference"), {k: v for k, v in r.items() if k != "name"},
                              {s["id"]: s["reference_output"] for s in samples})
    ctx = EvalContext(source=source, model=model, seed=h["seed"], reference=reference, quiet=quiet,
                      # log-likelihoods are the record's own: keep what scored them (records before it was named: hf)
                      lm_backend=(h.get("judge") or {}).get("lm_backend", "hf"))
    by_id = {it["id"]: it for it in task.load(ctx)}
    missing = [s["id"] for s in samples if s["id"] not in by_id]
    if missing:
        raise FlameError(f"run {run.run_id} has items the source does not ({len(missing)}, e.g. {missing[0]}); "
                         "re-score it against the data it was evaluated on")
    gens = Generations([by_id[s["id"]] for s in samples], task.outputs_from_samples(samples),
                       [s["reference_output"] for s in samples] if task.needs_reference else None)
    t0 = time.perf_counter()
    result = task.score(ctx, gens)
    saved = dict(h.get("generation") or {})
    backend = saved.pop("backend", None)  # what generated the outputs stays on the record
    generation = GenerationConfig(**saved) if saved else EVAL_GENERATION
    header = _header(task, model, source, generation, result, reference, h["seed"], h.get("limit"), t0, backend)
    header["rescored_from"] = run.run_id
    header["evaluator_quality"] = task_quality(task, source, quiet)
    return write_run(runs_dir, run_dir_name(task.name, model.name, header["config_hash"]), header, result.samples)




def import_outputs(path: Path, fmt: str, source, name: str, seed: int = 0, runs_dir: Path | None = None
                   ) -> RunRecord:
    """Score outputs written elsewhere as a run of `name`: FActScore's `{topic, output}` JSONL (its input format)
    becomes a factscore_bio run over `source`'s knowledge and evaluators. The record names the file (and its
    sha256) instead of a model; nothing is generated."""
    from flame_bench.core.errors import unknown_name
    from flame_bench.core.io import iter_json_lines, sha256_file
    from flame_bench.scoring.factscore import FACTSCORE_K, score_generations, unknown_topics

    formats = {f: t for t in TASKS.names() for f in TASKS.get(t).imports}
    if fmt not in formats:
        raise unknown_name("import format", fmt, formats)
    if path.is_dir():
        raise FlameError(f"{path} is a directory; pass the FActScore {{topic, output}} JSONL file itself")
    if not path.is_file():
        raise FlameError(f"{path} does not exist; pass FActScore's {{topic, output}} JSONL")
    check_name(name, "--name")
    items, outputs, lines = [], [], {}
    for lineno, row in iter_json_lines(path, 'each line must be {"topic": ..., "output": ...}'):
        if not isinstance(row, dict) or not isinstance(row.get("topic"), str) or not isinstance(row.get("output"), str):
            raise FlameError(f"{path}:{lineno}: needs a string 'topic' and a string 'output' (FActScore's format)")
        if row["topic"] in lines:  # it would count twice in the mean
            raise FlameError(f"{path}:{lineno}: topic {row['topic']!r} is also on line {lines[row['topic']]}; keep "
                             "one output per topic")
        lines[row["topic"]] = lineno
        items.append({"id": f"imported{len(items):05d}", "instruction": f"Tell me a bio of {row['topic']}.",
                      "topics": [row["topic"]], "name": row["topic"], "group": "all"})
        outputs.append(row["output"])
    if not items:
        raise FlameError(f"{path} has no lines; nothing to score")
    task = TASKS.get(formats[fmt])  # the task that declares it scores outputs in this format
    model = ModelHandle(name=name, path=path.resolve(), sha256=sha256_file(path))
    ctx = EvalContext(source=source, model=model, seed=seed)
    scorer = source.factscorer(FACTSCORE_K)
    absent = [t for it in items for t in unknown_topics(scorer.source, it["topics"])]
    if len(absent) == len(items):
        raise FlameError(f"none of the {len(items)} topics of {path} has a page in the knowledge source (e.g. "
                         f"{absent[0]!r}); pass the --knowledge the outputs are about")
    t0 = time.perf_counter()
    result = score_generations(ctx, Generations(items, outputs), scorer)  # absent topics: left out, counted
    result.prompt_versions["instruction"] = "imported"
    header = _header(task, model, source, EVAL_GENERATION, result, None, seed, None, t0)
    header["model"]["prompt_format"] = "imported"
    header["prompt_versions"]["prompt_format"] = f"imported:{fmt}"
    header["imported_from"] = {"path": str(path.resolve()), "format": fmt, "sha256": model.sha256}
    return write_run(runs_dir or default_runs_dir(), run_dir_name(task.name, name, header["config_hash"]), header,
                     result.samples)


def rescoring_source(ref: str, llm: str | None = None, verifier: str | None = None,
                     world_judge: str | None = None):
    """The source `rescore` judges run `ref` with: None (the run's own, reopened from its record), or its source
    with other evaluators: real data with another `llm` or `verifier`, a fact world with another pairwise judge."""
    from flame_bench.core.source import open_source

    if llm is None and verifier is None and world_judge is None:
        return None
    spec = dict(load_run(ref).header.get("source_spec") or {})
    if llm is not None or verifier is not None:
        if spec.get("kind") != "real":
            raise FlameError("--llm / --verifier re-judge real data; a fact-world run is scored by the world's own "
                             "programs")
        roles = {} if llm is not None else dict(spec.get("roles") or {})
        if verifier is not None:
            roles["verifier"] = verifier
        spec = {**spec, **({"llm": llm} if llm is not None else {}), "roles": roles}
    if world_judge is not None:
        if spec.get("kind") != "fact-world":
            raise FlameError("--world-judge re-judges fact-world runs; for real data pass --llm")
        spec = {**spec, "judge": world_judge}
    return open_source(spec)
