"""The offline NLI verifier's inference recipe, v2 against v1, like for like (run it with `python` after
`flame-bench verifier train`, with wiki-leads fetched): the trained weights, SmolLM2's 351 facts of 20 bios,
one process, alternated three times; v2 = 128-token windows of whole sentences and decontextualised claims, v1 =
96-token half-overlapping token windows. Writes `nli_windows_speed.json` beside itself."""

from __future__ import annotations

import json
import time
import types
from pathlib import Path

from flame_bench.core.records import load_run
from flame_bench.core.runtime import torch_setup
from flame_bench.real.knowledge import open_knowledge
from flame_bench.real.nli import NLIVerifier
from flame_bench.scoring.factscore import AtomicFact

RUN = Path(__file__).resolve().parents[2] / "results/real/runs/factscore_bio__smollm2__688dba326c24"


def v1_windows(self, passage: str, claim_ids: list[int]):
    ids = self._loaded[1](passage, add_special_tokens=False)["input_ids"]
    size = max(16, int(self.card["config"]["max_length"]) - len(claim_ids) - 3)
    for start in range(0, max(1, len(ids) - size // 2), max(1, size // 2)):
        yield ids[start:start + size]
        if start + size >= len(ids):
            break


def main() -> None:
    torch_setup(0)
    source = open_knowledge("wiki-leads")
    by_id = {p.id: p for ps in source.pages.values() for p in ps}
    queries = []
    for sample in load_run(RUN).samples()[:20]:
        for f in sample.get("facts") or []:
            passages = [by_id[i] for i in f["evidence"] if i in by_id]
            queries.append((AtomicFact(f["text"]), passages, passages[0].title if passages else ""))
    v2, v1 = NLIVerifier(), NLIVerifier()
    v1.card = json.loads(json.dumps(v1.card))
    v1.card["config"]["max_length"] = 96
    v1._windows = types.MethodType(v1_windows, v1)

    def run_v1(qs):  # v1 verified the fact as written
        return [p >= v1.threshold for p in v1.support_probabilities([(f.text, ps) for f, ps, _ in qs])]

    recipes = {"v2": v2.verify_many, "v1_windows": run_v1}
    for fn in recipes.values():
        fn(queries[:2])  # loads the model outside the timing
    seconds: dict[str, list[float]] = {name: [] for name in recipes}
    for _ in range(3):
        for name, fn in recipes.items():
            t0 = time.perf_counter()
            fn(queries)
            seconds[name].append(time.perf_counter() - t0)
    out = {name: {"facts_per_s": len(queries) / min(s), "seconds": s} for name, s in seconds.items()}
    out |= {"facts": len(queries), "v2_over_v1_windows": out["v2"]["facts_per_s"] / out["v1_windows"]["facts_per_s"]}
    print(json.dumps(out, indent=1))
    Path(__file__).with_suffix(".json").write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
