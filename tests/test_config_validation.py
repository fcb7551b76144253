"""Hostile input to system files and real-data files: every defect is one line naming the problem and the fix,
exit code 2, nothing written, before any training (recursive anchors, alias bombs, out-of-range numbers, trainer
and LoRA values, missing report_to integrations, numeric names, malformed chat records)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import ClassVar

import pytest
from conftest import run_cli

from flame_bench.alignment.systems import load_system
from flame_bench.core.errors import FlameError

HEAD = "description: x\nbase_model: base\nstages:\n"


def _system_text(name: str, stages: str) -> str:
    return f"name: {name}\n{HEAD}{stages}"


def _bomb(name: str, levels: int = 9, width: int = 9) -> str:
    """'Billion laughs': `levels` lists of `width` aliases of the list before (width**levels values expanded)."""
    rows = ["  - &a0 [" + ", ".join(["lol"] * width) + "]"]
    rows += [f"  - &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]" for i in range(1, levels)]
    return f"name: {name}\ndescription:\n" + "\n".join(rows) + "\nbase_model: base\nstages:\n  - recipe: sft\n"


SFT, DPO = "  - recipe: sft\n", "  - recipe: dpo\n"

# (file stem, file text, what the one line must say, the fixed file text or None)
BAD_SYSTEMS: list[tuple[str, str, str, str | None]] = [
    ("recursive", "name: recursive\ndescription: &d [*d]\nbase_model: base\nstages:\n" + SFT,
     "refers to the node that defines it", _system_text("recursive", SFT)),
    ("recursive_map", "name: recursive_map\ndescription: &d {x: *d}\nbase_model: base\nstages:\n" + SFT,
     "refers to the node that defines it", None),
    ("laughs", _bomb("laughs"), "YAML aliases expand to more than", _system_text("laughs", SFT)),
    ("few_aliases", _bomb("few_aliases", levels=2, width=3).replace("description:", "paper_row: x\ndescription:"),
     "description' must be", None),  # a few aliases are fine: only the (list-typed) description is refused
    ("huge_epochs", _system_text("huge_epochs", SFT + "    config: {epochs: 1.0e+308}\n"),
     "sft config epochs must be at most 1000, got 1e+308",
     _system_text("huge_epochs", SFT + "    config: {epochs: 1.0}\n")),
    ("huge_batch", _system_text("huge_batch", SFT + "    config: {batch_size: 1000000000000000000000000000000}\n"),
     "sft config batch_size must be at most 65536", None),
    ("nan_lr", _system_text("nan_lr", SFT + "    config: {learning_rate: .nan}\n"),
     "sft config learning_rate must be a finite number, got nan", None),
    ("huge_gap", _system_text("huge_gap", DPO + "    config: {max_if_gap: 1.0e+300}\n"),
     "dpo config max_if_gap must be at most 1e+09", None),
    ("accum_zero", _system_text("accum_zero", SFT + "    trainer: {gradient_accumulation_steps: 0}\n"),
     "trainer gradient_accumulation_steps must be >= 1, got 0", None),
    ("accum_negative", _system_text("accum_negative", SFT + "    trainer:\n      gradient_accumulation_steps: -4\n"),
     "accum_negative.yaml:6: trainer gradient_accumulation_steps must be >= 1, got -4",
     _system_text("accum_negative", SFT + "    trainer:\n      gradient_accumulation_steps: 4\n")),
    ("accum_float", _system_text("accum_float", SFT + "    trainer: {gradient_accumulation_steps: 2.5}\n"),
     "trainer gradient_accumulation_steps must be int, got 2.5", None),
    ("max_steps", _system_text("max_steps", SFT + "    trainer: {max_steps: 0}\n"),
     "trainer max_steps must be -1 (no limit) or >= 1, got 0", None),
    ("decay", _system_text("decay", SFT + "    trainer: {weight_decay: -0.1}\n"),
     "trainer weight_decay must be >= 0, got -0.1", None),
    ("clip", _system_text("clip", SFT + "    trainer: {max_grad_norm: -1.0}\n"),
     "trainer max_grad_norm must be >= 0", None),
    ("beta2", _system_text("beta2", SFT + "    trainer: {adam_beta2: 1.0}\n"),
     "trainer adam_beta2 must be in [0, 1), got 1.0", None),
    ("eps", _system_text("eps", SFT + "    trainer: {adam_epsilon: 0}\n"), "trainer adam_epsilon must be > 0", None),
    ("log0", _system_text("log0", SFT + "    trainer: {logging_steps: 0}\n"), "trainer logging_steps must be > 0",
     None),
    ("log_frac", _system_text("log_frac", SFT + "    trainer: {save_steps: 2.5}\n"),
     "trainer save_steps must be a whole number of steps (or a fraction < 1 of the run), got 2.5", None),
    ("huge_steps", _system_text("huge_steps", SFT + "    trainer: {max_steps: 1000000000000000000000000000000}\n"),
     "trainer max_steps must be at most 1e+09", None),
    ("warmup", _system_text("warmup", SFT + "    trainer: {warmup_steps: -2}\n"),
     "trainer warmup_steps must be >= 0", None),
    ("eval_bs", _system_text("eval_bs", SFT + "    trainer: {per_device_eval_batch_size: 0}\n"),
     "trainer per_device_eval_batch_size must be >= 1", None),
    ("bf16_text", _system_text("bf16_text", SFT + "    trainer: {bf16: maybe}\n"),
     "trainer bf16 must be true or false, got 'maybe'", None),
    ("smoothing", _system_text("smoothing", DPO + "    trainer: {label_smoothing: 0.9}\n"),
     "trainer label_smoothing must be in [0, 0.5], got 0.9", None),
    ("wandb", _system_text("wandb", SFT + "    trainer: {report_to: wandb}\n"),
     "report_to 'wandb' needs the wandb package, which is not installed",
     _system_text("wandb", SFT + "    trainer: {report_to: none}\n")),
    ("wandbb", _system_text("wandbb", SFT + "    trainer: {report_to: [wandbb]}\n"),
     "unknown report_to integration 'wandbb'; did you mean 'wandb'", None),
    ("lora_r", _system_text("lora_r", SFT + "    peft: {r: -1}\n"), "peft r must be >= 1, got -1",
     _system_text("lora_r", SFT + "    peft: {r: 4}\n")),
    ("lora_r0", _system_text("lora_r0", SFT + "    peft: {r: 0}\n"), "peft r must be >= 1, got 0", None),
    ("lora_rf", _system_text("lora_rf", SFT + "    peft: {r: 2.5}\n"), "peft r must be int, got 2.5", None),
    ("lora_alpha", _system_text("lora_alpha", SFT + "    peft: {lora_alpha: -8}\n"),
     "peft lora_alpha must be > 0, got -8", None),
    ("lora_dropout", _system_text("lora_dropout", SFT + "    peft: {lora_dropout: 1.0}\n"),
     "peft lora_dropout must be in [0, 1), got 1.0", None),
    ("lora_targets", _system_text("lora_targets", SFT + "    peft: {target_modules: 5}\n"),
     "peft target_modules must be", None),
    ("lora_no_targets", _system_text("lora_no_targets", SFT + "    peft: {target_modules: []}\n"),
     "peft target_modules must name at least one module", None),
    ("lora_bias", _system_text("lora_bias", SFT + "    peft: {bias: some}\n"),
     "peft bias must be one of none, all, lora_only, got 'some'", None),
    ("listname", "name: [listname]\n" + HEAD + SFT, "name must be text (the file name, listname)", None),
]


def _assert_one_line(code: int, err: str, expected: str, results: Path) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, (code, err[-2000:])
    assert len(lines) == 1 and "Traceback" not in err, err[-2000:]
    assert expected in lines[0], lines[0]
    assert not results.exists() or not any(p.is_file() for p in results.rglob("*")), "wrote files"


@pytest.mark.parametrize(("stem", "text", "expected", "fixed"), BAD_SYSTEMS, ids=[c[0] for c in BAD_SYSTEMS])
def test_a_bad_system_file_is_one_line_and_writes_nothing(smoke_world: Path, isolated: Path, stem: str, text: str,
                                                          expected: str, fixed: str | None) -> None:
    path = isolated / f"{stem}.yaml"
    path.write_text(text)
    code, _, err = run_cli(["compare", "sft", str(path), "--world", str(smoke_world), "--quiet"])
    _assert_one_line(code, err, expected, isolated / "results")
    with pytest.raises(FlameError, match=None) as e:
        load_system(str(path))
    assert expected in str(e.value) and "\n" not in str(e.value)
    if fixed is not None:  # the same file, fixed, loads (and would train)
        path.write_text(fixed)
        assert load_system(str(path)).name == stem


def test_aliases_within_the_budget_still_load(tmp_path: Path) -> None:
    path = tmp_path / "shared.yaml"
    path.write_text("name: shared\ndescription: x\nbase_model: base\nstages:\n"
                    "  - recipe: sft\n    trainer: &t {gradient_accumulation_steps: 2}\n"
                    "  - recipe: dpo\n    trainer: *t\n")
    spec = load_system(str(path))
    assert [s.config["trainer"] for s in spec.stages] == [{"gradient_accumulation_steps": 2}] * 2


@pytest.mark.parametrize("name", ["123", "0123", "1.5", "true", "null"])
def test_a_name_yaml_reads_as_a_number_is_the_file_name(tmp_path: Path, name: str) -> None:
    path = tmp_path / f"{name}.yaml"
    path.write_text(f"name: {name}\n{HEAD}{SFT}")
    assert load_system(str(path)).name == name  # as written, not as YAML types it (123, 83, 1.5, True, None)
    path.write_text(f"name: 124\n{HEAD}{SFT}")
    with pytest.raises(FlameError, match=f"name '124' differs from the file name '{name}'"):
        load_system(str(path))


def test_trainer_and_peft_checks_hold_outside_system_files_too() -> None:
    from flame_bench.alignment.training import check_trainer, lora_config

    with pytest.raises(ValueError, match="gradient_accumulation_steps must be >= 1, got -4"):
        check_trainer("sft", {"gradient_accumulation_steps": -4})
    with pytest.raises(ValueError, match="peft r must be >= 1, got -1"):
        lora_config({"r": -1})
    check_trainer("dpo", {"gradient_accumulation_steps": 2, "max_steps": -1, "logging_steps": 0.5, "report_to": []})
    assert lora_config({"r": 4, "lora_alpha": 8.0, "lora_dropout": 0.1, "target_modules": ["q_proj"]}).r == 4


# -- real-data chat files ----------------------------------------------------------------------------------------
class _StubLLM:
    """Enough of an LLM backend for validation (no call is made before the data fails)."""

    identity: ClassVar[dict[str, str]] = {"kind": "stub", "model": "stub"}

    def complete(self, prompts: list[str], **_: object) -> list[str]:
        return ["ok"] * len(prompts)

    def choice_logprobs(self, prompts: list[str], choices: list[str]) -> list[dict[str, float]]:
        return [{c: -1.0 for c in choices} for _ in prompts]


GOOD_SFT = {"messages": [{"role": "user", "content": "Hi."}, {"role": "assistant", "content": "Hello."}]}


def _jsonl(*rows: object) -> str:
    return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows)


# (SFT file name, its text, its shape, what the one line must say)
BAD_DATA: list[tuple[str, str, str, str]] = [
    ("no_content.jsonl", _jsonl(GOOD_SFT, {"messages": [{"role": "user", "content": "Hi."}, {"role": "assistant"}]}),
     "messages", "no_content.jsonl:2: turn 1 has no 'content'"),
    ("int_content.jsonl", _jsonl(GOOD_SFT, {"messages": [{"role": "user", "content": "Hi."},
                                                         {"role": "assistant", "content": 5}]}),
     "messages", "int_content.jsonl:2: the assistant turn must be text, got int 5"),
    ("nan_content.jsonl", _jsonl(GOOD_SFT, '{"messages": [{"role": "user", "content": "Hi."}, '
                                           '{"role": "assistant", "content": NaN}]}'),
     "messages", "nan_content.jsonl:2: the assistant turn must be text, got float nan"),
    ("null_content.jsonl", _jsonl({"messages": [{"role": "user", "content": "Hi."},
                                                {"role": "assistant", "content": None}]}),
     "auto", "null_content.jsonl:1: the assistant turn must be text, got null"),
    ("gpt_no_value.jsonl", _jsonl({"conversations": [{"from": "human", "value": "Hi."}, {"from": "gpt"}]}),
     "sharegpt", "gpt_no_value.jsonl:1: turn 1 has no 'value'"),
    ("empty.jsonl", "", "messages", "empty.jsonl: no usable rows"),
    ("no_replies.jsonl", _jsonl({"messages": [{"role": "user", "content": "Hi."}]}), "messages",
     "no_replies.jsonl: no usable rows (1 skipped"),
    ("blank.json", "[]", "instruction", "blank.json: no usable rows"),
]


def _suite(root: Path, sft_name: str, shape: str) -> tuple[Path, Path]:
    (root / "dpo.jsonl").write_text(_jsonl({"prompt": "Say hello."}))
    (root / "alpaca.json").write_text(json.dumps([{"instruction": "Name a colour.", "output": "Blue."}]))
    (root / "suite.yaml").write_text(
        f"name: tiny\nsft: {{path: {sft_name}, shape: {shape}}}\ndpo_prompts: dpo.jsonl\n"
        "eval: {alpaca_eval: alpaca.json}\nevaluator: {llm: stub}\n")
    systems = []
    for name, recipe in (("a", "sft"), ("b", "flame_sft")):
        path = root / f"{name}.yaml"
        path.write_text(f"name: {name}\ndescription: x\nbase_model: {root / 'no-model'}\ndata: suite.yaml\n"
                        f"stages:\n  - recipe: {recipe}\n")
        systems.append(path)
    return systems[0], systems[1]


@pytest.mark.parametrize(("file", "text", "shape", "expected"), BAD_DATA, ids=[c[0] for c in BAD_DATA])
def test_a_bad_chat_record_is_one_line_naming_file_and_line(isolated: Path, monkeypatch: pytest.MonkeyPatch,
                                                            file: str, text: str, shape: str, expected: str) -> None:
    import flame_bench.engines.llm.resolve as resolve

    monkeypatch.setattr(resolve, "make_evaluator", lambda spec, quiet=True: _StubLLM())
    (isolated / file).write_text(text)
    a, b = _suite(isolated, file, shape)
    code, _, err = run_cli(["compare", str(a), str(b), "--task", "alpaca_winrate", "--quiet"])
    _assert_one_line(code, err, expected, isolated / "results")


def test_fixed_chat_records_load(tmp_path: Path) -> None:
    from flame_bench.real.data import load_items, make_spec

    path = tmp_path / "sft.jsonl"
    path.write_text(_jsonl({"messages": [{"role": "user", "content": "Hi."}, {"role": "assistant"}]}))
    spec = make_spec({"path": str(path), "shape": "messages"}, tmp_path, "test")
    with pytest.raises(FlameError, match="turn 1 has no 'content'"):
        load_items(spec, need_response=True)
    path.write_text(_jsonl(GOOD_SFT, {"messages": [{"role": "user", "content": "Hi."},
                                                   {"role": "assistant", "content": ""}]}))
    items, skipped = load_items(spec, need_response=True)
    assert [(it["instruction"], it["response"]) for it in items] == [("Hi.", "Hello.")] and skipped == 1
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(_jsonl(GOOD_SFT, {"messages": [{"role": "user", "content": "Bye."}]}))
    items, _ = load_items(make_spec({"path": str(prompts)}, tmp_path, "test"), need_response=False)
    assert [it["instruction"] for it in items] == ["Hi.", "Bye."]  # prompts need no reply
