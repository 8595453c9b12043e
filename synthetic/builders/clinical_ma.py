"""Resources of the clinical MA's day, in the shapes the workflows layer writes them.

Screening questionnaires (``QuestionnaireResponse``, items by LOINC code, as
``ehr_sandbox.workflows.history.screen``), family history (``FamilyMemberHistory``), refill
requests (``Task`` focused on the renewal), point-of-care kits (``Device``) and their daily
quality-control log (``Task`` focused on the kit, as ``ehr_sandbox.workflows.poc_testing``),
exam rooms (``Location``) and hospital admissions (``Encounter`` class IMP).

>>> import random
>>> from synthetic.context import RecordContext
>>> ctx = RecordContext("p", random.Random(0))
>>> ctx.encounter, ctx.when = {"reference": "Encounter/e"}, "2025-01-02T09:00:00-05:00"
>>> qr = questionnaire_response(ctx, "55757-9", [("44250-9", 1), ("44255-8", 2)], "Practitioner/m")
>>> [i["answer"][0]["valueInteger"] for i in qr["item"]]
[1, 2]
"""

from __future__ import annotations

from typing import Any

from synthetic.builders.common import coding
from synthetic.context import RecordContext
from synthetic.frozen import freeze
from synthetic.labels import meta
from synthetic.systems import (
    ADMIT_SOURCE,
    DISCHARGE_DISPOSITION,
    ICD10CM,
    LOCATION_PHYSICAL_TYPE,
    LOINC_QUESTION_WEB,
    LOINC_WEB,
    SANDBOX_OBSERVATION,
    TASK_CODE,
    UCUM,
    V2_0116,
    V3_ACT_CODE,
    V3_PARTICIPATION_TYPE,
    V3_ROLE_CODE,
)

SANDBOX_OBS = SANDBOX_OBSERVATION
"""The sandbox's local code system for things LOINC does not name (POC kits, QC runs)."""

ROLE_CODE = V3_ROLE_CODE
RELATIONSHIPS = {
    "FTH": "father",
    "MTH": "mother",
    "BRO": "brother",
    "SIS": "sister",
    "MGRMTH": "maternal grandmother",
    "MGRFTH": "maternal grandfather",
    "PGRMTH": "paternal grandmother",
    "PGRFTH": "paternal grandfather",
}
"""v3-RoleCode relationships the generator uses (a subset of the workflows' table)."""

BED_STATUS = V2_0116
LOCATION_TYPE = LOCATION_PHYSICAL_TYPE
EMERGENCY = freeze(
    {
        "system": V3_ACT_CODE,
        "code": "EMER",
        "display": "emergency",
    }
)
INPATIENT = freeze(
    {
        "system": V3_ACT_CODE,
        "code": "IMP",
        "display": "inpatient encounter",
    }
)


def questionnaire_response(
    ctx: RecordContext, panel: str, items: list[tuple[str, int]], author: str
) -> dict[str, Any]:
    """A completed screening questionnaire: one integer answer per LOINC item.

    >>> import random
    >>> ctx = RecordContext("p", random.Random(0)); ctx.when = "2025-01-02T09:00:00-05:00"
    >>> questionnaire_response(ctx, "72109-2", [("68518-0", 2)], "Practitioner/m")["questionnaire"]
    'http://loinc.org/q/72109-2'
    """
    qr: dict[str, Any] = {
        "resourceType": "QuestionnaireResponse",
        "id": ctx.new_id("qr"),
        "meta": meta("QuestionnaireResponse"),
        "questionnaire": f"{LOINC_QUESTION_WEB}{panel}",
        "status": "completed",
        "subject": ctx.subject,
        "authored": ctx.when,
        "author": {"reference": author},
        "source": ctx.subject,
        "item": [
            {
                "linkId": code,
                "definition": f"{LOINC_WEB}{code}",
                "answer": [{"valueInteger": score}],
            }
            for code, score in items
        ],
    }
    if ctx.encounter is not None:
        qr["encounter"] = ctx.encounter
    return qr


