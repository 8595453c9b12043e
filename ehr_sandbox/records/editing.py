"""How each legal-record operation changes a resource — pure functions, no I/O.

The Session applies them through its checked write path; keeping the FHIR details here keeps
the door itself small.

>>> entered_in_error_version({"resourceType": "Observation", "status": "final"})["status"]
'entered-in-error'
>>> entered_in_error_version({"resourceType": "Condition"})["verificationStatus"]["coding"][0]["code"]
'entered-in-error'
"""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any

from ehr_sandbox.errors import ValidationError
from synthetic.systems import (
    ALLERGY_VERIFICATION,
    CONDITION_VER_STATUS,
    SANDBOX_TAGS,
    V3_ACT_CODE,
    V3_CONFIDENTIALITY,
)

TAGS = SANDBOX_TAGS
LATE_ENTRY_TAG = {"system": TAGS, "code": "late-entry", "display": "Late entry"}

_VERIFICATION = {
    "Condition": CONDITION_VER_STATUS,
    "AllergyIntolerance": ALLERGY_VERIFICATION,
}

_STATUS_FIELD = {
    "Observation": "status",
    "DiagnosticReport": "status",
    "MedicationRequest": "status",
    "MedicationAdministration": "status",
    "Immunization": "status",
    "Procedure": "status",
    "ServiceRequest": "status",
    "Encounter": "status",
    "Appointment": "status",
    "Claim": "status",
    "ClaimResponse": "status",
    "Coverage": "status",
    "DocumentReference": "status",
    "Specimen": "status",
    "Consent": "status",
    "Communication": "status",
    "Task": "status",
    "CarePlan": "status",
}

_CORRECTED = {"Observation": "corrected", "DiagnosticReport": "corrected"}

# The time at which the event happened, per type (late entries set it to the event time).
EVENT_TIME_FIELD = {
    "Observation": "effectiveDateTime",
    "Procedure": "performedDateTime",
    "MedicationAdministration": "effectiveDateTime",
    "Immunization": "occurrenceDateTime",
    "Communication": "sent",
    "Condition": "recordedDate",
    "DocumentReference": "date",
    "Encounter": "period",
}

_RECORDED_FIELD = {
    "Observation": "issued",
    "Immunization": "recorded",
    "DiagnosticReport": "issued",
}


def entered_in_error_version(resource: dict[str, Any]) -> dict[str, Any]:
    """The resource as it should read once voided (``entered-in-error``).

    >>> entered_in_error_version({"resourceType": "Patient"})
    Traceback (most recent call last):
    ...
    ehr_sandbox.errors.ValidationError: Patient: status: expected a clinical resource type that has an entered-in-error status; a Patient is corrected or merged, never voided
    """
    rtype = resource.get("resourceType", "")
    res = copy.deepcopy(resource)
    if rtype in _VERIFICATION:
        res["verificationStatus"] = {
            "coding": [
                {
                    "system": _VERIFICATION[rtype],
                    "code": "entered-in-error",
                    "display": "Entered in Error",
                }
            ]
        }
        res.pop("clinicalStatus", None)
        return res
    if rtype not in _STATUS_FIELD:
        raise ValidationError(
            rtype,
            "status",
            f"a clinical resource type that has an entered-in-error status; a {rtype} is corrected or merged, never voided",
        )
    res[_STATUS_FIELD[rtype]] = "entered-in-error"
    return res


def corrected_version(resource: dict[str, Any], *, amended: bool = False) -> dict[str, Any]:
    """The new version of a corrected resource (status ``corrected``/``amended`` where the type has one).

    >>> corrected_version({"resourceType": "Observation", "status": "final"})["status"]
    'corrected'
    >>> corrected_version({"resourceType": "DocumentReference", "status": "current"})["docStatus"]
    'amended'
    """
    res = copy.deepcopy(resource)
    rtype = res.get("resourceType")
    if rtype in _CORRECTED:
        res["status"] = "amended" if amended else _CORRECTED[rtype]
    elif rtype == "DocumentReference":
        res["docStatus"] = "amended"
    return res


