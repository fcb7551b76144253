"""The numerics mode: pinned float kernels in every process, named in every record."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from flame_bench.core import numerics
from flame_bench.core.io import sha256_file
from flame_bench.core.provenance import environment

PROBE = ("import os, flame_bench, torch; from flame_bench.core import numerics; "
         "print(json.dumps({'mode': numerics.mode(), 'problem': numerics.check_applied(), "
         "'mkl': os.environ.get('MKL_CBWR'), 'aten': os.environ.get('ATEN_CPU_CAPABILITY'), "
         "'capability': torch.backends.cpu.get_cpu_capability()}))")


def probe(**env: str) -> dict:
    clean = {k: v for k, v in os.environ.items() if k not in (*numerics.PINNED, numerics.ENV)} | env
    out = subprocess.run([sys.executable, "-c", "import json; " + PROBE], env=clean, capture_output=True,
                         text=True, check=True)
    return json.loads(out.stdout)


def test_importing_flame_bench_pins_the_kernels_before_torch() -> None:
    got = probe()
    assert got["problem"] is None and got["mkl"] == "AVX2" and got["aten"] == "avx2"
    if os.uname().machine == "x86_64":
        assert got["capability"] == "AVX2"
    assert got["mode"] == "reproducible(ATEN_CPU_CAPABILITY=avx2,MKL_CBWR=AVX2)"


def test_this_test_session_runs_in_the_reproducible_mode() -> None:
    assert numerics.check_applied() is None  # conftest imports flame_bench before anything imports torch


def test_native_mode_leaves_the_libraries_alone_and_says_so() -> None:
    got = probe(FLAME_BENCH_NUMERICS="native")
    assert got["mode"] == "native" and got["mkl"] is None and got["aten"] is None


def test_the_check_sees_a_process_where_the_mode_was_not_applied(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MKL_CBWR")
    assert "MKL_CBWR" in (numerics.check_applied() or "")


def test_an_unknown_mode_is_a_one_line_error() -> None:
    env = os.environ | {numerics.ENV: "fast"}
    out = subprocess.run([sys.executable, "-c", "import flame_bench"], env=env, capture_output=True, text=True)
    assert out.returncode != 0 and out.stderr.strip().splitlines() == [
        "error: FLAME_BENCH_NUMERICS='fast' is not a numerics mode; use one of reproducible, native"]


def test_records_and_world_builds_name_the_mode(smoke_world: Path) -> None:
    assert environment()["numerics"] == numerics.mode()
    base = json.loads((smoke_world / "manifest.json").read_text())["base_model"]
    assert base["numerics"] == numerics.mode()
    assert base["weights_sha256"] == sha256_file(smoke_world / "model" / "model.safetensors")


def test_bench_measures_both_modes_each_in_its_own_process(smoke_world: Path) -> None:
    from flame_bench.experiments.bench import bench_numerics
    from flame_bench.world.store import WorldDir

    got = bench_numerics(WorldDir.open(smoke_world), quick=True)
    assert got["modes"]["native"]["mode"] == "native"
    assert got["modes"]["reproducible"]["mode"] == numerics.mode()
    ratios = [v for k, v in got.items() if k.endswith("_native_over_reproducible")]
    assert len(ratios) == 3 and all(r > 0 for r in ratios)
