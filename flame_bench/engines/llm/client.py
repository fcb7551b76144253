"""Any OpenAI-compatible endpoint (vLLM, llama.cpp server, OpenAI) as an `LLMBackend`.

Chats go to `/chat/completions`, raw text to `/completions`. Requests run on a bounded thread pool and come back
in prompt order. Connection errors (refused included), timeouts, HTTP 429/5xx and malformed replies are retried
with exponential backoff; other 4xx are not. When the retries run out the call fails with one line naming the
cause, and since the cache stores only what a call returned, nothing of a failed call is ever cached.

The key comes from `FLAME_BENCH_API_KEY` (or `OPENAI_API_KEY`) or the constructor, is sent as a Bearer token and
never appears in the identity, errors or repr. Next-token choices are read from `top_logprobs`: a choice scores
the best log-probability among returned tokens whose stripped text is a non-empty prefix of it (case-sensitive),
else -inf. An endpoint that returns no logprobs at all falls back to its greedy one-token answer: a choice that the
answer starts with (or that starts with the one-token answer, e.g. "Tr" for "True") gets 0.0, the others -inf.
"""

from __future__ import annotations

import errno
import math
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import Any

from flame_bench.core.errors import FlameError, redact_url
from flame_bench.engines.llm import Prompt, cut_at_stop

RETRY_STATUS = {408, 409, 429, 500, 502, 503, 504}


Finish = Callable[[str, dict[str, Any]], Any]  # (route, reply) -> the answer a method returns
OnResult = Callable[[int, Any], None]  # (prompt index, answer), as each answer arrives


class _Retryable(Exception):
    """A failure worth another attempt; its message names the cause."""


# How every OpenAI-compatible client of this process behaves unless told otherwise (`flame-bench --workers N
# --timeout S --retries R COMMAND` sets them for a run)
PROBE_SECONDS = 10.0  # the startup probe's limit: seconds, not the minutes of retried requests
CLIENT_DEFAULTS: dict[str, Any] = {"workers": 4, "timeout": 60.0, "max_retries": 3}  # max_retries: attempts


