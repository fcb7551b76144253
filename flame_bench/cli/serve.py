"""`flame-bench serve`: a local model on an OpenAI-compatible endpoint."""

from __future__ import annotations

from typing import Annotated

import typer

from flame_bench.cli.root import app
from flame_bench.core.errors import FlameError
from flame_bench.core.ui import console


@app.command("serve")
def serve_cmd(
    model: Annotated[str, typer.Argument(help="Installed model name or model directory.")],
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port on 127.0.0.1 (0: any free port).")] = 8000,
    batch_size: Annotated[int, typer.Option(min=1, help="Generation batch size.")] = 16,
) -> None:
    """Serve a local model on an OpenAI-compatible endpoint (http://127.0.0.1:PORT/v1) until Ctrl-C."""
    from flame_bench.engines.llm.backends import HFBackend
    from flame_bench.engines.llm.serve import make_server, port_in_use
    from flame_bench.engines.models import resolve_model

    if port and port_in_use("127.0.0.1", port):  # before the model is resolved or loaded
        raise FlameError(f"port {port} on 127.0.0.1 is already in use; choose another with --port (0 picks a free one)")
    handle = resolve_model(model)
    backend = HFBackend(handle.path, batch_size=batch_size, name=handle.name)
    backend._loaded  # noqa: B018  loaded (so checked) before the port opens: a broken model is one line, not 500s
    server = make_server(backend, port=port)
    console.print(f"serving {handle.name} on http://127.0.0.1:{server.server_address[1]}/v1 (Ctrl-C stops)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
