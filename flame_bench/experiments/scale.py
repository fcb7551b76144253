"""`flame-bench bench --scale`: FLAME at the paper's scale, planned from measurements on this machine.

- **LLM call throughput** against a local simulated OpenAI-compatible endpoint (fixed latency per call, optional
  failure rate; served from a process of its own, as a remote server would be): calls/s of flame-bench's own
  client at 1, 8, 64 and 256 workers against the ideal (workers /
  latency); the client's per-call overhead (a zero-latency endpoint, one worker); the cost of a cache hit; and what a
  crash mid-way loses (the endpoint dies after K answers: the cache holds every answered call).
- **Retrieval at Wikipedia scale**: bm25s index build time (from token ids), peak memory and query latency over
  synthetic passages (100 tokens each, Zipf-distributed over a 50k vocabulary), each size in a process of its own,
  extrapolated linearly to the paper's ~21M passages.
- **A cost model of the FLAME pipeline** at the paper's sizes (3,200 seed instructions, 20K DPO instructions, 4
  samples each, RM_IF sampled 3 times, RM_fact decomposing every sentence and verifying every fact): calls and tokens
  per stage from stated per-response ratios, hours at a stated throughput per GPU. Every assumption is a named
  parameter in the output, not a constant hidden in the arithmetic.

Everything is local (127.0.0.1) and bounded in calls and time; no number here is a timed assertion in a test.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

WORKERS = (1, 8, 64, 256)


# -- a simulated endpoint ---------------------------------------------------------------------------------------------
class _Handler(BaseHTTPRequestHandler):
    server: _SimServer
    protocol_version = "HTTP/1.1"  # keep-alive, as a real endpoint (http.server's default, 1.0, closes every call)
    disable_nagle_algorithm = True  # else each kept-alive call waits out TCP's delayed ACK (~40 ms)

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def setup(self) -> None:  # once per connection, however many calls it carries
        super().setup()
        with self.server.lock:
            self.server.connections += 1

    def _reply(self, code: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # http.server's name
        self._reply(200, {"data": [{"id": "sim"}]})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        sim = self.server
        with sim.lock:
            sim.requests += 1
            n = sim.requests
        if sim.die_after is not None and n > sim.die_after:  # a crashed server: the connection just closes
            self.close_connection = True
            return
        time.sleep(sim.latency)
        if sim.rng_fail() < sim.fail_rate:
            self._reply(503, {"error": "simulated overload"})
            return
        text = f"reply to {str(body.get('prompt', body.get('messages', '')))[:20]}"
        choice = {"message": {"role": "assistant", "content": text}} if "messages" in body else {"text": text}
        self._reply(200, {"choices": [{**choice, "index": 0, "finish_reason": "stop"}]})


class _SimServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 512

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client closing its kept-alive connection is how a run ends, not an error worth a traceback."""
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)

    def __init__(self, latency: float, fail_rate: float, die_after: int | None, seed: int):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.latency, self.fail_rate, self.die_after = latency, fail_rate, die_after
        self.requests, self.connections, self.lock = 0, 0, threading.Lock()
        rng = random.Random(seed)
        self.rng_fail = lambda: rng.random()


def _serve_child(latency: float, fail_rate: float, die_after: int | None, seed: int, ports: Any) -> None:
    server = _SimServer(latency, fail_rate, die_after, seed)
    ports.put(server.server_address[1])
    server.serve_forever()


@contextmanager
def simulated_endpoint(latency: float = 0.2, fail_rate: float = 0.0, die_after: int | None = None,
                       seed: int = 0, own_process: bool = False,
                       stats: dict[str, int] | None = None) -> Iterator[str]:
    """An OpenAI-compatible endpoint on 127.0.0.1 answering every call after `latency` seconds; yields its /v1 URL.
    `own_process`: serve from a process of its own, so the server's work never competes with the client's for one
    interpreter (what a remote endpoint is); otherwise a thread of this process, whose calls and connections are
    written into `stats` when it stops."""
    if own_process:
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        ports = ctx.Queue()
        proc = ctx.Process(target=_serve_child, args=(latency, fail_rate, die_after, seed, ports), daemon=True)
        proc.start()
        try:
            yield f"http://127.0.0.1:{ports.get(timeout=60)}/v1"
        finally:
            proc.terminate()
            proc.join(timeout=10)
        return
    server = _SimServer(latency, fail_rate, die_after, seed)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()
        if stats is not None:
            stats.update(requests=server.requests, connections=server.connections)