def family_member_history(
    ctx: RecordContext, relationship: str, icd10: str, display: str, onset_age: int
) -> dict[str, Any]:
    """A relative's condition (v3-RoleCode relationship, ICD-10-CM code, onset age).

    >>> import random
    >>> ctx = RecordContext("p", random.Random(0)); ctx.when = "2025-01-02T09:00:00-05:00"
    >>> f = family_member_history(ctx, "FTH", "I10", "Essential (primary) hypertension", 50)
    >>> f["relationship"]["coding"][0]["display"], f["condition"][0]["onsetAge"]["value"]
    ('father', 50)
    """
    return {
        "resourceType": "FamilyMemberHistory",
        "id": ctx.new_id("fmh"),
        "meta": meta("FamilyMemberHistory"),
        "status": "completed",
        "patient": ctx.subject,
        "date": ctx.when[:10],
        "relationship": {
            "coding": [coding(ROLE_CODE, relationship, RELATIONSHIPS[relationship])],
            "text": RELATIONSHIPS[relationship],
        },
        "condition": [
            {
                "code": {"coding": [coding(ICD10CM, icd10, display)], "text": display},
                "onsetAge": {
                    "value": onset_age,
                    "unit": "a",
                    "system": UCUM,
                    "code": "a",
                },
            }
        ],
    }


def refill_task(
    ctx: RecordContext,
    *,
    renewal: str,
    prior: str,
    owner: str,
    requested: str,
    drug: str,
    security: tuple[dict[str, str], ...] | None = None,
) -> dict[str, Any]:
    """The pharmacy's refill request, routed to the prescriber and completed by the renewal.

    ``focus`` is the renewal (a MedicationRequest whose ``priorPrescription`` is ``prior``);
    ``security`` is the renewal's labels (a task on a prescription reveals it), None: normal.

    >>> import random
    >>> ctx = RecordContext("p", random.Random(0)); ctx.when = "2025-01-02T15:00:00-05:00"
    >>> t = refill_task(ctx, renewal="MedicationRequest/b", prior="MedicationRequest/a",
    ...                 owner="Practitioner/d", requested="2025-01-01T10:00:00-05:00", drug="x")
    >>> t["focus"]["reference"], t["input"][0]["valueReference"]["reference"]
    ('MedicationRequest/b', 'MedicationRequest/a')
    """
    return {
        "resourceType": "Task",
        "id": ctx.new_id("task"),
        "meta": meta("Task", security),
        "status": "completed",
        "intent": "order",
        "priority": "routine",
        "code": {"coding": [coding(TASK_CODE, "fulfill", "Fulfill the focal request")]},
        "description": f"Refill request from the pharmacy: {drug}",
        "focus": {"reference": renewal},
        "for": ctx.subject,
        "authoredOn": requested,
        "lastModified": ctx.when,
        "executionPeriod": {"start": requested, "end": ctx.when},
        "owner": {"reference": owner},
        "input": [
            {
                "type": {"text": "priorPrescription"},
                "valueReference": {"reference": prior},
            }
        ],
    }


def poc_kit(
    device_id: str, test: str, display: str, lot: str, expiry: str, location: str
) -> dict[str, Any]:
    """A point-of-care kit lot as a ``Device`` (type = the workflows' POC test id).

    >>> poc_kit("dev-1", "rapid-strep", "Rapid strep", "L1", "2026-01-31", "Location/l")["lotNumber"]
    'L1'
    """
    return {
        "resourceType": "Device",
        "id": device_id,
        "meta": meta("Device"),
        "status": "active",
        "type": {"coding": [coding(SANDBOX_OBS, test, display)], "text": display},
        "deviceName": [{"name": display, "type": "user-friendly-name"}],
        "lotNumber": lot,
        "expirationDate": expiry,
        "location": {"reference": location},
        "note": [{"text": "CLIA-waived point-of-care test kit"}],
    }


