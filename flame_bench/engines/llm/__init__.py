"""LLM components of the real path and the backends they run on.

A *backend* turns prompts into text or next-token choice scores. Two exist: a local HF causal LM
(`flame_bench.engines.llm.backends.HFBackend`, batched) and any OpenAI-compatible HTTP endpoint
(`flame_bench.engines.llm.client.OpenAIBackend`: retries, timeouts, a bounded worker pool). Both are wrapped by a
cache so a repeated request is never sent twice and a failed one is never stored.

A prompt is either raw text (completion endpoints, base models) or a chat: a list of
`{"role": ..., "content": ...}` messages (chat templates, /v1/chat/completions).

The *components* (`flame_bench.real.components`) sit behind the same interfaces as the fact world's: an atomic-fact
decomposer and a True/False verifier for FActScore, the paper's fact-based instruction classifier, the paper's
additive 5-point judge and an AlpacaEval-style pairwise judge.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, Union, runtime_checkable

Message = dict[str, str]
Prompt = Union[str, list[Message]]  # noqa: UP007 - also used at runtime on 3.10


@runtime_checkable
class LLMBackend(Protocol):
    """What every LLM component needs from a model."""

    @property
    def identity(self) -> dict[str, Any]:
        """Stable description for cache keys and run records (kind, model, hash or base URL); never a secret."""
        ...

    def complete(self, prompts: Sequence[Prompt], max_tokens: int = 128, temperature: float = 0.0,
                 stop: Sequence[str] = (), seed: int | None = None) -> list[str]:
        """One completion per prompt (greedy when temperature == 0), with `stop` strings cut off. `seed` makes a
        sampled call repeatable and tells repeated samples of one prompt apart (it is part of the cache key)."""
        ...

    def choice_logprobs(self, prompts: Sequence[Prompt], choices: Sequence[str]) -> list[dict[str, float]]:
        """For each prompt, the log-probability that the NEXT token starts each of `choices` (e.g. "True",
        "False"); a choice the backend cannot see gets `-inf`. Used by the verifier to decide True vs False."""
        ...


def cut_at_stop(text: str, stop: Sequence[str]) -> str:
    """`text` up to its first stop string, stripped."""
    cuts = [text.index(s) for s in stop if s and s in text]
    return (text[: min(cuts)] if cuts else text).strip()
