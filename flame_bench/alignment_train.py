"""Training plumbing shared by the trl-based recipes: a rich progress bar, a NaN guard, resume and save."""

from __future__ import annotations

import math
import shutil
import time
from pathlib import Path
from typing import Any

from transformers import TrainerCallback
from transformers.trainer_callback import PrinterCallback

from flame_bench.errors import FlameError
from flame_bench.io import write_json
from flame_bench.ui import progress


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


def progress_callback(label: str, quiet: bool) -> TrainerCallback:
    class RichProgress(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            self.ctx = progress(quiet)
            self.bar = self.ctx.__enter__()
            self.task = self.bar.add_task(label, total=state.max_steps, completed=state.global_step,
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

    return RichProgress()


def finish_training(trainer, tokenizer, ctx, resume_from: str | None, kind: str = "aligned") -> dict[str, Any]:
    """Train (resuming from `resume_from` if an interrupted run left a checkpoint), save safetensors, report."""
    trainer.remove_callback(PrinterCallback)  # trl prints every log dict when tqdm is off
    guard = next(c for c in trainer.callback_handler.callbacks if isinstance(c, NaNGuard))
    t0 = time.perf_counter()
    out = trainer.train(resume_from_checkpoint=resume_from)
    if guard.bad_step is not None:
        from flame_bench.alignment import latest_checkpoint

        kept = latest_checkpoint(Path(trainer.args.output_dir))
        raise FlameError(f"training loss became NaN at step {guard.bad_step}; stopped, last good checkpoint kept at "
                         f"{kept or '(none saved yet)'}; lower the learning rate in the system file")
    ctx.output_dir.mkdir(parents=True, exist_ok=True)
    trainer.save_model(str(ctx.output_dir))  # safetensors
    tokenizer.save_pretrained(str(ctx.output_dir))
    stats = {"steps": out.global_step, "train_loss": round(float(out.training_loss), 4),
             "train_seconds": round(time.perf_counter() - t0, 1), "resumed_from": resume_from}
    write_json(ctx.output_dir / "flame_model.json", {"kind": f"flame-bench {kind} model (chat)", **stats})
    shutil.rmtree(trainer.args.output_dir, ignore_errors=True)  # checkpoints are not needed once saved
    return stats
