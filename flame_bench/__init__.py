"""flame-bench: an evaluation-and-benchmark harness for factuality-aware alignment (FLAME)."""

import os as _os

# 2-core CPUs: OpenMP spin-waiting makes small torch ops 20x slower when anything else runs. Must be set
# before torch is imported anywhere.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
_os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from flame_bench.core import numerics as _numerics

_numerics.apply()

__version__ = "0.1.0"
