"""Win-rate statistics: hand-computed rates, order randomization, ties, unparsable replies and the LC estimator."""

from __future__ import annotations

import math

import numpy as np
import pytest

from flame_bench.core.errors import FlameError
from flame_bench.scoring.winrate import (
    item_swap,
    length_controlled_win_rate,
    preference_for_model,
    score_pairs,
    win_rate,
)
from flame_bench.world.generate import generate_world
from flame_bench.world.grammar import Grammar
from flame_bench.world.judge import WorldIFJudge
from flame_bench.world.presets import get_preset


def test_win_rate_ties_and_standard_error_by_hand() -> None:
    r = win_rate([1, 1, 0, 0.5])
    assert (r.n, r.wins, r.losses, r.ties) == (4, 2, 1, 1)
    assert r.win_rate == pytest.approx(62.5)
    mean = 2.5 / 4
    sd = math.sqrt(sum((s - mean) ** 2 for s in (1, 1, 0, 0.5)) / 3)
    assert r.standard_error == pytest.approx(100 * sd / 2)
    assert r.length_controlled_win_rate is None
    assert win_rate([0.5] * 6).win_rate == 50.0 and win_rate([0.5] * 6).standard_error == 0.0
    assert math.isnan(win_rate([1]).standard_error)
    with pytest.raises(FlameError):
        win_rate([])
    with pytest.raises(ValueError):
        win_rate([1.5])


@pytest.mark.parametrize(("pref", "swapped", "expected"), [
    (2.0, False, 1.0),  # judge saw (reference, model) and preferred output_2 = the model
    (1.0, False, 0.0),
    (1.0, True, 1.0),  # judge saw (model, reference) and preferred output_1 = the model
    (2.0, True, 0.0),
    (1.5, False, 0.5),
    (1.5, True, 0.5),
])
def test_preference_for_model(pref: float, swapped: bool, expected: float) -> None:
    assert preference_for_model(pref, swapped) == expected


def test_preference_out_of_range_is_rejected() -> None:
    for bad in (0.0, 3.0, float("nan")):
        with pytest.raises(ValueError):
            preference_for_model(bad, False)


def test_item_swap_is_deterministic_and_balanced() -> None:
    ids = [f"alpaca{i:05d}" for i in range(400)]
    swaps = [item_swap(i, 0) for i in ids]
    assert swaps == [item_swap(i, 0) for i in ids]
    assert 150 < sum(swaps) < 250
    assert swaps != [item_swap(i, 1) for i in ids]  # the seed matters


class _Recorder:
    """Prefers whichever output contains 'GOOD'; records every call so tests can see what the judge saw."""

    name = "recorder"
    version = "1"
    prompt_version = "1"

    def __init__(self, reply: str | None = None, garbage_for: set[str] | None = None):
        self.calls: list[tuple[str, str, str]] = []
        self.reply = reply
        self.garbage_for = garbage_for or set()

    def compare(self, record: dict, output_1: str, output_2: str) -> str:
        self.calls.append((record["id"], output_1, output_2))
        if record["id"] in self.garbage_for:
            return "no idea"
        if self.reply is not None:
            return self.reply
        return "Preferred: 1" if "GOOD" in output_1 else "Preferred: 2" if "GOOD" in output_2 else "Preferred: tie"


def _records(n: int) -> list[dict]:
    return [{"id": f"i{k:03d}", "instruction": f"task {k}"} for k in range(n)]


def test_score_pairs_flips_back_both_orders() -> None:
    records = _records(40)
    judge = _Recorder()
    rows, result = score_pairs(records, ["GOOD answer"] * 40, ["reference"] * 40, judge, seed=3, n_bootstrap=0)
    assert {r["swapped"] for r in rows} == {True, False}
    for row, (item_id, out_1, out_2) in zip(rows, judge.calls, strict=True):
        assert row["id"] == item_id
        assert (out_1, out_2) == (("GOOD answer", "reference") if row["swapped"] else ("reference", "GOOD answer"))
        assert row["preference"] == (1.0 if row["swapped"] else 2.0) and row["model_score"] == 1.0
    assert result.win_rate == 100.0 and result.wins == 40

    # a judge that always says "1" (pure position bias) yields the share of swapped items, not 0 or 100
    rows, result = score_pairs(records, ["a"] * 40, ["b"] * 40, _Recorder(reply="Preferred: 1"), seed=3,
                               n_bootstrap=0)
    assert result.win_rate == pytest.approx(100 * np.mean([r["swapped"] for r in rows]))


