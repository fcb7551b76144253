"""Process-wide runtime settings: device choice, threads, seeding, quiet third-party logging."""

from __future__ import annotations

import os
import random

from flame_bench.core.errors import FlameError


def threads() -> int:
    """CPU threads for torch: `FLAME_BENCH_THREADS` (a whole number >= 1, default 2); one line if it is not."""
    value = os.environ.get("FLAME_BENCH_THREADS", "").strip() or "2"
    if not value.isdigit() or int(value) < 1:
        raise FlameError(f"FLAME_BENCH_THREADS={value!r} is not a thread count; set it to a whole number >= 1 "
                         "(e.g. 2) or unset it")
    return int(value)


def torch_setup(seed: int | None = None):  # -> torch.device
    """Import torch with sane CPU settings; return the device to use (CUDA when present)."""
    import torch

    if not torch.cuda.is_available():
        torch.set_num_threads(min(threads(), os.cpu_count() or 1))
    if seed is not None:
        random.seed(seed)
        torch.manual_seed(seed)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def quiet_transformers() -> None:
    import warnings

    import transformers

    # trl 1.16 still reads transformers 5's deprecated `is_gradient_checkpointing` on every trainer it builds: a
    # FutureWarning per stage that says nothing to a flame-bench user
    warnings.filterwarnings("ignore", message=r".*is_gradient_checkpointing.* is deprecated", category=FutureWarning)
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()  # "Loading weights" / "Writing model shards" bars
    try:
        import datasets

        datasets.disable_progress_bars()
        datasets.utils.logging.set_verbosity_error()
    except ImportError:  # pragma: no cover - datasets ships with trl
        pass
