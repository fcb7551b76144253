"""LLM components of the real path, behind the same interfaces as the fact world's program components.

- `LLMDecomposer`  (FActScore's decomposer interface): FActScore's "Please breakdown the following sentence into
  independent facts:" few-shot format, with our own demonstrations; output parsed by splitting on "- ".
- `LLMVerifier`    (FActScore's verifier interface): FActScore's Retrieve->LM prompt ("Answer the question about
  {topic} based on the given context." + passages, best last + "Input: {fact} True or False?\nOutput:"); supported
  iff the next-token log-probability of "True" exceeds that of "False" (FActScore's rule for open models).
- `LLMFactClassifier` (instruction classifier interface): the paper's Figure 4 prompt, Yes vs No by next-token
  probability.
- `LLMRubricJudge`: the paper's additive 5-point instruction-following judge (Figure 8, after Yuan et al. 2024),
  with its pre-filled assistant turn; `Score: N` parsed from the reply.
- `LLMPairwiseJudge` (`PairwiseJudge` interface): an AlpacaEval-style pairwise prompt; the preference is read from
  the next-token probabilities of "a" vs "b" (like AlpacaEval 2's weighted judge) and returned as a reply that
  `parse_pairwise_reply` understands.

Every component's `version` is its prompt version plus a short hash of the rendered prompt template
(`with_template_hash`), so editing a prompt changes every cache key, stage key and run config that depends on it,
even when nobody remembers to bump the version. Each component runs on any `LLMBackend` (local HF model or
OpenAI-compatible endpoint). Batch methods
(`decompose_many`, `verify_many`, ...) send one backend call for many items; the FActScore pipeline uses them.
Prompt texts are versioned: change the version when a prompt changes, since cache keys and run records carry it.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from flame_bench.core.errors import FlameError
from flame_bench.core.registry import CLASSIFIERS, JUDGES, SCORERS
from flame_bench.engines.llm import LLMBackend, Prompt
from flame_bench.real.claims import state_facts
from flame_bench.scoring.factscore import AtomicFact
from flame_bench.scoring.retrieval import Passage


def with_template_hash(version: str, template: str) -> str:
    """`version#<8 hex of sha256(template)>`; unchanged when `version` already carries a hash."""
    import hashlib

    return version if "#" in version else f"{version}#{hashlib.sha256(template.encode()).hexdigest()[:8]}"


def _as_prompt(text: str, chat: bool) -> Prompt:
    return [{"role": "user", "content": text}] if chat else text


def _prefers(scores: dict[str, float], first: str, second: str) -> bool:
    """`first` beats `second` by next-token log-probability (ties and two unseen choices go to `second`)."""
    a, b = scores.get(first, -math.inf), scores.get(second, -math.inf)
    return a > b


# -- atomic-fact decomposition ---------------------------------------------------------------------------------
# Our own demonstrations (FActScore's format, not its text): bio-style sentences, compound ones, and one with no fact.
DECOMPOSE_DEMOS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Ada Lovelace was an English mathematician who worked on Charles Babbage's Analytical Engine.",
     ("Ada Lovelace was English.", "Ada Lovelace was a mathematician.",
      "Ada Lovelace worked on the Analytical Engine.", "The Analytical Engine was designed by Charles Babbage.")),
    ("He was born in 1932 in Lagos and studied law at the University of London.",
     ("He was born in 1932.", "He was born in Lagos.", "He studied law.", "He studied at the University of London.")),
    ("The band released their debut album, Quiet Harbour, in 2004 and won a national music award two years later.",
     ("The band released a debut album.", "The debut album is Quiet Harbour.", "The debut album was released in 2004.",
      "The band won a national music award.", "The band won the award in 2006.")),
    ("She served as mayor of Porto Alegre from 1989 to 1992.",
     ("She served as mayor of Porto Alegre.", "She served as mayor from 1989.", "She served as mayor until 1992.")),
    ("Throughout her career, Okafor remained a vocal advocate for rural education.",
     ("Okafor was an advocate for rural education.", "Okafor advocated throughout her career.")),
    ("The river is about 300 kilometres long and flows into the Baltic Sea.",
     ("The river is about 300 kilometres long.", "The river flows into the Baltic Sea.")),
    ("I hope this helps!", ()),
)
DECOMPOSE_HEADER = "Please breakdown the following sentence into independent facts: "
DECOMPOSE_RULES = "v3"  # the fact rule (`claims.state_facts`): v2 dropped fragments, v3 also those with no verb
DECOMPOSE_VERSION = f"factscore-breakdown-ownshots-{DECOMPOSE_RULES}"
_NO_FACT_START = ("sure", "please", "here are", "here is", "this sentence does not contain any facts",
                  "i hope", "let me know")


def decompose_prompt(sentence: str, demos: Sequence[tuple[str, Sequence[str]]] = DECOMPOSE_DEMOS) -> str:
    blocks = [DECOMPOSE_HEADER + s + "\n" + "".join(f"- {f}\n" for f in facts) for s, facts in demos]
    return "\n".join(blocks) + "\n" + DECOMPOSE_HEADER + sentence + "\n"


class FActScoreDemos:
    """FActScore's own decomposition demonstrations (`demons.json` from its `download_data`, MIT-licensed, not
    shipped here), used as FActScore uses them for bios: its first 7 demonstrations, then the 1 closest to the
    sentence by BM25 (rank-bm25 over whitespace tokens), then the sentence."""

    FIXED, MATCHED = 7, 1

    def __init__(self, path: Path):
        import json

        from rank_bm25 import BM25Okapi

        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise FlameError(f"--factscore-demos {path}: not a readable demons.json ({e})") from None
        if not isinstance(data, dict) or not data or not all(isinstance(v, list) for v in data.values()):
            raise FlameError(f"--factscore-demos {path}: expected FActScore's {{sentence: [facts]}} JSON")
        self.demos = [(str(k), [str(f) for f in v]) for k, v in data.items()]
        self.bm25 = BM25Okapi([k.split(" ") for k, _ in self.demos])
        self.digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12]

    def prompt(self, sentence: str) -> str:
        sentences = [k for k, _ in self.demos]
        matched = self.bm25.get_top_n(sentence.split(" "), sentences, self.MATCHED)
        by_sentence = dict(self.demos)
        return decompose_prompt(sentence, self.demos[:self.FIXED] + [(m, by_sentence[m]) for m in matched])


def parse_facts(reply: str) -> list[str]:
    """The "- fact" lines of a reply, up to the next demonstration header (small models run on)."""
    facts: list[str] = []
    for line in reply.split("\n"):
        line = line.strip()
        if line.startswith(DECOMPOSE_HEADER.strip()[:20]):
            break
        if line.startswith("- "):
            fact = line[2:].strip()
            if fact and fact.rstrip(".") not in {f.rstrip(".") for f in facts}:
                facts.append(fact)
        elif facts and not line:
            break
    return facts


@dataclass
class LLMDecomposer:
    """FActScore's breakdown prompt with our own demonstrations, or FActScore's own (`demos`)."""

    backend: LLMBackend
    chat: bool = False
    max_tokens: int = 128
    name: str = "llm_breakdown"
    version: str = DECOMPOSE_VERSION
    demos: FActScoreDemos | None = None

    def __post_init__(self) -> None:
        if self.demos is not None:
            self.version = f"factscore-breakdown-demons-{DECOMPOSE_RULES}@{self.demos.digest}"
        else:
            self.version = with_template_hash(self.version, decompose_prompt("{sentence}"))

    def prompt(self, sentence: str) -> str:
        return self.demos.prompt(sentence) if self.demos is not None else decompose_prompt(sentence)

    def decompose_many(self, responses: Sequence[tuple[Sequence[str], str | None]]) -> list[list[AtomicFact]]:
        """Every sentence of every response in one backend call; facts keep the sentence's own wording (the
        verifier is asked about the response's topic)."""
        flat = self.decompose_sentences([s for sentences, _ in responses for s in sentences])
        out, k = [], 0
        for sentences, _ in responses:
            out.append([atom for per_sentence in flat[k:k + len(sentences)] for atom in per_sentence])
            k += len(sentences)
        return out

    def decompose_sentences(self, sentences: Sequence[str]) -> list[list[AtomicFact]]:
        """Atomic facts of each sentence (one backend call)."""
        todo = [i for i, s in enumerate(sentences) if not s.strip().lower().startswith(_NO_FACT_START)]
        replies = self.backend.complete([_as_prompt(self.prompt(sentences[i]), self.chat) for i in todo],
                                        max_tokens=self.max_tokens, stop=("\n\n", DECOMPOSE_HEADER))
        out: list[list[AtomicFact]] = [[] for _ in sentences]
        parsed = [parse_facts(reply) for reply in replies]
        stating = iter(state_facts([f for facts in parsed for f in facts]))
        for i, facts in zip(todo, parsed, strict=True):
            # a sentence the model returns no facts for is kept whole, as one claim (never silently free);
            # fragments ("He", "He was born") are not facts (FActScore's decomposition rule) and are dropped
            out[i] = ([AtomicFact(f, None) for f in facts if next(stating)]
                      or [AtomicFact(sentences[i].strip(), None)])
        return out

    def __call__(self, sentence: str) -> list[AtomicFact]:
        return self.decompose_sentences([sentence])[0]


