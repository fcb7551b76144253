"""`flame-bench serve MODEL`: a minimal OpenAI-compatible endpoint over a local HF model.

For checking the HTTP path end to end with a real model (the same components through `--llm http://...` must
agree with `--llm MODEL`), and for sharing one evaluator between processes. Routes: POST /v1/completions and
/v1/chat/completions (temperature, max_tokens, stop; `logprobs` / `top_logprobs` for the next token; a completions
prompt may be token ids, with `n`, `top_p` and `seed`, which is how `--generation URL` asks), GET /v1/models.
Requests are served concurrently and checked before any work on the model (a refusal is a JSON 400 naming the
problem, never waiting for another request's generation); generation runs one request at a time. Not a production
server.
"""

from __future__ import annotations

import errno
import json
import reprlib
import socket
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from flame_bench.engines.llm import Prompt
from flame_bench.engines.llm.backends import HFBackend

MAX_REQUEST_BYTES = 8 << 20  # 8 MiB: far more than any prompt this server can score (tokenized in seconds)
MAX_N = 128  # completions of one token-id prompt per request
MAX_LOGPROBS = 20  # top log-probabilities returned, as OpenAI's cap
DEFAULT_MAX_TOKENS = {"ids": 16, "text": 128}  # each clamped to the room the context leaves


class BadRequest(ValueError):
    """A request this server refuses: a 400 reply with this message."""


class Served:
    """One served model: its backend, the lock its generation takes, and what requests are checked against."""

    def __init__(self, backend: HFBackend):
        self.backend = backend
        self.lock = threading.Lock()

    @cached_property
    def vocab(self) -> int:
        return self.backend._loaded[0].get_input_embeddings().num_embeddings

    @cached_property
    def context(self) -> int | None:
        return getattr(self.backend._loaded[0].config, "max_position_embeddings", None)

    @cached_property
    def count_tokens(self) -> Callable[[str, bool], int]:
        """Tokens of (text, add_special_tokens), from a copy of the tokenizer that generation never touches (its
        padding settings change under a running generation); no truncation, so a refusal gives the exact count.
        `encode_batch` releases the GIL (`encode` does not): 1.6 MB of text takes ~1 s, during which other requests
        are served."""
        tok = self.backend._loaded[1]
        rust = getattr(tok, "backend_tokenizer", None)
        if rust is None:  # a tokenizer written in Python: a copy of its own
            import copy

            own = copy.deepcopy(tok)
            return lambda text, special: len(own(text, add_special_tokens=special)["input_ids"])
        from tokenizers import Tokenizer

        fast = Tokenizer.from_str(rust.to_str())
        fast.no_padding()
        fast.no_truncation()
        return lambda text, special: len(fast.encode_batch([text], add_special_tokens=special)[0].ids)


@dataclass(frozen=True)
class Request:
    """A checked request: its prompt fits the context with `max_tokens` to generate."""

    chat: bool
    prompt: Prompt | list[int]
    max_tokens: int
    temperature: float
    top_p: float
    n: int
    seed: int | None
    logprobs: int  # how many top log-probabilities of the next token (0: a completion instead)
    stop: tuple[str, ...]

    @property
    def ids(self) -> bool:
        return not self.chat and isinstance(self.prompt, list)


def _field(body: dict[str, Any], name: str, default: Any, what: str, ok: Callable[[Any], bool],
           integer: bool = False) -> Any:
    """body[name] (or `default` when absent or null): a number (an integer with `integer`) for which `ok` holds."""
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int if integer else (int, float)) or not ok(value):
        raise BadRequest(f"{name} must be {what}, got {reprlib.repr(value)}")
    return value


def _prompt(body: dict[str, Any], chat: bool, vocab: int) -> Prompt | list[int]:
    if chat:
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
            raise BadRequest("messages must be a non-empty list of {role, content} objects")
        for i, m in enumerate(messages):
            for key in ("role", "content"):
                if not isinstance(m.get(key), str):
                    raise BadRequest(f"messages[{i}].{key} must be a string, got {reprlib.repr(m.get(key))}")
        return messages
    prompt = body.get("prompt")
    if isinstance(prompt, list):
        if not prompt or not all(isinstance(t, int) and not isinstance(t, bool) for t in prompt):
            raise BadRequest("a list prompt must be non-empty token ids")
        if (bad := next((t for t in prompt if not 0 <= t < vocab), None)) is not None:
            raise BadRequest(f"token id {bad} is outside the vocabulary [0, {vocab - 1}]")
        return prompt
    if not isinstance(prompt, str):
        raise BadRequest(f"prompt must be a string or a list of token ids, got {reprlib.repr(prompt)}")
    return prompt


