"""Generation: batched decoding from any HF causal LM, and the cached `Generator` every stage and task uses.

`generate` decodes prompts in batches (left padding, greedy by default). `Generator` serves one model under one
decoding config: it formats instructions for the model (a plain-text base model sees the "Question: ... Answer:"
form of the world's pretraining corpus, anything else its chat template), answers from the content-addressed cache
(`flame_bench.engines.generation_cache`) and generates only what is missing.

Generation backends (`flame-bench --generation SPEC COMMAND`, or a system file's `generation: SPEC`): `hf` (the
default: `generate` here), `vllm` (vLLM's offline engine on the model's own directory, imported only when used;
safetensors only, no remote code) and an OpenAI-compatible base URL (`http://host:port/v1`: vLLM's server,
`flame-bench serve`, ...; the served model name from FLAME_BENCH_LLM_MODEL, else the server's only model). Every
backend receives the same token ids `generate` would (the prompt is tokenized here), so greedy outputs agree where
the engines' arithmetic does; sampled outputs differ between engines, so a backend other than `hf` is part of the
cache key (and, through the samples, of a stage's data). The server must serve the very model being sampled: fine
for evaluation and a system's first stage; a later stage samples its input model, which only `hf` and `vllm` load.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flame_bench.core.errors import FlameError, redact_url, unknown_name
from flame_bench.core.ui import progress

if TYPE_CHECKING:
    from flame_bench.engines.generation_cache import GenerationCache
    from flame_bench.engines.models import ModelHandle

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


def format_prompts(tokenizer, kind: str, instructions: Sequence[str]) -> list[str]:
    """Instructions as the model expects them: the Q&A form for a plain-text base model, else its chat template."""
    if kind == "pretrained":
        return [QA_PROMPT.format(instruction=i) for i in instructions]
    return [tokenizer.apply_chat_template([{"role": "user", "content": i}], tokenize=False,
                                          add_generation_prompt=True) for i in instructions]


# -- generation backends -----------------------------------------------------------------------------------------
LOCAL_BACKENDS = ("hf", "vllm")  # besides these: an OpenAI-compatible base URL
_backend = ["hf"]  # this process's backend; `--generation` sets it for a command, `using_backend` for a block
_cli_backend = ["hf"]  # what `--generation` set (errors name the option a failing endpoint came from)


def check_generation_spec(spec: str) -> str:
    """`hf`, `vllm` or an OpenAI-compatible base URL; anything else is a one-line error naming near matches."""
    if spec in LOCAL_BACKENDS:
        return spec
    if spec.startswith(("http://", "https://")):
        from flame_bench.engines.llm.client import check_endpoint_url

        return check_endpoint_url(spec)
    raise FlameError(f"{unknown_name('generation backend', spec, LOCAL_BACKENDS)}; or an OpenAI-compatible base URL "
                     "such as http://127.0.0.1:8000/v1")


def set_generation_backend(spec: str) -> None:
    _backend[0] = _cli_backend[0] = check_generation_spec(spec)


def current_generation_backend() -> str:
    return _backend[0]


@contextmanager
def using_backend(spec: str | None) -> Iterator[None]:
    """Generation in this block through `spec` (None: unchanged), e.g. one system's `generation:`."""
    saved = _backend[0]
    if spec is not None:
        _backend[0] = check_generation_spec(spec)
    try:
        yield
    finally:
        _backend[0] = saved


def request_seed(seed: int, prompt: str) -> int:
    """A sampled request's own seed: from the run's seed and the prompt, so batching never changes a sample."""
    return int(hashlib.sha256(f"{seed}|{prompt}".encode()).hexdigest()[:8], 16)


def engine_decoding(config: GenerationConfig, prompts: Sequence[str]) -> tuple[dict[str, float], list[int | None]]:
    """How an engine other than `hf` is asked to decode: (temperature and top_p, each prompt's own seed); greedy is
    temperature 0 with no seeds."""
    if not config.do_sample:
        return {"temperature": 0.0, "top_p": 1.0}, [None] * len(prompts)
    return ({"temperature": config.temperature, "top_p": config.top_p},
            [request_seed(config.seed, p) for p in prompts])


@functools.lru_cache(maxsize=4)
def _tokenizer(model_dir: str) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(model_dir)


def encode(model_dir: Path, prompts: Sequence[str], add_special_tokens: bool) -> list[list[int]]:
    """The token ids `generate` feeds the model for each prompt (without padding)."""
    return _tokenizer(str(model_dir))(list(prompts), add_special_tokens=add_special_tokens)["input_ids"]


@functools.lru_cache(maxsize=1)  # one engine at a time: a later stage's model replaces the previous one
def _vllm_engine(model_dir: str) -> Any:
    try:
        from vllm import LLM
    except ImportError:
        raise FlameError("generation backend vllm needs vLLM: `pip install vllm` on a GPU machine, or use "
                         "--generation hf") from None
    return LLM(model=model_dir, tokenizer=model_dir, trust_remote_code=False, load_format="safetensors", seed=0)


