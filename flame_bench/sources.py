"""Opening a source again from its spec (the `source_spec` of a run record), whichever kind it is."""

from __future__ import annotations

from typing import Any

from flame_bench.source import Source


def open_source(spec: dict[str, Any] | None) -> Source:
    """Open a source again from its `spec` (as run records keep it)."""
    from flame_bench.errors import FlameError

    kind = (spec or {}).get("kind")
    if kind == "fact-world":
        from flame_bench.world.source import WorldSource

        # a record without rm_fact_noise predates the lenient checker as the default: it ran the exact one
        return WorldSource.open(spec["path"], spec.get("rm_if_noise", 0.0), spec.get("judge", "world_if"),  # type: ignore
                                spec.get("rm_fact_noise", 0.0))
    if kind == "real":
        from flame_bench.real.source import RealSource, RealSpec

        return RealSource(RealSpec.from_dict(spec))  # type: ignore[arg-type]
    raise FlameError(f"cannot reopen a source of kind {kind!r}; pass the data explicitly (--world or a system)")
