"""The paper-scale plan's parts work (speeds are reported by `flame-bench bench --scale`, never asserted here): the
simulated endpoint answers the real client, a crash mid-run loses no answered call, retrieval projects from its
measured sizes, and the cost model's arithmetic follows its stated parameters."""

from __future__ import annotations

import pytest

from flame_bench.experiments import scale


def test_the_simulated_endpoint_serves_the_client_and_a_crash_loses_no_answered_call():
    from flame_bench.engines.llm.client import OpenAIBackend

    with scale.simulated_endpoint(latency=0.0) as url:
        assert OpenAIBackend(url, "sim", workers=4).complete(["a", "b"]) == ["reply to a", "reply to b"]
    crash = scale._crash_midway(0.0, quick=True)
    assert crash["stored_in_cache"] == crash["answered_before_crash"] and crash["lost"] == 0


def test_the_client_keeps_one_connection_per_worker():
    from flame_bench.engines.llm.client import OpenAIBackend

    stats: dict[str, int] = {}
    with scale.simulated_endpoint(latency=0.02, stats=stats) as url:
        OpenAIBackend(url, "sim", workers=32).complete([f"q{i}" for i in range(160)])
    # 160 calls over 32 kept-alive connections (httpx's default pool keeps 20 alive and reconnects the rest)
    assert stats["requests"] == 160 and stats["connections"] <= 32


def test_retrieval_projects_from_two_measured_sizes():
    out = scale.bench_retrieval((2_000, 4_000), target=8_000)
    assert [r["passages"] for r in out["rows"]] == [2_000, 4_000]
    a, b = out["rows"]
    assert out["projected"]["build_s"] == pytest.approx(b["build_s"] + 2 * (b["build_s"] - a["build_s"]))


def test_the_cost_model_follows_its_parameters():
    base = scale.cost_model()
    calls = {r["stage"].split(" (")[0]: r["calls"] for r in base["stages"]}
    assert calls["DPO sampling"] == 20_000 * 4 and calls["RM_IF"] == 3 * 80_000
    doubled = scale.cost_model({"facts_per_sentence": 5.0})

    def verifications(model):
        return next(r["calls"] for r in model["stages"] if r["stage"].startswith("RM_fact verification"))

    assert verifications(doubled) == 2 * verifications(base)


def test_the_cost_model_checks_the_counted_structure_against_the_papers():
    ok = scale.cost_model(structure={"samples_per_instruction": 4.0, "retrievals_per_response": 1.0})
    assert ok["total_calls"] == scale.cost_model()["total_calls"]
    assert ok["rm_fact_retrievals"] == int(80_000 * 1013 / 3200)
    with pytest.raises(ValueError, match=r"scored 2\.0 samples per instruction, the paper 4"):
        scale.cost_model(structure={"samples_per_instruction": 2.0, "retrievals_per_response": 1.0})


def test_the_sharded_projection_is_linear_in_passages_memory_included():
    rows = [{"passages": 1_000, "build_s": 1.0, "build_peak_rss_mb": 100.0, "disk_mb": 10.0, "query_ms": 2.0},
            {"passages": 5_000, "build_s": 5.0, "build_peak_rss_mb": 140.0, "disk_mb": 50.0, "query_ms": 10.0}]
    out = scale.project_sharded(rows, 21_000, 1_000)
    assert out["shards"] == 21 and out["build_s"] == pytest.approx(21.0) and out["disk_mb"] == pytest.approx(210.0)
    assert out["build_peak_rss_mb"] == pytest.approx(140.0 + 16 * 10.0)  # grew 10 MB per 1,000 passages
