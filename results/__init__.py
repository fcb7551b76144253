"""The reference files flame-bench ships from its results tree: gate goldens (`baselines/`) and published numbers
(`published/`), installed as `flame_bench_results`. Run records, comparisons and worlds are never shipped."""
