"""The hostile-user catalogue's input and environment cases: bad input gets one line naming the problem and the fix,
exit 2, nothing written, never a traceback; secrets never reach an error."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import run_cli


def files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def one_line(code: int, err: str, expected: str) -> str:
    """The one error line, checked: exit 2, no traceback, `expected` in it."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    line = " ".join(lines[0].split())
    assert expected in line, line
    return line


# G2: query values and fragments are secrets too
@pytest.mark.parametrize(("text", "shown"), [
    ("http://alice:pw@127.0.0.1:9/v1?api_key=QueryKey999 failed", "http://***@127.0.0.1:9/v1?api_key=*** failed"),
    ("see http://h/v1?a=1&token#frag; then", "see http://h/v1?a=***&***#***; then"),
    ("(https://h/x?k=v).", "(https://h/x?k=***)."),
    ("http://127.0.0.1:8000/v1", "http://127.0.0.1:8000/v1"),
])
def test_redact_url_hides_query_values_and_fragments(text: str, shown: str) -> None:
    from flame_bench.core.errors import redact_url

    assert redact_url(text) == shown


# G2/G6: an endpoint URL with a query or fragment never worked (routes are appended to it): refused up front
def test_an_endpoint_url_with_a_query_is_refused_up_front(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from flame_bench.core.errors import FlameError
    from flame_bench.engines.llm.resolve import make_backend

    monkeypatch.setenv("FLAME_BENCH_LLM_MODEL", "foo")
    code, _, err = run_cli(["--generation", "http://alice:pw@127.0.0.1:9/v1?api_key=QueryKey999", "eval", "base",
                            "--world", "nowhere", "-t", "factscore_bio"])
    line = one_line(code, err, "has a ?query or #fragment")
    assert "QueryKey999" not in line and ":pw@" not in line and files(isolated) == []
    with pytest.raises(FlameError, match=r"http://127.0.0.1:9/v1#\*\*\* has a \?query") as e:  # --llm URL
        make_backend("http://127.0.0.1:9/v1#QueryKey999")
    assert "QueryKey999" not in str(e.value)


# G5: the fix names the option the endpoint came from, and "attempt(s)" agrees with its number
def test_endpoint_errors_name_the_option_used_and_count_attempts(monkeypatch: pytest.MonkeyPatch) -> None:
    from flame_bench.core.errors import FlameError
    from flame_bench.engines import generation
    from flame_bench.engines.llm.client import OpenAIBackend

    with socket.socket() as s:  # a port nothing listens on: connections are refused at once
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}/v1"
    for attempts, option, said in ((1, "--generation", "1 attempt:"), (2, "--llm", "2 attempts:")):
        backend = OpenAIBackend(url, "m", max_retries=attempts, backoff=0.0, timeout=2, option=option)
        with pytest.raises(FlameError, match=f"failed after {said}.*pass another {option}$"):
            backend.complete(["hi"])
    monkeypatch.setenv("FLAME_BENCH_LLM_MODEL", "m")
    try:
        generation.set_generation_backend(url + "/")
        assert generation._endpoint(url + "/").option == "--generation"
        with generation.using_backend(url + "//"):
            assert generation._endpoint(url + "//").option == "the system file's generation:"
    finally:
        generation.set_generation_backend("hf")


# T3: gate options that only --update reads are refused without it, before minutes of work
@pytest.mark.parametrize("args", [["--seeds", "5"], ["--note", "why"]])
def test_gate_options_need_update(isolated: Path, args: list[str]) -> None:
    code, _, err = run_cli(["gate", *args])
    one_line(code, err, "--seeds/--note need --update")


# V1: a bad numerics mode is bad input: exit 2, one line
def test_a_bad_numerics_mode_exits_2() -> None:
    env = {**os.environ, "FLAME_BENCH_NUMERICS": "bogus"}
    proc = subprocess.run([sys.executable, "-c", "import flame_bench"], env=env, capture_output=True, text=True,
                          timeout=120)
    one_line(proc.returncode, proc.stderr, "FLAME_BENCH_NUMERICS='bogus' is not a numerics mode")


# G12/G7: a bad thread count is refused once, the same way, by every command, before any work
@pytest.mark.parametrize("value", ["abc", "0", "-1"])
@pytest.mark.parametrize("args", [["world", "build", "--preset", "smoke", "--out", "w", "--quiet"],
                                  ["eval", "base", "--world", "w", "-t", "factscore_bio", "--quiet"]])
def test_a_bad_thread_count_is_one_line(isolated: Path, monkeypatch: pytest.MonkeyPatch, value: str,
                                        args: list[str]) -> None:
    monkeypatch.setenv("FLAME_BENCH_THREADS", value)
    code, _, err = run_cli(args)
    one_line(code, err, f"FLAME_BENCH_THREADS={value!r} is not a thread count")
    assert files(isolated) == []


# V2/V3/V4: a results tree or home that is a file is named, for every command, and the file is left alone
@pytest.mark.parametrize("var", ["FLAME_BENCH_RESULTS", "FLAME_BENCH_HOME"])
@pytest.mark.parametrize("args", [["models", "list"], ["leaderboard", "--write"],
                                  ["eval", "base", "--world", "w", "-t", "factscore_bio", "--quiet"]])
