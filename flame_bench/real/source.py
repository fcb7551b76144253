"""Real data and LLM evaluators as a source (`flame_bench.core.source.Source`).

Built once, from a system file's `data:` block or from `flame-bench eval`'s flags (`RealSpec`). Data: SFT examples
and the DPO prompt pool from data specs (`flame_bench.real.data`), a knowledge source (FActScore DocDB, JSONL,
`wiki-leads`), evaluation sets (AlpacaEval-format instructions with reference outputs, biography entities, TruthfulQA
questions). Evaluators, each on an LLM named per role (a local model, `self` = the stage's own input model for
RM_IF as in the paper's self-rewarding setup, or an OpenAI-compatible endpoint), all behind one on-disk cache:

- classifier: the paper's Figure 4 prompt (Yes vs No);
- RM_IF: the additive 5-point rubric (Figure 8, pre-filled turn), sampled `rm_if_samples` times at
  `rm_if_temperature` and averaged over parsable replies; unparsable replies are counted, never scored;
- RM_fact: LLM decomposition, the instruction as retrieval query over the whole knowledge source (bm25s, k = 10),
  LLM True/False verification; the share of facts supported;
- FActScore: the same parts with FActScore's per-topic retrieval; the pairwise judge: AlpacaEval-style a/b.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from flame_bench.core.errors import FlameError, redact_url
from flame_bench.core.registry import SOURCE_KINDS
from flame_bench.core.source import EvalSet, Reference
from flame_bench.real.data import DataSpec, content_sha256, load_items

ROLES = ("judge", "classifier", "decomposer", "verifier", "rm_if", "rm_fact")
ENTITY_ORDER_SEED = 0  # the knowledge source's entity list is shuffled once, so --limit N always means the same N
RM_FACT_PASSAGES = 10


@dataclass
class RealSpec:
    """Where a real source's parts come from. Paths are already resolved; `llm` is the default for every role."""

    name: str = "real"
    base_model: str | None = None
    sft: list[DataSpec] = field(default_factory=list)
    dpo_prompts: list[DataSpec] = field(default_factory=list)
    knowledge: str | None = None
    alpaca_eval: list[DataSpec] = field(default_factory=list)
    bio_entities: list[DataSpec] = field(default_factory=list)
    truthfulqa: str | None = None
    llm: str | None = None
    roles: dict[str, str] = field(default_factory=dict)  # role -> LLM spec, overriding `llm`
    rm_if_samples: int = 3
    rm_if_temperature: float = 0.7
    rm_if_readout: bool = False  # small judges: read the score from the next-token log-probabilities (not the paper's)
    rm_if_max_tokens: int = 160  # length of the sampled justification
    pairwise: str | None = None  # the win-rate judge's protocol: llm_pairwise (default) or alpaca_eval:<config>
    factscore_demos: str | None = None  # FActScore's own demons.json for the decomposer (default: our demonstrations)
    allow_missing_topics: bool = False  # evaluate the entities the knowledge source has, counting the others
    # where each LLM was named ("llm" or a role -> "the verifier of suite.yaml:12"), for the fix of an endpoint error;
    # not part of the spec's identity
    origins: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        def specs(xs: list[DataSpec]) -> list[dict[str, Any]]:
            return [{"path": str(s.path), "shape": s.shape, "fields": s.fields,
                     "select": f"{s.select[0]}:{'' if s.select[1] is None else s.select[1]}"} for s in xs]

        return {"kind": "real", "name": self.name, "base_model": self.base_model, "sft": specs(self.sft),
                "dpo_prompts": specs(self.dpo_prompts), "knowledge": self.knowledge,
                "alpaca_eval": specs(self.alpaca_eval), "bio_entities": specs(self.bio_entities),
                "truthfulqa": self.truthfulqa, "llm": redact_url(self.llm) if self.llm else None,
                "roles": {k: redact_url(v) for k, v in self.roles.items()},
                "rm_if_samples": self.rm_if_samples, "rm_if_temperature": self.rm_if_temperature,
                "rm_if_readout": self.rm_if_readout, "rm_if_max_tokens": self.rm_if_max_tokens,
                **({"pairwise": self.pairwise} if self.pairwise else {}),
                **({"factscore_demos": self.factscore_demos} if self.factscore_demos else {}),
                **({"allow_missing_topics": True} if self.allow_missing_topics else {})}

    @classmethod
    def from_flags(cls, flags: dict[str, str]) -> RealSpec:
        """`flame-bench eval`'s real-data flags (knowledge, llm, truthfulqa, verifier, judge, factscore_demos,
        entities, alpaca_eval) as a spec; every evaluator role on `llm`, files checked before any work."""
        from flame_bench.real.alpaca_eval_judge import check_pairwise_spec
        from flame_bench.real.data import make_spec

        spec = cls(name="real", knowledge=flags.get("knowledge"), truthfulqa=flags.get("truthfulqa"),
                   llm=flags.get("llm"), roles={"verifier": flags["verifier"]} if "verifier" in flags else {},
                   pairwise=check_pairwise_spec(flags["judge"]) if "judge" in flags else None,
                   allow_missing_topics=flags.get("allow_missing_topics") == "True")
        if "factscore_demos" in flags:
            from flame_bench.real.components import FActScoreDemos

            FActScoreDemos(Path(flags["factscore_demos"]))  # a bad file is refused before any work
            spec.factscore_demos = str(Path(flags["factscore_demos"]).resolve())
        if "entities" in flags:
            spec.bio_entities = [make_spec({"path": str(Path(flags["entities"]).resolve()), "shape": "bio-entities"},
                                           Path.cwd(), "--entities")]
        if "alpaca_eval" in flags:
            path = Path(flags["alpaca_eval"])
            if path.is_dir():
                raise FlameError(f"--alpaca-eval {path} is a directory; pass an AlpacaEval-format JSON file")
            spec.alpaca_eval = [make_spec({"path": str(path.resolve()), "shape": "instruction"}, Path.cwd(),
                                          "--alpaca-eval")]
        return spec

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RealSpec:
        from flame_bench.real.data import make_spec

        def specs(key: str) -> list[DataSpec]:
            return [make_spec(x, Path("/"), f"source spec {key}") for x in d.get(key) or []]

        return cls(name=d.get("name", "real"), base_model=d.get("base_model"), sft=specs("sft"),
                   dpo_prompts=specs("dpo_prompts"), knowledge=d.get("knowledge"), alpaca_eval=specs("alpaca_eval"),
                   bio_entities=specs("bio_entities"), truthfulqa=d.get("truthfulqa"), llm=d.get("llm"),
                   roles=dict(d.get("roles") or {}), rm_if_samples=int(d.get("rm_if_samples", 3)),
                   rm_if_temperature=float(d.get("rm_if_temperature", 0.7)),
                   rm_if_readout=bool(d.get("rm_if_readout", False)),
                   rm_if_max_tokens=int(d.get("rm_if_max_tokens", 160)), pairwise=d.get("pairwise"),
                   factscore_demos=d.get("factscore_demos"),
                   # a record reopened for rescoring keeps its own items (runs before the flag dropped the missing)
                   allow_missing_topics=bool(d.get("allow_missing_topics", True)))


