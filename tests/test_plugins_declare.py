"""Plugins declare what the core shows of them: a task that brings its own data set (built from the fact world's
ground truth, or read from its own folder on real data) and a recipe with Table 11 statistics of its own, each
written to a temporary folder with no other file touched, run through the CLI in fresh processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

TASK = '''
"""`birth_year_qa`: "When was X born?", right when the answer holds the person's true birth year."""
import json
from pathlib import Path

from flame_bench.core.registry import TASKS
from flame_bench.core.task_api import Column, MetricInfo, Task, TaskData, TaskResult


def world_items(source):  # the fact world's ground truth, no regex over pages
    people = [p for p in source.world.people if p["split"] == "eval_bio"][:12]
    return [{"id": p["id"], "instruction": f"When was {p['name']} born?", "gold": p["attributes"]["birth_year"]}
            for p in people]


def real_items(source):  # real data: the file beside this one
    return [json.loads(line) for line in (Path(__file__).parent / "items.jsonl").read_text().splitlines()]


DATA = TaskData("birth_years", "1", world=world_items, real=real_items)


def score(ctx, gens):
    hits = [float(str(it["gold"]) in out) for it, out in zip(gens.items, gens.outputs, strict=True)]
    samples = [{"id": it["id"], "output": out, "correct": h} for it, out, h in zip(gens.items, gens.outputs, hits)]
    return TaskResult({"accuracy": sum(hits) / len(hits)}, samples, counts={"items": len(hits)})


TASKS.register("birth_year_qa")(Task(
    name="birth_year_qa", version="1", kind="generative", description="Birth years asked directly.",
    metrics=(MetricInfo("accuracy", "Year acc"),), load=lambda ctx: DATA.items(ctx.source), score=score,
    primary_metric="accuracy", data=DATA, columns=(Column("Year acc", "accuracy", "correct", position=26),)))
'''

RECIPE = '''
"""`sft_short`: SFT on the seed responses of at most 40 words, with a Table 11 column of its own."""
from dataclasses import asdict, dataclass

from flame_bench.alignment.stages import Recipe, positive
from flame_bench.core.registry import RECIPES


@dataclass
class ShortConfig:
    learning_rate: float = 3e-4
    epochs: float = 1.0

    def __post_init__(self):
        positive(self, "learning_rate", "epochs")


def run(ctx, config):
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    from flame_bench.alignment.training import chat_example, train_trl

    seed = ctx.source.sft_examples()
    kept = [chat_example(r["instruction"], r["response"]) for r in seed if len(r["response"].split()) <= 40]
    stats = train_trl(ctx, SFTTrainer, SFTConfig, Dataset.from_list(kept), "SFT (short)",
                      learning_rate=config.learning_rate, num_train_epochs=config.epochs,
                      per_device_train_batch_size=16, max_length=192)
    return {"instructions": len(seed), "kept": len(kept), **stats, "config": asdict(config)}


RECIPES.register("sft_short")(Recipe(
    "sft_short", "1", "SFT on short seed responses", ShortConfig, run,
    training_data=lambda s: {"seed #inst x∉X_fact": str(s["kept"]),
                             "short responses kept": f"{s['kept']}/{s['instructions']}"}))
'''


def _plugins(tmp_path: Path) -> tuple[Path, Path]:
    tasks, recipes = tmp_path / "my_tasks", tmp_path / "my_recipes"
    (tasks / "birth_year_qa").mkdir(parents=True)
    recipes.mkdir()
    (tasks / "birth_year_qa" / "task.py").write_text(textwrap.dedent(TASK))
    (tasks / "birth_year_qa" / "items.jsonl").write_text(
        json.dumps({"id": "q1", "instruction": "When was Ada Lovelace born?", "gold": "1815"}) + "\n")
    (recipes / "sft_short.py").write_text(textwrap.dedent(RECIPE))
    return tasks, recipes


def test_a_task_brings_its_own_data_and_a_recipe_its_own_table11_column(smoke_world: Path, tmp_path: Path) -> None:
    tasks, recipes = _plugins(tmp_path)
    env = {**os.environ, "FLAME_BENCH_TASK_PATH": str(tasks), "FLAME_BENCH_RECIPE_PATH": str(recipes),
           "FLAME_BENCH_RESULTS": str(tmp_path / "results"), "FLAME_BENCH_HOME": str(tmp_path / "home")}
    system = tmp_path / "short.yaml"
    system.write_text("name: short\ndescription: SFT on short responses\nbase_model: base\n"
                      "stages:\n  - recipe: sft_short\n")
    ran = subprocess.run([sys.executable, "-m", "flame_bench.cli", "compare", "sft", str(system), "--world",
                          str(smoke_world), "--task", "birth_year_qa", "--quiet"], capture_output=True, text=True,
                         env=env, cwd=tmp_path, timeout=600)
    assert ran.returncode == 0, ran.stderr
    assert "Year acc" in ran.stdout and "short responses kept" in ran.stdout
    saved = json.loads(next((tmp_path / "results" / "comparisons").glob("sft_vs_short__*.json")).read_text())
    rows = {r["system"]: r for r in saved["training"]}
    kept, total = rows["short"]["short responses kept"].split("/")
    assert 0 < int(kept) <= int(total) and rows["short"]["seed #inst x∉X_fact"] == kept
    assert rows["sft"]["short responses kept"] == "-"  # the built-in sft declares no such column
    items = [json.loads(line) for line in Path(saved["systems"][0]["runs"]["birth_year_qa"], "samples.jsonl")
             .read_text().splitlines()[1:]]
    assert len(items) == 12 and all("correct" in s for s in items)


def test_task_data_on_real_data_and_where_it_has_none(tmp_path: Path) -> None:
    import importlib.util

    from flame_bench.core.task_api import TaskData

    tasks, _ = _plugins(tmp_path)
    spec = importlib.util.spec_from_file_location("birth_year_qa_probe", tasks / "birth_year_qa" / "task.py")
    module = importlib.util.module_from_spec(spec)
    from unittest import mock

    with mock.patch("flame_bench.core.registry.TASKS.register", lambda name: (lambda task: task)):
        spec.loader.exec_module(module)
    real = SimpleNamespace(spec={"kind": "real"})
    assert module.DATA.items(real) == [{"id": "q1", "instruction": "When was Ada Lovelace born?", "gold": "1815"}]
    world_only = TaskData("w", "1", world=module.world_items)
    task = SimpleNamespace(data=world_only)
    from flame_bench.core.task_api import Task

    assert Task.runs_on(task, real) is False  # compare leaves it out on real data
