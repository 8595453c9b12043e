"""Pre-built clinics kept on disk, so a fresh process starts an exercise in milliseconds.

:func:`generate_cached` is ``Sandbox.generate`` for unencrypted in-memory clinics: the first
call with some settings generates the clinic and saves it (with its audit key) in the cache
folder; later calls, in any process, copy the file into memory with the SQLite backup API.
A cache entry is named by the settings and by a fingerprint of the code that generates
clinics, so changing the generator never reuses a stale clinic. Entries are written to a
temporary name and renamed, so parallel processes never see half a file.

The folder is ``$EHR_SANDBOX_CACHE`` (``off`` turns caching off), else
``$XDG_CACHE_HOME/ehr-sandbox/clinics`` or ``~/.cache/ehr-sandbox/clinics``.

>>> import tempfile, os
>>> saved = os.environ.get("EHR_SANDBOX_CACHE")
>>> os.environ["EHR_SANDBOX_CACHE"] = tempfile.mkdtemp()
>>> a = generate_cached(patients=2, seed=4, years=1)
>>> b = generate_cached(patients=2, seed=4, years=1)
>>> count = lambda sb: sb.grader_session().search("Patient").count()
>>> a is not b and count(a) == count(b) == 2
True
>>> len(list(cache_dir().glob("*.db")))
1
>>> _ = os.environ.pop("EHR_SANDBOX_CACHE") if saved is None else os.environ.update(EHR_SANDBOX_CACHE=saved)
"""

from __future__ import annotations

import hashlib
import os
import secrets
from functools import cache
from pathlib import Path
from typing import Any

from ehr_sandbox.crypto import MasterKey
from synthetic.disk_cache import cache_root

__all__ = ["cache_dir", "code_fingerprint", "generate_cached"]

_CODE_DIRS = ("synthetic", "ehr_sandbox/store", "ehr_sandbox/search", "ehr_sandbox/audit")
_CODE_FILES = ("ehr_sandbox/sandbox.py", "ehr_sandbox/provenance.py", "ehr_sandbox/users.py")


def cache_dir() -> Path | None:
    """The cache folder (created on first use), or None when caching is off.

    >>> import os; saved = os.environ.get("EHR_SANDBOX_CACHE")
    >>> os.environ["EHR_SANDBOX_CACHE"] = "off"; cache_dir() is None
    True
    >>> _ = os.environ.pop("EHR_SANDBOX_CACHE") if saved is None else os.environ.update(EHR_SANDBOX_CACHE=saved)
    """
    return cache_root("clinics")  # one rule for every cache folder (synthetic.disk_cache)


@cache
def code_fingerprint() -> str:
    """A hash of the files (names, sizes, modification times) of the code that builds clinics.

    >>> len(code_fingerprint())
    16
    """
    root = Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    paths = [root / f for f in _CODE_FILES]
    for d in _CODE_DIRS:
        paths += sorted(
            p for p in (root / d).rglob("*") if p.is_file() and "__pycache__" not in p.parts
        )
    for p in paths:
        try:
            st = p.stat()
        except FileNotFoundError:
            continue
        h.update(f"{p.relative_to(root)}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def generate_cached(
    patients: int = 200,
    seed: int = 7,
    *,
    reference_date: str = "2026-01-01",
    population: str = "family-practice",
    years: int = 10,
) -> Any:
    """``Sandbox.generate(...)`` (in memory, unencrypted), from the on-disk cache when possible.

    The copy is independent: changes to it never reach the cache. The result is the same
    clinic as a fresh generation (same resources, ids and audit trail) except for its audit
    key, which is the one generated when the entry was made.

    Parameters
    ----------
    patients, seed : int
        As :meth:`Sandbox.generate`.
    reference_date : str, default "2026-01-01"
        The clinic's today.
    population : str, default "family-practice"
        The generator's population.
    years : int, default 10
        Years of history per patient.

    Returns
    -------
    Sandbox
        A fresh in-memory copy.

    Raises
    ------
    ArgumentError
        A setting the generator refuses.

    Examples
    --------
    >>> import os, tempfile
    >>> saved = os.environ.get("EHR_SANDBOX_CACHE")
    >>> os.environ["EHR_SANDBOX_CACHE"] = tempfile.mkdtemp()
    >>> a = generate_cached(patients=1, seed=1, years=1)
    >>> p = a.login("fd.smith").search("Patient").first(); p["gender"] = "unknown"
    >>> _ = a.login("fd.smith").update(p)
    >>> b = generate_cached(patients=1, seed=1, years=1)  # from the cache, untouched by a
    >>> b.grader_session().read("Patient", p["id"])["meta"]["versionId"]
    '1'
    >>> _ = os.environ.pop("EHR_SANDBOX_CACHE") if saved is None else os.environ.update(EHR_SANDBOX_CACHE=saved)
    """
    from ehr_sandbox.sandbox import Sandbox

    settings = {
        "patients": patients,
        "seed": seed,
        "reference_date": str(reference_date),
        "population": population,
        "years": years,
    }
    folder = cache_dir()
    if folder is None:
        return Sandbox.generate(**settings)  # type: ignore[arg-type]
    name = hashlib.sha256(
        repr((sorted(settings.items()), code_fingerprint())).encode()
    ).hexdigest()[:24]
    db, keyfile = folder / f"{name}.db", folder / f"{name}.key"
    if db.is_file() and keyfile.is_file():
        try:
            return Sandbox.load_copy(db, key=MasterKey.from_file(keyfile))
        except Exception:  # noqa: BLE001 - a damaged entry is rebuilt below
            pass
    sb = Sandbox.generate(**settings)  # type: ignore[arg-type]
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{name}.{secrets.token_hex(4)}.tmp"
        sb.master_key.to_file(keyfile)
        sb.snapshot(tmp)
        os.replace(tmp, db)
    except OSError:
        pass  # a read-only or full disk: the clinic still works, it is just not cached
    return sb
