"""Knowledge sources and BM25 retrieval, FActScore style.

FActScore retrieves from the topic entity's own page (query = topic + atomic fact); FLAME's RM_fact and
Alpaca Fact retrieve with the instruction as query. `KnowledgeSource.search` does both: restricted to given
titles (rank-bm25 over the page's few passages, FActScore's own choice), or over every passage of the source
(bm25s: a sparse index that scales to a whole knowledge source; 36-43x faster per query than rank-bm25 on the
large world's 6,283 passages, `flame-bench bench`). Ties are broken by passage order, so results are deterministic.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property

from flame_bench.core.registry import RETRIEVERS

_TOKEN = re.compile(r"\w+")


def bm25_tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


def top_k(scores, k: int):
    """Positions of the `k` highest `scores` (a numpy array), highest first, ties broken by position: the order every
    search over a whole index returns (deterministic)."""
    import numpy as np

    return np.lexsort((np.arange(len(scores)), -scores))[:k]


@dataclass(frozen=True)
class Passage:
    id: str
    title: str
    text: str


class KnowledgeSource:
    """Title -> passages, with BM25 indexes built lazily (one per page, one global)."""

    def __init__(self, pages: dict[str, list[str]] | Mapping[str, list[Passage]], name: str = "knowledge"):
        """`pages`: title -> passage texts (held in memory), or a read-only mapping title -> `Passage`s that reads
        pages on demand (`flame_bench.real.knowledge.DocDBPages`: a DocDB of any size with flat memory)."""
        self.name = name
        self.pages: Mapping[str, list[Passage]] = pages if not isinstance(pages, dict) else {
            title: [Passage(f"{title}#{i}", title, text) for i, text in enumerate(passages)]
            for title, passages in pages.items()
        }
        self._page_index: dict[str, object] = {}
        self._token_vectors: dict[str, dict[str, object]] = {}  # title -> token -> its BM25 scores on that page
        self._source_index = None  # a sharded, memory-mapped index for whole-source searches (`use_index`)

    def use_index(self, index) -> None:
        """Serve searches over the whole source from `index` (a `sharded_bm25.SourceIndex` of this source) instead
        of an in-memory index: the same top-k, with memory for a source the size of Wikipedia."""
        self._source_index = index

    def __contains__(self, title: str) -> bool:
        return title in self.pages

    @cached_property
    def _all(self) -> list[Passage]:
        return [p for ps in self.pages.values() for p in ps]

    @cached_property
    def _global_index(self):
        import bm25s

        index = bm25s.BM25(method="robertson")  # Robertson's idf, as rank-bm25's BM25Okapi
        index.index([bm25_tokens(f"{p.title} {p.text}") for p in self._all], show_progress=False)
        return index

    def _index(self, title: str):
        if title not in self._page_index:
            from rank_bm25 import BM25Okapi

            self._page_index[title] = BM25Okapi([bm25_tokens(p.text) for p in self.pages[title]])
        return self._page_index[title]

    def _page_scores(self, title: str, query: list[str]):
        """rank-bm25's BM25Okapi scores of the page's passages for `query`, bit for bit: its `get_scores` adds one
        vector per query token to zeros, in query order; each token's vector is rank-bm25's own score of that
        token alone, computed once per page (facts about a person repeat the same few words)."""
        import numpy as np

        index = self._index(title)
        vectors = self._token_vectors.setdefault(title, {})
        score = np.zeros(index.corpus_size)
        for token in query:
            if token not in vectors:
                vectors[token] = index.get_scores([token])
            score += vectors[token]
        return score

    def search(self, query: str, k: int, titles: list[str] | None = None) -> list[Passage]:
        """Top-k passages for `query`, from the pages in `titles` (missing titles are skipped) or from all."""
        q = bm25_tokens(query)
        if titles is None:
            import numpy as np

            if not q:
                return []
            if self._source_index is not None:
                return self._source_index.search(q, k)
            if not self._all:
                return []
            scores = np.asarray(self._global_index.get_scores(q), dtype=float)
            return [self._all[int(i)] for i in top_k(scores, k)]
        hits: list[tuple[float, int, Passage]] = []
        for title in titles:
            if title not in self.pages:
                continue
            scores = self._page_scores(title, q)
            hits += [(float(s), len(hits) + i, p) for i, (s, p) in enumerate(zip(scores, self.pages[title],
                                                                                   strict=True))]
        hits.sort(key=lambda h: (-h[0], h[1]))
        return [p for _, _, p in hits[:k]]


@RETRIEVERS.register("bm25")
@dataclass(frozen=True)
class BM25Retriever:
    """FActScore's retriever: BM25 over the topic's page(s); k passages per query."""

    k: int = 5
    name: str = "bm25"
    version: str = "rank-bm25-okapi-v1"

    def __call__(self, source: KnowledgeSource, query: str, titles: list[str] | None) -> list[Passage]:
        return source.search(query, self.k, titles)
