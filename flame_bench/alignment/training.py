"""trl plumbing shared by the recipes: CPU-safe configs, a NaN guard, a rich progress bar, resume and save.

Imported by recipe modules only (it pulls in transformers); the stage machinery itself is
`flame_bench.alignment.stages`.
"""

from __future__ import annotations

import math
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from transformers import TrainerCallback
from transformers.trainer_callback import PrinterCallback

from flame_bench.alignment.limits import check_number
from flame_bench.core.errors import FlameError
from flame_bench.core.io import write_json
from flame_bench.core.ui import progress

WARMUP_FRACTION = 0.05
MIN_STEPS_FOR_WARMUP = 20  # a shorter run gets no warmup: one warmup step of a 1-step run trains at lr 0


def warmup_steps(train_size: int, batch_size: int, epochs: float) -> int:
    """Warmup steps for a run over `train_size` examples: transformers' own ceil(5% of the steps) (so longer runs
    are unchanged), but none for a run under MIN_STEPS_FOR_WARMUP steps, which would otherwise spend a large part
    of its few steps, or all of them, at a learning rate near 0."""
    steps = max(1, math.ceil(math.ceil(train_size / max(1, batch_size)) * epochs))
    return math.ceil(WARMUP_FRACTION * steps) if steps >= MIN_STEPS_FOR_WARMUP else 0


# -- a stage's `trainer:` and `peft:` mappings ------------------------------------------------------------------
# trainer keys that flame-bench sets itself, and where to set them instead
RESERVED_TRAINER_KEYS = {
    "output_dir": "flame-bench's (the stage's work directory)",
    "learning_rate": "the recipe's: set config: {learning_rate: ...}",
    "num_train_epochs": "the recipe's: set config: {epochs: ...}",
    "per_device_train_batch_size": "the recipe's: set config: {batch_size: ...}",
    "max_length": "the recipe's: set config: {max_length: ...}",
    "beta": "the recipe's: set config: {beta: ...}",
    "seed": "the run's: pass --seed", "data_seed": "the run's: pass --seed",
    "logging_nan_inf_filter": "flame-bench's (its NaN guard needs every step's loss)",
}
PEFT_SAVE = ("merged", "adapter")  # `peft: {save: ...}`: merged weights only, or the adapter kept beside them
PEFT_BIAS = ("none", "all", "lora_only")
# values trl and peft take but that fail mid-run, or never end: key -> (low, high, bounds as "[]", "[)", "(]" ...)
TRAINER_RANGES: dict[str, tuple[float, float | None, str]] = {
    "gradient_accumulation_steps": (1, None, "[]"), "per_device_eval_batch_size": (1, None, "[]"),
    "weight_decay": (0, None, "[]"), "max_grad_norm": (0, None, "[]"), "warmup_steps": (0, None, "[]"),
    "adam_beta1": (0, 1, "[)"), "adam_beta2": (0, 1, "[)"), "adam_epsilon": (0, None, "(]"),
    "logging_steps": (0, None, "(]"), "save_steps": (0, None, "(]"), "eval_steps": (0, None, "(]"),
    "label_smoothing": (0, 0.5, "[]"),
}
STEP_KEYS = ("logging_steps", "save_steps", "eval_steps", "warmup_steps")  # whole steps, or a fraction < 1 of the run
PEFT_RANGES: dict[str, tuple[float, float | None, str]] = {
    "r": (1, None, "[]"), "lora_alpha": (0, None, "(]"), "lora_dropout": (0, 1, "[)")}


def trainer_class(kind: str) -> type:
    """trl's config class for a recipe's trainer kind ("sft" or "dpo")."""
    from trl import DPOConfig, SFTConfig

    return {"sft": SFTConfig, "dpo": DPOConfig}[kind]


def trainer_key_problem(kind: str, key: str) -> str | None:
    """Why `key` cannot be a `trainer:` key of a `kind` stage, or None."""
    import dataclasses

    from flame_bench.core.errors import unknown_name

    cls = trainer_class(kind)
    if key in RESERVED_TRAINER_KEYS:
        return f"trainer key {key!r} is {RESERVED_TRAINER_KEYS[key]}"
    valid = {f.name for f in dataclasses.fields(cls) if f.init} - set(RESERVED_TRAINER_KEYS)
    return None if key in valid else str(unknown_name(f"trainer key ({cls.__name__})", key, valid))


def _field_type(annotation: Any) -> Any:
    """`bool` for `bool | None`: the one type a trl field takes besides None, else the annotation."""
    import typing

    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    return args[0] if len(args) == 1 else annotation


