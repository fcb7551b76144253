"""`flame-bench serve` against hostile requests: each is a fast JSON 4xx (never a dropped connection, a traceback in
the log, or a server blocked for others), and a port in use is one line from the CLI."""

from __future__ import annotations

import json
import math
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import run_cli, serving

TIMEOUT = 30.0  # generous: every hostile request must be answered well within it
CONTEXT = 512  # the smoke model's max_position_embeddings (and its tokenizer's model_max_length)
VOCAB = 542  # the smoke model's vocabulary


@pytest.fixture(scope="module")
def base_url(smoke_world: Path) -> Iterator[str]:
    """The smoke world's base model behind `make_server` on a free port of 127.0.0.1."""
    from flame_bench.engines.llm.backends import HFBackend

    with serving(HFBackend(smoke_world / "model", name="base")) as url:
        yield url


def post(url: str, body: Any, route: str = "completions") -> tuple[int, dict[str, Any]]:
    """(status, parsed JSON reply) of one POST; `body` bytes are sent as they are, anything else as JSON."""
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    resp = httpx.post(f"{url}/{route}", content=content, headers={"Content-Type": "application/json"},
                      timeout=TIMEOUT)
    return resp.status_code, resp.json()


def message(reply: dict[str, Any]) -> str:
    return reply["error"]["message"]


def assert_alive(url: str) -> None:
    """The server still answers a small, valid request."""
    status, reply = post(url, {"prompt": "Question: who? Answer:", "max_tokens": 2})
    assert status == 200, reply
    assert isinstance(reply["choices"][0]["text"], str)


# -- 1. token ids outside the vocabulary --------------------------------------------------------------------------
@pytest.mark.parametrize("ids", [[99999999], [-5], [3, VOCAB], [3, 2**70]])
def test_token_ids_outside_the_vocabulary_are_a_400_naming_the_valid_range(base_url: str, ids: list[int],
                                                                           capfd: pytest.CaptureFixture) -> None:
    status, reply = post(base_url, {"prompt": ids, "max_tokens": 2})
    assert status == 400, reply
    assert f"[0, {VOCAB - 1}]" in message(reply)
    assert_alive(base_url)
    assert "Traceback" not in capfd.readouterr().err


# -- 2. bodies that are not a request -----------------------------------------------------------------------------
def test_json_nested_100000_deep_is_a_400(base_url: str, capfd: pytest.CaptureFixture) -> None:
    status, reply = post(base_url, b"[" * 100_000 + b"]" * 100_000)
    assert status == 400 and "nested too deep" in message(reply)
    status, reply = post(base_url, b'{"prompt": ' + b"[" * 100_000 + b"]" * 100_000 + b"}")
    assert status == 400 and "nested too deep" in message(reply)
    assert_alive(base_url)
    assert "Traceback" not in capfd.readouterr().err


