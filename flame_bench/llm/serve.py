"""`flame-bench serve MODEL`: a minimal OpenAI-compatible endpoint over a local HF model.

For checking the HTTP path end to end with a real model (the same components through `--llm http://...` must
agree with `--llm MODEL`), and for sharing one evaluator between processes. Routes: POST /v1/completions and
/v1/chat/completions (temperature, max_tokens, stop; `logprobs` / `top_logprobs` for the next token; a completions
prompt may be token ids, with `n`, `top_p` and `seed`, which is how `--generation URL` asks), GET /v1/models. One
request at a time; not a production server.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from flame_bench.llm.backends import HFBackend


def generate_ids(backend: HFBackend, ids: list[int], max_tokens: int, temperature: float, top_p: float, n: int,
                 seed: int | None) -> list[str]:
    """`n` completions of one token-id prompt, decoded as `flame_bench.generation.generate` decodes."""
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


def handle(backend: HFBackend, route: str, body: dict[str, Any]) -> dict[str, Any]:
    chat = route.endswith("/chat/completions")
    prompt = body["messages"] if chat else body["prompt"]
    if not chat and isinstance(prompt, list):  # token ids
        if not prompt or not all(isinstance(t, int) and not isinstance(t, bool) for t in prompt):
            raise ValueError("a list prompt must be non-empty token ids")
        texts = generate_ids(backend, prompt, int(body.get("max_tokens") or 16), float(body.get("temperature") or 0.0),
                             float(body.get("top_p") or 1.0), int(body.get("n") or 1), body.get("seed"))
        return {"object": "text_completion", "model": backend.name,
                "choices": [{"index": j, "text": t, "finish_reason": "stop", "logprobs": None}
                            for j, t in enumerate(texts)]}
    wants_logprobs = bool(body.get("logprobs"))
    k = int(body.get("top_logprobs") or 0) if chat else int(body.get("logprobs") or 0)
    if wants_logprobs and k > 0:
        top = backend.top_logprobs(prompt, min(k, 20))
        text = top[0][0]
        lp = ({"content": [{"token": text, "logprob": top[0][1],
                            "top_logprobs": [{"token": t, "logprob": v} for t, v in top]}]} if chat
              else {"top_logprobs": [dict(top)], "tokens": [text]})
    else:
        text = backend.complete([prompt], max_tokens=int(body.get("max_tokens") or 128),
                                temperature=float(body.get("temperature") or 0.0), stop=body.get("stop") or ())[0]
        lp = None
    choice: dict[str, Any] = {"index": 0, "finish_reason": "stop", "logprobs": lp}
    choice.update({"message": {"role": "assistant", "content": text}} if chat else {"text": text})
    return {"object": "chat.completion" if chat else "text_completion", "model": backend.name, "choices": [choice]}


MAX_REQUEST_BYTES = 8 << 20  # 8 MiB: far more than any prompt this server can score


def make_server(backend: HFBackend, host: str = "127.0.0.1", port: int = 8000) -> ThreadingHTTPServer:
    lock = threading.Lock()

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

        def do_GET(self) -> None:
            if self.path.rstrip("/").endswith("/models"):
                self._send(200, {"object": "list", "data": [{"id": backend.name, "object": "model"}]})
            else:
                self._send(404, {"error": {"message": f"no route {self.path}"}})

        def do_POST(self) -> None:
            if not self.path.endswith(("/completions", "/chat/completions")):
                self._send(404, {"error": {"message": f"no route {self.path}"}})
                return
            try:
                length = int(self.headers.get("Content-Length", 0))
            except ValueError:
                self._send(400, {"error": {"message": "bad request: Content-Length is not a number"}})
                return
            if not 0 <= length <= MAX_REQUEST_BYTES:  # never read an announced body of any size into memory
                self._send(413, {"error": {"message": f"request of {length} bytes; at most {MAX_REQUEST_BYTES}"}})
                return
            try:
                body = json.loads(self.rfile.read(length))
                with lock:
                    reply = handle(backend, self.path, body)
            except (ValueError, KeyError, TypeError) as e:
                self._send(400, {"error": {"message": f"bad request: {e}"}})
                return
            self._send(200, reply)

    return ThreadingHTTPServer((host, port), Handler)
