"""Training stages: what a recipe receives, how a stage is keyed, cached, locked, resumed and published.

A *recipe* (a self-contained module under `alignments/recipes/`) is a typed config plus `run(ctx, config)`, which
builds its data from the source and trains with a trl trainer (`trl_config`, `finish_training`). A *stage* is one
recipe applied to one input model. Its key hashes everything it depends on: the recipe (name, version, full config
and the versions of the rules it uses), the input model's content, the source's training fingerprint (training
data, knowledge), the classifier and reward identities, and the seed. A finished stage lives in
`stages_dir()/<recipe>-<key>/` (`model/` + `stage.json`) and is only ever taken as done when both are there. It is
built in a hidden `.partial` sibling under an exclusive lock (so two runs never train the same stage twice or see
half of it), and an interrupted stage resumes from its trainer checkpoints there. The trl plumbing recipes share
(configs, callbacks, saving) is `flame_bench.alignment.training`.
"""

from __future__ import annotations

import dataclasses
import math
import shutil
import time
import types
import typing
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from flame_bench.alignment import distributed
from flame_bench.alignment.limits import MAX_NUMBER
from flame_bench.core import numerics
from flame_bench.core.errors import FlameError, unknown_name
from flame_bench.core.io import locked, publish_dir, read_json, sha256_file, sha256_json, write_json
from flame_bench.core.paths import stages_dir
from flame_bench.core.registry import RECIPES
from flame_bench.core.ui import console
from flame_bench.engines.generation import (
    SAMPLING,
    GenerationConfig,
    Generator,
    backend_identity,
    current_generation_backend,
)
from flame_bench.engines.generation_cache import GenerationCache
from flame_bench.engines.models import model_sha256, resolve_model

STAGE_SECTIONS = ("trainer", "peft")  # stage mappings beside `config:` (systems.py) that recipes take as fields


@dataclass(frozen=True)
class Recipe:
    """A training stage: typed config + `run(ctx, config) -> stats`; the model is saved to `ctx.output_dir`.

    `fingerprint(config, source)` names the versions of the rules the recipe uses (pair rules, prompt styles), for
    the stage key.
    """

    name: str
    version: str
    description: str
    config_cls: type
    run: Callable[[StageContext, Any], dict[str, Any]]
    fingerprint: Callable[[Any, Any], dict[str, Any]] = lambda config, source: {}
    uses_rewards: bool = False  # DPO recipes: RM_IF and RM_fact identities go into the key
    trainer: str = ""  # "sft" or "dpo": which trl config class a stage's `trainer:` mapping is checked against
    # what the stage trained on, as cells of the paper's Table 11 (`reports.comparison.TABLE11_COLUMNS`, or columns
    # of the recipe's own), from the stats `run` returned; None: the recipe adds nothing to that table
    training_data: Callable[[dict[str, Any]], dict[str, str]] | None = None


@dataclass
class StageContext:
    source: Any  # flame_bench.core.source.Source
    input_model: Path
    output_dir: Path
    seed: int
    cache: GenerationCache
    quiet: bool = True
    generators: dict[str, Generator] = field(default_factory=dict)

    def generator(self, model_path: Path, config: GenerationConfig) -> Generator:
        """A cached generator for `model_path` under `config`."""
        key = f"{model_path}|{config}"
        if key not in self.generators:
            self.generators[key] = Generator(resolve_model(str(model_path), self.source), config, self.cache,
                                             self.quiet)
        return self.generators[key]

    def on_main(self, name: str, build: Callable[[], Any]) -> Any:
        """The stage's training data (a JSON value), built by the main process alone under `accelerate launch` and
        read by every rank (`flame_bench.alignment.distributed`); simply `build()` in a single-process run."""
        return distributed.on_main(self.output_dir.parent / f"{name}.shared.json", build)

    def sample_policy(self, instructions: list[str], n: int, max_new_tokens: int = 128) -> list[list[str]]:
        """n responses per instruction from the input model (T=0.7, top-p 0.9), chat-formatted or Q&A for PT."""
        cfg = GenerationConfig(max_new_tokens=max_new_tokens, num_return_sequences=n, seed=self.seed,
                               batch_size=max(1, 256 // n), **SAMPLING)
        return self.generator(self.input_model, cfg).samples(instructions)


# -- configs ---------------------------------------------------------------------------------------------------
def _type_ok(value: Any, annotation: Any) -> bool:
    """Whether a YAML value fits a config field's annotation (int fits float; bools are not numbers)."""
    origin = typing.get_origin(annotation)
    if annotation is Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_type_ok(value, a) for a in typing.get_args(annotation))
    if annotation is type(None):
        return value is None
    if origin in (list, tuple):
        (inner, *_) = typing.get_args(annotation) or (Any,)
        return isinstance(value, list | tuple) and all(_type_ok(v, inner) for v in value)
    if origin is dict or annotation is dict:
        return isinstance(value, dict)
    if annotation is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, annotation) if isinstance(annotation, type) else True


