"""`flame-bench world mechanisms`: five probes on the smoke-pilot world, end to end, and their statistics."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import run_cli

PROBES = {"knowledge_by_popularity", "reading", "unknown_knowledge_sft", "facttune", "dpo_length"}


def _weights(model: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(model / "model.safetensors"))


def _differs(a: dict, b: dict) -> bool:
    return any(not (a[k] == b[k]).all() for k in a)


def test_mechanisms_probe_five_behaviours_and_resume(smoke_pilot_world: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLAME_BENCH_RESULTS", str(tmp_path / "results"))
    out = tmp_path / "mechanisms.json"
    code, stdout, err = run_cli(["world", "mechanisms", "--world", str(smoke_pilot_world), "--out", str(out),
                                 "--quiet"])
    assert code == 0, err
    assert "What the world can and cannot show" in stdout
    report = json.loads(out.read_text())
    assert set(report["probes"]) == PROBES
    assert len(report["world"]["content_sha256"]) == 64 and report["environment"]["git_commit"]
    for name, p in report["probes"].items():
        assert p["sign"] in (-1, 1) and p["size"] and p["verdict"], name
        assert p["effect"] is not None and p["ci95"][0] <= p["effect"] <= p["ci95"][1] and p["n"] > 0, name

    # the unknown-knowledge SFT: equal, disjoint arms chosen by the base model's own FActScore; four checkpoints
    sft = report["probes"]["unknown_knowledge_sft"]
    assert [c["epochs"] for c in sft["curve"]] == [1, 2, 4, 8]
    stages = tmp_path / "results" / "systems" / "stages"
    records = [json.loads(p.read_text()) for p in sorted(stages.glob("*/stage.json"))]
    known_sft = [r for r in records if r["recipe"] == "known_sft"]
    assert len(known_sft) == 8 and all(r["stats"]["steps"] > 0 for r in known_sft)
    arms = known_sft[0]["stats"]["arms"]
    assert len(arms["known"]) == len(arms["unknown"]) > 0 and not set(arms["known"]) & set(arms["unknown"])
    assert all(r["stats"]["arms"] == arms for r in known_sft)  # every checkpoint of both arms agrees on who is who
    # training changed the weights: each checkpoint moved from the one before it
    by_input = {r["input_model"]: r for r in known_sft}
    first = [r for r in known_sft if Path(r["input_model"]).resolve() == (smoke_pilot_world / "model").resolve()]
    assert len(first) == 2  # one chain per arm, each starting from the base model
    for r in first:
        chain = [r]
        while (nxt := by_input.get(str(stages / f"known_sft-{chain[-1]['key'][:12]}" / "model"))) is not None:
            chain.append(nxt)
        assert len(chain) == 4
        for rec in chain:
            out_model = stages / f"known_sft-{rec['key'][:12]}" / "model"
            assert _differs(_weights(Path(rec["input_model"])), _weights(out_model))
    # FactTune: pairs of the SFT model's own bios, DPO moved its weights
    tune = next(r for r in records if r["recipe"] == "facttune_dpo")
    assert tune["stats"]["train_pairs"] > 0 and tune["stats"]["mean_fs_gap"] > 0
    tuned = stages / f"facttune_dpo-{tune['key'][:12]}" / "model"
    assert _differs(_weights(Path(tune["input_model"])), _weights(tuned))

    # a second run trains nothing: every stage is reused, and the report is the same
    before = sorted(p.name for p in stages.iterdir())
    code, _, err = run_cli(["world", "mechanisms", "--world", str(smoke_pilot_world), "--out", str(out), "--quiet"])
    assert code == 0, err
    assert sorted(p.name for p in stages.iterdir()) == before
    again = json.loads(out.read_text())
    assert {n: p["effect"] for n, p in again["probes"].items()} == {n: p["effect"] for n, p in report["probes"].items()}


def test_mechanisms_refuse_a_world_without_reading_documents(smoke_world: Path, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLAME_BENCH_RESULTS", str(tmp_path / "results"))
    code, _, err = run_cli(["world", "mechanisms", "--world", str(smoke_world), "--quiet"])
    assert code != 0 and "has no reading documents" in err and "Traceback" not in err
    assert not (tmp_path / "results" / "systems").exists()


def test_known_unknown_split_is_by_the_base_models_factscore() -> None:
    from flame_bench.core.registry import load_builtin

    load_builtin()
    from flame_bench_recipes.mechanisms import KnownSFTConfig, split_by_knowledge

    names = [f"p{i}" for i in range(10)]
    scores = [1.0, 0.9, 0.8, 0.5, 0.3, 0.2, 0.0, None, 0.1, 0.75]
    arms = split_by_knowledge(names, scores, 0.75, 0.25, people=3, seed=0)
    assert len(arms["known"]) == len(arms["unknown"]) == 3
    assert set(arms["known"]) <= {"p0", "p1", "p2", "p9"} and set(arms["unknown"]) <= {"p5", "p6", "p8"}
    short = split_by_knowledge(names, scores, 0.75, 0.25, people=10, seed=0)  # 4 known, 3 unknown: 3 each
    assert short["unknown"] == ["p5", "p6", "p8"] and len(short["known"]) == 3
    with pytest.raises(ValueError, match="unknown_max_fs < known_min_fs"):
        KnownSFTConfig(known_min_fs=0.2, unknown_max_fs=0.5)
    with pytest.raises(ValueError, match="knowledge must be one of known, unknown"):
        KnownSFTConfig(knowledge="some")


def test_two_sample_bootstrap_sees_a_shift_and_no_shift() -> None:
    from flame_bench.core.stats import two_sample_bootstrap

    a = [float(i % 7) for i in range(60)]
    shifted = two_sample_bootstrap(a, [x + 5 for x in a], seed=1)
    assert shifted is not None and shifted.value == pytest.approx(5.0) and shifted.excludes_zero
    same = two_sample_bootstrap(a, list(reversed(a)), seed=1)
    assert same is not None and same.value == pytest.approx(0.0) and not same.excludes_zero
    assert two_sample_bootstrap([], a) is None


@pytest.mark.parametrize(("setting", "message"), [
    ("lr=3", "unknown known_sft setting 'lr'"), ("learning_rate=abc", "'abc' is not a number"),
    ("people=0", "people must be a positive number"), ("epochs=2", "other than knowledge and epochs")])
def test_known_sft_settings_are_checked_before_anything_trains(smoke_world: Path, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch, setting: str,
                                                              message: str) -> None:
    monkeypatch.setenv("FLAME_BENCH_RESULTS", str(tmp_path / "results"))
    code, _, err = run_cli(["world", "mechanisms", "--world", str(smoke_world), "--known-sft", setting, "--quiet"])
    assert code != 0 and message in err and "Traceback" not in err
    assert not (tmp_path / "results" / "systems").exists()
