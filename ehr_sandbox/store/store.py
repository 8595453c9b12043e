"""The versioned FHIR resource store on SQLite.

Every write creates a new version (``meta.versionId`` 1, 2, ...; ``meta.lastUpdated`` from
the injected clock), keeps all earlier versions for ``vread``/``history``, and re-indexes the
current version for search. Rows are sealed by a :class:`~ehr_sandbox.crypto.codec.RowCodec`
(plaintext by default; AES-GCM from :mod:`ehr_sandbox.crypto` for encryption at rest).

With an encrypting codec no name, identifier or clinical value is written in plaintext: the
index keeps only keyed blind values of tokens, references and exact strings (documented leak:
equality of values). String prefixes, dates and quantities are not indexed in that mode; a
search narrows by its blind-indexed clauses, decrypts those candidates and finishes the
search on a private in-memory index (so such a search costs a decrypt per candidate).
What stays in plaintext: resource types and ids, version numbers, write times, search
parameter names, token *systems* (e.g. that an identifier is an MRN, not its value), and
``sandbox_meta`` values (sandbox settings, not patient data).

>>> from datetime import datetime, timezone
>>> st = Store(clock=lambda: datetime(2026, 1, 1, tzinfo=timezone.utc))
>>> p = st.create({"resourceType": "Patient", "id": "p1", "gender": "female"})
>>> p["meta"]["versionId"], p["meta"]["lastUpdated"]
('1', '2026-01-01T00:00:00.000+00:00')
>>> st.update({**p, "gender": "other"}, expected_version="1")["meta"]["versionId"]
'2'
>>> [v["gender"] for v in st.history("Patient", "p1")]
['other', 'female']
"""

from __future__ import annotations

import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from ehr_sandbox.crypto.codec import IdentityCodec, RowCodec, key_id_of
from ehr_sandbox.errors import ConflictError, NotFound, ValidationError
from ehr_sandbox.gcpause import collector_paused
from ehr_sandbox.references import ID_RE
from ehr_sandbox.search.extract import Row, param_rows, stored_rows
from ehr_sandbox.search.query import Chain, Clause, SearchQuery
from ehr_sandbox.search.registry import params_for, registry_fingerprint
from ehr_sandbox.search.sort import sort_resources
from ehr_sandbox.search.sql import (
    blind_capable,
    compile_query,
    driving_subquery,
    param_names,
    row_checks,
)
from ehr_sandbox.store import index_plan as index_plans
from ehr_sandbox.store.packing import MIN_SAMPLES, Packer
from ehr_sandbox.store.schema import (
    create_secondary_indexes,
    drop_secondary_indexes,
    open_connection,
    open_index_only,
)
from synthetic.fhir import is_resource_type

ID_NAMESPACE_KEY = "store.id_namespace"
"""sandbox_meta key: text mixed into generated ids (give each sandbox of a network its own)."""

INDEX_VERSION_KEY = "store.index_version"
"""sandbox_meta key: the search registry fingerprint the index was built with."""

_ID_UUID_NS = uuid.UUID("6f1c3f0e-8a53-5c53-9b4e-5a4e0b0c0d0e")
_CHUNK = 500
_BULK_CHUNK = 4096
"""Resources per executemany batch of a bulk load (the whole load is still one transaction)."""
_SAMPLE_WRITES = 2000
"""Single writes a store without a packing dictionary collects before it trains one."""
_FIRST_CHUNK = 4 * _BULK_CHUNK
"""The first batch of a store without a packing dictionary is larger: the dictionary is
trained on it, and a generated clinic's first few thousand resources are its practice (Slots),
not the patients' records that make most of it."""


class AlreadyExists(ConflictError):
    """``create`` named an id that is already in use.

    >>> str(AlreadyExists("Patient/1", current="3"))
    'Patient/1 already exists (version 3): update it instead, or create without an id'
    """

    def __init__(self, ref: str, *, current: str) -> None:
        super().__init__(ref, expected="none", current=current)
        self.args = (
            f"{ref} already exists (version {current}): update it instead, or create without an id",
        )

    def __str__(self) -> str:
        return str(self.args[0])


def _instant(dt: datetime | str) -> str:
    if isinstance(dt, str):
        return dt
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.isoformat(timespec="milliseconds")


BLIND_CHARS = 32
"""Blind index values are kept to 128 bits (HMAC-SHA256 truncated, as HMAC-SHA256-128): equal
values still match, accidental collisions stay negligible, and the index is half the size."""


def _blind(codec: RowCodec, value: str) -> str:
    return codec.blind(value)[:BLIND_CHARS]


def _aad(rtype: str, rid: str, vid: int | str) -> str:
    return f"{rtype}/{rid}/_history/{vid}"


