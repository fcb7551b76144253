"""`flame-bench verifier train`, `verifier-check` and `judge-check`: how good the evaluators are."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from flame_bench.cli.root import MAX_SEED, _pct, app, stdout, verifier_app
from flame_bench.core.errors import interruptible


@verifier_app.command("train")
@interruptible
def verifier_train_cmd(
    data: Annotated[list[str] | None, typer.Option(help="Training data (repeatable): wiki-leads (hard negatives from "
                                                        "the Wikipedia leads the checks never draw from) and/or "
                                                        "vitaminc [default: wiki-leads].")] = None,
    budget_minutes: Annotated[float, typer.Option(min=0.0, help="Minutes of training; the schedule is sized to end "
                                                                "within them (0: the epochs decide).")] = 30.0,
    train_size: Annotated[int | None, typer.Option(min=1, help="Training examples (a seeded sample) [default: "
                                                          "all].")] = None,
    max_length: Annotated[int, typer.Option(min=16, max=512, help="Evidence + claim tokens (evidence truncated).")]
    = 128,
    epochs: Annotated[float, typer.Option(min=0.01, max=20.0, help="Passes over the training sample (at most).")]
    = 2.0,
    batch_size: Annotated[int, typer.Option(min=1, help="Examples per step.")] = 32,
    learning_rate: Annotated[float, typer.Option(min=1e-7, max=0.1, help="AdamW peak learning rate.")] = 5e-5,
    seed: Annotated[int, typer.Option(min=0, max=MAX_SEED, help="Sampling and initialisation seed.")] = 0,
    keep_pairs: Annotated[bool, typer.Option("--keep-pairs", help="Keep a sentence's supported and unsupported "
                                                                  "claims in one batch (contrastive pairs).")] = False,
    out: Annotated[Path | None, typer.Option(help="Where to publish it [default: the verifier home].")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bar.")] = False,
) -> None:
    """Fine-tune all-MiniLM-L6-v2 as a 3-way cross-encoder (resumable: run it again after an interruption);
    threshold from validation; the verifier checks measured into its card."""
    from flame_bench.real.nli import TrainConfig, train, verifier_dir

    card = train(TrainConfig(data=tuple(data or ("wiki-leads",)), budget_minutes=budget_minutes or None,
                             train_size=train_size, max_length=max_length, epochs=epochs, batch_size=batch_size,
                             learning_rate=learning_rate, seed=seed, keep_pairs=keep_pairs), out, quiet=quiet)
    table = Table(title=f"verifier trained in {card['train_seconds']:.0f} s, {card['examples_seen']:,} examples seen "
                        f"of {card['train_examples_used']:,} ({', '.join(card['data'])})")
    for col in ("examples seen", "train s", "val acc 3-way %", "val acc supported %"):
        table.add_column(col, justify="right")
    for c in card["curve"]:
        table.add_row(f"{c['examples']:,}", f"{c['train_seconds']:.0f}", _pct(c["accuracy_3way"]),
                      _pct(c["accuracy_supported"]))
    stdout.print(table)
    v = card["validation"]
    line = (f"threshold P(SUPPORTS) >= {card['threshold']:.3f} (chosen on validation: supported-vs-not "
            f"{_pct(v['accuracy_supported_at_threshold'])}%)")
    if "test" in card:
        line += f"; VitaminC test {_pct(card['test']['accuracy_supported_at_threshold'])}%"
    for name, m in card["checks"].items():
        if isinstance(m, dict) and "accuracy" in m:
            line += f"; {name} check {_pct(m['accuracy'])}% (TNR {_pct(m['tnr'])}%)"
    stdout.print(f"{line} -> {out or verifier_dir()}")


@app.command("judge-check")
@interruptible
def judge_check_cmd(
    llm: Annotated[list[str] | None, typer.Option(help="Judge LLM(s) to measure (repeatable; 'none': only the "
                                                       "references).")] = None,
    n: Annotated[int | None, typer.Option(min=1, help="Use the first N of the 221 pairs.")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the result here.")] = None,
) -> None:
    """Measure pairwise judges on human preferences (BIG-bench HHH-alignment pairs, both orders)."""
    from flame_bench.core.io import write_json
    from flame_bench.scoring.judge_check import load_pairs, run_checks

    pairs = load_pairs(n)
    result = run_checks(pairs, llm or [])
    table = Table(title=f"judge check: {len(pairs)} HHH-alignment pairs, each judged in both orders")
    for col in ("judge", "agreement with humans %", "order-consistent %", "picks the first %",
                "harmless / helpful / honest / other %"):
        table.add_column(col, justify="left" if col == "judge" else "right")
    for name, m in result.items():
        table.add_row(name, _pct(m["agreement"]), _pct(m["consistent"]), _pct(m["first_position"]),
                      " / ".join(_pct(v) for v in m["by_subset"].values()))
    stdout.print(table)
    if json_out:
        write_json(json_out, {"pairs": len(pairs), "results": result})


@app.command("verifier-check")
@interruptible
def verifier_check_cmd(
    knowledge: Annotated[str, typer.Option(help="Knowledge source to draw claims from.")] = "wiki-leads",
    llm: Annotated[list[str] | None, typer.Option(help="Evaluator LLM(s) to measure (repeatable).")] = None,
    n: Annotated[int, typer.Option(min=1, help="True claims (each gets a false twin).")] = 100,
    seed: Annotated[int, typer.Option(min=0, max=MAX_SEED, help="Sampling seed for articles, sentences and swaps.")]
    = 0,
    chat: Annotated[bool, typer.Option(help="Also measure each LLM with the prompt as a chat turn (needs a chat "
                                            "template).")] = True,
    nli: Annotated[list[str] | None, typer.Option(help="Also measure the offline NLI verifier: 'default' (the "
                                                       "trained one) or its directory (repeatable).")] = None,
    hard: Annotated[bool, typer.Option(help="Also the harder set (true claims not verbatim, false claims in the "
                                            "passage's own words).")] = True,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the result here.")] = None,
) -> None:
    """Measure FActScore verifiers on true sentences vs the same sentences with one entity swapped."""
    from flame_bench.core.io import write_json
    from flame_bench.real.nli import NLIVerifier
    from flame_bench.scoring.verifier_check import run_checks

    verifiers = [NLIVerifier(None if where == "default" else Path(where)) for where in nli or []]
    report = run_checks(knowledge, llm or [], n, seed, chat=chat, nli=verifiers, hard=hard)
    for set_name, found in report["sets"].items():
        table = Table(title=f"verifier check, {set_name} set: {found['n_claims']} claims from {report['knowledge']} "
                            f"({found['what']})")
        for col in ("verifier", "accuracy %", "true judged true %", "false judged false %"):
            table.add_column(col, justify="left" if col == "verifier" else "right")
        for name, m in found["results"].items():
            if "error" in m:
                table.add_row(name, f"n/a ({m['error']})", "", "")
            else:
                table.add_row(name, _pct(m["accuracy"]), _pct(m["tpr"]), _pct(m["tnr"]))
        stdout.print(table)
    if json_out:
        write_json(json_out, report)