class LLMRubricReward:
    """RM_IF on an LLM: the additive 5-point rubric sampled `samples` times and averaged over parsable replies."""

    def __init__(self, backend, samples: int, temperature: float, readout: bool = False, max_tokens: int = 160):
        from flame_bench.real.components import LLMRubricJudge

        self.judge = LLMRubricJudge(backend, max_tokens=max_tokens, readout=readout)
        self.samples, self.temperature = samples, temperature
        self.identity = {"name": self.judge.name, "version": self.judge.version, "samples": samples,
                         "temperature": temperature, "max_tokens": max_tokens, "backend": backend.identity}
        self.stats: dict[str, int] = {"judgements": 0, "unparsable": 0, "unscored": 0}
        if readout:
            self.stats["read_out"] = 0

    def score_many(self, records: Sequence[dict[str, Any]], responses: Sequence[str]) -> list[float | None]:
        pairs = [(r["instruction"], s) for r, s in zip(records, responses, strict=True)]
        draws = []
        for k in range(self.samples):
            draws.append(self.judge.score_many(pairs, temperature=self.temperature, seed=k))
            if "read_out" in self.stats:
                self.stats["read_out"] += self.judge.last_read_out
        out: list[float | None] = []
        for scores in zip(*draws, strict=True) if draws else []:
            parsed = [s for s in scores if s is not None]
            self.stats["judgements"] += len(scores)
            self.stats["unparsable"] += len(scores) - len(parsed)
            if not parsed:
                self.stats["unscored"] += 1
            out.append(sum(parsed) / len(parsed) if parsed else None)
        return out


