"""The local HF backend on the smoke world's model: batching never changes results; choice scores are the
model's own next-token log-probabilities; the cache serves repeats without touching the model."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from flame_bench.errors import FlameError
from flame_bench.generation import cut_at_stop
from flame_bench.llm.backends import HFBackend
from flame_bench.llm.cache import CachedBackend, LLMCache
from flame_bench.llm.client import OpenAIBackend
from flame_bench.llm.resolve import make_backend

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
    from flame_bench.models import model_sha256

    assert backend.identity == {"kind": "hf", "model": "model", "sha256": model_sha256(smoke_world / "model")}
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

    from flame_bench.llm import LLMBackend

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
    with pytest.raises(FlameError, match="no weights"):
        make_backend(str(model_dir))


def test_served_model_through_the_openai_client_agrees_with_the_local_backend(backend: HFBackend):
    """`flame-bench serve` + OpenAIBackend: the HTTP path end to end with a real (tiny) model."""
    import threading

    from flame_bench.llm.client import OpenAIBackend
    from flame_bench.llm.serve import make_server

    server = make_server(backend, port=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        remote = OpenAIBackend(f"http://127.0.0.1:{server.server_address[1]}/v1", backend.name, timeout=30)
        assert remote.complete(PROMPTS, max_tokens=6) == backend.complete(PROMPTS, max_tokens=6)
        local = backend.choice_logprobs(PROMPTS, ["was", "is"])
        served = remote.choice_logprobs(PROMPTS, ["was", "is"])
        for a, b in zip(local, served, strict=True):
            for c in ("was", "is"):  # the server returns the top 20 tokens: a choice outside them is -inf
                assert b[c] == -math.inf or b[c] == pytest.approx(a[c], abs=1e-4)
        assert any(math.isfinite(b["was"]) for b in served)
    finally:
        server.shutdown()
        server.server_close()