def addendum_for(
    original: dict[str, Any], text: str, *, author: str | None, when: str
) -> dict[str, Any]:
    """A new DocumentReference that appends ``text`` to ``original``.

    >>> note = {"resourceType": "DocumentReference", "id": "n1", "status": "current",
    ...         "subject": {"reference": "Patient/p"}, "type": {"text": "Progress note"}, "content": []}
    >>> a = addendum_for(note, "Also: BP rechecked.", author="Practitioner/x", when="2026-01-05T08:00:00+00:00")
    >>> a["relatesTo"][0]["code"], a["relatesTo"][0]["target"]["reference"]
    ('appends', 'DocumentReference/n1')
    """
    import base64

    if original.get("resourceType") != "DocumentReference":
        raise ValidationError(
            f"{original.get('resourceType')}/{original.get('id')}",
            "resourceType",
            "a DocumentReference (addenda append to notes)",
        )
    doc: dict[str, Any] = {
        "resourceType": "DocumentReference",
        "status": "current",
        "docStatus": "final",
        "type": copy.deepcopy(original.get("type", {"text": "Addendum"})),
        "subject": copy.deepcopy(original["subject"]),
        "date": when,
        "description": "Addendum",
        "relatesTo": [
            {"code": "appends", "target": {"reference": f"DocumentReference/{original['id']}"}}
        ],
        "content": [
            {
                "attachment": {
                    "contentType": "text/plain; charset=utf-8",
                    "data": base64.b64encode(text.encode()).decode(),
                    "title": "Addendum",
                }
            }
        ],
    }
    if author:
        doc["author"] = [{"reference": author}]
    if original.get("category"):
        doc["category"] = copy.deepcopy(original["category"])
    if original.get("context"):
        doc["context"] = copy.deepcopy(original["context"])
    return doc


def late_entry_version(
    resource: dict[str, Any], *, event_time: str, now: datetime
) -> dict[str, Any]:
    """Tag a resource as a late entry with its event time; the recorded time is ``now``.

    >>> from datetime import UTC
    >>> r = late_entry_version({"resourceType": "Observation", "status": "final"},
    ...     event_time="2026-01-04T15:30:00+00:00", now=datetime(2026, 1, 5, 8, tzinfo=UTC))
    >>> r["effectiveDateTime"], r["issued"], r["meta"]["tag"][0]["code"]
    ('2026-01-04T15:30:00+00:00', '2026-01-05T08:00:00+00:00', 'late-entry')
    """
    from ehr_sandbox.clock import instant

    res = copy.deepcopy(resource)
    rtype = res.get("resourceType", "")
    try:
        event = datetime.fromisoformat(event_time.replace("Z", "+00:00"))
    except (AttributeError, ValueError):
        raise ValidationError(
            rtype, "event_time", "an ISO date-time with offset", found=event_time
        ) from None
    if event.tzinfo is None:
        raise ValidationError(
            rtype, "event_time", "an ISO date-time with a time-zone offset", found=event_time
        )
    if event > now:
        raise ValidationError(
            rtype,
            "event_time",
            "a time in the past (a late entry records something that already happened)",
            found=event_time,
        )
    field = EVENT_TIME_FIELD.get(rtype)
    if field == "period":
        res["period"] = {**res.get("period", {}), "start": event_time}
    elif field:
        res[field] = event_time
    recorded = _RECORDED_FIELD.get(rtype)
    if recorded:
        res[recorded] = instant(now)
    meta = res.setdefault("meta", {})
    tags = [t for t in meta.get("tag", []) if t.get("code") != "late-entry"]
    meta["tag"] = [LATE_ENTRY_TAG, *tags]
    return res


