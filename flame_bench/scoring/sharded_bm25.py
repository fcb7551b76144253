"""A BM25 index too large for memory: shards built with the whole corpus's statistics, each memory-mapped.

FLAME's RM_fact retrieves from the whole of Wikipedia (~21M passages); one bm25s index of that size needs ~124 GB to
build (`flame-bench bench --scale`). Here the corpus is read twice, shard by shard: first for the corpus-wide
document frequencies, document count and average length, then to build each shard's score matrix with those
statistics (bm25s's own scoring, Robertson's idf), saved with bm25s and opened memory-mapped. Every passage therefore
scores exactly as in one index over the whole corpus, and the merged top-k (score descending, then passage order, as
every whole-index search breaks ties: `retrieval.top_k`) is the single index's top-k. Memory while building is one
shard's; while searching, the pages of the matrix a query touches.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from flame_bench.core.errors import FlameError
from flame_bench.core.io import publish_dir, read_json, write_json
from flame_bench.scoring.retrieval import top_k

MANIFEST = "sharded_bm25.json"
FORMAT_VERSION = 1


def _bm25_class():
    import bm25s
    from bm25s.scoring import _build_idf_array, _build_scores_and_indices_for_matrix, _select_idf_scorer

    class CorpusStatsBM25(bm25s.BM25):
        """bm25s's index of one shard, scored with the whole corpus's idf and average length."""

        def __init__(self, doc_frequencies: np.ndarray, n_docs: int, avg_doc_len: float, **kwargs: Any):
            super().__init__(method="robertson", **kwargs)
            # a numpy float64, as bm25s's own: under numpy's promotion rules it computes the term weights in float64
            # (a Python float would let them be computed in float32, and scores differ in the last bit)
            self.corpus_df, self.corpus_docs, self.corpus_avg_len = doc_frequencies, n_docs, np.float64(avg_doc_len)
            self.nonoccurrence_array = None  # Robertson's BM25 has none

        def build_index_from_ids(self, unique_token_ids, corpus_token_ids, show_progress=False,
                                 leave_progress=False):
            n_vocab = len(self.corpus_df)
            idf = _build_idf_array({t: int(df) for t, df in enumerate(self.corpus_df)}, self.corpus_docs,
                                   _select_idf_scorer(self.idf_method), self.dtype)
            local = _doc_frequencies(corpus_token_ids, n_vocab)  # sizes the arrays: this shard's (doc, token)s
            data, rows, cols = _build_scores_and_indices_for_matrix(
                corpus_token_ids=corpus_token_ids, idf_array=idf, avg_doc_len=self.corpus_avg_len,
                doc_frequencies={t: int(df) for t, df in enumerate(local)}, k1=self.k1, b=self.b, delta=self.delta,
                nonoccurrence_array=None, method=self.method, dtype=self.dtype, int_dtype=self.int_dtype,
                show_progress=False)
            import scipy.sparse as sp

            matrix = sp.csc_matrix((data, (rows, cols)), shape=(len(corpus_token_ids), n_vocab), dtype=self.dtype)
            return {"data": matrix.data, "indices": matrix.indices, "indptr": matrix.indptr,
                    "num_docs": len(corpus_token_ids)}

    return CorpusStatsBM25


def _doc_frequencies(docs: Sequence[Sequence[int]], n_vocab: int) -> np.ndarray:
    df = np.zeros(n_vocab, dtype=np.int64)
    for doc in docs:
        df[np.unique(np.asarray(doc, dtype=np.int64))] += 1
    return df


def build_sharded(out: Path, shards: Sequence[Callable[[], list[list[int]]]], n_vocab: int) -> dict[str, Any]:
    """Index the corpus `shards` (each a function returning its passages as token-id lists; called twice) into
    `out` (published whole when finished); returns the manifest. A shard's token ids must be < `n_vocab`."""
    df = np.zeros(n_vocab, dtype=np.int64)
    lengths = []
    for make in shards:
        docs = make()
        df += _doc_frequencies(docs, n_vocab)
        lengths.append(np.array([len(d) for d in docs]))
    all_lengths = np.concatenate(lengths)
    n_docs, avg_len = len(all_lengths), float(all_lengths.mean())  # as bm25s computes it for one index
    cls = _bm25_class()
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    try:
        manifest = _build_shards(staging, shards, cls, df, n_docs, avg_len, n_vocab)
        publish_dir(staging, out)  # readers see the old index or the new one, never half of one
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return manifest