# -- throughput -----------------------------------------------------------------------------------------------------
def bench_throughput(latency: float = 0.2, workers: tuple[int, ...] = WORKERS, fail_rate: float = 0.05,
                     quick: bool = False) -> dict[str, Any]:
    from flame_bench.engines.llm.cache import CachedBackend, LLMCache
    from flame_bench.engines.llm.client import OpenAIBackend

    out: dict[str, Any] = {"latency_s": latency, "curve": []}
    for w in workers:
        n = max(2 * w, 16) if quick else max(4 * w, 32)
        with simulated_endpoint(latency, own_process=True) as url:
            client = OpenAIBackend(url, "sim", workers=w, timeout=30, max_retries=3, backoff=0.05)
            t0 = time.perf_counter()
            client.complete([f"q{i}" for i in range(n)], max_tokens=8)
            seconds = time.perf_counter() - t0
        ideal = w / latency
        out["curve"].append({"workers": w, "calls": n, "seconds": seconds, "calls_per_s": n / seconds,
                             "ideal_calls_per_s": ideal, "share_of_ideal": n / seconds / ideal})
    n = 100 if quick else 400
    with simulated_endpoint(0.0, own_process=True) as url:  # the client's own cost per call: no latency to hide it
        client = OpenAIBackend(url, "sim", workers=1, timeout=30)
        t0 = time.perf_counter()
        client.complete([f"o{i}" for i in range(n)], max_tokens=8)
        out["overhead_ms_per_call"] = 1000 * (time.perf_counter() - t0) / n
    with simulated_endpoint(latency / 4, fail_rate=fail_rate, own_process=True) as url:  # retried, never stored
        client = OpenAIBackend(url, "sim", workers=16, timeout=30, max_retries=6, backoff=0.01)
        t0 = time.perf_counter()
        client.complete([f"f{i}" for i in range(n // 2)], max_tokens=8)
        out["with_failures"] = {"fail_rate": fail_rate, "calls": n // 2, "workers": 16,
                                "calls_per_s": (n // 2) / (time.perf_counter() - t0),
                                "ideal_calls_per_s": 16 / (latency / 4)}
    import tempfile

    with tempfile.TemporaryDirectory() as tmp, simulated_endpoint(0.0) as url:
        cache = LLMCache(Path(tmp) / "llm.sqlite")
        cached = CachedBackend(OpenAIBackend(url, "sim", workers=8, timeout=30), cache)
        prompts = [f"c{i}" for i in range(n)]
        cached.complete(prompts, max_tokens=8)
        t0 = time.perf_counter()
        cached.complete(prompts, max_tokens=8)  # every one a hit
        out["cache_hit_ms"] = 1000 * (time.perf_counter() - t0) / n
        cache.close()
    out["crash"] = _crash_midway(latency / 4, quick)
    return out


def _crash_midway(latency: float, quick: bool) -> dict[str, Any]:
    """The endpoint dies after K answers, mid-run: how many answered calls did the cache keep?"""
    import tempfile

    from flame_bench.core.errors import FlameError
    from flame_bench.engines.llm.cache import CachedBackend, LLMCache
    from flame_bench.engines.llm.client import OpenAIBackend

    n, k = (64, 40) if quick else (256, 150)
    with tempfile.TemporaryDirectory() as tmp:
        cache = LLMCache(Path(tmp) / "llm.sqlite")
        with simulated_endpoint(latency, die_after=k) as url:
            cached = CachedBackend(OpenAIBackend(url, "sim", workers=16, timeout=10, max_retries=1), cache)
            with suppress(FlameError):  # the run fails when the server dies; the question is what it kept
                cached.complete([f"k{i}" for i in range(n)], max_tokens=8)
        stored = len(cache)
        cache.close()
    return {"calls": n, "answered_before_crash": k, "stored_in_cache": stored, "lost": k - stored}


# -- retrieval --------------------------------------------------------------------------------------------------------
def _retrieval_child(n_passages: int, seed: int, queue: Any) -> None:
    import resource

    import bm25s
    import numpy as np
    from bm25s.tokenization import Tokenized

    rng = np.random.default_rng(seed)
    vocab_size = 50_000
    vocab = {f"w{i}": i for i in range(vocab_size)}
    tokens = rng.zipf(1.1, size=(n_passages, 100)) % vocab_size  # Zipf word frequencies, as token ids
    t0 = time.perf_counter()
    index = bm25s.BM25(method="robertson")
    index.index(Tokenized(ids=[row.tolist() for row in tokens], vocab=vocab), show_progress=False)
    build = time.perf_counter() - t0
    del tokens
    queries = Tokenized(ids=[(rng.zipf(1.1, size=8) % vocab_size).tolist() for _ in range(100)], vocab=vocab)
    t0 = time.perf_counter()
    index.retrieve(queries, k=10, show_progress=False, n_threads=1)
    query = (time.perf_counter() - t0) / len(queries.ids)
    queue.put({"passages": n_passages, "build_s": build, "query_ms": 1000 * query,
               "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024})


def bench_retrieval(sizes: tuple[int, ...] = (100_000, 1_000_000), seed: int = 0,
                    target: int = 21_000_000) -> dict[str, Any]:
    """Each size in a fresh process (peak memory is the process's own), then a linear fit to `target` passages."""
    rows = [_in_own_process(_retrieval_child, (n, seed), timeout=1800) for n in sizes]
    projected = _linear_projection(rows, target, ("build_s", "peak_rss_mb", "query_ms"))
    return {"rows": rows, "projected": {"passages": target, **projected},
            "fits_24gb": projected["peak_rss_mb"] < 24 * 1024}


def _in_own_process(target: Any, args: tuple, timeout: float) -> dict[str, Any]:
    """`target(*args, queue)` run in a fresh process (its peak memory is its own); what it put on the queue."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=target, args=(*args, queue))
    proc.start()
    out = queue.get(timeout=timeout)
    proc.join()
    return out


def _linear_projection(rows: list[dict[str, Any]], target: int, keys: tuple[str, ...]) -> dict[str, float]:
    """Each of `keys` at `target` passages, on the line through the first and the last measured size (through the
    origin when one size was measured)."""
    a, b = rows[0], rows[-1]
    span = b["passages"] - a["passages"]
    return {key: b[key] + ((b[key] - a[key]) / span if span else b[key] / b["passages"]) * (target - b["passages"])
            for key in keys}


def _zipf_shard(seed: int, shard: int, n_passages: int, vocab_size: int = 50_000) -> list[list[int]]:
    """Synthetic passages of one shard (100 Zipf-distributed token ids each); the same every call."""
    import numpy as np

    rng = np.random.default_rng([seed, shard])
    return [row.tolist() for row in rng.zipf(1.1, size=(n_passages, 100)) % vocab_size]


def _sharded_child(n_passages: int, shard_size: int, out: str, seed: int, queue: Any) -> None:
    import resource
    import shutil

    import numpy as np

    from flame_bench.scoring.sharded_bm25 import ShardedBM25, build_sharded

    sizes = [min(shard_size, n_passages - start) for start in range(0, n_passages, shard_size)]
    t0 = time.perf_counter()
    manifest = build_sharded(Path(out), [lambda i=i, n=n: _zipf_shard(seed, i, n) for i, n in enumerate(sizes)],
                             50_000)
    build = time.perf_counter() - t0
    build_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    disk = sum(f.stat().st_size for f in Path(out).rglob("*") if f.is_file()) / 2**20
    index = ShardedBM25(Path(out))
    rng = np.random.default_rng([seed, 10**6])
    queries = [(rng.zipf(1.1, size=8) % 50_000).tolist() for _ in range(50)]
    t0 = time.perf_counter()
    for q in queries:
        index.search(q, 10)
    query = (time.perf_counter() - t0) / len(queries)
    shutil.rmtree(out)
    queue.put({"passages": manifest["passages"], "shards": len(sizes), "build_s": build,
               "build_peak_rss_mb": build_rss, "disk_mb": disk, "query_ms": 1000 * query,
               "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024})


def _same_top_k(seed: int, n_passages: int, shards: int, out: str) -> dict[str, Any]:
    """The sharded index's top-10 against one bm25s index over the same passages, on 100 queries."""
    import shutil

    import bm25s
    import numpy as np
    from bm25s.tokenization import Tokenized

    from flame_bench.scoring.retrieval import top_k
    from flame_bench.scoring.sharded_bm25 import ShardedBM25, build_sharded

    size = n_passages // shards
    parts = [_zipf_shard(seed, i, size) for i in range(shards)]
    build_sharded(Path(out), [lambda p=p: p for p in parts], 50_000)
    single = bm25s.BM25(method="robertson")
    single.index(Tokenized(ids=[d for p in parts for d in p], vocab={f"w{i}": i for i in range(50_000)}),
                 show_progress=False)
    index = ShardedBM25(Path(out))
    rng = np.random.default_rng([seed, 10**6 + 1])
    same = 0
    for _ in range(100):
        q = (rng.zipf(1.1, size=8) % 50_000).tolist()
        whole = np.asarray(single.get_scores_from_ids(q), dtype=float)
        expected = [(int(i), float(whole[i])) for i in top_k(whole, 10)]
        same += index.search(q, 10) == expected
    shutil.rmtree(out)
    return {"passages": size * shards, "shards": shards, "queries": 100, "same_top10": same}


def _rm_fact_path(seed: int, n_passages: int, out: str) -> dict[str, Any]:
    """RM_fact's query path (an instruction-length query against every passage of a knowledge source, top 10) through
    the source's sharded index (`KnowledgeSource.use_index`) against its in-memory index: same passages, and each
    one's build and per-query time."""
    import shutil

    import numpy as np

    from flame_bench.scoring.retrieval import KnowledgeSource
    from flame_bench.scoring.sharded_bm25 import SourceIndex, build_source_index

    rng = np.random.default_rng([seed, 2 * 10**6])
    pages = {f"page {i}": [" ".join(f"w{t}" for t in row)] for i, row in
             enumerate(rng.zipf(1.1, size=(n_passages, 60)) % 50_000)}
    queries = [" ".join(f"w{t}" for t in row) for row in rng.zipf(1.1, size=(100, 12)) % 50_000]
    in_memory, indexed = (KnowledgeSource(pages, name=f"zipf-{seed}-{n_passages}") for _ in range(2))
    t0 = time.perf_counter()
    build_source_index(indexed, Path(out), shard_passages=-(-n_passages // 2))
    index_build = time.perf_counter() - t0
    indexed.use_index(SourceIndex(Path(out), indexed))
    t0 = time.perf_counter()
    in_memory.search(queries[0], 10)  # builds the in-memory index
    memory_build = time.perf_counter() - t0
    results, seconds = {}, {}
    for name, source in (("in_memory", in_memory), ("sharded", indexed)):
        t0 = time.perf_counter()
        results[name] = [[p.id for p in source.search(q, 10)] for q in queries]
        seconds[name] = (time.perf_counter() - t0) / len(queries)
    shutil.rmtree(out)
    return {"passages": n_passages, "queries": len(queries), "k": 10,
            "same_top10": sum(a == b for a, b in zip(results["in_memory"], results["sharded"], strict=True)),
            "index_build_s": index_build, "in_memory_build_s": memory_build,
            "in_memory_query_ms": 1000 * seconds["in_memory"], "sharded_query_ms": 1000 * seconds["sharded"]}


def bench_sharded_retrieval(sizes: tuple[int, ...] = (1_000_000, 5_000_000), shard_size: int = 1_000_000,
                            seed: int = 0, target: int = 21_000_000, check_passages: int = 200_000,
                            work: Path | None = None) -> dict[str, Any]:
    """The sharded, memory-mapped index (`flame_bench.scoring.sharded_bm25`) at each size, each in its own process;
    its top-10 checked against one in-memory index at `check_passages`; every measure projected linearly to
    `target` (`project_sharded`)."""
    import tempfile

    work = work or Path(tempfile.mkdtemp(prefix="flame-bench-sharded-"))
    rows = [_in_own_process(_sharded_child, (n, shard_size, str(work / f"idx-{n}"), seed), timeout=3600)
            for n in sizes]
    check = _same_top_k(seed, check_passages, 2, str(work / "check"))
    rm_fact = _rm_fact_path(seed, check_passages, str(work / "rm_fact"))
    projected = project_sharded(rows, target, shard_size)
    return {"shard_size": shard_size, "rows": rows, "projected": projected, "check": check, "rm_fact_path": rm_fact,
            "fits_24gb": projected["build_peak_rss_mb"] < 24 * 1024}


def project_sharded(rows: list[dict[str, Any]], target: int, shard_size: int) -> dict[str, Any]:
    """Every measure linear in the passages between the first and the last measured size (build peak memory too: it
    grew from shard to shard when measured, so it is not taken as constant)."""
    return {"passages": target, "shards": -(-target // shard_size), "peak_rss_mb": None,
            **_linear_projection(rows, target, ("build_s", "build_peak_rss_mb", "disk_mb", "query_ms"))}


# -- the cost model ---------------------------------------------------------------------------------------------------
PAPER = {"seed_instructions": 3200, "fact_based_seed": 1013, "dpo_instructions": 20000, "samples_per_instruction": 4,
         "rm_if_samples": 3, "flame_sft_samples": 10}
ASSUMED = {  # per-response ratios and sizes the paper does not give; stated, never fitted
    "fact_based_share_of_dpo_prompts": 1013 / 3200,  # as in the seed set
    "sentences_per_response": 12, "facts_per_sentence": 2.5,  # a ~300-word response, FActScore-like decomposition
    "response_tokens": 400, "judge_prompt_tokens": 900, "judge_output_tokens": 120,
    "decompose_prompt_tokens": 700, "decompose_output_tokens": 60, "verify_prompt_tokens": 1500,
    "verify_output_tokens": 1, "gen_prompt_tokens": 300,
    "output_tokens_per_s_per_gpu": 1500.0,  # 70B-class generation, batched, one GPU (stated, not measured here)
    "prompt_tokens_per_s_per_gpu": 15000.0,
}


def cost_model(assumed: dict[str, float] | None = None, structure: dict[str, float] | None = None) -> dict[str, Any]:
    """Calls and tokens per stage of FLAME at the paper's sizes, and GPU-hours at the stated throughput.
    `structure`: per-unit ratios counted on a small run (`counted_ratios`): samples scored per fact-based
    instruction (they must equal the paper's 4) and RM_fact retrievals per response (1: the instruction is the
    query), checked against the paper's pipeline before anything is priced."""
    a = {**ASSUMED, **(assumed or {})}
    p = PAPER
    if structure:
        if structure["samples_per_instruction"] != p["samples_per_instruction"]:
            raise ValueError(f"the counted run scored {structure['samples_per_instruction']} samples per "
                             f"instruction, the paper {p['samples_per_instruction']}")
        a["retrievals_per_response"] = structure["retrievals_per_response"]
    responses = p["dpo_instructions"] * p["samples_per_instruction"]
    fact_responses = responses * a["fact_based_share_of_dpo_prompts"]
    sentences = fact_responses * a["sentences_per_response"]
    facts = sentences * a["facts_per_sentence"]
    stages = [
        ("SFT^flame elicitation (base model, fact-based seeds)", p["fact_based_seed"] * p["flame_sft_samples"],
         a["gen_prompt_tokens"], a["response_tokens"]),
        ("DPO sampling (4 per instruction)", responses, a["gen_prompt_tokens"], a["response_tokens"]),
        ("RM_IF (3 judgements per response)", responses * p["rm_if_samples"], a["judge_prompt_tokens"],
         a["judge_output_tokens"]),
        ("RM_fact decomposition (per sentence)", sentences, a["decompose_prompt_tokens"], a["decompose_output_tokens"]),
        ("RM_fact verification (per fact, 10 passages)", facts, a["verify_prompt_tokens"], a["verify_output_tokens"]),
    ]
    rows = []
    for name, calls, prompt_tokens, output_tokens in stages:
        hours = (calls * prompt_tokens / a["prompt_tokens_per_s_per_gpu"]
                 + calls * output_tokens / a["output_tokens_per_s_per_gpu"]) / 3600
        rows.append({"stage": name, "calls": int(calls), "prompt_tokens": int(calls * prompt_tokens),
                     "output_tokens": int(calls * output_tokens), "gpu_hours": hours})
    retrievals = fact_responses * a.get("retrievals_per_response", 1.0)
    return {"paper_sizes": p, "assumed": a, "stages": rows, "total_calls": sum(r["calls"] for r in rows),
            "total_gpu_hours": sum(r["gpu_hours"] for r in rows), "rm_fact_retrievals": int(retrievals)}


def counted_ratios(seed: int = 0, quiet: bool = True) -> dict[str, Any]:
    """FLAME's own counters on a small run: the smoke world built in a scratch folder and the `flame` system's two
    stages run there (SFT^flame elicitation, DPO^flame sampling and scoring); the per-unit ratios its stage records
    count. The world's responses are a tiny model's, so its content ratios (sentences, facts) are not a 70B model's:
    the structure (calls per response, per sentence, per fact) is what carries over."""
    import tempfile

    from flame_bench.alignment.stages import run_stages
    from flame_bench.alignment.systems import load_system
    from flame_bench.core.paths import generation_cache_path, results_dir_set
    from flame_bench.core.registry import RECIPES, load_builtin
    from flame_bench.engines.generation_cache import GenerationCache
    from flame_bench.world.build import build_world
    from flame_bench.world.presets import get_preset
    from flame_bench.world.source import RM_IF_SAMPLES, WorldSource

    load_builtin()
    with tempfile.TemporaryDirectory(prefix="flame-bench-counted-") as tmp, results_dir_set(Path(tmp) / "results"):
        build_world(get_preset("smoke"), seed, Path(tmp) / "world", quiet=quiet)
        source = WorldSource.open(Path(tmp) / "world")
        spec = load_system("flame", known_recipes=RECIPES.names())
        cache = GenerationCache(generation_cache_path())
        try:
            _, records = run_stages(spec.base_model, [(st.recipe, dict(st.config)) for st in spec.stages], source,
                                    seed, cache, quiet)
        finally:
            cache.close()
    sft, dpo = (r["stats"] for r in records)
    fact_responses = dpo["rm_fact_responses"]
    return {"run": f"smoke world, system flame, seed {seed}", "sft_stats": sft, "dpo_stats": dpo,
            "ratios": {
                "fact_based_share_of_dpo_prompts": dpo["fact_based"] / dpo["instructions"],
                "samples_per_instruction": fact_responses / dpo["fact_based"],
                "sentences_per_response": dpo["rm_fact_sentences"] / max(1, dpo["rm_fact_responding"]),
                "facts_per_sentence": dpo["rm_fact_facts"] / max(1, dpo["rm_fact_sentences"]),
                "retrievals_per_response": dpo["rm_fact_retrievals"] / max(1, fact_responses),
                "flame_sft_samples_per_fact_seed": sft["config"]["pt_samples"],
                "rm_if_samples": RM_IF_SAMPLES}}


def bench_scale(quick: bool = False, retrieval_sizes: tuple[int, ...] | None = None) -> dict[str, Any]:
    sizes = retrieval_sizes or ((20_000, 100_000) if quick else (100_000, 1_000_000))
    counted = counted_ratios()
    structure = {k: counted["ratios"][k] for k in ("samples_per_instruction", "retrievals_per_response")}
    return {"throughput": bench_throughput(quick=quick), "retrieval": bench_retrieval(sizes),
            "counted": counted, "cost_model": cost_model(structure=structure),
            "cost_model_counted_content": cost_model(counted["ratios"])}


def scale_tables(result: dict[str, Any]) -> list[Any]:
    """The three results as rich tables."""
    from rich.table import Table

    t = result["throughput"]
    calls = Table(title=f"LLM calls against a simulated endpoint ({1000 * t['latency_s']:.0f} ms per call): "
                        f"client overhead {t['overhead_ms_per_call']:.1f} ms/call, cache hit "
                        f"{1000 * t['cache_hit_ms']:.0f} us; crash after {t['crash']['answered_before_crash']} "
                        f"answers: {t['crash']['stored_in_cache']} kept, {t['crash']['lost']} lost")
    for col in ("workers", "calls", "calls/s", "ideal", "share of ideal"):
        calls.add_column(col, justify="right")
    for row in t["curve"]:
        calls.add_row(str(row["workers"]), str(row["calls"]), f"{row['calls_per_s']:.1f}",
                      f"{row['ideal_calls_per_s']:.0f}", f"{100 * row['share_of_ideal']:.0f}%")
    r = result["retrieval"]
    retrieval = Table(title="bm25s over synthetic Zipf passages (100 tokens), each size in its own process; last row "
                            "projected linearly")
    for col in ("passages", "build s", "peak RSS MB", "query ms (top 10)"):
        retrieval.add_column(col, justify="right")
    for row in [*r["rows"], r["projected"]]:
        retrieval.add_row(f"{row['passages']:,}", f"{row['build_s']:.1f}", f"{row['peak_rss_mb']:,.0f}",
                          f"{row['query_ms']:.1f}")
    c = result["cost_model"]
    caption = None
    if (counted := result.get("counted")) is not None:
        r, world = counted["ratios"], result["cost_model_counted_content"]
        caption = (f"structure counted on a small run ({counted['run']}): {r['samples_per_instruction']:.0f} samples "
                   f"scored per fact-based instruction, {r['retrievals_per_response']:.0f} retrieval per response; "
                   f"with that run's own content ({r['sentences_per_response']:.1f} sentences per response, "
                   f"{r['facts_per_sentence']:.2f} facts per sentence: a tiny model's bios) "
                   f"{world['total_calls']:,} calls, {world['total_gpu_hours']:.0f} GPU-hours")
    cost = Table(title=f"FLAME at the paper's sizes: {c['total_calls']:,} LLM calls, {c['total_gpu_hours']:.0f} "
                       f"GPU-hours at {c['assumed']['output_tokens_per_s_per_gpu']:.0f} output / "
                       f"{c['assumed']['prompt_tokens_per_s_per_gpu']:.0f} prompt tokens/s per GPU (stated)",
                 caption=caption)
    for col in ("stage", "calls", "prompt tokens", "output tokens", "GPU-hours"):
        cost.add_column(col, justify="left" if col == "stage" else "right")
    for row in c["stages"]:
        cost.add_row(row["stage"], f"{row['calls']:,}", f"{row['prompt_tokens']:,}", f"{row['output_tokens']:,}",
                     f"{row['gpu_hours']:.1f}")
    return [calls, retrieval, cost]


def sharded_table(result: dict[str, Any]):
    from rich.table import Table

    c = result["check"]
    table = Table(title=f"Sharded bm25s, memory-mapped ({result['shard_size']:,} passages per shard, corpus-wide idf): "
                        f"top-10 equal to one index's on {c['same_top10']}/{c['queries']} queries at "
                        f"{c['passages']:,} passages; last row projected linearly")
    for col in ("passages", "shards", "build s", "build peak RSS MB", "disk MB", "query ms (top 10)"):
        table.add_column(col, justify="right")
    for row in [*result["rows"], result["projected"]]:
        table.add_row(f"{row['passages']:,}", str(row["shards"]), f"{row['build_s']:.0f}",
                      f"{row['build_peak_rss_mb']:,.0f}", f"{row['disk_mb']:,.0f}", f"{row['query_ms']:.0f}")
    if "rm_fact_path" in result:
        r = result["rm_fact_path"]
        table.caption = (f"RM_fact's query path (KnowledgeSource.search over every passage, top {r['k']}) at "
                         f"{r['passages']:,} passages: the sharded index returns the in-memory index's passages on "
                         f"{r['same_top10']}/{r['queries']} queries; {r['sharded_query_ms']:.1f} ms vs "
                         f"{r['in_memory_query_ms']:.1f} ms per query, built in {r['index_build_s']:.0f} s vs "
                         f"{r['in_memory_build_s']:.0f} s")
    return table