class OpenAIBackend:
    """An OpenAI-compatible endpoint at `base_url` (ending in `/v1`) serving `model`; see the module docstring."""

    def __init__(self, base_url: str, model: str, api_key: str | None = None, timeout: float | None = None,
                 max_retries: int | None = None, backoff: float = 0.5, workers: int | None = None,
                 option: str = "--llm"):
        """`option`: where the user gave this endpoint (`--llm`, `--generation`, ...), named in the fix of an error."""
        timeout = CLIENT_DEFAULTS["timeout"] if timeout is None else timeout
        max_retries = CLIENT_DEFAULTS["max_retries"] if max_retries is None else max_retries
        workers = CLIENT_DEFAULTS["workers"] if workers is None else workers
        self.base_url = base_url.rstrip("/")  # requests go here; anything shown or stored uses `shown_url`
        self.shown_url = redact_url(self.base_url)
        self.model, self.option = model, option
        self.timeout, self.max_retries, self.backoff, self.workers = timeout, max_retries, backoff, workers
        self.reports_each = True  # `on_result` is called per request as it returns: the cache commits each one
        self._key = api_key if api_key is not None else (os.environ.get("FLAME_BENCH_API_KEY")
                                                         or os.environ.get("OPENAI_API_KEY"))

    @classmethod
    def from_env(cls, base_url: str | None = None, model: str | None = None, **kw: Any) -> OpenAIBackend:
        """Base URL and model from the arguments, else `FLAME_BENCH_LLM_BASE_URL` / `FLAME_BENCH_LLM_MODEL`."""
        explicit = bool(base_url)
        base_url = base_url or os.environ.get("FLAME_BENCH_LLM_BASE_URL")
        model = model or os.environ.get("FLAME_BENCH_LLM_MODEL")
        if not base_url:
            raise FlameError("no LLM endpoint: set FLAME_BENCH_LLM_BASE_URL (e.g. http://127.0.0.1:8000/v1) or pass "
                             "--llm URL")
        kw.setdefault("option", "--llm" if explicit else "FLAME_BENCH_LLM_BASE_URL")
        backend = cls(check_endpoint_url(base_url), model or "", **kw)
        if not model:  # the one model the server serves (GET /models), asked with the probe's short timeout
            backend.model = backend.served_model()
        return backend

    def __repr__(self) -> str:
        return f"OpenAIBackend(base_url={self.shown_url!r}, model={self.model!r})"

    @property
    def identity(self) -> dict[str, Any]:
        return {"kind": "openai", "base_url": self.shown_url, "model": self.model}

    # -- transport ---------------------------------------------------------------------------------------------
    def _post(self, client: Any, route: str, body: dict[str, Any]) -> dict[str, Any]:
        """One request with retries; returns the parsed JSON reply (validated to have the route's shape)."""
        import httpx

        url = f"{self.base_url}/{route}"
        headers = {"Authorization": f"Bearer {self._key}"} if self._key else {}
        cause = ""
        for attempt in range(max(1, self.max_retries)):  # max_retries counts attempts (the first included)
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            try:
                resp = client.post(url, json=body, headers=headers, timeout=self.timeout)
                if resp.status_code in RETRY_STATUS or resp.status_code >= 500:
                    raise _Retryable(f"HTTP {resp.status_code}")
                if resp.status_code >= 400:
                    raise FlameError(self._redact(
                        f"LLM endpoint {self.shown_url} refused the request: HTTP {resp.status_code} "
                        f"{_short(resp.text)}; check the model name, key and request"))
                try:
                    data = resp.json()
                except ValueError:
                    raise _Retryable("malformed reply (not JSON)") from None
                if not isinstance(data, dict) or not isinstance(data.get("choices"), list) or not data["choices"]:
                    raise _Retryable("malformed reply (no choices)")
                if not _has_text(route, data["choices"][0]):
                    raise _Retryable("malformed reply (no text in choices[0])")
                return data
            except _Retryable as e:
                cause = str(e)
            except httpx.TransportError as e:
                cause = _transport_cause(e, f"timeout after {self.timeout:g} s")
        attempts = max(1, self.max_retries)
        raise FlameError(self._redact(f"LLM endpoint {self.shown_url} failed after {attempts} "
                                      f"attempt{'s' if attempts > 1 else ''}: {cause}; check that the server is up "
                                      f"or pass another {self.option}"))

    def _redact(self, message: str) -> str:
        """Never let the key or URL credentials reach a message, even if the server echoes them back."""
        message = redact_url(message.replace(self.base_url, self.shown_url))
        return message.replace(self._key, "***") if self._key else message

    def _map(self, route: str, bodies: list[dict[str, Any]], finish: Finish,
             on_result: OnResult | None = None) -> list[Any]:
        """Every body posted (a bounded pool of workers), each reply turned into its answer by `finish` once, in
        its worker; `on_result(i, answer)` as each one arrives, in any order."""
        import httpx

        out: list[Any] = [None] * len(bodies)

        def post(i: int) -> None:
            out[i] = finish(route, self._post(client, route, bodies[i]))
            if on_result is not None:
                on_result(i, out[i])

        workers = max(1, self.workers)
        # one kept-alive connection per worker: httpx's default pool (100 connections, 20 kept alive) would cap the
        # calls in flight at 100 and open a new connection for every call of the workers past 20
        limits = httpx.Limits(max_connections=workers, max_keepalive_connections=workers)
        with httpx.Client(limits=limits) as client:
            pool = ThreadPoolExecutor(max_workers=workers)
            try:
                done, _ = wait([pool.submit(post, i) for i in range(len(bodies))], return_when=FIRST_EXCEPTION)
                for future in done:
                    future.result()  # the first failure is raised; what already returned was reported
            finally:  # on a failure, requests not yet started are dropped rather than retried in vain
                pool.shutdown(wait=True, cancel_futures=True)
        return out

    def _body(self, prompt: Prompt | list[int], **params: Any) -> tuple[str, dict[str, Any]]:
        if isinstance(prompt, str) or (prompt and all(isinstance(t, int) for t in prompt)):  # text or token ids
            return "completions", {"model": self.model, "prompt": prompt, **params}
        return "chat/completions", {"model": self.model, "messages": prompt, **params}

    def _run(self, prompts: Sequence[Prompt | list[int]], finish: Finish, on_result: OnResult | None = None,
             each: Sequence[dict[str, Any]] | None = None, **params: Any) -> list[Any]:
        """Every prompt sent with `params` (and its own `each[i]`); answers (`finish` of each reply) in prompt
        order, each also reported to `on_result` under its prompt's index as it arrives."""
        routed = [self._body(p, **params, **(each[i] if each else {})) for i, p in enumerate(prompts)]
        out: list[Any] = [None] * len(routed)
        for route in {r for r, _ in routed}:
            # sent in prompt order: requests that share a prefix (FActScore's passages before each fact) reach the
            # server together, while its prefix cache (vLLM's automatic prefix caching) still holds that prefix
            idx = sorted((i for i, (r, _) in enumerate(routed) if r == route), key=lambda i: _prompt_key(routed[i][1]))
            report = None if on_result is None else (lambda j, answer, idx=idx: on_result(idx[j], answer))
            for i, answer in zip(idx, self._map(route, [routed[i][1] for i in idx], finish, report), strict=True):
                out[i] = answer
        return out

    # -- LLMBackend --------------------------------------------------------------------------------------------
    # `on_result(i, value)`, when given, is called as the answer to prompt i arrives (the cache commits it there),
    # so a run that fails part-way keeps every answer that came back.
    def complete(self, prompts: Sequence[Prompt], max_tokens: int = 128, temperature: float = 0.0,
                 stop: Sequence[str] = (), seed: int | None = None,
                 on_result: Callable[[int, str], None] | None = None) -> list[str]:
        params: dict[str, Any] = {"max_tokens": max_tokens, "temperature": temperature}
        if seed is not None:
            params["seed"] = seed
        if stop:
            params["stop"] = list(stop)[:4]  # OpenAI accepts at most 4; all are applied again below
        return self._run(prompts, lambda route, data: cut_at_stop(_text(route, data), stop), on_result, **params)

    def sample(self, prompts: Sequence[list[int]], n: int = 1, max_tokens: int = 128, temperature: float = 0.0,
               top_p: float = 1.0, seeds: Sequence[int | None] | None = None,
               on_result: Callable[[int, list[str]], None] | None = None) -> list[list[str]]:
        """`n` completions of each token-id prompt (one request each, with its own seed): how `--generation URL`
        generates, from exactly the token ids the local model would see."""
        each = [{"seed": s} if s is not None else {} for s in (seeds or [None] * len(prompts))]
        return self._run(prompts, lambda route, data: [c.get("text") or "" for c in data["choices"]], on_result,
                         each, n=n, max_tokens=max_tokens, temperature=temperature, top_p=top_p)

    supports_tools = True  # `complete_with_tools`: function calling (AlpacaEval's *_fn annotators)

    def complete_with_tools(self, prompts: Sequence[Prompt], max_tokens: int, tools: list[dict[str, Any]],
                            tool_choice: Any = None, on_result: Callable[[int, str], None] | None = None) -> list[str]:
        """Chats sent with `tools` (greedy); each reply is its first tool call's arguments (JSON text), or its text
        when the model answered without a call."""
        def finish(route: str, data: dict[str, Any]) -> str:
            message = data["choices"][0].get("message") or {}
            calls = message.get("tool_calls") or []
            if calls and isinstance(calls[0], dict):
                return str((calls[0].get("function") or {}).get("arguments") or "")
            return _text(route, data)

        params: dict[str, Any] = {"max_tokens": max_tokens, "temperature": 0.0, "tools": tools}
        if tool_choice is not None:
            params["tool_choice"] = tool_choice
        return self._run(prompts, finish, on_result, **params)

    def probe(self, seconds: float = PROBE_SECONDS) -> Any:
        """GET /models once, with a short connect and first-byte timeout: an endpoint that is down, or accepts
        connections and never answers, is named in seconds, before any work (not after every retry of a 60 s
        request). Returns the reply (an httpx response; any HTTP status means the server answers)."""
        import httpx

        headers = {"Authorization": f"Bearer {self._key}"} if self._key else {}
        try:
            return httpx.get(f"{self.base_url}/models", headers=headers,
                             timeout=httpx.Timeout(seconds, connect=min(seconds, 3.0)))
        except httpx.TransportError as e:
            cause = _transport_cause(e, f"no answer within {seconds:g} s")
        raise FlameError(self._redact(f"LLM endpoint {self.shown_url} does not answer ({cause}); check that the "
                                      f"server is up, or change {self.option}"))

    def served_model(self) -> str:
        """The name of the one model this server serves (GET /models), for when no model name is given."""
        try:
            resp = self.probe()
        except FlameError as e:
            raise FlameError(f"{e} (it was asked for its model name: FLAME_BENCH_LLM_MODEL is unset)") from None
        try:
            names = [m["id"] for m in resp.json()["data"]]
        except (ValueError, KeyError, TypeError) as e:
            raise FlameError(self._redact(f"LLM endpoint {self.shown_url} did not list its models (HTTP "
                                          f"{resp.status_code}, {_short(e)}); set FLAME_BENCH_LLM_MODEL")) from None
        if len(names) != 1:
            raise FlameError(f"LLM endpoint {self.shown_url} serves {len(names)} models ({', '.join(names[:5])}); "
                             "set FLAME_BENCH_LLM_MODEL to the one to use")
        return names[0]

    def choice_logprobs(self, prompts: Sequence[Prompt], choices: Sequence[str],
                        on_result: Callable[[int, dict[str, float]], None] | None = None) -> list[dict[str, float]]:
        def finish(route: str, data: dict[str, Any]) -> dict[str, float]:
            top = _top_logprobs(route, data)
            if top is None:  # no logprobs from this endpoint: its greedy answer decides
                answer = _text(route, data).strip()
                return {c: 0.0 if answer and (answer.startswith(c) or c.startswith(answer)) else -math.inf
                        for c in choices}
            return {c: max((lp for tok, lp in top if tok.strip() and c.startswith(tok.strip())), default=-math.inf)
                    for c in choices}

        return self._run_logprobs(prompts, finish, on_result)

    def top_logprobs_many(self, prompts: Sequence[Prompt], k: int = 20,
                          on_result: Callable[[int, list[tuple[str, float]]], None] | None = None
                          ) -> list[list[tuple[str, float]]]:
        """The k most likely first tokens of each reply, exactly as the endpoint names them (no stripping)."""
        def finish(route: str, data: dict[str, Any]) -> list[tuple[str, float]]:
            top = _top_logprobs(route, data)
            if top is None:
                raise FlameError(f"LLM endpoint {self.shown_url} returned no logprobs; this judge needs an endpoint "
                                 "that returns top_logprobs")
            return top

        return self._run_logprobs(prompts, finish, on_result, k)

    def _run_logprobs(self, prompts: Sequence[Prompt], finish: Finish, on_result: OnResult | None,
                      k: int = 20) -> list[Any]:
        """`_run` for one-token replies with the top `k` log-probabilities (chats and raw text ask differently)."""
        res: dict[int, Any] = {}
        for chat, params in ((True, {"logprobs": True, "top_logprobs": k}), (False, {"logprobs": k})):
            ids = [i for i, p in enumerate(prompts) if isinstance(p, str) != chat]
            if not ids:
                continue
            report = None if on_result is None else (lambda j, answer, ids=ids: on_result(ids[j], answer))
            for i, answer in zip(ids, self._run([prompts[i] for i in ids], finish, report, max_tokens=1,
                                                temperature=0.0, **params), strict=True):
                res[i] = answer
        return [res[i] for i in range(len(prompts))]


