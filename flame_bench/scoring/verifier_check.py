"""How good is a FActScore verifier? Measured on claims with known labels, never assumed.

Claims come from a real knowledge source (e.g. the Wikipedia leads): a *true* claim is a sentence of an article; its
*false* twin is the same sentence with one named entity (a date, place, nationality, organisation, person or
number, found by spaCy's `en_core_web_sm` NER) replaced by an entity of the same type taken from ANOTHER article.
Each claim is verified against its own article (BM25, k passages), as FActScore does. Reported: accuracy, the
share of true claims judged supported (TPR) and of false claims judged unsupported (TNR), for every verifier.

Two reference verifiers frame the numbers: `always_true` (what a verifier that cannot read scores) and
`lexical` (supported iff every word of the claim occurs in the retrieved passages). The test is deliberately easy
for lexical matching, since true claims are verbatim: an LLM verifier that cannot beat `lexical` here reads
words, not facts. The harder set (`build_hard_claims`) removes that crutch: true claims are not verbatim (the
sentence without its parentheticals) and false claims keep the passage's words (an entity replaced by another of
the same type from the same article), so `lexical` is at chance there.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from flame_bench.core.errors import FlameError
from flame_bench.scoring.retrieval import BM25Retriever, KnowledgeSource, Passage, bm25_tokens
from flame_bench.scoring.spacy_pipeline import load_spacy

SWAP_LABELS = ("DATE", "GPE", "NORP", "ORG", "PERSON", "CARDINAL", "LOC")


@dataclass(frozen=True)
class Claim:
    topic: str
    text: str
    label: bool  # True: the sentence as written; False: one entity swapped
    swapped: str = ""  # "old -> new (LABEL)" for false claims


def build_claims(source: KnowledgeSource, topics: Sequence[str], n: int, seed: int = 0, nlp=None) -> list[Claim]:
    """`n` true claims and their `n` false twins from articles in `topics` (seeded sample)."""
    nlp = nlp or load_spacy()
    rng = random.Random(seed)
    pool = [t for t in topics if t in source]
    rng.shuffle(pool)
    pool = pool[: max(4 * n, 50)]
    parsed: dict[str, list[Any]] = {}  # topic -> sentences (spaCy spans) with a swappable entity
    donors: dict[str, list[tuple[str, str]]] = {}  # label -> (entity text, topic)
    for topic, doc in zip(pool, nlp.pipe(" ".join(p.text for p in source.pages[topic]) for topic in pool),
                          strict=True):
        sents = [s for s in doc.sents if 6 <= len(s) <= 60 and any(e.label_ in SWAP_LABELS for e in s.ents)]
        parsed[topic] = sents
        for e in doc.ents:
            if e.label_ in SWAP_LABELS:
                donors.setdefault(e.label_, []).append((e.text, topic))
    claims: list[Claim] = []
    for topic in pool:
        if len(claims) >= 2 * n or not parsed[topic]:
            continue
        sent = rng.choice(parsed[topic])
        ents = [e for e in sent.ents if e.label_ in SWAP_LABELS]
        ent = rng.choice(ents)
        choices = [text for text, t in donors.get(ent.label_, []) if t != topic and text != ent.text
                   and text.lower() not in sent.text.lower()]
        if not choices:
            continue
        new = rng.choice(choices)
        start, end = ent.start_char - sent.start_char, ent.end_char - sent.start_char
        false_text = sent.text[:start] + new + sent.text[end:]
        claims += [Claim(topic, sent.text.strip(), True),
                   Claim(topic, false_text.strip(), False, f"{ent.text} -> {new} ({ent.label_})")]
    if len(claims) < 2 * n:
        raise FlameError(f"only {len(claims) // 2} claim pairs could be built from {len(pool)} articles; "
                         "lower --n or use a larger knowledge source")
    return claims


PARENTHETICAL = re.compile(r"\s*\([^()]*\)")


def build_hard_claims(source: KnowledgeSource, topics: Sequence[str], n: int, seed: int = 0,
                      nlp=None) -> list[Claim]:
    """The harder set: `n` true claims that are not verbatim (the sentence without its parentheticals, so only
    sentences that have one) and `n` false twins that keep the passage's words: one entity replaced by another
    entity of the same type from the SAME article (so every word of the false claim is in the passages, and
    matching words cannot tell them apart)."""
    nlp = nlp or load_spacy()
    rng = random.Random(seed + 7919)  # a different draw of articles than the easy set's
    pool = [t for t in topics if t in source]
    rng.shuffle(pool)
    pool = pool[: max(8 * n, 100)]
    claims: list[Claim] = []
    for topic, doc in zip(pool, nlp.pipe(" ".join(p.text for p in source.pages[topic]) for topic in pool),
                          strict=True):
        if len(claims) >= 2 * n:
            break
        candidates = []
        for sent in doc.sents:
            if not 6 <= len(sent) <= 60 or not PARENTHETICAL.search(sent.text):
                continue
            for ent in sent.ents:
                if ent.label_ not in SWAP_LABELS or _inside_parentheses(sent.text, ent.start_char - sent.start_char):
                    continue
                others = {e.text for e in doc.ents if e.label_ == ent.label_ and not same_thing(e.text, ent.text)
                          and e.text.lower() not in sent.text.lower()}
                if others:
                    candidates.append((sent, ent, sorted(others)))
        if not candidates:
            continue
        sent, ent, others = rng.choice(candidates)
        new = rng.choice(others)
        start, end = ent.start_char - sent.start_char, ent.end_char - sent.start_char
        true_text = PARENTHETICAL.sub("", sent.text).strip()
        false_text = PARENTHETICAL.sub("", sent.text[:start] + new + sent.text[end:]).strip()
        if true_text == false_text:
            continue
        claims += [Claim(topic, true_text, True),
                   Claim(topic, false_text, False, f"{ent.text} -> {new} ({ent.label_}, same article)")]
    if len(claims) < 2 * n:
        raise FlameError(f"only {len(claims) // 2} hard claim pairs could be built from {len(pool)} articles; "
                         "lower --n or use a larger knowledge source")
    return claims


def same_thing(a: str, b: str) -> bool:
    """Two mentions of one thing (so swapping them would not make a false claim): one contains the other, or they
    differ only by case or a plural s ("Athenian" / "Athenians", "Tasman" / "Abel Tasman")."""
    x, y = a.lower().strip(), b.lower().strip()
    return x in y or y in x or x.rstrip("s") == y.rstrip("s")


def _inside_parentheses(text: str, pos: int) -> bool:
    return text[:pos].count("(") > text[:pos].count(")")


VerifyFn = Callable[[Sequence[tuple[Claim, list[Passage]]]], list[bool]]


def always_true(batch: Sequence[tuple[Claim, list[Passage]]]) -> list[bool]:
    return [True for _ in batch]


def lexical(batch: Sequence[tuple[Claim, list[Passage]]]) -> list[bool]:
    out = []
    for claim, passages in batch:
        words = set(bm25_tokens(" ".join(p.text for p in passages)))
        out.append(all(w in words for w in bm25_tokens(claim.text)))
    return out


def verify_fn(verifier) -> VerifyFn:
    """Adapt an LLM verifier (`verify_many`) to claims."""
    from flame_bench.scoring.factscore import AtomicFact

    def run(batch: Sequence[tuple[Claim, list[Passage]]]) -> list[bool]:
        return verifier.verify_many([(AtomicFact(c.text, None), ps, c.topic) for c, ps in batch])

    return run


def with_evidence(source: KnowledgeSource, claims: Sequence[Claim], k: int = 5) -> list[tuple[Claim, list[Passage]]]:
    """Each claim with the passages FActScore would check it against (BM25 over its topic's page, `k` passages)."""
    retriever = BM25Retriever(k=k)
    return [(c, retriever(source, f"{c.topic} {c.text}", [c.topic])) for c in claims]


def rates(claims: Sequence[Claim], verdicts: Sequence[bool]) -> dict[str, Any]:
    """Accuracy, TPR (true claims judged supported) and TNR (false claims judged unsupported)."""
    pos = [v for v, c in zip(verdicts, claims, strict=True) if c.label]
    neg = [not v for v, c in zip(verdicts, claims, strict=True) if not c.label]
    return {"accuracy": (sum(pos) + sum(neg)) / len(claims), "tpr": sum(pos) / len(pos), "tnr": sum(neg) / len(neg),
            "claims": len(claims)}


def measure(source: KnowledgeSource, claims: Sequence[Claim], verifiers: dict[str, VerifyFn],
            k: int = 5) -> dict[str, dict[str, Any]]:
    batch = with_evidence(source, claims, k)
    out: dict[str, dict[str, Any]] = {}
    for name, fn in verifiers.items():
        try:
            verdicts = fn(batch)
        except ValueError as e:  # e.g. a chat prompt for a model without a chat template
            out[name] = {"error": str(e).splitlines()[0][:100]}
            continue
        out[name] = rates(claims, verdicts)
    return out


def check_sets(knowledge: str, n: int, seed: int = 0, hard: bool = True) -> tuple[KnowledgeSource, dict[str, Any]]:
    """The knowledge source and the check sets drawn from its entities: name -> (claims, what they are)."""
    from flame_bench.real.knowledge import load_entities, open_knowledge

    source = open_knowledge(knowledge)
    topics = load_entities(knowledge, source)
    sets = {"entity-swap": (build_claims(source, topics, n, seed), "half true (verbatim), half with one entity "
                            "swapped in from another article")}
    if hard:
        sets["harder"] = (build_hard_claims(source, topics, n, seed), "half true (not verbatim), half with one "
                          "entity swapped for another of the same article")
    return source, sets


def run_checks(knowledge: str, llm_specs: list[str], n: int, seed: int = 0, chat: bool = True,
               nli: Sequence[Any] = (), hard: bool = True) -> dict[str, Any]:
    """`flame-bench verifier-check`: the entity-swap set (and the harder one) from `knowledge`, measured for the
    reference verifiers, each offline NLI verifier in `nli` (built by the caller) and each LLM of `llm_specs`
    (raw prompt, evidence-calibrated, and as a chat turn with `chat`; 'none' names no LLM)."""
    from flame_bench.engines.llm.resolve import evaluator_backend
    from flame_bench.real.components import LLMVerifier

    source, sets = check_sets(knowledge, n, seed, hard)
    verifiers = {"always_true": always_true, "lexical": lexical}
    for verifier in nli:  # offline NLI verifiers, built by the caller
        verifiers[f"nli {verifier.version}"] = verify_fn(verifier)
    for spec in [s for s in llm_specs or [None] if s != "none"]:  # `--llm none`: no LLM verifier
        backend = evaluator_backend(spec, quiet=False)
        label = backend.identity.get("model", spec)
        verifiers[f"{label} (raw prompt)"] = verify_fn(LLMVerifier(backend))
        verifiers[f"{label} (raw prompt, evidence-calibrated)"] = verify_fn(LLMVerifier(backend,
                                                                                     evidence_calibrated=True))
        if chat:
            verifiers[f"{label} (chat prompt)"] = verify_fn(LLMVerifier(backend, chat=True))
    report: dict[str, Any] = {"knowledge": source.name, "seed": seed, "sets": {}}
    for set_name, (claims, what) in sets.items():
        report["sets"][set_name] = {"n_claims": len(claims), "what": what,
                                    "results": measure(source, claims, verifiers),
                                    "examples": [c.__dict__ for c in claims[:10]]}
    return report
