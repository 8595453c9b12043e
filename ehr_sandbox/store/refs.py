"""Reference values read from the search index, so a caller can skip decoding whole resources.

Working out whom a clinician treats needs the patient of every Encounter they took part in
(thousands in a 1,000-patient clinic); decoding them all was most of a fresh login's first
search. The index already holds each reference parameter's ``Type/id``.
:func:`indexed_references` returns those values for given resources; a resource the index
holds no row for (encrypted store, a parameter not indexed) is simply absent from the answer,
and the caller decodes it instead.

>>> from ehr_sandbox.store import Store
>>> st = Store()
>>> _ = st.create({"resourceType": "Encounter", "id": "e1", "status": "finished",
...                "class": {"code": "AMB"}, "subject": {"reference": "Patient/p1"}})
>>> indexed_references(st, "Encounter", ["e1", "nope"], ("subject", "patient"))
{'e1': ['Patient/p1']}
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["indexed_references"]

_CHUNK = 500


def indexed_references(
    store: Any, resource_type: str, ids: Iterable[str], params: Sequence[str]
) -> dict[str, list[str]]:
    """The ``Type/id`` values the index holds for ``params`` of the current ``ids``.

    Parameters
    ----------
    store
        A :class:`~ehr_sandbox.store.Store`.
    resource_type
        The type of the resources.
    ids
        Resource ids (absent ones are ignored).
    params
        Names of reference search parameters of ``resource_type``.

    Returns
    -------
    dict[str, list[str]]
        id -> the distinct indexed values (sorted), only for ids with at least one row. Empty
        for an encrypting store (its index holds blind values).

    Examples
    --------
    >>> from ehr_sandbox.store import Store
    >>> indexed_references(Store(), "Encounter", ["e1"], ("subject",))
    {}
    """
    wanted = list(dict.fromkeys(ids))
    names = list(dict.fromkeys(params))
    if store.encrypting or not wanted or not names:
        return {}
    out: dict[str, set[str]] = {}
    con = store.connection
    with store.transaction():  # the store's lock: never a half-written state of another thread
        for k in range(0, len(wanted), _CHUNK):
            chunk = wanted[k : k + _CHUNK]
            # CROSS JOIN keeps this order: each id, then its own index rows (left to itself,
            # SQLite may scan every row of the parameter instead).
            sql = (
                "SELECT r.rid, i.s FROM resources r CROSS JOIN search_index i "
                f"ON i.seq = r.seq AND i.param IN ({','.join('?' * len(names))}) "
                f"WHERE r.rtype = ? AND r.rid IN ({','.join('?' * len(chunk))})"
            )
            for rid, value in con.execute(sql, (*names, resource_type, *chunk)):
                if isinstance(value, str):
                    out.setdefault(rid, set()).add(value)
    return {rid: sorted(values) for rid, values in out.items()}