def check_trainer(kind: str, mapping: dict[str, Any]) -> None:
    """Every key known to trl's config class and not flame-bench's, each value in its range (TRAINER_RANGES, a
    bool for bool fields, an int for int fields, report_to's integrations installed), and the values accepted by trl
    (the config is built once, as the stage will build it). Raises ValueError naming the problem."""
    import dataclasses
    import tempfile

    types = {f.name: _field_type(f.type) for f in dataclasses.fields(trainer_class(kind))}
    for key, value in mapping.items():
        if problem := trainer_key_problem(kind, key):
            raise ValueError(problem)
        what = f"trainer {key}"
        if value is None:  # trl's default
            continue
        if key == "report_to":
            _check_report_to(value)
        elif types[key] is bool and not isinstance(value, bool):
            raise ValueError(f"{what} must be true or false, got {value!r}")
        elif key == "max_steps" and value != -1:
            check_number(what, value, integer=True)
            if value < 1:
                raise ValueError(f"{what} must be -1 (no limit) or >= 1, got {value!r}")
        elif key in TRAINER_RANGES or types[key] in (int, float):
            check_number(what, value, *TRAINER_RANGES.get(key, (None, None, "[]")), integer=types[key] is int)
            if key in STEP_KEYS and value >= 1 and value != int(value):
                raise ValueError(f"{what} must be a whole number of steps (or a fraction < 1 of the run), got "
                                 f"{value!r}")
    with tempfile.TemporaryDirectory() as tmp:
        try:
            trl_config(trainer_class(kind), Path(tmp), 0, train_size=1, **mapping)
        except (ValueError, TypeError, ImportError) as e:
            raise ValueError(f"trainer: {(str(e).strip().splitlines() or [type(e).__name__])[0][:200]}") from None


def _check_report_to(value: Any) -> None:
    """`report_to` names transformers' integrations (or none / all), each installed: a missing one would fail only
    once training starts."""
    from transformers.integrations.integration_utils import INTEGRATION_TO_CALLBACK
    from transformers.integrations.integration_utils import get_available_reporting_integrations as available

    from flame_bench.core.errors import unknown_name

    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ValueError(f"trainer report_to must be an integration name or a list of them, got {value!r}")
    for name in names:
        if name in ("none", "all"):
            continue
        if name not in INTEGRATION_TO_CALLBACK:
            raise ValueError(str(unknown_name("report_to integration", name, [*INTEGRATION_TO_CALLBACK, "none"])))
        if name not in available():
            raise ValueError(f"report_to {name!r} needs the {name} package, which is not installed; install it or "
                             "set report_to: none")


def peft_key_problem(key: str) -> str | None:
    import dataclasses

    from peft import LoraConfig

    from flame_bench.core.errors import unknown_name

    valid = {f.name for f in dataclasses.fields(LoraConfig) if f.init} | {"save"}
    return None if key in valid else str(unknown_name("peft key (LoraConfig, or save)", key, valid))


def lora_config(mapping: dict[str, Any]):
    """A peft LoraConfig for a causal LM from a stage's `peft:` mapping (`save` is flame-bench's own key). Raises
    ValueError naming the problem."""
    from peft import LoraConfig

    for key in mapping:
        if problem := peft_key_problem(key):
            raise ValueError(problem)
    save = mapping.get("save", "merged")
    if save not in PEFT_SAVE:
        raise ValueError(f"peft save must be one of {', '.join(PEFT_SAVE)}, got {save!r}")
    for key, (low, high, bounds) in PEFT_RANGES.items():
        if key in mapping:
            check_number(f"peft {key}", mapping[key], low, high, bounds, integer=key == "r")
    targets = mapping.get("target_modules")
    names = [targets] if isinstance(targets, str) else targets
    if targets is not None and not (isinstance(names, list) and all(isinstance(t, str) for t in names)):
        raise ValueError(f"peft target_modules must be a module name, a list of names or all-linear, got {targets!r}")
    if targets is not None and not any(t.strip() for t in names):
        raise ValueError("peft target_modules must name at least one module (or be all-linear)")
    if mapping.get("bias", "none") not in PEFT_BIAS:
        raise ValueError(f"peft bias must be one of {', '.join(PEFT_BIAS)}, got {mapping['bias']!r}")
    try:
        return LoraConfig(**{"task_type": "CAUSAL_LM", **{k: v for k, v in mapping.items() if k != "save"}})
    except (ValueError, TypeError) as e:
        raise ValueError(f"peft: {(str(e).strip().splitlines() or [type(e).__name__])[0][:200]}") from None


