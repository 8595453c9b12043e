"""Which patient a resource belongs to (the FHIR Patient compartment, as this sandbox uses it).

Access control asks this for every resource, so the lookup is a table of the fields that point
at the patient per resource type, not a walk over the whole resource.

>>> patient_of({"resourceType": "Observation", "subject": {"reference": "Patient/p1"}})
'p1'
>>> patient_of({"resourceType": "Practitioner", "id": "dr1"}) is None
True
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ehr_sandbox.references import reference_id

# Fields (possibly nested through lists) that reference the patient, per resource type.
# Order matters only for patient_of's choice when a resource names several patients.
PATIENT_FIELDS: dict[str, tuple[tuple[str, ...], ...]] = {
    "Observation": (("subject",),),
    "Condition": (("subject",),),
    "Encounter": (("subject",),),
    "Procedure": (("subject",),),
    "ServiceRequest": (("subject",),),
    "DiagnosticReport": (("subject",),),
    "DocumentReference": (("subject",),),
    "MedicationRequest": (("subject",),),
    "MedicationAdministration": (("subject",),),
    "MedicationStatement": (("subject",),),
    "MedicationDispense": (("subject",),),
    "Specimen": (("subject",),),
    "CarePlan": (("subject",),),
    "CareTeam": (("subject",),),
    "Goal": (("subject",),),
    "Composition": (("subject",),),
    "Communication": (("subject",),),
    "CommunicationRequest": (("subject",),),
    "Flag": (("subject",),),
    "List": (("subject",),),
    "Media": (("subject",),),
    "QuestionnaireResponse": (("subject",),),
    "ClinicalImpression": (("subject",),),
    "RiskAssessment": (("subject",),),
    "DeviceRequest": (("subject",),),
    "ImagingStudy": (("subject",),),
    "NutritionOrder": (("patient",),),
    "ChargeItem": (("subject",),),
    "Invoice": (("subject",),),
    "Account": (("subject",),),
    "AllergyIntolerance": (("patient",),),
    "Immunization": (("patient",),),
    "ImmunizationRecommendation": (("patient",),),
    "Claim": (("patient",),),
    "ClaimResponse": (("patient",),),
    "ExplanationOfBenefit": (("patient",),),
    "CoverageEligibilityRequest": (("patient",),),
    "CoverageEligibilityResponse": (("patient",),),
    "EpisodeOfCare": (("patient",),),
    "FamilyMemberHistory": (("patient",),),
    "RelatedPerson": (("patient",),),
    "Consent": (("patient",),),
    "Device": (("patient",),),
    "DetectedIssue": (("patient",),),
    "Coverage": (("beneficiary",), ("subscriber",)),
    "Appointment": (("participant", "actor"),),
    "AppointmentResponse": (("actor",),),
    "Task": (("for",),),
    "Provenance": (("target",),),
}
"""Resource types of the patient compartment and the fields that point at the patient."""

# "Patient/<id>" -> frozenset({id}): the same few thousand references are seen over and over.
_REF_SETS: dict[str, frozenset[str]] = {}
_REF_SETS_MAX = 200_000
_SINGLE_FIELD: dict[str, str] = {
    t: p[0][0] for t, p in PATIENT_FIELDS.items() if len(p) == 1 and len(p[0]) == 1
}

COMPARTMENT_TYPES: frozenset[str] = frozenset(PATIENT_FIELDS) | {"Patient"}
"""Types whose instances belong to a patient (``Provenance`` only when it targets one)."""

# Provenance points at records, not always at a patient: it is in the compartment only when it
# targets the Patient resource itself, so a missing patient is not suspicious there.
_OPTIONAL_LINK = frozenset(
    {"Provenance", "Device", "Account", "Task", "List", "Media", "ChargeItem", "Invoice"}
)


def _values(node: Any, path: tuple[str, ...]) -> Iterator[Any]:
    if not path:
        yield node
        return
    if isinstance(node, list):
        for item in node:
            yield from _values(item, path)
        return
    if isinstance(node, dict):
        child = node.get(path[0])
        if child is not None:
            if isinstance(child, list):
                for item in child:
                    yield from _values(item, path[1:])
            else:
                yield from _values(child, path[1:])


def patients_of(resource: object) -> frozenset[str]:
    """Every patient id a resource points at (usually one; empty outside the compartment).

    >>> sorted(patients_of({"resourceType": "Appointment", "participant": [
    ...     {"actor": {"reference": "Patient/a"}}, {"actor": {"reference": "Practitioner/d"}}]}))
    ['a']
    """
    if not isinstance(resource, dict):
        return frozenset()
    rtype = resource.get("resourceType")
    fast = _SINGLE_FIELD.get(rtype) if isinstance(rtype, str) else None
    if fast is not None:
        # Fast path (most types): one field holding one plain "Patient/<id>" reference.
        value = resource.get(fast)
        if value.__class__ is dict:
            ref = value.get("reference")
            if ref.__class__ is str:
                hit = _REF_SETS.get(ref)
                if hit is not None:
                    return hit
                if ref[:8] == "Patient/" and len(ref) > 8 and "/" not in ref[8:]:
                    if len(_REF_SETS) >= _REF_SETS_MAX:
                        _REF_SETS.clear()
                    hit = _REF_SETS[ref] = frozenset((ref[8:],))
                    return hit
    if rtype == "Patient":
        rid = resource.get("id")
        return frozenset((rid,)) if isinstance(rid, str) and rid else frozenset()
    paths = PATIENT_FIELDS.get(rtype) if isinstance(rtype, str) else None
    if not paths:
        return frozenset()
    found: set[str] = set()
    for path in paths:
        for value in _values(resource, path):
            pid = reference_id(value)
            if pid:
                found.add(pid)
    return frozenset(found)


def patient_of(resource: object) -> str | None:
    """The patient id the resource belongs to, or None (staff, practice, malformed data).

    When a resource names several patients the smallest id is returned; access control uses
    :func:`patients_of` and requires every one of them to be allowed.

    >>> patient_of({"resourceType": "Patient", "id": "p1"})
    'p1'
    >>> patient_of({"resourceType": "Coverage", "beneficiary": {"reference": "Patient/p2"}})
    'p2'
    >>> patient_of("not a resource") is None
    True
    """
    found = patients_of(resource)
    if not found:
        return None
    if len(found) == 1:
        return next(iter(found))
    return min(found)


INDIRECT_PATIENT_DATA: frozenset[str] = frozenset({"PaymentReconciliation", "PaymentNotice"})
"""Types outside the FHIR Patient compartment whose instances are still about patients: a
payment names the claims it pays (or the patient) only through its details, so it never
"belongs to nobody". Only roles that see every patient reach them; they are never shared
reference data."""


def needs_patient(resource_type: str) -> bool:
    """True when an instance of ``resource_type`` must name its patient (a missing link is
    treated as "belongs to nobody you may see", never as "belongs to everybody").

    >>> needs_patient("Observation"), needs_patient("Practitioner"), needs_patient("Provenance")
    (True, False, False)
    >>> needs_patient("PaymentReconciliation")
    True
    """
    return (
        resource_type in COMPARTMENT_TYPES and resource_type not in _OPTIONAL_LINK
    ) or resource_type in INDIRECT_PATIENT_DATA


_NOT_REFERENCE_DATA = (
    frozenset({"AuditEvent", "Bundle", "Binary", "Parameters", "OperationOutcome"})
    | INDIRECT_PATIENT_DATA
)


def is_reference_data(resource_type: str) -> bool:
    """True for shared data that belongs to no patient (practitioners, organizations,
    locations, medications ...): a ``patient/`` scope may reach it, as a patient app shows
    who the patient's doctor is. Audit data and containers never count.

    >>> is_reference_data("Practitioner"), is_reference_data("Observation"), is_reference_data("AuditEvent")
    (True, False, False)
    >>> is_reference_data("PaymentReconciliation")
    False
    """
    return resource_type not in COMPARTMENT_TYPES and resource_type not in _NOT_REFERENCE_DATA
