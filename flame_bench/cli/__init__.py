"""The `flame-bench` command line: one module per command group, each parsing its options, calling one function of
a lower layer and printing (`root`: the root command, shared console, one-line errors)."""

# registering order is the order `flame-bench --help` lists the commands in
from flame_bench.cli import evaluate, experiments, world, checks, data, serve  # noqa: F401, I001
from flame_bench.cli.root import app, main

__all__ = ["app", "main"]
