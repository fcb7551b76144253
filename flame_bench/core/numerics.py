"""One numerics mode for every process: which float kernels torch and MKL may pick on this CPU.

MKL and ATen choose kernels by CPU: on an AVX-512 machine they use AVX-512 code paths, on an AVX2-only
machine AVX2 ones, and fp32 sums round differently. With every seed fixed, the smoke world's base model then
differs bitwise between an AVX-512 and an AVX2 x86-64 CPU, sampled tokens flip, and FLAME's delta on the default
world can change sign. The default mode, `reproducible`, pins both to their AVX2 code paths
(ATEN_CPU_CAPABILITY=avx2, MKL_CBWR=AVX2), which every x86-64 CPU of the last decade runs; measured: the smoke
base model is bit-identical on an AMD EPYC AVX2 (2 cores, 1 or 2 threads) and an AMD AVX-512 machine in this
mode. `FLAME_BENCH_NUMERICS=native` lets the libraries pick (faster on AVX-512); every record names the mode.

The settings are environment variables read when torch/MKL first dispatch, so they are applied in
`flame_bench/__init__` before anything imports torch, and inherited by every subprocess and accelerate worker.
"""

from __future__ import annotations

import os
import sys

ENV = "FLAME_BENCH_NUMERICS"
MODES = ("reproducible", "native")
PINNED = {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "AVX2"}


class NumericsError(ValueError):
    pass


def requested_mode() -> str:
    mode = os.environ.get(ENV, "reproducible").strip().lower() or "reproducible"
    if mode not in MODES:
        raise NumericsError(f"{ENV}={mode!r} is not a numerics mode; use one of {', '.join(MODES)}")
    return mode


def apply() -> None:
    """Pin the kernels for this process and its children (no-op in native mode). Call before importing torch."""
    try:
        wanted = requested_mode()
    except NumericsError as e:  # bad input: one line, exit 2 (as every CLI error)
        sys.stderr.write(f"error: {e}\n")
        raise SystemExit(2) from None
    if wanted == "reproducible":
        os.environ.update(PINNED)


def mode() -> str:
    """The mode in force, as recorded in run records, stage keys and the gate fingerprint, e.g.
    "reproducible(ATEN_CPU_CAPABILITY=avx2,MKL_CBWR=AVX2)" or "native"."""
    if requested_mode() == "native":
        return "native"
    return "reproducible(" + ",".join(f"{k}={os.environ.get(k, '')}" for k in sorted(PINNED)) + ")"


def check_applied() -> str | None:
    """A one-line problem if the mode asked for is not the one torch is running, else None."""
    if requested_mode() == "native":
        return None
    import torch

    if torch.cuda.is_available():
        return None
    missing = [k for k, v in PINNED.items() if os.environ.get(k) != v]
    if missing:
        return f"reproducible numerics not applied ({', '.join(missing)} unset): import flame_bench before torch"
    capability = torch.backends.cpu.get_cpu_capability()
    if capability not in ("AVX2", "DEFAULT") and os.uname().machine in ("x86_64", "AMD64"):
        return (f"reproducible numerics not applied: torch dispatches {capability} kernels, expected AVX2; "
                "import flame_bench before torch")
    return None