def parse(served: Served, route: str, body: Any) -> Request:
    """The request `body` asks for, checked against the model (vocabulary, context) without running it."""
    if not isinstance(body, dict):
        raise BadRequest(f"the body must be a JSON object, got {type(body).__name__}")
    chat = route.endswith("/chat/completions")
    temperature = float(_field(body, "temperature", 0.0, "a number in [0, 2]", lambda v: 0 <= v <= 2))
    top_p = float(_field(body, "top_p", 1.0, "a number in (0, 1]", lambda v: 0 < v <= 1))
    n = _field(body, "n", 1, f"an integer in [1, {MAX_N}]", lambda v: 1 <= v <= MAX_N, integer=True)
    seed = _field(body, "seed", None, "an integer in [0, 2**63)", lambda v: 0 <= v < 2**63, integer=True)
    max_tokens = _field(body, "max_tokens", None, "an integer >= 1", lambda v: v >= 1, integer=True)
    if chat:  # chats ask with `logprobs: true` and `top_logprobs: k`, completions with `logprobs: k`
        k = _field(body, "top_logprobs", 0, "an integer >= 0", lambda v: v >= 0, integer=True)
        logprobs = k if body.get("logprobs") else 0
    else:
        logprobs = _field(body, "logprobs", 0, "an integer >= 0", lambda v: v >= 0, integer=True)
    stop = body.get("stop") or []
    stop = [stop] if isinstance(stop, str) else stop
    if not isinstance(stop, list) or len(stop) > 4 or not all(isinstance(s, str) for s in stop):
        raise BadRequest(f"stop must be a string or a list of at most 4 strings, got {reprlib.repr(stop)}")
    prompt = _prompt(body, chat, served.vocab)
    ids = not chat and isinstance(prompt, list)
    if ids:
        tokens = len(prompt)
    else:
        from jinja2 import TemplateError

        try:
            tokens = served.count_tokens(*served.backend.render(prompt))
        except TemplateError as e:  # a chat the model's template refuses (roles out of order, ...)
            raise BadRequest(f"messages do not fit the model's chat template: {e}") from None
    if not tokens:
        raise BadRequest("the prompt has no tokens")
    context = served.context
    if context is not None:
        room = context - tokens
        if room < 1:
            raise BadRequest(f"the prompt is {tokens} tokens, which leaves no room in the model's context of "
                             f"{context} tokens")
        if max_tokens is not None and max_tokens > room:
            raise BadRequest(f"the prompt of {tokens} tokens and max_tokens {max_tokens} exceed the model's "
                             f"context of {context} tokens (at most {room} tokens can be generated)")
    default = DEFAULT_MAX_TOKENS["ids" if ids else "text"]
    return Request(chat=chat, prompt=prompt,
                   max_tokens=max_tokens or (default if context is None else min(default, context - tokens)),
                   temperature=temperature, top_p=top_p, n=n, seed=seed, logprobs=min(logprobs, MAX_LOGPROBS),
                   stop=tuple(stop))