class Store:
    """A versioned, searchable FHIR resource store in one SQLite file (or in memory).

    ``path`` None or ``":memory:"`` keeps everything in memory. ``clock`` gives
    ``meta.lastUpdated`` (the sandbox passes its deterministic clock; without one, UTC now).
    ``id_factory(resource_type)`` makes ids for resources created without one; by default ids
    are deterministic UUIDs from the store's insertion counter and ``store.id_namespace``.
    ``index_plan`` (a new store only) names which search parameters its index holds (see
    :mod:`ehr_sandbox.store.index_plan`; ``"all"`` indexes every one); a file keeps its own.

    >>> st = Store()
    >>> st.exists("Patient", st.create({"resourceType": "Patient"})["id"])
    True
    """

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        codec: RowCodec | None = None,
        clock: Callable[[], datetime] | None = None,
        id_factory: Callable[[str], str] | None = None,
        index_plan: str | None = None,
    ) -> None:
        self.path = None if path is None or str(path) == ":memory:" else str(path)
        self.codec: RowCodec = codec if codec is not None else IdentityCodec()
        self._clock = clock
        self._id_factory = id_factory
        self._lock = threading.RLock()
        self._depth = 0
        self._deferred = False
        plan = index_plan
        if plan is not None and not index_plans.known(plan):
            raise ValidationError("Store", "index_plan", f"one of {index_plans.PLANS}", found=plan)
        self._con = open_connection(self.path)
        if self._meta_raw(INDEX_VERSION_KEY) is None:
            self._meta_write(INDEX_VERSION_KEY, registry_fingerprint())
            self._meta_write(index_plans.PLAN_KEY, plan or index_plans.PLAN)
        self._packer = Packer(self._load_dict)
        try:
            self._read_state()
            if self._meta_raw(INDEX_VERSION_KEY) != orjson.dumps(registry_fingerprint()).decode():
                # indexed by another version's search parameters: a search (and the label
                # cascade's reverse lookups) would miss what the current ones index
                self.reindex()
        except BaseException:
            self._con.close()
            raise

    def _read_state(self) -> None:
        # what the file says about its index plan and its packing dictionary
        raw = self._meta_raw(index_plans.PLAN_KEY)
        plan = index_plans.ALL if raw is None else str(orjson.loads(raw))
        if not index_plans.known(plan):
            raise ValidationError(
                self.path or ":memory:",
                index_plans.PLAN_KEY,
                "an index plan this version of ehr-sandbox knows",
                found=plan,
            )
        self._plan = plan
        self._sync_packer()

    def _sync_packer(self) -> None:
        # compress with the newest dictionary the file holds (none: without one); called on
        # open, after a copy, and after a rollback that may have undone a freshly trained one
        self._packer.forget()
        self._samples: list[bytes] = []
        row = self._con.execute(
            "SELECT dict_id FROM pack_dict ORDER BY rowid DESC LIMIT 1"
        ).fetchone()
        if row is not None:
            raw_dict = self._load_dict(int(row[0]))
            if raw_dict is not None:
                self._packer.use(raw_dict)

    def _load_dict(self, dict_id: int) -> bytes | None:
        row = self._con.execute(
            "SELECT blob FROM pack_dict WHERE dict_id = ?", (dict_id,)
        ).fetchone()
        return None if row is None else self.codec.open(f"pack-dict/{dict_id}", row[0])

    def _skip(self, rtype: str) -> frozenset[str]:
        return index_plans.unindexed(rtype, self._plan)

    # ------------------------------------------------------------------ plumbing
    @property
    def connection(self) -> sqlite3.Connection:
        """The underlying sqlite3 connection (other modules keep their own tables in it).

        Examples
        --------
        >>> st = Store()
        >>> st.connection.execute("SELECT count(*) FROM resources").fetchone()
        (0,)
        """
        return self._con

    @property
    def encrypting(self) -> bool:
        """True when rows are encrypted (and the index is blind).

        Examples
        --------
        >>> from ehr_sandbox.crypto import AesGcmCodec, MasterKey
        >>> Store().encrypting, Store(None, codec=AesGcmCodec(MasterKey(bytes(32)))).encrypting
        (False, True)
        """
        return bool(self.codec.encrypting)

    def close(self) -> None:
        """Close the database (a file store checkpoints its WAL).

        Examples
        --------
        >>> import sqlite3
        >>> st = Store(); st.close()
        >>> try:
        ...     st.connection.execute("SELECT 1")
        ... except sqlite3.ProgrammingError:
        ...     print("closed")
        closed
        """
        with self._lock:
            self._con.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[Store]:
        """All-or-nothing block: an exception rolls back every write made inside it.

        Nested blocks join the outer transaction (as savepoints: an inner failure undoes only
        the inner block if the caller catches it; the outer one still decides the commit).

        >>> st = Store()
        >>> try:
        ...     with st.transaction():
        ...         _ = st.create({"resourceType": "Patient", "id": "a"})
        ...         raise RuntimeError("boom")
        ... except RuntimeError:
        ...     pass
        >>> st.exists("Patient", "a")
        False
        """
        with self._lock:
            depth = self._depth
            name = f"store_sp_{depth}"
            self._con.execute("BEGIN IMMEDIATE" if depth == 0 else f"SAVEPOINT {name}")
            self._depth += 1
            try:
                yield self
            except BaseException:
                self._depth -= 1
                if depth == 0:
                    self._con.execute("ROLLBACK")
                else:
                    self._con.execute(f"ROLLBACK TO SAVEPOINT {name}")
                    self._con.execute(f"RELEASE SAVEPOINT {name}")
                if (
                    self._packer.dict_id is not None
                    and self._load_dict(self._packer.dict_id) is None
                ):
                    self._sync_packer()  # the rollback undid the dictionary trained inside it
                raise
            self._depth -= 1
            self._con.execute("COMMIT" if depth == 0 else f"RELEASE SAVEPOINT {name}")

    def _now(self) -> str:
        return _instant(self._clock() if self._clock is not None else datetime.now(UTC))

    def _load(self, rtype: str, rid: str, vid: int, blob: bytes) -> dict[str, Any]:
        return orjson.loads(self._packer.unpack(self.codec.open(_aad(rtype, rid, vid), blob)))

    # ------------------------------------------------------------------ writes
    def _checked_copy(self, resource: Any) -> dict[str, Any]:
        if not isinstance(resource, dict):
            raise ValidationError(
                "(resource)",
                "(resource)",
                "a FHIR resource as a dict",
                found=type(resource).__name__,
            )
        rtype = resource.get("resourceType")
        if not isinstance(rtype, str) or not is_resource_type(rtype):
            raise ValidationError(str(rtype), "resourceType", "a FHIR resource type", found=rtype)
        rid = resource.get("id")
        if rid is not None and (not isinstance(rid, str) or not ID_RE.match(rid)):
            raise ValidationError(rtype, "id", "a FHIR id: 1-64 of A-Z a-z 0-9 - .", found=rid)
        meta = resource.get("meta")
        if meta is not None and not isinstance(meta, dict):
            raise ValidationError(rtype, "meta", "an object", found=meta)
        try:
            return orjson.loads(orjson.dumps(resource))
        except (orjson.JSONEncodeError, TypeError) as exc:
            raise ValidationError(
                rtype, "(resource)", "JSON-serializable FHIR content", why=str(exc)
            ) from None

    def _current_vid(self, rtype: str, rid: str) -> int | None:
        row = self._con.execute(
            "SELECT vid FROM resources WHERE rtype = ? AND rid = ?", (rtype, rid)
        ).fetchone()
        return None if row is None else int(row[0])

    def _new_id(self, rtype: str) -> str:
        if self._id_factory is not None:
            rid = self._id_factory(rtype)
            if not isinstance(rid, str) or not ID_RE.match(rid):
                raise ValidationError(rtype, "id", "a FHIR id from the id factory", found=rid)
            return rid
        ns = self.meta_get(ID_NAMESPACE_KEY, "ehr-sandbox")
        n = int(self._con.execute("SELECT COALESCE(MAX(seq), 0) FROM resources").fetchone()[0]) + 1
        while True:
            rid = str(uuid.uuid5(_ID_UUID_NS, f"{ns}:{rtype}:{n}"))
            if self._current_vid(rtype, rid) is None:
                return rid
            n += 1

    def _sealed_index(self, rtype: str, rows: list[Row], codec: RowCodec) -> list[Row]:
        if not codec.encrypting:
            return rows
        params = params_for(rtype)
        out: list[Row] = []
        for name, s, x, sys_, _lo, _hi, _num in rows:
            ptype = params[name].type
            if ptype == "string":
                out.append((name, None, _blind(codec, x or ""), None, None, None, None))
            elif ptype in ("token", "uri", "reference"):
                out.append(
                    (
                        name,
                        _blind(codec, s) if s is not None else None,
                        None,
                        sys_,
                        None,
                        None,
                        None,
                    )
                )
            # dates, numbers and quantities are clinical values: not indexed at all when encrypting
        return out

    def _write_index(
        self, resource: dict[str, Any], codec: RowCodec, seq: int, *, replace: bool = True
    ) -> None:
        # index rows point at resources.seq (an integer), not the id text: a much smaller index
        rtype = resource["resourceType"]
        if replace:
            self._con.execute("DELETE FROM search_index WHERE seq = ?", (seq,))
        rows = self._sealed_index(rtype, stored_rows(resource, self._skip(rtype)), codec)
        self._con.executemany(
            "INSERT INTO search_index (rtype, seq, param, s, x, sys, lo, hi, num) VALUES (?,?,?,?,?,?,?,?,?)",
            [(rtype, seq, *r) for r in rows],
        )

    def _write_version(self, resource: dict[str, Any], vid: int, *, new: bool) -> dict[str, Any]:
        rtype, rid = resource["resourceType"], resource["id"]
        now = self._now()
        meta = dict(resource.get("meta") or {})
        meta["versionId"] = str(vid)
        meta["lastUpdated"] = now
        resource["meta"] = meta
        doc = orjson.dumps(resource)
        if self._packer.dict_id is None:
            self._sample(doc)
        blob = self.codec.seal(_aad(rtype, rid, vid), self._packer.pack(doc))
        vrow = self._con.execute(
            "INSERT INTO versions (rtype, rid, vid, last_updated, key_id, blob) VALUES (?,?,?,?,?,?)",
            (rtype, rid, vid, now, key_id_of(self.codec), blob),
        ).lastrowid
        if new:
            cur = self._con.execute(
                "INSERT INTO resources (rtype, rid, vid, last_updated, vrow) VALUES (?,?,?,?,?)",
                (rtype, rid, vid, now, vrow),
            )
            seq = int(cur.lastrowid or 0)
        else:
            self._con.execute(
                "UPDATE resources SET vid = ?, last_updated = ?, vrow = ? WHERE rtype = ? AND rid = ?",
                (vid, now, vrow, rtype, rid),
            )
            seq = int(
                self._con.execute(
                    "SELECT seq FROM resources WHERE rtype = ? AND rid = ?", (rtype, rid)
                ).fetchone()[0]
            )
        self._write_index(resource, self.codec, seq, replace=not new)
        return resource

    def create(self, resource: dict[str, Any]) -> dict[str, Any]:
        """Store a new resource as version 1 and return the stored copy.

        The id is kept when present (:class:`AlreadyExists` if taken), else a new one is made.

        >>> Store().create({"resourceType": "Patient", "id": "x"})["meta"]["versionId"]
        '1'
        """
        r = self._checked_copy(resource)
        with self.transaction():
            if r.get("id") is None:
                r["id"] = self._new_id(r["resourceType"])
            else:
                current = self._current_vid(r["resourceType"], r["id"])
                if current is not None:
                    raise AlreadyExists(f"{r['resourceType']}/{r['id']}", current=str(current))
            return self._write_version(r, 1, new=True)

    def create_many(self, resources: Iterable[dict[str, Any]], *, trusted: bool = False) -> int:
        """Store many new resources (each with its id) as version 1 in one transaction.

        The bulk path of :meth:`create` for generated clinics and large imports: the same rows,
        written in batches (one statement per table per batch) inside one transaction, so
        ``resources`` may be a generator and memory stays flat. Any id already taken raises
        :class:`AlreadyExists` and nothing is written. Returns the count.
        ``trusted=True`` skips the defensive deep copy for resources the caller built itself
        (plain JSON dicts it will not touch again); their ``meta`` is still replaced, not edited.

        >>> st = Store()
        >>> st.create_many([{"resourceType": "Patient", "id": "a"}, {"resourceType": "Patient", "id": "b"}])
        2
        >>> st.read("Patient", "b")["meta"]["versionId"]
        '1'
        """
        with self.bulk() as load:
            load.add(resources, trusted=trusted)
            return load.count

    @contextmanager
    def bulk(self) -> Iterator[BulkLoad]:
        """An all-or-nothing bulk load: resources added to it are written in batches, inside
        one transaction, with the search index's secondary B-trees dropped at the start and
        built once at the end (inside the same transaction).

        Anything else written through this store inside the block (pointer MACs, audit events)
        joins the transaction. An exception - or a crash - leaves the store as it was before
        the block, B-trees included. Open it outside any other transaction: nested, it is a
        savepoint, and SQLite keeps an undo copy of every page a savepoint changes (in memory).

        >>> st = Store()
        >>> with st.bulk() as load:
        ...     load.add({"resourceType": "Patient", "id": str(i)} for i in range(3))
        >>> st.count("Patient")
        3
        >>> try:
        ...     with st.bulk() as load:
        ...         load.add([{"resourceType": "Patient", "id": "new"}, {"resourceType": "Patient", "id": "1"}])
        ... except AlreadyExists as e:
        ...     print(e)
        Patient/1 already exists (version 1): update it instead, or create without an id
        >>> st.exists("Patient", "new")
        False
        """
        with self._lock, self.transaction():
            outer = self._deferred
            if not outer:
                drop_secondary_indexes(self._con)
                self._deferred = True
            load = BulkLoad(self)
            try:
                yield load
                load.flush()
            finally:
                self._deferred = outer
            if not outer:
                create_secondary_indexes(self._con)

    def _insert_batch(self, batch: list[dict[str, Any]]) -> None:
        # version rows get explicit rowids, so each current row points at its version without
        # a look-up; index rows go in sorted for the B-tree
        try:
            with collector_paused():  # rows and index tuples: many objects, no cycles
                self._insert_rows(batch)
        except sqlite3.IntegrityError:
            # UNIQUE (rtype, rid): name the first id already taken (the caller rolls back)
            for r in batch:
                current = self._current_vid(r["resourceType"], r["id"])
                if current is not None:
                    raise AlreadyExists(
                        f"{r['resourceType']}/{r['id']}", current=str(current)
                    ) from None
            raise

    def _insert_rows(self, batch: list[dict[str, Any]]) -> None:
        base = int(self._con.execute("SELECT COALESCE(MAX(seq), 0) FROM resources").fetchone()[0])
        vbase = int(self._con.execute("SELECT COALESCE(MAX(rowid), 0) FROM versions").fetchone()[0])
        kid = key_id_of(self.codec)
        codec = self.codec
        docs = []
        for r in batch:
            r["meta"] = {**(r.get("meta") or {}), "versionId": "1", "lastUpdated": self._now()}
            docs.append(orjson.dumps(r))
        if self._packer.dict_id is None and len(docs) >= MIN_SAMPLES:
            trained = self._packer.train(docs)
            if trained is not None:
                self._keep_dict(trained)
        pack = self._packer.pack
        versions, current, index = [], [], []
        skips: dict[str, frozenset[str]] = {}
        for k, (r, doc) in enumerate(zip(batch, docs, strict=True), start=1):
            rtype, rid = r["resourceType"], r["id"]
            now = r["meta"]["lastUpdated"]
            blob = codec.seal(_aad(rtype, rid, 1), pack(doc))
            versions.append((vbase + k, rtype, rid, 1, now, kid, blob))
            current.append((base + k, rtype, rid, 1, now, vbase + k))
            skip = skips.get(rtype)
            if skip is None:
                skip = skips[rtype] = self._skip(rtype)
            rows = stored_rows(r, skip)
            if codec.encrypting:
                rows = self._sealed_index(rtype, rows, codec)
            n = base + k
            index.extend([(rtype, n, *row) for row in rows])
        if not self._deferred:  # sorted rows are cheaper to add to existing B-trees
            index.sort(key=lambda row: (row[0], row[2], row[3] or "", row[6] or 0.0))
        self._con.executemany(
            "INSERT INTO versions (rowid, rtype, rid, vid, last_updated, key_id, blob) "
            "VALUES (?,?,?,?,?,?,?)",
            versions,
        )
        self._con.executemany(
            "INSERT INTO resources (seq, rtype, rid, vid, last_updated, vrow) VALUES (?,?,?,?,?,?)",
            current,
        )
        self._con.executemany(
            "INSERT INTO search_index (rtype, seq, param, s, x, sys, lo, hi, num) VALUES (?,?,?,?,?,?,?,?,?)",
            index,
        )

    def _sample(self, doc: bytes) -> None:
        # a store filled one write at a time (an import) trains its dictionary once it has
        # seen enough documents; the rows written before stay packed without one
        self._samples.append(doc)
        if len(self._samples) >= _SAMPLE_WRITES:
            samples, self._samples = self._samples, []
            trained = self._packer.train(samples)
            if trained is not None:
                self._keep_dict(trained)

    def _keep_dict(self, data: bytes) -> None:
        dict_id = int(self._packer.dict_id or 0)
        self._con.execute(
            "INSERT OR REPLACE INTO pack_dict (dict_id, blob) VALUES (?, ?)",
            (dict_id, self.codec.seal(f"pack-dict/{dict_id}", data)),
        )

    @contextmanager
    def deferred_indexes(self) -> Iterator[Store]:
        """Bulk-load block: the search index's secondary B-trees are built once at the end
        instead of being updated row by row (searches inside the block still work, by scans).

        A crash inside the block leaves them missing; opening the file re-creates them.
        (:meth:`bulk` does the same inside one transaction, which a crash rolls back.)

        >>> st = Store()
        >>> with st.deferred_indexes():
        ...     st.create_many([{"resourceType": "Patient", "id": "a", "gender": "male"}])
        1
        >>> from ehr_sandbox.search import parse
        >>> [p["id"] for p in st.search("Patient", parse("Patient", {"gender": "male"}))]
        ['a']
        """
        with self._lock:
            if self._depth:
                yield self  # inside a transaction: nothing to gain, keep it simple
                return
            drop_secondary_indexes(self._con)
            self._deferred = True
            try:
                yield self
            finally:
                self._deferred = False
                create_secondary_indexes(self._con)

    def change_mark(self) -> int:
        """A number that grows with every write (the last version row): equal marks, same data.

        >>> st = Store(); m = st.change_mark(); _ = st.create({"resourceType": "Patient"})
        >>> st.change_mark() > m
        True
        """
        with self._lock:
            return int(
                self._con.execute("SELECT COALESCE(MAX(rowid), 0) FROM versions").fetchone()[0]
            )

    def current_versions(self, resource_type: str) -> list[tuple[str, int, int]]:
        """``(id, version, position)`` of every current resource of a type, in insertion order.

        >>> st = Store(); _ = st.create({"resourceType": "Patient", "id": "a"})
        >>> st.current_versions("Patient")
        [('a', 1, 1)]
        """
        with self._lock:
            return [
                (str(rid), int(vid), int(seq))
                for rid, vid, seq in self._con.execute(
                    "SELECT rid, vid, seq FROM resources WHERE rtype = ? ORDER BY seq",
                    (resource_type,),
                )
            ]

    def read_many(self, resource_type: str, ids: Iterable[str]) -> list[dict[str, Any]]:
        """The current versions of ``ids`` (those that exist), in the order given.

        >>> st = Store(); _ = st.create({"resourceType": "Patient", "id": "a"})
        >>> [r["id"] for r in st.read_many("Patient", ["a", "nope"])]
        ['a']
        """
        wanted = list(ids)
        found: dict[str, dict[str, Any]] = {}
        for k in range(0, len(wanted), _CHUNK):
            chunk = wanted[k : k + _CHUNK]
            with self._lock:
                rows = self._con.execute(
                    "SELECT r.rid, r.vid, v.blob FROM resources r JOIN versions v ON v.rowid = r.vrow "
                    f"WHERE r.rtype = ? AND r.rid IN ({','.join('?' * len(chunk))})",
                    (resource_type, *chunk),
                ).fetchall()
            with collector_paused():
                for rid, vid, blob in rows:
                    found[rid] = self._load(resource_type, rid, vid, blob)
        return [found[i] for i in wanted if i in found]

    def load_from(self, source: sqlite3.Connection | str | Path) -> None:
        """Replace this store's content with a copy of another database (SQLite backup API).

        ``source`` is a connection or the path of a store file, which is opened read-only
        and never changed. Cached state (its index plan, its packing dictionary) is re-read.

        >>> a, b = Store(), Store()
        >>> _ = a.create({"resourceType": "Patient", "id": "p"})
        >>> b.load_from(a.connection); b.exists("Patient", "p")
        True
        """
        with self._lock:
            if isinstance(source, sqlite3.Connection):
                source.backup(self._con)
            else:
                src = sqlite3.connect(f"{Path(source).resolve().as_uri()}?mode=ro", uri=True)
                try:
                    src.backup(self._con)
                finally:
                    src.close()
            self._read_state()

    def update(
        self, resource: dict[str, Any], *, expected_version: str | None = None
    ) -> dict[str, Any]:
        """Store a new version of ``resource`` (by its ``id``); return the stored copy.

        ``expected_version`` is the version the caller edited (FHIR ``If-Match``); a stale one
        raises :class:`~ehr_sandbox.errors.ConflictError` naming both versions. Updating an id
        that does not exist creates it (as FHIR update-as-create) unless a version was expected.

        >>> st = Store()
        >>> _ = st.create({"resourceType": "Patient", "id": "x"})
        >>> _ = st.update({"resourceType": "Patient", "id": "x"}, expected_version="1")
        >>> st.update({"resourceType": "Patient", "id": "x"}, expected_version="1")
        Traceback (most recent call last):
        ...
        ehr_sandbox.errors.ConflictError: Patient/x: version conflict: you edited version 1 but the record is now at version 2; read it again and reapply your change
        """
        r = self._checked_copy(resource)
        if r.get("id") is None:
            raise ValidationError(
                r["resourceType"], "id", "the id of the resource to update", found=None
            )
        ref = f"{r['resourceType']}/{r['id']}"
        with self.transaction():
            current = self._current_vid(r["resourceType"], r["id"])
            if current is None:
                if expected_version is not None:
                    raise NotFound(
                        f"{ref} does not exist, so version {expected_version} cannot be updated"
                    )
                return self._write_version(r, 1, new=True)
            if expected_version is not None and str(expected_version) != str(current):
                raise ConflictError(ref, expected=str(expected_version), current=str(current))
            return self._write_version(r, current + 1, new=False)

    # ------------------------------------------------------------------ reads
    def read(self, resource_type: str, resource_id: str) -> dict[str, Any] | None:
        """The current version, or None.

        >>> Store().read("Patient", "nope") is None
        True
        """
        with self._lock:
            row = self._con.execute(
                "SELECT r.vid, v.blob FROM resources r JOIN versions v "
                "ON v.rowid = r.vrow WHERE r.rtype = ? AND r.rid = ?",
                (resource_type, resource_id),
            ).fetchone()
            return None if row is None else self._load(resource_type, resource_id, row[0], row[1])

    def vread(
        self, resource_type: str, resource_id: str, version_id: str | int
    ) -> dict[str, Any] | None:
        """One version of a resource, or None.

        >>> st = Store(); _ = st.create({"resourceType": "Patient", "id": "x"})
        >>> st.vread("Patient", "x", "1")["id"], st.vread("Patient", "x", "2")
        ('x', None)
        """
        try:
            vid = int(str(version_id))
        except ValueError:
            return None
        with self._lock:
            row = self._con.execute(
                "SELECT blob FROM versions WHERE rtype = ? AND rid = ? AND vid = ?",
                (resource_type, resource_id, vid),
            ).fetchone()
            return None if row is None else self._load(resource_type, resource_id, vid, row[0])

    def history(self, resource_type: str, resource_id: str | None = None) -> list[dict[str, Any]]:
        """Every version of one resource (or of every resource of the type), newest first.

        >>> Store().history("Patient")
        []
        """
        sql = "SELECT rid, vid, blob FROM versions WHERE rtype = ?"
        args: tuple[str, ...] = (resource_type,)
        if resource_id is not None:
            sql += " AND rid = ?"
            args = (resource_type, resource_id)
        with self._lock:
            rows = self._con.execute(sql + " ORDER BY rowid DESC", args).fetchall()
            with collector_paused():
                return [self._load(resource_type, rid, vid, blob) for rid, vid, blob in rows]

    def changes_since(self, mark: int, until: int | None = None) -> list[tuple[str, str, int]]:
        """Every version written after ``mark`` (a :meth:`change_mark`), up to ``until``, as
        (type, id, version), oldest first.

        >>> st = Store(); m = st.change_mark(); _ = st.create({"resourceType": "Patient", "id": "x"})
        >>> st.changes_since(m)
        [('Patient', 'x', 1)]
        """
        upper = 2**62 if until is None else int(until)
        with self._lock:
            rows = self._con.execute(
                "SELECT rtype, rid, vid FROM versions WHERE rowid > ? AND rowid <= ? ORDER BY rowid",
                (int(mark), upper),
            ).fetchall()
            return [(str(t), str(i), int(v)) for t, i, v in rows]

    def iter_type(self, resource_type: str) -> Iterator[dict[str, Any]]:
        """Current resources of a type in insertion order, read in pages (streaming).

        >>> list(Store().iter_type("Patient"))
        []
        """
        for _, r in self._iter_current(resource_type):
            yield r

    def _iter_current(self, resource_type: str) -> Iterator[tuple[int, dict[str, Any]]]:
        last = 0
        while True:
            with self._lock:
                rows = self._con.execute(
                    "SELECT r.seq, r.rid, r.vid, v.blob FROM resources r JOIN versions v "
                    "ON v.rowid = r.vrow "
                    "WHERE r.rtype = ? AND r.seq > ? ORDER BY r.seq LIMIT ?",
                    (resource_type, last, _CHUNK),
                ).fetchall()
                with collector_paused():
                    batch = [
                        (seq, self._load(resource_type, rid, vid, blob))
                        for seq, rid, vid, blob in rows
                    ]
            yield from batch
            if len(rows) < _CHUNK:
                return
            last = rows[-1][0]

    def types(self) -> list[str]:
        """Resource types present in the store, sorted.

        >>> st = Store(); _ = st.create({"resourceType": "Patient"}); st.types()
        ['Patient']
        """
        with self._lock:
            return [
                r[0]
                for r in self._con.execute("SELECT DISTINCT rtype FROM resources ORDER BY rtype")
            ]

    def count(self, resource_type: str) -> int:
        """Number of current resources of a type.

        >>> Store().count("Observation")
        0
        """
        with self._lock:
            return int(
                self._con.execute(
                    "SELECT COUNT(*) FROM resources WHERE rtype = ?", (resource_type,)
                ).fetchone()[0]
            )

    def exists(self, resource_type: str, resource_id: str) -> bool:
        """True when the resource exists (in any version).

        >>> Store().exists("Patient", "x")
        False
        """
        with self._lock:
            return self._current_vid(resource_type, resource_id) is not None

    # ------------------------------------------------------------------ search
    def _chain_refs(self, query: SearchQuery) -> dict[int, list[str]]:
        out: dict[int, list[str]] = {}
        for clause in query.clauses:
            for v in clause.values:
                if isinstance(v, Chain):
                    out[id(v)] = [
                        f"{q.resource_type}/{rid}" for q in v.inner for rid in self._match_ids(q)
                    ]
        return out

    _WITH_BLOBS = {
        "columns": "r.rid, r.vid, v.blob",
        "joins": "JOIN versions v ON v.rowid = r.vrow",
    }

    def _match_ids(self, query: SearchQuery) -> list[str]:
        return [r["id"] if isinstance(r, dict) else r for r in self._match(query, load=False)]

    def _split(self, query: SearchQuery) -> tuple[list[Clause], list[Clause]]:
        """(clauses the index answers, clauses checked on the candidates' own values)."""
        skip = self._skip(query.resource_type)
        encrypting = self.codec.encrypting
        fast: list[Clause] = []
        rest: list[Clause] = []
        for c in query.clauses:
            ok = c.param.name not in skip and (not encrypting or blind_capable(c))
            (fast if ok else rest).append(c)
        return fast, rest

    def _sorted_in_sql(self, query: SearchQuery) -> bool:
        skip = self._skip(query.resource_type)
        return not self.codec.encrypting and all(k.param.name not in skip for k in query.sort)

    def _match(self, query: SearchQuery, *, load: bool) -> list[Any]:
        """Ids (``load=False``) or decoded resources of the matches, in insertion order.

        The indexed clauses select the candidates in SQL; the others (parameters the index
        plan leaves out, and with encryption on the ones blind values cannot answer) are
        checked on the decoded candidates, a page at a time.
        """
        rtype = query.resource_type
        chain_refs = self._chain_refs(query)
        blind: Callable[[str], str] = str
        if self.codec.encrypting:
            blind = lambda v: _blind(self.codec, v)  # noqa: E731
        fast, rest = self._split(query)
        if not rest and not load:
            sql, args = compile_query(query, blind=blind, chain_refs=chain_refs, clauses=fast)
            return [r[0] for r in self._con.execute(sql, args)]
        sql, args = compile_query(
            query, blind=blind, chain_refs=chain_refs, clauses=fast, **self._WITH_BLOBS
        )
        cursor = self._con.execute(sql, args)
        out: list[Any] = []
        while rows := cursor.fetchmany(_CHUNK):
            with collector_paused():
                candidates = [self._load(rtype, rid, vid, blob) for rid, vid, blob in rows]
            if rest:
                kept = self._finish_on_plaintext(query, rest, candidates, chain_refs)
                candidates = [r for r in candidates if r["id"] in kept]
            out.extend(candidates if load else [r["id"] for r in candidates])
        return out

    def _finish_on_plaintext(
        self,
        query: SearchQuery,
        clauses: list[Clause],
        candidates: list[dict[str, Any]],
        chain_refs: dict[int, list[str]],
    ) -> set[str]:
        # The decrypted candidates' plaintext index (only the parameters still to check) lives in
        # a private in-memory database, never in the store's file, and is dropped at the end.
        rtype = query.resource_type
        params = [c.param for c in clauses]
        mem = open_index_only()
        try:
            for seq, r in enumerate(candidates, start=1):
                mem.execute(
                    "INSERT INTO resources (seq, rtype, rid) VALUES (?,?,?)", (seq, rtype, r["id"])
                )
                mem.executemany(
                    "INSERT INTO search_index (rtype, seq, param, s, x, sys, lo, hi, num) VALUES (?,?,?,?,?,?,?,?,?)",
                    [(rtype, seq, *row) for p in params for row in param_rows(p, r)],
                )
            sql, args = compile_query(query, blind=str, chain_refs=chain_refs, clauses=clauses)
            return {row[0] for row in mem.execute(sql, args)}
        finally:
            mem.close()

    def search_ids(self, resource_type: str, query: SearchQuery) -> list[str]:
        """Ids of the current resources matching ``query`` (insertion order, no sort).

        >>> from ehr_sandbox.search import parse
        >>> Store().search_ids("Patient", parse("Patient", {"gender": "male"}))
        []
        """
        self._check_type(resource_type, query)
        with self._lock:
            return self._match_ids(query)

    def reference_values(
        self,
        resource_type: str,
        query: SearchQuery,
        params: Iterable[str],
        *,
        per_value: bool = False,
        skip: Iterable[str] = (),
    ) -> tuple[set[str], list[str]] | None:
        """The ``Type/id`` values the index holds for reference ``params`` of the matches of
        ``query``, and the ids of matches it holds none for, in one pass in SQL.

        A caller that needs one reference of many resources (whom a clinician treats needs
        the patient of every Encounter they took part in) reads it here instead of decoding
        them all; it decodes only the ids returned as unindexed (a reference the index cannot
        hold, a parameter the index plan leaves out). ``None`` when the index cannot answer
        the query (an encrypting store holds blind values; a clause on a left-out parameter).

        Parameters
        ----------
        resource_type
            The type searched.
        query
            The search (its ``_sort`` is ignored).
        params
            Names of reference search parameters of ``resource_type``.
        per_value
            Work from the values' side: collect each clause's matches once from the value
            index, read the values of the rows of ``params`` whose resource is in all of
            them, and look for the matches holding none among the driving clause's
            candidates holding none. The same answer; much less work when the matches are
            many (a clinician's years of encounters), more when they are few (then the
            store answers from the matches' side: it counts the candidates first).
        skip
            Values the caller knows already: left out of the answer's values (the ids of
            unindexed matches do not change).

        Returns
        -------
        tuple[set[str], list[str]] or None
            (the distinct indexed values, the ids of matches with no indexed value).

        Examples
        --------
        >>> from ehr_sandbox.search import parse
        >>> st = Store()
        >>> _ = st.create({"resourceType": "Encounter", "id": "e1", "status": "finished",
        ...                "class": {"code": "AMB"}, "subject": {"reference": "Patient/p1"}})
        >>> _ = st.create({"resourceType": "Encounter", "id": "e2", "status": "finished",
        ...                "class": {"code": "AMB"}})
        >>> st.reference_values("Encounter", parse("Encounter", {}), ["subject"])
        ({'Patient/p1'}, ['e2'])
        >>> st.reference_values("Encounter", parse("Encounter", {"status": "finished"}), ["subject"], per_value=True)
        ({'Patient/p1'}, ['e2'])
        """
        self._check_type(resource_type, query)
        # a reference a narrower parameter covers is stored once, under that one
        names = list(dict.fromkeys(n for p in params for n in param_names(resource_type, p)))
        if self.codec.encrypting or not names:
            return None
        with self._lock:
            fast, rest = self._split(query)
            if rest:
                return None
            chain_refs = self._chain_refs(query)
            sql, args = compile_query(
                query, blind=str, chain_refs=chain_refs, clauses=fast, columns="r.seq, r.rid"
            )
            marks = ",".join("?" * len(names))
            known = frozenset(skip)
            if per_value:
                answer = self._values_first(query, fast, names, chain_refs, known)
                if answer is not None:
                    return answer
            rows = self._con.execute(
                f"WITH m(seq, rid) AS ({sql}) SELECT DISTINCT "
                "CASE WHEN i.s IS NULL THEN m.rid END, i.s FROM m "
                f"LEFT JOIN search_index i ON i.seq = m.seq AND i.param IN ({marks}) "
                "AND i.s IS NOT NULL",
                (*args, *names),
            )
            values: set[str] = set()
            missing: list[str] = []
            for rid, value in rows:
                if value is None:
                    missing.append(rid)
                elif value not in known:
                    values.add(value)
        return values, missing

    def _values_first(
        self,
        query: SearchQuery,
        fast: list[Clause],
        names: list[str],
        chain_refs: dict[int, list[str]],
        skip: frozenset[str],
    ) -> tuple[set[str], list[str]] | None:
        """:meth:`reference_values` from the values' side (``per_value``); None when it would
        not pay (then the matches' side answers): no clause drives through the index, or the
        driving clause selects under a quarter of the type (checking those few candidates
        one by one is then cheaper than collecting every clause's matches)."""
        rtype = query.resource_type
        driving = driving_subquery(query, blind=str, chain_refs=chain_refs, clauses=fast)
        sets = row_checks(
            query, row="p", blind=str, chain_refs=chain_refs, clauses=fast, correlated=False
        )
        checks = row_checks(query, row="d", blind=str, chain_refs=chain_refs, clauses=fast)
        if driving is None or sets is None or checks is None:
            return None
        candidates, total = self._con.execute(
            f"SELECT (SELECT COUNT(*) FROM ({driving[0]})), "
            "(SELECT COUNT(*) FROM resources WHERE rtype = ?)",
            (*driving[1], rtype),
        ).fetchone()
        if candidates * 4 < total:
            return None
        marks = ",".join("?" * len(names))
        held = f"FROM search_index p WHERE p.rtype = ? AND p.param IN ({marks}) AND p.s IS NOT NULL"
        # the values held by a match: the value rows of the type whose resource is in every
        # clause's matches (each collected once, from the value index alone)
        found = {
            row[0]
            for row in self._con.execute(
                f"SELECT DISTINCT p.s {held} AND p.s NOT IN (SELECT value FROM json_each(?)) "
                f"AND {sets[0]}",
                (rtype, *names, orjson.dumps(sorted(skip)).decode(), *sets[1]),
            )
        }
        # the matches holding no value are among the driving candidates holding none
        missing = [
            row[0]
            for row in self._con.execute(
                f"WITH d(seq) AS ({driving[0]} EXCEPT SELECT p.seq {held}) SELECT r.rid FROM d "
                f"JOIN resources r ON r.seq = d.seq WHERE {checks[0]} ORDER BY r.seq",
                (*driving[1], rtype, *names, *checks[1]),
            )
        ]
        return found, missing

    def search(self, resource_type: str, query: SearchQuery) -> list[dict[str, Any]]:
        """Current resources matching ``query``, sorted by its ``_sort`` (no paging, includes or policy).

        >>> from ehr_sandbox.search import parse
        >>> st = Store(); _ = st.create({"resourceType": "Patient", "id": "a", "gender": "male"})
        >>> [p["id"] for p in st.search("Patient", parse("Patient", {"gender": "male"}))]
        ['a']
        """
        self._check_type(resource_type, query)
        with self._lock:
            found = self._match(query, load=True)
        return sort_resources(found, query.sort) if query.sort else found

    def search_iter(self, resource_type: str, query: SearchQuery) -> Iterator[dict[str, Any]]:
        """Like :meth:`search` (matches in ``_sort`` order, no paging), decoded lazily.

        The order is worked out in SQL on the index and rows are decoded in growing pages, so
        a caller that needs only the first few (a session paging after its policy check)
        decodes only those. With encryption on, or when a clause or sort key is on a parameter
        the index plan leaves out, the matches are decoded and sorted up front.

        >>> from ehr_sandbox.search import parse
        >>> st = Store()
        >>> _ = st.create_many([{"resourceType": "Patient", "id": i, "birthDate": d}
        ...                     for i, d in (("a", "1990"), ("b", "2001"), ("c", "1985"))])
        >>> next(st.search_iter("Patient", parse("Patient", {"_sort": "-birthdate"})))["id"]
        'b'
        """
        self._check_type(resource_type, query)
        if self._split(query)[1] or not self._sorted_in_sql(query):
            # a clause or sort key the index does not hold (or encryption): decode, then sort
            yield from self.search(resource_type, query)
            return
        with self._lock:
            sql, args = compile_query(
                query,
                blind=str,
                chain_refs=self._chain_refs(query),
                columns="r.rid, r.vid, r.vrow",
                sort=bool(query.sort),
            )
            order = self._con.execute(sql, args).fetchall()
        page, k = 4, 0
        while k < len(order):
            chunk = order[k : k + page]
            k += len(chunk)
            page = min(page * 4, _CHUNK)
            with self._lock:
                marks = ",".join("?" * len(chunk))
                blobs = dict(
                    self._con.execute(
                        f"SELECT rowid, blob FROM versions WHERE rowid IN ({marks})",
                        [vrow for _, _, vrow in chunk],
                    ).fetchall()
                )
            for rid, vid, vrow in chunk:
                blob = blobs.get(vrow)
                if blob is not None:
                    yield self._load(resource_type, rid, vid, blob)

    @staticmethod
    def _check_type(resource_type: str, query: SearchQuery) -> None:
        if query.resource_type != resource_type:
            raise ValidationError(
                resource_type,
                "query",
                f"a query parsed for {resource_type}",
                found=query.resource_type,
            )

    # ------------------------------------------------------------------ meta, keys, index
    def _meta_raw(self, key: str) -> str | None:
        row = self._con.execute("SELECT value FROM sandbox_meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _meta_write(self, key: str, value: Any) -> None:
        self._con.execute(
            "INSERT INTO sandbox_meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, orjson.dumps(value).decode()),
        )

    def meta_get(self, key: str, default: Any = None) -> Any:
        """A JSON value of the sandbox's state, or ``default``.

        >>> st = Store(); st.meta_set("k", {"a": [1]}); st.meta_get("k"), st.meta_get("other", 0)
        ({'a': [1]}, 0)
        """
        with self._lock:
            raw = self._meta_raw(key)
        return default if raw is None else orjson.loads(raw)

    def meta_set(self, key: str, value: Any) -> None:
        """Store a JSON value (``None`` removes the key). Meta values are **not** encrypted.

        >>> st = Store(); st.meta_set("k", 1); st.meta_set("k", None); st.meta_get("k", "gone")
        'gone'
        """
        try:
            orjson.dumps(value)
        except (orjson.JSONEncodeError, TypeError) as exc:
            raise ValidationError("sandbox_meta", key, "a JSON value", why=str(exc)) from None
        with self.transaction():
            if value is None:
                self._con.execute("DELETE FROM sandbox_meta WHERE key = ?", (key,))
            else:
                self._meta_write(key, value)

    def reindex(self) -> int:
        """Rebuild the search index of every current resource (after the registry changed).

        Returns the number of resources indexed.

        >>> st = Store(); _ = st.create({"resourceType": "Patient"}); st.reindex()
        1
        """
        plan = self._plan
        try:
            with self.transaction():
                self._plan = index_plans.PLAN  # a rebuilt index follows the current plan
                n = self._reindex_all(self.codec)
                self._meta_write(INDEX_VERSION_KEY, registry_fingerprint())
                self._meta_write(index_plans.PLAN_KEY, index_plans.PLAN)
                return n
        except BaseException:
            self._plan = plan
            raise

    def _reindex_all(self, codec: RowCodec) -> int:
        self._con.execute("DELETE FROM search_index")
        n = 0
        for rtype in self.types():
            for seq, r in self._iter_current(rtype):
                self._write_index(r, codec, seq, replace=False)
                n += 1
        return n

    def rekey(self, new_codec: RowCodec) -> int:
        """Re-seal every version with ``new_codec`` and re-blind the index, atomically.

        Returns the number of rows re-sealed. On any failure nothing changes and the old codec
        stays in use.

        >>> st = Store(); _ = st.create({"resourceType": "Patient"}); st.rekey(IdentityCodec())
        1
        """
        old = self.codec
        with self.transaction():
            rows = self._con.execute("SELECT rowid, rtype, rid, vid, blob FROM versions").fetchall()
            current = {
                (rtype, rid, vid): seq
                for seq, rtype, rid, vid in self._con.execute(
                    "SELECT seq, rtype, rid, vid FROM resources"
                )
            }
            kid = key_id_of(new_codec)
            self._con.execute("DELETE FROM search_index")
            for rowid, rtype, rid, vid, blob in rows:
                aad = _aad(rtype, rid, vid)
                data = old.open(aad, blob)
                self._con.execute(
                    "UPDATE versions SET blob = ?, key_id = ? WHERE rowid = ?",
                    (new_codec.seal(aad, data), kid, rowid),
                )
                if (rtype, rid, vid) in current:
                    self._write_index(
                        orjson.loads(self._packer.unpack(data)),
                        new_codec,
                        current[(rtype, rid, vid)],
                        replace=False,
                    )
            for dict_id, blob in self._con.execute(
                "SELECT dict_id, blob FROM pack_dict"
            ).fetchall():
                aad = f"pack-dict/{dict_id}"
                self._con.execute(
                    "UPDATE pack_dict SET blob = ? WHERE dict_id = ?",
                    (new_codec.seal(aad, old.open(aad, blob)), dict_id),
                )
            # swapped only after success, so a failed rekey keeps reading with the old codec
            self.codec = new_codec
        return len(rows)


class BulkLoad:
    """Resources added inside :meth:`Store.bulk`, written in batches of a few thousand.

    >>> st = Store()
    >>> with st.bulk() as load:
    ...     load.add([{"resourceType": "Patient", "id": "a"}])
    ...     load.count
    1
    """

    def __init__(self, store: Store) -> None:
        self._store = store
        self._pending: list[dict[str, Any]] = []
        self.count = 0
        """Resources added so far."""

    def add(self, resources: Iterable[dict[str, Any]], *, trusted: bool = False) -> None:
        """Queue ``resources`` (each with its id) as new version-1 resources.

        They are checked as :meth:`Store.create` checks them (a bad one raises
        :class:`~ehr_sandbox.errors.ValidationError`, and the whole load rolls back).

        Parameters
        ----------
        resources : iterable of dict
            New resources, each with ``resourceType`` and ``id``.
        trusted : bool, default False
            The caller built these plain JSON dicts and will not touch them again (no defensive
            deep copy; their ``meta`` is still replaced, not edited).

        Raises
        ------
        ValidationError
            A resource is malformed.
        AlreadyExists
            Two resources (or one already stored) share a type and id.

        Examples
        --------
        >>> st = Store()
        >>> with st.bulk() as load:
        ...     load.add([{"resourceType": "Patient", "id": "a"}, {"resourceType": "Patient", "id": "b"}])
        >>> st.count("Patient"), st.read("Patient", "b")["meta"]["versionId"]
        (2, '1')
        """
        st = self._store
        for r in resources:
            c = dict(r) if trusted else st._checked_copy(r)
            if c.get("id") is None:
                raise ValidationError(
                    c["resourceType"], "id", "an id on every resource of a bulk create"
                )
            self._pending.append(c)
            self.count += 1
            if len(self._pending) >= (_BULK_CHUNK if st._packer.dict_id else _FIRST_CHUNK):
                self.flush()

    def flush(self) -> None:
        """Write what is queued (still inside the load's transaction).

        Examples
        --------
        >>> st = Store()
        >>> with st.bulk() as load:
        ...     load.add([{"resourceType": "Patient", "id": "a"}]); load.flush()
        ...     st.count("Patient")
        1
        """
        if not self._pending:
            return
        batch, self._pending = self._pending, []
        seen: set[tuple[str, str]] = set()
        for r in batch:
            key = (r["resourceType"], r["id"])
            if key in seen:
                raise AlreadyExists(f"{key[0]}/{key[1]}", current="1")
            seen.add(key)
        self._store._insert_batch(batch)
