"""Facts derived from the shipped content, kept on disk so a fresh process need not load it.

Every write validates codes against the content's code sets, checks vital signs against its
plausible ranges and labels data with its sensitivity rules. Loading the content builds its
pydantic models, which costs more than everything else a first ``exercises.start()`` does.
:func:`derived` computes such a fact once, from the loaded content, and keeps it as JSON in
the cache folder (:func:`ehr_sandbox.clinic_cache.cache_dir`); later processes read the file.

A file is named by the fact's name and a fingerprint of **the bytes** of every content file
and of the module that derives the fact, so an edited content file or deriving function is
never answered from a stale entry. A damaged or unreadable entry is derived again; an error
while deriving is raised, never cached, and never replaced by a partial answer. With caching
off (``EHR_SANDBOX_CACHE=off``) every process derives the facts itself.

>>> import os, tempfile
>>> saved = os.environ.get("EHR_SANDBOX_CACHE")
>>> os.environ["EHR_SANDBOX_CACHE"] = tempfile.mkdtemp()
>>> calls = []
>>> def count_codes():
...     calls.append(1)
...     return {"n": 3}
>>> derived("doc-example", count_codes), derived("doc-example", count_codes), len(calls)
({'n': 3}, {'n': 3}, 1)
>>> _ = os.environ.pop("EHR_SANDBOX_CACHE") if saved is None else os.environ.update(EHR_SANDBOX_CACHE=saved)
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import secrets
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

from ehr_sandbox.clinic_cache import cache_dir

__all__ = ["content_fingerprint", "derived"]

_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
_MEMO: dict[tuple[str, str], Any] = {}


@cache
def _content_files() -> tuple[Path, tuple[Path, ...]] | None:
    """The shipped content package's folder and files (data and code), found without
    importing the package (its import builds the pydantic models)."""
    spec = importlib.util.find_spec("synthetic.content")
    if spec is None or not spec.submodule_search_locations:
        return None
    root = Path(next(iter(spec.submodule_search_locations)))
    files = sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    return root, tuple(files)


@cache
def content_fingerprint() -> str:
    """A hash of the names and bytes of the shipped content's files (data and loader code),
    taken once per process (the content itself is loaded once per process too).

    >>> len(content_fingerprint())
    24
    """
    h = hashlib.sha256()
    found = _content_files()
    if found is not None:
        root, files = found
        for p in files:
            h.update(p.relative_to(root).as_posix().encode() + b"\0")
            h.update(p.read_bytes())
            h.update(b"\0")
    return h.hexdigest()[:24]


def _source_hash(fn: Callable[[], Any]) -> str:
    code = getattr(fn, "__code__", None)
    path = Path(code.co_filename) if code is not None else None
    h = hashlib.sha256(getattr(fn, "__qualname__", repr(fn)).encode())
    if path is not None and path.is_file():
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def derived(name: str, derive: Callable[[], Any]) -> Any:
    """``derive()`` (a JSON value computed from the shipped content), from the cache when an
    entry for the same content files and the same deriving code exists; otherwise computed,
    stored and returned. Memoised in the process as well.

    Parameters
    ----------
    name
        The fact's name: lower-case letters, digits and hyphens (a file name part).
    derive
        Computes the fact; it may load the content. Its result must survive a JSON round
        trip unchanged in meaning (lists for tuples, string keys).

    Returns
    -------
    Any
        The fact, as JSON gives it back (lists, dicts, strings, numbers).

    Raises
    ------
    ValueError
        When ``name`` is not a valid fact name.

    Examples
    --------
    >>> derived("Bad Name", lambda: 1)
    Traceback (most recent call last):
    ...
    ValueError: derived: name: expected lower-case letters, digits and hyphens (found 'Bad Name')
    """
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(
            f"derived: name: expected lower-case letters, digits and hyphens (found {name!r})"
        )
    folder = cache_dir()
    key = f"{name}-{content_fingerprint()}-{_source_hash(derive)}"
    memo = _MEMO.get((str(folder), key))
    if memo is not None:
        return memo
    path = folder / f"content-{key}.json" if folder is not None else None
    value: Any = None
    found = False
    if path is not None and path.is_file():
        try:
            value, found = json.loads(path.read_bytes())["value"], True
        except (OSError, ValueError, KeyError, TypeError):
            found = False  # a damaged entry is derived again below
    if not found:
        value = json.loads(json.dumps(derive()))  # the same shape a later read gives
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
                tmp.write_text(json.dumps({"value": value}, sort_keys=True), encoding="utf-8")
                os.replace(tmp, path)
            except OSError:
                pass  # a read-only or full disk: the answer is still right, just not kept
    _MEMO[(str(folder), key)] = value
    return value