def generate_ids(backend: HFBackend, ids: list[int], max_tokens: int, temperature: float, top_p: float, n: int,
                 seed: int | None) -> list[str]:
    """`n` completions of one token-id prompt, decoded as `flame_bench.engines.generation.generate` decodes."""
    import torch

    model, tok = backend._loaded
    if temperature > 0:
        torch.manual_seed(0 if seed is None else seed)
    kwargs: dict[str, Any] = dict(max_new_tokens=max_tokens, do_sample=temperature > 0, num_return_sequences=n,
                                  pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
    if temperature > 0:
        kwargs.update(temperature=temperature, top_p=top_p)
    device = next(model.parameters()).device
    with torch.inference_mode():
        x = torch.tensor([ids], device=device)
        out = model.generate(input_ids=x, attention_mask=torch.ones_like(x), **kwargs)
    return tok.batch_decode(out[:, len(ids):], skip_special_tokens=True)


def answer(backend: HFBackend, r: Request) -> dict[str, Any]:
    """The reply to a checked request (runs the model)."""
    if r.ids:
        texts = generate_ids(backend, r.prompt, r.max_tokens, r.temperature, r.top_p, r.n, r.seed)
        return {"object": "text_completion", "model": backend.name,
                "choices": [{"index": j, "text": t, "finish_reason": "stop", "logprobs": None}
                            for j, t in enumerate(texts)]}
    if r.logprobs:
        top = backend.top_logprobs(r.prompt, r.logprobs)
        text = top[0][0]
        lp = ({"content": [{"token": text, "logprob": top[0][1],
                            "top_logprobs": [{"token": t, "logprob": v} for t, v in top]}]} if r.chat
              else {"top_logprobs": [dict(top)], "tokens": [text]})
    else:
        text = backend.complete([r.prompt], max_tokens=r.max_tokens, temperature=r.temperature,
                                stop=r.stop, seed=r.seed)[0]
        lp = None
    choice: dict[str, Any] = {"index": 0, "finish_reason": "stop", "logprobs": lp}
    choice.update({"message": {"role": "assistant", "content": text}} if r.chat else {"text": text})
    return {"object": "chat.completion" if r.chat else "text_completion", "model": backend.name, "choices": [choice]}


def handle(served: Served, route: str, body: Any) -> dict[str, Any]:
    """Check the request (raising BadRequest), then answer it, one generation at a time."""
    request = parse(served, route, body)
    with served.lock:
        return answer(served.backend, request)


def port_in_use(host: str, port: int) -> bool:
    """Whether binding `host:port` fails because something holds it (as the server would bind: SO_REUSEADDR)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                return True
            raise
    return False


def _log(line: str) -> None:
    print(f"flame-bench serve: {line}", file=sys.stderr, flush=True)


def _first_line(e: BaseException | None) -> str:
    return f"{type(e).__name__}: {(str(e).splitlines() or [''])[0]}"


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:  # one line (a client gone, ...), no traceback
        _log(f"request from {client_address[0]} failed: {_first_line(sys.exc_info()[1])}")


def make_server(backend: HFBackend, host: str = "127.0.0.1", port: int = 8000) -> ThreadingHTTPServer:
    served = Served(backend)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _send(self, code: int, obj: dict[str, Any]) -> None:
            payload = json.dumps(obj).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def _error(self, code: int, message: str) -> None:
            self._send(code, {"error": {"message": message}})

        def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
            self.close_connection = True  # a request http.server refused (bad request line, method, ...): as JSON
            self._error(code, message or HTTPStatus(code).phrase)

        def do_GET(self) -> None:
            if self.path.rstrip("/").endswith("/models"):
                self._send(200, {"object": "list", "data": [{"id": backend.name, "object": "model"}]})
            else:
                self._error(404, f"no route {self.path}")

        def do_POST(self) -> None:
            if not self.path.endswith(("/completions", "/chat/completions")):
                self._error(404, f"no route {self.path}")
                return
            try:
                length = int(self.headers.get("Content-Length", 0))
            except ValueError:
                self._error(400, "bad request: Content-Length is not a number")
                return
            if not 0 <= length <= MAX_REQUEST_BYTES:  # never read an announced body of any size into memory
                self._error(413, f"request of {length} bytes; at most {MAX_REQUEST_BYTES}")
                return
            try:
                body = json.loads(self.rfile.read(length))
            except RecursionError:
                self._error(400, "bad request: JSON nested too deep")
                return
            except ValueError as e:  # not JSON, or not UTF-8
                self._error(400, f"bad request: {e}")
                return
            try:
                reply = handle(served, self.path, body)
            except BadRequest as e:
                self._error(400, f"bad request: {e}")
                return
            except Exception as e:  # a bug or a failing model: one line here, the cause in the reply
                _log(f"internal error: {_first_line(e)}")
                self._error(500, f"internal error: {_first_line(e)}")
                return
            self._send(200, reply)

    return _Server((host, port), Handler)
