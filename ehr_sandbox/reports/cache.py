"""A columnar cache of flattened view rows, kept per resource version.

Flattening a ViewDefinition over tens of thousands of resources is most of a report's cost,
and between two runs almost nothing changes. :class:`FlatCache` keeps, per view and masking
profile, the rows each resource version produced (one Arrow table with the source id, its
store position and its row order). A run passes the current versions: rows of changed or
new versions are flattened again, rows of removed or changed ones dropped. The caller then
keeps only the rows of the resources its policy lets it see (:meth:`FlatCache.rows_for`), so
the cache itself never decides who sees what.

>>> cache = FlatCache()
>>> view = {"resource": "Patient", "select": [{"column": [{"name": "g", "path": "gender"}]}]}
>>> pats = {"a": {"resourceType": "Patient", "id": "a", "gender": "male"}}
>>> t = cache.update("k", view, [("a", 1, 1)], lambda ids: [pats[i] for i in ids])
>>> cache.rows_for("k", {"a"}).to_pylist(), cache.rows_for("k", set()).num_rows
([{'g': 'male'}], 0)
"""

from __future__ import annotations

import copy
import weakref
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from ehr_sandbox.views import run_arrow

_SRC, _SEQ, _K = "zzcache_src_id", "zzcache_src_seq", "zzcache_src_k"


@dataclass
class _Entry:
    versions: dict[str, int] = field(default_factory=dict)
    table: pa.Table | None = None


