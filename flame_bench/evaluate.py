"""The evaluator: model + tasks + world -> run records.

For each task it builds an `EvalContext` whose `generate(instructions)` formats prompts for the model
(a world base model is prompted in its corpus' Q&A form, anything else through its chat template), serves
completions from the content-addressed cache and generates only what is missing, in batches. Each task's
`TaskResult` is written as one run record; reports only ever read those records.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from flame_bench.cache import GenerationCache
from flame_bench.errors import FlameError
from flame_bench.generation import GenerationConfig, generate
from flame_bench.io import sha256_json
from flame_bench.models import model_kind, resolve_model
from flame_bench.provenance import environment
from flame_bench.records import RUNS_DIR, RunRecord, load_run, run_dir_name, write_run
from flame_bench.registry import TASKS
from flame_bench.task_api import EvalContext, ModelHandle, Task
from flame_bench.ui import console

CACHE_DIR = Path("results/cache")
QA_PROMPT = "Question: {instruction} Answer:"  # how the world's base model saw questions in pretraining
PROMPT_FORMAT_VERSIONS = {"pretrained": "qa-v1", "chat": "chat-template-v1"}
EVAL_GENERATION = GenerationConfig(max_new_tokens=128, batch_size=64)


def format_prompts(tokenizer, kind: str, instructions: list[str]) -> list[str]:
    if kind == "pretrained":
        return [QA_PROMPT.format(instruction=i) for i in instructions]
    return [tokenizer.apply_chat_template([{"role": "user", "content": i}], tokenize=False,
                                          add_generation_prompt=True) for i in instructions]


class Generator:
    """Cached, batched generation for one model under one decoding config."""

    def __init__(self, model: ModelHandle, config: GenerationConfig, cache: GenerationCache, quiet: bool):
        self.model, self.config, self.cache, self.quiet = model, config, cache, quiet
        self.kind = model_kind(model.path)

    def complete(self, prompts: list[str], add_special_tokens: bool | None = None) -> list[list[str]]:
        """All sampled completions of raw `prompts`, from the cache or generated in batches."""
        special = self.kind == "pretrained" if add_special_tokens is None else add_special_tokens
        cfg = {**self.config.to_dict(), "add_special_tokens": special}
        cfg.pop("batch_size")  # batching does not change greedy outputs; keep it out of the key

        def produce(todo: list[str]) -> list[list[str]]:
            model, tok = self.model.load()
            return generate(model, tok, todo, self.config, quiet=self.quiet,
                            description=f"generating ({self.model.name})", add_special_tokens=special)

        return self.cache.generate(self.model.sha256, cfg, prompts, produce)

    def samples(self, instructions: list[str]) -> list[list[str]]:
        tok = self.model.load()[1] if self.kind == "chat" else None
        return self.complete(format_prompts(tok, self.kind, instructions))

    def __call__(self, instructions: list[str]) -> list[str]:
        return [outs[0] for outs in self.samples(instructions)]


@dataclass
class Reference:
    """The reference system of a pairwise task: item id -> output."""

    name: str
    identity: dict[str, Any]
    outputs: dict[str, str]


def resolve_reference(ref: str, world, items_key: str, generator_for, runs_dir: Path,
                      name: str | None = None) -> Reference:
    """`human` (the world's human responses), a run record, or a model (its outputs are generated)."""
    items = world.records(items_key)
    if ref == "human":
        return Reference("human", {"kind": "human responses", "world": world.path.name},
                         {it["id"]: it["response"] for it in items})
    path = Path(ref)
    if (path / "run.json").is_file() or (runs_dir / ref / "run.json").is_file():
        run = load_run(ref, runs_dir)
        if run.task not in ("alpaca_winrate", "alpaca_fact"):
            raise FlameError(f"reference run {run.run_id} is a {run.task} run; pass an alpaca_winrate run, "
                             "a model, or 'human'")
        outputs = {s["id"]: s["output"] for s in run.samples()}
        return Reference(run.header["model"]["name"], {"kind": "run", "run_id": run.run_id,
                                                        "model_sha256": run.header["model"]["sha256"]}, outputs)
    model = resolve_model(ref, world)
    gen = generator_for(model)
    outs = gen([it["instruction"] for it in items])
    return Reference(name or model.name, {"kind": "model", "model": str(model.path), "model_sha256": model.sha256},
                     {it["id"]: o for it, o in zip(items, outs, strict=True)})


def alpaca_eval_items(path: str | Path | None) -> list[dict[str, Any]]:
    """Instructions of an AlpacaEval-format JSON file as task items (ids by position, `dataset` as kind)."""
    from flame_bench.alpaca_format import read_alpaca_eval

    if not path:
        raise FlameError("alpaca_winrate without a fact world needs --alpaca-eval FILE: AlpacaEval-format JSON "
                         "(a list of {instruction, output, generator}) whose outputs are the reference")
    return [{"id": f"alpaca-{i:04d}", "instruction": r["instruction"], "kind": r.get("dataset", ""),
             "reference_output": r["output"], "reference_generator": r.get("generator", "reference")}
            for i, r in enumerate(read_alpaca_eval(Path(path)))]


def reference_from_alpaca_eval(path: str | None, reference: str) -> Reference:
    """The real path's reference: the outputs in an AlpacaEval-format file (AlpacaEval's own convention)."""
    if reference != "human":
        raise FlameError("on real data the reference is the outputs in the --alpaca-eval file; drop --reference")
    items = alpaca_eval_items(path)
    from flame_bench.io import sha256_file

    generators = sorted({it["reference_generator"] for it in items})
    return Reference("/".join(generators) or "reference",
                     {"kind": "alpaca_eval file", "path": str(path), "sha256": sha256_file(Path(str(path)))},
                     {it["id"]: it["reference_output"] for it in items})


def evaluate(model_ref: str, task_names: list[str], world_dir: Path | None, reference: str = "human",
             limit: int | None = None, seed: int = 0, generation: GenerationConfig = EVAL_GENERATION,
             runs_dir: Path = RUNS_DIR, cache_dir: Path = CACHE_DIR, quiet: bool = False,
             options: dict[str, Any] | None = None, model_name: str | None = None,
             reference_name: str | None = None) -> list[RunRecord]:
    from flame_bench.world.store import WorldDir

    if limit is not None and limit < 1:
        raise FlameError(f"--limit must be a positive number of items, got {limit}")
    tasks: list[Task] = [TASKS.get(name) for name in dict.fromkeys(task_names)]  # all names checked first
    world = WorldDir.open(world_dir) if world_dir is not None else None  # None: the real path (no fact world)
    model = resolve_model(model_ref, world)
    if model_name:
        model.name = model_name  # e.g. the system whose stage directory this is
    cache = GenerationCache(cache_dir / "generations.sqlite")
    generators: dict[str, Generator] = {}

    def generator_for(m: ModelHandle) -> Generator:
        if m.sha256 not in generators:
            generators[m.sha256] = Generator(m, generation, cache, quiet)
        return generators[m.sha256]

    ref = None
    if any(t.needs_reference for t in tasks):
        if world is None:
            ref = reference_from_alpaca_eval((options or {}).get("alpaca_eval"), reference)
        else:
            ref = resolve_reference(reference, world, "eval_alpaca", generator_for, runs_dir, reference_name)
    records = []
    world_identity = None if world is None else {
        "path": str(world.path), "preset": world.preset_name, "seed": world.manifest["seed"],
        "content_sha256": world.content_sha256}
    for task in tasks:
        t0 = time.perf_counter()
        ctx = EvalContext(world=world, model=model, generation=generation, limit=limit, seed=seed,
                          reference=ref if task.needs_reference else None, cache=cache, quiet=quiet,
                          options=options or {}, generate=generator_for(model))
        result = task.run(ctx)
        spec = {
            "task": {"name": task.name, "version": task.version, "kind": task.kind},
            "model": {"name": model.name, "path": str(model.path), "sha256": model.sha256,
                      "prompt_format": model_kind(model.path)},
            "world": world_identity,
            "generation": generation.to_dict() if task.kind != "loglikelihood" else None,
            "judge": result.judge,
            "reference": ref.identity | {"name": ref.name} if ref and task.needs_reference else None,
            "seed": seed,
            "limit": limit,
        }
        if options:  # real-path data and evaluator choices (knowledge source, evaluator LLM, data files)
            spec["options"] = dict(sorted(options.items()))
        config_hash = sha256_json(spec)
        header = {
            **spec,
            "config_hash": config_hash,
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
        record = write_run(runs_dir, run_dir_name(task.name, model.name, config_hash), header, result.samples)
        records.append(record)
        if not quiet:
            console.print(f"[green]{task.name}[/green] -> {record.path}")
    if not quiet:
        console.print(f"generation cache: {cache.hits} hits, {cache.misses} generated")
    cache.close()
    return records