def qc_task(
    task_id: str,
    *,
    kit: str,
    display: str,
    lot: str,
    expiry: str,
    when: str,
    performer: str,
    levels: list[tuple[str, bool]],
) -> dict[str, Any]:
    """One QC run of a kit: an output per control level and whether the run passed.

    >>> t = qc_task("qc-1", kit="Device/k", display="Rapid strep", lot="L1", expiry="2026-01-31",
    ...             when="2025-01-02T07:45:00-05:00", performer="Practitioner/m",
    ...             levels=[("positive", True), ("negative", True)])
    >>> t["businessStatus"]["text"], t["output"][-1]["valueBoolean"]
    ('pass', True)
    """
    passed = all(ok for _, ok in levels)
    outputs: list[dict[str, Any]] = [
        {
            "type": {
                "text": f"control {level} (expected {level}): "
                + ("in range" if ok else "OUT OF RANGE")
            },
            "valueString": level if ok else ("negative" if level == "positive" else "positive"),
        }
        for level, ok in levels
    ]
    outputs.append({"type": {"text": "QC passed"}, "valueBoolean": passed})
    return {
        "resourceType": "Task",
        "id": task_id,
        "meta": meta("Task"),
        "status": "completed",
        "intent": "order",
        "businessStatus": {"text": "pass" if passed else "fail"},
        "code": {"coding": [coding(SANDBOX_OBS, "poc-qc", f"External quality control: {display}")]},
        "description": f"QC {display}: kit lot {lot} exp {expiry}",
        "focus": {"reference": kit},
        "authoredOn": when,
        "executionPeriod": {"start": when, "end": when},
        "requester": {"reference": performer},
        "owner": {"reference": performer},
        "output": outputs,
    }


def clinic_device(
    device_id: str, *, name: str, kind: str, location: str, serial: str | None = None
) -> dict[str, Any]:
    """A device of the clinic (an autoclave, an instrument pack, a refrigerator), active.

    >>> clinic_device("dev-ac", name="Autoclave 1", kind="steam sterilizer (autoclave)",
    ...               location="Location/l", serial="SN-1")["serialNumber"]
    'SN-1'
    """
    dev: dict[str, Any] = {
        "resourceType": "Device",
        "id": device_id,
        "meta": meta("Device"),
        "status": "active",
        "deviceName": [{"name": name, "type": "user-friendly-name"}],
        "type": {"text": kind},
        "location": {"reference": location},
    }
    if serial:
        dev["serialNumber"] = serial
    return dev


def _ucum(value: float, code: str, unit: str) -> dict[str, Any]:
    return {"value": value, "unit": unit, "system": UCUM, "code": code}


def sterilization_cycle(
    task_id: str,
    *,
    autoclave: str,
    load: str,
    cycle: str,
    temp_c: float,
    minutes: float,
    pressure_psi: float,
    packs: list[str],
    bi: str,
    when: str,
    operator: str,
) -> dict[str, Any]:
    """One logged autoclave cycle (the shape ``ehr_sandbox.workflows.sterilization`` writes):
    released, its chemical indicator passed, ``bi`` the spore-test result or ``"not run"``.

    >>> t = sterilization_cycle("t1", autoclave="Device/a", load="L-1", cycle="gravity",
    ...     temp_c=121, minutes=30, pressure_psi=16, packs=["Device/p"], bi="pass",
    ...     when="2025-01-06T07:30:00-05:00", operator="Practitioner/m")
    >>> t["businessStatus"]["text"], t["output"][-1]["valueString"]
    ('released', 'pass')
    """
    return {
        "resourceType": "Task",
        "id": task_id,
        "meta": meta("Task"),
        "status": "completed",
        "intent": "order",
        "businessStatus": {"text": "released"},
        "code": {
            "coding": [coding(SANDBOX_OBS, "sterilization-cycle", "Steam sterilization cycle")]
        },
        "description": f"Load {load}: {cycle} cycle, {temp_c} C, {minutes} min, {pressure_psi} psi",
        "focus": {"reference": autoclave},
        "authoredOn": when,
        "executionPeriod": {"start": when, "end": when},
        "requester": {"reference": operator},
        "owner": {"reference": operator},
        "input": [{"type": {"text": "pack"}, "valueReference": {"reference": p}} for p in packs],
        "output": [
            {"type": {"text": "load"}, "valueString": load},
            {"type": {"text": "cycle"}, "valueString": cycle},
            {"type": {"text": "temperature"}, "valueQuantity": _ucum(temp_c, "Cel", "Cel")},
            {"type": {"text": "exposure time"}, "valueQuantity": _ucum(minutes, "min", "min")},
            {"type": {"text": "pressure"}, "valueQuantity": _ucum(pressure_psi, "[psi]", "psi")},
            {"type": {"text": "chemical indicator"}, "valueString": "pass"},
            {"type": {"text": "biological indicator"}, "valueString": bi},
        ],
    }