# -- verification ----------------------------------------------------------------------------------------------
VERIFY_VERSION = "factscore-retrieve-lm-tf-v1"  # "+calibrated" when evidence_calibrated


def verify_prompt(topic: str, fact: str, passages: Sequence[Passage]) -> str:
    """FActScore's Retrieve->LM prompt: passages in reversed rank order (best last)."""
    context = ""
    for p in reversed(passages):
        text = p.text.strip()
        context += f"Title: {p.title}\nText: {text if text.endswith('.') else text + '.'}\n\n"
    return (f"Answer the question about {topic} based on the given context.\n\n{context}"
            f"\n\nInput: {fact.strip()} True or False?\nOutput:")


@dataclass
class LLMVerifier:
    """FActScore's Retrieve->LM rule: supported iff log P(True) > log P(False) after the passages.

    `evidence_calibrated=True` (our variant, off by default): supported iff the passages RAISE the True-vs-False
    margin over the same prompt without passages, a label-free correction for small models that answer "True"
    to anything (see `flame-bench verifier-check`).
    """

    backend: LLMBackend
    chat: bool = False
    evidence_calibrated: bool = False
    name: str = "llm_true_false"
    version: str = VERIFY_VERSION

    def __post_init__(self) -> None:
        self.version = with_template_hash(self.version, verify_prompt("{topic}", "{fact}", [
            Passage("{id}", "{title}", "{text}")]))
        if self.evidence_calibrated and not self.version.endswith("+calibrated"):
            self.version += "+calibrated"

    def true_logprob_margins(self, queries: Sequence[tuple[str, str, Sequence[Passage]]]) -> list[float]:
        """log P(True) - log P(False) of the next token for each (topic, fact, passages)."""
        prompts = [_as_prompt(verify_prompt(t, f, ps), self.chat) for t, f, ps in queries]
        margins = []
        for s in self.backend.choice_logprobs(prompts, ("True", "False")):
            a, b = s.get("True", -math.inf), s.get("False", -math.inf)
            margins.append(0.0 if a == b else (math.inf if b == -math.inf else -math.inf if a == -math.inf else a - b))
        return margins

    def verify_many(self, queries: Sequence[tuple[AtomicFact, Sequence[Passage], str]]) -> list[bool]:
        margins = self.true_logprob_margins([(topic, f.text, ps) for f, ps, topic in queries])
        if self.evidence_calibrated:
            prior = self.true_logprob_margins([(topic, f.text, []) for f, _, topic in queries])
            return [m > p for m, p in zip(margins, prior, strict=True)]
        return [m > 0 for m in margins]

    def __call__(self, fact: AtomicFact, passages: Sequence[Passage], topic: str = "") -> bool:
        return self.verify_many([(fact, passages, topic or (passages[0].title if passages else ""))])[0]