# Upper bounds a recipe config declares as its `LIMITS` class attribute (any other number: at most MAX_NUMBER); the
# usual training knobs' are offered here (a huge learning rate is left to the NaN-loss guard to stop).
TRAINING_LIMITS: dict[str, float] = {"epochs": 1000, "batch_size": 65536, "learning_rate": math.inf}


def make_config(recipe: Recipe, overrides: dict[str, Any], where: str, key_lines: dict[str, str] | None = None):
    """The recipe's config with `overrides`, every key, type and range checked before any work: no NaN, the
    recipe's own ranges (its `__post_init__`), then at most its `LIMITS` (default MAX_NUMBER). An error about one
    key names that key's place (`key_lines`: key -> "file:line", from the system file), else `where`."""
    key_lines = key_lines or {}

    def at(key: str | None) -> str:
        return key_lines.get(key or "", where)

    hints = typing.get_type_hints(recipe.config_cls)
    fields = {f.name for f in dataclasses.fields(recipe.config_cls)}
    for key, value in overrides.items():
        if key not in fields:
            raise FlameError(f"{at(key)}: {unknown_name(f'{recipe.name} config key', key, fields)}")
        if not _type_ok(value, hints[key]):
            expected = getattr(hints[key], "__name__", str(hints[key]).replace("typing.", ""))
            raise FlameError(f"{at(key)}: {recipe.name} config {key} must be {expected}, got {value!r}")
        if isinstance(value, float) and math.isnan(value):
            raise FlameError(f"{at(key)}: {recipe.name} config {key} must be a finite number, got nan")
    try:
        config = recipe.config_cls(**overrides)
    except (ValueError, TypeError, FlameError) as e:  # the recipe's own range checks name the key they refuse
        named = next((k for k in overrides if str(e).startswith(k) or f" {k} " in f" {e} "), None)
        raise FlameError(f"{at(named)}: {recipe.name} config: {e}") from None
    for key, value in overrides.items():
        most = getattr(recipe.config_cls, "LIMITS", {}).get(key, MAX_NUMBER)
        if isinstance(value, int | float) and not isinstance(value, bool) and value > most:
            raise FlameError(f"{at(key)}: {recipe.name} config {key} must be at most {most:g}, got {value!r}")
    return config


def check_stage_sections(kind: str, trainer: dict[str, Any] | None, peft: dict[str, Any] | None) -> None:
    """`__post_init__` helper: a stage's `trainer:` mapping is valid for trl's config class of `kind` ("sft" or
    "dpo") and its `peft:` mapping makes a LoraConfig (ValueError otherwise)."""
    if trainer:
        from flame_bench.alignment.training import check_trainer

        check_trainer(kind, trainer)
    if peft:
        from flame_bench.alignment.training import lora_config

        lora_config(peft)


def positive(config: Any, *names: str) -> None:
    """`__post_init__` helper: each named field must be a finite number > 0 (None allowed where typed so)."""
    for name in names:
        v = getattr(config, name)
        if v is not None and not (isinstance(v, int | float) and math.isfinite(v) and v > 0):
            raise ValueError(f"{name} must be a positive number, got {v!r}")


