"""A local HF causal LM as an `LLMBackend`: batched, left-padded, greedy by default, safetensors only."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from functools import cached_property
from itertools import pairwise
from pathlib import Path
from typing import Any

from flame_bench.engines.llm import Prompt, cut_at_stop

# Part of every cache key: bump it when what a call returns changes (v2: whitespace-only first tokens no longer
# stand for a choice in choice_logprobs).
HF_BACKEND_VERSION = "hf-v2"


class HFBackend:
    """A local causal LM directory (loaded on first use). Chats go through the tokenizer's chat template."""

    def __init__(self, model_dir: str | Path, batch_size: int = 16, name: str | None = None, quiet: bool = True,
                 share_prefixes: bool = True):
        self.model_dir = Path(model_dir)
        self.batch_size = batch_size
        self.share_prefixes = share_prefixes  # False: every prompt in full (the check `flame-bench bench` makes)
        self.cache_chunk = max(batch_size, 64)  # what the cache commits at once (shared prefixes group within it)
        self.name = name or self.model_dir.name
        self.quiet = quiet  # False: a progress bar per call that takes more than one batch

    @cached_property
    def identity(self) -> dict[str, Any]:
        from flame_bench.engines.models import model_sha256

        return {"kind": "hf", "model": self.name, "sha256": model_sha256(self.model_dir), "version": HF_BACKEND_VERSION}

    def __repr__(self) -> str:
        return f"HFBackend({str(self.model_dir)!r}, batch_size={self.batch_size}, name={self.name!r})"

    @cached_property
    def _loaded(self) -> tuple[Any, Any]:
        from flame_bench.engines.models import load_model

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
        from flame_bench.core.ui import progress

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
    def _forward_params(self) -> frozenset[str]:
        return forward_parameters(self._loaded[0])

    @property
    def _takes_position_ids(self) -> bool:
        return "position_ids" in self._forward_params

    def _tokenize(self, prompts: Sequence[Prompt]) -> list[list[int]]:
        """Token ids of each rendered prompt, as `_encode` would give them (without the padding)."""
        tok = self._loaded[1]
        rendered = [self.render(p) for p in prompts]
        ids: list[list[int]] = [[] for _ in rendered]
        for special in {s for _, s in rendered}:  # one tokenizer call per kind
            which = [i for i, (_, s) in enumerate(rendered) if s == special]
            enc = tok([rendered[i][0] for i in which], add_special_tokens=special)["input_ids"]
            for i, row in zip(which, enc, strict=True):
                ids[i] = list(row)
        return ids

    def next_token_logprobs(self, prompts: Sequence[Prompt]):
        """Log-probabilities of the next token over the whole vocabulary, one row per prompt (a torch tensor).

        Prompts that share a long token prefix (FActScore's passages before each fact) are scored from one forward
        pass over that prefix plus their own suffixes on its KV cache, exactly what full passes would give.
        """
        import torch

        from flame_bench.core.ui import progress

        ids = self._tokenize(prompts)
        groups, plain = shared_prefix_groups(ids) if self.share_prefixes else ([], list(range(len(ids))))
        rows: list[Any] = [None] * len(ids)
        with torch.inference_mode(), progress(self.quiet or len(ids) <= self.batch_size, metrics=False) as bar:
            task = bar.add_task(f"LLM scoring ({self.name})", total=len(ids))
            for i in range(0, len(plain), self.batch_size):
                chunk = plain[i:i + self.batch_size]
                for k, row in zip(chunk, self._score_padded([ids[k] for k in chunk]), strict=True):
                    rows[k] = row
                bar.update(task, advance=len(chunk))
            for members, shared in groups:
                for chunk, logp in self._score_shared([ids[k] for k in members], shared, members):
                    for k, row in zip(chunk, logp, strict=True):
                        rows[k] = row
                    bar.update(task, advance=len(chunk))
        return torch.stack(rows) if rows else torch.empty(0)

    def _score_padded(self, seqs: list[list[int]]) -> Any:
        """Next-token log-probabilities of whole prompts, left-padded into one batch."""
        import torch

        model, tok = self._loaded
        width = max(map(len, seqs))
        input_ids = torch.full((len(seqs), width), tok.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for r, s in enumerate(seqs):
            input_ids[r, width - len(s):] = torch.tensor(s, dtype=torch.long)
            mask[r, width - len(s):] = 1
        device = next(model.parameters()).device
        enc: dict[str, Any] = {"input_ids": input_ids.to(device), "attention_mask": mask.to(device)}
        if self._takes_position_ids:  # left padding: real tokens start at position 0, as unbatched
            enc["position_ids"] = (enc["attention_mask"].cumsum(-1) - 1).clamp(min=0)
        if "logits_to_keep" in self._forward_params:  # only the last position's logits are needed
            enc["logits_to_keep"] = 1
        logits = model(**enc).logits[:, -1, :].float()  # left padding: the last position is real
        return torch.log_softmax(logits, dim=-1)

    def _score_shared(self, seqs: list[list[int]], shared: int, keys: list[int]
                      ) -> Iterator[tuple[list[int], Any]]:
        """Yield (keys of a batch, its next-token log-probabilities) for prompts whose first `shared` tokens are
        equal: one pass over that prefix (batch 1), then the suffixes right-padded on views of its KV cache."""
        import torch

        model, tok = self._loaded
        device = next(model.parameters()).device
        keep_logits = "logits_to_keep" in self._forward_params
        cache = prefix_kv_cache(model, seqs[0][:shared], self._forward_params, device)
        order = sorted(range(len(seqs)), key=lambda r: len(seqs[r]))  # similar lengths in a batch: little padding
        for i in range(0, len(order), self.batch_size):
            batch = order[i:i + self.batch_size]
            lens = torch.tensor([len(seqs[r]) - shared for r in batch], device=device)
            width = int(lens.max())
            input_ids = torch.full((len(batch), width), tok.pad_token_id, dtype=torch.long)
            for row, r in enumerate(batch):
                input_ids[row, :len(seqs[r]) - shared] = torch.tensor(seqs[r][shared:], dtype=torch.long)
            suffix_mask = (torch.arange(width, device=device)[None] < lens[:, None]).long()
            mask = torch.cat([torch.ones((len(batch), shared), dtype=torch.long, device=device), suffix_mask], 1)
            enc: dict[str, Any] = {"input_ids": input_ids.to(device), "attention_mask": mask,
                                   "past_key_values": _batch_cache(cache, len(batch)), "use_cache": True}
            if self._takes_position_ids:  # right padding: positions continue after the prefix
                enc["position_ids"] = (shared + torch.arange(width, device=device))[None].expand(len(batch), -1)
            kept = width - int(lens.min()) + 1 if keep_logits else width  # logits from each row's last token on
            if keep_logits:
                enc["logits_to_keep"] = kept
            logits = model(**enc).logits[torch.arange(len(batch), device=device), lens - 1 - (width - kept)].float()
            yield [keys[r] for r in batch], torch.log_softmax(logits, dim=-1)

    def top_logprobs(self, prompt: Prompt, k: int = 20) -> list[tuple[str, float]]:
        """The k most likely next tokens (decoded text, log-probability): what an OpenAI endpoint returns."""
        return self.top_logprobs_many([prompt], k)[0]

    def top_logprobs_many(self, prompts: Sequence[Prompt], k: int = 20) -> list[list[tuple[str, float]]]:
        """`top_logprobs` of every prompt, in batches."""
        import torch

        tok = self._loaded[1]
        out = []
        for row in self.next_token_logprobs(prompts):
            values, ids = torch.topk(row, k)
            out.append([(tok.decode([int(i)]), float(v)) for v, i in zip(values, ids, strict=True)])
        return out

    def choice_logprobs(self, prompts: Sequence[Prompt], choices: Sequence[str]) -> list[dict[str, float]]:
        """The best next-token log-probability among the first tokens of each choice (with and without a leading
        space). A first token that is only whitespace (" " before "3" in tokenizers that split digits) says nothing
        about the choice, so it never counts: the same rule as the OpenAI client's (a stripped, non-empty prefix)."""
        first_ids = choice_first_ids(self._loaded[1], choices)
        return [{c: max((row[i].item() for i in ids), default=-math.inf) for c, ids in first_ids.items()}
                for row in self.next_token_logprobs(prompts)]


# Measured with SmolLM2-135M on 2 CPU cores: a group pays off once it saves ~100 prompt tokens.
MIN_SHARED = 16  # the shortest shared token prefix worth a pass of its own
GROUP_COST = 96  # what a group's extra forward passes and cache views cost, in prompt tokens
MAX_GROUP = 256  # a group's size bound (keeps the plan linear); larger groups would save little more


def shared_prefix_groups(ids: Sequence[Sequence[int]], min_shared: int = MIN_SHARED
                         ) -> tuple[list[tuple[list[int], int]], list[int]]:
    """(groups, plain): groups of prompt indices with the length of the token prefix they share (at least
    `min_shared`, leaving each prompt at least one token of its own), and the other indices in order.

    Groups are runs of the prompts sorted by token ids, chosen to run the fewest tokens through the model (each
    group's prefix once, then every suffix); the full tokenization is split, so scores stay exact.
    """
    order = sorted(range(len(ids)), key=lambda i: list(ids[i]))
    lcp = [_common_prefix(ids[a], ids[b]) for a, b in pairwise(order)]
    n = len(order)
    best = [0] * (n + 1)  # best[j]: the fewest tokens for order[:j]
    last = [(0, 0)] * (n + 1)  # last[j]: (start, shared length; 0: one plain prompt) of the last part of order[:j]
    for j in range(1, n + 1):
        total = shortest = len(ids[order[j - 1]])
        best[j], last[j] = best[j - 1] + total, (j - 1, 0)
        common = total
        for i in range(j - 2, max(j - MAX_GROUP, 0) - 1, -1):  # the group order[i:j]
            size = len(ids[order[i]])
            common, shortest, total = min(common, lcp[i]), min(shortest, size), total + size
            shared = min(common, shortest - 1)
            if shared < min_shared:  # only shrinks further back
                break
            cost = best[i] + total - (j - i - 1) * shared + GROUP_COST
            if cost < best[j]:
                best[j], last[j] = cost, (i, shared)
    groups, plain, j = [], [], n
    while j:
        i, shared = last[j]
        if shared:
            groups.append((order[i:j], shared))
        else:
            plain.append(order[i])
        j = i
    return groups[::-1], sorted(plain)


def forward_parameters(model: Any) -> frozenset[str]:
    """The keyword arguments a model's forward accepts (position_ids, logits_to_keep, ...)."""
    import inspect

    return frozenset(inspect.signature(model.forward).parameters)


def prefix_kv_cache(model: Any, ids: Sequence[int], params: frozenset[str], device: Any) -> Any:
    """The KV cache of one token prefix (batch 1, positions from 0; only the last position's logits computed where
    the model allows it), for scoring many continuations from it (`_batch_cache`)."""
    import torch

    x = torch.tensor([list(ids)], dtype=torch.long, device=device)
    extra: dict[str, Any] = {"logits_to_keep": 1} if "logits_to_keep" in params else {}
    if "position_ids" in params:
        extra["position_ids"] = torch.arange(len(ids), device=device)[None]
    return model(input_ids=x, attention_mask=torch.ones_like(x), use_cache=True, **extra).past_key_values


def choice_first_ids(tok, choices: Sequence[str]) -> dict[str, set[int]]:
    """For each choice, the ids of the tokens that can start it: the first token of the choice, with and without a
    leading space, kept only when its text (stripped) is a non-empty prefix of the choice."""
    out: dict[str, set[int]] = {}
    for c in choices:
        firsts = {ids[0] for ids in (tok(c, add_special_tokens=False)["input_ids"],
                                     tok(" " + c, add_special_tokens=False)["input_ids"]) if ids}
        out[c] = {i for i in firsts if (text := tok.decode([i]).strip()) and c.startswith(text)}
    return out


def _batch_cache(cache: Any, n: int) -> Any:
    """The prefix's KV cache for a batch of n rows, leaving `cache` as it is: views of its tensors for plain
    dynamic layers (each forward concatenates into new ones), copies for any other kind of cache."""
    import copy

    from transformers.cache_utils import DynamicLayer, DynamicSlidingWindowLayer

    layers = getattr(cache, "layers", None)
    if layers is None or any(type(layer) not in (DynamicLayer, DynamicSlidingWindowLayer) for layer in layers):
        past = copy.deepcopy(cache)
        past.batch_repeat_interleave(n)
        return past
    past = copy.copy(cache)
    past.layers = [copy.copy(layer) for layer in layers]
    for layer in past.layers:
        if getattr(layer, "keys", None) is not None and layer.keys.numel():
            layer.keys, layer.values = layer.keys.expand(n, -1, -1, -1), layer.values.expand(n, -1, -1, -1)
    return past


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    return next((k for k, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))


def _split_by_kind(chunk: list[tuple[str, bool]]) -> list[list[tuple[str, bool]]]:
    groups: list[list[tuple[str, bool]]] = []
    for item in chunk:
        if groups and groups[-1][0][1] == item[1]:
            groups[-1].append(item)
        else:
            groups.append([item])
    return groups
