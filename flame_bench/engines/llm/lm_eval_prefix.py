"""`flame-prefix`: lm-eval's `hf` model with a shared-prefix log-likelihood scorer (registered with lm-eval).

Multiple-choice tasks ask for log P(continuation | context) for every choice of every question, and every context
starts with the same few-shot primer: lm-eval's `hf` model runs primer + question + choice through the model once per
choice. This model runs each shared token prefix once (the primer, for all questions), each distinct context once
on the prefix's KV cache, and every continuation of a context batched on the context's cache. Everything else is
lm-eval's `HFLM` itself: tokenization (`_encode_pair`, BOS handling), the context window, generation and rolling
log-likelihoods, so lm-eval's own task configs run unchanged and `hf` on the same requests is the check
(`flame-bench bench --truthfulqa`: every log-likelihood within 1e-4, identical greedy flags).

    lm_eval --model flame-prefix --model_args pretrained=DIR ...
    (after `import flame_bench.engines.llm.lm_eval_prefix`)
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cached_property
from typing import Any

from lm_eval.api.registry import register_model
from lm_eval.models.huggingface import HFLM

from flame_bench.engines.llm.backends import (
    MIN_SHARED,
    _batch_cache,
    forward_parameters,
    prefix_kv_cache,
    shared_prefix_groups,
)

TOKENS_PER_PASS = 2048  # a pass's padded token budget (its float32 logits: 2048 x vocab x 4 bytes)
Score = tuple[float, bool]  # (sum of the continuation's log-probabilities, is it the greedy continuation)
Request = tuple[tuple[str, str], list[int], list[int]]  # ((context, continuation), context ids, continuation ids)


@register_model("flame-prefix")
class SharedPrefixLM(HFLM):
    """`HFLM` whose `_loglikelihood_tokens` computes each shared prefix and each context once (see module doc)."""

    def _loglikelihood_tokens(self, requests: list[Request], disable_tqdm: bool = False,
                              override_bs: int | None = None) -> list[tuple[float, bool]]:
        import torch
        from tqdm import tqdm

        window = self.max_length + 1
        results: list[tuple[float, bool] | None] = [None] * len(requests)
        # requests longer than the window are truncated from the left by HFLM: its own path scores those
        too_long = [i for i, (_, c, k) in enumerate(requests) if len(c) + len(k) > window or not c or not k]
        if too_long:
            for i, r in zip(too_long, super()._loglikelihood_tokens([requests[i] for i in too_long], True,
                                                                     override_bs), strict=True):
                results[i] = r
        by_context: dict[tuple[int, ...], dict[tuple[int, ...], list[int]]] = {}  # context -> continuation -> reqs
        skip = set(too_long)
        for i, (_, ctx, cont) in enumerate(requests):
            if i not in skip:
                by_context.setdefault(tuple(ctx), {}).setdefault(tuple(cont), []).append(i)
        contexts = list(by_context)
        groups, plain = shared_prefix_groups(contexts, min_shared=MIN_SHARED)
        rows_per_pass = override_bs or (self.batch_size if isinstance(self.batch_size, int) else 32)
        bar = tqdm(total=len(requests) - len(too_long), desc="Running loglikelihood requests (shared prefix)",
                   disable=disable_tqdm or self.rank != 0)
        with torch.inference_mode():
            for members, shared in [*groups, (plain, 0)]:
                if not members:
                    continue
                prefix = prefix_kv_cache(self.model, contexts[members[0]][:shared], self._forward_params,
                                         self.device) if shared else None
                rows = [Row(list(contexts[k]), shared, [list(c) for c in by_context[contexts[k]]]) for k in members]
                for row, scores in self._score_rows(rows, prefix, rows_per_pass):
                    for cont, score in zip(by_context[tuple(row.context)], scores, strict=True):
                        for i in by_context[tuple(row.context)][cont]:
                            results[i] = score
                            self.cache_hook.add_partial("loglikelihood", requests[i][0], score)
                            bar.update(1)
        bar.close()
        assert all(r is not None for r in results)
        return results  # type: ignore[return-value]

    @cached_property
    def _forward_params(self) -> frozenset[str]:
        return forward_parameters(self.model)

    def _score_rows(self, rows: list[Row], prefix: Any, rows_per_pass: int) -> Iterator[tuple[Row, list[Score]]]:
        """Score packed rows (see `Row`) in passes of at most `rows_per_pass` rows and TOKENS_PER_PASS tokens, on
        the shared prefix's KV cache (`prefix`, or None when nothing is shared)."""
        import torch

        rows = sorted(rows, key=len)  # similar lengths in a pass: little padding
        passes: list[list[Row]] = [[]]
        for row in rows:
            if passes[-1] and (len(passes[-1]) >= rows_per_pass or (len(passes[-1]) + 1) * len(row) > TOKENS_PER_PASS):
                passes.append([])
            passes[-1].append(row)
        shared = rows[0].shared if rows else 0
        for batch in passes:
            width = max(map(len, batch))
            ids = torch.zeros((len(batch), width), dtype=torch.long)
            positions = torch.zeros((len(batch), width), dtype=torch.long)
            segment = torch.full((len(batch), width), -2, dtype=torch.long)  # -2 padding, -1 context, i: choice i
            for r, row in enumerate(batch):
                ids[r, :len(row)] = torch.tensor(row.tokens)
                positions[r, :len(row)] = torch.tensor(row.positions)
                segment[r, :len(row)] = torch.tensor(row.segments)
            q, k = segment[:, :, None], segment[:, None, :]
            causal = torch.ones((width, width), dtype=torch.bool).tril()[None]
            allowed = causal & (k >= -1) & ((k == -1) | (k == q)) | torch.eye(width, dtype=torch.bool)[None]
            allowed = torch.cat([torch.ones((len(batch), width, shared), dtype=torch.bool), allowed], dim=2)
            dtype = self.model.dtype
            mask = torch.zeros(allowed.shape, dtype=dtype).masked_fill_(~allowed, torch.finfo(dtype).min)
            kwargs: dict[str, Any] = {"position_ids": positions.to(self.device)} \
                if "position_ids" in self._forward_params else {}
            if prefix is not None:
                kwargs.update(past_key_values=_batch_cache(prefix, len(batch)), use_cache=True)
            logits = self.model(input_ids=ids.to(self.device), attention_mask=mask[:, None].to(self.device),
                                **kwargs).logits
            for r, row in enumerate(batch):
                logp = torch.log_softmax(logits[r, :len(row)].float(), dim=-1)
                scores = []
                for where, target in row.predictions():
                    t = torch.tensor(target, dtype=torch.long, device=self.device)
                    lp = logp[torch.tensor(where, device=self.device)]
                    scores.append((float(lp.gather(-1, t[:, None]).sum()), bool((lp.argmax(-1) == t).all())))
                yield row, scores