def _build_shards(out: Path, shards, cls, df: np.ndarray, n_docs: int, avg_len: float, n_vocab: int) -> dict:
    sizes = []
    for i, make in enumerate(shards):
        docs = make()
        index = cls(df, n_docs, avg_len)
        index.scores = index.build_index_from_ids(list(range(n_vocab)), docs)
        index.vocab_dict = {}
        index.save(str(out / f"shard-{i:04d}"), show_progress=False)
        sizes.append(len(docs))
    params = cls(df, n_docs, avg_len)
    manifest = {"format": FORMAT_VERSION, "method": "robertson", "k1": params.k1, "b": params.b, "n_vocab": n_vocab,
                "passages": n_docs, "avg_len": avg_len,
                "shard_sizes": sizes}
    write_json(out / MANIFEST, manifest)
    return manifest


class ShardedBM25:
    """A built sharded index, opened memory-mapped."""

    def __init__(self, path: Path, mmap: bool = True):
        import bm25s

        if not (path / MANIFEST).is_file():
            raise FlameError(f"{path} is not a sharded BM25 index (no {MANIFEST}); build it first")
        self.manifest = read_json(path / MANIFEST)
        if self.manifest.get("format") != FORMAT_VERSION:
            raise FlameError(f"{path} was built by another version of the sharded index; rebuild it")
        self.offsets = np.concatenate([[0], np.cumsum(self.manifest["shard_sizes"])]).astype(np.int64)
        self.shards = []
        for i, size in enumerate(self.manifest["shard_sizes"]):
            shard = bm25s.BM25.load(str(path / f"shard-{i:04d}"), mmap=mmap, load_vocab=False, show_progress=False)
            shard.scores["num_docs"] = size
            self.shards.append(shard)

    def search(self, query_ids: Sequence[int], k: int) -> list[tuple[int, float]]:
        """Top-k (passage index, score): score descending, then passage order."""
        q = [t for t in query_ids if 0 <= t < self.manifest["n_vocab"]]
        if not q:
            return []
        best: list[tuple[float, int]] = []
        for shard, offset in zip(self.shards, self.offsets, strict=False):
            scores = np.asarray(shard.get_scores_from_ids(q), dtype=float)
            best += [(float(scores[i]), int(offset + i)) for i in top_k(scores, k)]
        best.sort(key=lambda h: (-h[0], h[1]))
        return [(i, s) for s, i in best[:k]]


SOURCE_INDEX = "source_index.json"  # beside the shards: the source it indexes, its words and passage order


def build_source_index(source: Any, out: Path, shard_passages: int = 1_000_000) -> dict[str, Any]:
    """A sharded index over every passage of a `KnowledgeSource`, for its searches over the whole source (RM_fact's
    and Alpaca Fact's query path: the instruction against every passage). Passages are tokenised as the in-memory
    global index tokenises them (`bm25_tokens` of title and text), words numbered in first-seen order; shards hold
    `shard_passages` passages in the source's order. Returns the manifest."""
    from flame_bench.scoring.retrieval import bm25_tokens

    vocab: dict[str, int] = {}
    refs: list[tuple[str, int]] = []  # (title, passage index in its page), in index order
    for title in source.pages:
        for i, p in enumerate(source.pages[title]):
            for token in bm25_tokens(f"{p.title} {p.text}"):
                vocab.setdefault(token, len(vocab))
            refs.append((title, i))
    if not refs:
        raise FlameError(f"knowledge source {source.name} has no passages to index")

    def shard(start: int) -> list[list[int]]:
        return [[vocab[t] for t in bm25_tokens(f"{p.title} {p.text}")]
                for p in (source.pages[title][i] for title, i in refs[start:start + shard_passages])]

    manifest = build_sharded(out, [lambda s=s: shard(s) for s in range(0, len(refs), shard_passages)],
                             max(1, len(vocab)))
    write_json(out / SOURCE_INDEX, {"source": source.name, "vocab": vocab, "passages": refs})
    return manifest


class SourceIndex:
    """A built source index, opened memory-mapped: top-k passages of a whole-source search, as the in-memory one."""

    def __init__(self, path: Path, source: Any):
        if not (path / SOURCE_INDEX).is_file():
            raise FlameError(f"{path} is not a knowledge source index (no {SOURCE_INDEX}); build it with "
                             "`flame-bench data index`")
        info = read_json(path / SOURCE_INDEX)
        if info.get("source") != source.name:
            raise FlameError(f"{path} indexes {info.get('source')}, not {source.name}; rebuild it with "
                             "`flame-bench data index`")
        self.index, self.vocab, self.refs, self.source = ShardedBM25(path), info["vocab"], info["passages"], source

    def search(self, tokens: Sequence[str], k: int) -> list[Any]:
        known = [self.vocab[t] for t in tokens if t in self.vocab]
        # no known word: every passage scores 0, and the in-memory index returns the first k (ties by order)
        hits = self.index.search(known, k) if known else [(i, 0.0) for i in range(min(k, len(self.refs)))]
        return [self.source.pages[self.refs[i][0]][self.refs[i][1]] for i, _ in hits]