def maintenance_task(
    task_id: str,
    *,
    device: str,
    kind: str,
    text: str,
    next_due: str,
    note: str,
    when: str,
    performer: str,
) -> dict[str, Any]:
    """One passed maintenance or calibration check (the shape of
    ``ehr_sandbox.workflows.sterilization.log_maintenance``).

    >>> maintenance_task("m1", device="Device/a", kind="autoclave-service", text="service",
    ...     next_due="2026-01-05", note="ok", when="2025-01-05T08:00:00-05:00",
    ...     performer="Practitioner/m")["output"][1]["valueDate"]
    '2026-01-05'
    """
    return {
        "resourceType": "Task",
        "id": task_id,
        "meta": meta("Task"),
        "status": "completed",
        "intent": "order",
        "businessStatus": {"text": "pass"},
        "code": {"coding": [coding(SANDBOX_OBS, f"maintenance-{kind}", text)]},
        "description": f"{text}: pass; next due {next_due}",
        "focus": {"reference": device},
        "authoredOn": when,
        "owner": {"reference": performer},
        "requester": {"reference": performer},
        "note": [{"text": note}],
        "output": [
            {"type": {"text": "result"}, "valueString": "pass"},
            {"type": {"text": "next due"}, "valueDate": next_due},
        ],
    }


def exam_room(room_id: str, name: str, part_of: str, organization: str) -> dict[str, Any]:
    """An exam room: a ``Location`` (physical type room) inside the practice, ready.

    >>> exam_room("loc-room-1", "Exam 1", "Location/l", "Organization/o")["physicalType"]["coding"][0]["code"]
    'ro'
    """
    return {
        "resourceType": "Location",
        "id": room_id,
        "meta": meta("Location"),
        "status": "active",
        "operationalStatus": coding(BED_STATUS, "U", "Unoccupied"),
        "name": name,
        "mode": "instance",
        "physicalType": {"coding": [coding(LOCATION_TYPE, "ro", "Room")]},
        "managingOrganization": {"reference": organization},
        "partOf": {"reference": part_of},
    }


def admission(
    ctx: RecordContext,
    *,
    start: str,
    end: str,
    type_text: str,
    attender: str,
    diagnoses: list[str],
    hospital: str,
    emergency: bool = False,
) -> dict[str, Any]:
    """A finished inpatient Encounter (class IMP) with its diagnoses and discharge home;
    with ``emergency=True`` an emergency-department visit (class EMER) treated and released.

    >>> import random
    >>> ctx = RecordContext("p", random.Random(0))
    >>> e = admission(ctx, start="2025-01-02", end="2025-01-04", type_text="Delivery",
    ...               attender="Practitioner/d", diagnoses=["Condition/c"], hospital="Regional Hospital")
    >>> e["class"]["code"], e["hospitalization"]["dischargeDisposition"]["coding"][0]["code"]
    ('IMP', 'home')
    >>> admission(ctx, start="2025-01-02T10:00:00Z", end="2025-01-02T14:00:00Z", type_text="ED",
    ...           attender="Practitioner/d", diagnoses=[], hospital="H", emergency=True)["class"]["code"]
    'EMER'
    """
    source = (
        coding(ADMIT_SOURCE, "emd", "From accident/emergency department")
        if emergency
        else coding(ADMIT_SOURCE, "mp", "Medical Practitioner/physician referral")
    )
    return {
        "resourceType": "Encounter",
        "id": ctx.new_id("enc"),
        "meta": meta("Encounter"),
        "status": "finished",
        "class": EMERGENCY if emergency else INPATIENT,
        "type": [{"text": type_text}],
        "subject": ctx.subject,
        "participant": [
            {
                "type": [
                    {
                        "coding": [
                            coding(
                                V3_PARTICIPATION_TYPE,
                                "ATND",
                                "attender",
                            )
                        ]
                    }
                ],
                "individual": {"reference": attender},
            }
        ],
        "period": {"start": start, "end": end},
        "diagnosis": [
            {"condition": {"reference": ref}, "rank": i + 1} for i, ref in enumerate(diagnoses)
        ],
        "hospitalization": {
            "admitSource": {"coding": [source]},
            "dischargeDisposition": {"coding": [coding(DISCHARGE_DISPOSITION, "home", "Home")]},
        },
        "location": [{"location": {"display": hospital}, "status": "completed"}],
    }
