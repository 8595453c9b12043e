"""Labels a record inherits from the records it is about (DS4P high-water mark).

A claim's response, a payment of claims, a message about a result and a task on a message say
something about the record they point at: the response to a 42 CFR Part 2 claim reveals the
claim. Such a record carries at least the labels of the records it is derived from (the
highest confidentiality of them, and all their sensitivity codes), assigned at write time in
the one write pipeline, so whoever may not see the source never sees what was derived from it.
The generator labels a visit's records together the same way.

>>> claim = {"resourceType": "Claim", "id": "c1", "meta": {"security": [
...     {"system": CONFIDENTIALITY, "code": "R"}, {"system": ACT_CODE, "code": "SUD"}]}}
>>> response = {"resourceType": "ClaimResponse", "request": {"reference": "Claim/c1"}}
>>> derived_sources(response)
[('Claim', 'c1')]
>>> [c["code"] for c in inherit_labels([confidentiality_coding("N")], [claim])]
['R', 'SUD']
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from ehr_sandbox.access.labels import (
    ACT_CODE,
    CONFIDENTIALITY,
    CONFIDENTIALITY_RANK,
    confidentiality_coding,
    confidentiality_of,
    sensitivities_of,
)

__all__ = ["DERIVED_FROM", "derived_sources", "inherit_labels"]

DERIVED_FROM: dict[str, tuple[tuple[str, ...], ...]] = {
    "ClaimResponse": (("request",),),
    "ExplanationOfBenefit": (("claim",), ("claimResponse",)),
    "PaymentReconciliation": (("detail", "request"), ("detail", "response")),
    "PaymentNotice": (("request",), ("response",)),
    "Communication": (("about",), ("inResponseTo",), ("basedOn",)),
    "CommunicationRequest": (("about",), ("basedOn",)),
    "Task": (("focus",), ("basedOn",)),
}
"""Per resource type, the reference fields (through lists) naming the records it is about."""


def _walk(node: Any, path: tuple[str, ...]) -> Iterator[Any]:
    if isinstance(node, list):
        for item in node:
            yield from _walk(item, path)
        return
    if not path:
        yield node
        return
    if isinstance(node, dict) and path[0] in node:
        yield from _walk(node[path[0]], path[1:])


def _target(ref: object) -> tuple[str, str] | None:
    """``(type, id)`` of a relative, absolute or versioned reference, else None."""
    value = ref.get("reference") if isinstance(ref, dict) else None
    if not isinstance(value, str) or value.startswith(("urn:", "#")):
        return None
    parts = value.split("/")
    if len(parts) >= 4 and parts[-2] == "_history":
        parts = parts[:-2]
    if len(parts) >= 2 and parts[-2][:1].isupper() and parts[-1]:
        return parts[-2], parts[-1]
    return None


def derived_sources(resource: dict[str, Any]) -> list[tuple[str, str]]:
    """The ``(type, id)`` of every record ``resource`` is about, in field order, once each.

    Examples
    --------
    >>> derived_sources({"resourceType": "PaymentReconciliation", "detail": [
    ...     {"request": {"reference": "Claim/a"}}, {"request": {"reference": "Patient/p"}},
    ...     {"request": {"reference": "Claim/a"}, "response": {"reference": "ClaimResponse/r"}}]})
    [('Claim', 'a'), ('Patient', 'p'), ('ClaimResponse', 'r')]
    >>> derived_sources({"resourceType": "Observation", "focus": [{"reference": "Claim/a"}]})
    []
    """
    paths = DERIVED_FROM.get(str(resource.get("resourceType")), ())
    out: list[tuple[str, str]] = []
    for path in paths:
        for ref in _walk(resource, path):
            hit = _target(ref)
            if hit is not None and hit not in out:
                out.append(hit)
    return out


def inherit_labels(
    security: list[dict[str, Any]], sources: Iterable[dict[str, Any]]
) -> list[dict[str, Any]]:
    """``security`` raised to the highest confidentiality of ``sources``, with their
    sensitivity codes added (confidentiality first, sensitivities sorted, then the rest).

    Examples
    --------
    >>> hiv = {"meta": {"security": [{"system": CONFIDENTIALITY, "code": "R"},
    ...                               {"system": ACT_CODE, "code": "HIV"}]}}
    >>> mine = [confidentiality_coding("N"), {"system": ACT_CODE, "code": "ETH"},
    ...         {"system": "urn:x", "code": "tag"}]
    >>> [c["code"] for c in inherit_labels(mine, [hiv, {"resourceType": "Claim"}])]
    ['R', 'ETH', 'HIV', 'tag']
    >>> inherit_labels(mine, []) == mine
    True
    """
    own = {"meta": {"security": security}}
    level = confidentiality_of(own) or "N"
    acts = set(sensitivities_of(own))
    for src in sources:
        conf = confidentiality_of(src)
        if conf is not None and CONFIDENTIALITY_RANK.get(conf, 0) > CONFIDENTIALITY_RANK.get(
            level, 0
        ):
            level = conf
        acts |= sensitivities_of(src)
    rest = [c for c in security if c.get("system") not in (CONFIDENTIALITY, ACT_CODE)]
    return [
        confidentiality_coding(level),
        *({"system": ACT_CODE, "code": code} for code in sorted(acts)),
        *rest,
    ]
