"""FActScore (Min et al. 2023) with a replaceable part at each stage.

    response -> abstention check -> sentences (spaCy) -> atomic facts (decomposer) -> passages (BM25 retriever)
             -> supported? (verifier) -> per-response precision -> FActScore, respond ratio, #correct/#erroneous

For the fact world the decomposer and verifier use the world's grammar: a fact is supported only if a
retrieved passage states it, and a sentence that parses to no fact counts as one unsupported fact, so
gibberish and invented relations are never free. Abstentions and empty responses are excluded from the
score and lower the respond ratio, as in FActScore.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from flame_bench.registry import SCORERS
from flame_bench.scoring.retrieval import BM25Retriever, KnowledgeSource, Passage
from flame_bench.scoring.sentences import SpacySentenceSplitter
from flame_bench.task_api import MetricInfo, TaskResult
from flame_bench.world.grammar import PRONOUNS, Fact, Grammar

# FActScore's generic abstention rule plus the world's own abstention sentences.
_ABSTAIN_PREFIXES = ("i'm sorry", "i am sorry", "i do not know", "i don't know", "i have no information")


@dataclass(frozen=True)
class AtomicFact:
    text: str
    fact: Fact | None  # None: the sentence states nothing the grammar knows -> unsupported


class Decomposer(Protocol):
    name: str
    version: str

    def __call__(self, sentence: str) -> list[AtomicFact]: ...


class Verifier(Protocol):
    name: str
    version: str

    def __call__(self, fact: AtomicFact, passages: Sequence[Passage]) -> bool: ...


def canonical_text(fact: Fact) -> str:
    if fact.attribute == "born_before":
        return f"{fact.subject} was born earlier than {fact.value}."
    return f"The {fact.attribute.replace('_', ' ')} of {fact.subject} is {fact.value}."


@dataclass
class WorldDecomposer:
    """Atomic facts by the world's grammar (compound sentences yield several facts)."""

    grammar: Grammar
    name: str = "world_grammar"
    version: str = "world-grammar-v1"

    def __call__(self, sentence: str) -> list[AtomicFact]:
        parsed = self.grammar.parse_sentence(sentence)
        if parsed.abstains:
            return []
        if not parsed.facts:
            return [AtomicFact(sentence, None)]
        return [AtomicFact(canonical_text(f), f) for f in parsed.facts]


@dataclass
class WorldVerifier:
    """Supported iff a retrieved passage states the fact (pronouns in a passage refer to its page's title)."""

    grammar: Grammar
    name: str = "world_passages"
    version: str = "world-passages-v1"

    def _stated(self, passages: Sequence[Passage]) -> set[Fact]:
        return {f for p in passages for f in self.grammar.facts(p.text, topic=p.title)}

    def __call__(self, fact: AtomicFact, passages: Sequence[Passage]) -> bool:
        if fact.fact is None:
            return False
        stated = self._stated(passages)
        f = fact.fact
        if f.attribute != "born_before":
            return f in stated
        years = {s.subject: int(s.value) for s in stated if s.attribute == "birth_year"}
        return f.subject in years and f.value in years and years[f.subject] < years[f.value]


@dataclass
class ResponseScore:
    abstained: bool
    facts: list[dict[str, Any]] = field(default_factory=list)  # text, supported, evidence passage ids

    @property
    def n(self) -> int:
        return len(self.facts)

    @property
    def supported(self) -> int:
        return sum(f["supported"] for f in self.facts)

    def precision(self, gamma: float = 0.0) -> float | None:
        """FActScore of one response; gamma > 0 applies FActScore's length penalty exp(1 - gamma/n)."""
        if self.abstained or not self.facts:
            return None
        score = self.supported / self.n
        if gamma and self.n < gamma:
            score *= math.exp(1 - gamma / self.n)
        return score

    def to_dict(self) -> dict[str, Any]:
        return {"abstained": self.abstained, "n_facts": self.n, "n_supported": self.supported,
                "factscore": self.precision(), "factscore_gamma10": self.precision(10), "facts": self.facts}


