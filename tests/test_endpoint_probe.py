"""Endpoints answer in seconds or are named: the model name comes from /v1/models when unset, a server that accepts
connections and never answers fails the startup probe within its short limit, and the fix names where the endpoint
was given (a flag, or a system file's line)."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest
from conftest import serving

from flame_bench.core.errors import FlameError
from flame_bench.engines.llm.backends import HFBackend
from flame_bench.engines.llm.client import OpenAIBackend


def test_the_model_name_is_discovered_from_the_server(smoke_world: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("FLAME_BENCH_LLM_MODEL", raising=False)
    with serving(HFBackend(smoke_world / "model", name="base")) as url:
        backend = OpenAIBackend.from_env(base_url=url)
        assert backend.model == "base"


def test_a_server_that_never_answers_fails_the_probe_in_seconds():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    held: list[socket.socket] = []

    def accept_and_hold():  # accepts, reads nothing, answers nothing
        for _ in range(2):
            try:
                held.append(listener.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept_and_hold, daemon=True).start()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/v1"
    try:
        backend = OpenAIBackend(url, "m", option="verifier: at suite.yaml:12")
        t0 = time.monotonic()
        with pytest.raises(FlameError, match=r"does not answer \(no answer within 1 s\).*change verifier: at "
                                              r"suite\.yaml:12$"):
            backend.probe(seconds=1.0)
        assert time.monotonic() - t0 < 5  # seconds, not the minutes of retried 60 s requests
    finally:
        for conn in held:
            conn.close()
        listener.close()


def test_a_system_files_evaluator_is_named_by_its_line(tmp_path: Path):
    from flame_bench.alignment.systems import load_system

    suite = tmp_path / "suite.yaml"
    suite.write_text("name: s\nknowledge: kb.jsonl\nevaluator:\n  llm: http://127.0.0.1:9/v1\n"
                     "  verifier: http://127.0.0.1:8/v1\n")
    system = tmp_path / "real.yaml"
    system.write_text("name: real\ndescription: x\nbase_model: some-model\ndata: suite.yaml\n"
                      "stages:\n  - recipe: sft\n")
    spec = load_system(str(system)).data
    assert spec.origins == {"llm": f"llm: at {suite}:4", "verifier": f"verifier: at {suite}:5"}
    assert "origins" not in spec.to_dict()  # where it was named is not what the source is