# -- keys, locks, publishing -----------------------------------------------------------------------------------
def stage_key(recipe: Recipe, config: Any, input_model: Path, source, seed: int) -> tuple[str, dict[str, Any]]:
    """(key, what it hashes): everything the stage's output depends on."""
    classifier = source.fact_classifier
    parts: dict[str, Any] = {
        "recipe": recipe.name, "version": recipe.version,
        # trainer / peft enter the key only when set, so stages without them keep the keys they always had; a
        # config's NOT_IN_KEY fields (guards that decide whether a stage trains, never what) stay out
        "config": {k: v for k, v in asdict(config).items()
                   if (v is not None or k not in STAGE_SECTIONS) and k not in getattr(config, "NOT_IN_KEY", ())},
        "rules": recipe.fingerprint(config, source), "input_model": model_sha256(input_model),
        "source": source.training_fingerprint(), "seed": seed,
        "classifier": f"{classifier.name}@{classifier.version}",
        "numerics": numerics.mode(),  # other float kernels train another model
    }
    if (generation := backend_identity(current_generation_backend())) is not None:  # hf: no key, as before
        parts["generation"] = generation  # another engine samples other responses, so other training data
    if distributed.world_size() > 1:  # N ranks train on N times the batch: another model (one process: no key)
        parts["processes"] = distributed.world_size()
    if recipe.uses_rewards:
        parts["rewards"] = {"rm_if": source.rm_if(input_model).identity, "rm_fact": source.rm_fact.identity}
    return sha256_json(parts), parts


def is_finished(stage: Path) -> bool:
    """A stage is done only when its record and a loadable model are both there."""
    model = stage / "model"
    return (stage / "stage.json").is_file() and (model / "config.json").is_file() and any(model.glob("*.safetensors"))


def model_files(model: Path) -> dict[str, str]:
    """sha256 of every file of a stage's model directory (what `stage.json` records and every load checks)."""
    return {str(f.relative_to(model)): sha256_file(f) for f in sorted(model.rglob("*")) if f.is_file()}


def stage_problem(stage: Path) -> str | None:
    """Why a finished-looking stage cannot be used (None: its record is whole and its model matches it)."""
    try:
        record = read_json(stage / "stage.json")
    except FlameError as e:
        return str(e)
    files = record.get("model_files") if isinstance(record, dict) else None
    if not isinstance(files, dict) or not files:
        return "its stage.json records no model file hashes (made by an older flame-bench)"
    present = model_files(stage / "model")
    for rel, digest in files.items():
        if present.get(rel) != digest:
            return f"model/{rel} {'is missing' if rel not in present else 'does not match its recorded sha256'}"
    extra = sorted(set(present) - set(files))
    return f"model/{extra[0]} is not in its record" if extra else None


def finished_stage(final: Path, repair: bool = False) -> dict[str, Any] | None:
    """The record of a finished, verified stage, else None; with `repair` (under the stage's lock) a damaged one is
    moved aside, named in a warning, to be rebuilt: a damaged stage is never used."""
    if not is_finished(final):
        return None
    problem = stage_problem(final)
    if problem is None:
        return read_json(final / "stage.json")
    if not repair:
        return None
    aside = final.parent / f".{final.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}"
    final.rename(aside)
    console.print(f"[yellow]warning:[/yellow] stage {final.name}: {problem}; never used, kept at {aside}, rebuilding")
    return None


def check_trained(input_model: Path, output_model: Path, stats: dict[str, Any], where: str) -> None:
    """Refuse to publish a stage that did not train: no optimizer step, or weights equal to its input's."""
    from safetensors import safe_open

    if stats.get("steps") == 0:
        raise FlameError(f"{where}: training ran 0 optimizer steps (too few examples for the batch size times "
                         "gradient_accumulation_steps, or max_steps 0); nothing was published; fix the trainer "
                         "settings")

    def tensors(model: Path) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in sorted(model.glob("*.safetensors")):
            with safe_open(str(f), "pt") as handle:
                out.update({k: handle.get_tensor(k) for k in handle.keys()})  # noqa: SIM118 (not a dict)
        return out

    before, after = tensors(input_model), tensors(output_model)
    common = before.keys() & after.keys()  # a saved copy may drop a tied head
    if common and all(before[k].shape == after[k].shape and before[k].equal(after[k]) for k in common):
        raise FlameError(f"{where}: training left every weight equal to the input model's (learning rate 0 or no "
                         "effective step); nothing was published; fix the stage's settings")