def _transport_cause(e: Exception, timed_out: str) -> str:
    """What went wrong with a request that got no reply, in a few words (`timed_out` for a timeout)."""
    import httpx

    if isinstance(e, httpx.TimeoutException):
        return timed_out
    if isinstance(e, httpx.ConnectError):
        return "connection refused" if _refused(e) else f"connection failed ({_short(e)})"
    return f"transport error ({_short(e)})"


def check_endpoint_url(url: str) -> str:
    """`url` as given, if it can be an OpenAI-compatible base URL: requests append routes (`/models`) to it, so a
    `?query` or `#fragment` never worked; the key goes in FLAME_BENCH_API_KEY."""
    if "?" in url or "#" in url:
        raise FlameError(f"endpoint URL {redact_url(url)} has a ?query or #fragment, which requests cannot append "
                         "routes to; pass the bare base URL (e.g. http://127.0.0.1:8000/v1) and any key in "
                         "FLAME_BENCH_API_KEY")
    return url


def _prompt_key(body: dict[str, Any]) -> str:
    """What a request's prompt starts with, as text that sorts requests sharing a prefix next to each other."""
    if "prompt" in body:
        return str(body["prompt"])
    return "\x00".join(f"{m.get('role')}\x01{m.get('content')}" for m in body.get("messages", []))


