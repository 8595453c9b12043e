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

Which references make a record "about" another is decided by **one rule over the HL7
definitions**, not by a hand-written list: :data:`ABOUT_ELEMENTS` names the reference elements
that, by their FHIR definition, make a record *about*, *for* or *because of* another record
(its reason, the order it carries out, the event it is part of, the problem it addresses, the
request it answers, the message it is about ...). Every R4B resource type's reference elements
come from the HL7 core package (``ehr_sandbox/validation/data/r4b_rules.json``, "references");
each one whose name is in :data:`ABOUT_ELEMENTS` (:func:`about_elements`) is either in
:data:`DERIVED_FROM` or in :data:`NOT_DERIVED` with the reason why not, and a test walks every
R4B resource type to keep it so. :data:`DERIVED_FROM` also lists references the rule does not
name, where a record documents the record it points at (the visit's own documents: its note,
its composition, its claim; an addendum; a Provenance of the versions it records).

Rooming data taken at a visit (vitals, allergies, immunizations) is labelled by its own content,
not by the visit: hiding an allergy because it was recorded at a sensitive visit would put the
patient at risk. So a visit link (``encounter``, ``context``: where and when a record was made)
is not in the rule, and the one reason element rooming data has
(``Immunization.reasonReference``) is an entry of :data:`NOT_DERIVED`.

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
    "ABOUT_ELEMENTS",
    "DERIVED_FROM",
    "NOT_DERIVED",
    "VERSIONED_ONLY",
    "about_elements",
    "ancestors",
    "cascade",
    "derived_sources",
    "inherit_labels",
    "raises",
    "reverse_lookups",
]

ABOUT_ELEMENTS: dict[str, str] = {
    # why it exists
    "reasonReference": "the condition, result or record that is the reason it was done, "
    "booked or asked for: it states its reason",
    "basedOn": "the order, plan or request it carries out (which reveals what was asked, and why)",
    "addresses": "the condition or problem a plan or goal is for",
    "goal": "the goal a plan pursues (a goal addresses the patient's problem)",
    "condition": "the diagnosis an episode, visit or risk is about",
    "problem": "the problem an assessment evaluates",
    "basis": "the records a risk assessment is based on",
    "referral": "the referral it was done on (a referral names its reason)",
    "referralRequest": "the referral an episode of care started from",
    "implicated": "the records a clinical issue (an interaction, a duplicate) is about",
    # what it answers, carries out or acts on
    "request": "the request it answers or carries out (a claim, an order, a prescription)",
    "response": "the response it acts on",
    "appointment": "the appointment it answers or takes place for",
    "authorizingPrescription": "the prescription it fills",
    "prescription": "the prescription it bills for",
    "originalPrescription": "the prescription it bills for, as first written",
    "claim": "the claim it adjudicates or relates to",
    "claimResponse": "the adjudication it reports or relies on",
    # what it is about, derived from or part of
    "about": "what a message is about",
    "focus": "what a task, message, section or observation is about or acts on",
    "inResponseTo": "the message it answers",
    "derivedFrom": "the records its value or content was taken from",
    "partOf": "the larger event (procedure, administration, visit, message, task) it is a step of",
}
"""The reference element names that, by their FHIR R4B definition, make a record *about*,
*for* or *because of* the record they point at, each with why. Not in it, on purpose: where a
record was made (``encounter``, ``context``: rooming data is labelled by its own content, see
above), who took part (``subject``, ``patient``, ``performer``, ``author`` ...), what it
contains or led to (``result``, ``hasMember``, ``outcomeReference``: the container names its
parts, which carry their own labels) and context an author chose to attach
(``supportingInfo``): reading each reference is checked on its own."""

