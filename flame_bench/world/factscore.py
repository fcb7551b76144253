"""The fact world's FActScore parts: atomic facts by the world's grammar, support by the world's passages.

A fact is supported only if a retrieved passage states it, and a sentence that parses to no fact counts as one
unsupported fact, so gibberish and invented relations are never free. Pronouns ("He", "She") refer to the last
person a response named (its topic before anyone is named).
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from flame_bench.core.registry import SCORERS
from flame_bench.scoring.factscore import AtomicFact, FactScorer
from flame_bench.scoring.retrieval import BM25Retriever, KnowledgeSource, Passage
from flame_bench.world.grammar import PRONOUNS, Fact, Grammar


def canonical_text(fact: Fact) -> str:
    if fact.attribute == "born_before":
        return f"{fact.subject} was born earlier than {fact.value}."
    return f"The {fact.attribute.replace('_', ' ')} of {fact.subject} is {fact.value}."


@dataclass
class WorldDecomposer:
    """Atomic facts by the world's grammar (compound sentences yield several facts), pronouns resolved."""

    grammar: Grammar
    name: str = "world_grammar"
    version: str = "world-grammar-v1"

    def sentence_facts(self, sentence: str) -> list[AtomicFact]:
        parsed = self.grammar.parse_sentence(sentence)
        if parsed.abstains:
            return []
        if not parsed.facts:
            return [AtomicFact(sentence, None)]
        return [AtomicFact(canonical_text(f), f) for f in parsed.facts]

    def decompose_many(self, responses: Sequence[tuple[Sequence[str], str | None]]) -> list[list[AtomicFact]]:
        out = []
        for sentences, topic in responses:
            subject, atoms = topic, []
            for sentence in sentences:
                for atom in self.sentence_facts(sentence):
                    fact = atom.payload
                    if fact is not None:
                        if fact.subject in PRONOUNS.values():
                            resolved = fact.resolve(subject or fact.subject)
                            atom = AtomicFact(canonical_text(resolved), resolved)
                        else:
                            subject = fact.subject  # later pronouns refer to the last person named
                    atoms.append(atom)
            out.append(atoms)
        return out


@dataclass
class WorldVerifier:
    """Supported iff a retrieved passage states the fact (pronouns in a passage refer to its page's title)."""

    grammar: Grammar
    name: str = "world_passages"
    version: str = "world-passages-v1"
    _passage_facts: dict[tuple[str, str], frozenset[Fact]] = field(default_factory=dict, repr=False)

    def _facts_of(self, p: Passage) -> frozenset[Fact]:
        """What a passage states, parsed once (passages never change; every fact checked against it reuses it)."""
        key = (p.title, p.text)
        if key not in self._passage_facts:
            self._passage_facts[key] = frozenset(self.grammar.facts(p.text, topic=p.title))
        return self._passage_facts[key]

    def _stated(self, passages: Sequence[Passage]) -> set[Fact]:
        return set().union(*(self._facts_of(p) for p in passages))

    def supported(self, fact: AtomicFact, passages: Sequence[Passage]) -> bool:
        if fact.payload is None:
            return False
        stated = self._stated(passages)
        f = fact.payload
        if f.attribute != "born_before":
            return f in stated
        years = {s.subject: int(s.value) for s in stated if s.attribute == "birth_year"}
        return f.subject in years and f.value in years and years[f.subject] < years[f.value]

    def verify_many(self, queries: Sequence[tuple[AtomicFact, Sequence[Passage], str]]) -> list[bool]:
        return [self.supported(fact, passages) for fact, passages, _ in queries]


def falsely_accepted(fact_text: str, topic: str, passage_ids: Sequence[str], rate: float, salt: int = 0) -> bool:
    """Whether a simulated LLM fact checker accepts this unsupported fact: probability `rate`, decided by a hash of
    what the checker reads, so the same fact against the same passages always gets the same verdict (an LLM
    comparing the next-token logits of True and False is deterministic too). `salt` draws another checker."""
    if rate <= 0:
        return False
    key = "\x00".join((fact_text, topic, ",".join(passage_ids), str(salt)))
    rng = random.Random(int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big"))
    return rng.random() < rate


@dataclass
class NoisyWorldVerifier:
    """FLAME's RM_fact checks facts with an LLM (Inst-LLaMA 7B, Retrieve->LM), which FActScore measured to
    overestimate: it accepts unsupported facts (`flame_bench.world.judge_noise`). This is the world's exact verifier
    with each unsupported fact accepted with probability `rate` (`falsely_accepted`); supported facts stay supported."""

    exact: WorldVerifier
    rate: float
    salt: int = 0
    name: str = "world_passages_lenient"

    @property
    def version(self) -> str:
        return f"{self.exact.version}+accept{self.rate:g}-v1" + (f"-salt{self.salt}" if self.salt else "")

    def verify_many(self, queries: Sequence[tuple[AtomicFact, Sequence[Passage], str]]) -> list[bool]:
        exact = self.exact.verify_many(queries)
        return [ok or falsely_accepted(fact.text, topic, [p.id for p in passages], self.rate, self.salt)
                for ok, (fact, passages, topic) in zip(exact, queries, strict=True)]


def world_knowledge(world) -> KnowledgeSource:
    return KnowledgeSource({k["title"]: k["passages"] for k in world.knowledge}, name=f"fact-world:{world.path.name}")


@SCORERS.register("factscore_world")
def world_factscorer(world, k: int = 5, knowledge: KnowledgeSource | None = None,
                     verifier_noise: float = 0.0) -> FactScorer:
    """FActScore for the fact world: spaCy sentences, grammar facts, BM25 passages, passage verification (exact, or
    with `verifier_noise` > 0 an LLM-like checker that accepts some unsupported facts: `NoisyWorldVerifier`, for
    RM_fact only)."""
    verifier: WorldVerifier | NoisyWorldVerifier = WorldVerifier(world.grammar)
    if verifier_noise > 0:
        verifier = NoisyWorldVerifier(verifier, verifier_noise)
    return FactScorer(source=knowledge or world_knowledge(world), decomposer=WorldDecomposer(world.grammar),
                      verifier=verifier, retriever=BM25Retriever(k=k), name="factscore_world")
