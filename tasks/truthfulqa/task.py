"""`truthfulqa_mc1` / `truthfulqa_mc2`: TruthfulQA multiple choice, log-likelihoods computed THROUGH lm-eval.

The source's "truthfulqa" set says how its items are prompted: `world` (the fact world's items with the configs next
to this file, `truthfulqa_mc1.yaml` / `truthfulqa_mc2.yaml`, in the world's Q&A form) or `lm-eval-builtin` (real
questions with lm-eval's own built-in configs and 6-shot primer, pointed at a local items file). At run time the
items are written to a temporary file, the YAML is loaded into a config dict with that file's absolute path filled
in, and the dict is passed to `lm_eval.simple_evaluate` with an `HFLM` (or, in tests, any `lm_eval.api.model.LM`).

`generate` is lm-eval's work: per-choice log-likelihoods and its per-item score. `score` adds what lm-eval does not
report, from those alone (so a run re-scores from its record): the metric as lm-eval aggregates it (the mean of the
per-item scores), the planted-misconception check, a breakdown by group and a bootstrap confidence interval.
"""

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

from flame_bench.core.registry import TASKS
from flame_bench.core.stats import bootstrap_interval
from flame_bench.core.task_api import (
    DEFAULT_LM_BACKEND,
    LM_BACKENDS,
    Column,
    EvalContext,
    Generations,
    MetricInfo,
    Task,
    TaskResult,
)

TASK_DIR = Path(__file__).resolve().parent
CONFIGS = {"mc1": TASK_DIR / "truthfulqa_mc1.yaml", "mc2": TASK_DIR / "truthfulqa_mc2.yaml"}
PROMPT_VERSION = "truthfulqa-qa-v1"  # "Question: {question} Answer:" + " " + choice, 0-shot (the world's QA form)
BATCH_SIZE = 32
CI_ITERS = 1000  # percentile bootstrap over items, seeded with ctx.seed


def builtin_config_path(metric: str) -> Path:
    """lm-eval's own `truthfulqa_<metric>.yaml` (6-shot "Q:/A:" primer in the prompt, hub dataset)."""
    import lm_eval.tasks

    return Path(lm_eval.tasks.__file__).resolve().parent / "truthfulqa" / f"truthfulqa_{metric}.yaml"


def load_config(metric: str, data_file: Path | None = None, cache_dir: Path | None = None,
                real: bool = False) -> dict[str, Any]:
    """The lm-eval task config for `metric` ("mc1" | "mc2") as a complete dict.

    `real=False`: the fact world's config next to this file. `real=True`: lm-eval's BUILT-IN TruthfulQA config
    (its prompt, choices and scoring unchanged) pointed at a local items file instead of the hub dataset, under a
    name that never shadows the built-in task.
    lm-eval's own YAML loader resolves `include:` and `!function` relative to the YAML (0.4.13 exposes it only as
    `lm_eval.tasks._yaml_loader.load_yaml`). `data_file` must be absolute: lm-eval resolves data_files against the
    cwd. `cache_dir` keeps the `datasets` Arrow cache of the throw-away JSONL out of the user's HF cache.
    """
    from lm_eval.tasks._yaml_loader import load_yaml

    if real:
        cfg = load_yaml(builtin_config_path(metric), resolve_func=True)
        cfg.pop("tag", None)
        cfg.update(task=f"flame_truthfulqa_real_{metric}", dataset_path="json", dataset_name=None)
    else:
        cfg = load_yaml(CONFIGS[metric], resolve_func=True)
    if data_file is not None:
        kwargs: dict[str, Any] = {"data_files": {cfg["validation_split"]: str(Path(data_file).resolve())}}
        if cache_dir is not None:
            kwargs["cache_dir"] = str(cache_dir)
        cfg["dataset_kwargs"] = kwargs
    return cfg


def config_hash(metric: str, real: bool = False) -> str:
    """sha256 of the resolved config (before the run-time data path is filled in; functions by qualified name)."""

    def name(o: Any) -> str:
        return f"{getattr(o, '__module__', '?')}.{getattr(o, '__qualname__', repr(o))}"

    text = json.dumps(load_config(metric, real=real), sort_keys=True, default=name)
    return hashlib.sha256(text.encode()).hexdigest()


def write_items(path: Path, items: Sequence[dict[str, Any]]) -> None:
    """The items as lm-eval's json builder reads them: header-less JSONL, one doc per line."""
    path.write_text("".join(json.dumps(it, sort_keys=True) + "\n" for it in items), encoding="utf-8")


DATA_PLACEHOLDER = "    validation: null"  # the line of truthfulqa_mc1.yaml that the data path replaces


