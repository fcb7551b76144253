"""A local HF causal LM as an `LLMBackend`: batched, left-padded, greedy by default, safetensors only."""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

from flame_bench.generation import cut_at_stop
from flame_bench.llm import Prompt


class HFBackend:
    """A local causal LM directory (loaded on first use). Chats go through the tokenizer's chat template."""

    def __init__(self, model_dir: str | Path, batch_size: int = 16, name: str | None = None, quiet: bool = True):
        self.model_dir = Path(model_dir)
        self.batch_size = batch_size
        self.name = name or self.model_dir.name
        self.quiet = quiet  # False: a progress bar per call that takes more than one batch

    @cached_property
    def identity(self) -> dict[str, Any]:
        from flame_bench.models import model_sha256

        return {"kind": "hf", "model": self.name, "sha256": model_sha256(self.model_dir)}

    def __repr__(self) -> str:
        return f"HFBackend({str(self.model_dir)!r}, batch_size={self.batch_size}, name={self.name!r})"

    @cached_property
    def _loaded(self) -> tuple[Any, Any]:
        from flame_bench.models import load_model

        model, tok = load_model(self.model_dir)  # pads with eos when the tokenizer has no pad token
        tok.padding_side = "left"
        return model, tok

    def render(self, prompt: Prompt) -> tuple[str, bool]:
        """(text, add_special_tokens): chats through the chat template; a trailing assistant message is
        continued (a pre-filled answer), not closed."""
        if isinstance(prompt, str):
            return prompt, True
        tok = self._loaded[1]
        prefill = prompt[-1]["role"] == "assistant"
        text = tok.apply_chat_template(prompt, tokenize=False, add_generation_prompt=not prefill,
                                       continue_final_message=prefill)
        return text, False

    def _batches(self, prompts: Sequence[Prompt], what: str = "LLM"):
        from flame_bench.ui import progress

        rendered = [self.render(p) for p in prompts]
        with progress(self.quiet or len(rendered) <= self.batch_size, metrics=False) as bar:
            task = bar.add_task(f"{what} ({self.name})", total=len(rendered))
            for i in range(0, len(rendered), self.batch_size):
                yield rendered[i:i + self.batch_size]
                bar.update(task, advance=len(rendered[i:i + self.batch_size]))

    def _encode(self, chunk: list[tuple[str, bool]]):
        model, tok = self._loaded
        # prompts of one kind share add_special_tokens; a mixed batch is split by kind
        special = chunk[0][1]
        enc = tok([t for t, _ in chunk], return_tensors="pt", padding=True, add_special_tokens=special)
        return enc.to(next(model.parameters()).device)

    def complete(self, prompts: Sequence[Prompt], max_tokens: int = 128, temperature: float = 0.0,
                 stop: Sequence[str] = (), seed: int | None = None) -> list[str]:
        import torch

        model, tok = self._loaded
        if temperature > 0 and seed is not None:
            torch.manual_seed(seed)
        out: list[str] = []
        kwargs: dict[str, Any] = dict(max_new_tokens=max_tokens, pad_token_id=tok.pad_token_id,
                                      do_sample=temperature > 0)
        if temperature > 0:
            kwargs["temperature"] = temperature
        if stop:  # each sequence ends at its first stop string, so a batch ends when all have stopped
            kwargs.update(stop_strings=[s for s in stop if s], tokenizer=tok)
        with torch.inference_mode():
            for chunk in self._batches(prompts, "LLM generating"):
                for group in _split_by_kind(chunk):
                    enc = self._encode(group)
                    try:
                        ids = model.generate(**enc, **kwargs)
                    except ValueError:  # stop strings unsupported by this tokenizer (e.g. word-level): cut after
                        kwargs.pop("stop_strings", None)
                        kwargs.pop("tokenizer", None)
                        ids = model.generate(**enc, **kwargs)
                    texts = tok.batch_decode(ids[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
                    out += [cut_at_stop(t, stop) for t in texts]
        return out

    @cached_property
    def _takes_position_ids(self) -> bool:
        import inspect

        return "position_ids" in inspect.signature(self._loaded[0].forward).parameters

    def next_token_logprobs(self, prompts: Sequence[Prompt]):
        """Log-probabilities of the next token over the whole vocabulary, one row per prompt (a torch tensor)."""
        import torch

        model, _ = self._loaded
        rows = []
        with torch.inference_mode():
            for chunk in self._batches(prompts, "LLM scoring"):
                for group in _split_by_kind(chunk):
                    enc = self._encode(group)
                    if self._takes_position_ids:  # left padding: real tokens start at position 0, as unbatched
                        enc["position_ids"] = (enc["attention_mask"].long().cumsum(-1) - 1).clamp(min=0)
                    logits = model(**enc).logits[:, -1, :].float()  # left padding: the last position is real
                    rows.append(torch.log_softmax(logits, dim=-1))
        return torch.cat(rows) if rows else torch.empty(0)

    def top_logprobs(self, prompt: Prompt, k: int = 20) -> list[tuple[str, float]]:
        """The k most likely next tokens (decoded text, log-probability): what an OpenAI endpoint returns."""
        import torch

        tok = self._loaded[1]
        values, ids = torch.topk(self.next_token_logprobs([prompt])[0], k)
        return [(tok.decode([int(i)]), float(v)) for v, i in zip(values, ids, strict=True)]

    def choice_logprobs(self, prompts: Sequence[Prompt], choices: Sequence[str]) -> list[dict[str, float]]:
        _, tok = self._loaded
        first_ids = {c: {ids[0] for ids in (tok(c, add_special_tokens=False)["input_ids"],
                                            tok(" " + c, add_special_tokens=False)["input_ids"]) if ids}
                     for c in choices}
        return [{c: max((row[i].item() for i in ids), default=-math.inf) for c, ids in first_ids.items()}
                for row in self.next_token_logprobs(prompts)]


def _split_by_kind(chunk: list[tuple[str, bool]]) -> list[list[tuple[str, bool]]]:
    groups: list[list[tuple[str, bool]]] = []
    for item in chunk:
        if groups and groups[-1][0][1] == item[1]:
            groups[-1].append(item)
        else:
            groups.append([item])
    return groups
