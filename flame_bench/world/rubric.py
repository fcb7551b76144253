"""The fact world's instruction-following rubric: an additive 5-point score (0..5), implemented as a program.

It plays the role of FLAME's RM_IF judge (paper Fig. 8, Yuan et al.'s additive rubric) for the fact world. Like an
LLM judge that cannot look facts up, it is BLIND TO FACTUAL TRUTH: it reads only the instruction record's
`instruction`, `kind`, `spec`, `people` and `fact_based` fields, never the human `response` nor anyone's true
attributes. It checks task completion and rewards detail, so a confident, detailed, wrong biography scores as well as
a true one (the helpfulness-vs-factuality tension FLAME is about). It does check internal coherence (repetition,
self-contradiction), which a judge can see without knowing the truth.

Notation: sentences come from the world's splitter; "facts" are the grammar's parsed facts, with a pronoun subject
resolved to the last person named before it (the first asked person when none was named yet); "asked people" are
`record["people"]`; a word is "mentioned" when it occurs as a whole word (case-insensitive).

Points (each adds 1):

1. relevant. Fact-based: names an asked person (or states a fact whose pronoun resolves to one).
   list: mentions the category (singular or plural) or a word of it; sort: mentions a given number;
   reverse/join: mentions a given word; count: states a number or mentions a given word; poem: mentions the topic;
   story: mentions the animal or the place.
2. substantial. Fact-based: at least one fact about an asked person. Skills, the right format:
   list/reverse: the answer is a list of >= 2 plain words; sort: a list of >= 2 integers; join: >= 2
   comma-separated parts; count: states a number; poem and story: >= 2 sentences.
3. answers the basic question. attribute: a fact about the person with the asked attribute (any value);
   bio: >= 3 distinct attributes of the person; comparison: a birth year for both people and a born-earlier
   conclusion between them that agrees with the stated years; list: exactly n distinct words, all of the category;
   sort: exactly the given numbers in ascending order; reverse: exactly the given words in reverse order;
   join: exactly the given words joined by ", "; count: every number stated equals the number of words;
   poem: the topic in >= 2 sentences; story: mentions both the animal and the place.
4. clearly written (needs 2). No sentence repeated (case-insensitive); fact-based: every sentence parses under the
   grammar (a fact, a comparison or an abstention), no fact stated twice, no attribute of a person given two
   different values, no contradictory comparison; skills: every sentence ends with . ? or ! and no word is
   immediately repeated ("the the").
5. expert and complete (needs 3 and 4). bio: >= 5 distinct attributes; attribute: the asked attribute plus >= 1 fact
   with another attribute of the person; comparison: >= 1 fact beyond birth years and the conclusion; fact-based
   also: every fact is about an asked person. list/sort/reverse/count/join: the response is the answer sentence alone
   (nothing extra); poem: >= 3 sentences; story: >= 4 sentences, one of which names both the animal and the place;
   poem and story also: no sentence states a fact about a person.

Point 1 gates everything: an irrelevant (or empty) response scores 0. The answer of a list/sort/reverse/join
response is read from its "answer sentence" (the one with most candidate items: integers for sort, category words
otherwise; the last on ties), after its last ":" or else after its first "is"/"are" (list: also after a leading
"<n> <category>"); separators may be commas or spaces and a standalone "and" is ignored. Human responses score 5,
except attribute and comparison answers (4: they state no further fact).
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from flame_bench.world.generate import CATEGORIES
from flame_bench.world.grammar import PRONOUNS, Fact, Grammar, normalize, split_sentences

RUBRIC_VERSION = "world-if-rubric-v1"
FACT_KINDS = ("bio", "attribute", "comparison")
SKILL_KINDS = ("list", "sort", "reverse", "count", "join", "poem", "story")
_ALL_WORDS = frozenset(w for ws in CATEGORIES.values() for w in ws)
_NUMBER_WORDS = {w: i for i, w in enumerate((
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
    "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty"))}


@dataclass(frozen=True)
class RubricScore:
    """Total points (0..5), the reason for each point given, and a detail count used to break ties.

    `detail`: distinct facts about the asked people (fact-based) or the number of sentences (skills).
    """

    score: int
    points: tuple[str, ...]
    detail: int = 0


def rubric_checks(record: dict[str, Any], response: str, grammar: Grammar) -> tuple[list[_Check], int] | None:
    """The five criteria as read from `response` (before the rubric's gating) and the detail count; None for an
    empty response."""
    text = normalize(response or "")
    if not text:
        return None
    kind = record.get("kind")
    if kind in FACT_KINDS:
        return _fact_checks(record, text, grammar)
    if kind in SKILL_KINDS:
        return _skill_checks(record, text, grammar)
    raise ValueError(f"if_rubric: unknown instruction kind {kind!r} (known: {FACT_KINDS + SKILL_KINDS})")


def if_rubric(record: dict[str, Any], response: str, grammar: Grammar) -> RubricScore:
    """Score `response` to the instruction `record` with the additive rubric (see the module docstring)."""
    read = rubric_checks(record, response, grammar)
    return RubricScore(0, ()) if read is None else _total(*read)


def sampled_rubric_score(record: dict[str, Any], response: str, grammar: Grammar, noise: float, sample: int) -> int:
    """One simulated LLM judgement over the same rubric: each of the five criteria is read right with probability
    1 - `noise` and flipped otherwise, independently, seeded by the item, the response and the sample index (so a
    judgement is reproducible and batching never changes it); the rubric's gating then applies to what was read.
    `noise` 0 is the exact rubric. An empty response scores 0 whatever the noise."""
    return sampled_rubric_scores(record, response, grammar, noise, (sample,))[0]


def sampled_rubric_scores(record: dict[str, Any], response: str, grammar: Grammar, noise: float,
                          samples: Sequence[int]) -> list[int]:
    """`sampled_rubric_score` for each of `samples`, the response read once."""
    read = rubric_checks(record, response, grammar)
    if read is None:
        return [0] * len(samples)
    checks, detail = read
    if noise <= 0:
        return [_total(checks, detail).score] * len(samples)
    out = []
    for sample in samples:
        digest = hashlib.sha256(f"{record.get('id')}\x00{response}\x00{sample}".encode()).digest()
        rng = random.Random(int.from_bytes(digest[:8], "big"))
        out.append(_total([(ok != (rng.random() < noise), why) for ok, why in checks], detail).score)
    return out


# A check is (passed, reason); the reason is only reported for points given.
_Check = tuple[bool, str]


def _total(checks: Sequence[_Check], detail: int) -> RubricScore:
    relevant, substantial, answers, clear, expert = (c[0] for c in checks)
    if not relevant:
        return RubricScore(0, (), detail)
    given = [True, substantial, answers, clear and substantial, expert and answers and clear and substantial]
    points = tuple(reason for ok, (_, reason) in zip(given, checks, strict=True) if ok)
    return RubricScore(len(points), points, detail)


def _mentions(text: str, word: str) -> bool:
    return re.search(r"(?<![\w])" + re.escape(word) + r"(?![\w])", text, flags=re.IGNORECASE) is not None


def _no_repeated_sentence(sentences: list[str]) -> bool:
    lowered = [s.lower() for s in sentences]
    return len(set(lowered)) == len(lowered)


# -- fact-based instructions -----------------------------------------------------------------------------------
def _resolved_facts(sentences: list[str], grammar: Grammar, topic: str) -> tuple[list[Fact], bool]:
    """Facts with pronouns resolved to the last named subject; also whether every sentence parses."""
    facts: list[Fact] = []
    all_parse = True
    last = topic
    for s in sentences:
        parsed = grammar.parse_sentence(s)
        all_parse &= parsed.parsed
        for f in parsed.facts:
            if f.subject in PRONOUNS.values():
                f = Fact(last, f.attribute, f.value)
            else:
                last = f.subject
            facts.append(f)
    return facts, all_parse


def _fact_checks(record: dict[str, Any], text: str, grammar: Grammar) -> tuple[list[_Check], int]:
    asked = list(record.get("people") or [])
    if not asked:
        raise ValueError(f"if_rubric: fact-based record {record.get('id')!r} names no people")
    kind = record["kind"]
    sentences = split_sentences(text)
    facts, all_parse = _resolved_facts(sentences, grammar, asked[0])
    about = [f for f in facts if f.subject in asked]
    distinct = set(about)
    attrs = {f.attribute for f in distinct if f.attribute != "born_before"}
    named = [n for n in asked if _mentions(text, n)]

    relevant = (bool(named) or bool(about),
                f"relevant: names {', '.join(named)}" if named else "relevant: states facts about the asked person")
    substantial = (bool(about), f"substantial: {len(distinct)} fact(s) about the asked person(s)")

    values: dict[tuple[str, str], set[str]] = {}
    for f in facts:
        values.setdefault((f.subject, f.attribute), set()).add(f.value)
    before = {(f.subject, f.value) for f in facts if f.attribute == "born_before"}
    contradiction = any(len(v) > 1 for (_, a), v in values.items() if a != "born_before") or any(
        (o, s) in before for s, o in before)
    repeated_fact = len(set(facts)) != len(facts)
    clear = (all_parse and _no_repeated_sentence(sentences) and not repeated_fact and not contradiction,
             "clear: every sentence parses, no repetition or self-contradiction")
    on_topic = len(about) == len(facts)

    if kind == "bio":
        answers = (len(attrs) >= 3, f"answers: {len(attrs)} distinct attributes of {asked[0]}")
        expert = (len(attrs) >= 5 and on_topic, f"expert: detailed bio ({len(attrs)} attributes), all on topic")
    elif kind == "attribute":
        asked_attr = record["spec"]["attribute"]
        stated = any(f.attribute == asked_attr and f.subject == asked[0] for f in about)
        answers = (stated, f"answers: states the {asked_attr} of {asked[0]}")
        expert = (stated and len(attrs - {asked_attr}) >= 1 and on_topic,
                  f"expert: adds {len(attrs - {asked_attr})} further attribute(s), all on topic")
    elif kind == "comparison":
        answers = (_comparison_answers(asked, facts), "answers: both birth years and a consistent conclusion")
        extra = attrs - {"birth_year"}
        expert = (bool(extra) and on_topic, f"expert: adds further facts ({', '.join(sorted(extra))}), all on topic")
    else:  # pragma: no cover - guarded by the caller
        raise ValueError(kind)
    return [relevant, substantial, answers, clear, expert], len(distinct)


def _comparison_answers(asked: list[str], facts: list[Fact]) -> bool:
    """Both birth years stated and a born-earlier conclusion between the two that agrees with them."""
    if len(asked) < 2:
        return False
    years = {n: {int(f.value) for f in facts if f.subject == n and f.attribute == "birth_year"} for n in asked[:2]}
    if not all(years.values()):
        return False
    conclusions = [(f.subject, f.value) for f in facts if f.attribute == "born_before"
                   and {f.subject, f.value} == set(asked[:2])]
    return bool(conclusions) and all(max(years[s]) < min(years[o]) for s, o in conclusions)


# -- skill instructions --------------------------------------------------------------------------------------------
def _tokens(s: str) -> list[str]:
    return re.findall(r"[a-z]+|\d+", s.lower())


def _answer_sentence(sentences: list[str], is_item: Callable[[str], bool]) -> str | None:
    """The sentence with most candidate items (the last one on ties), None when no sentence has any."""
    best, best_hits = None, 0
    for s in sentences:
        hits = sum(1 for t in _tokens(s) if is_item(t))
        if hits and hits >= best_hits:
            best, best_hits = s, hits
    return best


def _payload(sentence: str) -> str:
    """The answer part of an answer sentence: after its last ':' or else after its first 'is'/'are'."""
    s = sentence.strip().rstrip(".!?").strip()
    if ":" in s:
        return s.rsplit(":", 1)[1].strip()
    m = re.match(r"^.*?\b(?:is|are)\b\s+(.*)$", s, flags=re.IGNORECASE)
    return m.group(1).strip() if m else s


def _list_tokens(payload: str) -> list[str]:
    return [t for t in re.split(r"[,\s]+", payload.lower()) if t and t != "and"]


def _skill_checks(record: dict[str, Any], text: str, grammar: Grammar) -> tuple[list[_Check], int]:
    kind, spec = record["kind"], record.get("spec") or {}
    sentences = split_sentences(text)
    tokens = _tokens(text)
    single = len(sentences) == 1
    has_facts = any(grammar.parse_sentence(s).facts for s in sentences)
    clean = (_no_repeated_sentence(sentences) and all(s.endswith((".", "?", "!")) for s in sentences)
             and all(a != b for a, b in pairwise(tokens)),
             "clear: complete sentences, no repetition")

    if kind in ("list", "sort", "reverse", "join"):
        is_item = str.isdigit if kind == "sort" else _ALL_WORDS.__contains__
        sentence = _answer_sentence(sentences, is_item)
        payload = _payload(sentence) if sentence else ""
        if kind == "list":
            cat, n = spec["category"], int(spec["n"])
            payload = re.sub(rf"^(?:\d+|[a-z]+)\s+{re.escape(cat)}\b\s*", "", payload, flags=re.IGNORECASE)
            items = _list_tokens(payload)
            rel = any(_mentions(text, w) for w in (cat, cat.rstrip("s"), *CATEGORIES[cat]))
            relevant = (rel, f"relevant: about {cat}")
            fmt = len(items) >= 2 and all(t.isalpha() for t in items)
            substantial = (fmt, "substantial: answers with a list of words")
            ok = len(items) == n and len(set(items)) == n and all(t in CATEGORIES[cat] for t in items)
            answers = (ok, f"answers: {n} distinct {cat}")
        elif kind == "sort":
            given = [str(x) for x in spec["items"]]
            items = _list_tokens(payload)
            relevant = (any(_mentions(text, x) for x in given), "relevant: uses the given numbers")
            substantial = (len(items) >= 2 and all(t.isdigit() for t in items),
                           "substantial: answers with a list of numbers")
            answers = (items == sorted(given, key=int), "answers: exactly the given numbers in ascending order")
        elif kind == "reverse":
            given = [str(x).lower() for x in spec["items"]]
            items = _list_tokens(payload)
            relevant = (any(_mentions(text, x) for x in given), "relevant: uses the given words")
            substantial = (len(items) >= 2 and all(t.isalpha() for t in items),
                           "substantial: answers with a list of words")
            answers = (items == given[::-1], "answers: exactly the given words in reverse order")
        else:  # join
            given = [str(x) for x in spec["items"]]
            parts = [p.strip() for p in payload.split(",")]
            relevant = (any(_mentions(text, x) for x in given), "relevant: uses the given words")
            substantial = (len(parts) >= 2 and all(parts), "substantial: answers with a comma-separated list")
            answers = (payload.lower() == ", ".join(given).lower(), "answers: exactly the given words joined by commas")
        expert = (single, "expert: the answer alone, nothing extra")
    elif kind == "count":
        given = [str(x) for x in spec["items"]]
        numbers = {int(t) if t.isdigit() else _NUMBER_WORDS[t] for t in tokens if t.isdigit() or t in _NUMBER_WORDS}
        relevant = (bool(numbers) or any(_mentions(text, x) for x in given), "relevant: about the given words")
        substantial = (bool(numbers), "substantial: states a number")
        answers = (numbers == {len(given)}, f"answers: the right count ({len(given)})")
        expert = (single, "expert: the answer alone, nothing extra")
    elif kind == "poem":
        topic = spec["topic"]
        with_topic = sum(_mentions(s, topic) for s in sentences)
        relevant = (with_topic > 0, f"relevant: about the {topic}")
        substantial = (len(sentences) >= 2, "substantial: several lines")
        answers = (with_topic >= 2, f"answers: the {topic} in {with_topic} sentences")
        expert = (len(sentences) >= 3 and not has_facts, f"expert: a complete poem ({len(sentences)} sentences)")
    else:  # story
        animal, place = spec["animal"], spec["place"]
        has_animal, has_place = _mentions(text, animal), _mentions(text, place)
        relevant = (has_animal or has_place, f"relevant: about the {animal} or the {place}")
        substantial = (len(sentences) >= 2, "substantial: a narrative of several sentences")
        answers = (has_animal and has_place, f"answers: the {animal} and the {place}")
        goes = any(_mentions(s, animal) and _mentions(s, place) for s in sentences)
        expert = (len(sentences) >= 4 and goes and not has_facts,
                  f"expert: a complete story ({len(sentences)} sentences)")
    return [relevant, substantial, answers, clean, expert], len(sentences)


# -- partial credit: the finer scale of the graded pairwise judge -----------------------------------------------
def partial_credit(record: dict[str, Any], response: str) -> float:
    """How well a response covers the task, in [0, 1], blind to truth like the rubric: the mean of (a) the share of
    what the instruction gives that the response uses (skills: the given numbers or words, the category's words, the
    topic, the animal and the place; fact-based: the asked people) and (b) the share of its words that are not
    repeats (fluency: "67, 67, 67" reads worse than "12, 67"). It separates responses the 0..5 rubric scores
    alike."""
    text = normalize(response or "")
    tokens = _tokens(text)
    if not tokens:
        return 0.0
    fluency = len(set(tokens)) / len(tokens)
    kind, spec = record.get("kind"), record.get("spec") or {}
    if kind in FACT_KINDS:
        wanted = [str(p) for p in record.get("people") or []]
    elif kind in ("sort", "reverse", "join", "count"):
        wanted = [str(x) for x in spec.get("items", [])]
    elif kind == "list":
        words = set(tokens) & set(CATEGORIES[spec["category"]])
        return (min(1.0, len(words) / max(1, int(spec["n"]))) + fluency) / 2
    elif kind == "poem":
        wanted = [spec["topic"]]
    elif kind == "story":
        wanted = [spec["animal"], spec["place"]]
    else:
        raise ValueError(f"partial_credit: unknown instruction kind {kind!r}")
    wanted = list(dict.fromkeys(wanted))
    covered = sum(_mentions(text, w) for w in wanted) / max(1, len(wanted))
    return (covered + fluency) / 2
