"""Systems as data: `alignments/systems/<name>.yaml` names a base model and its training stages.

    name: baseline                      # must equal the file name
    description: SFT on human responses, then DPO on instruction-following pairs
    paper_row: "SFT + DPO"              # optional: the row of FLAME's Table 3
    base_model: base                    # 'base' = the world's pretrained model, or a model directory
    stages:
      - recipe: sft                     # a registered recipe (alignments/recipes/)
        config: {learning_rate: 3.0e-4} # optional overrides of the recipe's config
      - recipe: dpo

Every error names the file and the line, with near-match suggestions for misspelt keys and names.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from flame_bench.errors import FlameError, unknown_name
from flame_bench.io import sha256_json
from flame_bench.registry import REPO_ROOT

SYSTEMS_DIR = REPO_ROOT / "alignments" / "systems"
TOP_KEYS = {"name": True, "description": True, "base_model": True, "stages": True, "paper_row": False}
STAGE_KEYS = {"recipe": True, "config": False}


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


def list_systems(systems_dir: Path = SYSTEMS_DIR) -> list[str]:
    return sorted(p.stem for p in systems_dir.glob("*.yaml"))


def _did_you_mean(word: str, options: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.5)
    return f"; did you mean {close[0]!r}?" if close else ""


def _check_keys(node: yaml.MappingNode, allowed: dict[str, bool], where: str) -> dict[str, yaml.Node]:
    keys: dict[str, yaml.Node] = {}
    for k, v in node.value:
        key = k.value
        if key not in allowed:
            raise FlameError(f"{where}:{k.start_mark.line + 1}: unknown key {key!r}{_did_you_mean(key, allowed)} "
                             f"(allowed: {', '.join(allowed)})")
        keys[key] = v
    for key, required in allowed.items():
        if required and key not in keys:
            raise FlameError(f"{where}:{node.start_mark.line + 1}: missing required key {key!r}")
    return keys


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
    try:
        root = yaml.compose(path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        raise FlameError(f"{where}{line}: invalid YAML ({getattr(e, 'problem', None) or e})") from None
    if not isinstance(root, yaml.MappingNode):
        raise FlameError(f"{where}:1: a system file must be a mapping with name, description, base_model, stages")
    nodes = _check_keys(root, TOP_KEYS, where)
    if data["name"] != path.stem:
        raise FlameError(f"{where}:{nodes['name'].start_mark.line + 1}: name {data['name']!r} differs from the file "
                         f"name {path.stem!r}; make them equal")
    stages_node = nodes["stages"]
    if not isinstance(stages_node, yaml.SequenceNode) or not stages_node.value:
        raise FlameError(f"{where}:{stages_node.start_mark.line + 1}: 'stages' must be a non-empty list of stages")
    recipes = list(known_recipes) if known_recipes is not None else None
    stages = []
    for node, raw in zip(stages_node.value, data["stages"], strict=True):
        line = node.start_mark.line + 1
        if not isinstance(node, yaml.MappingNode):
            raise FlameError(f"{where}:{line}: a stage must be a mapping like {{recipe: sft, config: {{...}}}}")
        keys = _check_keys(node, STAGE_KEYS, where)
        recipe = raw["recipe"]
        if recipes is not None and recipe not in recipes:
            raise FlameError(f"{where}:{keys['recipe'].start_mark.line + 1}: unknown recipe {recipe!r}"
                             f"{_did_you_mean(str(recipe), recipes)} (known: {', '.join(sorted(recipes))})")
        config = raw.get("config") or {}
        if not isinstance(config, dict):
            raise FlameError(f"{where}:{keys['config'].start_mark.line + 1}: 'config' must be a mapping")
        stages.append(StageSpec(str(recipe), dict(config)))
    return SystemSpec(name=data["name"], description=str(data["description"]), base_model=str(data["base_model"]),
                      stages=tuple(stages), paper_row=data.get("paper_row"), path=path)


def system_hash(spec: SystemSpec, extra: dict[str, Any] | None = None) -> str:
    """Identity of what a system trains (stages and base model), independent of its prose."""
    return sha256_json({"base_model": spec.base_model, "stages": [[s.recipe, s.config] for s in spec.stages],
                        "extra": extra or {}})
