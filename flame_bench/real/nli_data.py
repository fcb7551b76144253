"""Training data for the offline verifier made from a knowledge source's own pages (hard negatives, FEVER style).

Every sentence of a page becomes one or two pairs of a claim the page supports and one it does not, each with the
evidence the verifier sees at run time: a window of whole sentences of the page (`sentence_windows`) that holds the
claim's sentence, or, for a claim about facts the page never states, the window it would have been checked against.

Claims the page supports (SUPPORTS): the sentence verbatim; decontextualised (a leading "He"/"She"/"It" replaced by
the page's title, as `decontextualise` does to facts at run time); without its parentheticals (not verbatim).
Claims it does not support: one named entity swapped for another of the same type from another page or from the
same page (REFUTES; spaCy's NER: dates, places, nationalities, organisations, people, numbers), a year or number
changed, the first auxiliary negated, two entities of one type exchanged (a role swap), and a sentence of another
page about its own subject, restated about this page's subject (NOT ENOUGH INFO: a fact the evidence never states).

Some negatives keep the evidence's words (a same-page swap, a role swap): matching words cannot tell them from the
truth, only reading can. Drawn uniformly over candidates they were 15% of builder v1's negatives, and its verifier
judged 37% of validation same-page swaps and 9% of role swaps right. So each sentence gives one pair whose negative
is of the other kinds and, when it offers one, a second pair whose negative keeps the evidence's words.

Pages the verifier's checks draw claims from (`flame-bench verifier-check`: the source's people list) are never
trained on: only the other pages, split 90/10 into train and validation by a hash of the title.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Callable, Sequence
from typing import Any

from flame_bench.core.errors import FlameError
from flame_bench.core.io import read_jsonl, sha256_json, write_jsonl
from flame_bench.real.claims import PRONOUN_START, decontextualise, sentence_windows
from flame_bench.scoring.spacy_pipeline import load_spacy
from flame_bench.scoring.verifier_check import PARENTHETICAL, SWAP_LABELS, same_thing

BUILDER_VERSION = "wiki-hard-v2"  # v2: a second pair per sentence whose negative keeps the evidence's words
SCHEMA = "flame-bench/nli-examples"
WORDS_KEPT = ("swap-same-page", "role-swap")  # negatives whose words are all in the page: only reading tells them
_AUXILIARY = re.compile(r"\b(is|was|are|were|has|had|can|will)\b")


def page_split(title: str) -> str:
    """`train` or `validation` (1 in 10, by the title's hash: stable on every machine)."""
    return "validation" if int(hashlib.sha256(title.encode()).hexdigest()[:8], 16) % 10 == 0 else "train"


def _evidence_windows(sentences: Sequence[str], lengths: Sequence[int], size: int) -> list[str]:
    """For each sentence, the window of whole sentences that holds it (the first such window)."""
    evidence: list[str] = [""] * len(sentences)
    for start, end in sentence_windows(lengths, size):
        for i in range(start, end):
            evidence[i] = evidence[i] or " ".join(sentences[start:end])
    return evidence


def _replace(text: str, start: int, end: int, new: str) -> str:
    return text[:start] + new + text[end:]


def _changed_number(text: str, rng: random.Random) -> str | None:
    """The entity text with its first year or number changed (a year by 1-30, another number by 10-90%)."""
    match = re.search(r"\d[\d,]*", text)
    if not match:
        return None
    raw = match.group().replace(",", "")
    if not raw.isdigit():
        return None
    value = int(raw)
    if len(raw) == 4 and 1000 <= value <= 2100:
        new = value + rng.choice([-1, 1]) * rng.randint(1, 30)
    else:
        new = max(0, round(value * (1 + rng.choice([-1, 1]) * rng.uniform(0.1, 0.9))))
    if new == value:
        new = value + 1
    return text[:match.start()] + str(new) + text[match.end():]


def _negated(text: str) -> str | None:
    match = _AUXILIARY.search(text)
    if not match or text[match.end():].lstrip().startswith("not"):
        return None
    return text[:match.end()] + " not" + text[match.end():]


def _subject_restated(sentence: str, title: str, new_subject: str) -> str | None:
    """A sentence of page `title` whose subject is the page itself (its title or a pronoun), restated about
    `new_subject`; None when the sentence is not about its page's subject."""
    if sentence.startswith(title + " "):
        return new_subject + sentence[len(title):]
    if PRONOUN_START.match(sentence):
        return PRONOUN_START.sub(new_subject, sentence, count=1)
    return None


def build_examples(pages: dict[str, str], nlp: Any, token_count: Callable[[str], int], window_tokens: int,
                   seed: int = 0) -> list[dict[str, Any]]:
    """One or two (supported, unsupported) pairs per usable sentence of each page (see the module doc), each with
    its evidence window; deterministic for a seed."""
    rng = random.Random(seed)
    titles = sorted(pages)
    parsed = {}
    donors: dict[str, list[tuple[str, str]]] = {}
    for title, doc in zip(titles, nlp.pipe(pages[t] for t in titles), strict=True):
        sents = [s for s in doc.sents if s.text.strip()]
        parsed[title] = sents
        for e in doc.ents:
            if e.label_ in SWAP_LABELS:
                donors.setdefault(e.label_, []).append((e.text, title))
    about_subject = [(title, s.text.strip()) for title in titles for s in parsed[title]
                     if 6 <= len(s) <= 40 and _subject_restated(s.text.strip(), title, "X") is not None]
    examples: list[dict[str, Any]] = []
    for title in titles:
        sents = parsed[title]
        texts = [s.text.strip() for s in sents]
        windows = _evidence_windows(texts, [token_count(t) for t in texts], window_tokens)
        for i, sent in enumerate(sents):
            if not 6 <= len(sent) <= 60:
                continue
            text, evidence = texts[i], windows[i]
            positives = [("verbatim", text)]
            if (alone := decontextualise(text, title)) != text:
                positives.append(("decontextualised", alone))
            if (plain := PARENTHETICAL.sub("", text).strip()) != text and len(plain.split()) >= 4:
                positives.append(("no-parenthetical", plain))
            negatives: list[tuple[str, str, str]] = []
            offset = sent.start_char
            ents = [e for e in sent.ents if e.label_ in SWAP_LABELS]
            for e in ents:
                start, end = e.start_char - offset, e.end_char - offset
                other = [t for t, page in donors.get(e.label_, []) if page != title and not same_thing(t, e.text)
                         and t.lower() not in text.lower()]
                if other:
                    negatives.append(("swap-other-page", "REFUTES", _replace(text, start, end, rng.choice(other))))
                same = sorted({x.text for x in sent.doc.ents if x.label_ == e.label_
                               and not same_thing(x.text, e.text) and x.text.lower() not in text.lower()})
                if same:
                    negatives.append(("swap-same-page", "REFUTES", _replace(text, start, end, rng.choice(same))))
                if e.label_ in ("DATE", "CARDINAL") and (changed := _changed_number(e.text, rng)):
                    negatives.append(("number", "REFUTES", _replace(text, start, end, changed)))
            for a in range(len(ents)):
                for b in range(a + 1, len(ents)):
                    x, y = ents[a], ents[b]
                    if x.label_ == y.label_ and not same_thing(x.text, y.text):
                        (xs, xe), (ys, ye) = (x.start_char - offset, x.end_char - offset), (y.start_char - offset,
                                                                                              y.end_char - offset)
                        swapped = text[:xs] + y.text + text[xe:ys] + x.text + text[ye:]
                        negatives.append(("role-swap", "REFUTES", swapped))
            if (negated := _negated(text)) is not None:
                negatives.append(("negation", "REFUTES", negated))
            if about_subject:
                other_title, other_sentence = about_subject[rng.randrange(len(about_subject))]
                if other_title != title and (foreign := _subject_restated(other_sentence, other_title, title)):
                    negatives.append(("not-stated", "NOT ENOUGH INFO", foreign))
            kept = [n for n in negatives if n[0] in WORDS_KEPT]
            for group in ([n for n in negatives if n[0] not in WORDS_KEPT], kept):
                if not group:
                    continue
                kind, claim = positives[rng.randrange(len(positives))]
                examples.append({"evidence": evidence, "claim": claim, "label": "SUPPORTS", "kind": kind,
                                 "topic": title})
                kind, label, claim = group[rng.randrange(len(group))]
                examples.append({"evidence": evidence, "claim": claim, "label": label, "kind": kind, "topic": title})
    return examples


def wiki_examples(knowledge: str, split: str, tokenizer: Any, window_tokens: int, seed: int,
                  cache_dir: Any) -> list[dict[str, Any]]:
    """The examples of one split made from `knowledge`'s pages outside the checks' pages, built once per (source,
    split, tokenizer, window, seed, builder version) and cached as JSONL beside the verifier (checked on load)."""
    from flame_bench.real.knowledge import load_entities, open_knowledge

    source = open_knowledge(knowledge)
    key = sha256_json({"source": source.name, "split": split, "window": window_tokens, "seed": seed,
                       "builder": BUILDER_VERSION, "tokenizer": [type(tokenizer).__name__, len(tokenizer)]})[:16]
    path = cache_dir / f"{split}-{key}.jsonl"
    if path.is_file():
        return read_jsonl(path, SCHEMA, 1)
    held_out = set(load_entities(knowledge, source))
    pages = {t: " ".join(p.text for p in source.pages[t]) for t in source.pages
             if t not in held_out and page_split(t) == split}
    if not pages:
        raise FlameError(f"{knowledge} has no {split} pages outside the verifier checks' pages; use a larger source")
    examples = build_examples(pages, load_spacy(), lambda s: len(tokenizer(s, add_special_tokens=False)["input_ids"]),
                              window_tokens, seed)
    write_jsonl(path, SCHEMA, 1, examples)
    return examples
