"""Evaluator quality: every number an evaluator produces carries how well that evaluator did on a labelled check.

Each evaluator role a task's metrics rest on (`Task.evaluators`) has a check built from the source it evaluates on,
so it runs the same on the fact world and on real data:

- `verifier` (`entity-swap`): true sentences of the knowledge source (of the pages no evaluator was trained on,
  `Source.verifier_check_topics`) and their twins with one named entity swapped
  in from another article (`scoring.verifier_check.build_claims`), each scored by the source's whole FActScore
  pipeline (decomposer, retrieval, verifier) as a one-sentence response: "supported" iff it states at least one
  fact and every fact is supported;
- `pairwise_judge` (`off-topic-pairs`): each evaluation instruction with its reference response against another
  item's reference response, in both orders; a judge that reads prefers the answer to the question asked;
- `classifier` (`fact-based-prompts`): prompts about the knowledge source's entities (fact-based) and skill
  prompts that need no world knowledge (not fact-based);
- `rm_if` (`off-topic-responses`): RM_IF must score each instruction's reference response above another item's
  (a tie counts wrong). The decomposer is checked inside the verifier's check (the whole pipeline scores each
  sentence); RM_fact is that pipeline too.

Verdicts, fixed before any evaluator was measured: chance is 1/2 on every check (balanced labels, both orders); a
role is `ok` when its accuracy is at least chance + max(0.10, 2 standard errors of a coin at that n) and, for a
judge, it picks neither position in more than 90% of its decided judgements; else `weak`. A role with no check on
this source is `unmeasured`. Results are cached per (role, check version, evaluator identity: its components,
prompts and LLM, and the data the check is built from), so a check runs once per evaluator.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from flame_bench.core.errors import FlameError
from flame_bench.core.io import read_json, sha256_json, write_json

QUALITY_VERSION = "quality-v1"
# Each check's own version (part of its cache key): the verifier's v2 draws from `Source.verifier_check_topics`.
CHECK_VERSIONS = {"verifier": 2, "pairwise_judge": 1, "classifier": 1, "rm_if": 1}
CHANCE = 0.5
MIN_MARGIN = 0.10  # accuracy must beat chance by at least this much
POSITION_LIMIT = 0.90  # a judge choosing one position more often than this is reading the order, not the answers
ROLES = ("verifier", "pairwise_judge", "classifier", "rm_if")
N_CLAIM_PAIRS, N_JUDGE_PAIRS, N_PROMPTS = 40, 40, 40
SKILL_PROMPTS = (  # need no world knowledge: writing, text manipulation, arithmetic
    "Write a short poem about the sea.", "Sort these numbers from smallest to largest: 9 2 7 4.",
    "Reverse the order of these words: red green blue.", "Count the words in this sentence: the cat sat down.",
    "Write a four-line story about a dog who finds a ball.", "Join these words with commas: apple pear plum.",
    "Add 17 and 25.", "Rewrite this sentence in the past tense: I walk to the park.",
    "Write a haiku about rain.", "List three colours.", "Make this sentence shorter: the big old house was very old.",
    "Write a thank-you note to a friend.", "Multiply 6 by 7.", "Put these letters in alphabetical order: d b a c.",
    "Write a riddle about a cloud.", "Turn this list into a sentence: bread, milk, eggs.",
    "Write two rhyming lines about the moon.", "Spell the word 'garden' backwards.",
    "Give a title to a story about a lost kite.", "Repeat the word 'hello' three times.",
)
ENTITY_TEMPLATES = ("Tell me a bio of {}.", "Who is {}?", "What is {} known for?", "Where was {} born?")


@dataclass
class Quality:
    """One role's measured quality, as records, comparisons and views carry it."""

    role: str
    check: str
    verdict: str  # ok | weak | unmeasured
    accuracy: float | None = None
    n: int = 0
    floor: float | None = None
    details: dict[str, Any] = field(default_factory=dict)  # tpr/tnr, first-position share, why unmeasured
    version: str = QUALITY_VERSION

    def note(self) -> str:
        """One line: "verifier at 50.0% on entity-swap (n 80, floor 61.2%): weak"."""
        if self.accuracy is None:
            return f"{self.role}: unmeasured ({self.details.get('why', 'no check on this source')})"
        bias = (f", picks one position {100 * self.details['position_share']:.0f}%"
                if "position_share" in self.details else "")
        return (f"{self.role} at {100 * self.accuracy:.1f}% on {self.check} (n {self.n}, floor "
                f"{100 * (self.floor or 0):.1f}%{bias}): {self.verdict}")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Quality:
        return cls(**{k: d[k] for k in ("role", "check", "verdict", "accuracy", "n", "floor", "details", "version")
                      if k in d})


def accuracy_floor(n: int) -> float:
    """The least accuracy that is not chance: 1/2 plus max(0.10, two standard errors of a fair coin over n)."""
    return CHANCE + max(MIN_MARGIN, 2 * math.sqrt(CHANCE * (1 - CHANCE) / max(1, n)))