def with_new_address(patient: dict[str, Any], address: dict[str, Any], day: str) -> dict[str, Any]:
    """End-date the current home address on ``day`` and add ``address`` starting that day.

    >>> p = {"resourceType": "Patient", "address": [{"use": "home", "line": ["1 Old Rd"]}]}
    >>> q = with_new_address(p, {"line": ["2 New St"], "city": "Springfield"}, "2026-01-05")
    >>> [(a["line"][0], a.get("use"), a["period"]) for a in q["address"]]
    [('1 Old Rd', 'old', {'end': '2026-01-05'}), ('2 New St', 'home', {'start': '2026-01-05'})]
    """
    if not isinstance(address, dict) or not (
        address.get("line") or address.get("city") or address.get("postalCode")
    ):
        raise ValidationError(
            "Patient", "address", "an Address with at least line, city or postalCode", found=address
        )
    res = copy.deepcopy(patient)
    kept = []
    for a in res.get("address", []):
        if not (a.get("period") or {}).get("end") and a.get("use", "home") == "home":
            a = {**a, "use": "old", "period": {**a.get("period", {}), "end": day}}
        kept.append(a)
    new = {**copy.deepcopy(address), "use": "home", "period": {"start": day}}
    res["address"] = [*kept, new]
    return res


def replaced_coverage(coverage: dict[str, Any], day: str) -> dict[str, Any]:
    """The old Coverage, end-dated (kept, not overwritten).

    >>> replaced_coverage({"resourceType": "Coverage", "status": "active"}, "2026-01-05")["period"]
    {'end': '2026-01-05'}
    """
    res = copy.deepcopy(coverage)
    res["period"] = {**res.get("period", {}), "end": day}
    return res


def new_coverage(coverage: dict[str, Any], patient_id: str, order: int, day: str) -> dict[str, Any]:
    """A new Coverage for the patient starting ``day`` at ``order`` (1 = primary).

    >>> c = new_coverage({"payor": [{"display": "Acme Health"}]}, "p1", 1, "2026-01-05")
    >>> c["beneficiary"], c["order"], c["status"]
    ({'reference': 'Patient/p1'}, 1, 'active')
    """
    if not isinstance(coverage, dict) or not coverage.get("payor"):
        raise ValidationError(
            "Coverage", "payor", "at least one payor (the insurer's Organization or a display)"
        )
    if order not in (1, 2, 3):
        raise ValidationError(
            "Coverage", "order", "1 (primary), 2 (secondary) or 3 (tertiary)", found=order
        )
    res = copy.deepcopy(coverage)
    res["resourceType"] = "Coverage"
    res.pop("id", None)
    res.setdefault("status", "active")
    res["beneficiary"] = {"reference": f"Patient/{patient_id}"}
    res["order"] = order
    res["period"] = {**res.get("period", {}), "start": res.get("period", {}).get("start", day)}
    return res


CONFIDENTIALITY_SYSTEM = V3_CONFIDENTIALITY
ACT_CODE_SYSTEM = V3_ACT_CODE
CONFIDENTIALITY_CODES = ("U", "L", "M", "N", "R", "V")


def relabeled(
    resource: dict[str, Any], confidentiality: str, sensitivity: list[str]
) -> dict[str, Any]:
    """The resource with exactly one confidentiality code and the given sensitivity codes.

    >>> r = relabeled({"resourceType": "Observation", "meta": {"security": [
    ...     {"system": CONFIDENTIALITY_SYSTEM, "code": "N"}]}}, "R", ["HIV"])
    >>> [s["code"] for s in r["meta"]["security"]]
    ['R', 'HIV']
    """
    if confidentiality not in CONFIDENTIALITY_CODES:
        raise ValidationError(
            f"{resource.get('resourceType')}/{resource.get('id')}",
            "meta.security",
            f"a confidentiality code, one of {', '.join(CONFIDENTIALITY_CODES)}",
            found=confidentiality,
        )
    res = copy.deepcopy(resource)
    meta = res.setdefault("meta", {})
    others = [
        s
        for s in meta.get("security", [])
        if s.get("system") not in (CONFIDENTIALITY_SYSTEM, ACT_CODE_SYSTEM)
    ]
    meta["security"] = [
        {"system": CONFIDENTIALITY_SYSTEM, "code": confidentiality},
        *({"system": ACT_CODE_SYSTEM, "code": c} for c in sensitivity),
        *others,
    ]
    return res
