"""Claims and passages as the offline verifier reads them: sentences, windows of whole sentences, claims made to
stand alone, and FActScore's rule for what counts as a fact. One home for the decomposer, the verifier and the
verifier's training data, so training sees what verification sees."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from flame_bench.scoring.spacy_pipeline import tagger

PRONOUN_START = re.compile(r"^(He|She|It|They)\b(?!')")
_POSSESSIVE_START = re.compile(r"^(His|Her|Its|Their)\b")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9])")
_ABBREVIATION_END = re.compile(r"(?:\b(?:St|Mt|Ft|Mr|Mrs|Ms|Dr|Jr|Sr|Prof|Gen|Col|Lt|Capt|Rev|Sen|Gov|Hon|No|Vol|"
                               r"vs|c|ca|approx|U\.S|U\.K|Inc|Ltd|Co|Corp)|(?<![\w.])[A-Z])\.$")
_FUNCTION_WORDS = frozenset(re.findall(r"\w+", "a an the of in on at to for with by from as and or but is was are that "
                                                 "were be been has had his her its their he she it they who which"))


def split_sentences(text: str) -> list[str]:
    """Sentences of a passage: a cut after . ! or ? that a capital, digit or opening quote follows, except after an
    abbreviation or an initial ("St. Paul", "J. R. R. Tolkien", "c. 1450")."""
    out: list[str] = []
    for part in (p.strip() for p in _SENTENCE_END.split(text)):
        if not part:
            continue
        if out and _ABBREVIATION_END.search(out[-1]):
            out[-1] += " " + part
        else:
            out.append(part)
    return out


def sentence_windows(lengths: Sequence[int], size: int) -> list[tuple[int, int]]:
    """Windows of whole sentences (`[start, end)` indices) of at most `size` tokens in all, given each sentence's
    token count; consecutive windows share one sentence, so every sentence sits whole in some window beside its
    neighbour. A sentence longer than `size` is a window of its own (cut by the caller)."""
    windows: list[tuple[int, int]] = []
    start = 0
    while start < len(lengths):
        end, used = start, 0
        while end < len(lengths) and (end == start or used + lengths[end] <= size):
            used += lengths[end]
            end += 1
        windows.append((start, end))
        if end >= len(lengths):
            break
        # overlap by the last sentence, unless it was the only one or the next would not fit beside it
        start = end - 1 if end - 1 > start and lengths[end - 1] + lengths[end] <= size else end
    return windows


def decontextualise(claim: str, topic: str) -> str:
    """The claim about `topic` made to stand alone: a leading subject pronoun becomes the topic ("He was born in
    1950." -> "Ada Lovelace was born in 1950."), a leading possessive its possessive. Other claims are unchanged."""
    claim = claim.strip()
    if not topic:
        return claim
    if PRONOUN_START.match(claim):
        return PRONOUN_START.sub(topic, claim, count=1)
    if _POSSESSIVE_START.match(claim):
        return _POSSESSIVE_START.sub(f"{topic}'s", claim, count=1)
    return claim


# passives that say nothing without a complement: "He was born", "It is located", "She is known"
_NEEDS_COMPLEMENT = frozenset({"born", "known", "located", "based", "considered", "regarded", "described", "named",
                               "called", "noted"})


def state_facts(claims: Sequence[str], nlp: Any = None) -> list[bool]:
    """For each claim, whether it states a fact (FActScore's decomposition rule that every atomic fact is a
    statement): at least three words, not cut off after a function word ("He", "Ivan Asen II is"), a verb (spaCy's
    tagger: "Her work on the molecular structure" is a noun phrase), and not ending on a verb that needs a complement
    ("He was born", "It is located"). Claims that state nothing are dropped, never verified."""
    keep = []
    for claim in claims:
        words = re.findall(r"[\w'-]+", claim)
        keep.append(len(words) >= 3 and words[-1].lower() not in _FUNCTION_WORDS
                    and words[-1].lower() not in _NEEDS_COMPLEMENT)
    todo = [i for i, k in enumerate(keep) if k]
    if todo:
        nlp = nlp or tagger()
        for i, doc in zip(todo, nlp.pipe(claims[i] for i in todo), strict=True):
            keep[i] = any(t.pos_ in ("VERB", "AUX") for t in doc)
    return keep
