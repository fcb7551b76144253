"""FLAME's method (paper §1.5-1.11), in one place: how the pretrained model is prompted for its own responses,
and how sampled responses and their rewards become preference pairs.

- Few-shot elicitation (SFT^flame): the demonstrations are the most similar seed instructions with their human
  responses, rendered in a prompt style that suits the base model (`PT_PROMPT_STYLES`).
- IF pairs: max/min RM_IF of an instruction's samples; ties (and fewer than two scored samples) dropped.
- Factuality pairs: on fact-based instructions only, chosen by a named rule (`FACT_PAIR_RULES`): the paper's main
  rule `maxmin` and its Table 7 ablations `enum` and `composite`. A new rule is one `@fact_pair_rule` entry; every
  rule has a version that stage keys hash, so editing a rule never reuses stale pairs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from flame_bench.core.errors import FlameError, unknown_name

IF_PAIR_RULE = {"name": "if_maxmin", "version": "if-maxmin-drop-ties-v1"}


# -- preference pairs ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PairParams:
    max_if_gap: float = 0.5  # maxmin / enum: drop when RM_IF differs by more than this
    min_fact_gap: float = 0.2  # enum: smaller RM_fact differences count as equal


# select(valid sample indices, RM_IF per sample, RM_fact per valid sample, params) -> ((chosen, rejected) pairs,
# the reason when no pair is kept)
Selector = Callable[[list[int], Sequence[float | None], dict[int, float], PairParams],
                    tuple[list[tuple[int, int]], str | None]]


@dataclass(frozen=True)
class FactPairRule:
    name: str
    version: str
    description: str
    select: Selector


FACT_PAIR_RULES: dict[str, FactPairRule] = {}


def fact_pair_rule(name: str, version: str, description: str) -> Callable[[Selector], Selector]:
    def register(fn: Selector) -> Selector:
        FACT_PAIR_RULES[name] = FactPairRule(name, version, description, fn)
        return fn

    return register


def get_fact_pair_rule(name: str) -> FactPairRule:
    if name not in FACT_PAIR_RULES:
        raise unknown_name("fact pair rule", name, FACT_PAIR_RULES)
    return FACT_PAIR_RULES[name]


def _gap_ok(ifs: Sequence[float | None], a: int, b: int, max_gap: float) -> bool:
    x, y = ifs[a], ifs[b]
    return x is not None and y is not None and abs(x - y) <= max_gap


@fact_pair_rule("maxmin", "maxmin-if-gap-v1", "the paper's rule: max/min RM_fact, dropped when RM_fact ties or "
                "RM_IF differs by more than max_if_gap")
def _maxmin(valid, ifs, fs, p):
    t = max(valid, key=lambda i: (fs[i], -i))
    f = min(valid, key=lambda i: (fs[i], i))
    if fs[t] == fs[f]:
        return [], "fact_tie"
    if not _gap_ok(ifs, t, f, p.max_if_gap):
        return [], "fact_if_gap"
    return [(t, f)], None


@fact_pair_rule("enum", "enum-v1", "Table 7: every sample pair with RM_fact gap >= min_fact_gap and RM_IF gap <= "
                "max_if_gap, the more factual one chosen")
def _enum(valid, ifs, fs, p):
    pairs = [(a, b) if fs[a] > fs[b] else (b, a) for n, a in enumerate(valid) for b in valid[n + 1:]
             if abs(fs[a] - fs[b]) >= p.min_fact_gap and _gap_ok(ifs, a, b, p.max_if_gap)]
    return pairs, None if pairs else "fact_tie"


@fact_pair_rule("composite", "composite-v1", "Table 7: max/min of RM_IF + 5 RM_fact, no RM_IF filter")
def _composite(valid, ifs, fs, p):
    scored = [i for i in valid if ifs[i] is not None]
    if len(scored) < 2:
        return [], "fact_if_unscored"
    score = {i: ifs[i] + 5 * fs[i] for i in scored}  # type: ignore[operator]
    t, f = max(scored, key=lambda i: (score[i], -i)), min(scored, key=lambda i: (score[i], i))
    return ([(t, f)], None) if score[t] != score[f] else ([], "fact_tie")


@dataclass
class PairSet:
    if_pairs: list[dict[str, Any]] = field(default_factory=list)
    fact_pairs: list[dict[str, Any]] = field(default_factory=list)
    stats: dict[str, int] = field(default_factory=dict)


# Below this share of factuality pairs per IF pair, FLAME's DPO is warned about: a quarter of the paper's 22.6%
# (Table 11: 3,178 fact pairs for 14,055 IF pairs), fixed from the paper, not from any run here.
MIN_FACT_PAIR_SHARE = 0.05


def fact_pair_guards(stats: dict[str, int], allow_no_fact_pairs: bool = False) -> list[str]:
    """FLAME's guards on a built pair set (`PairSet.stats`): warnings when the fact-based classifier called none or
    all of the prompts fact-based, or when factuality pairs are under MIN_FACT_PAIR_SHARE of the IF pairs; a set
    with no factuality pairs at all is refused (it would train the baseline's DPO under FLAME's name) unless
    `allow_no_fact_pairs`."""
    n, fact_based, fact, if_pairs = (stats["instructions"], stats["fact_based"], stats["fact_pairs"],
                                     stats["if_pairs"])
    warnings = []
    if n and fact_based in (0, n):
        warnings.append(f"the fact-based classifier called {'none' if fact_based == 0 else 'all'} of the {n} DPO "
                        "prompts fact-based")
    if fact == 0 and not allow_no_fact_pairs:
        raise FlameError(f"FLAME's DPO built no factuality pairs ({fact_based} of {n} prompts called fact-based, "
                         f"{if_pairs} IF pairs), so it would train on IF pairs alone, as the baseline does; check the "
                         "fact-based classifier and RM_fact, or set allow_no_fact_pairs: true in the stage's config")
    if if_pairs and fact < MIN_FACT_PAIR_SHARE * if_pairs:
        warnings.append(f"{fact} factuality pairs are {fact / if_pairs:.1%} of the {if_pairs} IF pairs, under "
                        f"{MIN_FACT_PAIR_SHARE:.0%} (the paper: 22.6%): FLAME's DPO differs little from the baseline's")
    return warnings


def build_pairs(records: Sequence[dict], samples: Sequence[Sequence[str]], if_scores: Sequence[Sequence[float | None]],
                fact_scores: Sequence[Sequence[float | None]], fact_based: Sequence[bool], rule: str = "maxmin",
                params: PairParams = PairParams()) -> PairSet:
    """IF pairs for every instruction, factuality pairs for fact-based ones (paper §1.8, §1.10). Ties in a max or
    min pick the first sample (deterministic). Scores of None (an unparsable judge, a response without facts) never
    enter a pair."""
    select = get_fact_pair_rule(rule).select
    out = PairSet()
    dropped = {"if_tie": 0, "fact_tie": 0, "fact_if_gap": 0, "fact_no_facts": 0}

    def pair(rec: dict, outs: Sequence[str], chosen: int, rejected: int, scores: Sequence[Any]) -> dict[str, Any]:
        return {"id": rec["id"], "prompt": rec["instruction"], "chosen": outs[chosen], "rejected": outs[rejected],
                "chosen_score": scores[chosen], "rejected_score": scores[rejected]}

    for rec, outs, ifs, facts, is_fact in zip(records, samples, if_scores, fact_scores, fact_based, strict=True):
        scored = [i for i, s in enumerate(ifs) if s is not None]
        if len(scored) < 2:
            dropped["if_unscored"] = dropped.get("if_unscored", 0) + 1
        else:
            hi = max(scored, key=lambda i: (ifs[i], -i))
            lo = min(scored, key=lambda i: (ifs[i], i))
            if ifs[hi] == ifs[lo]:
                dropped["if_tie"] += 1
            else:
                out.if_pairs.append(pair(rec, outs, hi, lo, ifs))
        if not is_fact:
            continue
        valid = [i for i, f in enumerate(facts) if f is not None]
        if len(valid) < 2:
            dropped["fact_no_facts"] += 1
            continue
        found, reason = select(valid, ifs, {i: float(facts[i]) for i in valid}, params)  # type: ignore[arg-type]
        if reason:
            dropped[reason] = dropped.get(reason, 0) + 1
        out.fact_pairs += [pair(rec, outs, t, f, facts) for t, f in found]
    out.stats = {"instructions": len(records), "fact_based": sum(fact_based), "if_pairs": len(out.if_pairs),
                 "fact_pairs": len(out.fact_pairs), **{f"dropped_{k}": v for k, v in dropped.items()}}
    return out


def mix_pairs(if_pairs: list[dict], fact_pairs: list[dict]) -> list[dict]:
    """DPO^flame's 50/50 mixing: the smaller set is cycled up to the size of the larger, so a uniformly drawn batch
    is half of each in expectation."""
    from itertools import cycle, islice

    big, small = sorted((if_pairs, fact_pairs), key=len, reverse=True)
    return big + list(islice(cycle(small), len(big))) if small else big


# -- few-shot elicitation from the pretrained model ------------------------------------------------------------
@dataclass(frozen=True)
class PTPromptStyle:
    """How demonstrations and the question are laid out for a plain-text base model."""

    version: str
    demo: str  # format of one demonstration: {instruction}, {response}, {separator}
    question: str  # format of the question: {instruction}
    joiner: str  # between demonstrations and the question
    stop: tuple[str, ...] = ()  # a sample is cut at the first of these (a base model runs on into a new question)
    separator_from_tokenizer: bool = False  # {separator} = " EOS BOS": each demonstration its own document


PT_PROMPT_STYLES: dict[str, PTPromptStyle] = {
    # the fact world's corpus form: each demonstration is its own "Question: ... Answer: ..." document
    "qa-documents": PTPromptStyle("pt-fewshot-qa-v1", "Question: {instruction} Answer: {response}{separator}",
                                  "Question: {instruction} Answer:", " ", separator_from_tokenizer=True),
    # real base models (Figure 3a's instruction/response pairs as plain text blocks)
    "qa-blocks": PTPromptStyle("pt-fewshot-qa-blocks-v1", "Question: {instruction}\nAnswer: {response}\n\n",
                               "Question: {instruction}\nAnswer:", "", stop=("\nQuestion:", "\n\n\n")),
}


def get_pt_style(name: str) -> PTPromptStyle:
    if name not in PT_PROMPT_STYLES:
        raise unknown_name("pretrained prompt style", name, PT_PROMPT_STYLES)
    return PT_PROMPT_STYLES[name]
