"""The numbers the README's headline tables come from, against hand-computed values: paired deltas (with the
reference scoring 1/2 against itself on a win rate), their bootstrap CIs, the Table 3 / Table 11 renderings and
the mean ± std and pooled deltas over seeds."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest

from flame_bench.core.errors import FlameError
from flame_bench.core.records import write_run
from flame_bench.core.stats import paired_bootstrap
from flame_bench.experiments.seeds import across_seeds
from flame_bench.reports.comparison import SystemResult, deltas, training_rows
from flame_bench.reports.tables import comparison_markdown


def _record(root: Path, name: str, task: str, metric: str, value: float, items: dict[str, float], key: str):
    header = {"task": {"name": task, "version": "1"}, "model": {"name": name, "sha256": "x"},
              "primary_metric": metric, "metric_info": [{"key": metric, "display": metric, "percent": True}],
              "metrics": {metric: value}, "counts": {"items": len(items)}, "created": "2026-01-01T00:00:00"}
    return write_run(root, f"{task}__{name}__{abs(hash((name, value))) % 10**8}", header,
                     [{"id": i, key: v, "output": "x" * 10} for i, v in items.items()])


BASE_WIN = {"a": 1.0, "b": 0.0, "c": 0.5, "d": 1.0}  # the reference's own item scores: never used for its delta
FLAME_WIN = {"a": 1.0, "b": 1.0, "c": 0.5, "d": 0.0}
BASE_FS = {"a": 0.5, "b": 0.25, "c": 1.0, "d": None}
FLAME_FS = {"a": 0.75, "b": 0.25, "c": 0.5, "d": 0.9}


@pytest.fixture()
def systems(tmp_path: Path) -> list[SystemResult]:
    out = []
    for name, win, fs in (("baseline", BASE_WIN, BASE_FS), ("flame", FLAME_WIN, FLAME_FS)):
        r = SystemResult(name, name, tmp_path, [])
        r.runs = {"alpaca_winrate": _record(tmp_path / "runs", name, "alpaca_winrate", "win_rate",
                                            sum(win.values()) / 4, win, "model_score"),
                  "factscore_bio": _record(tmp_path / "runs", name, "factscore_bio", "factscore",
                                           statistics.mean(v for v in fs.values() if v is not None), fs, "factscore")}
        out.append(r)
    return out


def test_paired_deltas_match_hand_computation(systems: list[SystemResult]) -> None:
    dl = deltas(systems, seed=0)["flame"]
    # win rate: the reference scores 1/2 on every item against itself -> mean(FLAME - 0.5) = (0.5+0.5+0-0.5)/4
    assert dl["Win rate"].value == pytest.approx(0.125) and dl["Win rate"].n == 4
    # FActScore: paired on the items both scored (d is None for the baseline) -> (0.25 + 0 - 0.5) / 3
    assert dl["Bio FS"].value == pytest.approx(-0.25 / 3) and dl["Bio FS"].n == 3
    assert dl["Win rate"].low <= dl["Win rate"].value <= dl["Win rate"].high
    md = comparison_markdown(systems, deltas(systems, seed=0))
    assert "| flame | 62.5 (+12.5 [" in md and "| baseline | 62.5 | 58.3 |" in md


def test_paired_bootstrap_is_a_percentile_interval_of_resampled_means() -> None:
    a = {str(i): 0.0 for i in range(50)}
    b = {str(i): float(i % 2) for i in range(50)}  # half the items gain 1
    d = paired_bootstrap(a, b, seed=3, iters=2000)
    assert d.value == 0.5 and d.n == 50
    assert 0.35 < d.low < 0.45 and 0.55 < d.high < 0.65 and d.excludes_zero  # about +-1.96 * 0.5/sqrt(50)
    assert paired_bootstrap(a, b, seed=3, iters=2000) == d  # seeded: the same interval every time
    assert paired_bootstrap({"x": None}, {"x": 1.0}) is None  # nothing paired, no delta


def test_table_11_rows_come_from_the_stage_records(tmp_path: Path) -> None:
    flame = SystemResult("flame", "", tmp_path, [
        {"recipe": "flame_sft", "stats": {"instructions": 100, "pt_instructions": 30}},
        {"recipe": "flame_dpo", "stats": {"if_pairs": 40, "fact_pairs": 7, "train_pairs": 80, "pairs_digest": "x"}}])
    base = SystemResult("baseline", "", tmp_path, [
        {"recipe": "sft", "stats": {"instructions": 100, "pt_instructions": 0}},
        {"recipe": "dpo", "stats": {"if_pairs": 41, "fact_pairs": 6, "train_pairs": 41, "pairs_digest": "y"}}])
    assert training_rows([base, flame]) == [["baseline", "100", "-", "41", "(6 unused)", "41"],
                                            ["flame", "70", "30", "40", "7", "80"]]


def test_seeds_pool_items_each_averaged_over_seeds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLAME_BENCH_RESULTS", str(tmp_path / "results"))
    runs = tmp_path / "results" / "runs"
    per_seed = {0: ({"a": 0.5, "b": 0.5}, {"a": 1.0, "b": 0.5}), 1: ({"a": 0.2, "b": 0.4}, {"a": 0.2, "b": 1.0})}
    for seed, (base, flame) in per_seed.items():
        systems = []
        for name, items in (("baseline", base), ("flame", flame)):
            value = sum(items.values()) / 2
            rec = _record(runs, f"{name}{seed}", "factscore_bio", "factscore", value, items, "factscore")
            systems.append({"name": name, "metrics": {"Bio FS": value}, "runs": {"factscore_bio": str(rec.path)}})
        path = tmp_path / "results" / "comparisons" / f"baseline_vs_flame__w__seed{seed}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"systems": systems}))
    (tmp_path / "results" / "comparisons" / "pilot__w__seed0.json").write_text(json.dumps({"rows": []}))  # newest
    summary = across_seeds(["baseline", "flame"], "w", [0, 1])  # the pilot study's report is not a comparison
    flame = summary["systems"]["flame"]["Bio FS"]
    assert flame["values"] == [0.75, 0.6] and flame["mean"] == pytest.approx(0.675)
    assert flame["std"] == pytest.approx(statistics.stdev([0.75, 0.6]))
    pooled = summary["pooled_deltas"]["flame"]["Bio FS"]
    # item a: +0.5 and 0.0 over the seeds, item b: 0.0 and +0.6; two items, each once
    assert pooled["value"] == pytest.approx(((0.5 + 0.0) / 2 + (0.0 + 0.6) / 2) / 2) and pooled["n"] == 2


def test_repeating_a_seed_adds_no_precision() -> None:
    from flame_bench.core.stats import paired_bootstrap_over_seeds

    a = {str(i): float(i % 3) for i in range(40)}
    b = {str(i): float(i % 3) + (1.0 if i % 2 else -0.5) for i in range(40)}
    once = paired_bootstrap_over_seeds([a], [b], seed=1)
    assert once == paired_bootstrap(a, b, seed=1)
    assert paired_bootstrap_over_seeds([a] * 3, [b] * 3, seed=1) == once  # greedy rows: the same in every seed


def test_comparisons_of_evaluator_variants_never_share_files(tmp_path):
    """Names with dots (a noise level, a world folder "w.v2") keep every character: ".md" is appended, never swapped
    for a "suffix" (an RM_IF noise of 0.24 once overwrote the 0.12 comparison)."""
    from flame_bench.experiments.compare import _beside, comparison_name

    names = {comparison_name(["a", "b"], src, 0) for src in ("w__rmif0p24", "w__rmif0p12", "w.v2", "w.v3")}
    files = {_beside(tmp_path / n, ".json").name for n in names}
    assert len(files) == 4 and all(f.endswith("__seed0.json") for f in files)


def test_declared_breakdown_pairs_items_within_each_popularity_bin():
    from types import SimpleNamespace

    from flame_bench.reports.comparison import SystemResult, breakdowns

    def system(name, scores):
        r = SystemResult(name, "", None, [])
        r.runs = {"factscore_bio": SimpleNamespace()}
        r._samples["factscore_bio"] = [{"id": f"b{i}", "popularity": "0 docs" if i < 4 else "3-8 docs",
                                        "factscore": v} for i, v in enumerate(scores)]
        return r

    base = system("baseline", [0.0, 0.0, 0.5, None, 0.5, 0.5, 1.0, 1.0])
    other = system("flame", [0.5, 0.5, 0.5, 1.0, 0.5, 0.5, 0.5, 0.5])
    bins = breakdowns([base, other])["by_popularity_bin"]  # declared by factscore_bio (Task.breakdowns)
    assert list(bins) == ["0 docs", "3-8 docs"]  # in exposure order
    zero, mid = bins["0 docs"], bins["3-8 docs"]
    assert zero["baseline"]["value"] == 1 / 6 and zero["flame"]["delta"]["n"] == 3  # None is not paired
    assert abs(zero["flame"]["delta"]["value"] - 1 / 3) < 1e-12 and mid["flame"]["delta"]["value"] == -0.25
    assert zero["baseline"]["delta"] is None
    no_bins = system("x", [0.1] * 8)
    for s in no_bins._samples["factscore_bio"]:
        s.pop("popularity")
    assert breakdowns([no_bins, no_bins]) == {}


def test_seeds_give_popularity_bins_pooled_over_seeds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLAME_BENCH_RESULTS", str(tmp_path / "results"))
    runs = tmp_path / "results" / "runs"
    bins = {"a": "0 docs", "b": "0 docs", "c": "3-8 docs"}
    per_seed = {0: ({"a": 0.0, "b": 0.5, "c": 1.0}, {"a": 0.5, "b": 0.5, "c": 0.5}),
                1: ({"a": 0.0, "b": 0.0, "c": 1.0}, {"a": 0.0, "b": 0.5, "c": 1.0})}
    for seed, (base, flame) in per_seed.items():
        systems = []
        for name, items in (("baseline", base), ("flame", flame)):
            header = {"task": {"name": "factscore_bio", "version": "1"}, "model": {"name": name, "sha256": "x"},
                      "primary_metric": "factscore", "metrics": {"factscore": sum(items.values()) / 3},
                      "metric_info": [{"key": "factscore", "display": "FS", "percent": True}],
                      "counts": {"items": 3}, "created": "2026-01-01T00:00:00"}
            rec = write_run(runs, f"factscore_bio__{name}__{seed}", header,
                            [{"id": i, "factscore": v, "popularity": bins[i], "output": "x"} for i, v in items.items()])
            systems.append({"name": name, "metrics": {"Bio FS": sum(items.values()) / 3},
                            "runs": {"factscore_bio": str(rec.path)}})
        path = tmp_path / "results" / "comparisons" / f"baseline_vs_flame__w__seed{seed}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"systems": systems}))
    got = across_seeds(["baseline", "flame"], "w", [0, 1])["by_popularity_bin"]
    assert list(got) == ["0 docs", "3-8 docs"] and got["0 docs"]["flame"]["n"] == 2
    # 0 docs: baseline 0.25 then 0.0 (mean 0.125), flame 0.5 then 0.25 (0.375); items a (+0.5, 0) and b (0, +0.5)
    assert got["0 docs"]["baseline"]["value"] == pytest.approx(0.125)
    assert got["0 docs"]["flame"]["value"] == pytest.approx(0.375)
    assert got["0 docs"]["flame"]["delta"]["value"] == pytest.approx(0.25)
    assert got["0 docs"]["baseline"]["delta"] is None
    assert got["3-8 docs"]["flame"]["delta"]["value"] == pytest.approx(-0.25)  # item c: -0.5, then 0
    # comparisons of two worlds under one name (a preset redefined, its world rebuilt) are never pooled
    for seed, content in ((0, "aaaaaaaa1"), (1, "bbbbbbbb2")):
        path = tmp_path / "results" / "comparisons" / f"baseline_vs_flame__w__seed{seed}.json"
        path.write_text(json.dumps({**json.loads(path.read_text()), "source_fingerprint": {"content_sha256": content}}))
    with pytest.raises(FlameError, match=r"different worlds \(seed 0: aaaaaaaa, seed 1: bbbbbbbb\)"):
        across_seeds(["baseline", "flame"], "w", [0, 1])
