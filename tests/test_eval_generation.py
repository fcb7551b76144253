"""Evaluation decoding in system files (`eval_generation`): checked with its line, recorded in the run's key, one
decoding per comparison; without it nothing changes (greedy, 128 new tokens)."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import run_cli

from flame_bench.alignment.systems import load_system
from flame_bench.core.errors import FlameError

SYSTEM = "name: {name}\ndescription: x\nbase_model: base\nstages:\n  - recipe: sft\n{extra}"


def _system(folder: Path, name: str, extra: str = "") -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(SYSTEM.format(name=name, extra=extra))
    return path


def test_bad_eval_generation_names_its_line(tmp_path: Path):
    for extra, line, what in (("eval_generation:\n  max_new_tokens: 0\n", 7, "max_new_tokens"),
                              ("eval_generation:\n  top_p: 0\n", 7, "top_p"),
                              ("eval_generation:\n  temperatur: 0.7\n", 7, "temperatur")):
        try:
            load_system(str(_system(tmp_path, "bad", extra)))
        except FlameError as e:
            assert f"bad.yaml:{line}:" in str(e) and what in str(e), str(e)
        else:
            raise AssertionError(f"accepted {extra!r}")
    assert load_system(str(_system(tmp_path, "plain"))).eval_generation == ()


def test_compare_decodes_with_the_system_files_setting(smoke_world: Path, isolated: Path):
    short = "eval_generation: {max_new_tokens: 12}\n"
    a, b = _system(isolated, "a", short), _system(isolated, "b", short + "    config: {epochs: 1.0}\n")
    b.write_text(SYSTEM.format(name="b", extra="    config: {epochs: 1.0}\n" + short))
    code, _, err = run_cli(["compare", str(a), str(b), "--world", str(smoke_world), "--task", "factscore_bio",
                            "--limit", "3", "--quiet"])
    assert code == 0, err
    saved = json.loads(next((isolated / "results" / "comparisons").glob("a_vs_b__*.json")).read_text())
    record = json.loads((Path(saved["systems"][0]["runs"]["factscore_bio"]) / "run.json").read_text())
    assert record["generation"]["max_new_tokens"] == 12 and record["generation"]["do_sample"] is False
    c = _system(isolated, "c")  # the default decoding: refused beside one of another decoding
    code, _, err = run_cli(["compare", str(a), str(c), "--world", str(smoke_world), "--task", "factscore_bio",
                            "--limit", "3", "--quiet"])
    assert code == 2 and "decode their evaluations differently" in err