def write_lm_eval_folder(items: Sequence[dict[str, Any]], out_dir: Path) -> list[str]:
    """A folder `lm_eval --include_path` reads: these YAMLs (unchanged but for the data path, made absolute, since
    lm-eval resolves data_files against the cwd) and the items. Returns the task names."""
    from flame_bench.core.io import output_folder

    output_folder(out_dir, "export-tasks")
    data = (out_dir / "truthfulqa_items.jsonl").resolve()
    write_items(data, items)
    mc1 = CONFIGS["mc1"].read_text(encoding="utf-8")
    if DATA_PLACEHOLDER not in mc1:
        raise RuntimeError(f"{CONFIGS['mc1']} no longer has the line {DATA_PLACEHOLDER.strip()!r} to fill in")
    line = next(x for x in mc1.splitlines() if x.startswith(DATA_PLACEHOLDER))
    filled = mc1.replace(line, f"    validation: {json.dumps(str(data))}  # written by `flame-bench export-tasks`")
    (out_dir / CONFIGS["mc1"].name).write_text(filled, encoding="utf-8")
    (out_dir / CONFIGS["mc2"].name).write_text(CONFIGS["mc2"].read_text(encoding="utf-8"), encoding="utf-8")
    return [load_config(m)["task"] for m in ("mc1", "mc2")]


@contextmanager
def _quiet(enabled: bool) -> Iterator[None]:
    """Hold back lm-eval's tqdm bars and INFO logs (stderr) for a run; replay them if the run fails.

    (TQDM_DISABLE does not help: tqdm reads it when it is imported.)
    """
    import io
    import logging
    from contextlib import redirect_stderr

    if not enabled:
        yield
        return
    logger = logging.getLogger("lm_eval")
    old_level = logger.level
    buf = io.StringIO()
    logger.setLevel(logging.WARNING)
    try:
        with redirect_stderr(buf):
            yield
    except BaseException:
        sys.stderr.write(buf.getvalue())
        raise
    finally:
        logger.setLevel(old_level)


def _choice_lls(sample: dict[str, Any], choices: Sequence[str]) -> list[float]:
    """Per-choice log-likelihoods of one lm-eval sample, in the item's choice order.

    Each request's continuation is matched to its choice text (not trusted to be positional), and `arguments` may
    be a list of (context, continuation) pairs or a {"gen_args_<i>": {"arg_0", "arg_1"}} dict, depending on the
    lm-eval version.
    """
    args = sample["arguments"]
    if isinstance(args, dict):
        args = [(a["arg_0"], a["arg_1"]) if isinstance(a, dict) else a
                for _, a in sorted(args.items(), key=lambda kv: int(str(kv[0]).rsplit("_", 1)[-1]))]
    lls = {}
    for (_, continuation), resp in zip(args, sample["filtered_resps"], strict=True):
        ll = resp[0] if isinstance(resp, list | tuple) else resp
        lls[str(continuation).strip()] = float(ll)
    missing = [c for c in choices if c.strip() not in lls]
    if missing or len(lls) != len(choices):
        raise RuntimeError(f"lm-eval sample for doc {sample['doc'].get('id')!r} does not score exactly the item's "
                           f"choices (missing {missing[:2]}; {len(lls)} scored vs {len(choices)} choices)")
    return [lls[c.strip()] for c in choices]