def trl_config(cls: type, output_dir: Path, seed: int, train_size: int | None = None, **overrides: Any):
    """A trl SFTConfig/DPOConfig that runs on CPU (fp32) and GPU alike, with no external loggers. With
    `train_size`, the warmup is `warmup_steps(...)` (short runs really train). `overrides` include a stage's
    `trainer:` mapping (bf16, gradient accumulation, gradient checkpointing, report_to, ...)."""
    import torch

    base = dict(output_dir=str(output_dir), report_to="none", bf16=False, activation_checkpointing=False,
                use_cpu=not torch.cuda.is_available(), disable_tqdm=True, seed=seed, data_seed=seed,
                dataloader_num_workers=0, logging_steps=1, save_strategy="steps", save_steps=50,
                save_total_limit=1, save_only_model=False, lr_scheduler_type="cosine", warmup_steps=WARMUP_FRACTION,
                logging_nan_inf_filter=False)  # the NaN guard must see every step's loss, unfiltered
    base.update(overrides)
    if train_size is not None and "warmup_steps" not in overrides:
        per_step = int(base.get("per_device_train_batch_size", 8)) * int(base.get("gradient_accumulation_steps", 1))
        base["warmup_steps"] = warmup_steps(train_size, per_step, float(base.get("num_train_epochs", 1.0)))
    return cls(**base)


def latest_checkpoint(output_dir: Path) -> str | None:
    """trl/transformers checkpoint to resume an interrupted stage from."""
    ckpts = sorted(output_dir.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[-1]))
    return str(ckpts[-1]) if ckpts else None


def chat_example(instruction: str, response: str) -> dict[str, Any]:
    return {"prompt": [{"role": "user", "content": instruction}],
            "completion": [{"role": "assistant", "content": response}]}


def as_trl_reward(reward, records_by_prompt: dict[str, dict]) -> Callable:
    """Adapt a source reward (`score_many`) to trl's reward-function signature `(prompts, completions, **kw)`."""

    def fn(prompts: Sequence[Any], completions: Sequence[Any], **_: Any) -> list[float]:
        def text(x: Any) -> str:
            return x[-1]["content"] if isinstance(x, list) else str(x)

        records = [records_by_prompt[text(p)] for p in prompts]
        return [s or 0.0 for s in reward.score_many(records, [text(c) for c in completions])]

    fn.__name__ = str(reward.identity.get("name", "reward"))
    return fn


class NaNGuard(TrainerCallback):
    """Stops training at the first non-finite loss, before anything is saved at that step."""

    def __init__(self) -> None:
        self.bad_step: int | None = None

    def on_log(self, args, state, control, logs=None, **kwargs):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.bad_step = state.global_step
            control.should_training_stop = True
            control.should_save = False
        return control


class RichProgress(TrainerCallback):
    """A progress bar with the loss and tokens/s."""

    def __init__(self, label: str, quiet: bool) -> None:
        self.label, self.quiet = label, quiet

    def on_train_begin(self, args, state, control, **kwargs):
        self.ctx = progress(self.quiet)
        self.bar = self.ctx.__enter__()
        self.task = self.bar.add_task(self.label, total=state.max_steps, completed=state.global_step,
                                      loss=float("nan"), tps=0.0)
        self.t0, self.tokens = time.perf_counter(), 0.0

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = logs or {}
        self.tokens = float(logs.get("num_tokens", self.tokens))
        fields = {"tps": self.tokens / max(1e-9, time.perf_counter() - self.t0)}
        if "loss" in logs:
            fields["loss"] = float(logs["loss"])
        self.bar.update(self.task, completed=state.global_step, **fields)

    def on_step_end(self, args, state, control, **kwargs):
        self.bar.update(self.task, completed=state.global_step)

    def on_train_end(self, args, state, control, **kwargs):
        self.ctx.__exit__(None, None, None)


def progress_callback(label: str, quiet: bool) -> TrainerCallback:
    return RichProgress(label, quiet)


def training_callbacks(label: str, quiet: bool) -> list[TrainerCallback]:
    """The callbacks every trainer gets: a NaN guard and a progress bar."""
    return [NaNGuard(), progress_callback(label, quiet)]