def verdict(accuracy: float, n: int, position_share: float | None = None) -> str:
    if accuracy < accuracy_floor(n) or (position_share is not None and position_share > POSITION_LIMIT):
        return "weak"
    return "ok"


def _measured(role: str, check: str, correct: Sequence[bool], details: dict[str, Any],
              position_share: float | None = None) -> Quality:
    n = len(correct)
    acc = sum(correct) / n
    if position_share is not None:
        details["position_share"] = position_share
    return Quality(role, check, verdict(acc, n, position_share), acc, n, accuracy_floor(n), details)


def unmeasured(role: str, why: str) -> Quality:
    return Quality(role, "", "unmeasured", details={"why": why})


# -- the checks ---------------------------------------------------------------------------------------------------
def check_verifier(source: Any, n_pairs: int = N_CLAIM_PAIRS, seed: int = 0) -> Quality:
    from flame_bench.scoring.factscore import FACTSCORE_K
    from flame_bench.scoring.verifier_check import build_claims, rates

    knowledge = source.knowledge
    claims = build_claims(knowledge, source.verifier_check_topics(), n_pairs, seed)
    scores = source.factscorer(FACTSCORE_K).score_many([c.text for c in claims], [[c.topic] for c in claims],
                                                       [None] * len(claims))
    said = [not s.abstained and bool(s.facts) and all(f["supported"] for f in s.facts) for s in scores]
    correct = [p == c.label for p, c in zip(said, claims, strict=True)]
    found = rates(claims, said)
    return _measured("verifier", "entity-swap", correct, {"tpr": found["tpr"], "tnr": found["tnr"]})


NO_REFERENCES = "no evaluation instructions with reference responses"


def _reference_items(source: Any, n: int, seed: int) -> list[dict[str, Any]] | None:
    """A seeded sample of `n` evaluation items with reference responses (each item's off-topic answer is the next
    item's reference), or None when the source has fewer than 4."""
    items = [it for it in source.eval_set("alpaca").items if it.get("reference_output")] \
        if source.has_eval_set("alpaca") else []
    if len(items) < 4:
        return None
    random.Random(seed).shuffle(items)
    return items[:n]


def check_pairwise_judge(source: Any, n_pairs: int = N_JUDGE_PAIRS, seed: int = 0) -> Quality:
    from flame_bench.scoring.judges import parse_pairwise_reply

    items = _reference_items(source, n_pairs, seed)
    if items is None:
        return unmeasured("pairwise_judge", NO_REFERENCES)
    judge = source.pairwise_judge
    correct, firsts, decided = [], 0, 0
    for i, item in enumerate(items):
        good, off = item["reference_output"], items[(i + 1) % len(items)]["reference_output"]
        for first_is_good in (True, False):
            a, b = (good, off) if first_is_good else (off, good)
            pref = parse_pairwise_reply(judge.compare(item, a, b))
            if pref in (1.0, 2.0):
                decided += 1
                firsts += pref == 1.0
            correct.append(pref == (1.0 if first_is_good else 2.0))
    share = max(firsts, decided - firsts) / decided if decided else 1.0
    return _measured("pairwise_judge", "off-topic-pairs", correct, {"decided": decided}, share)


def check_rm_if(source: Any, n_items: int = N_JUDGE_PAIRS, seed: int = 0) -> Quality:
    """RM_IF scores each evaluation instruction's reference response above another item's (a tie is wrong)."""
    items = _reference_items(source, n_items, seed)
    if items is None:
        return unmeasured("rm_if", NO_REFERENCES)
    reward = source.rm_if()
    good = reward.score_many(items, [it["reference_output"] for it in items])
    off = reward.score_many(items, [items[(i + 1) % len(items)]["reference_output"] for i in range(len(items))])
    correct = [g is not None and o is not None and g > o for g, o in zip(good, off, strict=True)]
    return _measured("rm_if", "off-topic-responses", correct,
                     {"ties": sum(g == o for g, o in zip(good, off, strict=True)),
                      "unscored": sum(g is None or o is None for g, o in zip(good, off, strict=True))})


