"""Real instruction data in the shapes people have it, turned into flame-bench items.

A *data spec* names a file and how to read it:

    {path: FILE, shape: auto | messages | instruction | sharegpt | prompt | bio-entities,
     fields: {canonical: name in the file}, select: "START:END"}

- files: JSONL, a JSON list (or {"items"/"data": [...]}), a `datasets` directory saved with `save_to_disk`, or (shape
  `bio-entities`) a text file with one name per line;
- shapes: `messages` ({"messages": [{role, content}, ...]}: the first user turn and the assistant reply after it),
  `instruction` ({instruction, input?, output}: Alpaca and AlpacaEval files), `sharegpt`
  ({"conversations": [{from: human|gpt, value}, ...]}), `prompt` ({prompt}: prompts only), `bio-entities`
  ("Tell me a bio of NAME." about the page NAME); `auto` picks one from the first record's keys;
- `fields` maps the canonical field names (`messages`, `conversations`, `instruction`, `input`, `output`, `prompt`,
  `generator`) to the file's own;
- `select` keeps rows START..END-1 in file order (after rows without a usable first exchange are skipped), so
  disjoint SFT, DPO and evaluation splits can come from one file.

Paths are relative to the file that names them; `@NAME/...` is inside the fetched dataset NAME
(`flame-bench data fetch NAME`). Every problem is one line naming the file, the line (or record) and the fix.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flame_bench.core.errors import FlameError, unknown_name
from flame_bench.core.io import iter_json_lines, sha256_file

SHAPES = ("auto", "messages", "instruction", "sharegpt", "prompt", "bio-entities")
CANONICAL_FIELDS = ("messages", "conversations", "instruction", "input", "output", "prompt", "generator")
BIO_INSTRUCTION = "Tell me a bio of {name}."
SPEC_KEYS = ("path", "shape", "fields", "select")


@dataclass(frozen=True)
class DataSpec:
    path: Path
    shape: str = "auto"
    fields: dict[str, str] = field(default_factory=dict)
    select: tuple[int, int | None] = (0, None)
    label: str = ""  # where the spec was written (for errors), e.g. "system.yaml:12"

    @property
    def identity(self) -> dict[str, Any]:
        """Content identity (no path): what stage keys and run configs hash."""
        self.require()
        return {"sha256": content_sha256(self.path), "shape": self.shape, "fields": dict(sorted(self.fields.items())),
                "select": list(self.select)}

    def require(self) -> None:
        """One line naming the missing file and how to get it (checked when the data is used, not when a system
        file is read, so `list` and system loading work before anything is fetched)."""
        if self.path.exists():
            return
        from flame_bench.core.paths import data_dir

        try:
            fetched = self.path.relative_to(data_dir()).parts[0]
            hint = f"run `flame-bench data fetch {fetched}`"
        except ValueError:
            hint = "check the path (relative paths start at the file that names them)"
        raise FlameError(f"{self.label or 'data'}: data file {self.path} does not exist; {hint}")


def resolve_path(raw: str, base: Path) -> Path:
    from flame_bench.core.paths import data_dir

    if raw.startswith("@"):
        return data_dir() / raw[1:]
    path = Path(raw).expanduser()
    return path if path.is_absolute() else base / path


def parse_select(raw: Any, where: str) -> tuple[int, int | None]:
    if raw is None:
        return (0, None)
    text = str(raw)
    try:
        start, _, end = text.partition(":")
        out = (int(start or 0), int(end) if end else None)
    except ValueError:
        raise FlameError(f"{where}: select {raw!r} is not START:END (e.g. \"0:200\")") from None
    if out[0] < 0 or (out[1] is not None and out[1] <= out[0]):
        raise FlameError(f"{where}: select {raw!r} must be START:END with 0 <= START < END")
    return out


def make_spec(raw: Any, base: Path, where: str) -> DataSpec:
    """A DataSpec from a system file's value: a path string or a mapping of SPEC_KEYS."""
    if isinstance(raw, str):
        raw = {"path": raw}
    if not isinstance(raw, dict) or "path" not in raw:
        raise FlameError(f"{where}: a data entry is a path or a mapping with path (and shape, fields, select)")
    for key in raw:
        if key not in SPEC_KEYS:
            raise FlameError(f"{where}: {unknown_name('data key', str(key), SPEC_KEYS)}")
    shape = str(raw.get("shape", "auto"))
    if shape not in SHAPES:
        raise FlameError(f"{where}: {unknown_name('data shape', shape, SHAPES)}")
    fields = raw.get("fields") or {}
    if not isinstance(fields, dict) or any(k not in CANONICAL_FIELDS for k in fields):
        bad = next((k for k in fields if k not in CANONICAL_FIELDS), None) if isinstance(fields, dict) else fields
        raise FlameError(f"{where}: fields maps canonical names to the file's; {bad!r} is not one of "
                         f"{', '.join(CANONICAL_FIELDS)}")
    path = resolve_path(str(raw["path"]), base)
    return DataSpec(path, shape, {str(k): str(v) for k, v in fields.items()}, parse_select(raw.get("select"), where),
                    where)


