"""flame-bench's task plugins, one folder each (`<name>/task.py`, README); installed as `flame_bench_tasks`."""
