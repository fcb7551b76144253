"""FActScore (Min et al. 2023) with a replaceable part at each stage.

    response -> abstention check -> sentences (spaCy) -> atomic facts (decomposer) -> passages (BM25 retriever)
             -> supported? (verifier) -> per-response precision -> FActScore, respond ratio, #correct/#erroneous

The pipeline knows nothing of where its parts come from: the fact world supplies a grammar decomposer and a
passage verifier (`flame_bench.world.factscore`), the real path an LLM decomposer and a Retrieve->LM verifier
(`flame_bench.real.components`). Abstentions and empty responses are excluded from the score and lower the respond
ratio, as in FActScore.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from flame_bench.core.stats import bootstrap_interval
from flame_bench.core.task_api import EvalContext, Generations, MetricInfo, TaskResult
from flame_bench.scoring.retrieval import BM25Retriever, KnowledgeSource, Passage
from flame_bench.scoring.sentences import SpacySentenceSplitter

# FActScore's generic abstention rule plus the world's own abstention sentences.
FACTSCORE_K = 5  # passages retrieved per atomic fact (FActScore's k)
_ABSTAIN_PREFIXES = ("i'm sorry", "i am sorry", "i do not know", "i don't know", "i have no information")


@dataclass(frozen=True)
class AtomicFact:
    text: str
    payload: Any = None  # what the decomposer parsed it into (the world's Fact); None when it states nothing known


class Decomposer(Protocol):
    """Atomic facts of whole responses: each response's sentences plus its topic (what pronouns refer to)."""

    name: str
    version: str

    def decompose_many(self, responses: Sequence[tuple[Sequence[str], str | None]]) -> list[list[AtomicFact]]: ...


class Verifier(Protocol):
    """Whether each (fact, retrieved passages, topic) is supported."""

    name: str
    version: str

    def verify_many(self, queries: Sequence[tuple[AtomicFact, Sequence[Passage], str]]) -> list[bool]: ...


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


# what scoring took: responses, responding ones, sentences decomposed, facts verified, retrievals
WORK_COUNTERS = ("responses", "responding", "sentences", "facts", "retrievals")


@dataclass
class FactScorer:
    """The pipeline; every stage is a replaceable component."""

    source: KnowledgeSource
    decomposer: Decomposer
    verifier: Verifier
    splitter: Any = field(default_factory=SpacySentenceSplitter)
    retriever: Any = field(default_factory=BM25Retriever)
    name: str = "factscore"
    # the pipeline's work so far, one count per WORK_COUNTERS name (the units an LLM-backed scorer pays per call;
    # `flame-bench bench --scale` prices them)
    counters: dict[str, int] = field(default_factory=dict, compare=False, repr=False)

    @property
    def identity(self) -> dict[str, Any]:
        """Every stage's name@version, the knowledge source and (LLM components) the model they run on."""
        out: dict[str, Any] = {stage: f"{c.name}@{c.version}" for stage, c in (
            ("splitter", self.splitter), ("decomposer", self.decomposer), ("retriever", self.retriever),
            ("verifier", self.verifier))} | {"knowledge": self.source.name}
        backends = [c.backend.identity for c in (self.decomposer, self.verifier) if hasattr(c, "backend")]
        if backends:
            out["evaluator_llm"] = backends[0] if all(b == backends[0] for b in backends) else backends
        return out

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
        """`score` for many responses, in three batched phases: decompose, retrieve, verify (one call each)."""
        queries = list(queries) if queries is not None else [None] * len(responses)
        responding = [i for i, r in enumerate(responses) if not self.abstains(r)]
        split = self.splitter.many if hasattr(self.splitter, "many") else lambda ts: [self.splitter(t) for t in ts]
        sentences = split([responses[i] for i in responding])
        atoms = self.decomposer.decompose_many([(ss, topics[i][0] if topics[i] else None)
                                                for i, ss in zip(responding, sentences, strict=True)])
        shared = {i: self.retriever(self.source, q, topics[i] or None) for i, q in enumerate(queries) if q is not None}
        checks: list[tuple[int, AtomicFact, list[Passage], str]] = []
        for i, response_atoms in zip(responding, atoms, strict=True):
            topic = topics[i][0] if topics[i] else (queries[i] or "")  # no topic: FLAME asks "about" the query
            for atom in response_atoms:
                passages = shared[i] if i in shared else self.retriever(
                    self.source, f"{topic} {atom.text}", topics[i] or None)
                checks.append((i, atom, passages, topic))
        verdicts = self.verifier.verify_many([(a, ps, t) for _, a, ps, t in checks])
        work = (len(responses), len(responding), sum(len(ss) for ss in sentences), len(checks),
                len(shared) + sum(i not in shared for i, *_ in checks))
        for key, n in zip(WORK_COUNTERS, work, strict=True):
            self.counters[key] = self.counters.get(key, 0) + n
        facts: dict[int, list[dict[str, Any]]] = {}
        for (i, atom, passages, _), ok in zip(checks, verdicts, strict=True):
            facts.setdefault(i, []).append({"text": atom.text, "supported": bool(ok),
                                            "evidence": [p.id for p in passages]})
        # no facts at all (nothing but abstention sentences) counts as an abstention, as in FActScore
        return [ResponseScore(abstained=True) if i not in facts else ResponseScore(abstained=False, facts=facts[i])
                for i in range(len(responses))]


