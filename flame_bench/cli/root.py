"""The `flame-bench` application: the root command and its options, the command groups, the shared console, and
`main`, which turns every error a user can cause into one line naming the problem and the fix."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from flame_bench.cli.models import models_app
from flame_bench.core.errors import FlameError, Interrupted, redact_url
from flame_bench.core.ui import console

app = typer.Typer(
    help="flame-bench: does this alignment recipe make my model more factual, and what does it cost in helpfulness?",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)


@app.callback()
def client_options(
    workers: Annotated[int, typer.Option(min=1, max=256, help="OpenAI-compatible endpoints: requests in flight at "
                                                             "once.")] = 4,
    timeout: Annotated[float, typer.Option(min=0.1, max=3600.0, help="OpenAI-compatible endpoints: seconds per "
                                                                     "request before it is retried.")] = 60.0,
    retries: Annotated[int, typer.Option(min=0, max=100, help="OpenAI-compatible endpoints: retries of a failed "
                                                             "request (timeouts, 429/5xx, malformed replies).")] = 2,
    generation: Annotated[str, typer.Option(help="Generation backend for sampling, elicitation and evaluation: hf, "
                                                 "vllm, or an OpenAI-compatible base URL serving the model "
                                                 "(http://127.0.0.1:8000/v1).")] = "hf",
) -> None:
    """Options before the command apply to every LLM endpoint and every generation the command makes."""
    from flame_bench.core import paths, runtime
    from flame_bench.engines.generation import set_generation_backend
    from flame_bench.engines.llm.client import CLIENT_DEFAULTS

    runtime.threads()  # the environment is checked before any work
    paths.home()
    paths.results_dir()

    CLIENT_DEFAULTS.update(workers=workers, timeout=timeout, max_retries=retries + 1)  # attempts
    set_generation_backend(generation)


world_app = typer.Typer(help="Build and inspect the embedded fact world.", no_args_is_help=True)
app.add_typer(world_app, name="world")
data_app = typer.Typer(help="Fetch and list real datasets and knowledge sources.", no_args_is_help=True)
app.add_typer(data_app, name="data")
app.add_typer(models_app, name="models")
verifier_app = typer.Typer(help="The offline fact verifier (a MiniLM cross-encoder trained on VitaminC).",
                           no_args_is_help=True)
app.add_typer(verifier_app, name="verifier")
MAX_SEED = 2**32 - 1  # numpy and torch seeds must fit in 32 bits
# tables go to stdout (wide when piped, so columns never truncate), progress bars and errors to stderr
stdout = Console(width=None if sys.stdout.isatty() else 160)


def warn_skipped(skipped: list[str]) -> None:
    """Damaged run records never block a report of the others; they are named, one line each."""
    from rich.text import Text

    for problem in skipped:
        console.print(Text.assemble(("skipped:", "yellow"), " ", problem), highlight=False)


def print_records(records: list) -> None:
    """The runs table, then each run's per-group breakdown."""
    from flame_bench.reports.runs import breakdown_table, runs_table

    stdout.print(runs_table(records))
    for r in records:
        table = breakdown_table(r)
        if table is not None:
            stdout.print(table)


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}"


def open_world(path: Path):
    from flame_bench.world.source import WorldSource

    return WorldSource.open(path)


def os_error_line(e: OSError) -> str:
    """One line for an OSError: what happened, to which file, and the fix that fits that cause."""
    import errno

    where = f" ({e.filename})" if getattr(e, "filename", None) else ""
    fix = {errno.ENOSPC: "free space and run it again (finished stages and runs are kept)",
           errno.EDQUOT: "free space and run it again (finished stages and runs are kept)",
           errno.EACCES: "choose a writable location (FLAME_BENCH_RESULTS, FLAME_BENCH_HOME, --out)",
           errno.EPERM: "choose a writable location (FLAME_BENCH_RESULTS, FLAME_BENCH_HOME, --out)",
           errno.EROFS: "choose a writable location (FLAME_BENCH_RESULTS, FLAME_BENCH_HOME, --out)",
           errno.EEXIST: "it already exists; remove it or choose another path",
           errno.ENOENT: "check the path",
           errno.EADDRINUSE: "choose another port"}.get(e.errno or -1, "check the path and the disk")
    return f"{e.strerror or e}{where}; {fix}"


def _fail(message: str) -> None:
    """One line on stderr, exit 2 (credentials in any URL it quotes never reach the terminal)."""
    from rich.text import Text

    console.print(Text.assemble(("error:", "red"), " ", redact_url(message)), highlight=False, soft_wrap=True)
    sys.exit(2)


def main() -> None:
    try:
        from typer._click import exceptions as click  # typer vendors its own click; its exceptions are these
    except ImportError:  # pragma: no cover - older typer on upstream click
        from click import exceptions as click  # type: ignore[no-redef]

    try:
        code = app(standalone_mode=False)
    except FlameError as e:
        _fail(str(e))
    except click.NoArgsIsHelpError:  # typer has printed the help already
        sys.exit(0)
    except click.UsageError as e:  # bad flags and values: one line naming the problem and where help is
        names, ctx = [], e.ctx
        while ctx is not None and ctx.parent is not None:  # the subcommand chain, whatever the program was called
            names.insert(0, ctx.info_name)
            ctx = ctx.parent
        _fail(f"{e.format_message().rstrip('.')}; see `{' '.join(['flame-bench', *names])} --help`")
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except (typer.Abort, Interrupted, KeyboardInterrupt):
        console.print("[yellow]interrupted[/yellow]; completed results are kept, partial ones are discarded")
        sys.exit(130)
    except OSError as e:  # disk full, read-only or vanished locations: the cause and the file, not a traceback
        _fail(os_error_line(e))
    sys.exit(code if isinstance(code, int) else 0)