def _short(x: Any, n: int = 120) -> str:
    return str(x).replace("\n", " ")[:n]


def _refused(e: BaseException) -> bool:
    """Whether a connect error (or anything it wraps) is a refused connection."""
    seen: BaseException | None = e
    for _ in range(8):  # a short chain; never follow a cycle forever
        if seen is None:
            break
        if isinstance(seen, ConnectionRefusedError) or getattr(seen, "errno", None) == errno.ECONNREFUSED:
            return True
        seen = seen.__cause__ or seen.__context__
    return "refused" in str(e).lower()


def _has_text(route: str, choice: Any) -> bool:
    if not isinstance(choice, dict):
        return False
    if route == "completions":
        return isinstance(choice.get("text"), str)
    message = choice.get("message")
    return isinstance(message, dict) and isinstance(message.get("content"), (str, type(None)))


def _text(route: str, data: dict[str, Any]) -> str:
    """The generated text of a reply already checked by `_has_text`."""
    choice = data["choices"][0]
    return choice["text"] if route == "completions" else choice["message"]["content"] or ""


def _top_logprobs(route: str, data: dict[str, Any]) -> list[tuple[str, float]] | None:
    """(token, logprob) candidates for the first generated token, or None when the reply carries no logprobs."""
    lp = data["choices"][0].get("logprobs")
    if not lp:
        return None
    try:
        if route == "completions":
            first = lp["top_logprobs"][0]
            return [(str(t), float(v)) for t, v in first.items()]
        first = lp["content"][0]
        return [(str(t["token"]), float(t["logprob"])) for t in first.get("top_logprobs") or [first]]
    except (KeyError, IndexError, TypeError, ValueError):
        return None
