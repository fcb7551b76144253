"""The harness core: what a task is, the registries, the evaluator, run records, statistics, the source interface,
and the process-wide basics every layer uses (errors, atomic I/O, paths, provenance, numerics, console).

The core names no task and no recipe: plugins register themselves and declare what the core reads of them."""
