"""`flame-prefix` (shared-prefix log-likelihoods) against lm-eval's own `hf` model on the same requests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from flame_bench.core.errors import FlameError


@pytest.fixture(scope="module")
def world_model(smoke_world: Path) -> tuple[Any, Any]:
    from flame_bench.engines.models import load_model
    from flame_bench.world.source import WorldSource

    return load_model(WorldSource.open(smoke_world).base_model())


def _requests(tok: Any) -> list[Any]:
    """Few-shot-style requests: a long primer shared by every context, several contexts with several continuations
    each (one-token and multi-token ones, a duplicate, one that recurs in two contexts), an empty context and one
    request longer than the model's window (scored by HFLM's own truncating path)."""
    from lm_eval.api.instance import Instance

    primer = " ".join(f"Question: who is person {i}? Answer: a baker of town {i}." for i in range(6))
    args = []
    for q in range(5):
        ctx = f"{primer}\nQuestion: what does person {q} do? Answer:"
        for cont in (" a baker.", " a pilot of the town.", " no", " a baker.", f" a poet of town {q} and more."):
            args.append((ctx, cont))
    args += [("", "a baker."), ("Short context:", " yes"), (primer * 6, " the end.")]
    return [Instance(request_type="loglikelihood", doc={}, arguments=a, idx=i) for i, a in enumerate(args)]


def test_prefix_scores_equal_lm_evals_hf_model(world_model: tuple[Any, Any]) -> None:
    from lm_eval.models.huggingface import HFLM

    from flame_bench.engines.llm.lm_eval_prefix import SharedPrefixLM

    model, tok = world_model
    reqs = _requests(tok)
    hf = HFLM(pretrained=model, tokenizer=tok, batch_size=4, max_length=256)
    ours = SharedPrefixLM(pretrained=model, tokenizer=tok, batch_size=3, max_length=256)
    assert len(hf.tok_encode(reqs[-1].args[0])) > 256  # the last request really exceeds the window
    expected, got = hf.loglikelihood(reqs, disable_tqdm=True), ours.loglikelihood(reqs, disable_tqdm=True)
    assert len(got) == len(reqs)
    for (e_ll, e_greedy), (g_ll, g_greedy), r in zip(expected, got, reqs, strict=True):
        assert abs(e_ll - g_ll) < 1e-4, r.args
        assert e_greedy == g_greedy, r.args
    assert len({round(ll, 3) for ll, _ in got}) > 5  # real, distinct scores


def test_prefix_runs_each_shared_token_once(world_model: tuple[Any, Any]) -> None:
    """What makes it fast, counted (never timed): tokens through the model, against HFLM's."""
    from lm_eval.models.huggingface import HFLM

    from flame_bench.engines.llm.lm_eval_prefix import SharedPrefixLM

    model, tok = world_model
    reqs = _requests(tok)[:-3]  # the 5 contexts x 5 continuations
    counted = {"tokens": 0}
    hook = model.register_forward_pre_hook(
        lambda _m, args, kwargs: counted.__setitem__("tokens", counted["tokens"] + int(
            (kwargs.get("input_ids") if kwargs.get("input_ids") is not None else args[0]).numel())),
        with_kwargs=True)
    try:
        tokens = {}
        for name, cls in (("hf", HFLM), ("prefix", SharedPrefixLM)):
            counted["tokens"] = 0
            cls(pretrained=model, tokenizer=tok, batch_size=1).loglikelihood(reqs, disable_tqdm=True)
            tokens[name] = counted["tokens"]
    finally:
        hook.remove()
    assert tokens["prefix"] * 5 < tokens["hf"], tokens


def test_flame_prefix_is_registered_with_lm_eval() -> None:
    from lm_eval.api.registry import get_model

    from flame_bench.engines.llm.lm_eval_prefix import SharedPrefixLM

    assert get_model("flame-prefix") is SharedPrefixLM


def test_backend_choice_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from flame_bench.core.registry import TASKS

    TASKS.get("truthfulqa_mc1")
    task = sys.modules["flame_bench_tasks.truthfulqa"]
    with pytest.raises(FlameError, match="did you mean 'prefix'"):
        task.make_lm(tmp_path, backend="prefx")
    monkeypatch.setitem(sys.modules, "vllm", None)  # not installed
    with pytest.raises(FlameError, match="needs the vllm package"):
        task.make_lm(tmp_path, backend="vllm")


def test_truthfulqa_identical_on_both_backends(smoke_world: Path) -> None:
    """lm-eval's task configs unchanged, run on each backend: the same MC1/MC2 per item."""
    import sys

    from flame_bench.core.registry import TASKS
    from flame_bench.world.source import WorldSource

    TASKS.get("truthfulqa_mc1")
    task = sys.modules["flame_bench_tasks.truthfulqa"]
    source = WorldSource.open(smoke_world)
    items = source.eval_set("truthfulqa").items[:20]
    runs = {b: task.evaluate_mc(task.make_lm(source.base_model(), 8, b), items) for b in ("hf", "prefix")}
    for m in ("mc1", "mc2"):
        assert runs["hf"][m]["value"] == pytest.approx(runs["prefix"][m]["value"], abs=1e-6)
        for a, b in zip(runs["hf"][m]["items"], runs["prefix"][m]["items"], strict=True):
            assert a["loglikelihoods"] == pytest.approx(b["loglikelihoods"], abs=1e-4)