@pytest.mark.parametrize("body, route, says", [
    (b"[1, 2]", "completions", "JSON object"),
    (b"\xff\xfe{", "completions", "bad request"),
    ({"max_tokens": 2}, "completions", "prompt"),
    ({"prompt": ["a", "b"]}, "completions", "token ids"),
    ({"prompt": [[[[1]]]]}, "completions", "token ids"),
    ({"prompt": {"x": 1}}, "completions", "prompt"),
    ({"messages": []}, "chat/completions", "messages"),
    ({"messages": [{"role": "user"}]}, "chat/completions", "content"),
    ({"messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]}, "chat/completions", "content"),
    ({"messages": "hi"}, "chat/completions", "messages"),
    ({"prompt": "hi", "stop": [["x"]]}, "completions", "stop"),
    ({"prompt": "hi", "stop": ["a", "b", "c", "d", "e"]}, "completions", "stop"),
])
def test_malformed_requests_are_a_400_saying_what_is_wrong(base_url: str, body: Any, route: str, says: str,
                                                           capfd: pytest.CaptureFixture) -> None:
    status, reply = post(base_url, body, route)
    assert status == 400, reply
    assert says in message(reply)
    assert "Traceback" not in capfd.readouterr().err


def test_an_unexpected_error_is_a_500_json_reply_with_one_line(base_url: str, monkeypatch: pytest.MonkeyPatch,
                                                               capfd: pytest.CaptureFixture) -> None:
    from flame_bench.engines.llm import serve

    def broken(*args: Any, **kwargs: Any) -> dict[str, Any]:
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr(serve, "handle", broken)
    status, reply = post(base_url, {"prompt": "hi", "max_tokens": 2})
    assert status == 500 and message(reply) == "internal error: RuntimeError: boom"
    err = capfd.readouterr().err
    assert "Traceback" not in err and err.count("RuntimeError: boom") == 1  # one line in the log, not silence


# -- 3. bounded work per request ----------------------------------------------------------------------------------
def test_a_huge_prompt_is_rejected_fast_while_another_client_is_served(base_url: str) -> None:
    huge = "word " * 320_000  # 1.6 MB: under the body cap, 320,001 tokens for a context of 512
    results: dict[str, tuple[int, dict[str, Any], float]] = {}

    def ask(name: str, body: dict[str, Any], route: str = "completions") -> None:
        start = time.monotonic()
        status, reply = post(base_url, body, route)
        results[name] = (status, reply, time.monotonic() - start)

    threads = [threading.Thread(target=ask, args=("huge", {"prompt": huge, "max_tokens": 16})),
               threading.Thread(target=ask, args=("chat", {"messages": [{"role": "user", "content": huge}]},
                                                  "chat/completions")),
               threading.Thread(target=ask, args=("small", {"prompt": "Question: who? Answer:", "max_tokens": 4}))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(TIMEOUT * 2)
    # the text with its <s>; the chat through its template: <|user|> ... </s> <|assistant|>, no <s>
    for name, tokens in (("huge", 320_001), ("chat", 320_003)):
        status, reply, elapsed = results[name]
        assert status == 400 and elapsed < TIMEOUT, (status, elapsed)
        assert f"{tokens} tokens" in message(reply), message(reply)
        assert f"context of {CONTEXT} tokens" in message(reply)
    status, reply, elapsed = results["small"]
    assert status == 200 and elapsed < TIMEOUT, (status, reply)


@pytest.mark.parametrize("body, says", [
    ({"prompt": [5] * (CONTEXT + 1)}, f"{CONTEXT + 1} tokens"),  # token ids: no room at all
    ({"prompt": [5] * 500, "max_tokens": 100}, "500 tokens"),  # 500 + 100 > 512
    ({"prompt": "Question: who? Answer:", "max_tokens": CONTEXT}, f"context of {CONTEXT} tokens"),
    ({"prompt": "Question: who? Answer:", "max_tokens": 10**9}, "max_tokens"),
    ({"prompt": " ".join(["word"] * CONTEXT)}, f"{CONTEXT + 1} tokens"),  # the default max_tokens never fits it
])
def test_a_prompt_and_max_tokens_beyond_the_context_are_a_400_with_both_numbers(base_url: str, body: dict[str, Any],
                                                                                says: str) -> None:
    status, reply = post(base_url, body)
    assert status == 400, reply
    assert says in message(reply) and str(CONTEXT) in message(reply)


def test_a_prompt_that_fits_gets_at_most_the_room_the_context_leaves(base_url: str) -> None:
    status, reply = post(base_url, {"prompt": [5] * (CONTEXT - 3)})  # default max_tokens, clamped to the 3 left
    assert status == 200, reply
    status, reply = post(base_url, {"prompt": [5] * (CONTEXT - 3), "max_tokens": 3})
    assert status == 200, reply


@pytest.mark.parametrize("field, value", [
    ("temperature", -1), ("temperature", 2.5), ("temperature", "x"), ("temperature", math.nan), ("temperature", True),
    ("top_p", 0), ("top_p", 1.5), ("top_p", "x"),
    ("n", 0), ("n", 10**6), ("n", 2.5), ("n", "many"),
    ("max_tokens", 0), ("max_tokens", -3), ("max_tokens", "x"), ("max_tokens", [1]),
    ("seed", -1), ("seed", 2**70), ("seed", "x"),
    ("logprobs", -1),
])
def test_sampling_parameters_out_of_range_are_a_400_naming_the_field(base_url: str, field: str, value: Any) -> None:
    status, reply = post(base_url, {"prompt": [5, 6, 7], "max_tokens": 2, "temperature": 0.5, field: value})
    assert status == 400, reply
    assert field in message(reply)


def test_sampling_parameters_in_range_are_served(base_url: str) -> None:
    status, reply = post(base_url, {"prompt": [5, 6, 7], "max_tokens": 2, "temperature": 2, "top_p": 1, "n": 3,
                                    "seed": 7})
    assert status == 200 and len(reply["choices"]) == 3
    status, reply = post(base_url, {"prompt": "Question: who? Answer:", "logprobs": 50})  # clamped to 20, as before
    assert status == 200 and len(reply["choices"][0]["logprobs"]["top_logprobs"][0]) == 20


# -- 4. the CLI: a port in use ------------------------------------------------------------------------------------
def test_serve_on_a_port_in_use_is_one_line_naming_the_port(smoke_world: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        start = time.monotonic()
        code, _, err = run_cli(["serve", str(smoke_world / "model"), "--port", str(port)])
    assert code == 2, err
    assert err.strip() == (f"error: port {port} on 127.0.0.1 is already in use; choose another with --port "
                           "(0 picks a free one)")
    assert time.monotonic() - start < TIMEOUT  # before the model is loaded
