"""Generation: batched decoding from any HF causal LM, and the cached `Generator` every stage and task uses.

`generate` decodes prompts in batches (left padding, greedy by default). `Generator` serves one model under one
decoding config: it formats instructions for the model (a plain-text base model sees the "Question: ... Answer:"
form of the world's pretraining corpus, anything else its chat template), answers from the content-addressed cache
(`flame_bench.cache`) and generates only what is missing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from flame_bench.ui import progress

if TYPE_CHECKING:
    from flame_bench.cache import GenerationCache
    from flame_bench.models import ModelHandle

QA_PROMPT = "Question: {instruction} Answer:"  # how the world's base model saw questions in pretraining
PROMPT_FORMAT_VERSIONS = {"pretrained": "qa-v1", "chat": "chat-template-v1"}
SAMPLING = dict(do_sample=True, temperature=0.7, top_p=0.9)  # the paper's setting for every sampled response


@dataclass(frozen=True)
class GenerationConfig:
    max_new_tokens: int = 96
    do_sample: bool = False
    temperature: float = 1.0
    top_p: float = 1.0
    num_return_sequences: int = 1
    batch_size: int = 64
    seed: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


def generate(model, tokenizer, prompts: Sequence[str], config: GenerationConfig = GenerationConfig(),
             quiet: bool = True, description: str = "generating", add_special_tokens: bool = True,
             on_batch: Callable[[list[str], list[list[str]]], None] | None = None) -> list[list[str]]:
    """Return `num_return_sequences` completions per prompt (special tokens stripped).

    `add_special_tokens=False` for prompts already rendered by a chat template (which carries its own BOS).
    `on_batch(prompts, completions)` is called after every batch (the cache commits there, so a crash loses at most
    one batch); the random stream is one for the whole call, so batching never changes what is sampled.
    """
    import torch

    device = next(model.parameters()).device
    tokenizer.padding_side = "left"
    out: list[list[str]] = []
    torch.manual_seed(config.seed)
    kwargs = dict(max_new_tokens=config.max_new_tokens, do_sample=config.do_sample,
                  num_return_sequences=config.num_return_sequences,
                  pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
    if config.do_sample:
        kwargs.update(temperature=config.temperature, top_p=config.top_p)
    with progress(quiet, metrics=False) as bar, torch.inference_mode():
        task = bar.add_task(description, total=len(prompts))
        for i in range(0, len(prompts), config.batch_size):
            chunk = list(prompts[i:i + config.batch_size])
            enc = tokenizer(chunk, return_tensors="pt", padding=True, add_special_tokens=add_special_tokens).to(device)
            ids = model.generate(**enc, **kwargs)
            texts = tokenizer.batch_decode(ids[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
            n = config.num_return_sequences
            done = [[t.strip() for t in texts[j * n:(j + 1) * n]] for j in range(len(chunk))]
            out += done
            if on_batch is not None:
                on_batch(chunk, done)
            bar.update(task, advance=len(chunk))
    return out


def continuation_logprobs(model, tokenizer, pairs: Sequence[tuple[str, str]], batch_size: int = 64) -> list[float]:
    """Sum of log-probabilities of each continuation given its context (the context gets BOS)."""
    import torch

    device = next(model.parameters()).device
    scores: list[float] = []
    with torch.inference_mode():
        for i in range(0, len(pairs), batch_size):
            chunk = pairs[i:i + batch_size]
            ctx = tokenizer([c for c, _ in chunk], add_special_tokens=True)["input_ids"]
            cont = tokenizer([x for _, x in chunk], add_special_tokens=False)["input_ids"]
            seqs = [a + b for a, b in zip(ctx, cont, strict=True)]
            width = max(len(s) for s in seqs)
            ids = torch.full((len(seqs), width), tokenizer.pad_token_id, dtype=torch.long)
            mask = torch.zeros_like(ids)
            for j, s in enumerate(seqs):  # right padding: positions stay aligned with the unpadded sequence
                ids[j, : len(s)] = torch.tensor(s)
                mask[j, : len(s)] = 1
            logp = torch.log_softmax(model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits.float(), -1)
            for j, (a, b) in enumerate(zip(ctx, cont, strict=True)):
                pos = torch.arange(len(a) - 1, len(a) + len(b) - 1)
                scores.append(logp[j, pos, torch.tensor(b)].sum().item())
    return scores


def cut_at_stop(text: str, stop: Sequence[str]) -> str:
    """`text` up to its first stop string, stripped."""
    cuts = [text.index(s) for s in stop if s and s in text]
    return (text[: min(cuts)] if cuts else text).strip()


def format_prompts(tokenizer, kind: str, instructions: Sequence[str]) -> list[str]:
    """Instructions as the model expects them: the Q&A form for a plain-text base model, else its chat template."""
    if kind == "pretrained":
        return [QA_PROMPT.format(instruction=i) for i in instructions]
    return [tokenizer.apply_chat_template([{"role": "user", "content": i}], tokenize=False,
                                          add_generation_prompt=True) for i in instructions]


class Generator:
    """Cached, batched generation for one model under one decoding config."""

    def __init__(self, model: ModelHandle, config: GenerationConfig, cache: GenerationCache, quiet: bool = True):
        from flame_bench.models import model_kind

        self.model, self.config, self.cache, self.quiet = model, config, cache, quiet
        self.kind = model_kind(model.path)

    def complete(self, prompts: list[str], add_special_tokens: bool | None = None) -> list[list[str]]:
        """All sampled completions of raw `prompts`, from the cache or generated in batches."""
        special = self.kind == "pretrained" if add_special_tokens is None else add_special_tokens
        cfg = {**self.config.to_dict(), "add_special_tokens": special}
        cfg.pop("batch_size")  # batching does not change greedy outputs; keep it out of the key

        def produce(todo: list[str], on_batch: Callable[[list[str], list[list[str]]], None]) -> list[list[str]]:
            model, tok = self.model.load()
            return generate(model, tok, todo, self.config, quiet=self.quiet,
                            description=f"generating ({self.model.name})", add_special_tokens=special,
                            on_batch=on_batch)

        return self.cache.generate(self.model.sha256, cfg, prompts, produce)

    def samples(self, instructions: list[str]) -> list[list[str]]:
        """`num_return_sequences` responses to each instruction, formatted for the model."""
        tok = self.model.load()[1] if self.kind == "chat" else None
        return self.complete(format_prompts(tok, self.kind, instructions))

    def __call__(self, instructions: list[str]) -> list[str]:
        return [outs[0] for outs in self.samples(instructions)]
