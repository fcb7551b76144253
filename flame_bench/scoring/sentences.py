"""Sentence splitting for FActScore: spaCy's rule-based sentencizer (no model download needed)."""

from __future__ import annotations

import re
from functools import cached_property

from flame_bench.core.registry import SPLITTERS


@SPLITTERS.register("spacy")
class SpacySentenceSplitter:
    """`spacy.blank("en")` + `sentencizer`; lines are split first (the sentencizer misses newline lists)."""

    name = "spacy"
    version = "spacy-blank-sentencizer-v1"

    @cached_property
    def nlp(self):
        import spacy

        nlp = spacy.blank("en")
        nlp.add_pipe("sentencizer")
        return nlp

    def __call__(self, text: str) -> list[str]:
        return self.many([text])[0]

    def many(self, texts: list[str]) -> list[list[str]]:
        """Sentences of each text: every line of every text through one `nlp.pipe` (the same sentences as one
        call per line, without spaCy's per-call overhead)."""
        lines = [[line.strip() for line in re.split(r"\n+", text) if line.strip()] for text in texts]
        docs = iter(self.nlp.pipe([line for ls in lines for line in ls]))
        return [[s.text.strip() for _ in ls for s in next(docs).sents if s.text.strip()] for ls in lines]
