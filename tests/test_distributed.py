"""`accelerate launch --num_processes 2` (gloo on this CPU) running a smoke comparison: the main process alone samples,
scores and publishes; both ranks train; the result is one set of stages and records, with the same preference pairs
as one process."""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
from pathlib import Path

import yaml

SYSTEMS = {
    "dist_sft": [{"recipe": "sft", "config": {"max_instructions": 24, "epochs": 1.0, "batch_size": 8}}],
    "dist_flame": [{"recipe": "flame_dpo", "config": {"max_instructions": 24, "batch_size": 4,
                                                      "max_new_tokens": 48}}],
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _compare(launcher: list[str], systems: list[Path], world: Path, results: Path, home: Path) -> None:
    env = {**os.environ, "FLAME_BENCH_RESULTS": str(results), "FLAME_BENCH_HOME": str(home),
           "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    cmd = [*launcher, "compare", *map(str, systems), "--world", str(world), "--task", "factscore_bio",
           "--limit", "5", "--quiet"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]


def _stages(results: Path) -> dict[str, dict]:
    root = results / "systems" / "stages"
    assert not list(root.glob(".*.partial")), "a stage was left half-built"
    return {d.name: json.loads((d / "stage.json").read_text()) for d in root.iterdir() if d.is_dir()}


def test_two_processes_train_once_with_the_pairs_of_one(smoke_world, tmp_path):
    files = []
    for name, stages in SYSTEMS.items():
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump({"name": name, "description": "distributed smoke", "base_model": "base",
                                        "stages": stages}))
        files.append(path)
    accelerate = str(Path(sys.executable).parent / "accelerate")
    two = [accelerate, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
           "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(_free_port()),
           "-m", "flame_bench.cli"]
    _compare(two, files, smoke_world, tmp_path / "two", tmp_path / "home")
    _compare([sys.executable, "-m", "flame_bench.cli"], files, smoke_world, tmp_path / "one", tmp_path / "home")

    one, two = _stages(tmp_path / "one"), _stages(tmp_path / "two")
    assert sorted(n.split("-")[0] for n in two) == ["flame_dpo", "sft"]  # each stage published once
    for name, record in two.items():
        assert record["processes"] == record["key_parts"]["processes"] == 2  # another model than one process's
        assert math.isfinite(record["stats"]["train_loss"]) and record["stats"]["steps"] > 0
        stage_dir = tmp_path / "two" / "systems" / "stages" / name
        assert not list(stage_dir.glob("*.shared.json"))  # what the other rank read is not part of the stage
        assert (stage_dir / "model" / "model.safetensors").is_file()
    # training on two ranks moved the weights: the SFT stage's model is not the base model it started from
    from safetensors.torch import load_file

    base = load_file(str(smoke_world / "model" / "model.safetensors"))
    sft_dir = next(tmp_path / "two" / "systems" / "stages" / n for n in two if n.startswith("sft-"))
    trained = load_file(str(sft_dir / "model" / "model.safetensors"))
    assert any(not (trained[k] == base[k]).all() for k in base if k in trained)
    by_recipe = {n.split("-")[0]: r["stats"] for n, r in one.items()}
    dpo = next(r["stats"] for n, r in two.items() if n.startswith("flame_dpo-"))
    assert dpo["pairs_digest"] == by_recipe["flame_dpo"]["pairs_digest"]  # sampled and scored once, as one process
    assert dpo["train_pairs"] == by_recipe["flame_dpo"]["train_pairs"] > 0
    sft = next(r["stats"] for n, r in two.items() if n.startswith("sft-"))
    assert sft["examples"] == by_recipe["sft"]["examples"]
    # two ranks split each epoch's batches: fewer optimizer steps than one process
    assert sft["steps"] < by_recipe["sft"]["steps"]

    runs = [json.loads(p.read_text()) for p in (tmp_path / "two" / "runs").glob("*/run.json")]
    # one record per system and task, written by the main process alone
    assert sorted(r["model"]["name"] for r in runs) == ["dist_flame", "dist_sft"]
    assert len(list((tmp_path / "two" / "comparisons").glob("*.json"))) == 1


RANK_SCRIPT = """
import sys
from pathlib import Path
from flame_bench.alignment import distributed
from flame_bench.core.errors import FlameError

out, fail = Path(sys.argv[1]), sys.argv[2] == "fail"

def build():
    (out / f"built-by-{distributed.rank()}").touch()
    if fail:
        raise RuntimeError("no pairs")
    return {"pairs": [1, 2, 3]}

try:
    value = distributed.on_main(out / "pairs.shared.json", build)
    (out / f"got-{distributed.rank()}").write_text(repr(value))
except (FlameError, RuntimeError) as e:
    (out / f"error-{distributed.rank()}").write_text(str(e))
"""


def test_on_main_builds_once_and_every_rank_reads_it_or_fails_with_it(tmp_path):
    script = tmp_path / "rank.py"
    script.write_text(RANK_SCRIPT)
    for mode in ("ok", "fail"):
        out = tmp_path / mode
        out.mkdir()
        port = str(_free_port())
        procs = [subprocess.Popen([sys.executable, str(script), str(out), mode],
                                  env={**os.environ, "RANK": str(r), "LOCAL_RANK": str(r), "WORLD_SIZE": "2",
                                       "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port})
                 for r in range(2)]
        assert [p.wait(timeout=120) for p in procs] == [0, 0]
        assert sorted(f.name for f in out.iterdir() if f.name.startswith("built")) == ["built-by-0"]
        if mode == "ok":
            assert (out / "got-0").read_text() == (out / "got-1").read_text() == "{'pairs': [1, 2, 3]}"
        else:  # the main process's failure reaches the other rank instead of leaving it at the barrier
            assert (out / "error-0").read_text() == "no pairs"
            assert "main process failed" in (out / "error-1").read_text()
            assert "RuntimeError: no pairs" in (out / "error-1").read_text()


def test_the_example_deepspeed_and_fsdp_configs_are_valid_for_accelerate():
    """accelerate's own loader refuses unknown keys; every plugin key must also be one `accelerate launch` takes."""
    from accelerate.commands.config.config_args import ClusterConfig
    from accelerate.commands.launch import launch_command_parser

    options = {action.dest for action in launch_command_parser()._actions}
    root = Path(__file__).resolve().parents[1] / "alignments" / "accelerate"
    kinds = {}
    for name in ("deepspeed_zero3.yaml", "fsdp.yaml"):
        config = ClusterConfig.from_yaml_file(str(root / name))
        plugin = config.deepspeed_config or config.fsdp_config
        assert plugin and set(plugin) <= options, set(plugin) - options
        assert config.num_processes == 8 and config.mixed_precision == "bf16"
        kinds[name] = str(config.distributed_type)
    assert kinds == {"deepspeed_zero3.yaml": "DistributedType.DEEPSPEED", "fsdp.yaml": "DistributedType.FSDP"}
    assert ClusterConfig.from_yaml_file(str(root / "deepspeed_zero3.yaml")).deepspeed_config["zero_stage"] == 3