def classifier_prompts(source: Any, n: int = N_PROMPTS, seed: int = 0) -> list[tuple[str, bool]]:
    """`n` labelled prompts: half about the knowledge source's entities (fact-based), half skill prompts."""
    rng = random.Random(seed)
    names = sorted(source.knowledge.pages)
    rng.shuffle(names)
    facts = [(ENTITY_TEMPLATES[i % len(ENTITY_TEMPLATES)].format(name), True) for i, name in enumerate(names[:n // 2])]
    skills = [(SKILL_PROMPTS[i % len(SKILL_PROMPTS)], False) for i in range(n // 2)]
    return facts + skills


def check_classifier(source: Any, n: int = N_PROMPTS, seed: int = 0) -> Quality:
    prompts = classifier_prompts(source, n, seed)
    said = source.fact_classifier.classify_many([p for p, _ in prompts])
    correct = [bool(s) == label for s, (_, label) in zip(said, prompts, strict=True)]
    pos = [bool(s) for s, (_, label) in zip(said, prompts, strict=True) if label]
    neg = [not s for s, (_, label) in zip(said, prompts, strict=True) if not label]
    return _measured("classifier", "fact-based-prompts", correct,
                     {"recall": sum(pos) / len(pos), "precision": (sum(pos) / max(1, sum(pos) + len(neg) - sum(neg))),
                      "tnr": sum(neg) / len(neg)})


CHECK_COST = {  # what a first use costs, said before it runs (minutes with a small local LLM on 2 CPU cores)
    "verifier": f"{2 * N_CLAIM_PAIRS} one-sentence responses through the FActScore pipeline (decompose + verify)",
    "pairwise_judge": f"up to {2 * N_JUDGE_PAIRS} pairwise judgements",
    "classifier": f"{N_PROMPTS} classifications",
    "rm_if": f"{2 * N_JUDGE_PAIRS} RM_IF scores",
}
CHECKS: dict[str, Callable[[Any], Quality]] = {"verifier": check_verifier, "pairwise_judge": check_pairwise_judge,
                                               "classifier": check_classifier, "rm_if": check_rm_if}


# -- cached per evaluator identity --------------------------------------------------------------------------------
def _component_identity(component: Any) -> dict[str, Any]:
    """name, version, prompt version and the LLM behind an evaluator component (whatever of those it has)."""
    out = {k: getattr(component, k) for k in ("name", "version", "prompt_version") if hasattr(component, k)}
    if hasattr(component, "identity") and isinstance(component.identity, dict):
        out["identity"] = component.identity
    if hasattr(component, "backend"):
        out["llm"] = component.backend.identity
    return out


def evaluator_identity(source: Any, role: str) -> dict[str, Any]:
    """What a role's check result depends on: the evaluator (its components, prompts and LLM) and the data its check
    is built from (the world's content, or the knowledge source and evaluation set of real data). Two sources that
    share both share the cached result (e.g. `eval` and `compare` with one LLM and one knowledge source)."""
    from flame_bench.scoring.factscore import FACTSCORE_K

    fp = source.fingerprint
    data = fp if fp.get("kind") == "fact-world" else {k: fp.get(k) for k in ("knowledge", "alpaca_eval")}
    if role == "verifier":
        evaluator = source.factscorer(FACTSCORE_K).identity
    elif role == "pairwise_judge":
        evaluator = _component_identity(source.pairwise_judge)
    elif role == "classifier":
        evaluator = _component_identity(source.fact_classifier)
    else:
        evaluator = source.rm_if().identity
    return {"role": role, "version": QUALITY_VERSION, "check_version": CHECK_VERSIONS[role], "evaluator": evaluator,
            "data": data}


def quality_key(source: Any, role: str) -> str:
    return sha256_json(evaluator_identity(source, role))[:24]


def evaluator_quality(source: Any, roles: Sequence[str], quiet: bool = True,
                      stop_at_weak: bool = False) -> dict[str, Quality]:
    """Each role's quality on `source`: read from the cache, or measured now (once per evaluator identity);
    `stop_at_weak`: return as soon as one role is weak (a refusal needs no more)."""
    from flame_bench.core.paths import results_dir
    from flame_bench.core.ui import console

    out: dict[str, Quality] = {}
    for role in dict.fromkeys(roles):
        if role not in CHECKS:
            out[role] = unmeasured(role, "no check exists for this role")
            continue
        path = results_dir() / "cache" / "evaluator_quality" / f"{role}-{quality_key(source, role)}.json"
        if path.is_file():
            try:
                out[role] = Quality.from_dict(read_json(path))
                if stop_at_weak and out[role].verdict == "weak":
                    break
                continue
            except (FlameError, TypeError, KeyError):
                pass  # a damaged entry is measured again
        if not quiet:
            console.print(f"measuring the {role}'s quality on its check: {CHECK_COST[role]} (once per evaluator; "
                          "cached) ...")
        try:
            quality = CHECKS[role](source)
        except FlameError as e:  # e.g. a knowledge source too small to build the check from
            quality = unmeasured(role, str(e))
        write_json(path, asdict(quality))
        out[role] = quality
        if stop_at_weak and quality.verdict == "weak":
            break
    return out


def weak_roles(quality: dict[str, Any]) -> list[str]:
    """The roles of a record's or comparison's `evaluator_quality` block whose verdict is weak."""
    return [role for role, q in (quality or {}).items() if isinstance(q, dict) and q.get("verdict") == "weak"]


def weak_note(quality: dict[str, Any]) -> str:
    """Why numbers resting on these evaluators are not meaningful, one line (empty when none is weak)."""
    return "; ".join(Quality.from_dict(quality[r]).note() for r in weak_roles(quality))
