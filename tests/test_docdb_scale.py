"""A FActScore DocDB is read by title, never whole: the FActScore pipeline (spaCy sentences, per-fact BM25 over the
topic's page, a lexical verifier) over a DocDB of 10x (or, slow, 100x) more articles uses the same memory. Each size
runs in its own process, whose peak RSS (VmHWM) is read from the kernel."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from flame_bench.real.knowledge import write_docdb

PROBE = """
import json, sys, time
from flame_bench.real.knowledge import open_knowledge
from flame_bench.scoring.factscore import AtomicFact, FactScorer
from flame_bench.scoring.retrieval import BM25Retriever, bm25_tokens

def peak_mb():  # this process's own high-water mark (ru_maxrss would count the parent's at fork)
    line = next(x for x in open("/proc/self/status") if x.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024

class Sentences:  # each sentence one atomic fact
    name, version = "sentences", "1"
    def decompose_many(self, responses):
        return [[AtomicFact(s) for s in sentences] for sentences, _ in responses]

class Lexical:  # supported iff every word of the fact is in the retrieved passages
    name, version = "lexical", "1"
    def verify_many(self, queries):
        return [set(bm25_tokens(f.text)) <= {w for p in ps for w in bm25_tokens(p.text)} for f, ps, _ in queries]

path, n = sys.argv[1], int(sys.argv[2])
base = peak_mb()
t0 = time.perf_counter()
source = open_knowledge(path)
opened = time.perf_counter() - t0
scorer = FactScorer(source=source, decomposer=Sentences(), verifier=Lexical(), retriever=BM25Retriever(k=5))
people = list(range(0, n, max(1, n // 200)))
bios = [f"Person {i:07d} was born in city {i % 97 + 500 * (j % 2)}. Person {i:07d} works as a cartographer in town "
        f"{i % 89}." for j, i in enumerate(people)]  # every other bio has a city no page names
scorer.score_many(bios[:2], [[f"Person {i:07d}"] for i in people[:2]])  # spaCy's first call out of the timing
t0 = time.perf_counter()
scores = scorer.score_many(bios, [[f"Person {i:07d}"] for i in people])
per_topic = (time.perf_counter() - t0) / len(people)
supported = [sum(f["supported"] for f in s.facts) / len(s.facts) for s in scores]
print(json.dumps({"articles": n, "topics": len(people), "factscore": sum(supported) / len(supported),
                  "open_s": opened, "ms_per_topic": 1000 * per_topic, "missing": Lexical().verify_many(
                      [(AtomicFact("x y"), BM25Retriever(k=5)(source, "x y", ["Nobody"]), "")]) == [False],
                  "peak_rss_mb": peak_mb(), "import_rss_mb": base}))
"""


def build(path: Path, n: int) -> None:
    write_docdb(path, ((f"Person {i:07d}", [f"Person {i:07d} was born in city {i % 97}.",
                                             f"Person {i:07d} works as a cartographer in town {i % 89}."])
                       for i in range(n)))


def probe(path: Path, n: int) -> dict:
    done = subprocess.run([sys.executable, "-c", PROBE, str(path), str(n)], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def check_flat(tmp_path: Path, small: int, large: int) -> tuple[dict, dict]:
    results = []
    for n in (small, large):
        build(tmp_path / f"docdb_{n}.db", n)
        results.append(probe(tmp_path / f"docdb_{n}.db", n))
    a, b = results
    for r in results:
        assert r["factscore"] == 0.75  # half the bios have one wrong fact of two
        assert r["missing"]  # a person without a page: no passages, nothing supported
    # an eager load holds every article as Python strings: ~55 MB more for 90k extra articles, far more at 1M
    assert b["peak_rss_mb"] - a["peak_rss_mb"] < 15, (a, b)
    return a, b


def test_docdb_memory_is_flat_in_the_number_of_articles(tmp_path):
    check_flat(tmp_path, 10_000, 100_000)


@pytest.mark.slow
def test_docdb_of_a_million_articles(tmp_path):
    a, b = check_flat(tmp_path, 10_000, 1_000_000)
    print(json.dumps({"10k": a, "1M": b}))
