"""Diagnostic for issue 29: can MiniLM-L6 learn the negatives that keep the page's words at all? It is trained only
on the builder-v2 pairs whose negative is a same-page swap or a role swap (15-minute budget, the defaults otherwise;
run it with `python` after `flame-bench verifier train` has built the data). Prints the checks and the curve;
`verifier_focused_diagnostic.json` holds the run of 2026-12-08."""

from __future__ import annotations

import json
from pathlib import Path

from flame_bench.real import nli
from flame_bench.real.nli_data import WORDS_KEPT

_all_data = nli.training_data


def words_kept_pairs(config: nli.TrainConfig, tok):
    """The training split cut to the (supported, words-kept negative) pairs; validation untouched."""
    splits, about = _all_data(config, tok)
    rows, keep = splits["train"], []
    for pos, neg in zip(rows[::2], rows[1::2], strict=False):
        if pos["label"] == "SUPPORTS" and neg["kind"] in WORDS_KEPT:
            keep += [pos, neg]
    splits["train"] = keep
    about["focused"] = {"train_pairs": len(keep) // 2, "kinds": list(WORDS_KEPT)}
    return splits, about


if __name__ == "__main__":
    nli.training_data = words_kept_pairs
    card = nli.train(nli.TrainConfig(budget_minutes=15), Path(__file__).with_name(".verifier_focused"), quiet=True)
    print(json.dumps({"checks": card["checks"], "curve": card["curve"], "about": card["data"].get("focused")}))