def evaluate_mc(lm: Any, items: Sequence[dict[str, Any]], metrics: Sequence[str] = ("mc1", "mc2"),
                limit: int | None = None, quiet: bool = True, real: bool = False) -> dict[str, dict[str, Any]]:
    """Run the lm-eval MC task(s) for `metrics` over `items` with the lm-eval model `lm` in ONE simple_evaluate.

    Returns {metric: {"value": lm-eval's aggregate, "task": lm-eval task name, "config_hash",
    "items": [{"id", "loglikelihoods", "score"} in item order]}}; "score" is lm-eval's per-document `acc`.
    """
    import lm_eval
    import lm_eval.evaluator
    from lm_eval.tasks import TaskManager

    from flame_bench.core.provenance import git_commit

    # lm-eval's own commit lookup runs `git describe` in the working folder, whose stderr ("fatal: not a git
    # repository") reaches the terminal outside a checkout; flame-bench's names its own checkout, silently
    lm_eval.evaluator.get_git_commit_hash = git_commit
    items = list(items)[:limit]
    ids = [it["id"] for it in items]
    if len(set(ids)) != len(ids):
        raise ValueError("truthfulqa items must have unique ids (lm-eval samples are matched to items by doc id)")
    if not items:
        return {m: {"value": None, "task": None, "config_hash": config_hash(m, real), "items": []} for m in metrics}
    with tempfile.TemporaryDirectory(prefix="flame_tqa_") as tmp:
        data = Path(tmp) / "truthfulqa_items.jsonl"
        write_items(data, items)
        cfgs = {m: load_config(m, data, Path(tmp) / "datasets_cache", real=real) for m in metrics}
        with _quiet(quiet):
            res = lm_eval.simple_evaluate(model=lm, tasks=list(cfgs.values()), log_samples=True, bootstrap_iters=0,
                                          task_manager=TaskManager(include_defaults=False), num_fewshot=0)
    assert res is not None  # None only on non-zero ranks of a distributed run
    by_id = {it["id"]: it for it in items}
    out: dict[str, dict[str, Any]] = {}
    for m, cfg in cfgs.items():
        name = cfg["task"]
        scored: dict[str, dict[str, Any]] = {}
        for s in res["samples"][name]:
            item = by_id[s["doc"]["id"]]
            scored[item["id"]] = {"id": item["id"], "score": float(s["acc"]),
                                  "loglikelihoods": _choice_lls(s, item[f"{m}_targets"]["choices"])}
        if set(scored) != set(by_id):
            raise RuntimeError(f"lm-eval returned {len(scored)} samples for {len(items)} items in {name}")
        value = float(res["results"][name]["acc,none"])
        rows = [scored[i] for i in ids]
        if abs(value - sum(r["score"] for r in rows) / len(rows)) > 1e-6:  # samples parsed as lm-eval aggregated
            raise RuntimeError(f"{name}: lm-eval aggregate {value} != mean of its per-sample scores")
        out[m] = {"value": value, "task": name, "config_hash": config_hash(m, real), "items": rows}
    return out


def _mean(xs: Sequence[float]) -> float | None:
    return sum(xs) / len(xs) if xs else None


def summarize(metric: str, items: Sequence[dict[str, Any]], outputs: Sequence[dict[str, Any]],
              seed: int = 0) -> TaskResult:
    """A TaskResult from each item's lm-eval output ({"loglikelihoods", "score"}): the metric, samples with
    per-choice evidence, CI, counts and a breakdown by group (popularity tier in the fact world)."""
    import lm_eval

    samples = []
    for it, out in zip(items, outputs, strict=True):
        choices, labels = it[f"{metric}_targets"]["choices"], it[f"{metric}_targets"]["labels"]
        lls = out["loglikelihoods"]
        chosen = max(range(len(lls)), key=lls.__getitem__)
        misc = choices.index(it["misconception"]) if it.get("misconception") in choices else None
        samples.append({
            "id": it["id"], "question": it["question"], "tier": it.get("tier"), "attribute": it.get("attribute"),
            "person_id": it.get("person_id"), "choices": choices, "labels": labels, "loglikelihoods": lls,
            "chosen": chosen, "chosen_true": bool(labels[chosen]), "score": out["score"],
            "misconception_index": misc,
            # the planted (tempting) false answer out-scores the true answer (always choice 0)
            "misconception_preferred": None if misc is None else lls[misc] > lls[0],
        })
    scores = [s["score"] for s in samples]
    prefers = [s["misconception_preferred"] for s in samples if s["misconception_preferred"] is not None]
    breakdown: dict[str, dict[str, float | None]] = {}
    for tier in dict.fromkeys(s["tier"] for s in samples if s["tier"] is not None):  # real data has no tiers
        group = [s for s in samples if s["tier"] == tier]
        gp = [s["misconception_preferred"] for s in group if s["misconception_preferred"] is not None]
        breakdown[str(tier)] = {metric: _mean([s["score"] for s in group]), "misconception_preferred": _mean(gp),
                                "items": len(group)}
    ci = bootstrap_interval(scores, seed=seed, iters=CI_ITERS)
    return TaskResult(
        metrics={metric: _mean(scores)},  # lm-eval's `mean` aggregation: sum / n in item order
        samples=samples,
        confidence_intervals={metric: ci} if ci else {},
        counts={"items": len(samples), "choices": sum(len(s["choices"]) for s in samples),
                "misconception_preferred": sum(prefers)},
        breakdown=breakdown,
        prompt_versions={"truthfulqa": PROMPT_VERSION},
        extra={"lm_eval_version": lm_eval.__version__, "task_config": CONFIGS[metric].name,
               "ci_method": f"percentile bootstrap over items, {CI_ITERS} resamples, seed {seed}",
               "misconception_preferred_rate": _mean(prefers)},
    )


