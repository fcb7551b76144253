"""Systems as data: `alignments/systems/<name>.yaml` names a base model, its training stages and, for real data,
where its data and evaluators come from.

    name: baseline                      # must equal the file name
    description: SFT on human responses, then DPO on instruction-following pairs
    paper_row: "SFT + DPO"              # optional: the row of FLAME's Table 3
    base_model: base                    # 'base' = the fact world's pretrained model; else a name, directory or hub id
    stages:
      - recipe: sft                     # a registered recipe (alignments/recipes/)
        config: {learning_rate: 3.0e-4} # optional overrides of the recipe's config (checked: keys, types, ranges)
      - recipe: dpo
        trainer: {gradient_accumulation_steps: 4, bf16: true}  # optional: trl's DPOConfig / SFTConfig keys
        peft: {r: 16, lora_alpha: 32, target_modules: all-linear, save: adapter}  # optional: LoRA

`trainer:` is forwarded to trl's config (unknown keys, and keys the recipe's config owns such as learning_rate, are
errors); `peft:` makes a LoRA `LoraConfig` (DPO's reference is then the adapter-disabled policy), weights saved
merged (`save: merged`, the default) or merged plus the adapter under model/adapter (`save: adapter`).

A system without `data:` trains and evaluates on the fact world. A system with `data:` uses real data: either a
mapping or the path of a YAML file holding one (shared by the systems of a suite), with keys

    name: real-cpu                      # the suite's name (file names of comparisons)
    sft: DATA                           # seed SFT examples with human responses (one spec or a list)
    dpo_prompts: DATA                   # the DPO prompt pool
    knowledge: wiki-leads               # or a FActScore DocDB (.db) or a {title, text} .jsonl
    eval: {alpaca_eval: DATA, bio_entities: DATA, truthfulqa: FILE}
    evaluator: {llm: smollm2, judge: ..., classifier: ..., decomposer: ..., verifier: nli, rm_if: self,
                rm_fact: ..., rm_if_samples: 3, rm_if_temperature: 0.7, rm_if_max_tokens: 160,
                rm_if_readout: false}

where DATA is a path or {path, shape, fields, select} (`flame_bench.real.data`) and each evaluator role names an
LLM: an installed model, a model directory, an OpenAI-compatible URL, `env`, or (`rm_if` only) `self`, the stage's
own input model; the `verifier` may also be `nli` (the offline cross-encoder of `flame-bench verifier train`).
An `evaluator:` mapping may also sit at the top of the system file. Every error names the file and
the line, with near-match suggestions for misspelt keys and names; a key given twice is an error, and so is an
alias of the node that holds it or aliases expanding to more than MAX_ALIAS_VALUES values. `name`, `description`,
`base_model` and `paper_row` are text as written (`name: 0123` is "0123").
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from flame_bench.core import shipped
from flame_bench.core.errors import FlameError, unknown_name
from flame_bench.core.io import sha256_json

SYSTEMS_DIR = shipped.systems_dir()
TOP_KEYS = {"name": True, "description": True, "base_model": True, "stages": True, "paper_row": False,
            "data": False, "evaluator": False, "generation": False, "eval_generation": False}
EVAL_GENERATION_KEYS = {"max_new_tokens": False, "temperature": False, "top_p": False}
STAGE_KEYS = {"recipe": True, "config": False, "trainer": False, "peft": False}
DATA_KEYS = {"name": False, "sft": False, "dpo_prompts": False, "knowledge": False, "eval": False,
             "evaluator": False}
EVAL_KEYS = {"alpaca_eval": False, "bio_entities": False, "truthfulqa": False}
EVALUATOR_KEYS = {"llm": False, "judge": False, "classifier": False, "decomposer": False, "verifier": False,
                  "rm_if": False, "rm_fact": False, "rm_if_samples": False, "rm_if_temperature": False,
                  "rm_if_readout": False, "rm_if_max_tokens": False, "pairwise": False}


@dataclass(frozen=True)
class StageSpec:
    recipe: str
    config: dict[str, Any]


@dataclass(frozen=True)
class SystemSpec:
    name: str
    description: str
    base_model: str
    stages: tuple[StageSpec, ...]
    paper_row: str | None
    path: Path
    data: Any = None  # flame_bench.real.source.RealSpec for real data; None for the fact world
    generation: str | None = None  # this system's generation backend (hf, vllm, a URL); None: the command's
    # how its evaluation outputs are decoded: {max_new_tokens, temperature, top_p}; empty: the default (greedy, 128)
    eval_generation: tuple[tuple[str, Any], ...] = ()

    @property
    def uses_world(self) -> bool:
        return self.data is None


def list_systems(systems_dir: Path = SYSTEMS_DIR) -> list[str]:
    return sorted(p.stem for p in systems_dir.glob("*.yaml"))


def _did_you_mean(word: str, options: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.5)
    return f"; did you mean {close[0]!r}?" if close else ""


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


def _check_keys(node: yaml.Node, allowed: dict[str, bool], where: str, what: str = "a mapping") -> dict[str, yaml.Node]:
    if not isinstance(node, yaml.MappingNode):
        raise FlameError(f"{where}:{_line(node)}: expected {what}")
    keys: dict[str, yaml.Node] = {}
    for k, v in node.value:
        key = k.value
        if key not in allowed:
            raise FlameError(f"{where}:{_line(k)}: unknown key {key!r}{_did_you_mean(key, allowed)} "
                             f"(allowed: {', '.join(allowed)})")
        keys[key] = v
    for key, required in allowed.items():
        if required and key not in keys:
            raise FlameError(f"{where}:{_line(node)}: missing required key {key!r}")
    return keys


def _no_duplicate_keys(node: yaml.Node, where: str) -> None:
    """YAML silently keeps the last of two equal keys; a system file must not say a thing twice."""
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for k, v in node.value:
            if isinstance(k, yaml.ScalarNode):
                if k.value in seen:
                    raise FlameError(f"{where}:{_line(k)}: key {k.value!r} is given twice (first on line "
                                     f"{seen[k.value]}); keep one")
                seen[k.value] = _line(k)
            _no_duplicate_keys(v, where)
    elif isinstance(node, yaml.SequenceNode):
        for v in node.value:
            _no_duplicate_keys(v, where)


MAX_ALIAS_VALUES = 100_000  # values YAML aliases may expand to (a few shared mappings; never an alias bomb)


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing an alias of the node that holds it (a recursive structure) and aliases that
    expand to more than MAX_ALIAS_VALUES values (nested aliases multiply: 9 levels of 9 are 9**9)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.sizes: dict[str, int | None] = {}  # anchor -> values its node expands to; None while it is composed
        self.values = self.aliased = 0  # values composed (an alias counting its node's), and those of aliases

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            size = self.sizes.get(event.anchor, 0)
            if size is None:
                raise yaml.composer.ComposerError(None, None, f"alias *{event.anchor} refers to the node that defines "
                                                  "it, a recursive structure; write the value out", event.start_mark)
            self.values, self.aliased = self.values + size, self.aliased + size
            if self.aliased > MAX_ALIAS_VALUES:
                raise yaml.composer.ComposerError(None, None, f"YAML aliases expand to more than {MAX_ALIAS_VALUES} "
                                                  "values; write the values out", event.start_mark)
            return super().compose_node(parent, index)
        start = self.values
        if event.anchor is not None:
            self.sizes[event.anchor] = None
        node = super().compose_node(parent, index)
        self.values += 1
        if event.anchor is not None:
            self.sizes[event.anchor] = self.values - start
        return node


def _read_yaml(path: Path) -> tuple[yaml.Node, Any]:
    where = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise FlameError(f"{where}: not UTF-8 text (byte {e.start}); save the file as UTF-8") from None
    except OSError as e:
        raise FlameError(f"{where}: cannot read ({e.strerror})") from None
    try:
        root = yaml.compose(text, Loader=_Loader)  # the nodes as written (construction rewrites merge keys)
        data = yaml.load(text, Loader=_Loader)  # a SafeLoader: plain data only
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        raise FlameError(f"{where}{line}: invalid YAML ({getattr(e, 'problem', None) or e})") from None
    if root is not None:
        _no_duplicate_keys(root, where)
    return root, data


def load_system(name_or_path: str, systems_dir: Path = SYSTEMS_DIR,
                known_recipes: Iterable[str] | None = None) -> SystemSpec:
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        path = systems_dir / f"{name_or_path}.yaml"
        if not path.is_file():
            raise unknown_name("system", name_or_path, list_systems(systems_dir))
    elif not path.is_file():
        raise FlameError(f"system file {path} does not exist")
    where = str(path)
    root, data = _read_yaml(path)
    if not isinstance(root, yaml.MappingNode):
        raise FlameError(f"{where}:1: a system file must be a mapping with name, description, base_model, stages")
    nodes = _check_keys(root, TOP_KEYS, where)
    if not isinstance(nodes["name"], yaml.ScalarNode):
        raise FlameError(f"{where}:{_line(nodes['name'])}: name must be text (the file name, {path.stem})")
    name = nodes["name"].value  # as written: `name: 0123` is "0123", not YAML's 83
    if name != path.stem:
        raise FlameError(f"{where}:{_line(nodes['name'])}: name {name!r} differs from the file name {path.stem!r}; "
                         "make them equal")
    stages_node = nodes["stages"]
    if not isinstance(stages_node, yaml.SequenceNode) or not stages_node.value:
        raise FlameError(f"{where}:{_line(stages_node)}: 'stages' must be a non-empty list of stages")
    recipes = list(known_recipes) if known_recipes is not None else None
    stages = []
    for node, raw in zip(stages_node.value, data["stages"], strict=True):
        line = _line(node)
        if not isinstance(node, yaml.MappingNode):
            raise FlameError(f"{where}:{line}: a stage must be a mapping like {{recipe: sft, config: {{...}}}}")
        keys = _check_keys(node, STAGE_KEYS, where)
        key_lines = {k.value: _line(k) for k, _ in node.value}
        recipe = raw["recipe"]
        if recipes is not None and recipe not in recipes:
            raise FlameError(f"{where}:{_line(keys['recipe'])}: unknown recipe {recipe!r}"
                             f"{_did_you_mean(str(recipe), recipes)} (known: {', '.join(sorted(recipes))})")
        config = raw.get("config") or {}
        if not isinstance(config, dict):
            raise FlameError(f"{where}:{_line(keys['config'])}: 'config' must be a mapping")
        config = dict(config)
        for section in ("trainer", "peft"):
            if section in keys:
                config[section] = _stage_section(section, keys[section], raw[section], str(recipe), where,
                                                 key_lines[section])
        config_lines = {str(k.value): f"{where}:{_line(k)}" for k, _ in keys["config"].value
                        } if isinstance(keys.get("config"), yaml.MappingNode) else {}
        _check_config(str(recipe), config, f"{where}:{key_lines.get('config', line)}", config_lines)
        stages.append(StageSpec(str(recipe), config))
    base_model = _text(nodes, "base_model", where)
    source = None
    if "data" in nodes:
        source = _real_spec(nodes["data"], data["data"], nodes.get("evaluator"), data.get("evaluator"), path)
        if base_model == "base":
            raise FlameError(f"{where}:{_line(nodes['base_model'])}: base_model 'base' is the fact world's model, but "
                             "this system names real data; name a real base model (an installed name, a directory or "
                             "a hub id)")
        source.base_model = base_model
    elif "evaluator" in nodes:
        raise FlameError(f"{where}:{_line(nodes['evaluator'])}: 'evaluator' needs 'data' (the fact world's evaluators "
                         "are its own programs); add a data: block or drop evaluator:")
    generation = None
    if "generation" in nodes:
        from flame_bench.engines.generation import check_generation_spec

        try:
            generation = check_generation_spec(str(data["generation"]))
        except FlameError as e:
            raise FlameError(f"{where}:{_line(nodes['generation'])}: {e}") from None
    eval_generation = _eval_generation(nodes["eval_generation"], data["eval_generation"], where) \
        if "eval_generation" in nodes else ()
    return SystemSpec(name=name, description=_text(nodes, "description", where), base_model=base_model,
                      stages=tuple(stages), paper_row=_text(nodes, "paper_row", where) or None, path=path,
                      data=source, generation=generation, eval_generation=eval_generation)


def _eval_generation(node: yaml.Node, raw: Any, where: str) -> tuple[tuple[str, Any], ...]:
    """`eval_generation: {max_new_tokens, temperature, top_p}`, each key checked with its own line."""
    import math

    keys = _check_keys(node, EVAL_GENERATION_KEYS, where, "a mapping of max_new_tokens, temperature, top_p")
    checks = {"max_new_tokens": (lambda v: isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 4096,
                                 "a whole number of tokens in [1, 4096]"),
              "temperature": (lambda v: isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
                              and 0 <= v <= 10, "a number in [0, 10] (0 = greedy)"),
              "top_p": (lambda v: isinstance(v, int | float) and not isinstance(v, bool) and 0 < v <= 1,
                        "a number in (0, 1]")}
    for key, (ok, what) in checks.items():
        if key in keys and not ok(raw[key]):
            raise FlameError(f"{where}:{_line(keys[key])}: eval_generation {key} must be {what}, got {raw[key]!r}")
    return tuple(sorted(raw.items()))


def _text(nodes: dict[str, yaml.Node], key: str, where: str) -> str:
    """A top-level value as written (`base_model: 0123` is "0123"), which must be a scalar; "" when absent or null."""
    node = nodes.get(key)
    if node is not None and not isinstance(node, yaml.ScalarNode):
        kind = "list" if isinstance(node, yaml.SequenceNode) else "mapping"
        raise FlameError(f"{where}:{_line(node)}: '{key}' must be text, got a {kind}")
    return "" if node is None or node.tag == "tag:yaml.org,2002:null" else node.value


def _check_config(recipe: str, config: dict[str, Any], where: str, key_lines: dict[str, str]) -> None:
    """A registered recipe's config (keys, types, ranges: `alignment.stages.make_config`), before any work; an
    error about one key names its own line."""
    from flame_bench.core.registry import RECIPES

    if recipe in RECIPES:
        from flame_bench.alignment.stages import make_config

        make_config(RECIPES.get(recipe), config, where, key_lines)


def _stage_section(section: str, node: yaml.Node, raw: Any, recipe: str, where: str, line: int) -> dict[str, Any]:
    """A stage's `trainer:` (trl's SFTConfig/DPOConfig keys) or `peft:` (LoraConfig keys, plus `save`) mapping,
    checked key by key with each key's line, then as a whole (values) at the section's `line`."""
    from flame_bench.core.registry import RECIPES

    if not isinstance(node, yaml.MappingNode) or not isinstance(raw, dict):
        raise FlameError(f"{where}:{_line(node)}: '{section}' must be a mapping")
    kind = RECIPES.get(recipe).trainer if recipe in RECIPES else ""
    if not kind:
        raise FlameError(f"{where}:{_line(node)}: recipe {recipe!r} does not train with trl; drop '{section}'")
    from flame_bench.alignment.training import check_trainer, lora_config, peft_key_problem, trainer_key_problem

    for k, _ in node.value:
        problem = trainer_key_problem(kind, k.value) if section == "trainer" else peft_key_problem(k.value)
        if problem:
            raise FlameError(f"{where}:{_line(k)}: {problem}")
    try:
        check_trainer(kind, raw) if section == "trainer" else lora_config(raw)
    except ValueError as e:
        raise FlameError(f"{where}:{line}: {e}") from None
    return dict(raw)


def _data_list(node: yaml.Node, raw: Any, base: Path, where: str) -> list:
    from flame_bench.real.data import make_spec

    entries = list(zip(node.value, raw, strict=True)) if isinstance(node, yaml.SequenceNode) else [(node, raw)]
    return [make_spec(r, base, f"{where}:{_line(n)}") for n, r in entries]


def _real_spec(node: yaml.Node, raw: Any, evaluator_node: yaml.Node | None, evaluator_raw: Any, system_path: Path):
    """The RealSpec of a `data:` block (inline, or a YAML file of its own)."""
    from flame_bench.real.data import resolve_path
    from flame_bench.real.source import RealSpec

    where, base = str(system_path), system_path.parent
    if isinstance(node, yaml.ScalarNode):  # data: path/to/suite.yaml
        data_path = resolve_path(str(raw), base)
        if not data_path.is_file():
            raise FlameError(f"{where}:{_line(node)}: data file {data_path} does not exist")
        node, raw = _read_yaml(data_path)
        where, base = str(data_path), data_path.parent
        if not isinstance(raw, dict):
            raise FlameError(f"{where}:1: a data file must be a mapping with sft, dpo_prompts, knowledge, eval, ...")
    keys = _check_keys(node, DATA_KEYS, where, "a data mapping (sft, dpo_prompts, knowledge, eval, evaluator)")
    spec = RealSpec(name=str(raw.get("name") or system_path.stem))
    for key in ("sft", "dpo_prompts"):
        if key in keys:
            setattr(spec, key, _data_list(keys[key], raw[key], base, where))
    if "knowledge" in keys:
        ref = str(raw["knowledge"])
        from flame_bench.real.knowledge import NAMED_SOURCES

        spec.knowledge = ref if ref in NAMED_SOURCES else str(resolve_path(ref, base))
    if "eval" in keys:
        ev = _check_keys(keys["eval"], EVAL_KEYS, where, "a mapping of alpaca_eval, bio_entities, truthfulqa")
        for key in ("alpaca_eval", "bio_entities"):
            if key in ev:
                setattr(spec, key, _data_list(ev[key], raw["eval"][key], base, where))
        if "truthfulqa" in ev:
            spec.truthfulqa = str(resolve_path(str(raw["eval"]["truthfulqa"]), base))
    for enode, eraw, ewhere in ((keys.get("evaluator"), raw.get("evaluator"), where),
                                (evaluator_node, evaluator_raw, str(system_path))):
        if enode is not None:
            _evaluator(enode, eraw, spec, ewhere)  # the system file's own evaluator: wins over the data file's
    return spec


def _evaluator(node: yaml.Node, raw: Any, spec, where: str) -> None:
    from flame_bench.real.nli import is_nli_spec

    keys = _check_keys(node, EVALUATOR_KEYS, where, "a mapping of evaluator roles")
    for key, value in raw.items():
        line = _line(keys[key])
        if key in ("rm_if_samples", "rm_if_max_tokens"):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise FlameError(f"{where}:{line}: {key} must be a positive integer, got {value!r}")
            setattr(spec, key, value)
        elif key == "rm_if_readout":
            if not isinstance(value, bool):
                raise FlameError(f"{where}:{line}: rm_if_readout must be true or false, got {value!r}")
            spec.rm_if_readout = value
        elif key == "rm_if_temperature":
            if not isinstance(value, int | float) or isinstance(value, bool) or not 0 < value <= 2:
                raise FlameError(f"{where}:{line}: rm_if_temperature must be in (0, 2] (RM_IF is sampled), "
                                 f"got {value!r}")
            spec.rm_if_temperature = float(value)
        elif key == "pairwise":
            try:
                from flame_bench.real.alpaca_eval_judge import check_pairwise_spec

                spec.pairwise = check_pairwise_spec(value)
            except FlameError as e:
                raise FlameError(f"{where}:{line}: {e}") from None
        elif not isinstance(value, str) or not value.strip():
            raise FlameError(f"{where}:{line}: evaluator {key} must name an LLM (a model, a directory or a URL)")
        elif value == "self" and key != "rm_if":
            raise FlameError(f"{where}:{line}: only rm_if can be 'self' (the stage's own model judges itself, as in "
                             "the paper); name an LLM for " + key)
        elif is_nli_spec(value) and key != "verifier":
            raise FlameError(f"{where}:{line}: only the verifier can be 'nli' (the offline cross-encoder); name an "
                             "LLM for " + key)
        elif key == "llm":
            spec.llm = value
            spec.origins["llm"] = f"llm: at {where}:{line}"
        else:
            spec.roles[key] = value
            spec.origins[key] = f"{key}: at {where}:{line}"


def system_hash(spec: SystemSpec, extra: dict[str, Any] | None = None) -> str:
    """Identity of what a system trains (stages and base model), independent of its prose."""
    return sha256_json({"base_model": spec.base_model, "stages": [[s.recipe, s.config] for s in spec.stages],
                        "extra": extra or {}})
