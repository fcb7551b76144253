"""The fact world as a source: its data files, and program evaluators that know the ground truth.

- classifier: `EntityClassifier` (fact-based iff the instruction names a person of the knowledge source);
- RM_IF: the additive 5-point rubric (`flame_bench.world.rubric`), blind to truth;
- RM_fact and FActScore: the world's grammar decomposer and passage verifier (`flame_bench.world.factscore`),
  RM_fact retrieving with the instruction as query (k = 10) and, by default, checking facts as FLAME's LLM checker
  does (accepting unsupported facts at the rate FActScore measured for it; `rm_fact_noise` 0: exact); FActScore
  (evaluation) is always exact;
- the pairwise judge: `world_if` (`flame_bench.world.judge`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

from flame_bench.core.errors import FlameError
from flame_bench.core.registry import CLASSIFIERS, SOURCE_KINDS
from flame_bench.core.source import EvalSet, Reference
from flame_bench.world.judge_noise import FLAME_CHECKER_FALSE_ACCEPT
from flame_bench.world.presets import TIERS, popularity_bin
from flame_bench.world.store import WorldDir

RM_FACT_PASSAGES = 10  # FLAME retrieves 10 supports for RM_fact


@CLASSIFIERS.register("world_entities")
class EntityClassifier:
    """Fact-based iff the instruction names an entity of the knowledge source (the question the paper's prompt
    asks: "do you need factual knowledge from Wikipedia?"). Its accuracy against the world's labels is measured."""

    name = "world_entities"
    version = "entity-mention-v1"
    _NAME = re.compile(r"\b[A-Z][a-z]+ [A-Z][a-z]+\b")

    def __init__(self, world: WorldDir):
        self.titles = {k["title"] for k in world.knowledge}

    def __call__(self, instruction: str) -> bool:
        return any(m in self.titles for m in self._NAME.findall(instruction))

    def classify_many(self, instructions: Sequence[str]) -> list[bool]:
        return [self(i) for i in instructions]


def classifier_accuracy(world: WorldDir, classifier) -> dict[str, dict[str, float]]:
    """Accuracy, precision and recall of `classifier` against the world's fact_based labels, per split."""
    out = {}
    for key in ("seed_instructions", "dpo_instructions", "eval_alpaca"):
        recs = world.records(key)
        pred = classifier.classify_many([r["instruction"] for r in recs])
        gold = [bool(r["fact_based"]) for r in recs]
        tp = sum(p and g for p, g in zip(pred, gold, strict=True))
        out[key] = {"n": len(recs), "accuracy": sum(p == g for p, g in zip(pred, gold, strict=True)) / len(recs),
                    "precision": tp / max(1, sum(pred)), "recall": tp / max(1, sum(gold))}
    return out


RM_IF_SAMPLES = 3  # the paper's RM_IF averages three sampled judgements
WORLD_JUDGES = ("world_if", "world_if_graded")


class RubricReward:
    """RM_IF: the additive 5-point rubric (0..5) for a world instruction record. With `noise` > 0 it is sampled as
    the paper's LLM judge is: `samples` simulated judgements (`rubric.sampled_rubric_score`, each criterion misread
    with probability `noise`) averaged, in steps of 1/samples. `noise` 0 is the exact rubric (one reading)."""

    def __init__(self, world: WorldDir, noise: float = 0.0, samples: int = RM_IF_SAMPLES):
        from flame_bench.world.rubric import RUBRIC_VERSION

        if not 0 <= noise < 0.5:
            raise FlameError(f"RM_IF noise must be in [0, 0.5) (a per-criterion misreading rate), got {noise!r}")
        self.grammar, self.noise, self.samples = world.grammar, noise, samples
        self.identity: dict[str, Any] = {"name": "world_if_rubric", "version": RUBRIC_VERSION}
        if noise > 0:  # the exact rubric keeps the identity (and stage keys) it always had
            self.identity.update(noise=noise, samples=samples, sampler="per-criterion-flip-v1")
        self.stats: dict[str, int] = {}

    def score_many(self, records: Sequence[dict[str, Any]], responses: Sequence[str]) -> list[float | None]:
        from flame_bench.world.rubric import if_rubric, sampled_rubric_scores

        if self.noise <= 0:
            return [float(if_rubric(r, s, self.grammar).score) for r, s in zip(records, responses, strict=True)]
        return [sum(sampled_rubric_scores(r, s, self.grammar, self.noise, range(self.samples))) / self.samples
                for r, s in zip(records, responses, strict=True)]


