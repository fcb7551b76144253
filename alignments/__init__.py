"""flame-bench's alignment plugins and data: recipes (`recipes/<name>.py`), systems (`systems/<name>.yaml`), data
suites (`data/`) and accelerate configs (`accelerate/`); installed as `flame_bench_alignments`."""