class FlatCache:
    """Flattened rows per (key, resource version); see the module docstring.

    The key names a view and a masking profile; the caller chooses it. The cache never
    decides who sees what: :meth:`rows_for` keeps the rows of the ids it is given.

    Examples
    --------
    >>> cache = FlatCache()
    >>> view = {"resource": "Patient", "select": [{"column": [{"name": "g", "path": "gender"}]}]}
    >>> pats = {"a": {"resourceType": "Patient", "id": "a", "gender": "male"},
    ...         "b": {"resourceType": "Patient", "id": "b", "gender": "female"}}
    >>> load = lambda ids: [pats[i] for i in ids]
    >>> cache.update("k", view, [("a", 1, 1), ("b", 1, 2)], load)
    2
    >>> sorted(r["g"] for r in cache.rows_for("k", {"a", "b"}).to_pylist())
    ['female', 'male']
    """

    def __init__(self) -> None:
        self._entries: dict[Any, _Entry] = {}

    def update(
        self,
        key: Any,
        view: dict[str, Any],
        current: Sequence[tuple[str, int, int]],
        load: Callable[[list[str]], Iterable[dict[str, Any]]],
        *,
        engine: str = "auto",
    ) -> int:
        """Bring ``key``'s rows up to ``current``.

        Rows of new or changed versions are flattened again, rows of removed ones dropped.

        Parameters
        ----------
        key : hashable
            The view and masking profile.
        view : dict
            The ViewDefinition.
        current : sequence of (str, int, int)
            ``(id, version, store position)`` of every current resource, in store order.
        load : callable
            ``load(ids)`` returns those resources (already masked).
        engine : str, default "auto"
            The view engine.

        Returns
        -------
        int
            How many resources were flattened (0 when nothing changed).

        Examples
        --------
        >>> cache = FlatCache()
        >>> view = {"resource": "Patient", "select": [{"column": [{"name": "g", "path": "gender"}]}]}
        >>> pats = {"a": {"resourceType": "Patient", "id": "a", "gender": "male"},
        ...         "b": {"resourceType": "Patient", "id": "b", "gender": "female"}}
        >>> load = lambda ids: [pats[i] for i in ids]
        >>> cache.update("k", view, [("a", 1, 1), ("b", 1, 2)], load)
        2
        >>> cache.update("k", view, [("a", 1, 1), ("b", 1, 2)], load)  # nothing changed
        0
        >>> pats["b"]["gender"] = "other"
        >>> cache.update("k", view, [("a", 1, 1), ("b", 2, 3)], load), cache.rows_for("k", {"b"}).to_pylist()
        (1, [{'g': 'other'}])
        """
        entry = self._entries.setdefault(key, _Entry())
        seq_of = {rid: seq for rid, _, seq in current}
        stale = [rid for rid, vid, _ in current if entry.versions.get(rid) != vid]
        gone = set(entry.versions) - set(seq_of)
        fresh = self._flatten(view, list(load(stale)), seq_of, engine) if stale else None
        table = entry.table
        drop = set(stale) | gone
        if table is not None and drop:
            table = table.filter(pc.invert(pc.is_in(table[_SRC], pa.array(sorted(drop)))))
        if fresh is not None:
            table = fresh if table is None else pa.concat_tables([table, fresh.cast(table.schema)])
        if table is not None and (stale or gone):
            table = table.sort_by([(_SEQ, "ascending"), (_K, "ascending")])
        entry.table = table
        entry.versions = {rid: vid for rid, vid, _ in current}
        return len(stale)

    @staticmethod
    def _flatten(
        view: dict[str, Any], resources: list[dict[str, Any]], seq_of: dict[str, int], engine: str
    ) -> pa.Table:
        tagged = copy.deepcopy(view)
        tagged["select"] = [{"column": [{"name": _SRC, "path": "id"}]}, *tagged.get("select", [])]
        out = run_arrow(tagged, resources, engine=engine)
        seqs = [seq_of.get(rid, 0) for rid in out[_SRC].to_pylist()]
        base = max(seq_of.values(), default=0)
        out = out.append_column(_SEQ, pa.array(seqs, pa.int64()))
        # row order within one resource, kept when rows of several runs are merged
        return out.append_column(_K, pa.array(range(base, base + out.num_rows), pa.int64()))

    def stale(self, key: Any, current: Sequence[tuple[str, int, int]]) -> list[str]:
        """The ids in ``current`` whose version is not cached under ``key`` yet.

        Parameters
        ----------
        key : hashable
        current : sequence of (str, int, int)
            ``(id, version, store position)``.

        Returns
        -------
        list of str

        Examples
        --------
        >>> cache = FlatCache()
        >>> view = {"resource": "Patient", "select": [{"column": [{"name": "g", "path": "gender"}]}]}
        >>> pats = {"a": {"resourceType": "Patient", "id": "a", "gender": "male"},
        ...         "b": {"resourceType": "Patient", "id": "b", "gender": "female"}}
        >>> load = lambda ids: [pats[i] for i in ids]
        >>> _ = cache.update("k", view, [("a", 1, 1)], load)
        >>> cache.stale("k", [("a", 1, 1), ("b", 1, 2)]), cache.stale("k", [("a", 2, 3)])
        (['b'], ['a'])
        """
        have = self._entries[key].versions if key in self._entries else {}
        return [rid for rid, vid, _ in current if have.get(rid) != vid]

    def rows_for(
        self,
        key: Any,
        allowed: set[str],
        *,
        instead: Sequence[dict[str, Any]] = (),
        view: dict[str, Any] | None = None,
        current: Sequence[tuple[str, int, int]] = (),
        engine: str = "auto",
    ) -> pa.Table:
        """The cached rows of the resources in ``allowed``, without the bookkeeping columns.

        ``instead`` are resources (of ``allowed``) this reader sees differently from the cached
        copy (references to records they may not see, redacted): their rows are flattened from
        these copies, not taken from the cache, and keep their place in store order.

        >>> cache = FlatCache()
        >>> view = {"resource": "Patient", "select": [{"column": [{"name": "g", "path": "gender"}]}]}
        >>> pats = {"a": {"resourceType": "Patient", "id": "a", "gender": "male"},
        ...         "b": {"resourceType": "Patient", "id": "b", "gender": "female"}}
        >>> cur = [("a", 1, 1), ("b", 1, 2)]
        >>> _ = cache.update("k", view, cur, lambda ids: [pats[i] for i in ids])
        >>> other = {"resourceType": "Patient", "id": "a", "gender": "other"}
        >>> cache.rows_for("k", {"a", "b"}, instead=[other], view=view, current=cur).to_pylist()
        [{'g': 'other'}, {'g': 'female'}]
        """
        table = self._entries[key].table
        if table is None:
            raise KeyError(key)
        swap = {r["id"] for r in instead}
        kept = table.filter(pc.is_in(table[_SRC], pa.array(sorted(allowed - swap), pa.string())))
        if instead and view is not None:
            seq_of = {rid: seq for rid, _, seq in current}
            fresh = self._flatten(view, list(instead), seq_of, engine)
            kept = pa.concat_tables([kept, fresh.cast(kept.schema)]).sort_by(
                [(_SEQ, "ascending"), (_K, "ascending")]
            )
        return kept.drop_columns([_SRC, _SEQ, _K])


