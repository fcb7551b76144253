"""The local HF backend on the smoke world's model: batching never changes results; choice scores are the
model's own next-token log-probabilities; the cache serves repeats without touching the model."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from flame_bench.llm.backends import HFBackend, cut_at_stop
from flame_bench.llm.cache import CachedBackend, LLMCache

PROMPTS = ["Question: Tell me a bio of", [{"role": "user", "content": "Tell me a bio of"}], "Question:"]


@pytest.fixture(scope="module")
def backend(smoke_world: Path) -> HFBackend:
    return HFBackend(smoke_world / "model", batch_size=2)


def test_greedy_completion_is_batch_size_independent(backend: HFBackend, smoke_world: Path):
    one_by_one = HFBackend(smoke_world / "model", batch_size=1).complete(PROMPTS, max_tokens=8)
    assert backend.complete(PROMPTS, max_tokens=8) == one_by_one
    assert all(isinstance(t, str) for t in one_by_one)


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
