"""User-facing errors: each carries one line that names the problem and the fix."""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Callable, Iterable
from typing import Any

_URL = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<rest>[^\s\"'<>]*)")


def _redact_one(match: re.Match) -> str:
    from urllib.parse import urlsplit

    scheme, rest = match["scheme"], match["rest"]
    try:
        netloc = urlsplit(scheme + rest).netloc
    except ValueError:  # unparseable (an odd bracket): treat everything up to an '@' as credentials
        netloc = rest
    if "@" in netloc:  # the whole userinfo: up to the host's '@', the last one in the authority
        rest = "***@" + rest[len(netloc.rpartition("@")[0]) + 1:]
    elif "@" in rest:  # a '/' or '?' inside a password ends the parsed authority early: never show what precedes
        rest = "***@" + rest.rpartition("@")[2]
    return scheme + _redact_query(rest)


def _redact_query(rest: str) -> str:
    """Every query value and the fragment of a URL's `host/path?query#fragment` as `***` (`?api_key=***`); the
    punctuation of the sentence around the URL is kept."""
    cut = min((i for i in (rest.find("?"), rest.find("#")) if i >= 0), default=len(rest))
    tail = rest[cut:]
    kept = len(tail.rstrip(".,;:!)]}"))
    query, hashed, fragment = tail[:kept].partition("#")
    params = [p.partition("=")[0] + "=***" if "=" in p else "***" if p else "" for p in query[1:].split("&")]
    query = "?" + "&".join(params) if query else ""
    return rest[:cut] + query + (hashed and "#***" if fragment else hashed) + tail[kept:]


def redact_url(text: str) -> str:
    """Credentials inside URLs (`scheme://user:password@host`) and their query values and fragments
    (`?api_key=...`) replaced by `***`, wherever they sit in `text`."""
    return _URL.sub(_redact_one, text)


class FlameError(Exception):
    """An error the CLI prints as one line (no traceback)."""


def unknown_name(kind: str, name: str, known: Iterable[str]) -> FlameError:
    """`unknown task 'factscore'; did you mean 'factscore_bio'? (known: ...)`."""
    known = sorted(known)
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    return FlameError(f"unknown {kind} {name!r}{hint} (known: {', '.join(known)})")


class Interrupted(Exception):
    """Ctrl-C inside a command (click would otherwise turn it into a bare "Aborted!"); the CLI prints one line."""


def interruptible(fn: Callable) -> Callable:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except KeyboardInterrupt:
            raise Interrupted from None

    return wrapper
