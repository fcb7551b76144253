"""The sample of a hand check of the offline verifier's verdicts on real LLM facts (`python
results/real/nli_hand_check_sample.py RUN OUT.json`): 15 of the verifier's "supported" and 15 of its "unsupported"
facts of a FActScore run (`random.Random(0).sample` of each, so that at least 10 are "supported"), each with the
passages it was checked against. The hand verdicts (`hand_supported`, `note`) are then written into OUT.json by a
person reading the evidence; `agreement` and the precisions are computed from them with `--summarise`."""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

from flame_bench.core.io import read_json, read_jsonl
from flame_bench.real.knowledge import open_knowledge

PER_VERDICT = 15


def sample(run_dir: Path) -> dict:
    source = open_knowledge(read_json(run_dir / "run.json")["source_spec"]["knowledge"])
    passages = {f"{t}#{i}": p.text for t, ps in source.pages.items() for i, p in enumerate(ps)}
    facts = [{"topic": s["instruction"].removeprefix("Tell me a bio of ").removesuffix("."), "fact": f["text"],
              "verifier_supported": f["supported"], "evidence": [passages.get(e, e) for e in f.get("evidence", [])]}
             for s in read_jsonl(run_dir / "samples.jsonl", "samples", 1) for f in s.get("facts") or []]
    rows = []
    for verdict in (True, False):
        pool = [f for f in facts if f["verifier_supported"] is verdict]
        rows += random.Random(0).sample(pool, min(PER_VERDICT, len(pool)))
    return {"run": str(run_dir), "facts": len(facts), "supported_by_verifier": sum(f["verifier_supported"]
                                                                                      for f in facts),
            "sample": f"{PER_VERDICT} of the verifier's 'supported' and {PER_VERDICT} of its 'unsupported' verdicts, "
                      "random.Random(0).sample of each", "rows": [{"k": k, **r} for k, r in enumerate(rows)]}


def summarise(path: Path) -> dict:
    doc = json.loads(path.read_text())
    rows = doc["rows"]
    for r in rows:
        r["agree"] = r["hand_supported"] == r["verifier_supported"]
    said_yes = [r for r in rows if r["verifier_supported"]]
    said_no = [r for r in rows if not r["verifier_supported"]]
    doc.update(agreement=sum(r["agree"] for r in rows) / len(rows),
               supported_precision=sum(r["agree"] for r in said_yes) / max(1, len(said_yes)),
               unsupported_agreement=sum(r["agree"] for r in said_no) / max(1, len(said_no)))
    path.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
    return {k: doc[k] for k in ("agreement", "supported_precision", "unsupported_agreement")}


if __name__ == "__main__":
    if sys.argv[1] == "--summarise":
        print(summarise(Path(sys.argv[2])))
    else:
        Path(sys.argv[2]).write_text(json.dumps(sample(Path(sys.argv[1])), indent=1, ensure_ascii=False) + "\n")