def nli_verifier(spec: str | None):
    """The offline NLI verifier for a verifier spec `nli` (the trained one) or `nli:DIR`; None for an LLM spec."""
    from flame_bench.real.nli import NLIVerifier, is_nli_spec

    if not is_nli_spec(spec):
        return None

    return NLIVerifier(Path(spec[4:]) if spec.startswith("nli:") else None)


class RealSource:
    groups = ("all",)
    pretrained_style = "qa-blocks"

    def __init__(self, spec: RealSpec, quiet: bool = True):
        self.real = spec
        self.name = spec.name
        self.quiet = quiet
        self._backends: dict[str, Any] = {}
        self._eval_sets: dict[str, EvalSet] = {}

    # -- identity --------------------------------------------------------------------------------------------
    @property
    def spec(self) -> dict[str, Any]:
        return self.real.to_dict()

    def _data_identity(self, key: str) -> list[dict[str, Any]]:
        return [s.identity for s in getattr(self.real, key)]

    @cached_property
    def _knowledge_identity(self) -> str | None:
        ref = self.real.knowledge
        if ref is None:
            return None
        path = Path(ref)
        return f"{path.name}@{content_sha256(path)[:16]}" if path.exists() else self.knowledge.name

    def evaluator_identity(self, role: str) -> dict[str, Any]:
        return self.backend(role).identity

    @property
    def fingerprint(self) -> dict[str, Any]:
        tqa = self.real.truthfulqa
        return {"kind": "real", "name": self.name, **self.training_fingerprint(),
                "alpaca_eval": self._data_identity("alpaca_eval"), "bio_entities": self._data_identity("bio_entities"),
                "truthfulqa": content_sha256(Path(tqa)) if tqa and Path(tqa).is_file() else tqa}

    def eval_fingerprint(self) -> dict[str, Any]:
        """What evaluation depends on: the evaluation data, the knowledge source and the evaluators' LLMs."""
        fp = self.fingerprint
        return {k: fp[k] for k in ("alpaca_eval", "bio_entities", "truthfulqa", "knowledge")} | {
            role: self.llm_spec(role) for role in ("judge", "classifier", "decomposer", "verifier")} | (
            {"pairwise": self.real.pairwise} if self.real.pairwise else {})

    def training_fingerprint(self) -> dict[str, Any]:
        return {"sft": self._data_identity("sft"), "dpo_prompts": self._data_identity("dpo_prompts"),
                "knowledge": self._knowledge_identity}

    # -- LLMs ------------------------------------------------------------------------------------------------
    def llm_spec(self, role: str) -> str | None:
        return self.real.roles.get(role) or self.real.llm

    def backend(self, role: str, policy_model: Path | None = None):
        """The cached LLM backend of a role (one per distinct model, shared by roles)."""
        from flame_bench.engines.llm.resolve import evaluator_backend

        spec = self.llm_spec(role)
        if spec == "self":
            if policy_model is None:
                raise FlameError(f"evaluator role {role} is 'self' (the stage's own model), which only RM_IF can be")
            spec = str(policy_model)
        key = spec or "<default>"
        if key not in self._backends:
            origin = self.real.origins.get(role if role in self.real.roles else "llm")
            self._backends[key] = evaluator_backend(spec, quiet=self.quiet, option=origin)
        return self._backends[key]

    def validate(self, training: bool = True) -> None:
        """Everything that can be checked before any work: every data file reads (a bad line is named), the
        knowledge source opens, every evaluator endpoint answers (one uncached 1-token call)."""
        for key in ("sft", "dpo_prompts") if training else ():
            self._items(key, need_response=key == "sft")
        for spec in [*self.real.alpaca_eval, *self.real.bio_entities]:
            load_items(spec, need_response=False)
        if self.real.truthfulqa:
            from flame_bench.real.fetch import load_truthfulqa_items

            load_truthfulqa_items(Path(self.real.truthfulqa))
        if self.real.knowledge:
            self.knowledge  # noqa: B018 - opens (and checks) the knowledge source
        self.preflight()
        if self.real.knowledge:
            self.eval_set("bio")  # every entity has a page, or one line names those that do not

    def preflight(self, roles: Sequence[str] = ROLES) -> None:
        """Make sure every evaluator endpoint answers before any training starts (one uncached 1-token call)."""
        for role in roles:
            if self.llm_spec(role) == "self":
                continue
            if nli_verifier(self.llm_spec(role)) is not None:  # trained and readable (else a one-line error)
                continue
            backend = self.backend(role)
            inner = getattr(backend, "backend", backend)
            if inner.identity.get("kind") == "openai":
                inner.probe()  # seconds, not minutes, for an endpoint that is down or never answers
                inner.complete(["ping"], max_tokens=1)

    # -- data ------------------------------------------------------------------------------------------------
    def base_model(self) -> Path:
        if not self.real.base_model:
            raise FlameError("this source names no base model; set base_model in the system file")
        from flame_bench.engines.models import resolve_model

        return resolve_model(self.real.base_model).path

    def check_model(self, model_dir: Path) -> None:
        from transformers import AutoTokenizer

        from flame_bench.engines.models import ensure_pad_token

        ensure_pad_token(AutoTokenizer.from_pretrained(model_dir), model_dir)

    def _items(self, key: str, need_response: bool) -> list[dict[str, Any]]:
        specs = getattr(self.real, key)
        if not specs:
            raise FlameError(f"the source {self.name!r} has no {key} data; add data: {{{key}: FILE}} to the system "
                             "file")
        return [it for s in specs for it in load_items(s, need_response)[0]]

    def sft_examples(self) -> list[dict[str, Any]]:
        return [{**it, "fact_based": None, "groups": []} for it in self._items("sft", need_response=True)]

    def dpo_prompts(self) -> list[dict[str, Any]]:
        return self._items("dpo_prompts", need_response=False)

    def has_eval_set(self, name: str) -> bool:
        """Whether this source was given the data of an evaluation set (TruthfulQA must be named explicitly)."""
        return {"bio": bool(self.real.knowledge), "alpaca": bool(self.real.alpaca_eval),
                "truthfulqa": bool(self.real.truthfulqa)}.get(name, False)

    def eval_set(self, name: str) -> EvalSet:
        if name not in self._eval_sets:
            loaders = {"bio": self._bio, "alpaca": self._alpaca, "truthfulqa": self._truthfulqa}
            if name not in loaders:
                from flame_bench.core.errors import unknown_name

                raise unknown_name("evaluation set", name, loaders)
            self._eval_sets[name] = loaders[name]()
        return self._eval_sets[name]

    def _bio(self) -> EvalSet:
        from flame_bench.real.knowledge import load_entities

        if not self.real.knowledge:
            raise FlameError("factscore_bio without a fact world needs a knowledge source: pass --knowledge wiki-leads "
                             "(after `flame-bench data fetch wiki-leads`), a FActScore DocDB .db or a {title, text} "
                             ".jsonl")
        if self.real.bio_entities:
            entities = [it["name"] for s in self.real.bio_entities for it in load_items(s, need_response=False)[0]]
        else:
            entities = list(load_entities(self.real.knowledge, self.knowledge))
            random.Random(ENTITY_ORDER_SEED).shuffle(entities)
        from flame_bench.scoring.factscore import unknown_topics

        missing = unknown_topics(self.knowledge, entities)  # never generated for nor scored
        if missing and not self.real.allow_missing_topics:
            raise FlameError(missing_topics_error(missing, self.knowledge, len(entities)))
        absent = set(missing)
        items = [{"id": f"bio-{i:05d}", "instruction": f"Tell me a bio of {name}.", "name": name, "topics": [name],
                  "group": "all"} for i, name in enumerate(e for e in entities if e not in absent)]
        return EvalSet(items, counts={"missing_topics": len(missing)},
                       extra={"missing_topics": missing[:50]} if missing else {})

    def _alpaca(self) -> EvalSet:
        if not self.real.alpaca_eval:
            raise FlameError("alpaca_winrate without a fact world needs --alpaca-eval FILE: AlpacaEval-format JSON "
                             "(a list of {instruction, output, generator}) whose outputs are the reference")
        rows = [it for s in self.real.alpaca_eval for it in load_items(s, need_response=False)[0]]
        classifier = self.fact_classifier
        labels = classifier.classify_many([r["instruction"] for r in rows])
        items = [{"id": f"alpaca-{i:04d}", "instruction": r["instruction"], "kind": "", "fact_based": label,
                  "topics": [], "group": "all", "reference_output": r.get("response"),
                  "reference_generator": r.get("generator", "reference")}
                 for i, (r, label) in enumerate(zip(rows, labels, strict=True))]
        return EvalSet(items, identity={"files": self._data_identity("alpaca_eval"),
                                        "fact_based_by": f"{classifier.name}@{classifier.version}"},
                       counts={"classified_fact_based": sum(labels)})

    def _truthfulqa(self) -> EvalSet:
        import os

        from flame_bench.real.fetch import load_truthfulqa_items

        path = self.real.truthfulqa
        if path:
            items = load_truthfulqa_items(Path(path))
            identity = {"source": "file", "name": Path(path).name, "sha256": content_sha256(Path(path))}
        elif not any(os.environ.get(v, "").lower() in ("1", "true", "yes")
                     for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")):
            import datasets

            ds = datasets.load_dataset("truthfulqa/truthful_qa", "multiple_choice")["validation"]
            items = [{"id": f"tqa-{i:04d}", "question": d["question"], "mc1_targets": d["mc1_targets"],
                      "mc2_targets": d["mc2_targets"]} for i, d in enumerate(ds)]
            identity = {"source": "hub", "dataset": "truthfulqa/truthful_qa", "fingerprint": ds._fingerprint}
        else:
            from flame_bench.core.io import sha256_json

            items = load_truthfulqa_items()
            identity = {"source": "bigbench-1.0.0 subset (offline)", "items_sha256": sha256_json(items)}
        return EvalSet(items, identity=identity, format="lm-eval-builtin")

    def dataset_reference(self) -> Reference:
        items = self.eval_set("alpaca").items
        if any(it["reference_output"] is None for it in items):
            raise FlameError("the AlpacaEval file has records without an output, so it has no reference; pass "
                             "--reference RUN|MODEL")
        generators = sorted({it["reference_generator"] for it in items})
        return Reference("/".join(generators) or "reference",
                         {"kind": "alpaca_eval file", "files": self._data_identity("alpaca_eval")},
                         {it["id"]: it["reference_output"] for it in items})

    # -- evaluators ------------------------------------------------------------------------------------------
    @cached_property
    def knowledge(self):
        from flame_bench.real.knowledge import open_knowledge

        if not self.real.knowledge:
            raise FlameError("this needs a knowledge source: pass --knowledge (wiki-leads, a DocDB .db or a .jsonl) or "
                             "set data: {knowledge: ...} in the system file")
        return open_knowledge(self.real.knowledge)

    def verifier_check_topics(self) -> list[str]:
        """wiki-leads' people list, the pages the offline verifier is never trained on (`nli_data`); for another
        source every title."""
        from flame_bench.real.knowledge import load_entities

        return load_entities(self.real.knowledge, self.knowledge)  # opened once (or a line on how to name one)

    @cached_property
    def fact_classifier(self):
        from flame_bench.real.components import LLMFactClassifier

        return LLMFactClassifier(self.backend("classifier"))

    def rm_if(self, policy_model: Path | None = None) -> LLMRubricReward:
        key = f"rm_if|{policy_model if self.llm_spec('rm_if') == 'self' else ''}"
        if key not in self._backends:
            self._backends[key] = LLMRubricReward(self.backend("rm_if", policy_model), self.real.rm_if_samples,
                                                  self.real.rm_if_temperature, self.real.rm_if_readout,
                                                  self.real.rm_if_max_tokens)
        return self._backends[key]

    @cached_property
    def rm_fact(self):
        from flame_bench.scoring.factscore import FactScoreReward

        return FactScoreReward(self.factscorer(RM_FACT_PASSAGES, roles=("rm_fact", "rm_fact")), name="llm_rm_fact")

    def factscorer(self, k: int, roles: tuple[str, str] = ("decomposer", "verifier")):
        from flame_bench.real.components import FActScoreDemos, LLMDecomposer, LLMVerifier
        from flame_bench.scoring.factscore import FactScorer
        from flame_bench.scoring.retrieval import BM25Retriever

        verifier = nli_verifier(self.llm_spec(roles[1])) or LLMVerifier(self.backend(roles[1]))
        demos = FActScoreDemos(Path(self.real.factscore_demos)) if self.real.factscore_demos else None
        return FactScorer(source=self.knowledge, decomposer=LLMDecomposer(self.backend(roles[0]), demos=demos),
                          verifier=verifier, retriever=BM25Retriever(k=k), name="factscore_llm")

    @cached_property
    def pairwise_judge(self):
        from flame_bench.real.alpaca_eval_judge import PREFIX, AlpacaEvalJudge, is_alpaca_eval_spec
        from flame_bench.real.components import LLMPairwiseJudge

        if is_alpaca_eval_spec(self.real.pairwise):
            return AlpacaEvalJudge(self.backend("judge"), self.real.pairwise[len(PREFIX):])
        return LLMPairwiseJudge(self.backend("judge"))


@SOURCE_KINDS.register("real")
def reopen_real(spec: dict[str, Any]) -> RealSource:
    """A real-data source from a run record's spec."""
    return RealSource(RealSpec.from_dict(spec))


def missing_topics_error(missing: Sequence[str], knowledge, total: int) -> str:
    """One line naming the entities the knowledge source has no page for, each with its nearest title."""
    import difflib

    titles = list(knowledge.pages)
    shown = []
    for name in missing[:5]:
        near = difflib.get_close_matches(name, titles, n=1, cutoff=0.75)
        shown.append(f"{name!r}" + (f" (did you mean {near[0]!r}?)" if near else ""))
    more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
    return (f"{len(missing)} of {total} evaluation entities have no page in the knowledge source {knowledge.name}: "
            f"{', '.join(shown)}{more}; fix the names, or pass --allow-missing-topics to evaluate the others (the "
            "left-out ones are counted in the report)")
