"""FLAME on real data without a fact world: system files with `data:`/`evaluator:` blocks, the paper's LLM rewards,
stage keys, bad input, and baseline vs FLAME trained and compared end to end.

The evaluator LLM is scripted (a stand-in `LLMBackend`, so every test is offline and fast); the base model is the
smoke world's tiny model copied without its world marker (a "real" model as far as flame-bench can tell). The
real models and data run in `tests/test_real_suite.py` (slow) and in results/NOTES.md.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from conftest import run_cli

from flame_bench.engines.llm import Prompt


class ScriptedLLM:
    """Answers the paper's prompts by rule: the rubric judge scores by length (seed 2 replies unparsably), the
    decomposer returns the sentence as one fact, the verifier says True iff the fact's words are in the passages,
    the classifier says Yes for "bio"/"born" questions, the pairwise judge prefers the longer output."""

    def __init__(self, name: str = "scripted"):
        self.identity = {"kind": "scripted", "model": name}
        self.calls: list[tuple[str, Any]] = []

    def complete(self, prompts: Sequence[Prompt], max_tokens: int = 128, temperature: float = 0.0,
                 stop: Sequence[str] = (), seed: int | None = None) -> list[str]:
        self.calls.append(("complete", (len(prompts), temperature, seed)))
        out = []
        for p in prompts:
            text = p if isinstance(p, str) else p[0]["content"]
            if "additive 5-point" in text:
                response = text.split("<response>")[1].split("</response>")[0]
                out.append("I cannot decide." if seed == 2 else f"Fine. Score: {min(5, len(response.split()) % 6)}")
            elif "Please breakdown" in text:
                sentence = text.rsplit("independent facts: ", 1)[1].strip()
                out.append(f"- {sentence}")
            else:
                out.append("ok")
        return out

    def choice_logprobs(self, prompts: Sequence[Prompt], choices: Sequence[str]) -> list[dict[str, float]]:
        self.calls.append(("choice_logprobs", len(prompts)))
        out = []
        for p in prompts:
            text = "\n".join(m["content"] for m in p) if not isinstance(p, str) else p
            if "True or False?" in text:
                context, fact = text.split("Input: ")[0], text.split("Input: ")[1].split(" True or False?")[0]
                words = [w for w in re.findall(r"\w+", fact.lower()) if len(w) > 3]
                yes = bool(words) and all(w in context.lower() for w in words)
            elif "do you need the factual knowledge" in text:
                yes = any(w in text for w in ("bio", "born"))
            elif "Output (a)" in text:
                a = text.split("## Output (a)\n")[1].split("\n\n## Output (b)")[0]
                b = text.split("## Output (b)\n")[1].split("\n\nWhich output")[0]
                yes = len(a) >= len(b)
            else:
                yes = True
            first, second = choices[0], choices[1]
            out.append({first: -0.1 if yes else -3.0, second: -3.0 if yes else -0.1})
        return out


@pytest.fixture()
def scripted(monkeypatch: pytest.MonkeyPatch) -> ScriptedLLM:
    """Every evaluator role on the scripted LLM (still behind the real on-disk cache)."""
    import flame_bench.engines.llm.resolve as resolve

    llm = ScriptedLLM()
    monkeypatch.setattr(resolve, "make_evaluator", lambda spec, quiet=True, option=None: llm)
    return llm


@pytest.fixture()
def plain_model(smoke_world: Path, tmp_path: Path) -> Path:
    out = tmp_path / "tiny-base"
    shutil.copytree(smoke_world / "model", out)
    (out / "flame_model.json").unlink()  # not a world model: its kind is decided by its files alone
    return out


@pytest.fixture()
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FLAME_BENCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("FLAME_BENCH_RESULTS", str(tmp_path / "results"))
    return tmp_path


PEOPLE = ("Ann Lee", "Bo Park", "Cy Young", "Di Moss")


def write_suite(root: Path, sft_rows: int = 8) -> Path:
    """A small real-data suite: ShareGPT-shaped SFT data, a DPO prompt pool, a JSONL knowledge source, an
    AlpacaEval-format evaluation file and an entity list."""
    root.mkdir(parents=True, exist_ok=True)
    sft = [{"id": str(i), "conversations": [
        {"from": "human", "value": f"Tell me a bio of {PEOPLE[i % 4]}." if i % 2 else f"Name a colour number {i}."},
        {"from": "gpt", "value": f"{PEOPLE[i % 4]} was born in 19{50 + i}. {PEOPLE[i % 4]} was a writer."
         if i % 2 else f"Colour {i} is blue."}]} for i in range(sft_rows)]
    (root / "sft.jsonl").write_text("".join(json.dumps(r) + "\n" for r in sft))
    (root / "dpo.jsonl").write_text("".join(json.dumps({"prompt": p}) + "\n" for p in (
        "Tell me a bio of Ann Lee.", "When was Bo Park born?", "Name a fruit.", "Say hello.")))
    (root / "kb.jsonl").write_text("".join(json.dumps({"title": t, "text": f"{t} was born in 1950. {t} was a writer "
                                                                        f"from Oslo."}) + "\n" for t in PEOPLE))
    (root / "alpaca.json").write_text(json.dumps([{"instruction": q, "output": "Blue.", "generator": "ref-model"}
                                                  for q in ("Name a colour.", "Tell me a bio of Cy Young.")]))
    (root / "people.txt").write_text("Cy Young\nDi Moss\nNobody Here\n")
    (root / "suite.yaml").write_text(
        "name: tiny-real\n"
        "sft: {path: sft.jsonl, shape: sharegpt}\n"
        "dpo_prompts: {path: dpo.jsonl, shape: prompt}\n"
        "knowledge: kb.jsonl\n"
        "eval:\n  alpaca_eval: {path: alpaca.json, shape: instruction}\n"
        "  bio_entities: {path: people.txt, shape: bio-entities}\n"
        "evaluator: {llm: scripted-judge, rm_if_samples: 3, rm_if_temperature: 0.7}\n")
    return root / "suite.yaml"


def write_system(root: Path, name: str, base: Path, stages: str, data: str = "suite.yaml") -> Path:
    path = root / f"{name}.yaml"
    path.write_text(f"name: {name}\ndescription: test system\nbase_model: {base}\ndata: {data}\nstages:\n{stages}")
    return path


TINY_SFT = "    config: {max_length: 64, batch_size: 4, epochs: 1.0, pt_samples: 2, pt_max_new_tokens: 12}\n"
TINY_DPO = "    config: {max_length: 64, batch_size: 2, samples_per_instruction: 3, max_new_tokens: 12}\n"


def test_rm_if_averages_three_sampled_judgements_and_counts_unparsable(scripted: ScriptedLLM, isolated: Path) -> None:
    from flame_bench.real.source import RealSource, RealSpec

    source = RealSource(RealSpec(llm="x", rm_if_samples=3, rm_if_temperature=0.7))
    reward = source.rm_if()
    records = [{"instruction": "Name a fruit."}] * 2
    scores = reward.score_many(records, ["one two three", "one two three four"])
    # seeds 0 and 1 score len % 6 (3 and 4); seed 2 is unparsable and is left out of the average, not scored 0
    assert scores == [3.0, 4.0]
    assert reward.stats == {"judgements": 6, "unparsable": 2, "unscored": 0}
    sampled = [c[1] for c in scripted.calls if c[0] == "complete"]
    assert sampled == [(2, 0.7, 0), (2, 0.7, 1), (2, 0.7, 2)]  # three seeded samples at temperature > 0
    assert reward.identity["samples"] == 3 and reward.identity["version"].startswith("yuan2024")
    assert reward.score_many(records[:1], ["one two three"]) == [3.0]  # from the cache: no new call
    assert len([c for c in scripted.calls if c[0] == "complete"]) == 3


def test_rm_if_with_no_parsable_reply_is_none_and_counted(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import flame_bench.engines.llm.resolve as resolve
    from flame_bench.real.source import RealSource, RealSpec

    silent = ScriptedLLM()
    silent.complete = lambda prompts, **kw: ["no verdict"] * len(prompts)  # type: ignore[method-assign]
    monkeypatch.setattr(resolve, "make_evaluator", lambda spec, quiet=True, option=None: silent)
    reward = RealSource(RealSpec(llm="x")).rm_if()
    assert reward.score_many([{"instruction": "Hi."}], ["Hello."]) == [None]
    assert reward.stats == {"judgements": 3, "unparsable": 3, "unscored": 1}


def test_rm_fact_retrieves_with_the_instruction_from_a_docdb(scripted: ScriptedLLM, isolated: Path) -> None:
    from flame_bench.real.knowledge import write_docdb
    from flame_bench.real.source import RealSource, RealSpec

    db = isolated / "kb.db"
    write_docdb(db, [("Ann Lee", "Ann Lee was born in 1950. Ann Lee was a writer from Oslo."),
                     ("Bo Park", "Bo Park was born in 1961. Bo Park was a painter."),
                     ("Cy Young", "Cy Young was a sailor.")])
    source = RealSource(RealSpec(llm="x", knowledge=str(db)))
    record = {"instruction": "Tell me about Bo Park, the painter.", "topics": []}
    scores = source.rm_fact.score_many([record, record], ["Bo Park was a painter.", "Bo Park was a pilot."])
    assert scores == [1.0, 0.0]
    scored = source.rm_fact.scorer.score_many(["Bo Park was a painter."], [[]], [record["instruction"]])[0]
    assert scored.facts[0]["evidence"][0] == "Bo Park#0"  # the instruction, not the fact, found the page
    assert source.rm_fact.identity["query"] == "instruction" and "knowledge" in source.rm_fact.identity


def test_classifier_is_the_papers_yes_no_prompt(scripted: ScriptedLLM, isolated: Path) -> None:
    from flame_bench.real.source import RealSource, RealSpec

    classifier = RealSource(RealSpec(llm="x")).fact_classifier
    assert classifier.classify_many(["When was Ann Lee born?", "Sort 3 1 2."]) == [True, False]
    assert classifier.version.startswith("flame-fig4-yes-no-v1#")


def test_stage_keys_follow_pair_rules_judge_prompts_and_data_files(scripted: ScriptedLLM, isolated: Path,
                                                                   plain_model: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import flame_bench.alignment.flame as flame
    import flame_bench.real.components as components
    from flame_bench.alignment.stages import make_config, stage_key
    from flame_bench.alignment.systems import load_system
    from flame_bench.core.registry import RECIPES
    from flame_bench.real.source import RealSource

    suite = write_suite(isolated / "suite")
    system = write_system(isolated / "suite", "flamey", plain_model, "  - recipe: flame_dpo\n")
    recipe = RECIPES.get("flame_dpo")

    def key(**config: Any) -> str:
        source = RealSource(load_system(str(system)).data)
        return stage_key(recipe, make_config(recipe, config, "test"), plain_model, source, 0)[0]

    base = key()
    assert key() == base
    assert key(fact_pair_rule="enum") != base
    monkeypatch.setitem(flame.FACT_PAIR_RULES, "maxmin",
                        flame.FactPairRule("maxmin", "maxmin-if-gap-v2", "edited", flame._maxmin))
    assert key() != base  # an edited rule never reuses stale pairs
    monkeypatch.undo()
    import flame_bench.engines.llm.resolve as resolve

    monkeypatch.setattr(resolve, "make_evaluator", lambda spec, quiet=True, option=None: scripted)
    assert key() == base
    monkeypatch.setattr(components, "RUBRIC_PREFILL", components.RUBRIC_PREFILL + " Be brief.")
    assert key() != base  # an edited judge prompt is another judge, even if nobody bumps its version
    monkeypatch.setattr(components, "RUBRIC_PREFILL", components.RUBRIC_PREFILL[: -len(" Be brief.")])
    assert key() == base
    sft = suite.parent / "dpo.jsonl"
    sft.write_text(sft.read_text() + json.dumps({"prompt": "One more prompt."}) + "\n")
    assert key() != base  # a data file changed


@pytest.mark.parametrize(("edit", "message"), [
    (lambda d: (d / "sft.jsonl").write_text('{"conversations": [{"from": "human", "value": "Hi"}]}\n'
                                            '{"conversations": 5}\n'),
     r"sft\.jsonl:2: .*turns must be a list"),
    (lambda d: (d / "dpo.jsonl").write_text('{"prompt": "Hi"}\n{"text": "Hi"}\n'),
     r"dpo\.jsonl:2: missing field 'prompt' \(shape prompt\); map it with fields"),
    (lambda d: (d / "suite.yaml").write_text((d / "suite.yaml").read_text().replace("shape: sharegpt", "shape: share")),
     r"suite\.yaml:2: unknown data shape 'share'; did you mean 'sharegpt'"),
    (lambda d: (d / "suite.yaml").write_text((d / "suite.yaml").read_text().replace("knowledge:", "knowlege:")),
     r"suite\.yaml:4: unknown key 'knowlege'; did you mean 'knowledge'"),
    (lambda d: (d / "suite.yaml").write_text((d / "suite.yaml").read_text().replace("llm: scripted-judge",
                                                                                  "llm: scripted, judge: self")),
     r"suite\.yaml:8: only rm_if can be 'self'"),
])
def test_bad_data_is_one_line_before_any_training(scripted: ScriptedLLM, isolated: Path, plain_model: Path,
                                                  edit: Any, message: str) -> None:
    root = write_suite(isolated / "suite").parent
    a = write_system(root, "a", plain_model, "  - recipe: sft\n" + TINY_SFT)
    b = write_system(root, "b", plain_model, "  - recipe: flame_sft\n" + TINY_SFT)
    edit(root)
    code, _, err = run_cli(["compare", str(a), str(b), "--quiet"])
    assert code == 2 and re.search(message, err), err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (isolated / "results" / "systems").exists()  # nothing trained


def test_systems_that_mix_the_world_and_real_data_are_refused(isolated: Path, plain_model: Path,
                                                               smoke_world: Path) -> None:
    root = write_suite(isolated / "suite").parent
    real = write_system(root, "real", plain_model, "  - recipe: sft\n")
    base = write_system(root, "based", Path("base"), "  - recipe: sft\n")
    code, _, err = run_cli(["compare", str(real), str(base), "--quiet"])
    assert code == 2 and "based.yaml:3: base_model 'base' is the fact world's model" in err
    code, _, err = run_cli(["compare", "sft", str(real), "--world", str(smoke_world), "--quiet"])
    assert code == 2 and "use the fact world and real real data" in err
    world_eval = root / "judged.yaml"
    world_eval.write_text("name: judged\ndescription: x\nbase_model: base\nevaluator: {llm: smollm2}\n"
                          "stages:\n  - recipe: sft\n")
    code, _, err = run_cli(["compare", "sft", str(world_eval), "--world", str(smoke_world), "--quiet"])
    assert code == 2 and "judged.yaml:4: 'evaluator' needs 'data'" in err
    other = root / "other.yaml"
    other.write_text((root / "suite.yaml").read_text().replace("people.txt", "other.txt").replace(
        "name: tiny-real", "name: other"))
    (root / "other.txt").write_text("Ann Lee\n")
    shifted = write_system(root, "shifted", plain_model, "  - recipe: sft\n", data="other.yaml")
    code, _, err = run_cli(["compare", str(real), str(shifted), "--quiet"])
    assert code == 2 and "evaluates on other data or evaluators than real" in err


def test_an_evaluator_endpoint_that_is_down_is_one_line(isolated: Path, plain_model: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("FLAME_BENCH_LLM_MODEL", "judge")
    root = write_suite(isolated / "suite").parent
    suite = root / "suite.yaml"
    suite.write_text(suite.read_text().replace("llm: scripted-judge", f"llm: http://127.0.0.1:{port}/v1"))
    a = write_system(root, "a", plain_model, "  - recipe: sft\n")
    b = write_system(root, "b", plain_model, "  - recipe: flame_sft\n")
    code, _, err = run_cli(["compare", str(a), str(b), "--quiet"])
    assert code == 2 and f"LLM endpoint http://127.0.0.1:{port}/v1 does not answer (connection refused)" in err
    assert f"change llm: at {suite}:" in err  # the fix points at the line that named it (the startup probe)
    assert not (isolated / "results" / "systems").exists()


def test_a_base_model_without_pad_and_eos_tokens_is_refused(scripted: ScriptedLLM, isolated: Path,
                                                           plain_model: Path) -> None:
    config = json.loads((plain_model / "tokenizer_config.json").read_text())
    for key in ("pad_token", "eos_token"):
        config[key] = None
    (plain_model / "tokenizer_config.json").write_text(json.dumps(config))
    root = write_suite(isolated / "suite").parent
    a = write_system(root, "a", plain_model, "  - recipe: sft\n")
    b = write_system(root, "b", plain_model, "  - recipe: flame_sft\n")
    code, _, err = run_cli(["compare", str(a), str(b), "--quiet", "--allow-missing-topics"])  # the suite's
    assert code == 2 and "has no pad token and no eos token" in err and "Traceback" not in err  # "Nobody Here"
    assert not (isolated / "results" / "systems").exists()


def test_baseline_and_flame_train_and_compare_on_real_data_without_a_world(scripted: ScriptedLLM, isolated: Path,
                                                                           plain_model: Path) -> None:
    from safetensors.torch import load_file

    root = write_suite(isolated / "suite").parent
    baseline = write_system(root, "real_base", plain_model, "  - recipe: sft\n" + TINY_SFT +
                            "  - recipe: dpo\n" + TINY_DPO)
    flame = write_system(root, "real_flame", plain_model, "  - recipe: flame_sft\n" + TINY_SFT +  # 4 DPO prompts:
                         "  - recipe: flame_dpo\n" + TINY_DPO.replace("}", ", allow_no_fact_pairs: true}"))  # may be 0
    code, out, err = run_cli(["compare", str(baseline), str(flame), "--quiet"])
    assert code == 2 and "'Nobody Here'" in err and "--allow-missing-topics" in err  # stopped before training
    code, out, err = run_cli(["compare", str(baseline), str(flame), "--quiet", "--allow-missing-topics",
                              "--allow-weak-evaluators"])
    assert code == 0, err
    assert "Table 11" in out and "Win rate" in out and "Bio FS" in out and "TQA" not in out  # no TruthfulQA data
    comparison = json.loads(next((isolated / "results" / "comparisons").glob("*tiny-real*.json")).read_text())
    flame_sft, flame_dpo = comparison["systems"][1]["stages"]
    # the classifier (Figure 4 prompt) sent the 4 bio instructions of 8 to the base model for its own answers
    assert flame_sft["stats"]["instructions"] == 8 and flame_sft["stats"]["pt_instructions"] == 4
    stats = flame_dpo["stats"]
    assert stats["rm_if_judgements"] == 3 * 3 * 4 and stats["rm_if_unparsable"] == 3 * 4  # 3 samples of 3 x 4
    assert stats["fact_based"] == 2  # "Tell me a bio of Ann Lee.", "When was Bo Park born?"
    built = (stats["if_pairs"], stats["fact_pairs"])
    assert stats["train_pairs"] == (2 * max(built) if min(built) else max(built))  # mixed 50/50 when both exist
    assert stats["fact_pairs"] + sum(v for k, v in stats.items() if k.startswith("dropped_fact")) == 2  # accounted
    assert bool(stats.get("warnings")) == (stats["fact_pairs"] < 0.05 * stats["if_pairs"])  # FLAME's guard said so
    rows = {r["system"]: r for r in comparison["training"]}
    assert rows["real_flame"]["seed #inst x∈X_fact"] == "4" and rows["real_base"]["fact pairs"].endswith("unused)")
    for system in comparison["systems"]:  # every stage changed the weights it started from
        start = plain_model
        for stage in system["stages"]:
            model = isolated / "results" / "systems" / "stages" / f"{stage['recipe']}-{stage['key'][:12]}" / "model"
            before, after = load_file(start / "model.safetensors"), load_file(model / "model.safetensors")
            assert any((before[k] - after[k]).abs().max() > 0 for k in before), stage["recipe"]
            start = model
    bio = json.loads((Path(comparison["systems"][1]["runs"]["factscore_bio"]) / "run.json").read_text())
    assert bio["counts"]["missing_topics"] == 1 and bio["counts"]["items"] == 2  # "Nobody Here" is not scored
    assert bio["source"]["kind"] == "real" and bio["judge"]["evaluator_llm"]["kind"] == "scripted"
