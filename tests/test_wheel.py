"""flame-bench as users install it: a wheel that holds every task, recipe, system, data suite and golden, and
that runs `compare baseline flame` from an empty directory with no checkout in sight.

The fresh environment gets the wheel alone (`pip install --no-deps --no-index`); its third-party dependencies
come from the test's own environment through a path entry (not a site directory, so the checkout's editable
install there stays invisible). Offline: the wheel is built without build isolation.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHIPPED = {  # checkout folder -> the wheel's package, and which files must be in it
    "tasks": ("flame_bench_tasks", ("*/task.py", "*/README.md", "*/*.yaml")),
    "alignments": ("flame_bench_alignments", ("recipes/*.py", "systems/*.yaml", "data/*.yaml", "accelerate/*.yaml")),
    "results": ("flame_bench_results", ("baselines/*.json", "published/*.json")),
}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    shutil.rmtree(REPO / "build", ignore_errors=True)  # setuptools would reuse a stale build/lib
    try:
        subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                        str(out), str(REPO)], check=True, capture_output=True, text=True, timeout=300)
    finally:
        shutil.rmtree(REPO / "build", ignore_errors=True)
    return next(out.glob("flame_bench-*.whl"))


def test_the_wheel_holds_every_task_recipe_system_data_suite_and_golden(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {f"{package}/{p.relative_to(REPO / folder).as_posix()}"
                for folder, (package, globs) in SHIPPED.items() for g in globs for p in (REPO / folder).glob(g)}
    assert len(expected) > 30 and expected <= names, sorted(expected - names)
    modules = {f"flame_bench/{p.relative_to(REPO / 'flame_bench').as_posix()}"
               for p in (REPO / "flame_bench").rglob("*.py")}
    assert modules <= names, sorted(modules - names)  # a new layer folder must be listed in pyproject.toml
    results = {n for n in names if n.startswith("flame_bench_results/") and not n.endswith("__init__.py")}
    assert all(n.startswith(("flame_bench_results/baselines/", "flame_bench_results/published/")) for n in results), \
        sorted(results)  # records, comparisons, the leaderboard and the notebook stay in the checkout


def test_installed_from_the_wheel_compare_runs_from_an_empty_directory(wheel: Path, tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(env_dir)], check=True, timeout=120)
    py = env_dir / "bin" / "python"
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)], check=True,
                   capture_output=True, text=True, timeout=300)
    site = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    (site / "zz_test_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")  # torch, trl, ...
    empty = tmp_path / "empty"
    empty.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("FLAME_BENCH_RESULTS", "PYTHONPATH")}
    env |= {"FLAME_BENCH_HOME": str(tmp_path / "home"), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    where = subprocess.run([str(py), "-c", "import flame_bench, flame_bench_tasks; print(flame_bench.__file__); "
                            "print(flame_bench_tasks.__file__)"], cwd=empty, env=env, capture_output=True, text=True)
    assert where.returncode == 0, where.stderr
    assert all(line.startswith(str(site)) for line in where.stdout.split()), where.stdout  # not the checkout
    ran = subprocess.run([str(env_dir / "bin" / "flame-bench"), "compare", "baseline", "flame", "--preset", "smoke",
                          "--quiet"], cwd=empty, env=env, capture_output=True, text=True, timeout=900)
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert "Bio FS" in ran.stdout and "DPO train pairs" in ran.stdout
    saved = list((empty / "results" / "comparisons").glob("baseline_vs_flame__smoke-s0__seed0.*"))
    assert {p.suffix for p in saved} >= {".md", ".json", ".png"}
    commit = next((empty / "results" / "runs").glob("factscore_bio__flame__*/run.json")).read_text()
    assert '"installed-0.1.0"' in commit  # the record says it ran from an installed wheel, not a checkout