def vllm_generate(model_dir: Path, prompts: Sequence[str], config: GenerationConfig, add_special_tokens: bool,
                  on_batch: Callable[[list[str], list[list[str]]], None], chunk: int = 512) -> list[list[str]]:
    """`num_return_sequences` completions per prompt from vLLM's offline engine (same token ids as `generate`)."""
    engine = _vllm_engine(str(model_dir))  # first: a missing vLLM is a one-line error
    from vllm import SamplingParams

    out: list[list[str]] = []
    for i in range(0, len(prompts), chunk):
        batch = list(prompts[i:i + chunk])
        decoding, seeds = engine_decoding(config, batch)
        params = [SamplingParams(n=config.num_return_sequences, max_tokens=config.max_new_tokens, **decoding, seed=s)
                  for s in seeds]
        ids = encode(model_dir, batch, add_special_tokens)
        results = engine.generate([{"prompt_token_ids": x} for x in ids], params, use_tqdm=False)
        done = [[c.text.strip() for c in r.outputs] for r in results]
        on_batch(batch, done)  # committed per chunk: the engine returns a chunk at once
        out += done
    return out


@functools.lru_cache(maxsize=8)
def _endpoint(base_url: str) -> Any:
    """The OpenAI-compatible client for `base_url`, its model named by FLAME_BENCH_LLM_MODEL or the server."""
    import os

    from flame_bench.engines.llm.client import OpenAIBackend

    option = "--generation" if base_url == _cli_backend[0] else "the system file's generation:"
    model = os.environ.get("FLAME_BENCH_LLM_MODEL") or OpenAIBackend(base_url, "?", option=option).served_model()
    return OpenAIBackend(base_url, model, option=option)


def openai_generate(base_url: str, model_dir: Path, prompts: Sequence[str], config: GenerationConfig,
                    add_special_tokens: bool, on_batch: Callable[[list[str], list[list[str]]], None]
                    ) -> list[list[str]]:
    """Completions from an OpenAI-compatible server, one request per prompt (token ids, `n` samples, the prompt's
    own seed), each committed as it returns."""
    ids = encode(model_dir, prompts, add_special_tokens)
    decoding, seeds = engine_decoding(config, prompts)
    return _endpoint(base_url).sample(
        ids, n=config.num_return_sequences, max_tokens=config.max_new_tokens, **decoding, seeds=seeds,
        on_result=lambda i, outs: on_batch([prompts[i]], [[o.strip() for o in outs]]))


def backend_identity(spec: str) -> dict[str, Any] | None:
    """What a backend adds to the generation cache key (None for `hf`, so its keys stay what they always were)."""
    if spec == "hf":
        return None
    if spec == "vllm":
        return {"kind": "vllm"}
    return {"kind": "openai", "base_url": redact_url(spec), "model": _endpoint(spec).model}


class Generator:
    """Cached, batched generation for one model under one decoding config, through the backend current when it is
    made (`--generation`, a system's `generation:`)."""

    def __init__(self, model: ModelHandle, config: GenerationConfig, cache: GenerationCache, quiet: bool = True):
        from flame_bench.engines.models import model_kind

        self.model, self.config, self.cache, self.quiet = model, config, cache, quiet
        self.kind = model_kind(model.path)
        self.backend = current_generation_backend()

    def complete(self, prompts: list[str], add_special_tokens: bool | None = None) -> list[list[str]]:
        """All sampled completions of raw `prompts`, from the cache or generated in batches."""
        special = self.kind == "pretrained" if add_special_tokens is None else add_special_tokens
        cfg = {**self.config.to_dict(), "add_special_tokens": special}
        cfg.pop("batch_size")  # batching does not change greedy outputs; keep it out of the key
        if (identity := backend_identity(self.backend)) is not None:
            cfg["backend"] = identity

        def produce(todo: list[str], on_batch: Callable[[list[str], list[list[str]]], None]) -> list[list[str]]:
            if self.backend == "vllm":
                return vllm_generate(self.model.path, todo, self.config, special, on_batch)
            if self.backend != "hf":
                return openai_generate(self.backend, self.model.path, todo, self.config, special, on_batch)
            model, tok = self.model.load()
            return generate(model, tok, todo, self.config, quiet=self.quiet,
                            description=f"generating ({self.model.name})", add_special_tokens=special,
                            on_batch=on_batch)

        return self.cache.generate(self.model.sha256, cfg, prompts, produce)

    def samples(self, instructions: list[str]) -> list[list[str]]:
        """`num_return_sequences` responses to each instruction, formatted for the model."""
        tok = None
        if self.kind == "chat":  # only the hf backend needs the weights here; the others need the chat template
            tok = self.model.load()[1] if self.backend == "hf" else _tokenizer(str(self.model.path))
        return self.complete(format_prompts(tok, self.kind, instructions))

    def __call__(self, instructions: list[str]) -> list[str]:
        return [outs[0] for outs in self.samples(instructions)]