class WorldSource:
    """A fact world directory as a `flame_bench.core.source.Source`."""

    groups = TIERS
    pretrained_style = "qa-documents"

    def __init__(self, world: WorldDir, rm_if_noise: float = 0.0, judge: str = "world_if",
                 rm_fact_noise: float = FLAME_CHECKER_FALSE_ACCEPT):
        """`rm_if_noise`: RM_IF sampled as an LLM judge (`RubricReward`; 0 = the exact rubric); `judge`: the win
        rate's pairwise judge, `world_if` or `world_if_graded` (both blind to truth); `rm_fact_noise`: RM_fact's
        fact checker accepts unsupported facts as FLAME's LLM checker does (`NoisyWorldVerifier`; default: the rate
        FActScore measured for that checker; 0 = exact). Evaluation always scores exactly."""
        if judge not in WORLD_JUDGES:
            from flame_bench.core.errors import unknown_name

            raise unknown_name("world judge", judge, WORLD_JUDGES)
        if not 0 <= rm_fact_noise < 0.5:
            raise FlameError(f"RM_fact noise must be in [0, 0.5) (a per-fact verdict error rate), "
                             f"got {rm_fact_noise!r}")
        self.world = world
        self.rm_if_noise, self.judge_name, self.rm_fact_noise = rm_if_noise, judge, rm_fact_noise
        # another evaluator is another comparison: its files never replace the default one's
        self.variant = "".join(f"__{tag}{v:g}".replace(".", "p") for tag, v, default in (
            ("rmif", rm_if_noise, 0.0), ("rmfact", rm_fact_noise, FLAME_CHECKER_FALSE_ACCEPT)) if v != default) + (
            f"__{judge}" if judge != "world_if" else "")
        self.name = world.path.name + self.variant
        self._eval_sets: dict[str, EvalSet] = {}

    @classmethod
    def open(cls, path: str | Path, rm_if_noise: float = 0.0, judge: str = "world_if",
             rm_fact_noise: float = FLAME_CHECKER_FALSE_ACCEPT) -> WorldSource:
        return cls(WorldDir.open(path), rm_if_noise, judge, rm_fact_noise)

    @property
    def spec(self) -> dict[str, Any]:
        # rm_fact_noise always written: a record without it is from before the lenient checker was the default
        return {"kind": "fact-world", "path": str(self.world.path), "rm_fact_noise": self.rm_fact_noise,
                **({"rm_if_noise": self.rm_if_noise} if self.rm_if_noise else {}),
                **({"judge": self.judge_name} if self.judge_name != "world_if" else {})}

    @property
    def fingerprint(self) -> dict[str, Any]:
        w = self.world
        return {"kind": "fact-world", "preset": w.preset_name, "seed": w.manifest["seed"],
                "content_sha256": w.content_sha256,
                # other reward models or judge: runs of their systems are listed apart (the default adds nothing)
                **({"variant": self.variant.removeprefix("__")} if self.variant else {})}

    def training_fingerprint(self) -> dict[str, Any]:
        return {"world": self.world.content_sha256}

    def base_model(self) -> Path:
        return Path(self.world.model_dir)

    @cached_property
    def _tier(self) -> dict[str, str]:
        return {p["name"]: p["tier"] for p in self.world.people}

    # -- data ------------------------------------------------------------------------------------------------
    def sft_examples(self) -> list[dict[str, Any]]:
        return [{**r, "topics": r["people"], "groups": [self._tier[n] for n in r["people"]]}
                for r in self.world.records("seed_instructions")]

    def dpo_prompts(self) -> list[dict[str, Any]]:
        return [{**r, "topics": r["people"]} for r in self.world.records("dpo_instructions")]

    def validate(self, training: bool = True) -> None:
        """A world was verified when it was opened (manifest hashes)."""

    def has_eval_set(self, name: str) -> bool:
        return name in ("bio", "alpaca", "truthfulqa")

    def eval_set(self, name: str) -> EvalSet:
        if name not in self._eval_sets:
            self._eval_sets[name] = self._load_eval_set(name)
        return self._eval_sets[name]

    def _load_eval_set(self, name: str) -> EvalSet:
        w = self.world
        if name == "bio":
            items = [{**it, "topics": [it["name"]], "group": it["tier"],
                      **({"popularity": popularity_bin(it["exposure"])} if "exposure" in it else {})}
                     for it in w.records("eval_bio")]
        elif name == "alpaca":
            items = [{**it, "topics": it["people"], "reference_output": it["response"],
                      "group": self._tier[it["people"][0]] if it["people"] else "skill"}
                     for it in w.records("eval_alpaca")]
        elif name == "truthfulqa":
            return EvalSet(w.records("eval_truthfulqa"), format="world")
        else:
            from flame_bench.core.errors import unknown_name

            raise unknown_name("evaluation set", name, ("bio", "alpaca", "truthfulqa"))
        return EvalSet(items)

    def dataset_reference(self) -> Reference:
        items = self.eval_set("alpaca").items
        return Reference("human", {"kind": "human responses", "world": self.world.path.name},
                         {it["id"]: it["reference_output"] for it in items})

    # -- evaluators ------------------------------------------------------------------------------------------
    @cached_property
    def knowledge(self):
        from flame_bench.world.factscore import world_knowledge

        return world_knowledge(self.world)

    def verifier_check_topics(self) -> list[str]:
        """Every page: the world's verifier is not trained on its knowledge."""
        return sorted(self.knowledge.pages)

    @cached_property
    def fact_classifier(self) -> EntityClassifier:
        return EntityClassifier(self.world)

    def rm_if(self, policy_model: Path | None = None) -> RubricReward:
        return self._rm_if

    @cached_property
    def _rm_if(self) -> RubricReward:
        return RubricReward(self.world, self.rm_if_noise)

    @cached_property
    def rm_fact(self):
        from flame_bench.scoring.factscore import FactScoreReward

        return FactScoreReward(self.factscorer(RM_FACT_PASSAGES, self.rm_fact_noise), name="world_rm_fact")

    def factscorer(self, k: int, verifier_noise: float = 0.0):
        from flame_bench.world.factscore import world_factscorer

        return world_factscorer(self.world, k=k, knowledge=self.knowledge, verifier_noise=verifier_noise)

    def reading_training_people(self) -> list[str]:
        """The pilot study's training entities (the seed-split people), from a world whose base model learned to
        read a context (reading documents, the `pilot` preset); any other world is refused."""
        if not self.world.manifest["preset"].get("reading_people"):
            raise FlameError(f"world {self.world.path} has no reading documents, so its base model cannot use "
                             "retrieved passages (PT_RAG); build one with `flame-bench world build --preset pilot`")
        return [p["name"] for p in self.world.people if p["split"] == "seed"]

    def bio_rag_prompts(self, names: Sequence[str]) -> list[str]:
        """The pilot study's PT_RAG prompts: the top RAG_PASSAGES passages of each person's page (BM25, the bio
        instruction as query), then the question, as the world's reading documents lay them out."""
        from flame_bench.scoring.retrieval import BM25Retriever
        from flame_bench.world import grammar as g

        retrieve = BM25Retriever(k=g.RAG_PASSAGES)
        out = []
        for name in names:
            instruction = g.BIO_INSTRUCTION.format(S=name)
            context = " ".join(p.text for p in retrieve(self.knowledge, instruction, [name]))
            out.append(g.RAG_PROMPT.format(context=context, instruction=instruction))
        return out

    @cached_property
    def pairwise_judge(self):
        from flame_bench.core.registry import JUDGES

        return JUDGES.get(self.judge_name)(self.world.grammar)  # a world judge (WORLD_JUDGES), by its registered name

    # -- models ----------------------------------------------------------------------------------------------
    def check_model(self, model_dir: Path) -> None:
        """The model must encode the world's text without unknown tokens and have embeddings for its vocabulary."""
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(model_dir)
        vocab = json.loads((model_dir / "config.json").read_text()).get("vocab_size")
        if vocab is not None and len(tok) > int(vocab):
            raise FlameError(f"model {model_dir}: tokenizer has {len(tok)} tokens but the model only {vocab} "
                             "embeddings; the tokenizer does not belong to this model")
        w = self.world
        texts = [k["text"] for k in w.knowledge[:50]] + [r["instruction"] for r in w.records("eval_alpaca")[:50]]
        if tok.unk_token is None:
            return
        unknown = [t for text in texts for t in tok.tokenize(text) if t == tok.unk_token]
        if unknown:
            words = [wd for text in texts for wd in text.split() if tok.unk_token in tok.tokenize(wd)]
            raise FlameError(f"model {model_dir} cannot encode this world's text ({len(unknown)} unknown tokens, "
                             f"e.g. {words[0]!r}); use a model of this world ({w.path}) or one with a subword "
                             "tokenizer")


@SOURCE_KINDS.register("fact-world")
def reopen_world(spec: dict[str, Any]) -> WorldSource:
    """A fact-world source from a run record's spec; a record without rm_fact_noise predates the lenient checker as
    the default: it ran the exact one."""
    return WorldSource.open(spec["path"], spec.get("rm_if_noise", 0.0), spec.get("judge", "world_if"),
                            spec.get("rm_fact_noise", 0.0))