def test_identical_outputs_are_ties_without_a_judge_call() -> None:
    records = _records(4)
    judge = _Recorder()
    rows, result = score_pairs(records, ["same", "GOOD", "same ", "x"], ["same", "bad", "same", "x"], judge, seed=0,
                               n_bootstrap=0)
    assert [c[0] for c in judge.calls] == ["i001"]
    assert [r["judged"] for r in rows] == [False, True, False, False]
    assert rows[0]["raw"] is None and rows[0]["model_score"] == 0.5
    assert (result.wins, result.ties, result.losses, result.win_rate) == (1, 3, 0, 62.5)


def test_unparsable_replies_are_counted_and_the_threshold_raises() -> None:
    records = _records(40)
    judge = _Recorder(garbage_for={"i005"})
    rows, result = score_pairs(records, ["GOOD"] * 40, ["bad"] * 40, judge, seed=0, n_bootstrap=0)
    assert result.n_unparsable == 1 and result.n == 39 and result.win_rate == 100.0
    assert rows[5]["raw"] == "no idea" and rows[5]["preference"] is None and rows[5]["model_score"] is None
    judge = _Recorder(garbage_for={"i005", "i006", "i007"})
    with pytest.raises(FlameError, match=r"3 of 40 judge replies were unparsable \(threshold 5%\)"):
        score_pairs(records, ["GOOD"] * 40, ["bad"] * 40, judge, seed=0)
    _, result = score_pairs(records, ["GOOD"] * 40, ["bad"] * 40, judge, seed=0, max_unparsable_frac=0.1,
                            n_bootstrap=0)
    assert result.n_unparsable == 3 and result.n == 37


def test_misaligned_inputs_are_an_error() -> None:
    with pytest.raises(FlameError, match="aligned"):
        score_pairs(_records(3), ["a"] * 2, ["b"] * 3, _Recorder(), seed=0)


def test_lc_equals_raw_rate_when_lengths_are_equal() -> None:
    scores = [1, 1, 0, 0.5, 1, 0]
    lengths = [100] * 6
    assert length_controlled_win_rate(scores, lengths, lengths) == pytest.approx(win_rate(scores).win_rate)
    # a constant length difference carries no information either
    assert length_controlled_win_rate(scores, [150] * 6, lengths) == pytest.approx(win_rate(scores).win_rate)


def test_lc_discounts_wins_that_come_only_from_length() -> None:
    rng = np.random.default_rng(0)
    delta = rng.uniform(-50, 150, 100)  # usually longer than the reference...
    scores = (delta > 0).astype(float)  # ...and wins exactly when longer
    model, ref = 300 + delta, np.full(100, 300.0)
    raw = win_rate(scores).win_rate
    lc = length_controlled_win_rate(scores, model, ref)
    assert raw > 70 and 35 < lc < 65 and lc < raw - 15


def test_lc_keeps_wins_unrelated_to_length() -> None:
    rng = np.random.default_rng(1)
    scores = (rng.random(300) < 0.7).astype(float)
    model, ref = 300 + rng.normal(0, 50, 300), np.full(300, 300.0)
    r = win_rate(scores, model, ref, n_bootstrap=100)
    assert abs(r.length_controlled_win_rate - r.win_rate) < 3
    assert 0 < r.length_controlled_standard_error < 10


def test_lc_degenerate_inputs_return_the_raw_rate() -> None:
    assert length_controlled_win_rate([1, 1, 1], [5, 50, 500], [5, 5, 5]) == 100.0
    assert length_controlled_win_rate([0, 0], [5, 50], [5, 5]) == 0.0
    assert 0 < length_controlled_win_rate([1, 0.5], [500, 5], [5, 5]) < 100


def test_constant_answer_loses_against_human_references() -> None:
    world = generate_world(get_preset("smoke"), 0)
    judge = WorldIFJudge(Grammar(world.pools))
    records = world.eval_alpaca
    humans = [r["response"] for r in records]
    rows, result = score_pairs(records, ["I like turtles."] * len(records), humans, judge, seed=0)
    assert result.n == len(records) and result.n_unparsable == 0
    assert result.win_rate < 10
    assert all(r["judged"] for r in rows)
    _, same = score_pairs(records, humans, humans, judge, seed=0, n_bootstrap=0)
    assert same.win_rate == 50.0 and same.ties == len(records)