def make_lm(model_path: Path, batch_size: int = BATCH_SIZE, backend: str = DEFAULT_LM_BACKEND) -> Any:
    """An lm-eval model for `model_path`. `prefix` and `hf` are handed the model flame-bench loaded itself:
    safetensors only (a pickle beside the weights is never read, whatever transformers would prefer), no remote
    code, float32 on CPU, CUDA when present. `vllm` is lm-eval's own vLLM model, imported only when asked for,
    loading safetensors only."""
    from flame_bench.core.errors import FlameError, unknown_name
    from flame_bench.engines.models import load_model

    if backend == "vllm":
        try:
            import vllm  # noqa: F401
        except ImportError:
            raise FlameError("--lm-backend vllm needs the vllm package (GPU machines: `pip install vllm`); "
                             "here use --lm-backend prefix or hf") from None
        from lm_eval.api.registry import get_model

        return get_model("vllm")(pretrained=str(model_path), batch_size=batch_size, load_format="safetensors",
                                 trust_remote_code=False)
    if backend not in LM_BACKENDS:
        raise unknown_name("--lm-backend", backend, LM_BACKENDS)
    if backend == "prefix":
        from flame_bench.engines.llm.lm_eval_prefix import SharedPrefixLM as lm_class
    else:
        from lm_eval.models.huggingface import HFLM as lm_class

    model, tok = load_model(model_path)
    return lm_class(pretrained=model, tokenizer=tok, batch_size=batch_size)


def load(ctx: EvalContext) -> list[dict[str, Any]]:
    return ctx.source.eval_set("truthfulqa").items


def generate(metric: str, ctx: EvalContext, items: list[dict[str, Any]], lm: Any = None) -> Generations:
    """lm-eval's per-choice log-likelihoods and per-item score for each item (ctx.model, or an explicit `lm`)."""
    builtin = ctx.source.eval_set("truthfulqa").format == "lm-eval-builtin"
    if lm is None and items:
        with _quiet(ctx.quiet):
            lm = make_lm(ctx.model.path, ctx.lm_batch_size, ctx.lm_backend)
    run = evaluate_mc(lm, items, (metric,), quiet=ctx.quiet, real=builtin)[metric]
    return Generations(items, [{"loglikelihoods": r["loglikelihoods"], "score": r["score"]} for r in run["items"]])


def score(metric: str, ctx: EvalContext, gens: Generations) -> TaskResult:
    data = ctx.source.eval_set("truthfulqa")
    builtin = data.format == "lm-eval-builtin"
    result = summarize(metric, gens.items, gens.outputs, seed=ctx.seed)
    result.extra.update(lm_eval_task=load_config(metric, real=builtin)["task"],
                        task_config_hash=config_hash(metric, builtin))
    if builtin:
        result.prompt_versions = {"truthfulqa": f"lm-eval-builtin-{metric}-6shot-primer"}
        result.extra.update(task_config=builtin_config_path(metric).name, data=data.identity)
    # what scored the log-likelihoods and the data identity enter the config hash
    result.judge = {"lm_backend": ctx.lm_backend, **({"data": data.identity} if data.identity else {})}
    return result


def outputs_from_samples(samples: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"loglikelihoods": s["loglikelihoods"], "score": s["score"]} for s in samples]


def export_lm_eval(source: Any, out_dir: Path) -> list[str]:
    """Both tasks as lm-eval YAMLs holding the source's questions (`flame-bench export-tasks`)."""
    return write_lm_eval_folder(source.eval_set("truthfulqa").items, out_dir)


TOOLS = {"lm_eval_export": export_lm_eval, "make_lm": make_lm, "evaluate_mc": evaluate_mc}
_METRICS = {
    "mc1": MetricInfo("mc1", "MC1", description="share of items whose single true answer has the highest "
                                                "log-likelihood (lm-eval truthfulqa_mc1 `acc`)"),
    "mc2": MetricInfo("mc2", "MC2", description="normalised probability mass on the true answers, mean over items "
                                                "(lm-eval truthfulqa_mc2 `process_results_mc2`)"),
}
for _i, (_m, _desc) in enumerate((("mc1", "single-true multiple choice"), ("mc2", "multi-true multiple choice"))):
    TASKS.register(f"truthfulqa_{_m}")(Task(
        name=f"truthfulqa_{_m}",
        version="1",
        kind="loglikelihood",
        description=f"TruthfulQA {_m.upper()} ({_desc}): fact world or real questions, log-likelihoods via lm-eval.",
        metrics=(_METRICS[_m],),
        load=load,
        generate=partial(generate, _m),
        score=partial(score, _m),
        outputs_from_samples=outputs_from_samples,
            data="truthfulqa",
        primary_metric=_m,
        columns=(Column(f"TQA {_m.upper()}", _m, "score", position=40 + _i),),
        tools=TOOLS,
    ))