@dataclass
class FactScorer:
    """The pipeline; every stage is a replaceable component."""

    source: KnowledgeSource
    decomposer: Decomposer
    verifier: Verifier
    splitter: Any = field(default_factory=SpacySentenceSplitter)
    retriever: Any = field(default_factory=BM25Retriever)

    @property
    def identity(self) -> dict[str, str]:
        return {stage: f"{c.name}@{c.version}" for stage, c in (
            ("splitter", self.splitter), ("decomposer", self.decomposer), ("retriever", self.retriever),
            ("verifier", self.verifier))} | {"knowledge": self.source.name}

    @staticmethod
    def abstains(response: str) -> bool:
        low = response.strip().lower()
        return not low or low.startswith(_ABSTAIN_PREFIXES) or "provide more" in low

    def score(self, response: str, topics: list[str], query: str | None = None) -> ResponseScore:
        """Score `response` about `topics` (pages to retrieve from; the first is what pronouns refer to).

        `query=None` is FActScore's per-fact query (topic + fact); otherwise that query (the instruction)
        retrieves passages once for the whole response, as FLAME's RM_fact does.
        """
        return self.score_many([response], [topics], [query])[0]

    def score_many(self, responses: Sequence[str], topics: Sequence[list[str]],
                   queries: Sequence[str | None] | None = None) -> list[ResponseScore]:
        """`score` for many responses, in three batched phases: decompose every sentence, retrieve, verify.

        Components with `decompose_many` / `verify_many` (the LLM ones) get one call per phase; program
        components are called item by item.
        """
        queries = list(queries) if queries is not None else [None] * len(responses)
        sentences = [(i, s) for i, r in enumerate(responses) if not self.abstains(r) for s in self.splitter(r)]
        decompose_many = getattr(self.decomposer, "decompose_many", None)
        atoms_per_sentence = (decompose_many([s for _, s in sentences]) if decompose_many
                              else [self.decomposer(s) for _, s in sentences])
        shared = {i: self.retriever(self.source, q, topics[i] or None) for i, q in enumerate(queries) if q is not None}
        subjects: dict[int, str | None] = {i: (t[0] if t else None) for i, t in enumerate(topics)}
        checks: list[tuple[int, AtomicFact, list[Passage], str]] = []
        for (i, _), atoms in zip(sentences, atoms_per_sentence, strict=True):
            for atom in atoms:
                if atom.fact is not None:
                    if atom.fact.subject in PRONOUNS.values():
                        resolved = atom.fact.resolve(subjects[i] or atom.fact.subject)
                        atom = AtomicFact(canonical_text(resolved), resolved)
                    else:
                        subjects[i] = atom.fact.subject  # later pronouns refer to the last person named
                topic = topics[i][0] if topics[i] else (queries[i] or "")  # no topic: FLAME asks "about" the query
                passages = shared[i] if i in shared else self.retriever(
                    self.source, f"{topic} {atom.text}", topics[i] or None)
                checks.append((i, atom, passages, topic))
        verify_many = getattr(self.verifier, "verify_many", None)
        verdicts = (verify_many([(a, ps, t) for _, a, ps, t in checks]) if verify_many
                    else [self.verifier(a, ps) for _, a, ps, _ in checks])
        facts: dict[int, list[dict[str, Any]]] = {}
        for (i, atom, passages, _), ok in zip(checks, verdicts, strict=True):
            facts.setdefault(i, []).append({"text": atom.text, "supported": bool(ok),
                                            "evidence": [p.id for p in passages]})
        # no facts at all (nothing but abstention sentences) counts as an abstention, as in FActScore
        return [ResponseScore(abstained=True) if i not in facts else ResponseScore(abstained=False, facts=facts[i])
                for i in range(len(responses))]


def world_factscorer(world, k: int = 5) -> FactScorer:
    """FActScore for the fact world: spaCy sentences, grammar facts, BM25 passages, passage verification."""
    return FactScorer(source=KnowledgeSource.from_world(world), decomposer=WorldDecomposer(world.grammar),
                      verifier=WorldVerifier(world.grammar), retriever=BM25Retriever(k=k))


