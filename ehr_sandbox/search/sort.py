"""``_sort``: order resources by one or more search parameters.

Sorting happens in Python on the (decrypted) matches, so it works the same with encryption on.
A resource without a value for a key sorts last whatever the direction; ties keep the
store's insertion order.

>>> from ehr_sandbox.search.query import parse
>>> rs = [{"resourceType": "Patient", "id": i, "birthDate": d} for i, d in (("a", "1990"), ("b", "1980"), ("c", None))]
>>> [r["id"] for r in sort_resources(rs, parse("Patient", {"_sort": "-birthdate"}).sort)]
['a', 'b', 'c']
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ehr_sandbox.search.extract import param_rows
from ehr_sandbox.search.query import SortKey


def sort_value(resource: dict[str, Any], key: SortKey) -> Any:
    """The value ``resource`` sorts by for ``key`` (None when it has none).

    >>> from ehr_sandbox.search.registry import lookup
    >>> sort_value({"resourceType": "Patient", "id": "x", "gender": "male"}, SortKey(lookup("Patient", "gender")))
    'male'
    """
    p = key.param
    if p.type == "special":
        return resource.get("id")
    rows = param_rows(p, resource)
    if p.type == "date":
        vals: list[Any] = [r[4] for r in rows] if not key.descending else [r[5] for r in rows]
    elif p.type in ("quantity", "number"):
        vals = [r[6] for r in rows]
    else:
        vals = [r[1] for r in rows]
    vals = [v for v in vals if v is not None]
    if not vals:
        return None
    return max(vals) if key.descending else min(vals)


def sort_resources(
    resources: Sequence[dict[str, Any]], keys: Sequence[SortKey]
) -> list[dict[str, Any]]:
    """``resources`` ordered by ``keys`` (first key most significant; stable).

    >>> sort_resources([{"id": "x"}], [])
    [{'id': 'x'}]
    """
    out = list(resources)
    for key in reversed(keys):
        present = [(sort_value(r, key), r) for r in out]
        have = [pr for pr in present if pr[0] is not None]
        missing = [r for v, r in present if v is None]
        have.sort(key=lambda pr: pr[0], reverse=key.descending)
        out = [r for _, r in have] + missing
    return out