def score_per_topic(scorer: FactScorer, topics: Sequence[str],
                    responses: Sequence[Sequence[str]]) -> list[list[ResponseScore]]:
    """Each topic's responses (several samples of one entity's bio, say) scored about that topic in one batched
    call, grouped as given."""
    flat = scorer.score_many([r for rs in responses for r in rs],
                             [[t] for t, rs in zip(topics, responses, strict=True) for _ in rs])
    out, k = [], 0
    for rs in responses:
        out.append(flat[k:k + len(rs)])
        k += len(rs)
    return out


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
    cis = {k: ci for k, ci in (("factscore", bootstrap_interval(prec, seed)),
                               ("factscore_gamma10", bootstrap_interval(prec10, seed))) if ci}
    return metrics, cis


FACTSCORE_METRICS = (
    MetricInfo("factscore", "FActScore", description="supported / atomic facts, mean over responding items"),
    MetricInfo("factscore_gamma10", "FActScore γ=10", description="with FActScore's length penalty"),
    MetricInfo("respond_ratio", "Respond", description="share of items not abstained"),
    MetricInfo("facts_per_response", "#Facts", percent=False),
    MetricInfo("correct_per_response", "#Correct", percent=False),
    MetricInfo("erroneous_per_response", "#Erroneous", higher_is_better=False, percent=False),
)


def unknown_topics(source: Any, topics: Sequence[str]) -> list[str]:
    """The topics without a page in the knowledge source. The one rule on every path (eval, import, rescore,
    RM_fact): an item about such a topic is left out and counted as `missing_topics`, never scored against an
    empty page."""
    return [t for t in topics if t not in source]


def score_generations(ctx: EvalContext, gens: Generations, scorer: FactScorer,
                      query_is_instruction: bool = False) -> TaskResult:
    """The body of every FActScore task: `score_outputs` of the task's generations."""
    return score_outputs(gens.items, gens.outputs, scorer, ctx.seed, query_is_instruction)