def stage_lock(final: Path):
    """Exclusive lock on one stage (`.NAME.lock` beside it): a second run of the same stage waits, then finds it
    finished."""
    return locked(final, "lock")


def run_stage(recipe_name: str, overrides: dict[str, Any], input_model: Path, source, seed: int,
              cache: GenerationCache, quiet: bool = False, where: str = "stage",
              root: Path | None = None) -> tuple[Path, dict[str, Any]]:
    """Run one stage unless a finished copy exists; return (model directory, stage record)."""
    from flame_bench.core.runtime import quiet_transformers, torch_setup

    recipe = RECIPES.get(recipe_name)
    config = make_config(recipe, overrides, where)
    torch_setup(seed)
    quiet_transformers()
    key, parts = stage_key(recipe, config, input_model, source, seed)
    final = (root or stages_dir()) / f"{recipe.name}-{key[:12]}"
    many = distributed.world_size() > 1
    if not many and (done := finished_stage(final)) is not None:
        return final / "model", done
    # under `accelerate launch` the main process alone locks, prepares and publishes; every rank trains
    with stage_lock(final) if distributed.is_main() else nullcontext():
        staging = final.parent / f".{final.name}.partial"
        if distributed.is_main() and finished_stage(final, repair=True) is None:
            if final.exists():  # a stage directory without its model is not a stage
                shutil.rmtree(final)
            staging.mkdir(parents=True, exist_ok=True)
        distributed.barrier()
        if is_finished(final):  # finished before, or by another run while we waited for the lock (verified above)
            return final / "model", read_json(final / "stage.json")
        ctx = StageContext(source=source, input_model=input_model, output_dir=staging / "model", seed=seed,
                           cache=cache, quiet=quiet or not distributed.is_main())
        if not ctx.quiet:
            console.print(f"[bold]stage[/bold] {recipe.name} <- {input_model}")
        t0 = time.perf_counter()
        stats = recipe.run(ctx, config)
        record = {"recipe": recipe.name, "recipe_version": recipe.version, "key": key, "key_parts": parts,
                  "input_model": str(input_model), "input_model_sha256": parts["input_model"], "seed": seed,
                  "seconds": round(time.perf_counter() - t0, 1), "stats": stats}
        if many:
            record["processes"] = distributed.world_size()
        if distributed.is_main():
            for shared in staging.glob("*.shared.json"):  # what the other ranks read; not part of the stage
                shared.unlink()
            check_trained(input_model, staging / "model", stats, where)
            record["model_files"] = model_files(staging / "model")
            write_json(staging / "stage.json", record)
            publish_dir(staging, final)
        distributed.barrier()
    return final / "model", read_json(final / "stage.json") if many else record


def check_stages(base_model: str, stages: Sequence[tuple[str, dict[str, Any]]], source, where: str) -> Path:
    """Every stage config and the base model, checked before anything trains; returns the base model's directory."""
    for i, (recipe, overrides) in enumerate(stages):
        make_config(RECIPES.get(recipe), overrides, f"{where} stage {i + 1}")
    model = resolve_model(base_model, source).path
    source.check_model(model)
    return model


def run_stages(base_model: str, stages: Sequence[tuple[str, dict[str, Any]]], source, seed: int,
               cache: GenerationCache, quiet: bool = False, where: str = "system",
               root: Path | None = None) -> tuple[Path, list[dict[str, Any]]]:
    model = check_stages(base_model, stages, source, where)
    records = []
    for i, (recipe, overrides) in enumerate(stages):
        model, record = run_stage(recipe, overrides, model, source, seed, cache, quiet, where=f"{where} stage {i + 1}",
                                  root=root)
        records.append(record)
    return model, records
