"""The OpenAI-compatible client against a real HTTP server on 127.0.0.1, started by the test itself."""

from __future__ import annotations

import json
import math
import re
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from flame_bench.core.errors import FlameError
from flame_bench.engines.llm.cache import CachedBackend, LLMCache
from flame_bench.engines.llm.client import OpenAIBackend


class Script:
    """What the server does next: a list of actions consumed per request (the last one repeats)."""

    def __init__(self) -> None:
        self.actions: list[str] = ["ok"]
        self.requests: list[tuple[str, dict, dict]] = []  # (path, body, headers)
        self.in_flight = self.max_in_flight = 0
        self.lock = threading.Condition()
        self.overlap = 0  # hold the first requests (up to 1 s) until this many have arrived, so they overlap
        self.hold = 0.0  # seconds every request stays in flight

    def next(self) -> str:
        with self.lock:
            return self.actions.pop(0) if len(self.actions) > 1 else self.actions[0]


def reply_for(path: str, body: dict) -> dict:
    if path.endswith("/chat/completions"):
        text = "echo: " + body["messages"][-1]["content"]
        choice: dict = {"message": {"role": "assistant", "content": text}}
        if body.get("logprobs"):
            top = [{"token": "True", "logprob": -0.2}, {"token": " False", "logprob": -1.8},
                   {"token": "Tr", "logprob": -4}]
            choice["logprobs"] = {"content": [{"token": "True", "logprob": -0.2, "top_logprobs": top}]}
        return {"choices": [choice]}
    choice = {"text": "echo: " + body["prompt"]}
    if body.get("logprobs"):
        choice["logprobs"] = {"top_logprobs": [{" No": -0.3, "Yes": -1.5}]}
    return {"choices": [choice]}


@pytest.fixture()
def server() -> Iterator[tuple[str, Script]]:
    script = Script()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # keep test output clean
            pass

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with script.lock:
                script.requests.append((self.path, body, dict(self.headers)))
                script.in_flight += 1
                self.counted = True  # until the reply starts: the client may send its next request right after
                script.max_in_flight = max(script.max_in_flight, script.in_flight)
                script.lock.notify_all()
                script.lock.wait_for(lambda: len(script.requests) >= script.overlap, timeout=1.0)
            time.sleep(script.hold)
            try:
                action = script.next()
                if action == "slow":
                    time.sleep(0.6)
                    action = "ok"
                if action.startswith("http"):
                    self._send(int(action[4:]), b'{"error": "boom"}')
                elif action == "echo401":  # a server that quotes the request's headers back
                    self._send(401, json.dumps({"error": f"bad key {self.headers['Authorization']}"}).encode())
                elif action == "noshape":
                    self._send(200, b'{"choices": [{"index": 0}]}')
                elif action == "malformed":
                    self._send(200, b"<html>not json</html>")
                elif action == "nochoices":
                    self._send(200, b'{"object": "error"}')
                elif action == "nologprobs":
                    self._send(200, json.dumps({"choices": [{"message": {"content": "False, because"}}]}).encode())
                else:
                    self._send(200, json.dumps(reply_for(self.path, body)).encode())
            finally:
                self._done()

        def _done(self) -> None:
            with script.lock:
                if self.counted:
                    script.in_flight -= 1
                    self.counted = False

        def _send(self, code: int, payload: bytes) -> None:
            self._done()  # no longer in flight once the reply is on its way
            try:
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout)
                pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1", script
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


def client(url: str, **kw) -> OpenAIBackend:
    return OpenAIBackend(url, "test-model", **{"timeout": 0.3, "max_retries": 3, "backoff": 0.01, **kw})


def test_chat_and_completion_routes_and_bodies(server):
    url, script = server
    out = client(url).complete(["raw prompt", [{"role": "user", "content": "hi"}]], max_tokens=7, stop=["zz"])
    assert out == ["echo: raw prompt", "echo: hi"]
    paths = sorted(p for p, _, _ in script.requests)
    assert paths == ["/v1/chat/completions", "/v1/completions"]
    bodies = {p: b for p, b, _ in script.requests}
    assert bodies["/v1/completions"] == {"model": "test-model", "prompt": "raw prompt", "max_tokens": 7,
                                         "temperature": 0.0, "stop": ["zz"]}
    assert bodies["/v1/chat/completions"]["messages"] == [{"role": "user", "content": "hi"}]


def test_stop_strings_are_cut_even_if_the_server_ignores_them(server):
    url, _ = server
    assert client(url).complete(["abc STOP def"], stop=["STOP"]) == ["echo: abc"]


def test_slow_reply_is_retried_then_succeeds(server):
    url, script = server
    script.actions = ["slow", "ok"]
    assert client(url).complete(["x"]) == ["echo: x"]
    assert len(script.requests) == 2