def score_outputs(items: Sequence[dict[str, Any]], outputs: Sequence[str], scorer: FactScorer, seed: int = 0,
                  query_is_instruction: bool = False) -> TaskResult:
    """Score each item's output about its `topics`, grouped by its `group` (and popularity bin, where items carry
    one), with the scorer's identity as the judge.

    `query_is_instruction`: retrieve once per response with the instruction as query (FLAME's RM_fact and Alpaca
    Fact); otherwise FActScore's per-fact query (topic + fact).
    """
    absent = [unknown_topics(scorer.source, it.get("topics") or []) for it in items]
    missing = [t for topics in absent for t in topics]
    if missing:  # left out and counted, never scored against an empty page
        kept = [i for i, topics in enumerate(absent) if not topics]
        items, outputs = [items[i] for i in kept], [outputs[i] for i in kept]
    queries = [it["instruction"] if query_is_instruction else None for it in items]
    scores = scorer.score_many(outputs, [list(it.get("topics") or []) for it in items], queries)
    result = score_responses(items, outputs, scores, groups=[it.get("group", "all") for it in items],
                             seed=seed, bins=[it.get("popularity") for it in items])
    if missing:
        result.counts["missing_topics"] = len(missing)
        result.extra["missing_topics"] = list(dict.fromkeys(missing))[:50]
    result.judge = {"scorer": scorer.name, "query": "instruction" if query_is_instruction else "topic + fact",
                    **scorer.identity}
    result.prompt_versions = {"decomposer": scorer.decomposer.version, "verifier": scorer.verifier.version}
    return result


def score_responses(items: Sequence[dict[str, Any]], outputs: Sequence[str], scores: Sequence[ResponseScore],
                    groups: Sequence[str], seed: int = 0, bins: Sequence[str | None] | None = None) -> TaskResult:
    """A FActScore task result: metrics with CIs, a breakdown by group (tier) and, where items carry one, by
    popularity bin (a long-tail world's pretraining exposure), and one sample per item."""
    metrics, cis = aggregate(scores, seed)
    breakdown = {g: aggregate([s for s, gg in zip(scores, groups, strict=True) if gg == g], seed)[0]
                 for g in dict.fromkeys(groups)}
    bins = list(bins) if bins is not None and any(b is not None for b in bins) else [None] * len(items)
    for b in sorted({b for b in bins if b is not None}, key=popularity_order):
        breakdown[b] = aggregate([s for s, bb in zip(scores, bins, strict=True) if bb == b], seed)[0]
    samples = [{"id": it["id"], "instruction": it["instruction"], "group": g, "output": out, **s.to_dict(),
                **({"popularity": b} if b is not None else {})}
               for it, out, s, g, b in zip(items, outputs, scores, groups, bins, strict=True)]
    abstained = sum(s.abstained for s in scores)
    return TaskResult(metrics=metrics, samples=samples, confidence_intervals=cis, breakdown=breakdown,
                      counts={"items": len(items), "abstained": abstained, "responding": len(items) - abstained})


class FactScoreReward:
    """FActScore as a reward (FLAME's RM_fact): the share of a response's atomic facts supported, retrieving with the
    instruction as query from the record's `topics` (all of the knowledge source when it has none); None when the
    response states no fact."""

    def __init__(self, scorer: FactScorer, name: str = "rm_fact"):
        self.scorer = scorer
        self.identity = {"name": name, "query": "instruction", **scorer.identity}
        self.stats: dict[str, int] = {}

    def score_many(self, records: Sequence[dict[str, Any]], responses: Sequence[str]) -> list[float | None]:
        known = [i for i, r in enumerate(records) if not unknown_topics(self.scorer.source, r.get("topics") or [])]
        if len(known) < len(records):  # no reward (as for a response stating no fact), counted
            self.stats["missing_topics"] = self.stats.get("missing_topics", 0) + len(records) - len(known)
        counters = getattr(self.scorer, "counters", {})  # a scorer of one's own need not count
        before = dict(counters)  # the scorer may serve others too: count this reward's share
        scores = self.scorer.score_many([responses[i] for i in known],
                                        [list(records[i].get("topics") or []) for i in known],
                                        [records[i]["instruction"] for i in known])
        by_index = dict(zip(known, scores, strict=True))
        for key, n in counters.items():
            self.stats[key] = self.stats.get(key, 0) + n - before.get(key, 0)
        return [by_index[i].precision() if i in by_index else None for i in range(len(records))]


def popularity_order(label: str) -> int:
    """Popularity bins in exposure order ("0 docs" < "1-2 docs" < ...)."""
    head = label.split()[0].split("-")[0]
    return int(head) if head.isdigit() else 10**9
