"""``_include`` / ``_revinclude`` (with ``:iterate``): the resources a search brings along.

The store returns *candidates*; the session still filters every one through the policy, so
an include can never leak what the user may not read.

Whoever holds the data only needs ``read`` and ``search`` (the :class:`Reader` protocol):

>>> from ehr_sandbox.search.query import parse
>>> class Records:
...     data = {("Patient", "p1"): {"resourceType": "Patient", "id": "p1"}}
...     def read(self, rtype, rid):
...         return self.data.get((rtype, rid))
...     def search(self, rtype, query):
...         return []
>>> obs = {"resourceType": "Observation", "id": "o1", "status": "final",
...        "code": {"text": "x"}, "subject": {"reference": "Patient/p1"}}
>>> q = parse("Observation", {"_include": "Observation:subject"})
>>> [r["id"] for r in resolve_includes(Records(), [obs], q)]
['p1']
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

from ehr_sandbox.search.extract import param_rows
from ehr_sandbox.search.query import Include, SearchQuery, parse
from ehr_sandbox.search.registry import REGISTRY, SearchParam, params_for


class Reader(Protocol):
    """What includes need from whoever holds the data: read one resource, run one search.

    The store is one; a session hands its store to the search, which reads through it.

    Examples
    --------
    >>> class Chart:  # any object with these two methods is a Reader (the store is one)
    ...     rows = {("Patient", "p1"): {"resourceType": "Patient", "id": "p1"},
    ...             ("Observation", "o1"): {"resourceType": "Observation", "id": "o1",
    ...                                     "subject": {"reference": "Patient/p1"}}}
    ...     def read(self, rtype, rid): return self.rows.get((rtype, rid))
    ...     def search(self, rtype, query): return [r for (t, _), r in self.rows.items() if t == rtype]
    >>> reader: Reader = Chart()
    >>> reader.read("Patient", "p1")["id"], [o["id"] for o in reader.search("Observation", parse("Observation", []))]
    ('p1', ['o1'])
    """

    def read(self, resource_type: str, resource_id: str) -> dict[str, Any] | None:
        """The current version of ``resource_type/resource_id``, or None when absent.

        Examples
        --------
        >>> class Chart:  # any object with these two methods is a Reader (the store is one)
        ...     rows = {("Patient", "p1"): {"resourceType": "Patient", "id": "p1"},
        ...             ("Observation", "o1"): {"resourceType": "Observation", "id": "o1",
        ...                                     "subject": {"reference": "Patient/p1"}}}
        ...     def read(self, rtype, rid): return self.rows.get((rtype, rid))
        ...     def search(self, rtype, query): return [r for (t, _), r in self.rows.items() if t == rtype]
        >>> Chart().read("Patient", "p1")["id"], Chart().read("Patient", "nope") is None
        ('p1', True)
        """
        ...

    def search(self, resource_type: str, query: SearchQuery) -> list[dict[str, Any]]:
        """The resources of ``resource_type`` that match ``query``.

        Examples
        --------
        >>> class Chart:  # any object with these two methods is a Reader (the store is one)
        ...     rows = {("Patient", "p1"): {"resourceType": "Patient", "id": "p1"},
        ...             ("Observation", "o1"): {"resourceType": "Observation", "id": "o1",
        ...                                     "subject": {"reference": "Patient/p1"}}}
        ...     def read(self, rtype, rid): return self.rows.get((rtype, rid))
        ...     def search(self, rtype, query): return [r for (t, _), r in self.rows.items() if t == rtype]
        >>> [r["id"] for r in Chart().search("Observation", parse("Observation", []))]
        ['o1']
        """
        ...


MAX_ITERATIONS = 4
"""``:iterate`` stops after this many rounds (FHIR lets servers bound the recursion)."""

_CHUNK = 200


def _ref_params(source: str, name: str) -> list[SearchParam]:
    if name == "*":
        return [p for p in params_for(source).values() if p.type == "reference"]
    p = params_for(source).get(name)
    return [p] if p is not None and p.type == "reference" else []


def _forward(
    store: Reader, sources: Iterable[dict[str, Any]], inc: Include
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for r in sources:
        if inc.source_type not in ("*", r.get("resourceType")):
            continue
        for p in _ref_params(r["resourceType"], inc.param):
            for row in param_rows(p, r):
                ref = row[1] or ""
                rtype, _, rid = ref.partition("/")
                if inc.target and rtype != inc.target:
                    continue
                found = store.read(rtype, rid)
                if found is not None:
                    out.append(found)
    return out


def _reverse(
    store: Reader, targets: Sequence[dict[str, Any]], inc: Include
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    sources = [inc.source_type] if inc.source_type != "*" else sorted(REGISTRY)
    by_type: dict[str, list[str]] = {}
    for t in targets:
        by_type.setdefault(t["resourceType"], []).append(f"{t['resourceType']}/{t['id']}")
    for source in sources:
        for p in _ref_params(source, inc.param):
            for ttype, refs in by_type.items():
                if (p.targets and ttype not in p.targets) or (inc.target and inc.target != ttype):
                    continue
                for i in range(0, len(refs), _CHUNK):
                    q = parse(source, [(p.name, ",".join(refs[i : i + _CHUNK]))])
                    out.extend(store.search(source, q))
    return out


def resolve_includes(
    store: Reader,
    results: Sequence[dict[str, Any]],
    query: SearchQuery,
    *,
    visible: Callable[[dict[str, Any]], bool] | None = None,
) -> list[dict[str, Any]]:
    """Resources brought in by the query's ``_include``/``_revinclude`` (not the results themselves).

    Non-iterate includes apply to the matches; ``:iterate`` ones also to what was included,
    until nothing new appears. With ``visible``, a resource it refuses is neither returned nor
    followed further (so a hidden resource never links a session to a visible one).

    Parameters
    ----------
    store : Reader
        Where to read and search.
    results : sequence of dict
        The search's matches.
    query : SearchQuery
        The parsed search, with its includes.
    visible : callable, optional
        ``resource -> bool``: the session's policy.

    Returns
    -------
    list of dict
        The included resources, each once, none of them a match.

    Examples
    --------
    >>> class Chart:  # any object with these two methods is a Reader (the store is one)
    ...     rows = {("Patient", "p1"): {"resourceType": "Patient", "id": "p1"},
    ...             ("Observation", "o1"): {"resourceType": "Observation", "id": "o1",
    ...                                     "subject": {"reference": "Patient/p1"}}}
    ...     def read(self, rtype, rid): return self.rows.get((rtype, rid))
    ...     def search(self, rtype, query): return [r for (t, _), r in self.rows.items() if t == rtype]
    >>> st = Chart()
    >>> q = parse("Observation", [("_include", "Observation:subject")])
    >>> matches = st.search("Observation", q)
    >>> [r["id"] for r in resolve_includes(st, matches, q)]
    ['p1']
    >>> resolve_includes(st, matches, q, visible=lambda r: r["resourceType"] != "Patient")
    []
    """
    seen = {(r["resourceType"], r["id"]) for r in results}
    out: list[dict[str, Any]] = []

    def add(found: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        new = []
        for r in found:
            key = (r["resourceType"], r["id"])
            if key not in seen:
                seen.add(key)
                if visible is None or visible(r):
                    new.append(r)
        out.extend(new)
        return new

    frontier = add(
        [
            *(x for inc in query.include for x in _forward(store, results, inc)),
            *(x for inc in query.revinclude for x in _reverse(store, results, inc)),
        ]
    )
    iterating_inc = [i for i in query.include if i.iterate]
    iterating_rev = [i for i in query.revinclude if i.iterate]
    rounds = 0
    while frontier and (iterating_inc or iterating_rev) and rounds < MAX_ITERATIONS:
        rounds += 1
        frontier = add(
            [
                *(x for inc in iterating_inc for x in _forward(store, frontier, inc)),
                *(x for inc in iterating_rev for x in _reverse(store, frontier, inc)),
            ]
        )
    return out