def test_always_slow_fails_naming_the_timeout(server):
    url, script = server
    script.actions = ["slow"]
    with pytest.raises(FlameError, match=r"failed after 2 attempts: timeout after 0.3 s"):
        client(url, max_retries=2).complete(["x"])


@pytest.mark.parametrize("status", [500, 503, 429])
def test_http_5xx_and_429_are_retried_then_succeed(server, status):
    url, script = server
    script.actions = [f"http{status}", f"http{status}", "ok"]
    assert client(url).complete(["x"]) == ["echo: x"]
    assert len(script.requests) == 3


def test_http_500_always_fails_and_nothing_is_cached(server, tmp_path):
    url, script = server
    script.actions = ["http500"]
    cached = CachedBackend(client(url), LLMCache(tmp_path / "llm.sqlite"))
    with pytest.raises(FlameError, match=r"failed after 3 attempts: HTTP 500; check that the server is up"):
        cached.complete(["x"])
    assert len(script.requests) == 3
    script.actions = ["ok"]
    assert cached.complete(["x"]) == ["echo: x"]  # the failure was not cached: the server is asked again
    assert len(script.requests) == 4 and cached.misses == 2


@pytest.mark.parametrize("action,cause", [("malformed", "malformed reply (not JSON)"),
                                          ("nochoices", "malformed reply (no choices)"),
                                          ("noshape", "malformed reply (no text in choices[0])")])
def test_malformed_reply_fails_after_retries_and_is_not_cached(server, tmp_path, action, cause):
    url, script = server
    script.actions = [action]
    cached = CachedBackend(client(url), LLMCache(tmp_path / "llm.sqlite"))
    with pytest.raises(FlameError, match=re.escape(cause)) as err:
        cached.complete(["x"])
    assert len(script.requests) == 3 and "\n" not in str(err.value)
    assert len(cached.cache) == 0


def test_malformed_reply_once_is_retried(server):
    url, script = server
    script.actions = ["noshape", "malformed", "ok"]
    assert client(url).complete([[{"role": "user", "content": "q"}]]) == ["echo: q"]
    assert len(script.requests) == 3


def test_a_failure_drops_the_requests_not_yet_sent(server):
    url, script = server
    script.actions = ["http500"]
    with pytest.raises(FlameError, match="HTTP 500"):
        client(url, workers=1, max_retries=2, backoff=0.2).complete([f"p{i}" for i in range(6)])
    sent = {body["prompt"] for _, body, _ in script.requests}
    assert sent <= {"p0", "p1"}  # p1 may have started while p0's failure came back; p2..p5 were never sent


def test_refused_connection_is_named():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens on this port now
    with pytest.raises(FlameError, match=r"failed after 2 attempts: connection refused"):
        client(f"http://127.0.0.1:{port}/v1", max_retries=2).complete(["x"])


def test_http_401_is_not_retried_and_the_key_never_leaks(server, monkeypatch):
    url, script = server
    monkeypatch.setenv("FLAME_BENCH_API_KEY", "sk-secret-123")
    script.actions = ["http401"]
    backend = client(url)
    with pytest.raises(FlameError) as err:
        backend.complete(["x"])
    assert len(script.requests) == 1 and "HTTP 401" in str(err.value)
    assert script.requests[0][2]["Authorization"] == "Bearer sk-secret-123"
    for text in (str(err.value), repr(backend), json.dumps(backend.identity)):
        assert "sk-secret" not in text