# -- fact-based instruction classifier -------------------------------------------------------------------------
CLASSIFY_VERSION = "flame-fig4-yes-no-v1"


def classify_prompt(instruction: str) -> str:
    return (f'Here is a question from a user: "{instruction}". To answer the above question, do you need the factual '
            'knowledge from Wikipedia? Give an answer using the format: "Answer: Yes or No".')


@CLASSIFIERS.register("llm_fact_based")
@dataclass
class LLMFactClassifier:
    """The paper's Figure 4 prompt; fact-based iff the next token after "Answer:" is more likely Yes than No."""

    backend: LLMBackend
    name: str = "llm_fact_based"
    version: str = CLASSIFY_VERSION
    uses_llm: ClassVar[bool] = True  # built on the evaluator LLM, not on a world

    def __post_init__(self) -> None:
        self.version = with_template_hash(self.version, classify_prompt("{instruction}") + "\nAnswer:")

    def classify_many(self, instructions: Sequence[str]) -> list[bool]:
        prompts: list[Prompt] = [[{"role": "user", "content": classify_prompt(i)},
                                  {"role": "assistant", "content": "Answer:"}] for i in instructions]
        return [_prefers(s, "Yes", "No") for s in self.backend.choice_logprobs(prompts, ("Yes", "No"))]

    def __call__(self, instruction: str) -> bool:
        return self.classify_many([instruction])[0]