def content_sha256(path: Path) -> str:
    """sha256 of a file, or of a directory's files (a saved `datasets` directory) in name order."""
    if path.is_file():
        return sha256_file(path)
    import hashlib

    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        h.update(str(f.relative_to(path)).encode())
        h.update(sha256_file(f).encode())
    return h.hexdigest()


# -- raw rows --------------------------------------------------------------------------------------------------
def _rows(spec: DataSpec) -> Iterator[tuple[str, Any]]:
    """(location, row) pairs: "FILE:LINE" for JSONL and text, "FILE record N" for JSON lists and datasets."""
    spec.require()
    path = spec.path
    if path.is_dir():
        try:
            from datasets import load_from_disk

            ds = load_from_disk(str(path))
        except Exception as e:  # not a saved dataset: one line, the cause named
            raise FlameError(f"{path} is a directory but not a dataset saved with save_to_disk ({type(e).__name__}); "
                             "pass a JSONL or JSON file") from None
        if hasattr(ds, "keys") and not hasattr(ds, "column_names"):  # a DatasetDict: its "train" split
            if "train" not in ds:
                raise FlameError(f"{path} holds splits {sorted(ds)}; save one split or name its directory")
            ds = ds["train"]
        for i, row in enumerate(ds):
            yield f"{path} record {i}", row
        return
    if path.suffix == ".jsonl":
        for lineno, row in iter_json_lines(path):
            yield f"{path}:{lineno}", row
        return
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise FlameError(f"{path}: not UTF-8 text; save the file as UTF-8") from None
    if spec.shape == "bio-entities" and path.suffix != ".json":
        for lineno, line in enumerate(text.splitlines(), 1):
            if line.strip():
                yield f"{path}:{lineno}", line.strip()
        return
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise FlameError(f"{path}: not valid JSON (line {e.lineno}: {e.msg}); use JSONL, a JSON list or a saved "
                         "dataset directory") from None
    if isinstance(data, dict):
        data = data.get("items", data.get("data"))
    if not isinstance(data, list):
        raise FlameError(f"{path}: expected a JSON list of records (or {{\"items\": [...]}})")
    for i, row in enumerate(data):
        yield f"{path} record {i}", row


def detect_shape(row: Any, fields: dict[str, str], where: str) -> str:
    if isinstance(row, str):
        return "bio-entities"
    if not isinstance(row, dict):
        raise FlameError(f"{where}: expected a JSON object, got {type(row).__name__}")
    for shape, key in (("messages", "messages"), ("sharegpt", "conversations"), ("instruction", "instruction"),
                       ("prompt", "prompt")):
        if fields.get(key, key) in row:
            return shape
    raise FlameError(f"{where}: cannot tell the data shape from keys {sorted(row)[:6]}; set shape: to one of "
                     f"{', '.join(SHAPES[1:])} (and fields: to map names)")


def _field(row: dict, spec: DataSpec, name: str, where: str, shape: str, required: bool = True) -> Any:
    key = spec.fields.get(name, name)
    if key not in row or row[key] is None:
        if not required:
            return None
        raise FlameError(f"{where}: missing field {key!r} (shape {shape}); map it with fields: {{{name}: ...}}")
    return row[key]


def _text(value: Any, where: str, what: str) -> str:
    if not isinstance(value, str):
        got = "null" if value is None else f"{type(value).__name__} {str(value)[:40]}"
        raise FlameError(f"{where}: {what} must be text, got {got}")
    return value