def test_openai_api_key_fallback_and_an_echoed_key_is_redacted(server, monkeypatch):
    url, script = server
    monkeypatch.delenv("FLAME_BENCH_API_KEY", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-other-456")
    script.actions = ["echo401"]
    with pytest.raises(FlameError, match="HTTP 401") as err:
        client(url).complete(["x"])
    assert script.requests[0][2]["Authorization"] == "Bearer sk-other-456"
    assert "sk-other" not in str(err.value) and "***" in str(err.value)


def test_no_key_sends_no_authorization_header(server, monkeypatch):
    url, script = server
    monkeypatch.delenv("FLAME_BENCH_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    client(url).complete(["x"])
    assert "Authorization" not in script.requests[0][2]


def test_from_env_needs_url_and_model(monkeypatch):
    monkeypatch.delenv("FLAME_BENCH_LLM_BASE_URL", raising=False)
    monkeypatch.delenv("FLAME_BENCH_LLM_MODEL", raising=False)
    with pytest.raises(FlameError, match="FLAME_BENCH_LLM_BASE_URL"):
        OpenAIBackend.from_env()
    with pytest.raises(FlameError, match="FLAME_BENCH_LLM_MODEL is unset"):  # asked the server, which is down
        OpenAIBackend.from_env(base_url="http://127.0.0.1:1/v1")
    monkeypatch.setenv("FLAME_BENCH_LLM_BASE_URL", "http://127.0.0.1:1/v1/")
    monkeypatch.setenv("FLAME_BENCH_LLM_MODEL", "m")
    backend = OpenAIBackend.from_env(workers=2)
    assert backend.identity == {"kind": "openai", "base_url": "http://127.0.0.1:1/v1", "model": "m"}
    assert backend.workers == 2


def test_choice_logprobs_from_top_logprobs_and_text_fallback(server):
    url, script = server
    chat = [{"role": "user", "content": "Is it true?"}]
    scores = client(url).choice_logprobs([chat, "Answer:"], ["True", "False", "Yes", "No"])
    assert scores[0]["True"] == -0.2 and scores[0]["False"] == -1.8 and scores[0]["Yes"] == -math.inf
    assert scores[1]["No"] == -0.3 and scores[1]["Yes"] == -1.5 and scores[1]["True"] == -math.inf
    body = script.requests[0][1] if script.requests[0][0].endswith("chat/completions") else script.requests[1][1]
    assert body["max_tokens"] == 1 and body["logprobs"] is True and body["top_logprobs"] == 20
    script.actions = ["nologprobs"]
    assert client(url).choice_logprobs([chat], ["True", "False"]) == [{"True": -math.inf, "False": 0.0}]


def test_worker_pool_is_bounded_and_order_kept(server):
    url, script = server
    script.overlap, script.hold = 3, 0.02  # the first request is held until the third arrives
    prompts = [f"p{i}" for i in range(12)]
    assert client(url, workers=3).complete(prompts) == [f"echo: {p}" for p in prompts]
    assert 1 < script.max_in_flight <= 3


def test_cached_repeat_sends_no_request(server, tmp_path):
    url, script = server
    cached = CachedBackend(client(url), LLMCache(tmp_path / "llm.sqlite"))
    first = cached.choice_logprobs([[{"role": "user", "content": "q"}]], ["True", "Yes"])
    n = len(script.requests)
    again = CachedBackend(client(url), LLMCache(tmp_path / "llm.sqlite"))  # a new process, the same file
    assert again.choice_logprobs([[{"role": "user", "content": "q"}]], ["True", "Yes"]) == first
    assert first[0]["Yes"] == -math.inf  # -inf survives the JSON round trip
    assert len(script.requests) == n and again.hits == 1


def test_requests_sharing_a_prefix_are_sent_together(server):
    """For the server's prefix cache: one worker, so the arrival order is the sending order; results keep theirs."""
    url, script = server
    passages = {t: f"Context about {t}: " + "long passage text " * 20 for t in ("Ana", "Tom")}
    prompts = [f"{passages[t]} Fact {i} about {t}. True or False?" for i in range(4) for t in ("Tom", "Ana")]
    assert client(url, workers=1).complete(prompts) == [f"echo: {p}" for p in prompts]
    sent = [b["prompt"] for _, b, _ in script.requests]
    topics = [p.split(":")[0] for p in sent]
    assert topics == ["Context about Ana"] * 4 + ["Context about Tom"] * 4  # not Tom, Ana, Tom, Ana, ...


@pytest.mark.parametrize("workers", [1, 3])
def test_a_judging_run_killed_midway_resumes_with_only_the_missing_calls(server, tmp_path, workers):
    """The server dies after 5 answers; the cache keeps each of the 5 (every answer is committed as it arrives),
    and the resumed run sends exactly the requests whose answers were not stored."""
    url, script = server
    prompts = [f"judge item {i}" for i in range(12)]
    script.actions = ["ok"] * 5 + ["http500"]  # then every request fails
    cached = CachedBackend(client(url, workers=workers, max_retries=1), LLMCache(tmp_path / "llm.sqlite"))
    with pytest.raises(FlameError):
        cached.complete(prompts)
    stored = len(LLMCache(tmp_path / "llm.sqlite"))
    assert stored == 5  # every answer that came back; the failed request left nothing
    sent_before = len(script.requests)
    script.actions = ["ok"]
    resumed = CachedBackend(client(url, workers=workers), LLMCache(tmp_path / "llm.sqlite"))
    assert resumed.complete(prompts) == [f"echo: {p}" for p in prompts]
    assert len(script.requests) - sent_before == len(prompts) - stored  # only the missing calls
    assert (resumed.hits, resumed.misses) == (stored, len(prompts) - stored)


def test_client_options_before_the_command_reach_every_endpoint():
    import flame_bench.cli.root as cli
    from flame_bench.engines.llm.client import CLIENT_DEFAULTS

    saved = dict(CLIENT_DEFAULTS)
    try:
        cli.client_options(workers=9, timeout=5.0, retries=0)
        backend = OpenAIBackend("http://127.0.0.1:9/v1", "m")
        assert (backend.workers, backend.timeout, backend.max_retries) == (9, 5.0, 1)  # one attempt, no retry
        assert OpenAIBackend("http://127.0.0.1:9/v1", "m", workers=2).workers == 2  # explicit wins
    finally:
        CLIENT_DEFAULTS.update(saved)
