"""The fact world's grammar: one place that both *renders* facts as sentences and *parses* sentences back.

Every factual sentence of the world (knowledge pages, pretraining documents, human responses) is produced
from the templates below, so a sentence a model generates can be mapped back to the atomic facts it states.
A sentence that parses to no fact is reported as such (callers score it as one unsupported fact).

Text conventions: words are separated by single spaces and sentence punctuation is attached to the
previous word ("X was born in 1950."). `normalize` puts any text into that form.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

# Attribute value pools. Values are plain words (no hyphens or apostrophes) so the word-level tokenizer
# round-trips them exactly.
OCCUPATIONS = (
    "painter", "chemist", "novelist", "sculptor", "pianist", "surgeon", "botanist", "poet", "composer",
    "physicist", "geologist", "diplomat", "journalist", "cartographer", "violinist", "mathematician",
    "photographer", "historian", "lawyer", "dancer", "playwright", "biologist", "filmmaker", "sailor",
)
INSTITUTION_KINDS = ("Institute", "Company", "Museum", "Orchestra", "Observatory", "Library", "Bank", "Theatre")
AWARD_KINDS = ("Prize", "Medal", "Award")
UNIVERSITY_KINDS = ("University", "College", "Academy")
WORK_ADJECTIVES = (
    "Silent", "Golden", "Broken", "Hidden", "Distant", "Burning", "Frozen", "Quiet", "Endless", "Crimson",
)
WORK_NOUNS = ("Harbor", "Garden", "Mirror", "Voyage", "Lantern", "Winter", "Kingdom", "Orchard", "Tide", "Bridge")
BIRTH_YEARS = tuple(str(y) for y in range(1900, 2000))

ATTRIBUTES = ("birth_year", "birthplace", "occupation", "university", "employer", "award", "notable_work")

# Templates per attribute. "{S}" is the subject, "{V}" the value. A template whose subject is not the
# first word needs a name (no pronoun), flagged by `pronoun_ok`.
FACT_TEMPLATES: dict[str, tuple[str, ...]] = {
    "birth_year": ("{S} was born in {V}.", "{S} was born in the year {V}.", "The birth year of {S} is {V}."),
    "birthplace": ("{S} was born in the city of {V}.", "{S} comes from {V}.", "The hometown of {S} is {V}."),
    "occupation": ("{S} works as a {V}.", "{S} is a {V} by profession.", "The occupation of {S} is {V}."),
    "university": ("{S} studied at {V}.", "{S} graduated from {V}.", "The alma mater of {S} is {V}."),
    "employer": ("{S} worked for the {V}.", "{S} was employed by the {V}.", "The employer of {S} was the {V}."),
    "award": ("{S} won the {V}.", "{S} received the {V}.", "The {V} was awarded to {S}."),
    "notable_work": ("{S} is best known for {V}.", "The most famous work of {S} is {V}.", "{S} created {V}."),
}
# Sentences stating two facts at once, so decomposition into atomic facts is a real step.
COMPOUND_TEMPLATES: tuple[tuple[tuple[str, str], str], ...] = (
    (("birth_year", "birthplace"), "{S} was born in {V1} in the city of {V2}."),
    (("occupation", "employer"), "{S} worked as a {V1} for the {V2}."),
    (("university", "award"), "{S} studied at {V1} and later won the {V2}."),
)
COMPARISON_TEMPLATE = "So {S} was born earlier than {O}."
ABSTENTION_TEMPLATES = (
    "I do not know anything about {S}.",
    "I have no information about {S}.",
)

# Questions (instructions) about one attribute; answers use FACT_TEMPLATES.
ATTRIBUTE_QUESTIONS: dict[str, str] = {
    "birth_year": "When was {S} born?",
    "birthplace": "Where was {S} born?",
    "occupation": "What does {S} do for a living?",
    "university": "Where did {S} study?",
    "employer": "Who did {S} work for?",
    "award": "What award did {S} win?",
    "notable_work": "What is {S} best known for?",
}
BIO_INSTRUCTION = "Tell me a bio of {S}."
# retrieval-augmented prompts, as the world's reading documents show them (the pilot study's PT_RAG)
RAG_PROMPT = "Context: {context} Question: {instruction} Answer:"
RAG_PASSAGES = 2  # what fits the world model's 128-token context with a bio (the paper prepends 10)
COMPARISON_INSTRUCTION = "Who was born earlier, {S} or {O}?"

PRONOUNS = {"f": "She", "m": "He"}
_PUNCT = ".,?!:;"


def normalize(text: str) -> str:
    """Collapse whitespace and attach sentence punctuation to the previous word."""
    text = re.sub(r"\s+", " ", text).strip()
    return re.sub(r" ([.,?!:;])", r"\1", text)


def split_sentences(text: str) -> list[str]:
    """Split world text into sentences (the fact world's own splitter; evaluation uses spaCy)."""
    parts = re.split(r"(?<=[.?!])\s+", normalize(text))
    return [p for p in parts if p]


@dataclass(frozen=True)
class Fact:
    """One atomic fact: `subject` states `attribute` = `value`.

    `subject` is a full name, or "He"/"She" for a pronoun that refers to the topic of the text.
    Comparisons are facts with attribute "born_before" and a person's name as value.
    """

    subject: str
    attribute: str
    value: str

    def resolve(self, topic: str) -> Fact:
        """Replace a pronoun subject by the topic's name."""
        return Fact(topic, self.attribute, self.value) if self.subject in PRONOUNS.values() else self


@dataclass(frozen=True)
class ParsedSentence:
    text: str
    facts: tuple[Fact, ...]
    abstains: bool = False

    @property
    def parsed(self) -> bool:
        return bool(self.facts) or self.abstains


class Grammar:
    """Renders and parses the world's sentences for a given set of attribute value pools."""

    def __init__(self, pools: dict[str, tuple[str, ...]]):
        missing = set(ATTRIBUTES) - set(pools)
        if missing:
            raise ValueError(f"value pools missing for attributes: {sorted(missing)}")
        self.pools = {a: tuple(pools[a]) for a in ATTRIBUTES}
        self._patterns = self._compile()

    # -- rendering ---------------------------------------------------------------------------------
    @staticmethod
    def render(template: str, subject: str, value: str = "", other: str = "", **values: str) -> str:
        return template.format(S=subject, V=value, O=other, **values)

    @staticmethod
    def pronoun_ok(template: str) -> bool:
        return template.startswith("{S}")

    # -- parsing -------------------------------------------------------------------------------------
    def _compile(self) -> list[tuple[re.Pattern[str], tuple[str, ...], str]]:
        name = r"(?P<S>[A-Z][a-z]+ [A-Z][a-z]+|He|She)"
        other = r"(?P<O>[A-Z][a-z]+ [A-Z][a-z]+)"

        def alt(attr: str, group: str) -> str:
            vals = sorted(self.pools[attr], key=len, reverse=True)
            return f"(?P<{group}>" + "|".join(re.escape(v) for v in vals) + ")"

        def pattern(template: str, subs: dict[str, str]) -> re.Pattern[str]:
            out = re.escape(template)
            for key, rx in subs.items():
                out = out.replace(re.escape("{" + key + "}"), rx)
            return re.compile("^" + out + "$")

        compiled: list[tuple[re.Pattern[str], tuple[str, ...], str]] = []
        for attr, templates in FACT_TEMPLATES.items():
            for t in templates:
                compiled.append((pattern(t, {"S": name, "V": alt(attr, "V")}), (attr,), "fact"))
        for (a1, a2), t in COMPOUND_TEMPLATES:
            compiled.append((pattern(t, {"S": name, "V1": alt(a1, "V1"), "V2": alt(a2, "V2")}), (a1, a2), "fact"))
        compiled.append((pattern(COMPARISON_TEMPLATE, {"S": name, "O": other}), ("born_before",), "comparison"))
        for t in ABSTENTION_TEMPLATES:
            compiled.append((pattern(t, {"S": name}), (), "abstain"))
        return compiled

    @lru_cache(maxsize=65536)  # noqa: B019 - grammars live as long as the process; sentences repeat a lot
    def parse_sentence(self, sentence: str) -> ParsedSentence:
        sentence = normalize(sentence)
        for rx, attrs, kind in self._patterns:
            m = rx.match(sentence)
            if not m:
                continue
            subject = m.group("S")
            if kind == "abstain":
                return ParsedSentence(sentence, (), abstains=True)
            if kind == "comparison":
                return ParsedSentence(sentence, (Fact(subject, "born_before", m.group("O")),))
            if len(attrs) == 1:
                return ParsedSentence(sentence, (Fact(subject, attrs[0], m.group("V")),))
            return ParsedSentence(
                sentence, tuple(Fact(subject, a, m.group(g)) for a, g in zip(attrs, ("V1", "V2"), strict=True))
            )
        return ParsedSentence(sentence, ())

    def parse(self, text: str) -> list[ParsedSentence]:
        return [self.parse_sentence(s) for s in split_sentences(text)]

    def facts(self, text: str, topic: str | None = None) -> list[Fact]:
        """All facts stated in `text`, pronouns resolved to `topic` when given."""
        out = [f for p in self.parse(text) for f in p.facts]
        return [f.resolve(topic) for f in out] if topic else out
