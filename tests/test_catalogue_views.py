"""Views of run records never contradict them (hostile-user catalogue N5, N6, D2/R12, D4/D7/X3, G3, Q1/Q2/Q6/Q7/Q12).

Records are built directly with `write_run`: nothing is trained or generated."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest

from flame_bench.core.errors import FlameError
from flame_bench.core.records import RunRecord, list_runs, write_run

HOSTILE = "x | 99.9 | <script>alert(1)</script>"
REMOTE = {"kind": "openai", "base_url": "http://***@127.0.0.1:18099/v1", "model": "mock"}


def _run(runs: Path, model: str, value: float, name: str, task: str = "factscore_bio", backend: dict | None = None,
         created: str = "2026-01-01T00:00:01", items: dict[str, float] | None = None) -> RunRecord:
    header = {"task": {"name": task, "version": "1", "kind": "generative"},
              "model": {"name": model, "sha256": "x", "path": "m"},
              "primary_metric": "factscore", "metric_info": [{"key": "factscore", "display": "FActScore",
                                                               "percent": True, "higher_is_better": True}],
              "metrics": {"factscore": value}, "confidence_intervals": {"factscore": [0.0, 1.0]},
              "counts": {"items": 1}, "created": created,
              "generation": {"max_new_tokens": 8, **({"backend": backend} if backend else {})}}
    samples = [{"id": i, "factscore": v, "output": "o", "instruction": "Tell me a bio of A."}
               for i, v in (items or {"a": 0.5}).items()]
    return write_run(runs, name, header, samples)


def _table_rows(md: str) -> list[list[str]]:
    """The cells of each markdown table row, split as GFM splits them (an escaped `\\|` stays inside its cell)."""
    return [re.split(r"(?<!\\)\|", line.strip()[1:-1]) for line in md.splitlines() if line.startswith("|")]


# N5 (BAD): a `|` in a name never adds a column, and no HTML in any markdown table is live
def test_markdown_tables_escape_cells(tmp_path: Path) -> None:
    from flame_bench.reports.comparison import SystemResult
    from flame_bench.reports.leaderboard import write_leaderboard
    from flame_bench.reports.runs import md_cell, render_text
    from flame_bench.reports.tables import comparison_markdown

    assert md_cell("a|b <i>&\nc\\") == "a\\|b &lt;i&gt;&amp; c\\\\"
    runs = tmp_path / "runs"
    rec = _run(runs, HOSTILE, 0.25, "factscore_bio__x__1")
    write_leaderboard(runs, tmp_path)
    shown = {"leaderboard": (tmp_path / "leaderboard.md").read_text(), "report": render_text([rec], "md"),
             "comparison": comparison_markdown([SystemResult(HOSTILE, "", tmp_path, [], {"factscore_bio": rec})], {})}
    for what, md in shown.items():
        rows = _table_rows(md)
        assert len({len(r) for r in rows}) == 1, what  # every row as wide as the header
        assert "<script>" not in md and "&lt;script&gt;" in md and "99.9" not in md.replace("x \\| 99.9", ""), what
    assert "| 25.0 (n=1) |" in shown["leaderboard"]


# N6: a text cell that a spreadsheet would run as a formula is quoted; numbers stay numbers
def test_csv_cells_never_start_a_formula(tmp_path: Path) -> None:
    from flame_bench.reports.runs import render_text

    rec = _run(tmp_path / "runs", '=HYPERLINK("http://evil/","x")', -0.5, "factscore_bio__h__1")
    row = next(csv.DictReader(io.StringIO(render_text([rec], "csv"))))
    assert row["model"] == '\'=HYPERLINK("http://evil/","x")' and row["value"] == "-0.5"


# D4/D7/X3: a NaN metric is "invalid: nan" with a warning, and strict JSON (null + flag) everywhere
def test_a_nan_metric_is_invalid_in_every_view(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from flame_bench.reports.exports import export
    from flame_bench.reports.html import runs_html
    from flame_bench.reports.runs import render_text

    rec = _run(tmp_path / "runs", "base", float("nan"), "factscore_bio__base__1", items={"a": float("nan")})
    md = render_text([rec], "md")
    assert "| invalid: nan | 1 |" in md and "nan [" not in md
    assert "not numbers" in capsys.readouterr().err
    row = json.loads(render_text([rec], "json"), parse_constant=pytest.fail)[0]
    assert row["value"] is None and row["invalid"] == "nan" and row["ci_low"] is None
    page = runs_html([rec])
    data = json.loads(re.search(r'id="flame-data">(.*?)</script>', page, re.S).group(1), parse_constant=pytest.fail)
    assert data["table"]["base"]["Bio FS"] == {"value": None, "invalid": "nan", "delta": None, "ci": None}
    assert "invalid: nan" in page
    export(rec, "lm-eval", tmp_path / "lm")
    results = json.loads(next((tmp_path / "lm").glob("results_*.json")).read_text(), parse_constant=pytest.fail)
    assert results["results"]["factscore_bio"]["factscore,none"] is None
    assert "factscore,none: nan" in capsys.readouterr().err
    for line in next((tmp_path / "lm").glob("samples_*.jsonl")).read_text().splitlines():
        json.loads(line, parse_constant=pytest.fail)


def _comparison(tmp_path: Path, seed: int, values: dict[str, float], saved: dict[str, float] | None = None,
                source: str = "w", limit: int | None = None) -> Path:
    runs = tmp_path / "results" / "runs"
    systems = []
    for name, value in values.items():
        rec = _run(runs, name, value, f"factscore_bio__{name}__{seed}_{source}", items={"a": 0.5, "b": 1.0})
        systems.append({"name": name, "metrics": {"Bio FS": (saved or values)[name]},
                        "runs": {"factscore_bio": str(rec.path)}})
    path = tmp_path / "results" / "comparisons" / (f"{'_vs_'.join(values)}__{source}__seed{seed}"
                                                   + (f"__limit{limit}" if limit else "") + ".json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"systems": systems, "source": {"kind": "fact-world", "path": "/worlds/w"}}))
    return path


# Q6: a NaN metric is left out of mean and std, and named; Q7: an edited comparison is refused, naming its file
def test_seeds_leave_out_nan_and_refuse_a_stale_comparison(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    from flame_bench.experiments.seeds import across_seeds
    from flame_bench.reports.tables import seeds_table

    monkeypatch.setenv("FLAME_BENCH_RESULTS", str(tmp_path / "results"))
    _comparison(tmp_path, 0, {"baseline": 0.5, "flame": float("nan")})
    _comparison(tmp_path, 1, {"baseline": 0.7, "flame": 0.6})
    _comparison(tmp_path, 2, {"baseline": 0.9, "flame": 0.8})
    summary = across_seeds(["baseline", "flame"], "w", [0, 1, 2])
    flame = summary["systems"]["flame"]["Bio FS"]
    assert flame["values"] == [0.6, 0.8] and flame["mean"] == pytest.approx(0.7) and flame["std"] is not None
    assert summary["left_out"] == ["flame Bio FS seed 0: nan"] and "flame Bio FS seed 0: nan" in capsys.readouterr().err
    seeds_table(summary, ["baseline", "flame"])
    edited = _comparison(tmp_path, 1, {"baseline": 1.0, "flame": 0.6}, saved={"baseline": 0.8, "flame": 0.6})
    with pytest.raises(FlameError, match=rf"{re.escape(str(edited))}: baseline Bio FS is 0.8 but its run record .* has "
                                         r"1.0 \(a stale or edited comparison\); re-run `flame-bench compare baseline "
                                         r"flame --seed 1 --world /worlds/w`"):
        across_seeds(["baseline", "flame"], "w", [0, 1])


# Q1/Q2/Q12: what is missing, and what is there instead
def test_seeds_say_what_is_missing_and_what_exists(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from flame_bench.experiments.seeds import across_seeds

    monkeypatch.setenv("FLAME_BENCH_RESULTS", str(tmp_path / "results"))
    _comparison(tmp_path, 0, {"baseline": 0.5, "flame": 0.6}, source="smoke-s0")
    _comparison(tmp_path, 3, {"baseline": 0.5, "flame": 0.6}, source="smoke-s0", limit=2)
    with pytest.raises(FlameError, match=r"no saved comparison holds system 'nosuchsys' \(saved comparisons hold: "
                                         r"baseline, flame\)"):
        across_seeds(["nosuchsys"], "smoke-s0", [0])
    with pytest.raises(FlameError, match=r"no saved comparison on 'smoke' \(saved comparisons are on: smoke-s0\).*"
                                         r"--seed 0 --world <the folder of world smoke>"):
        across_seeds(["baseline", "flame"], "smoke", [0])
    with pytest.raises(FlameError, match=r"only a limited comparison .* seed 3 is saved \(baseline_vs_flame__smoke-s0__"
                                         r"seed3__limit2.json\).*--seed 3 --world /worlds/w` \(no --limit\)"):
        across_seeds(["baseline", "flame"], "smoke-s0", [3])
    with pytest.raises(FlameError, match=r"with seed 4 \(saved seeds: 0\); run `flame-bench compare baseline flame "
                                         r"--seed 4 --world /worlds/w` first"):
        across_seeds(["baseline", "flame"], "smoke-s0", [4])


# D2/R12: a carried-over cell says why, and the board says how many it carried over
def test_carried_over_cells_are_labelled_and_counted(tmp_path: Path) -> None:
    from flame_bench.reports.leaderboard import write_leaderboard

    runs = tmp_path / "runs"
    _run(runs, "baseline", 0.4, "factscore_bio__baseline__1")
    damaged = _run(runs, "flame", 0.5, "factscore_bio__flame__1")
    _run(runs, "gone", 0.6, "factscore_bio__gone__1")
    write_leaderboard(runs, tmp_path)
    (damaged.path / "run.json").write_text("{not json")
    for p in (runs / "factscore_bio__gone__1").iterdir():
        p.unlink()
    (runs / "factscore_bio__gone__1").rmdir()
    skipped: list[str] = []
    write_leaderboard(runs, tmp_path, skipped)
    board = (tmp_path / "leaderboard.md").read_text()
    assert "50.0 (n=1, run record unreadable)" in board and "60.0 (n=1, run not in this results/runs)" in board
    assert any("2 cell(s) carried over" in s for s in skipped)
    from flame_bench.reports import leaderboard
    assert "pure function" not in (leaderboard.__doc__ or "")


# G3 (BAD): a run generated by another server never shares or replaces the local model's cell
def test_a_served_run_is_labelled_with_its_backend(tmp_path: Path) -> None:
    from flame_bench.reports.leaderboard import leaderboard_rows
    from flame_bench.reports.runs import render_text

    runs = tmp_path / "runs"
    _run(runs, "base", 1.0, "factscore_bio__base__local")
    remote = _run(runs, "base", 0.5, "factscore_bio__base__remote", backend=REMOTE, created="2026-01-02T00:00:00")
    _, rows = leaderboard_rows(list_runs(runs))
    label = "base [gen: mock@http://127.0.0.1:18099/v1]"
    assert {r["model"]: r["factscore_bio"]["value"] for r in rows} == {"base": 1.0, label: 0.5}
    assert f"| {label} |" in render_text([remote], "md") and "***" not in label
