"""Leaderboard: latest run wins, files are complete, concurrent writers never tear them."""

from __future__ import annotations

import json
import multiprocessing as mp
from pathlib import Path

from flame_bench.core.records import list_runs, write_run
from flame_bench.reports.leaderboard import leaderboard_rows, render_markdown, write_leaderboard


def _run(runs: Path, model: str, task: str, value: float, created: str) -> None:
    header = {"task": {"name": task, "version": "1"}, "model": {"name": model, "sha256": "x"},
              "primary_metric": "m", "metric_info": [{"key": "m", "display": "M", "percent": True}],
              "metrics": {"m": value}, "counts": {"items": 1}, "created": created}
    write_run(runs, f"{task}__{model}__{created[-2:]}", header, [{"id": "a"}])


def test_a_limited_run_never_replaces_a_full_one(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    _run(runs, "flame", "factscore_bio", 0.65, "2026-01-01T00:00:01")
    header = {"task": {"name": "factscore_bio", "version": "1"}, "model": {"name": "flame", "sha256": "x"},
              "primary_metric": "m", "metric_info": [{"key": "m", "display": "M", "percent": True}], "limit": 1,
              "metrics": {"m": 1.0}, "counts": {"items": 1}, "created": "2026-01-02T00:00:00"}
    write_run(runs, "factscore_bio__flame__limited", header, [{"id": "a"}])
    _, rows = leaderboard_rows(list_runs(runs))
    assert rows[0]["factscore_bio"]["value"] == 0.65


def test_latest_run_wins_and_markdown(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    _run(runs, "flame", "factscore_bio", 0.40, "2026-01-01T00:00:01")
    _run(runs, "flame", "factscore_bio", 0.45, "2026-01-01T00:00:02")
    _run(runs, "baseline", "alpaca_winrate", 0.5, "2026-01-01T00:00:03")
    tasks, rows = leaderboard_rows(list_runs(runs))
    assert tasks == ["alpaca_winrate", "factscore_bio"]
    by_model = {r["model"]: r for r in rows}
    assert by_model["flame"]["factscore_bio"]["value"] == 0.45
    md = render_markdown(tasks, rows)
    assert "| real | flame | - | 45.0 (n=1) |" in md and "| real | baseline | 50.0 (n=1) | - |" in md


def test_two_worlds_under_one_preset_name_are_never_merged(tmp_path: Path) -> None:
    """`default` changed its definition on 2026-12-03: runs of the old and the new default-s0 both stay visible."""
    runs = tmp_path / "runs"
    for sha, value, created in (("aaaaaaaa11", 0.44, "2026-01-01T00:00:01"),
                                ("bbbbbbbb22", 0.56, "2026-01-01T00:00:02"),
                                ("bbbbbbbb22", 0.57, "2026-01-01T00:00:03")):
        header = {"task": {"name": "factscore_bio", "version": "1"}, "model": {"name": "flame", "sha256": "x"},
                  "source": {"kind": "fact-world", "preset": "default", "seed": 0, "content_sha256": sha},
                  "primary_metric": "m", "metric_info": [{"key": "m", "display": "M", "percent": True}],
                  "metrics": {"m": value}, "counts": {"items": 1}, "created": created}
        write_run(runs, f"factscore_bio__flame__{created[-2:]}", header, [{"id": "a"}])
    _, rows = leaderboard_rows(list_runs(runs))
    assert {r["source"]: r["factscore_bio"]["value"] for r in rows} == {"default-s0@aaaaaaaa": 0.44,
                                                                        "default-s0@bbbbbbbb": 0.57}


def _writer(runs: str, out: str, n: int) -> None:
    for _ in range(n):
        write_leaderboard(Path(runs), Path(out))


def test_concurrent_writers_leave_complete_files(tmp_path: Path) -> None:
    runs, out = tmp_path / "runs", tmp_path / "out"
    for i in range(20):
        _run(runs, f"m{i}", "factscore_bio", i / 20, f"2026-01-01T00:00:{i:02d}")
    procs = [mp.get_context("fork").Process(target=_writer, args=(str(runs), str(out), 15)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    data = json.loads((out / "leaderboard.json").read_text())
    assert len(data["rows"]) == 20
    assert (out / "leaderboard.md").read_text().count("\n") == 22
    assert not list(out.glob(".*.tmp"))
