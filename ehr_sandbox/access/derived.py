"""Labels a record inherits from the records it is about (DS4P high-water mark).

A claim's response, a payment of claims, a message about a result and a task on a message say
something about the record they point at: the response to a 42 CFR Part 2 claim reveals the
claim. Such a record carries at least the labels of the records it is derived from (the
highest confidentiality of them, and all their sensitivity codes), so whoever may not see the
source never sees what was derived from it.

The rule is **transitive**: a record carries at least the labels of every record it derives
from, directly or through others (a payment of the response to the claim of a visit whose
diagnosis is an opioid use disorder is as hidden as the diagnosis). It holds at all times, not
only when the derived record is written: the one write pipeline applies it to every write
(:func:`inherit_labels` over the direct sources, which carry their own sources' labels), and
a write that **raises** a record's labels (a relabel by the privacy officer, a sensitive code
added) raises everything derived from it in the same transaction (:func:`cascade`, a worklist
that stops because labels only go up: cycles are safe). Lowering a source lowers nothing
derived from it (the privacy officer lowers those explicitly, down to what they inherit).

Which references make a record "about" another (:data:`DERIVED_FROM`) follows what the record
reveals, the same way the generator labels a visit's records together: the visit's own
documents (its Encounter from the diagnoses it addressed, its notes, its claim and everything
paying or answering the claim), orders and what carries them out (a result, a specimen, an
administration from its order; an order from its reason), messages and tasks from what they
are about, and a Provenance from the versions it records. Rooming data taken at a visit
(vitals, allergies, immunizations) is labelled by its own content, not by the visit: hiding an
allergy because it was recorded at a sensitive visit would put the patient at risk.

>>> claim = {"resourceType": "Claim", "id": "c1", "meta": {"security": [
...     {"system": CONFIDENTIALITY, "code": "R"}, {"system": ACT_CODE, "code": "SUD"}]}}
>>> response = {"resourceType": "ClaimResponse", "request": {"reference": "Claim/c1"}}
>>> derived_sources(response)
[('Claim', 'c1')]
>>> [c["code"] for c in inherit_labels([confidentiality_coding("N")], [claim])]
['R', 'SUD']
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from functools import cache
from typing import Any

from ehr_sandbox.access.labels import (
    ACT_CODE,
    CONFIDENTIALITY,
    CONFIDENTIALITY_RANK,
    confidentiality_coding,
    confidentiality_of,
    security_summary,
    sensitivities_of,
)

__all__ = [
    "DERIVED_FROM",
    "VERSIONED_ONLY",
    "ancestors",
    "cascade",
    "derived_sources",
    "inherit_labels",
    "raises",
    "reverse_lookups",
]

DERIVED_FROM: dict[str, tuple[tuple[str, ...], ...]] = {
    "ClaimResponse": (("request",),),
    "ExplanationOfBenefit": (("claim",), ("claimResponse",)),
    "PaymentReconciliation": (("detail", "request"), ("detail", "response")),
    "PaymentNotice": (("request",), ("response",)),
    "Communication": (("about",), ("inResponseTo",), ("basedOn",)),
    "CommunicationRequest": (("about",), ("basedOn",)),
    "Task": (("focus",), ("basedOn",)),
    # the visit's own documents
    "Encounter": (("diagnosis", "condition"), ("reasonReference",)),
    "DocumentReference": (("context", "encounter"), ("relatesTo", "target")),
    "Composition": (("encounter",),),
    "Claim": (
        ("item", "encounter"),
        ("diagnosis", "diagnosisReference"),
        ("procedure", "procedureReference"),
        ("related", "claim"),
    ),
    # orders, and what carries them out
    "ServiceRequest": (("reasonReference",),),
    "Procedure": (("basedOn",), ("reasonReference",)),
    "MedicationRequest": (("reasonReference",),),
    "MedicationAdministration": (("request",), ("reasonReference",)),
    "MedicationDispense": (("authorizingPrescription",),),
    "DiagnosticReport": (("basedOn",),),
    "Observation": (("basedOn",),),
    "Specimen": (("request",),),
    # who changed what, and why
    "Provenance": (("target",),),
}
"""Per resource type, the reference fields (through lists) naming the records it is about."""

VERSIONED_ONLY: frozenset[str] = frozenset({"Provenance"})
"""Types whose sources are only their versioned references (``Type/id/_history/v``): a
Provenance records versions, and its plain ``Patient/<id>`` targets only put it in the
patient's compartment (a Patient's label is about the Patient record, not every change)."""


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


def _target(ref: object, versioned: bool = False) -> tuple[str, str] | None:
    """``(type, id)`` of a relative, absolute or versioned reference (only a versioned one
    when ``versioned``), else None."""
    value = ref.get("reference") if isinstance(ref, dict) else None
    if not isinstance(value, str) or value.startswith(("urn:", "#")):
        return None
    parts = value.split("/")
    if len(parts) >= 4 and parts[-2] == "_history":
        parts = parts[:-2]
    elif versioned:
        return None
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
    >>> derived_sources({"resourceType": "Provenance", "target": [
    ...     {"reference": "Condition/c/_history/2"}, {"reference": "Patient/p"}]})
    [('Condition', 'c')]
    """
    rtype = str(resource.get("resourceType"))
    paths = DERIVED_FROM.get(rtype, ())
    versioned = rtype in VERSIONED_ONLY
    out: list[tuple[str, str]] = []
    for path in paths:
        for ref in _walk(resource, path):
            hit = _target(ref, versioned)
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