# -- the additive 5-point judge --------------------------------------------------------------------------------
RUBRIC_JUDGE_VERSION = "yuan2024-additive-5pt-v1"
RUBRIC_PREFILL = ("To evaluate the response in alignment with this additive scoring model, we'll systematically "
                  "attribute points based on the outlined criteria.")


def rubric_prompt(instruction: str, response: str) -> str:
    return (
        "Review the user's question and the corresponding response using the additive 5-point scoring system "
        "described below. Points are accumulated based on the satisfaction of each criterion:\n"
        "- Add 1 point if the response is relevant and provides some information related to the user's inquiry, "
        "even if it is incomplete or contains some irrelevant content.\n"
        "- Add another point if the response addresses a substantial portion of the user's question, but does not "
        "completely resolve the query or provide a direct answer.\n"
        "- Award a third point if the response answers the basic elements of the user's question in a useful way, "
        "regardless of whether it seems to have been written by an AI Assistant or if it has elements typically "
        "found in blogs or search results.\n"
        "- Grant a fourth point if the response is clearly written from an AI Assistant's perspective, addressing "
        "the user's question directly and comprehensively, and is well-organized and helpful, even if there is "
        "slight room for improvement in clarity, conciseness or focus.\n"
        "- Bestow a fifth point for a response that is impeccably tailored to the user's question by an AI "
        "Assistant, without extraneous information, reflecting expert knowledge, and demonstrating a high-quality, "
        "engaging, and insightful answer.\n\n"
        f"User: {instruction}\n<response>{response}</response>\n\n"
        "After examining the user's instruction and the response:\n"
        "- Briefly justify your total score, up to 100 words.\n"
        '- Conclude with the score using the format: "Score: <total points>"\n'
        "Remember to assess from the AI Assistant perspective, utilizing web search knowledge as necessary."
    )


_SCORE = re.compile(r"score\s*:\s*([0-5])(?:\s*/\s*5)?\b", re.IGNORECASE)


def parse_rubric_score(reply: str) -> int | None:
    """The last "Score: N" (0-5) in a reply, or None (unparsable: counted, never guessed)."""
    found = _SCORE.findall(reply or "")
    return int(found[-1]) if found else None


SCORE_DIGITS = ("0", "1", "2", "3", "4", "5")