class Row:
    """One context and all its continuations packed into one sequence for one forward pass: the context's tokens
    after the shared prefix, then each continuation's tokens but its last. An attention mask lets every continuation
    see the prefix, the context and its own earlier tokens only, and each continuation's positions restart where
    the context ends: exactly the pass over context + continuation that lm-eval's `hf` model makes for each."""

    def __init__(self, context: list[int], shared: int, continuations: list[list[int]]):
        self.context, self.shared, self.continuations = context, shared, continuations
        self.tokens = context[shared:]
        self.positions = list(range(shared, len(context)))
        self.segments = [-1] * len(self.tokens)
        self.starts = []
        for i, c in enumerate(continuations):
            self.starts.append(len(self.tokens))
            self.tokens += c[:-1]
            self.positions += range(len(context), len(context) + len(c) - 1)
            self.segments += [i] * (len(c) - 1)

    def __len__(self) -> int:
        return len(self.tokens)

    def predictions(self) -> Iterator[tuple[list[int], list[int]]]:
        """(row indices whose outputs predict a continuation's tokens, those tokens), one per continuation."""
        last = len(self.context) - self.shared - 1  # the context's last token predicts each first token
        for start, c in zip(self.starts, self.continuations, strict=True):
            yield [last, *range(start, start + len(c) - 1)], c
