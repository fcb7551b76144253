"""Content-addressed generation cache under `results/cache/` (SQLite: atomic writes, safe across processes).

Key = sha256(model hash, prompt, decoding config); re-running an evaluation or a report never regenerates.
Only successful generations are stored, and they are committed batch by batch as they finish, so an interrupted
run resumes with only the missing generations.
"""

from __future__ import annotations

import json
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from flame_bench.core.io import sha256_json


def open_store(path: Path, table: str, timeout: float = 60.0, threads: bool = False) -> sqlite3.Connection:
    """A key-value SQLite table in WAL mode, opened safely while other processes open it too: switching a fresh
    file to WAL takes a lock that sqlite's busy timeout does not wait for, so "database is locked" is retried.
    A cache is only ever a cache: a damaged file is moved aside (named in a warning) and a fresh one started."""
    from flame_bench.core.errors import FlameError

    path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + timeout
    while True:
        try:
            db = sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=not threads)
        except sqlite3.OperationalError as e:
            raise FlameError(f"cannot open the cache {path} ({e}); choose a writable FLAME_BENCH_RESULTS") from None
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(f"CREATE TABLE IF NOT EXISTS {table} (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            if db.execute("PRAGMA quick_check").fetchone()[0] != "ok":
                raise sqlite3.DatabaseError("database disk image is malformed")
            return db
        except sqlite3.OperationalError as e:
            db.close()
            if "readonly" in str(e) or "unable to open" in str(e):
                raise FlameError(f"cannot write the cache {path} ({e}); choose a writable FLAME_BENCH_RESULTS"
                                 ) from None
            if "locked" not in str(e) or time.monotonic() > deadline:
                raise
            time.sleep(0.05 + 0.1 * random.random())
        except sqlite3.DatabaseError as e:  # truncated or overwritten: keep it for inspection, start afresh
            db.close()
            aside = path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
            path.rename(aside)
            for suffix in ("-wal", "-shm"):
                path.with_name(path.name + suffix).unlink(missing_ok=True)
            from flame_bench.core.ui import console

            console.print(f"[yellow]warning:[/yellow] the cache {path} is damaged ({e}); moved to {aside}, "
                          "starting an empty one (its entries will be regenerated)")


def insert_many(db: sqlite3.Connection, table: str, items: dict[str, Any]) -> None:
    """Store JSON `items` in an `open_store` table in one transaction: all of them or none."""
    rows = [(k, json.dumps(v)) for k, v in items.items()]
    db.execute("BEGIN IMMEDIATE")  # autocommit connection: the transaction is explicit
    try:
        db.executemany(f"INSERT OR REPLACE INTO {table} VALUES (?, ?)", rows)
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


class GenerationCache:
    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()  # an endpoint's answers are committed from its worker threads
        self._db = open_store(path, "generations", threads=True)
        self.hits = self.misses = 0

    @staticmethod
    def key(model_sha: str, prompt: str, config: dict) -> str:
        return sha256_json({"model": model_sha, "prompt": prompt, "config": config})

    def get_many(self, keys: Sequence[str]) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        with self._lock:
            for i in range(0, len(keys), 500):
                chunk = list(keys[i:i + 500])
                rows = self._db.execute(
                    f"SELECT key, value FROM generations WHERE key IN ({','.join('?' * len(chunk))})", chunk)
                found.update((k, json.loads(v)) for k, v in rows)
        return found

    def put_many(self, items: dict[str, list[str]]) -> None:
        with self._lock:
            insert_many(self._db, "generations", items)

    def generate(self, model_sha: str, config: dict, prompts: Sequence[str],
                 produce: Callable[[list[str], Callable[[list[str], list[list[str]]], None]], list[list[str]]]
                 ) -> list[list[str]]:
        """Completions for `prompts`, producing (in one call) only those not cached yet; `produce(todo, on_batch)`
        reports each finished batch, which is committed at once."""
        keys = [self.key(model_sha, p, config) for p in prompts]
        cached = self.get_many(sorted(set(keys)))
        todo = list(dict.fromkeys(p for p, k in zip(prompts, keys, strict=True) if k not in cached))
        self.hits += len(prompts) - len(todo)
        self.misses += len(todo)

        def commit(batch: list[str], outs: list[list[str]]) -> None:
            new = {self.key(model_sha, p, config): out for p, out in zip(batch, outs, strict=True)}
            self.put_many(new)
            cached.update(new)

        if todo:
            produce(todo, commit)
        return [cached[k] for k in keys]

    def close(self) -> None:
        with self._lock:
            self._db.close()
