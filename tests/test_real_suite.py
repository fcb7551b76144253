"""The real-data suite (alignments/systems/real_baseline.yaml, real_flame.yaml) in a smaller version: the real base
model (Gemma-3-270M), real SFT data and DPO prompts (ShareGPT, Wikipedia people), the real knowledge source
(wiki-leads) and the real evaluator (SmolLM2), trained and compared without a fact world.

Slow (minutes on CPU) and skipped unless the assets are installed; tests never download anything:
    flame-bench models add gemma3-270m && flame-bench models add smollm2
    flame-bench data fetch sharegpt && flame-bench data fetch wiki-leads
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
SYSTEMS = Path(__file__).parents[1] / "alignments" / "systems"


def _assets_missing() -> str | None:
    from flame_bench.core.paths import data_dir
    from flame_bench.engines.models import installed_models

    models = installed_models()
    for name in ("gemma3-270m", "smollm2"):
        if name not in models:
            return f"flame-bench models add {name}"
    for name in ("sharegpt", "wiki-leads"):
        if not (data_dir() / name / "manifest.json").is_file():
            return f"flame-bench data fetch {name}"
    return None


def test_the_real_suite_trains_and_compares_in_small(tmp_path: Path) -> None:
    missing = _assets_missing()
    if missing:
        pytest.skip(f"real assets not installed (run `{missing}`)")
    data = (SYSTEMS.parent / "data" / "real_cpu.yaml").read_text()
    smaller = {'select: "0:32"': 'select: "0:8"', 'select: "32:40"': 'select: "32:34"',
               'bio-entities, select: "0:8"': 'bio-entities, select: "0:2"', '"2700:2720"': '"2700:2703"',
               '"1812:1828"': '"1812:1814"', "rm_if_max_tokens: 48": "rm_if_max_tokens: 16"}
    small = data
    for old, new in smaller.items():
        assert old in small, old
        small = small.replace(old, new)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "real_cpu.yaml").write_text(small)
    (tmp_path / "systems").mkdir()
    for name in ("real_baseline", "real_flame"):
        text = (SYSTEMS / f"{name}.yaml").read_text().replace("max_new_tokens: 64", "max_new_tokens: 16")
        (tmp_path / "systems" / f"{name}.yaml").write_text(text.replace("pt_max_new_tokens: 64",
                                                                        "pt_max_new_tokens: 16"))
    env = {**os.environ, "FLAME_BENCH_RESULTS": str(tmp_path / "results"), "HF_HUB_OFFLINE": "1"}
    systems = [str(tmp_path / "systems" / f"{name}.yaml") for name in ("real_baseline", "real_flame")]
    run = subprocess.run([sys.executable, "-m", "flame_bench.cli", "compare", *systems, "--quiet"],
                         capture_output=True, text=True, env=env, cwd=tmp_path, timeout=3600)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "Table 11" in run.stdout and "Bio FS" in run.stdout and "Win rate" in run.stdout
    comparison = json.loads(next((tmp_path / "results" / "comparisons").glob("*real-cpu*.json")).read_text())
    flame_sft, flame_dpo = comparison["systems"][1]["stages"]
    assert flame_sft["stats"]["instructions"] == 8
    assert flame_dpo["stats"]["instructions"] == 4 and flame_dpo["stats"]["rm_if_judgements"] == 3 * 4 * 4
    for system in comparison["systems"]:
        for stage in system["stages"]:
            assert stage["stats"]["steps"] >= 1 and stage["stats"]["train_loss"] == stage["stats"]["train_loss"]