def _turn(turns: list, i: int, where: str, shape: str, role_key: str, text_key: str) -> dict:
    turn = turns[i]
    if not isinstance(turn, dict):
        raise FlameError(f"{where}: turn {i} must be a mapping of {role_key!r} and {text_key!r} (shape {shape})")
    for key in (role_key, text_key):
        if key not in turn:
            raise FlameError(f"{where}: turn {i} has no {key!r} (shape {shape})")
    return turn


def _exchange(turns: Any, where: str, shape: str, role_key: str, text_key: str, user: tuple[str, ...],
              assistant: tuple[str, ...]) -> tuple[str, str | None] | None:
    """The first user turn and the assistant reply right after it (None without one); None when there is no user
    turn. Every turn up to the reply must have its role and text, and both texts must be text."""
    if not isinstance(turns, list):
        raise FlameError(f"{where}: {shape} turns must be a list of {{{role_key}, {text_key}}}")
    for i in range(len(turns)):
        turn = _turn(turns, i, where, shape, role_key, text_key)
        if turn[role_key] in user:
            instruction = _text(turn[text_key], where, "the user turn")
            reply = _turn(turns, i + 1, where, shape, role_key, text_key) if i + 1 < len(turns) else None
            if reply is None or reply[role_key] not in assistant:
                return instruction, None
            return instruction, _text(reply[text_key], where, "the assistant turn")
    return None


def load_items(spec: DataSpec, need_response: bool) -> tuple[list[dict[str, Any]], int]:
    """(items, rows skipped): {id, instruction, response?, topics, generator?, name?} in file order, `select`
    applied. Rows without a usable first exchange (no user turn, no reply where one is needed, empty text) are
    skipped and counted; a malformed row is an error naming its line, and so is a file without a usable row."""
    items: list[dict[str, Any]] = []
    skipped = 0
    shape = spec.shape
    for where, row in _rows(spec):
        if shape == "auto":
            shape = detect_shape(row, spec.fields, where)
        item: dict[str, Any]
        if shape == "bio-entities":
            topic = isinstance(row, dict) and "prompt" not in spec.fields and "topic" in row  # FActScore's files
            name = row if isinstance(row, str) else row["topic"] if topic else _field(row, spec, "prompt", where, shape)
            name = _text(name, where, "an entity name").strip()
            item = {"instruction": BIO_INSTRUCTION.format(name=name), "topics": [name], "name": name}
        elif not isinstance(row, dict):
            raise FlameError(f"{where}: expected a JSON object, got {type(row).__name__}")
        elif shape == "instruction":
            instruction = _text(_field(row, spec, "instruction", where, shape), where, "instruction")
            extra = _field(row, spec, "input", where, shape, required=False)
            if extra:
                instruction = f"{instruction}\n\n{_text(extra, where, 'input')}"
            output = _field(row, spec, "output", where, shape, required=need_response)
            item = {"instruction": instruction, "response": None if output is None else _text(output, where, "output")}
            generator = _field(row, spec, "generator", where, shape, required=False)
            if generator:
                item["generator"] = str(generator)
        elif shape == "prompt":
            if need_response:
                raise FlameError(f"{where}: shape prompt has no responses; SFT data needs messages, instruction or "
                                 "sharegpt")
            item = {"instruction": _text(_field(row, spec, "prompt", where, shape), where, "prompt")}
        else:
            key, role, text, user, asst = (("messages", "role", "content", ("user",), ("assistant",))
                                           if shape == "messages" else
                                           ("conversations", "from", "value", ("human", "user"), ("gpt", "assistant")))
            found = _exchange(_field(row, spec, key, where, shape), where, shape, role, text, user, asst)
            if found is None:
                skipped += 1
                continue
            item = {"instruction": found[0], "response": found[1]}
        if not item["instruction"].strip() or (need_response and not (item.get("response") or "").strip()):
            skipped += 1
            continue
        item.setdefault("topics", [])
        items.append(item)
    if not items:
        raise FlameError(f"{spec.path}: no usable rows ({skipped} skipped: no user turn, no reply or empty text); "
                         "check the file and its shape")
    start, end = spec.select
    chosen = items[start:end]
    if spec.select != (0, None) and len(chosen) < (end or len(items)) - start:
        raise FlameError(f"{spec.label or spec.path}: select {start}:{end} asks for rows the file does not have "
                         f"({len(items)} usable rows)")
    stem = spec.path.stem.replace(" ", "_")
    return [{**it, "id": f"{stem}-{start + i:05d}"} for i, it in enumerate(chosen)], skipped
