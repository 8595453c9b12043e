"""SQLite schema and connection settings of the store.

``resources`` holds the current version of each resource (its ``seq`` is the insertion
order, and what index rows point at; ``vrow`` is the rowid of its current version), ``versions`` every version ever written (sealed rows), ``search_index`` the index of
the current versions (only the parameters of the store's index plan, see
:mod:`ehr_sandbox.store.index_plan`), ``sandbox_meta`` small JSON values (sandbox state),
``pack_dict`` the zstd dictionaries rows are compressed with (sealed like rows).

>>> import sqlite3
>>> con = open_connection(None)
>>> sorted(r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'"))
['pack_dict', 'resources', 'sandbox_meta', 'search_index', 'versions']
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from ehr_sandbox.errors import ValidationError

SCHEMA = """
CREATE TABLE IF NOT EXISTS resources (
    seq INTEGER PRIMARY KEY,
    rtype TEXT NOT NULL,
    rid TEXT NOT NULL,
    vid INTEGER NOT NULL,
    last_updated TEXT NOT NULL,
    vrow INTEGER,
    UNIQUE (rtype, rid)
);
CREATE TABLE IF NOT EXISTS versions (
    rtype TEXT NOT NULL,
    rid TEXT NOT NULL,
    vid INTEGER NOT NULL,
    last_updated TEXT NOT NULL,
    key_id TEXT NOT NULL,
    blob BLOB NOT NULL,
    UNIQUE (rtype, rid, vid)
);
CREATE TABLE IF NOT EXISTS search_index (
    rtype TEXT NOT NULL,
    seq INTEGER NOT NULL,
    param TEXT NOT NULL,
    s TEXT,
    x TEXT,
    sys TEXT,
    lo REAL,
    hi REAL,
    num REAL
);
CREATE TABLE IF NOT EXISTS sandbox_meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS pack_dict (
    dict_id INTEGER PRIMARY KEY,
    blob BLOB NOT NULL
);
"""

SECONDARY_INDEXES = """
CREATE INDEX IF NOT EXISTS search_index_value ON search_index (rtype, param, s, lo, hi, seq);
CREATE INDEX IF NOT EXISTS search_index_seq_param ON search_index (seq, param);
CREATE INDEX IF NOT EXISTS resources_type_seq ON resources (rtype, seq);
"""
"""The secondary B-trees: a bulk load drops them and builds them once at the end.

``resources_type_seq`` lets a type be read in insertion order page by page (without it,
every page re-sorted all resources of the type: quadratic in the type's size). A file made
before it existed gets it when opened.

``search_index_value`` also holds ``hi`` and ``seq``, so the clause that selects a search's
candidates (a reference, a token, a date range) is answered from the index alone, without
reading a table row per candidate (a clinician's years of encounters, on every fresh login).
A file made before keeps its narrower index (the same answers, more slowly) until a bulk load
(``Store.deferred_indexes``) rebuilds the B-trees."""


def drop_secondary_indexes(con: sqlite3.Connection) -> None:
    """Drop the search index's B-trees (before a bulk load).

    >>> con = open_connection(None); drop_secondary_indexes(con); create_secondary_indexes(con)
    >>> sorted(r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='index' AND name NOT LIKE 'sqlite%'"))
    ['resources_type_seq', 'search_index_seq_param', 'search_index_value']
    """
    con.execute("DROP INDEX IF EXISTS search_index_value")
    con.execute("DROP INDEX IF EXISTS search_index_seq_param")
    con.execute("DROP INDEX IF EXISTS resources_type_seq")


def create_secondary_indexes(con: sqlite3.Connection) -> None:
    """(Re-)create the search index's B-trees (after a bulk load; a no-op when present).

    Parameters
    ----------
    con : sqlite3.Connection
        A store database (see :func:`open_connection`).

    Examples
    --------
    >>> con = open_connection(None)
    >>> drop_secondary_indexes(con); create_secondary_indexes(con); create_secondary_indexes(con)
    >>> con.execute("SELECT count(*) FROM sqlite_master WHERE name = 'search_index_value'").fetchone()
    (1,)
    """
    for statement in SECONDARY_INDEXES.strip().split(";"):
        if statement.strip():
            con.execute(statement)


INDEX_ONLY_SCHEMA = """
CREATE TABLE resources (seq INTEGER PRIMARY KEY, rtype TEXT NOT NULL, rid TEXT NOT NULL);
CREATE TABLE search_index (rtype TEXT, seq INTEGER, param TEXT, s TEXT, x TEXT, sys TEXT, lo REAL, hi REAL, num REAL);
CREATE INDEX search_index_s ON search_index (rtype, param, s);
CREATE INDEX search_index_seq_param ON search_index (seq, param);
"""
"""A private in-memory index used to finish searches on decrypted candidates."""


def open_connection(path: str | Path | None) -> sqlite3.Connection:
    """Open (and create) the store database; WAL and full fsync on files.

    ``synchronous=FULL`` makes every committed transaction durable even across a power cut,
    not just a process crash; WAL lets readers run while a writer commits.

    Parameters
    ----------
    path : str, Path or None
        The database file, or None for an in-memory database.

    Returns
    -------
    sqlite3.Connection
        A connection with the store's tables created.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> con = open_connection(pathlib.Path(tempfile.mkdtemp()) / "s.db")
    >>> con.execute("PRAGMA journal_mode").fetchone(), con.execute("PRAGMA synchronous").fetchone()
    (('wal',), (2,))
    >>> con.close()
    """
    target = ":memory:" if path is None or str(path) == ":memory:" else str(path)
    # isolation_level=None: we issue BEGIN/SAVEPOINT ourselves (sqlite3's implicit BEGIN would
    # split our transactions and fight the audit module's savepoints)
    con = sqlite3.connect(target, isolation_level=None, check_same_thread=False)
    try:
        con.execute("PRAGMA busy_timeout = 10000")
        if target != ":memory:":
            con.execute("PRAGMA journal_mode = WAL")
        con.execute("PRAGMA synchronous = FULL")
        con.execute("PRAGMA temp_store = MEMORY")
        con.executescript(SCHEMA)
        con.executescript(SECONDARY_INDEXES)
    except sqlite3.DatabaseError as exc:
        con.close()
        raise ValidationError(
            Path(target).name, "(file)", "an ehr-sandbox SQLite database", why=str(exc)
        ) from None
    columns = {row[1] for row in con.execute("PRAGMA table_info(search_index)")}
    columns |= {row[1] for row in con.execute("PRAGMA table_info(resources)")}
    if "seq" not in columns or "vrow" not in columns:
        con.close()
        raise ValidationError(
            Path(target).name,
            "search_index",
            "a database made by this version of ehr-sandbox",
            why="its search index has an older layout: export it and import it into a new sandbox",
        )
    return con


def open_index_only() -> sqlite3.Connection:
    """A throw-away in-memory database with just the tables search SQL reads.

    >>> open_index_only().execute("SELECT COUNT(*) FROM search_index").fetchone()
    (0,)
    """
    con = sqlite3.connect(":memory:", isolation_level=None)
    con.executescript(INDEX_ONLY_SCHEMA)
    return con
