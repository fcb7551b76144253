"""The sharded BM25 index scores every passage as one index over the whole corpus would, and so returns its top-k."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest


def _corpus(n: int, n_vocab: int, seed: int) -> list[list[int]]:
    rng = np.random.default_rng(seed)
    return [(rng.zipf(1.3, size=int(rng.integers(5, 40))) % n_vocab).tolist() for _ in range(n)]


def test_sharded_index_equals_one_index_over_the_whole_corpus(tmp_path: Path) -> None:
    import bm25s
    from bm25s.tokenization import Tokenized

    from flame_bench.scoring.sharded_bm25 import ShardedBM25, build_sharded

    n_vocab = 300
    docs = _corpus(2500, n_vocab, 0)
    cuts = [0, 700, 1500, 2500]  # shards of unequal size
    manifest = build_sharded(tmp_path / "idx", [lambda a=a, b=b: docs[a:b] for a, b in pairwise(cuts)],
                             n_vocab)
    assert manifest["passages"] == 2500 and manifest["shard_sizes"] == [700, 800, 1000]
    single = bm25s.BM25(method="robertson")
    single.index(Tokenized(ids=docs, vocab={f"w{i}": i for i in range(n_vocab)}), show_progress=False)
    index = ShardedBM25(tmp_path / "idx")
    rng = np.random.default_rng(1)
    for _ in range(30):
        q = (rng.zipf(1.3, size=4) % n_vocab).tolist()
        whole = np.asarray(single.get_scores_from_ids(q), dtype=float)
        expected = [(int(i), float(whole[i])) for i in np.lexsort((np.arange(len(whole)), -whole))[:10]]  # by hand
        assert index.search(q, 10) == expected
    # a per-shard index (each shard's own idf) would rank differently: the test can see the difference
    local = bm25s.BM25(method="robertson")
    local.index(Tokenized(ids=docs[:700], vocab={f"w{i}": i for i in range(n_vocab)}), show_progress=False)
    q = [20, 35, 50]  # rarer words (the commonest have idf 0 in Robertson's formula)
    assert not np.allclose(np.asarray(local.get_scores_from_ids(q)), np.asarray(single.get_scores_from_ids(q))[:700])


def test_a_directory_without_a_finished_index_is_refused(tmp_path: Path) -> None:
    from flame_bench.core.errors import FlameError
    from flame_bench.scoring.sharded_bm25 import ShardedBM25

    (tmp_path / "half").mkdir()
    with pytest.raises(FlameError, match="not a sharded BM25 index"):
        ShardedBM25(tmp_path / "half")


def test_a_source_searched_through_its_sharded_index_returns_the_in_memory_top_k(tmp_path: Path) -> None:
    """RM_fact's query path (the instruction against every passage) through the sharded, memory-mapped index: the
    same passages in the same order as the in-memory global index, ties and unknown words included."""
    import random

    from flame_bench.core.errors import FlameError
    from flame_bench.scoring.retrieval import KnowledgeSource
    from flame_bench.scoring.sharded_bm25 import SourceIndex, build_source_index

    rng = random.Random(0)
    words = [f"w{i}" for i in range(300)] + ["poet", "born", "Oslo", "river"]
    pages = {f"Page {i}": [" ".join(rng.choices(words, k=rng.randint(5, 40))) for _ in range(rng.randint(1, 4))]
             for i in range(400)}
    pages["Twin A"] = pages["Twin B"] = ["poet born in Oslo"]  # equal scores: ties go to passage order
    in_memory, sharded = KnowledgeSource(pages, name="fixture@1"), KnowledgeSource(pages, name="fixture@1")
    manifest = build_source_index(sharded, tmp_path / "idx", shard_passages=97)  # several uneven shards
    assert len(manifest["shard_sizes"]) > 5
    sharded.use_index(SourceIndex(tmp_path / "idx", sharded))
    queries = [" ".join(rng.choices(words, k=rng.randint(1, 8))) for _ in range(60)]
    queries += ["Tell me about a poet born in Oslo", "zebra quagga", "", "Twin"]
    for q in queries:
        assert [p.id for p in sharded.search(q, 10)] == [p.id for p in in_memory.search(q, 10)], q
    assert sharded.search("poet born Oslo", 3, ["Page 1"]) == in_memory.search("poet born Oslo", 3, ["Page 1"])
    with pytest.raises(FlameError, match="indexes fixture@1, not other@2; rebuild it"):
        SourceIndex(tmp_path / "idx", KnowledgeSource(pages, name="other@2"))