def test_a_results_tree_or_home_that_is_a_file_is_named(isolated: Path, monkeypatch: pytest.MonkeyPatch, var: str,
                                                        args: list[str]) -> None:
    (isolated / "a_file").write_text("mine")
    monkeypatch.setenv(var, str(isolated / "a_file"))
    code, out, err = run_cli(args)
    one_line(code, err, f"{var}={isolated / 'a_file'} is a file; point {var} at a folder")
    assert out == "" and files(isolated) == [isolated / "a_file"] and (isolated / "a_file").read_text() == "mine"


# N3/M3: a name that cannot become a file name is refused before any work
@pytest.mark.parametrize(("command", "name", "said"), [
    ("import", "a" * 300, "is 300 characters long"), ("import", "org/model", "contains '/'"),
    ("import", "a\0b", "contains '\\x00'"), ("models", "m" * 400, "is 400 characters long")])
def test_names_that_cannot_be_file_names_are_refused(isolated: Path, command: str, name: str, said: str) -> None:
    (isolated / "out.jsonl").write_text(json.dumps({"topic": "A", "output": "A was born."}) + "\n")
    (isolated / "model").mkdir()
    args = (["import", str(isolated / "out.jsonl"), "--name", name, "--knowledge", str(isolated / "kb.jsonl")]
            if command == "import" else ["models", "add", name, "--path", str(isolated / "model")])
    before = files(isolated)
    code, _, err = run_cli(args)
    one_line(code, err, said)
    assert "it becomes a file name" in err and files(isolated) == before


# I_dup / I_nonutf8: a topic twice is refused with both lines; a decoding error names its own line
@pytest.mark.parametrize(("lines", "said"), [
    ([b'{"topic": "A", "output": "x"}', b'{"topic": "B", "output": "y"}', b'{"topic": "A", "output": "z"}'],
     "out.jsonl:3: topic 'A' is also on line 1"),
    ([b'{"topic": "A", "output": "x"}', b'{"topic": "B", "output": "\xff\xfe"}'], "out.jsonl:2: not UTF-8 text")])
def test_import_names_the_line_of_a_duplicate_topic_or_bad_bytes(isolated: Path, lines: list[bytes],
                                                                 said: str) -> None:
    (isolated / "kb.jsonl").write_text(json.dumps({"title": "A", "text": "A was born."}) + "\n")
    (isolated / "out.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    before = files(isolated)
    code, _, err = run_cli(["import", str(isolated / "out.jsonl"), "--name", "tool", "--knowledge",
                            str(isolated / "kb.jsonl")])
    one_line(code, err, said)
    assert files(isolated) == before


# W3: a folder that is not a world gets no reader lock beside it
@pytest.mark.parametrize(("manifest", "said"), [("{not json", "not valid JSON"), (None, "no manifest.json"),
                                                ('{"name": "pwa"}', "has no schema_version")])
def test_a_folder_that_is_not_a_world_gets_no_reader_lock(isolated: Path, manifest: str | None, said: str) -> None:
    bad = isolated / "bad"
    bad.mkdir()
    if manifest is not None:
        (bad / "manifest.json").write_text(manifest)
    code, _, err = run_cli(["eval", "base", "--world", str(bad), "-t", "factscore_bio", "--limit", "1", "--quiet"])
    one_line(code, err, said)
    assert sorted(p.name for p in isolated.iterdir()) == ["bad"]


# P3: serve loads (and so checks) the model before it opens the port
def test_serve_refuses_truncated_weights_before_listening(smoke_world: Path, isolated: Path) -> None:
    model = isolated / "trunc"
    shutil.copytree(smoke_world / "model", model)
    weights = model / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    code, _, err = run_cli(["serve", str(model), "--port", "0"])
    line = one_line(code, err, "cannot load the weights")
    assert "serving" not in line


# E14 and S5: a TruthfulQA eval outside a git checkout is silent on stderr; an imported run says how to rescore it
def test_truthfulqa_is_quiet_outside_git_and_an_imported_run_says_how_to_rescore(
        smoke_world: Path, isolated: Path, capfd: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(["eval", "base", "--world", str(smoke_world), "-t", "truthfulqa_mc2", "--limit", "2",
                            "--quiet"])
    assert code == 0, err
    assert "fatal:" not in err + capfd.readouterr().err
    model = isolated / "tiny-chat"
    shutil.copytree(smoke_world / "model", model)
    (model / "flame_model.json").unlink()
    (isolated / "kb.jsonl").write_text(json.dumps({"title": "Ann Lee", "text": "Ann Lee was born in 1900."}) + "\n")
    (isolated / "out.jsonl").write_text(json.dumps({"topic": "Ann Lee", "output": "Ann Lee was born in 1900."}) + "\n")
    code, _, err = run_cli(["import", str(isolated / "out.jsonl"), "--name", "tool", "--knowledge",
                            str(isolated / "kb.jsonl"), "--llm", str(model)])
    assert code == 0, err
    run = next((isolated / "results" / "runs").glob("factscore_bio__tool__*"))
    before = files(isolated / "results")
    code, _, err = run_cli(["rescore", run.name, "--quiet"])
    one_line(code, err, "was imported, so it is rescored by importing its file again: `flame-bench import")
    assert files(isolated / "results") == before
