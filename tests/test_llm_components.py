"""The real path's LLM components on a scripted backend: prompts, parsing, decisions and the batched FActScore."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pytest

from flame_bench.engines.llm import LLMBackend, Prompt
from flame_bench.real.components import (
    DECOMPOSE_HEADER,
    LLMDecomposer,
    LLMFactClassifier,
    LLMPairwiseJudge,
    LLMRubricJudge,
    LLMVerifier,
    classify_prompt,
    decompose_prompt,
    llm_factscorer,
    parse_facts,
    parse_rubric_score,
    verify_prompt,
)
from flame_bench.scoring.factscore import AtomicFact
from flame_bench.scoring.retrieval import KnowledgeSource, Passage
from flame_bench.scoring.winrate import score_pairs


def text_of(prompt: Prompt) -> str:
    return prompt if isinstance(prompt, str) else "\n".join(m["content"] for m in prompt)


class ScriptedBackend:
    """Replies by rule; records every batch call so tests can check batching."""

    def __init__(self, complete_fn=None, logprob_fn=None):
        self.identity = {"kind": "scripted"}
        self.complete_fn, self.logprob_fn = complete_fn, logprob_fn
        self.calls: list[tuple[str, int]] = []

    def complete(self, prompts: Sequence[Prompt], max_tokens: int = 128, temperature: float = 0.0,
                 stop: Sequence[str] = (), seed: int | None = None) -> list[str]:
        self.calls.append(("complete", len(prompts)))
        return [self.complete_fn(text_of(p)) for p in prompts]

    def choice_logprobs(self, prompts: Sequence[Prompt], choices: Sequence[str]) -> list[dict[str, float]]:
        self.calls.append(("choice_logprobs", len(prompts)))
        return [self.logprob_fn(text_of(p), choices) for p in prompts]


def test_scripted_backend_satisfies_protocol():
    assert isinstance(ScriptedBackend(), LLMBackend)


def test_decompose_prompt_uses_factscore_format_and_own_demos():
    prompt = decompose_prompt("Marie Curie was born in Warsaw.")
    assert prompt.count(DECOMPOSE_HEADER) == 8  # 7 demonstrations + the target, as FActScore's bio mode
    assert prompt.endswith(DECOMPOSE_HEADER + "Marie Curie was born in Warsaw.\n")
    assert "- Ada Lovelace was English.\n" in prompt


def test_parse_facts_stops_at_next_demo_and_dedupes():
    reply = ("- She was born in Warsaw.\n- She was a physicist.\n- She was born in Warsaw.\n\n"
             + DECOMPOSE_HEADER + "He was tall.\n- He was tall.")
    assert parse_facts(reply) == ["She was born in Warsaw.", "She was a physicist."]
    assert parse_facts("nothing useful") == []


def test_decomposer_batches_skips_no_fact_sentences_and_keeps_unparsable_whole():
    backend = ScriptedBackend(complete_fn=lambda p: "- She was born in 1867.\n- He\n- She was born in Warsaw.\n- "
                              "Ivan Asen II is" if "Warsaw" in p.splitlines()[-1] else "gibberish")
    dec = LLMDecomposer(backend)
    out = dec.decompose_sentences(["She was born in Warsaw.", "Sure, here is a bio.", "Zorp blarg."])
    # fragments that state no fact ("He", "Ivan Asen II is") are dropped; an unparsable reply keeps the sentence
    assert [[a.text for a in atoms] for atoms in out] == [["She was born in 1867.", "She was born in Warsaw."], [],
                                                          ["Zorp blarg."]]
    assert backend.calls == [("complete", 2)]  # one batched call, the "Sure" sentence never sent


def test_verifier_prompt_is_retrieve_then_true_or_false_with_best_passage_last():
    ps = [Passage("a#0", "Marie Curie", "best passage"), Passage("a#1", "Marie Curie", "second passage.")]
    prompt = verify_prompt("Marie Curie", "She was born in Warsaw.", ps)
    assert prompt.startswith("Answer the question about Marie Curie based on the given context.\n\n")
    assert prompt.index("second passage.") < prompt.index("best passage.")  # reversed rank order, period added
    assert prompt.endswith("Input: She was born in Warsaw. True or False?\nOutput:")


def test_verifier_decides_by_true_vs_false_logprobs():
    def lp(prompt: str, choices: Sequence[str]) -> dict[str, float]:
        return {"True": -0.1, "False": -2.0} if "Warsaw" in prompt else {"True": -3.0, "False": -0.5}

    backend = ScriptedBackend(logprob_fn=lp)
    ver = LLMVerifier(backend)
    facts = [(AtomicFact("Born in Warsaw.", None), [], "X"), (AtomicFact("Born in Paris.", None), [], "X")]
    assert ver.verify_many(facts) == [True, False]
    assert backend.calls == [("choice_logprobs", 2)]
    only_false = ScriptedBackend(logprob_fn=lambda p, c: {"False": -1.0})  # True unseen -> -inf -> unsupported
    assert LLMVerifier(only_false).verify_many([(AtomicFact("x", None), [], "X")]) == [False]
    assert LLMVerifier(only_false).true_logprob_margins([("X", "x", [])]) == [-math.inf]


def test_classifier_uses_paper_prompt_and_yes_no():
    assert "do you need the factual knowledge from Wikipedia?" in classify_prompt("Who is Larry Page?")
    backend = ScriptedBackend(logprob_fn=lambda p, c: {"Yes": -0.2, "No": -1.9} if "Larry" in p
                              else {"Yes": -2.0, "No": -0.1})
    assert LLMFactClassifier(backend).classify_many(["Who is Larry Page?", "How do I wrap a present?"]) == [True, False]


@pytest.mark.parametrize("reply,score", [("... Score: 4", 4), ("Score: 5/5", 5), ("score:2 then Score: 3", 3),
                                         ("I give it four.", None), ("Score: 9", None)])
def test_rubric_score_parsing(reply, score):
    assert parse_rubric_score(reply) == score


def test_rubric_judge_prefills_the_assistant_turn():
    seen = []

    def complete(p):
        seen.append(p)
        return "Relevant and complete. Score: 4"

    backend = ScriptedBackend(complete_fn=complete)
    assert LLMRubricJudge(backend).score_many([("Name a fruit.", "Apple.")]) == [4]
    assert "additive 5-point scoring system" in seen[0] and "<response>Apple.</response>" in seen[0]
    assert seen[0].endswith("attribute points based on the outlined criteria.")


def test_pairwise_judge_batches_and_flips_back_through_score_pairs():
    # the judge always prefers the output that says "good", wherever it is shown
    def lp(prompt: str, choices: Sequence[str]) -> dict[str, float]:
        a = prompt.split("## Output (a)\n")[1].split("\n\n## Output (b)")[0]
        return {"a": -0.1, "b": -2.0} if a == "good" else {"a": -2.0, "b": -0.1}

    backend = ScriptedBackend(logprob_fn=lp)
    judge = LLMPairwiseJudge(backend)
    records = [{"id": f"i{i}", "instruction": "q"} for i in range(20)]
    rows, wr = score_pairs(records, ["good"] * 20, ["bad"] * 20, judge, seed=0)
    assert wr.win_rate == 100.0 and {r["swapped"] for r in rows} == {True, False}
    assert backend.calls == [("choice_logprobs", 20)]


def test_llm_factscorer_end_to_end_on_a_scripted_backend():
    source = KnowledgeSource({"Marie Curie": ["Marie Curie was born in Warsaw. She was a physicist."]}, name="t")

    def complete(p: str) -> str:
        target = p.rsplit(DECOMPOSE_HEADER, 1)[1]
        return "- She was born in Warsaw.\n- She was a chemist." if "Warsaw" in target else "- She won a prize."

    def lp(prompt: str, choices):
        fact = prompt.rsplit("Input: ", 1)[1]
        return {"True": -0.1, "False": -3.0} if "Warsaw" in fact else {"True": -3.0, "False": -0.1}

    backend = ScriptedBackend(complete_fn=complete, logprob_fn=lp)
    scorer = llm_factscorer(source, backend)
    scores = scorer.score_many(["She was born in Warsaw. She won a prize.", "I'm sorry, I don't know."],
                               [["Marie Curie"], ["Marie Curie"]])
    assert scores[0].n == 3 and scores[0].supported == 1 and scores[1].abstained
    assert [c[0] for c in backend.calls] == ["complete", "choice_logprobs"]  # one call per phase


def test_evidence_calibrated_verifier_asks_whether_the_passages_raise_true():
    # a model that says True to everything, a bit more so when the passages back the fact
    def lp(prompt: str, choices):
        backed = "Title:" in prompt and "Warsaw" in prompt.rsplit("Input: ", 1)[1]
        return {"True": -0.1 if backed else -0.3, "False": -2.0}

    plain, calibrated = LLMVerifier(ScriptedBackend(logprob_fn=lp)), LLMVerifier(ScriptedBackend(logprob_fn=lp),
                                                                                 evidence_calibrated=True)
    ps = [Passage("a#0", "Marie Curie", "Marie Curie was born in Warsaw.")]
    facts = [(AtomicFact("Born in Warsaw.", None), ps, "Marie Curie"), (AtomicFact("Born in Paris.", None), ps,
                                                                          "Marie Curie")]
    assert plain.verify_many(facts) == [True, True]
    assert calibrated.verify_many(facts) == [True, False] and calibrated.version.endswith("+calibrated")