@dataclass
class LLMRubricJudge:
    """RM_IF on the real path: the additive 5-point rubric, pre-filled assistant turn, `Score: N` parsed.

    `readout=True` (not the paper's; for small judges that rarely finish with "Score: N"): a reply without a
    parsable score is continued with "Score:" and the most likely digit 0-5 is read from the next-token
    log-probabilities. Read-out scores are counted apart from parsed ones (`last_read_out`).
    """

    backend: LLMBackend
    max_tokens: int = 160
    readout: bool = False
    name: str = "llm_additive_5pt"
    version: str = RUBRIC_JUDGE_VERSION

    def __post_init__(self) -> None:
        self.version = with_template_hash(self.version, rubric_prompt("{instruction}", "{response}") + RUBRIC_PREFILL)
        if self.readout and not self.version.endswith("+readout"):
            self.version += "+readout"
        self.last_read_out = 0

    def score_many(self, pairs: Sequence[tuple[str, str]], temperature: float = 0.0,
                   seed: int | None = None) -> list[int | None]:
        """The score of each (instruction, response); `temperature` > 0 samples the judgement (seeded)."""
        prompts: list[Prompt] = [[{"role": "user", "content": rubric_prompt(i, r)},
                                  {"role": "assistant", "content": RUBRIC_PREFILL}] for i, r in pairs]
        replies = self.backend.complete(prompts, max_tokens=self.max_tokens, temperature=temperature, seed=seed)
        scores = [parse_rubric_score(reply) for reply in replies]
        todo = [i for i, s in enumerate(scores) if s is None] if self.readout else []
        self.last_read_out = len(todo)
        if todo:
            continued: list[Prompt] = [[prompts[i][0], {"role": "assistant", "content": f"{RUBRIC_PREFILL} "
                                        f"{replies[i].strip()}\nScore:"}] for i in todo]
            for i, lps in zip(todo, self.backend.choice_logprobs(continued, SCORE_DIGITS), strict=True):
                best = max(SCORE_DIGITS, key=lambda d: lps.get(d, -math.inf))
                scores[i] = int(best) if lps.get(best, -math.inf) > -math.inf else None
        return scores

    def __call__(self, instruction: str, response: str) -> int | None:
        return self.score_many([(instruction, response)])[0]


# -- AlpacaEval-style pairwise judge ---------------------------------------------------------------------------
PAIRWISE_VERSION = "alpaca-style-pairwise-logprob-v1"


def pairwise_prompt(instruction: str, output_a: str, output_b: str) -> str:
    return (
        "You are a helpful assistant that compares the answers of two AI models to the same instruction and "
        "selects the one a careful human expert would prefer: the one that follows the instruction better and is "
        "more helpful, accurate and clear. Do not let the order of the outputs or their length sway you.\n\n"
        f"## Instruction\n{instruction}\n\n## Output (a)\n{output_a}\n\n## Output (b)\n{output_b}\n\n"
        'Which output is better? Answer with exactly "a" or "b".'
    )


@JUDGES.register("llm_pairwise")
@dataclass
class LLMPairwiseJudge:
    """AlpacaEval-style head-to-head; P("a") vs P("b") of the first answer token decides (ties: equal mass)."""

    backend: LLMBackend
    name: str = "llm_pairwise"
    version: str = PAIRWISE_VERSION
    prompt_version: str = PAIRWISE_VERSION

    def __post_init__(self) -> None:
        template = pairwise_prompt("{instruction}", "{output_a}", "{output_b}") + "Better output: ("
        self.version = self.prompt_version = with_template_hash(self.prompt_version, template)
    uses_llm: ClassVar[bool] = True

    def compare_many(self, items: Sequence[tuple[dict[str, Any], str, str]]) -> list[str]:
        prompts: list[Prompt] = [[{"role": "user", "content": pairwise_prompt(rec["instruction"], o1, o2)},
                                  {"role": "assistant", "content": "Better output: ("}] for rec, o1, o2 in items]
        replies = []
        for s in self.backend.choice_logprobs(prompts, ("a", "b")):
            a, b = s.get("a", -math.inf), s.get("b", -math.inf)
            verdict = "tie" if a == b else "1" if a > b else "2"
            replies.append(f"log P(a) = {a:.3f}, log P(b) = {b:.3f}. Preferred: {verdict}")
        return replies

    def compare(self, record: dict[str, Any], output_1: str, output_2: str) -> str:
        return self.compare_many([(record, output_1, output_2)])[0]


# -- the real path's FActScore ---------------------------------------------------------------------------------
@SCORERS.register("factscore_llm")
def llm_factscorer(source, backend: LLMBackend, k: int = 5, chat: bool = False):
    """FActScore on a real knowledge source: sentences, LLM decomposition, BM25 on the topic's page (k passages),
    Retrieve->LM True/False verification."""
    from flame_bench.scoring.factscore import FactScorer
    from flame_bench.scoring.retrieval import BM25Retriever

    return FactScorer(source=source, decomposer=LLMDecomposer(backend, chat=chat),
                      verifier=LLMVerifier(backend, chat=chat), retriever=BM25Retriever(k=k), name="factscore_llm")
