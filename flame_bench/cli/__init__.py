"""The `flame-bench` command line: parses, calls one function of a lower layer, prints."""

from flame_bench.cli.commands import app, main

__all__ = ["app", "main"]
