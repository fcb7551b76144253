"""Runs under `accelerate launch`: every rank trains, the main process alone does everything else.

`accelerate launch --multi_gpu --num_processes N -m flame_bench.cli compare baseline flame` starts N copies of the
command (README, "Many GPUs"; `--config_file alignments/accelerate/deepspeed_zero3.yaml` or `fsdp.yaml` for
sharded training). Every rank loads the same source and walks the same stages. Inside a stage the main process
alone takes the stage lock, builds the training data (policy sampling, scoring, pair building; every cache write)
and writes it into the stage's staging directory; the other ranks wait at a barrier and read it from there. Every
rank then trains (trl and accelerate split the batches: DDP, DeepSpeed or FSDP); the main process alone saves the
model, writes the stage record and publishes the stage. Evaluation, run records, comparisons and the leaderboard
are the main process's; the other ranks return once training is done.

On a CPU the same command runs on gloo (the tests do, with 2 processes). A single-process run never touches
torch.distributed: everything here is a no-op unless `WORLD_SIZE` (set by the launcher) is above 1.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flame_bench.core.errors import FlameError
from flame_bench.core.io import read_json, write_text


def world_size() -> int:
    """How many processes the launcher started (1 without a launcher)."""
    return int(os.environ.get("WORLD_SIZE") or 1)


def rank() -> int:
    return int(os.environ.get("RANK") or 0)


def is_main() -> bool:
    """Whether this process does the run's side effects (always, in a single-process run)."""
    return rank() == 0


@functools.cache
def _state() -> Any:
    import torch
    from accelerate import PartialState

    return PartialState(cpu=not torch.cuda.is_available())  # gloo on CPU, nccl on GPUs


def barrier() -> None:
    """Every rank waits here until all have arrived (nothing in a single-process run)."""
    if world_size() > 1:
        _state().wait_for_everyone()


def on_main(path: Path, build: Callable[[], Any]) -> Any:
    """`build()` (a JSON value) computed by the main process alone and read from `path` by every rank.

    If the main process fails, it writes the failure there before the barrier, so the other ranks fail with it
    instead of waiting for a result that never comes."""
    if world_size() == 1:
        return build()
    if is_main():
        try:
            write_text(path, json.dumps({"value": build()}, ensure_ascii=False))  # key order kept, as in one process
        except BaseException as e:
            write_text(path, json.dumps({"error": f"{type(e).__name__}: {e}"[:300]}))
            barrier()
            raise
    barrier()
    shared = read_json(path)
    if "error" in shared:
        raise FlameError(f"the main process failed while building {path.name}: {shared['error']}")
    return shared["value"]