class SandboxCaches:
    """What one sandbox caches for its reports: flattened rows, and the policy's decisions
    per (resource type, access context, change mark).

    A decision set is reused only for the very same access context and while the store's
    change mark is unchanged (any write, including a Consent or a relationship, changes it),
    and never when Consents exist (their periods make decisions depend on the clock).

    Parameters
    ----------
    has_consents : callable
        Says whether the sandbox holds any Consent.

    Examples
    --------
    >>> caches = SandboxCaches(lambda: False)
    >>> caches.remember("Patient", "ctx", 7, ({"a"}, {"a": "a"}))
    >>> caches.decisions_for("Patient", "ctx", 7), caches.decisions_for("Patient", "ctx", 8)
    (({'a'}, {'a': 'a'}), None)
    >>> with_consents = SandboxCaches(lambda: True)
    >>> with_consents.remember("Patient", "ctx", 7, ({"a"}, {})); with_consents.decisions_for("Patient", "ctx", 7) is None
    True
    """

    def __init__(self, has_consents: Callable[[], bool]) -> None:
        self.flat = FlatCache()
        self._decisions: dict[Any, Any] = {}
        self._has_consents = has_consents
        self._quoting: dict[str, tuple[dict[str, int], dict[str, frozenset[str]]]] = {}

    def quoting(
        self,
        rtype: str,
        current: Sequence[tuple[str, int, int]],
        load: Callable[[list[str]], Iterable[dict[str, Any]]],
        quotes: Callable[[dict[str, Any]], frozenset[str]],
    ) -> dict[str, frozenset[str]]:
        """Which current resources of ``rtype`` quote other records (``quotes(resource)``,
        e.g. a reference's display), by id: worked out once per resource version, and
        ``load(ids)`` decodes only the versions not looked at yet.

        >>> caches = SandboxCaches(lambda: False)
        >>> rs = {"a": {"id": "a", "q": ["X/1"]}, "b": {"id": "b", "q": []}}
        >>> q = lambda r: frozenset(r["q"])
        >>> caches.quoting("T", [("a", 1, 1), ("b", 1, 2)], lambda ids: [rs[i] for i in ids], q)
        {'a': frozenset({'X/1'})}
        """
        checked, targets = self._quoting.setdefault(rtype, ({}, {}))
        todo = [rid for rid, vid, _ in current if checked.get(rid) != vid]
        if todo:
            version = {rid: vid for rid, vid, _ in current}
            for r in load(todo):
                found = quotes(r)
                if found:
                    targets[r["id"]] = found
                else:
                    targets.pop(r["id"], None)
            for rid in todo:
                checked[rid] = version[rid]
        if len(checked) > len(current):
            live = {rid for rid, _, _ in current}
            for rid in [r for r in checked if r not in live]:
                del checked[rid]
                targets.pop(rid, None)
        return targets

    def decisions_for(self, rtype: str, ctx: Any, mark: int) -> Any:
        """The remembered ``(allowed ids, patient by id)`` for this context, or None.

        Parameters
        ----------
        rtype : str
        ctx : hashable
            The access context (an unhashable one is never cached).
        mark : int
            The store's change mark.

        Returns
        -------
        object or None

        Examples
        --------
        >>> caches = SandboxCaches(lambda: False)
        >>> caches.remember("Condition", ("dr.a", "TREAT"), 3, ({"c1"}, {"c1": "p1"}))
        >>> caches.decisions_for("Condition", ("dr.a", "TREAT"), 3)
        ({'c1'}, {'c1': 'p1'})
        >>> caches.decisions_for("Condition", ["unhashable"], 3) is None
        True
        """
        try:
            return self._decisions.get((rtype, ctx, mark))
        except TypeError:  # an unhashable context is never cached
            return None

    def remember(self, rtype: str, ctx: Any, mark: int, decided: Any) -> None:
        """Keep a decision set (dropping those of older change marks).

        Nothing is kept while the sandbox holds Consents, or for an unhashable context.

        Parameters
        ----------
        rtype : str
        ctx : hashable
        mark : int
        decided : object
            ``(allowed ids, patient by id)``.

        Examples
        --------
        >>> caches = SandboxCaches(lambda: False)
        >>> caches.remember("Condition", "ctx", 1, "old"); caches.remember("Observation", "ctx", 2, "new")
        >>> caches.decisions_for("Condition", "ctx", 1), caches.decisions_for("Observation", "ctx", 2)
        (None, 'new')
        """
        if self._has_consents():
            return
        try:
            hash(ctx)
        except TypeError:
            return
        self._decisions = {k: v for k, v in self._decisions.items() if k[2] == mark}
        self._decisions[(rtype, ctx, mark)] = decided


_CACHES: weakref.WeakKeyDictionary[Any, SandboxCaches] = weakref.WeakKeyDictionary()


def caches_of(sandbox: Any, has_consents: Callable[[], bool]) -> SandboxCaches:
    """The report caches of ``sandbox`` (made on first use, dropped with the sandbox).

    Parameters
    ----------
    sandbox : Sandbox
        Any weak-referenceable object stands for the sandbox.
    has_consents : callable
        Says whether the sandbox holds any Consent (used when first made).

    Returns
    -------
    SandboxCaches
        The same object for the same sandbox.

    Examples
    --------
    >>> class Box: pass
    >>> a, b = Box(), Box()
    >>> caches_of(a, lambda: False) is caches_of(a, lambda: True), caches_of(a, lambda: False) is caches_of(b, lambda: False)
    (True, False)
    """
    found = _CACHES.get(sandbox)
    if found is None:
        found = _CACHES[sandbox] = SandboxCaches(has_consents)
    return found