SCORERS.register("factscore_world")(world_factscorer)


def bootstrap_ci(values: Sequence[float], seed: int = 0, iters: int = 1000) -> tuple[float, float] | None:
    """95% percentile bootstrap interval of the mean."""
    if not values:
        return None
    rng = random.Random(seed)
    n = len(values)
    means = sorted(sum(values[rng.randrange(n)] for _ in range(n)) / n for _ in range(iters))
    return means[int(0.025 * iters)], means[int(0.975 * iters) - 1]


def aggregate(scores: Sequence[ResponseScore], seed: int = 0) -> tuple[dict[str, float | None],
                                                                       dict[str, tuple[float, float]]]:
    """FActScore (gamma 0 and 10), respond ratio, facts / correct / erroneous per responding response."""
    responding = [s for s in scores if not s.abstained]
    prec = [s.precision() or 0.0 for s in responding]
    prec10 = [s.precision(10) or 0.0 for s in responding]
    n = len(responding)

    def mean(xs: Sequence[float]) -> float | None:
        return sum(xs) / len(xs) if xs else None

    metrics = {
        "factscore": mean(prec),
        "factscore_gamma10": mean(prec10),
        "respond_ratio": n / len(scores) if scores else None,
        "facts_per_response": mean([s.n for s in responding]),
        "correct_per_response": mean([s.supported for s in responding]),
        "erroneous_per_response": mean([s.n - s.supported for s in responding]) if n else None,
    }
    cis = {k: ci for k, ci in (("factscore", bootstrap_ci(prec, seed)),
                               ("factscore_gamma10", bootstrap_ci(prec10, seed))) if ci}
    return metrics, cis


FACTSCORE_METRICS = (
    MetricInfo("factscore", "FActScore", description="supported / atomic facts, mean over responding items"),
    MetricInfo("factscore_gamma10", "FActScore γ=10", description="with FActScore's length penalty"),
    MetricInfo("respond_ratio", "Respond", description="share of items not abstained"),
    MetricInfo("facts_per_response", "#Facts", percent=False),
    MetricInfo("correct_per_response", "#Correct", percent=False),
    MetricInfo("erroneous_per_response", "#Erroneous", higher_is_better=False, percent=False),
)


def factscore_task(ctx, items: Sequence[dict[str, Any]], topics: Sequence[list[str]], groups: Sequence[str],
                   prompt_version: str, query_is_instruction: bool = False, k: int = 5) -> TaskResult:
    """Generate answers to `items` and score them with the world's FActScore: the body of every FActScore task."""
    assert ctx.generate is not None
    outputs = ctx.generate([it["instruction"] for it in items])
    scorer = world_factscorer(ctx.world, k=k)
    scores = scorer.score_many(outputs, topics, [it["instruction"] if query_is_instruction else None for it in items])
    result = score_responses(items, outputs, scores, groups=groups, seed=ctx.seed)
    result.judge = {"scorer": "factscore_world", "query": "instruction" if query_is_instruction else "topic + fact",
                    **scorer.identity}
    result.prompt_versions = {"instruction": prompt_version}
    return result


def score_responses(items: Sequence[dict[str, Any]], outputs: Sequence[str], scores: Sequence[ResponseScore],
                    groups: Sequence[str], seed: int = 0) -> TaskResult:
    """A FActScore task result: metrics with CIs, a breakdown by group (tier) and one sample per item."""
    metrics, cis = aggregate(scores, seed)
    breakdown = {g: aggregate([s for s, gg in zip(scores, groups, strict=True) if gg == g], seed)[0]
                 for g in dict.fromkeys(groups)}
    samples = [{"id": it["id"], "instruction": it["instruction"], "group": g, "output": out, **s.to_dict()}
               for it, out, s, g in zip(items, outputs, scores, groups, strict=True)]
    abstained = sum(s.abstained for s in scores)
    return TaskResult(metrics=metrics, samples=samples, confidence_intervals=cis, breakdown=breakdown,
                      counts={"items": len(items), "abstained": abstained, "responding": len(items) - abstained})
