"""On-disk cache of LLM-component calls: a repeated request is never sent twice, a failed one is never stored.

Key = sha256(backend identity, method, prompt, parameters). SQLite in WAL mode, shared by threads and processes.
An endpoint (`backend.reports_each`) reports each answer as it arrives and each is committed then; a local model's
calls go in chunks (`backend.cache_chunk`, its batch) and each chunk is committed when it returns. Either way a run
that dies at item 800 of 805 keeps 800 answers and a resumed run makes only the missing calls.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from flame_bench.core.io import sha256_json
from flame_bench.engines.generation_cache import insert_many, open_store
from flame_bench.engines.llm import Prompt


class LLMCache:
    """A JSON value per key in one SQLite table; one connection shared by threads behind a lock."""

    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()
        self._db = open_store(path, "calls", threads=True)

    @staticmethod
    def key(identity: dict[str, Any], method: str, prompt: Prompt, params: dict[str, Any]) -> str:
        """The cache key of one request to the backend described by `identity`."""
        return sha256_json({"backend": identity, "method": method, "prompt": prompt, "params": params})

    def get_many(self, keys: Sequence[str]) -> dict[str, Any]:
        """The stored values of those `keys` that are present."""
        found: dict[str, Any] = {}
        with self._lock:
            for i in range(0, len(keys), 500):
                chunk = list(keys[i:i + 500])
                rows = self._db.execute(f"SELECT key, value FROM calls WHERE key IN ({','.join('?' * len(chunk))})",
                                        chunk)
                found.update((k, json.loads(v)) for k, v in rows)
        return found

    def put_many(self, items: dict[str, Any]) -> None:
        """Store all `items` in one transaction."""
        with self._lock:
            insert_many(self._db, "calls", items)

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM calls").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()


class CachedBackend:
    """An `LLMBackend` served from an `LLMCache`; only missing prompts reach the wrapped backend, in one call."""

    def __init__(self, backend: Any, cache: LLMCache):
        self.backend, self.cache = backend, cache
        self.hits = self.misses = 0

    @property
    def identity(self) -> dict[str, Any]:
        return self.backend.identity

    def _cached(self, method: str, params: dict[str, Any], prompts: Sequence[Prompt],
                call: Callable[..., list[Any]], encode: Callable[[Any], Any] = lambda v: v) -> list[Any]:
        """`call(prompts)` (or `call(prompts, on_result=...)` for a backend that reports each answer) for the
        prompts not in the cache; `encode` turns an answer into what is stored."""
        identity = self.identity
        keys = [self.cache.key(identity, method, p, params) for p in prompts]
        found = self.cache.get_many(sorted(set(keys)))
        todo: dict[str, Prompt] = {}
        for k, p in zip(keys, prompts, strict=True):
            if k not in found and k not in todo:
                todo[k] = p
        self.hits += len(prompts) - len(todo)
        self.misses += len(todo)
        items = list(todo.items())
        if items and getattr(self.backend, "reports_each", False):
            def commit(i: int, value: Any) -> None:  # one transaction per answer, as it arrives
                self.cache.put_many({items[i][0]: encode(value)})

            fresh = call([p for _, p in items], on_result=commit)  # raises on failure; what returned is stored
            found.update((k, encode(v)) for (k, _), v in zip(items, fresh, strict=True))
            return [found[k] for k in keys]
        step = max(1, int(getattr(self.backend, "cache_chunk", 16)))
        for i in range(0, len(items), step):  # committed chunk by chunk: a crash loses at most one chunk
            chunk = items[i:i + step]
            new = {k: encode(v) for (k, _), v in zip(chunk, call([p for _, p in chunk]), strict=True)}
            self.cache.put_many(new)  # a failed call raised above: nothing of its chunk is stored
            found.update(new)
        return [found[k] for k in keys]

    def complete(self, prompts: Sequence[Prompt], max_tokens: int = 128, temperature: float = 0.0,
                 stop: Sequence[str] = (), seed: int | None = None) -> list[str]:
        params: dict[str, Any] = {"max_tokens": max_tokens, "temperature": temperature, "stop": list(stop)}
        if seed is not None:
            params["seed"] = seed  # repeated samples of one prompt are distinct cache entries
        return self._cached("complete", params, prompts,
                            lambda ps, **kw: self.backend.complete(ps, max_tokens=max_tokens, temperature=temperature,
                                                                   stop=stop, seed=seed, **kw))

    def choice_logprobs(self, prompts: Sequence[Prompt], choices: Sequence[str]) -> list[dict[str, float]]:
        out = self._cached("choice_logprobs", {"choices": list(choices)}, prompts,
                           lambda ps, **kw: self.backend.choice_logprobs(ps, choices, **kw),
                           encode=lambda d: {c: (v if v != float("-inf") else None) for c, v in d.items()})
        return [{c: (float("-inf") if v is None else v) for c, v in d.items()} for d in out]  # JSON has no -inf

    def top_logprobs_many(self, prompts: Sequence[Prompt], k: int = 20) -> list[list[tuple[str, float]]]:
        out = self._cached("top_logprobs", {"k": k}, prompts,
                           lambda ps, **kw: self.backend.top_logprobs_many(ps, k, **kw),
                           encode=lambda top: [[t, v] for t, v in top])
        return [[(t, v) for t, v in top] for top in out]

    @property
    def supports_tools(self) -> bool:
        return bool(getattr(self.backend, "supports_tools", False))

    def complete_with_tools(self, prompts: Sequence[Prompt], max_tokens: int, tools: list[dict[str, Any]],
                            tool_choice: Any = None) -> list[str]:
        params = {"max_tokens": max_tokens, "tools": tools, "tool_choice": tool_choice}
        return self._cached("complete_with_tools", params, prompts,
                            lambda ps, **kw: self.backend.complete_with_tools(ps, max_tokens, tools, tool_choice, **kw))
