"""Sentence splitting for FActScore: spaCy's rule-based sentencizer (no model download needed)."""

from __future__ import annotations

import re
from functools import cached_property

from flame_bench.registry import SPLITTERS


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
        out: list[str] = []
        for line in re.split(r"\n+", text):
            if line.strip():
                out += [s.text.strip() for s in self.nlp(line.strip()).sents if s.text.strip()]
        return out
