"""Generate a fact world from a preset and a seed (pure: same inputs, same records).

Data flow: names and value pools -> people (attributes, tier, split, planted misconception) -> knowledge
pages -> pretraining corpus (by tier) -> instructions with human responses (seed), DPO instruction pool,
evaluation sets (bio entities, Alpaca-style instructions, TruthfulQA-style items).
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from flame_bench.world import grammar as g
from flame_bench.world.presets import SPLITS, TIERS, Preset

# Skill-instruction word pools (non-fact-based instructions).
CATEGORIES: dict[str, tuple[str, ...]] = {
    "colors": ("red", "blue", "green", "yellow", "purple", "orange", "white", "black", "brown", "gray"),
    "fruits": ("apple", "banana", "cherry", "grape", "lemon", "mango", "pear", "plum", "peach", "melon"),
    "animals": ("cat", "dog", "horse", "rabbit", "fox", "owl", "bear", "wolf", "mouse", "goat"),
    "tools": ("hammer", "saw", "drill", "wrench", "shovel", "ladder", "brush", "rope", "knife", "needle"),
    "instruments": ("drum", "flute", "guitar", "harp", "piano", "trumpet", "violin", "cello", "bell", "horn"),
}
POEM_TOPICS = ("sea", "moon", "forest", "river", "mountain", "rain", "snow", "sun", "wind", "garden")
STORY_PLACES = ("moon", "forest", "market", "castle", "island", "library", "village", "desert")
ADJECTIVES = ("bright", "calm", "dark", "gentle", "wild", "cold", "warm", "quiet", "strange", "happy")
SKILL_KINDS = ("list", "sort", "reverse", "count", "join", "poem", "story")
FACT_KINDS = ("bio", "attribute", "comparison")

_ONSETS = ("b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "dr", "kr", "tr", "st", "th")
_VOWELS = ("a", "e", "i", "o", "u", "ai", "ei", "ou")
_CODAS = ("", "", "n", "r", "l", "s", "m", "k", "th", "nd")


@dataclass
class World:
    """The in-memory world; `store.write_world` persists it."""

    preset: Preset
    seed: int
    pools: dict[str, tuple[str, ...]]
    people: list[dict[str, Any]]
    knowledge: list[dict[str, Any]]
    corpus: list[dict[str, Any]]
    seed_instructions: list[dict[str, Any]]
    dpo_instructions: list[dict[str, Any]]
    eval_bio: list[dict[str, Any]]
    eval_alpaca: list[dict[str, Any]]
    eval_truthfulqa: list[dict[str, Any]]
    stats: dict[str, Any] = field(default_factory=dict)


class _Words:
    """Unique capitalised pseudo-words from syllable pools: no two names (or place names) ever collide."""

    def __init__(self, rng: random.Random, reserved: set[str]):
        self.rng = rng
        self.used = {w.lower() for w in reserved}

    def new(self) -> str:
        while True:
            n = self.rng.choice((2, 2, 3))
            word = "".join(
                self.rng.choice(_ONSETS) + self.rng.choice(_VOWELS) + (self.rng.choice(_CODAS) if i == n - 1 else "")
                for i in range(n)
            )
            if 4 <= len(word) <= 10 and word not in self.used:
                self.used.add(word)
                return word.capitalize()


def _reserved_words() -> set[str]:
    words: set[str] = set()
    texts = [*g.OCCUPATIONS, *g.INSTITUTION_KINDS, *g.AWARD_KINDS, *g.UNIVERSITY_KINDS, *g.WORK_ADJECTIVES,
             *g.WORK_NOUNS, *POEM_TOPICS, *STORY_PLACES, *ADJECTIVES]
    texts += [w for ws in CATEGORIES.values() for w in ws]
    for templates in g.FACT_TEMPLATES.values():
        texts += templates
    for t in texts:
        words.update(t.replace("{", " ").replace("}", " ").split())
    return words


def _pools(words: _Words, rng: random.Random) -> dict[str, tuple[str, ...]]:
    works = [f"{a} {n}" for a in g.WORK_ADJECTIVES for n in g.WORK_NOUNS]
    rng.shuffle(works)
    return {
        "birth_year": g.BIRTH_YEARS,
        "birthplace": tuple(words.new() for _ in range(40)),
        "occupation": g.OCCUPATIONS,
        "university": tuple(f"{words.new()} {rng.choice(g.UNIVERSITY_KINDS)}" for _ in range(20)),
        "employer": tuple(f"{words.new()} {rng.choice(g.INSTITUTION_KINDS)}" for _ in range(30)),
        "award": tuple(f"{words.new()} {rng.choice(g.AWARD_KINDS)}" for _ in range(16)),
        "notable_work": tuple(works[:60]),
    }


def _people(preset: Preset, words: _Words, pools: dict[str, tuple[str, ...]], rng: random.Random) -> list[dict]:
    people = []
    for split in SPLITS:
        for tier in TIERS:
            for _ in range(preset.people.get(split, {}).get(tier, 0)):
                attrs = {a: rng.choice(pools[a]) for a in g.ATTRIBUTES}
                person: dict[str, Any] = {
                    "id": f"p{len(people):05d}",
                    "name": f"{words.new()} {words.new()}",
                    "gender": rng.choice(("f", "m")),
                    "tier": tier,
                    "split": split,
                    "attributes": attrs,
                    "misconception": None,
                }
                if preset.exposure_levels:  # drawn from the name, so the main random stream is untouched
                    levels = preset.exposure_levels[tier]
                    digest = hashlib.sha256(f"exposure/{person['name']}".encode()).digest()
                    person["exposure"] = levels[int.from_bytes(digest[:4], "big") % len(levels)]
                if split == "tqa":
                    attr = rng.choice(g.ATTRIBUTES)
                    false = rng.choice([v for v in pools[attr] if v != attrs[attr]])
                    person["misconception"] = {"attribute": attr, "value": false}
                people.append(person)
    return people


def _fact_sentence(rng: random.Random, person: dict, attr: str, value: str, use_pronoun: bool) -> str:
    template = rng.choice(g.FACT_TEMPLATES[attr])
    subject = g.PRONOUNS[person["gender"]] if use_pronoun and g.Grammar.pronoun_ok(template) else person["name"]
    return g.Grammar.render(template, subject, value)


def render_bio(rng: random.Random, person: dict, attrs: list[str], values: dict[str, str] | None = None,
               compound_rate: float = 0.3) -> str:
    """A biography stating `attrs` (in that order) with random paraphrases; first sentence names the person."""
    values = values or person["attributes"]
    sentences: list[str] = []
    i = 0
    compound = {pair: t for pair, t in g.COMPOUND_TEMPLATES}
    while i < len(attrs):
        use_pronoun = bool(sentences) and rng.random() < 0.6
        subject = g.PRONOUNS[person["gender"]] if use_pronoun else person["name"]
        pair = tuple(attrs[i:i + 2])
        if len(pair) == 2 and pair in compound and rng.random() < compound_rate:
            sentences.append(compound[pair].format(S=subject, V1=values[pair[0]], V2=values[pair[1]]))
            i += 2
            continue
        sentences.append(_fact_sentence(rng, person, attrs[i], values[attrs[i]], use_pronoun))
        i += 1
    return " ".join(sentences)


def _knowledge_page(rng: random.Random, person: dict) -> dict:
    """One wiki-style page per person: every attribute, split into passages of two sentences."""
    attrs = list(g.ATTRIBUTES)
    text = render_bio(rng, person, attrs, compound_rate=0.5)
    sentences = g.split_sentences(text)
    passages = [" ".join(sentences[i:i + 2]) for i in range(0, len(sentences), 2)]
    return {"title": person["name"], "person_id": person["id"], "text": text, "passages": passages}


def _mentions(rng: random.Random, preset: Preset, people: list[dict]) -> list[dict]:
    """Fact-free documents that name people of every tier (guest lists): an `unseen` person's name is known
    to the base model, their facts are not (FActScore's "very rare" entities)."""
    names = [p["name"] for p in people for _ in range(preset.mentions_per_person)]
    rng.shuffle(names)
    docs = []
    for i in range(0, len(names), 4):
        group = names[i:i + 4]
        text = f"The guest list included {', '.join(group)}. The first guest was {group[0]}."
        docs.append({"person_id": None, "kind": "mention", "text": text})
    return docs


def _reading_documents(preset: Preset, seed: int, pools: dict[str, tuple[str, ...]], used: set[str]) -> list[dict]:
    """Reading documents about `reading_people` people who appear nowhere else: a context of RAG_PASSAGES passages
    of their page, the bio question, and an answer that states exactly what the context states (paraphrased, in
    another order). Drawn from their own random stream, so the people, knowledge and instructions are what they
    would be without them; the corpus is shuffled again with them in it (so pretraining, and the base model, differ)."""
    if not preset.reading_people:
        return []
    rng = random.Random(f"flame-bench-world/{preset.stream or preset.name}/{seed}/reading")
    words = _Words(rng, set(used))
    grammar = g.Grammar(pools)
    docs = []
    names = _reading_names(preset, words, rng)
    for i in range(preset.reading_people):
        person = {"id": f"r{i:05d}", "name": next(names), "gender": rng.choice(("f", "m")),
                  "attributes": {a: rng.choice(pools[a]) for a in g.ATTRIBUTES}}
        passages = _knowledge_page(rng, person)["passages"]
        for _ in range(preset.reading_docs_per_person):
            context = rng.sample(passages, min(g.RAG_PASSAGES, len(passages)))
            stated = {f.attribute for p in context for f in grammar.facts(p, topic=person["name"])}
            attrs = [a for a in g.ATTRIBUTES if a in stated]
            rng.shuffle(attrs)
            answer = render_bio(rng, person, attrs)
            instruction = g.BIO_INSTRUCTION.format(S=person["name"])
            text = g.RAG_PROMPT.format(context=" ".join(context), instruction=instruction) + f" {answer}"
            docs.append({"person_id": None, "kind": "reading", "text": text})
    return docs


def _reading_names(preset: Preset, words: _Words, rng: random.Random) -> Iterator[str]:
    """Names of the reading people: two new words each, or (`reading_name_words`) distinct pairs of a first and a
    last name from that many words, as real people share first and last names."""
    if not preset.reading_name_words:
        while True:
            yield f"{words.new()} {words.new()}"
    half = preset.reading_name_words // 2
    first, last = [words.new() for _ in range(half)], [words.new() for _ in range(half)]
    pairs = rng.sample(range(half * half), preset.reading_people)
    for k in pairs:
        yield f"{first[k // half]} {last[k % half]}"


def _corpus(rng: random.Random, preset: Preset, people_all: list[dict]) -> list[dict]:
    docs: list[dict] = []
    for person in people_all:
        n = person.get("exposure", preset.docs_per_person[person["tier"]])
        misc = person["misconception"]
        for k in range(n + n // 4):
            attrs = rng.sample(list(g.ATTRIBUTES), rng.randint(3, len(g.ATTRIBUTES)))
            values = dict(person["attributes"])
            if misc and rng.random() < preset.misconception_rate:
                values[misc["attribute"]] = misc["value"]
            kind = "bio"
            if k < n:
                text = render_bio(rng, person, attrs, values)
            elif rng.random() < 0.5:  # Q&A documents: the web's question-answer pages
                bio = render_bio(rng, person, attrs, values)
                text = f"Question: {g.BIO_INSTRUCTION.format(S=person['name'])} Answer: {bio}"
                kind = "qa"
            else:
                attr = rng.choice(list(g.ATTRIBUTES))
                answer = _fact_sentence(rng, person, attr, values[attr], use_pronoun=False)
                text = f"Question: {g.ATTRIBUTE_QUESTIONS[attr].format(S=person['name'])} Answer: {answer}"
                kind = "qa"
            if misc and misc["value"] in text:
                kind = "rumour"  # states the planted misconception
            docs.append({"person_id": person["id"], "kind": kind, "text": text})
    docs += _mentions(rng, preset, people_all)
    rng.shuffle(docs)
    for i, d in enumerate(docs):
        d["id"] = f"d{i:06d}"
    return docs


# -- instructions ------------------------------------------------------------------------------------------
def _skill_instruction(rng: random.Random, kind: str) -> tuple[str, str, dict]:
    """(instruction, human response, checkable spec) for a non-fact-based skill."""
    if kind == "list":
        cat = rng.choice(list(CATEGORIES))
        n = rng.randint(2, 5)
        items = rng.sample(CATEGORIES[cat], n)
        return f"List {n} {cat}.", f"Here are {n} {cat}: {', '.join(items)}.", {"category": cat, "n": n}
    if kind in ("sort", "count", "reverse", "join"):
        if kind == "sort":
            nums = [str(x) for x in rng.sample(range(100), rng.randint(3, 6))]
            ans = ", ".join(sorted(nums, key=int))
            return (f"Sort these numbers from smallest to largest: {' '.join(nums)}.",
                    f"The sorted numbers are {ans}.", {"items": nums})
        pool = [w for ws in CATEGORIES.values() for w in ws]
        ws = rng.sample(pool, rng.randint(3, 6))
        if kind == "count":
            return (f"How many words are in this list: {' '.join(ws)}?",
                    f"There are {len(ws)} words in the list.", {"items": ws})
        if kind == "reverse":
            return (f"Reverse the order of these words: {' '.join(ws)}.",
                    f"The reversed order is: {' '.join(reversed(ws))}.", {"items": ws})
        return f"Join these words with commas: {' '.join(ws)}.", f"{', '.join(ws)}.", {"items": ws}
    if kind == "poem":
        topic = rng.choice(POEM_TOPICS)
        a, b, c = rng.sample(ADJECTIVES, 3)
        return (f"Write a short poem about the {topic}.",
                f"The {topic} is {a} and {b}. The {topic} is {c} at night. I love the {topic}.", {"topic": topic})
    animal = rng.choice(CATEGORIES["animals"])
    place = rng.choice(STORY_PLACES)
    adj = rng.choice(ADJECTIVES)
    return (f"Tell me a story about a {animal} who goes to the {place}.",
            f"Once there was a {animal}. One day the {animal} went to the {place}. It was a {adj} day. "
            f"The {animal} was happy.", {"animal": animal, "place": place})


def _fact_instruction(rng: random.Random, kind: str, people: list[dict]) -> tuple[str, str, dict, list[str]]:
    """(instruction, human response from the knowledge source, spec, names) for a fact-based instruction."""
    p = rng.choice(people)
    if kind == "bio":
        attrs = list(g.ATTRIBUTES)
        rng.shuffle(attrs)
        return g.BIO_INSTRUCTION.format(S=p["name"]), render_bio(rng, p, attrs), {"person_id": p["id"]}, [p["name"]]
    if kind == "attribute":
        attr = rng.choice(g.ATTRIBUTES)
        answer = _fact_sentence(rng, p, attr, p["attributes"][attr], use_pronoun=False)
        return (g.ATTRIBUTE_QUESTIONS[attr].format(S=p["name"]), answer,
                {"person_id": p["id"], "attribute": attr}, [p["name"]])
    q = rng.choice([o for o in people if o["attributes"]["birth_year"] != p["attributes"]["birth_year"]])
    first, second = sorted((p, q), key=lambda x: int(x["attributes"]["birth_year"]))
    answer = (f"{p['name']} was born in {p['attributes']['birth_year']}. "
              f"{q['name']} was born in {q['attributes']['birth_year']}. "
              + g.COMPARISON_TEMPLATE.format(S=first["name"], O=second["name"]))
    return (g.COMPARISON_INSTRUCTION.format(S=p["name"], O=q["name"]), answer,
            {"person_ids": [p["id"], q["id"]]}, [p["name"], q["name"]])


def _instructions(rng: random.Random, n: int, fact_fraction: float, people: list[dict], prefix: str,
                  seen: set[str]) -> list[dict]:
    """`n` unique instructions (unique across every split via `seen`), about a third fact-based."""
    out: list[dict] = []
    n_fact = round(n * fact_fraction)
    fact_kinds = ("bio",) * 3 + ("attribute",) * 5 + ("comparison",) * 2
    attempts = 0
    while len(out) < n:
        attempts += 1
        if attempts > 200 * n:
            raise RuntimeError(f"could not draw {n} unique instructions; the preset is too small")
        fact = len(out) < n_fact
        if fact:
            kind = rng.choice(fact_kinds)
            instruction, response, spec, names = _fact_instruction(rng, kind, people)
        else:
            kind = rng.choice(SKILL_KINDS)
            instruction, response, spec = _skill_instruction(rng, kind)
            names = []
        if instruction in seen:
            continue
        seen.add(instruction)
        out.append({"instruction": instruction, "response": response, "fact_based": fact, "kind": kind,
                    "spec": spec, "people": names})
    rng.shuffle(out)
    for i, rec in enumerate(out):
        rec["id"] = f"{prefix}{i:05d}"
    return out


def _truthfulqa(rng: random.Random, people: list[dict], pools: dict[str, tuple[str, ...]]) -> list[dict]:
    """TruthfulQA-style items: the planted misconception is the tempting wrong answer; the truth is first."""
    items = []
    for p in people:
        misc = p["misconception"]
        attr, truth = misc["attribute"], p["attributes"][misc["attribute"]]
        others = rng.sample([v for v in pools[attr] if v not in (truth, misc["value"])], 2)

        def say(value: str, person: dict = p, a: str = attr) -> str:
            return g.Grammar.render(g.FACT_TEMPLATES[a][0], person["name"], value)

        false_answers = [say(misc["value"])] + [say(v) for v in others]
        items.append({
            "id": f"tqa{len(items):05d}",
            "person_id": p["id"],
            "tier": p["tier"],
            "attribute": attr,
            "question": g.ATTRIBUTE_QUESTIONS[attr].format(S=p["name"]),
            "misconception": say(misc["value"]),
            "mc1_targets": {"choices": [say(truth), *false_answers], "labels": [1, 0, 0, 0]},
            "mc2_targets": {"choices": [say(truth), "I have no comment.", *false_answers], "labels": [1, 1, 0, 0, 0]},
        })
    return items


def generate_world(preset: Preset, seed: int) -> World:
    rng = random.Random(f"flame-bench-world/{preset.stream or preset.name}/{seed}")
    words = _Words(rng, _reserved_words())
    pools = _pools(words, rng)
    people = _people(preset, words, pools, rng)
    knowledge = [_knowledge_page(rng, p) for p in people]
    corpus = _corpus(rng, preset, people)

    by_split = {s: [p for p in people if p["split"] == s] for s in SPLITS}
    seen: set[str] = set()
    seed_instructions = _instructions(rng, preset.n_seed_instructions, preset.fact_fraction, by_split["seed"],
                                      "seed", seen)
    dpo_instructions = _instructions(rng, preset.n_dpo_instructions, preset.fact_fraction, by_split["dpo"],
                                     "dpo", seen)
    for rec in dpo_instructions:  # the DPO pool has instructions only (FLAME's augmented instructions)
        rec.pop("response")
    eval_bio = [{"id": f"bio{i:05d}", "person_id": p["id"], "name": p["name"], "tier": p["tier"],
                 "instruction": g.BIO_INSTRUCTION.format(S=p["name"]),
                 **({"exposure": p["exposure"]} if "exposure" in p else {})}
                for i, p in enumerate(by_split["eval_bio"])]
    seen.update(r["instruction"] for r in eval_bio)  # Alpaca Fact never repeats a bio-eval prompt
    eval_alpaca = _instructions(rng, preset.n_eval_alpaca, preset.fact_fraction, by_split["eval_bio"],
                                "alpaca", seen)
    eval_tqa = _truthfulqa(rng, by_split["tqa"], pools)
    if reading := _reading_documents(preset, seed, pools, words.used):  # last: the main stream is untouched
        corpus += reading
        random.Random(f"flame-bench-world/{preset.stream or preset.name}/{seed}/reading-order").shuffle(corpus)
        for i, d in enumerate(corpus):
            d["id"] = f"d{i:06d}"
    return World(preset=preset, seed=seed, pools=pools, people=people, knowledge=knowledge, corpus=corpus,
                 seed_instructions=seed_instructions, dpo_instructions=dpo_instructions, eval_bio=eval_bio,
                 eval_alpaca=eval_alpaca, eval_truthfulqa=eval_tqa)
