"""AlpacaEval's own annotators as pairwise judges: `--judge alpaca_eval:<config>`.

The annotator config (prompt template, decoding settings, reply parser) is read from the installed `alpaca-eval`
package, never copied here. Its prompt goes to any evaluator backend (an OpenAI-compatible endpoint or a local model)
through flame-bench's cached client, and the reply is parsed by the config's own parser function from
`alpaca_eval.completion_parsers`:

- log-probability configs (`weighted_alpaca_eval_gpt4_turbo`, ...): the first reply token's top log-probabilities
  (as many as the config asks for) go to alpaca_eval's `logprob_parser`, which gives the preference
  2 - P(m) / (P(m) + P(M)), a number in [1, 2];
- text configs (regex / ranking parsers, e.g. `alpaca_eval_gpt4`) and function-calling configs
  (`alpaca_eval_gpt4_turbo_fn`, FLAME's judge): the reply, or its tool call's arguments, through the config's parser.
  Function calling needs an endpoint that supports `tools` (vLLM with a tool parser, OpenAI).

Which output the judge sees first is flame-bench's seeded choice, flipped back afterwards, as for every judge
(`flame_bench.scoring.winrate`). The model named in the config (e.g. gpt-4-1106-preview) is what AlpacaEval's
published numbers used; what actually answers is the backend, and the judge's identity names both.
"""

from __future__ import annotations

import hashlib
import math
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar

from flame_bench.core.errors import FlameError, unknown_name
from flame_bench.engines.llm import LLMBackend

PREFIX = "alpaca_eval:"


def is_alpaca_eval_spec(spec: str | None) -> bool:
    return bool(spec) and spec.startswith(PREFIX)


def _package() -> Any:
    try:
        import alpaca_eval.completion_parsers
        import alpaca_eval.constants
    except ImportError as e:
        raise FlameError(f"--judge alpaca_eval:... needs the alpaca-eval package ({e}); `pip install alpaca-eval` "
                         "(and setuptools<81, which it imports)") from None
    return alpaca_eval


def configs_dir() -> Path:
    return Path(_package().constants.EVALUATORS_CONFIG_DIR)


def annotator_config(name: str) -> dict[str, Any]:
    """The named annotator's config from the installed package (an unknown name lists near matches)."""
    import yaml

    root = configs_dir()
    path = root / name / "configs.yaml"
    if not path.is_file():
        names = sorted(p.parent.name for p in root.glob("*/configs.yaml"))
        raise unknown_name("alpaca_eval annotator config", name, names)
    config = yaml.safe_load(path.read_text(encoding="utf-8"))[name]
    if "prompt_template" not in config or "fn_completion_parser" not in config:
        raise FlameError(f"alpaca_eval config {name} has no prompt_template or fn_completion_parser; pick another")
    return config


class AlpacaEvalJudge:
    """One AlpacaEval annotator config as a `PairwiseJudge` on `backend` (see the module docstring)."""

    uses_llm: ClassVar[bool] = True

    def __init__(self, backend: LLMBackend, config_name: str):
        self.backend, self.config_name = backend, config_name
        self.config = annotator_config(config_name)
        self.template = (configs_dir() / self.config["prompt_template"]).read_text(encoding="utf-8")
        self.kwargs: dict[str, Any] = dict(self.config.get("completions_kwargs") or {})
        self.parser_name = self.config["fn_completion_parser"]
        self.parser_kwargs: dict[str, Any] = dict(self.config.get("completion_parser_kwargs") or {})
        if self.config.get("batch_size", 1) != 1:
            raise FlameError(f"alpaca_eval config {config_name} judges {self.config['batch_size']} pairs per prompt; "
                             "only one-pair configs are supported")
        self.name = f"{PREFIX}{config_name}"
        self.prompt_version = f"{PREFIX}{config_name}@{hashlib.sha256(self.template.encode()).hexdigest()[:12]}"
        self.version = f"alpaca_eval=={_package().__version__}"

    @cached_property
    def identity(self) -> dict[str, Any]:
        return {"config": self.config_name, "config_model": self.kwargs.get("model_name"),
                "parser": self.parser_name, "backend": self.backend.identity}

    def prompt(self, instruction: str, output_1: str, output_2: str) -> list[dict[str, str]]:
        """The config's template filled in (its own placeholders) and split into chat messages as alpaca_eval
        does."""
        from alpaca_eval.utils import prompt_to_chatml

        text = self.template.replace("{instruction}", instruction).replace("{output_1}", output_1)
        return prompt_to_chatml(text.replace("{output_2}", output_2))

    def compare_many(self, items: list[tuple[dict[str, Any], str, str]]) -> list[str]:
        """One reply per (record, output_1, output_2), ending in "Preference: p" (p in [1, 2]) or "unparsable"."""
        parser = getattr(_package().completion_parsers, self.parser_name)
        prompts = [self.prompt(rec["instruction"], o1, o2) for rec, o1, o2 in items]
        replies = []
        if self.kwargs.get("logprobs"):
            k = int(self.kwargs.get("top_logprobs") or 5)
            for top in self.backend.top_logprobs_many(prompts, k):
                content = [{"token": top[0][0], "logprob": top[0][1],
                            "top_logprobs": [{"token": t, "logprob": v} for t, v in top]}] if top else []
                shown = ", ".join(f"{t!r}: {v:.3f}" for t, v in top[:k])
                replies.append(self._reply(parser, {"logprobs": {"content": content}}, f"top log-probs {{{shown}}}"))
            return replies
        params = {k: v for k, v in self.kwargs.items() if k in ("tools", "tool_choice")}
        if params and not getattr(self.backend, "supports_tools", False):
            raise FlameError(f"alpaca_eval config {self.config_name} needs function calling (tools); use an "
                             "OpenAI-compatible endpoint that supports tools, or a weighted_* (log-probability) config")
        texts = (self.backend.complete_with_tools(prompts, max_tokens=int(self.kwargs.get("max_tokens") or 100),
                                                  **params) if params else
                 self.backend.complete(prompts, max_tokens=int(self.kwargs.get("max_tokens") or 100),
                                       temperature=float(self.kwargs.get("temperature") or 0.0)))
        return [self._reply(parser, text, text) for text in texts]

    def _reply(self, parser: Any, completion: Any, shown: str) -> str:
        try:
            values = parser(completion, **self.parser_kwargs)
            value = float(values[0]) if isinstance(values, list | tuple) else float(values)
        except Exception as e:  # alpaca_eval's parsers raise on replies they cannot read
            return f"{shown} -> unparsable by alpaca_eval's {self.parser_name} ({type(e).__name__})"
        if not (math.isfinite(value) and 1.0 <= value <= 2.0):
            return f"{shown} -> unparsable by alpaca_eval's {self.parser_name} ({value!r})"
        return f"{shown} -> Preference: {value:.6f}"

    def compare(self, record: dict[str, Any], output_1: str, output_2: str) -> str:
        return self.compare_many([(record, output_1, output_2)])[0]


def check_pairwise_spec(value: Any) -> str:
    """The win-rate judge protocol: `llm_pairwise` or `alpaca_eval:<config>` (the config must exist)."""
    if value == "llm_pairwise":
        return value
    if isinstance(value, str) and value.startswith(PREFIX):
        annotator_config(value[len(PREFIX):])
        return value
    raise FlameError(f"pairwise judge must be llm_pairwise or alpaca_eval:<config> (e.g. "
                     f"alpaca_eval:weighted_alpaca_eval_gpt4_turbo), got {value!r}")