def raises(before: object, after: object) -> bool:
    """True when ``after``'s labels are above ``before``'s (a higher confidentiality or a
    sensitivity code ``before`` lacks): only then can records derived from it need more.

    Examples
    --------
    >>> n = {"meta": {"security": [confidentiality_coding("N")]}}
    >>> r = {"meta": {"security": [confidentiality_coding("R"), {"system": ACT_CODE, "code": "HIV"}]}}
    >>> raises(n, r), raises(r, n), raises(None, n), raises(None, r)
    (True, False, False, True)
    """
    old_conf, old_acts = security_summary(before) if before is not None else (None, frozenset())
    new_conf, new_acts = security_summary(after)
    rank = CONFIDENTIALITY_RANK
    return rank.get(new_conf or "N", 0) > rank.get(old_conf or "N", 0) or not new_acts <= old_acts


@cache
def reverse_lookups() -> tuple[tuple[str, tuple[str, ...], str | None, tuple[str, ...]], ...]:
    """Per derived type and reference field, the search parameter indexing exactly that
    field and the types it keeps (``None`` and ``()`` when none does): how to find the
    records derived from a given one. A parameter that keeps only some types (``encounter``:
    Encounter, EpisodeOfCare) answers only for a source of those types.

    Examples
    --------
    >>> ("ClaimResponse", ("request",), "request", ("Claim",)) in reverse_lookups()
    True
    >>> ("PaymentReconciliation", ("detail", "request"), None, ()) in reverse_lookups()
    True
    """
    from ehr_sandbox.search.registry import params_for

    out = []
    for rtype, paths in DERIVED_FROM.items():
        params = params_for(rtype)
        for path in paths:
            dotted = ".".join(path)
            covering = sorted(
                (p for p in params.values() if p.type == "reference" and p.paths == (dotted,)),
                key=lambda p: (bool(p.targets), p.name),  # the widest first
            )
            hit = covering[0] if covering else None
            out.append((rtype, path, hit.name if hit else None, hit.targets if hit else ()))
    return tuple(out)


def cascade(
    changed: dict[str, Any],
    dependents: Callable[[dict[str, Any]], Iterable[dict[str, Any]]],
    read: Callable[[str, str], dict[str, Any] | None],
    write: Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]],
) -> list[dict[str, Any]]:
    """Raise the labels of everything derived, directly or not, from ``changed``.

    ``dependents(record)`` yields the stored records whose :func:`derived_sources` name it;
    ``read(type, id)`` is the current stored version; ``write(record, source)`` stores
    ``record`` (with raised labels, because of ``source``) and returns what was stored. A
    record is written only when its labels go up, so the worklist ends (each record can rise
    only so often) even where references form a cycle. Returns the records written, in order.

    Examples
    --------
    >>> hiv = [confidentiality_coding("R"), {"system": ACT_CODE, "code": "HIV"}]
    >>> db = {("Task", "a"): {"resourceType": "Task", "id": "a", "focus": {"reference": "Task/b"},
    ...                       "meta": {"security": [confidentiality_coding("N")]}},
    ...       ("Task", "b"): {"resourceType": "Task", "id": "b", "focus": {"reference": "Task/a"},
    ...                       "meta": {"security": hiv}}}
    >>> def deps(r):
    ...     return [d for d in db.values() if (r["resourceType"], r["id"]) in derived_sources(d)]
    >>> def write(r, src):
    ...     db[(r["resourceType"], r["id"])] = r
    ...     return r
    >>> [r["id"] for r in cascade(db[("Task", "b")], deps, lambda t, i: db.get((t, i)), write)]
    ['a']
    >>> [c["code"] for c in db[("Task", "a")]["meta"]["security"]]
    ['R', 'HIV']
    """
    written: list[dict[str, Any]] = []
    work = [changed]
    while work:
        source = work.pop(0)
        for record in dependents(source):
            current = read(str(record.get("resourceType")), str(record.get("id")))
            if current is None:
                continue
            sources = [
                found
                for rtype, rid in derived_sources(current)
                if (found := read(rtype, rid)) is not None
            ]
            security = list((current.get("meta") or {}).get("security") or [])
            labels = inherit_labels(security, sources)
            raised = {**current, "meta": {**(current.get("meta") or {}), "security": labels}}
            if not raises(current, raised):
                continue
            saved = write(raised, source)
            written.append(saved)
            work.append(saved)
    return written


def ancestors(
    resource: dict[str, Any], read: Callable[[str, str], dict[str, Any] | None]
) -> frozenset[str]:
    """Every record ``resource`` is derived from, directly or through others, as ``Type/id``
    (``read(type, id)`` gives the stored record; each is visited once, so cycles end).

    Examples
    --------
    >>> db = {("Claim", "c"): {"resourceType": "Claim", "id": "c",
    ...                         "item": [{"encounter": [{"reference": "Encounter/e"}]}]},
    ...       ("Encounter", "e"): {"resourceType": "Encounter", "id": "e"}}
    >>> sorted(ancestors({"resourceType": "ClaimResponse", "request": {"reference": "Claim/c"}},
    ...                  lambda t, i: db.get((t, i))))
    ['Claim/c', 'Encounter/e']
    """
    seen: set[tuple[str, str]] = set()
    todo = derived_sources(resource)
    while todo:
        key = todo.pop()
        if key in seen:
            continue
        seen.add(key)
        found = read(*key)
        if found is not None:
            todo.extend(derived_sources(found))
    return frozenset(f"{t}/{i}" for t, i in seen)