DERIVED_FROM: dict[str, tuple[tuple[str, ...], ...]] = {
    # billing: a claim, what answers or pays it
    "Claim": (
        ("item", "encounter"),
        ("diagnosis", "diagnosisReference"),
        ("procedure", "procedureReference"),
        ("related", "claim"),
        ("insurance", "claimResponse"),
        ("prescription",),
        ("originalPrescription",),
        ("referral",),
    ),
    "ClaimResponse": (("request",), ("insurance", "claimResponse")),
    "ExplanationOfBenefit": (
        ("claim",),
        ("claimResponse",),
        ("related", "claim"),
        ("prescription",),
        ("originalPrescription",),
        ("referral",),
    ),
    "PaymentReconciliation": (("detail", "request"), ("detail", "response"), ("request",)),
    "PaymentNotice": (("request",), ("response",)),
    "CoverageEligibilityResponse": (("request",),),
    "EnrollmentResponse": (("request",),),
    "ChargeItem": (("partOf",),),
    "Contract": (("term", "action", "reasonReference"),),
    # messages and tasks, from what they are about
    "Communication": (
        ("about",),
        ("inResponseTo",),
        ("basedOn",),
        ("partOf",),
        ("reasonReference",),
    ),
    "CommunicationRequest": (("about",), ("basedOn",), ("reasonReference",)),
    "Task": (("focus",), ("basedOn",), ("partOf",), ("reasonReference",)),
    "MessageHeader": (("focus",),),
    "SubscriptionStatus": (("notificationEvent", "focus"),),
    # the visit, and its own documents
    "Appointment": (("reasonReference",), ("basedOn",)),
    "AppointmentResponse": (("appointment",),),
    "Encounter": (
        ("diagnosis", "condition"),
        ("reasonReference",),
        ("appointment",),
        ("basedOn",),
        ("partOf",),
    ),
    "EpisodeOfCare": (("diagnosis", "condition"), ("referralRequest",)),
    "DocumentReference": (("context", "encounter"), ("relatesTo", "target")),
    "Composition": (("encounter",), ("section", "focus")),
    # plans, goals, assessments
    "CarePlan": (
        ("addresses",),
        ("goal",),
        ("basedOn",),
        ("partOf",),
        ("activity", "detail", "reasonReference"),
        ("activity", "detail", "goal"),
    ),
    "Goal": (("addresses",),),
    "CareTeam": (("reasonReference",),),
    "ClinicalImpression": (("problem",),),
    "RiskAssessment": (("condition",), ("basis",), ("basedOn",), ("reasonReference",)),
    "DetectedIssue": (("implicated",),),
    "FamilyMemberHistory": (("reasonReference",),),
    "GuidanceResponse": (("reasonReference",),),
    "RequestGroup": (("basedOn",), ("reasonReference",)),
    # orders, and what carries them out
    "ServiceRequest": (("reasonReference",), ("basedOn",)),
    "Procedure": (("basedOn",), ("reasonReference",), ("partOf",)),
    "MedicationRequest": (("reasonReference",), ("basedOn",)),
    "MedicationAdministration": (("request",), ("reasonReference",), ("partOf",)),
    "MedicationDispense": (("authorizingPrescription",), ("partOf",)),
    "MedicationStatement": (("reasonReference",), ("basedOn",), ("derivedFrom",), ("partOf",)),
    "DeviceRequest": (("reasonReference",), ("basedOn",)),
    "DeviceUseStatement": (("reasonReference",), ("basedOn",), ("derivedFrom",)),
    "SupplyRequest": (("reasonReference",),),
    "SupplyDelivery": (("basedOn",), ("partOf",)),
    "BiologicallyDerivedProduct": (("request",),),
    "DiagnosticReport": (("basedOn",),),
    "Observation": (("basedOn",), ("derivedFrom",), ("partOf",), ("focus",)),
    "ImagingStudy": (("basedOn",), ("reasonReference",)),
    "Media": (("basedOn",), ("partOf",)),
    "QuestionnaireResponse": (("basedOn",), ("partOf",)),
    "Specimen": (("request",),),
    # who changed what, and why
    "Provenance": (("target",),),
}
"""Per resource type, the reference fields (through lists) naming the records it is about:
every element :data:`ABOUT_ELEMENTS` names (except :data:`NOT_DERIVED`), and the documents of
a visit and its claim."""

NOT_DERIVED: dict[tuple[str, str], str] = {
    ("Immunization", "reasonReference"): "rooming data, labelled by its own vaccine code: "
    "whoever gives vaccines must see every dose given (a hidden dose is a dose repeated), "
    "whatever condition it was given for",
    ("Location", "partOf"): "a room or site inside a larger one: a directory, not a record "
    "about a patient",
    ("Organization", "partOf"): "a department inside an organization: a directory, not a "
    "record about a patient",
    ("Account", "partOf"): "a billing account grouped under another: the grouping reveals "
    "nothing of what the parent account was charged",
    ("ResearchStudy", "partOf"): "a study inside a larger study: a protocol, not a record "
    "about a patient",
}
"""The ``(type, dotted path)`` of :func:`about_elements` that a record is **not** labelled
from, each with why."""

VERSIONED_ONLY: frozenset[str] = frozenset({"Provenance"})
"""Types whose sources are only their versioned references (``Type/id/_history/v``): a
Provenance records versions, and its plain ``Patient/<id>`` targets only put it in the
patient's compartment (a Patient's label is about the Patient record, not every change)."""


@cache
def about_elements() -> tuple[tuple[str, str, tuple[str, ...]], ...]:
    """Every ``(type, dotted path, target types)`` of an R4B resource type's reference
    elements whose name is in :data:`ABOUT_ELEMENTS` (from the HL7 core package's definitions,
    ``r4b_rules.json``; ``("Resource",)``: any type), in type and path order.

    Examples
    --------
    >>> ("Appointment", "reasonReference", ("Condition", "ImmunizationRecommendation",
    ...  "Observation", "Procedure")) in about_elements()
    True
    >>> [p for t, p, _ in about_elements() if t == "EpisodeOfCare"]
    ['diagnosis.condition', 'referralRequest']
    """
    from ehr_sandbox.validation.r4b import rules

    return tuple(
        (rtype, path, tuple(targets))
        for rtype, elements in sorted(rules()["references"].items())
        for path, targets in sorted(elements.items())
        if path.rsplit(".", 1)[-1] in ABOUT_ELEMENTS
    )


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
    >>> derived_sources({"resourceType": "Observation", "performer": [{"reference": "Claim/a"}]})
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
