"""Small derived tables kept on disk, so a fresh process need not rebuild them.

A command line that generates data pays its start-up on every run; building the name pools
with Faker is most of it. :func:`cached_json` computes a JSON-able value once and keeps it in
the cache folder, named by a key and a fingerprint of the inputs the caller names (files
whose bytes decide the value), so a changed input is never answered from a stale entry. A
damaged or unreadable entry is computed again; a folder that cannot be written is skipped
(the value is still returned). Entries are written to a temporary name and renamed, so
parallel processes never see half a file.

The folder is ``$EHR_SANDBOX_CACHE`` (``off`` turns caching off), else
``$XDG_CACHE_HOME/ehr-sandbox/<sub>`` or ``~/.cache/ehr-sandbox/<sub>``.

>>> import os, tempfile
>>> saved = os.environ.get("EHR_SANDBOX_CACHE")
>>> os.environ["EHR_SANDBOX_CACHE"] = tempfile.mkdtemp()
>>> calls = []
>>> def build():
...     calls.append(1)
...     return {"names": ["Ada", "Grace"]}
>>> cached_json("doc-example", build, ()), cached_json("doc-example", build, ()), len(calls)
({'names': ['Ada', 'Grace']}, {'names': ['Ada', 'Grace']}, 1)
>>> _ = os.environ.pop("EHR_SANDBOX_CACHE") if saved is None else os.environ.update(EHR_SANDBOX_CACHE=saved)
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

__all__ = ["cache_root", "cached_json"]

_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")


def cache_root(sub: str) -> Path | None:
    """The cache folder for ``sub`` (not created here), or None when caching is off.

    Parameters
    ----------
    sub
        The sub-folder used under the default location (``clinics``, ``synthetic``...);
        ``$EHR_SANDBOX_CACHE``, when set, is used as it is.

    Returns
    -------
    Path or None
        The folder, or None when ``$EHR_SANDBOX_CACHE`` is ``off`` (or ``0``, ``no``, empty).

    Examples
    --------
    >>> import os; saved = os.environ.get("EHR_SANDBOX_CACHE")
    >>> os.environ["EHR_SANDBOX_CACHE"] = "off"; cache_root("synthetic") is None
    True
    >>> _ = os.environ.pop("EHR_SANDBOX_CACHE") if saved is None else os.environ.update(EHR_SANDBOX_CACHE=saved)
    """
    env = os.environ.get("EHR_SANDBOX_CACHE")
    if env is not None and env.strip().lower() in ("", "off", "0", "no"):
        return None
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ehr-sandbox" / sub


def _fingerprint(inputs: Iterable[str | os.PathLike[str]]) -> str:
    h = hashlib.sha256()
    for p in inputs:
        h.update(str(p).encode() + b"\0")
        try:
            h.update(Path(p).read_bytes())
        except OSError:
            h.update(b"<missing>")
        h.update(b"\0")
    return h.hexdigest()[:24]


def cached_json(
    name: str, build: Callable[[], Any], inputs: Iterable[str | os.PathLike[str]]
) -> Any:
    """``build()``, kept on disk under ``name`` and the fingerprint of the ``inputs`` files.

    Parameters
    ----------
    name
        A short lower-case name (letters, digits, dashes) of what is cached.
    build
        Computes the value (JSON-able: dicts, lists, strings, numbers); called on a miss.
    inputs
        Files whose names and bytes decide the value (the code that builds it, a library's
        version file...).

    Returns
    -------
    Any
        The value as JSON gives it back (tuples come back as lists).

    Raises
    ------
    ValueError
        When ``name`` is not a short lower-case name.

    Examples
    --------
    >>> cached_json("Bad Name", dict, ())
    Traceback (most recent call last):
    ...
    ValueError: name: expected lower-case letters, digits and dashes, got 'Bad Name'
    """
    if not _NAME.fullmatch(name):
        raise ValueError(f"name: expected lower-case letters, digits and dashes, got {name!r}")
    folder = cache_root("synthetic")
    if folder is None:
        return build()
    path = folder / f"{name}-{_fingerprint(inputs)}.json"
    try:
        return json.loads(path.read_bytes())
    except (OSError, ValueError):
        pass  # missing or damaged: computed again below
    value = build()
    # round-trip through JSON so a hit and a miss answer the same shapes
    data = json.dumps(value, ensure_ascii=False).encode()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{path.name}.{secrets.token_hex(4)}.tmp"
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only or full cache folder: the value is still right
    return json.loads(data)