def train_trl(ctx, trainer_cls, config_cls, dataset, label: str, *, peft: dict[str, Any] | None = None,
              trainer_keys: dict[str, Any] | None = None, **trl_kwargs: Any) -> dict[str, Any]:
    """A stage's trl training in one call: the input model's tokenizer (pad token, chat template) and weights
    (safetensors only), a CPU-safe `config_cls` with the recipe's settings and the stage's `trainer:` keys, the NaN
    guard and progress bar, LoRA when `peft` is set, resumed from the stage's last checkpoint; the model is saved to
    `ctx.output_dir`. Returns the training stats (steps, loss, seconds)."""
    from transformers import AutoTokenizer

    from flame_bench.engines.models import ensure_chat_template, ensure_pad_token, load_weights

    tok = AutoTokenizer.from_pretrained(ctx.input_model)
    ensure_pad_token(tok, ctx.input_model)
    ensure_chat_template(tok)
    model = load_weights(ctx.input_model)
    work = ctx.output_dir.parent / f"{ctx.output_dir.name}.trainer"
    args = trl_config(config_cls, work, ctx.seed, train_size=len(dataset), **trl_kwargs, **(trainer_keys or {}))
    trainer = trainer_cls(model=model, args=args, train_dataset=dataset, processing_class=tok,
                          callbacks=training_callbacks(label, ctx.quiet),
                          peft_config=lora_config(peft) if peft else None)
    return finish_training(trainer, tok, ctx, latest_checkpoint(work),
                           peft_save=peft.get("save", "merged") if peft else None)


def finish_training(trainer, tokenizer, ctx, resume_from: str | None,
                    kind: str = "aligned", peft_save: str | None = None) -> dict[str, Any]:
    """Train (resuming from `resume_from` if an interrupted run left a checkpoint), save safetensors, report.
    A LoRA run (`peft_save` set) saves the merged weights (what later stages and evaluation load); with
    "adapter" its adapter is kept too, under `model/adapter/`."""
    trainer.remove_callback(PrinterCallback)  # trl prints every log dict when tqdm is off
    guard = next((c for c in trainer.callback_handler.callbacks if isinstance(c, NaNGuard)), None)
    if guard is None:  # a recipe that built its trainer without `training_callbacks`
        guard = NaNGuard()
        trainer.add_callback(guard)
    t0 = time.perf_counter()
    try:
        out = trainer.train(resume_from_checkpoint=resume_from)
    except Exception as e:
        if resume_from is None or trainer.state.global_step > int(Path(resume_from).name.split("-")[-1]):
            raise
        cause = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
        raise FlameError(f"cannot resume from the checkpoint {resume_from} ({type(e).__name__}: {cause}); delete "
                         f"{Path(resume_from).parent.parent} to restart this stage from scratch") from None
    if guard.bad_step is not None:
        kept = latest_checkpoint(Path(trainer.args.output_dir))
        raise FlameError(f"training loss became NaN at step {guard.bad_step}; stopped, last good checkpoint kept at "
                         f"{kept or '(none saved yet)'}; lower the learning rate in the system file")
    main = trainer.accelerator.is_main_process  # under `accelerate launch` the main process alone writes
    if main:
        ctx.output_dir.mkdir(parents=True, exist_ok=True)
    extra: dict[str, Any] = {}
    if peft_save is None:
        trainer.save_model(str(ctx.output_dir))  # safetensors; every rank calls it (ZeRO-3 gathers), main writes
    else:
        model = trainer.accelerator.unwrap_model(trainer.model)
        extra["lora_trainable_parameters"] = sum(p.numel() for p in model.parameters() if p.requires_grad)
        if main:
            if peft_save == "adapter":
                model.save_pretrained(str(ctx.output_dir / "adapter"), safe_serialization=True)
            model.merge_and_unload().save_pretrained(str(ctx.output_dir), safe_serialization=True)
    resumed_at = int(Path(resume_from).name.split("-")[-1]) if resume_from else 0
    loss: float | None = float(out.training_loss)
    if out.global_step <= resumed_at:  # every step ran before the interruption: the logged losses, not this call's 0
        logged = [h["loss"] for h in trainer.state.log_history if "loss" in h]
        loss = sum(logged) / len(logged) if logged else None
    stats = {"steps": out.global_step, "train_loss": None if loss is None else round(loss, 4),
             "train_seconds": round(time.perf_counter() - t0, 1), "resumed_from": resume_from, **extra}
    if main:
        tokenizer.save_pretrained(str(ctx.output_dir))
        write_json(ctx.output_dir / "flame_model.json", {"kind": f"flame-bench {kind} model (chat)", **stats})
        shutil.rmtree(trainer.args.output_dir, ignore_errors=True)  # checkpoints are not needed once saved
    return stats
