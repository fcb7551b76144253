"""The local HF backend on the smoke world's model: batching never changes results; choice scores are the
model's own next-token log-probabilities, also when prompts sharing a long prefix are scored from its KV cache;
the cache serves repeats without touching the model."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from flame_bench.core.errors import FlameError
from flame_bench.engines.llm import cut_at_stop
from flame_bench.engines.llm.backends import HFBackend
from flame_bench.engines.llm.cache import CachedBackend, LLMCache
from flame_bench.engines.llm.client import OpenAIBackend
from flame_bench.engines.llm.resolve import make_backend

PROMPTS = ["Question: Tell me a bio of", [{"role": "user", "content": "Tell me a bio of"}], "Question:"]
# prompts of one kind and different lengths: a batch of them is left-padded
RAW = ["Question:", "Question: Tell me a bio of", "Tell me a bio of", "Question: Tell me a bio of Question: Tell"]
CHATS = [[{"role": "user", "content": "Tell me a bio of"}], [{"role": "user", "content": "bio"}]]


@pytest.fixture(scope="module")
def backend(smoke_world: Path) -> HFBackend:
    return HFBackend(smoke_world / "model", batch_size=2)


def test_greedy_completion_is_batch_size_independent(backend: HFBackend, smoke_world: Path):
    prompts = [*PROMPTS, *RAW, *CHATS]
    one_by_one = HFBackend(smoke_world / "model", batch_size=1).complete(prompts, max_tokens=8)
    assert backend.complete(prompts, max_tokens=8) == one_by_one
    assert HFBackend(smoke_world / "model", batch_size=16).complete(prompts, max_tokens=8) == one_by_one
    assert backend.complete(prompts, max_tokens=8) == one_by_one  # deterministic on repeat
    assert all(isinstance(t, str) and t == t.strip() for t in one_by_one)


def test_identity_names_the_model_and_its_hash(backend: HFBackend, smoke_world: Path):
    from flame_bench.engines.llm.backends import HF_BACKEND_VERSION
    from flame_bench.engines.models import model_sha256

    assert backend.identity == {"kind": "hf", "model": "model", "sha256": model_sha256(smoke_world / "model"),
                                "version": HF_BACKEND_VERSION}
    assert HFBackend(smoke_world / "model", name="tiny").identity["model"] == "tiny"


def test_padded_batch_logprobs_match_single_forward_passes(backend: HFBackend, smoke_world: Path):
    import torch

    model, tok = backend._loaded
    batched = HFBackend(smoke_world / "model", batch_size=8)
    batched._loaded = backend._loaded  # share the loaded model; only the batching differs
    rows = batched.next_token_logprobs(RAW)
    for prompt, row in zip(RAW, rows, strict=True):
        ids = tok(prompt, return_tensors="pt")
        with torch.inference_mode():
            single = torch.log_softmax(model(**ids).logits[0, -1].float(), -1)
        assert torch.allclose(row, single, atol=1e-4)
    for a, b in zip(batched.choice_logprobs(RAW, ["was", "is"]), backend.choice_logprobs(RAW, ["was", "is"]),
                    strict=True):
        assert a == pytest.approx(b, abs=1e-4)


def test_choice_logprobs_match_a_direct_forward_pass(backend: HFBackend):
    import torch

    scores = backend.choice_logprobs(PROMPTS, ["was", "is", "no-such-word-xyz"])
    model, tok = backend._loaded
    text, special = backend.render(PROMPTS[0])
    ids = tok(text, return_tensors="pt", add_special_tokens=special)
    with torch.inference_mode():
        logp = torch.log_softmax(model(**ids).logits[0, -1].float(), -1)
    expected = max(logp[tok(w, add_special_tokens=False)["input_ids"][0]].item() for w in ("was", " was"))
    assert scores[0]["was"] == pytest.approx(expected, abs=1e-4)
    assert all(math.isfinite(s["was"]) for s in scores)


def test_cache_serves_repeats_without_the_model(backend: HFBackend, tmp_path: Path):
    calls = []

    class Counting:
        identity = backend.identity

        def complete(self, prompts, **kw):
            calls.append(len(prompts))
            return backend.complete(prompts, **kw)

    cached = CachedBackend(Counting(), LLMCache(tmp_path / "llm.sqlite"))
    first = cached.complete(PROMPTS + PROMPTS[:1], max_tokens=4)
    again = cached.complete(PROMPTS, max_tokens=4)
    assert calls == [3] and again == first[:3] and cached.hits == 4
    cached.complete(PROMPTS[:1], max_tokens=5)  # other parameters: a new request
    assert calls == [3, 1]


def test_stop_strings_cut_at_the_first():
    assert cut_at_stop("a b\n\nc STOP d", ["STOP", "\n\n"]) == "a b"
    assert cut_at_stop("  no stop  ", ["", "zz"]) == "no stop"


class Fake:
    """A backend that answers instantly and counts what it is asked."""

    def __init__(self) -> None:
        self.identity = {"kind": "fake", "model": "f"}
        self.calls: list[int] = []

    def complete(self, prompts, max_tokens=128, temperature=0.0, stop=(), seed=None):
        self.calls.append(len(prompts))
        return [f"out {p}" for p in prompts]

    def choice_logprobs(self, prompts, choices):
        self.calls.append(len(prompts))
        return [{c: (-1.0 if i == 0 else -math.inf) for i, c in enumerate(choices)} for _ in prompts]


def test_cached_backend_is_an_llm_backend_and_shares_one_cache_across_threads(tmp_path: Path):
    from concurrent.futures import ThreadPoolExecutor

    from flame_bench.engines.llm import LLMBackend

    cache = LLMCache(tmp_path / "llm.sqlite")
    fake = Fake()
    cached = CachedBackend(fake, cache)
    assert isinstance(cached, LLMBackend) and cached.identity == fake.identity
    with ThreadPoolExecutor(4) as pool:
        outs = list(pool.map(lambda i: cached.complete([f"p{i % 5}", f"q{i}"]), range(20)))
    assert outs == [[f"out p{i % 5}", f"out q{i}"] for i in range(20)]
    assert len(cache) == 25  # every distinct prompt stored once
    before = list(fake.calls)
    assert CachedBackend(fake, LLMCache(tmp_path / "llm.sqlite")).complete(["p3", "q7"]) == ["out p3", "out q7"]
    assert fake.calls == before
    scores = cached.choice_logprobs(["x"], ["True", "False"])
    assert cached.choice_logprobs(["x"], ["True", "False"]) == scores == [{"True": -1.0, "False": -math.inf}]
    assert cached.choice_logprobs(["x"], ["False", "True"]) != scores  # other choices: another request


def test_make_backend_picks_the_endpoint_or_the_local_model(monkeypatch, tmp_path: Path):
    monkeypatch.setenv("FLAME_BENCH_LLM_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("FLAME_BENCH_LLM_MODEL", "served")
    for spec in (None, "env"):
        b = make_backend(spec)
        assert isinstance(b, OpenAIBackend) and b.identity["base_url"] == "http://127.0.0.1:9/v1"
    b = make_backend("https://example.invalid/v1", timeout=5.0)
    assert isinstance(b, OpenAIBackend) and b.identity == {"kind": "openai", "base_url": "https://example.invalid/v1",
                                                           "model": "served"} and b.timeout == 5.0
    model_dir = tmp_path / "m"
    model_dir.mkdir()
    (model_dir / "config.json").write_text("{}")
    (model_dir / "model.safetensors").write_bytes(b"")
    local = make_backend(str(model_dir), batch_size=3)  # not loaded until used
    assert isinstance(local, HFBackend) and local.batch_size == 3 and local.name == "m"
    with pytest.raises(FlameError, match="neither an http"):
        make_backend(str(tmp_path / "missing"))
    (model_dir / "model.safetensors").unlink()
    with pytest.raises(FlameError, match=r"no weights|no model\.safetensors"):
        make_backend(str(model_dir))


def test_served_model_through_the_openai_client_agrees_with_the_local_backend(backend: HFBackend):
    """`flame-bench serve` + OpenAIBackend: the HTTP path end to end with a real (tiny) model."""
    import threading

    from flame_bench.engines.llm.client import OpenAIBackend
    from flame_bench.engines.llm.serve import make_server

    server = make_server(backend, port=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        remote = OpenAIBackend(f"http://127.0.0.1:{server.server_address[1]}/v1", backend.name, timeout=30)
        assert remote.complete(PROMPTS, max_tokens=6) == backend.complete(PROMPTS, max_tokens=6)
        # choices: the model's own likeliest next word after the first prompt (so one is surely served) and "was"
        likeliest = next(t.strip() for t, _ in backend.top_logprobs(PROMPTS[0]) if t.strip().isalpha())
        choices = list(dict.fromkeys([likeliest, "was"]))
        local = backend.choice_logprobs(PROMPTS, choices)
        served = remote.choice_logprobs(PROMPTS, choices)
        for a, b in zip(local, served, strict=True):
            for c in choices:  # the server returns the top 20 tokens: a choice outside them is -inf
                assert b[c] == -math.inf or b[c] == pytest.approx(a[c], abs=1e-4)
        assert math.isfinite(served[0][likeliest])
    finally:
        server.shutdown()
        server.server_close()


# -- shared prefixes: one pass over the prefix, the suffixes on its KV cache ----------------------------------
def _words(tok, n: int, seed: int) -> str:
    import random

    vocab = sorted(w for w in tok.get_vocab() if w.isalpha())
    rng = random.Random(seed)
    return " ".join(rng.choice(vocab) for _ in range(n))


def _verifier_like_prompts(tok, chat: bool) -> tuple[list, dict[str, list[int]]]:
    """Facts after two long contexts, interleaved with prompts that share nothing long; which is which."""
    ctx = {"a": "Question: " + _words(tok, 120, 1), "b": "Question: " + _words(tok, 90, 2)}
    kinds = ["a", "b", "lone", "a", "a", "b", "lone", "a", "b", "a", "same", "same"]
    texts = []
    for i, kind in enumerate(kinds):
        if kind in ctx:
            texts.append(f"{ctx[kind]} . {_words(tok, 2 + i % 5, 100 + i)} was")
        elif kind == "lone":
            texts.append(_words(tok, 6 + i, 200 + i))
        else:  # duplicates: still one token of their own each
            texts.append(ctx["a"])
    prompts = [[{"role": "user", "content": t}] for t in texts] if chat else texts
    return prompts, {k: [i for i, x in enumerate(kinds) if x == k] for k in ("a", "b", "lone", "same")}


@pytest.mark.parametrize("chat", [False, True], ids=["raw", "chat"])
def test_shared_prefix_scores_match_full_forward_passes(backend: HFBackend, smoke_world: Path, chat: bool,
                                                        monkeypatch):
    import torch

    from flame_bench.engines.llm.backends import shared_prefix_groups

    model, tok = backend._loaded
    prompts, which = _verifier_like_prompts(tok, chat)
    groups, plain = shared_prefix_groups(backend._tokenize(prompts))
    assert plain == which["lone"]  # every fact about a context is scored from its prefix's cache
    assert sorted(sorted(g) for g, _ in groups) == [which["a"] + which["same"], which["b"]]
    assert all(shared >= 80 for _, shared in groups)
    padded: list[int] = []
    score_padded = backend._score_padded
    monkeypatch.setattr(backend, "_score_padded", lambda seqs: padded.append(len(seqs)) or score_padded(seqs))
    rows = backend.next_token_logprobs(prompts)  # batch size 2: each group's suffixes take several batches
    assert sum(padded) == len(which["lone"])
    choices = ["was", "is", "of"]
    scores = backend.choice_logprobs(prompts, choices)
    for prompt, row, got in zip(prompts, rows, scores, strict=True):
        text, special = backend.render(prompt)
        with torch.inference_mode():  # the prompt alone, one full forward pass
            alone = torch.log_softmax(model(**tok(text, return_tensors="pt", add_special_tokens=special)).logits[0, -1]
                                      .float(), -1)
        assert torch.allclose(row, alone, atol=1e-4)
        expected = {c: max(alone[tok(w, add_special_tokens=False)["input_ids"][0]].item() for w in (c, " " + c))
                    for c in choices}
        assert got == pytest.approx(expected, abs=1e-4)
        assert max(got, key=got.get) == max(expected, key=expected.get)  # the same decision


def test_shared_prefix_results_keep_the_prompt_order(backend: HFBackend, smoke_world: Path):
    import random

    prompts, _ = _verifier_like_prompts(backend._loaded[1], chat=False)
    wide = HFBackend(smoke_world / "model", batch_size=16)
    wide._loaded = backend._loaded  # the same model; groups in one batch each
    scores = backend.choice_logprobs(prompts, ["was", "is"])
    order = list(range(len(prompts)))
    random.Random(0).shuffle(order)
    shuffled = wide.choice_logprobs([prompts[i] for i in order], ["was", "is"])
    for i, got in zip(order, shuffled, strict=True):
        assert got == pytest.approx(scores[i], abs=1e-4)


def test_shared_prefix_groups_plan():
    from flame_bench.engines.llm.backends import shared_prefix_groups

    base, other = list(range(1000, 1200)), list(range(2000, 2150))
    ids = [[*base, 1, 2], [5, 6, 7], [*base, 3], [*other, 9], base, [*base, 1, 3, 4], [*other, 8, 8], [*base[:20], 7]]
    groups, plain = shared_prefix_groups(ids)
    assert plain == [1, 7]  # nothing long shared; a 20-token prefix with one other saves too little
    assert sorted((sorted(g), shared) for g, shared in groups) == [([0, 2, 4, 5], 199), ([3, 6], 150)]
    for g, shared in groups:  # every prompt keeps at least one token of its own
        assert all(len(ids[i]) > shared and ids[i][:shared] == ids[g[0]][:shared] for i in g)
    # two families under one short common start: two groups, each with its own long prefix
    a, b = [0] * 20 + [1] * 200, [0] * 20 + [2] * 200
    groups, plain = shared_prefix_groups([[*a, i] for i in range(4)] + [[*b, i] for i in range(4)])
    assert plain == [] and sorted((sorted(g), s) for g, s in groups) == [([0, 1, 2, 3], 220), ([4, 5, 6, 7], 220)]
    assert shared_prefix_groups([]) == ([], []) and shared_prefix_groups([[1] * 50]) == ([], [0])


def test_a_whitespace_first_token_never_stands_for_a_choice():
    """Digits after "Score:" in a tokenizer that spells " 3" as [" ", "3"]: the space is no evidence for any digit
    (before the fix every digit scored P(" ") and the judge's read-out was uniform)."""
    from flame_bench.engines.llm.backends import choice_first_ids

    vocab = {" ": 0, "0": 1, "1": 2, "True": 3, " True": 4}

    class SplitDigits:
        def __call__(self, text, add_special_tokens=False):
            ids = [vocab[text]] if text in ("True", " True") else [vocab[ch] for ch in text]
            return {"input_ids": ids}

        def decode(self, ids):
            return next(k for k, v in vocab.items() if v == ids[0])

    assert choice_first_ids(SplitDigits(), ("0", "1", "True")) == {"0": {1}, "1": {2}, "True": {3, 4}}
