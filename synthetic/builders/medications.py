"""MedicationRequest (prescriptions with repeats) and MedicationAdministration (given in office).

>>> import random
>>> from synthetic.catalog import Drug
>>> from synthetic.context import RecordContext
>>> d = Drug("314076", {"text": "lisinopril"}, [{"text": "1 daily"}], {"numberOfRepeatsAllowed": 3},
...          90, 3, False, 1.0, None, {"text": "HTN"}, "lisinopril")
>>> ctx = RecordContext("p", random.Random(0))
>>> ctx.encounter, ctx.when, ctx.day = {"reference": "Encounter/e"}, "2025-01-02T09:00:00-05:00", 739253
>>> mr = prescription(ctx, d, requester="Practitioner/d", reason="Condition/c", until="2026-01-01")
>>> mr["dispenseRequest"]["numberOfRepeatsAllowed"], mr["dispenseRequest"]["validityPeriod"]["end"]
(3, '2026-01-01')
"""

from __future__ import annotations

from typing import Any

from synthetic.catalog import Drug
from synthetic.context import RecordContext
from synthetic.frozen import freeze
from synthetic.labels import meta
from synthetic.systems import MEDICATION_REQUEST_CATEGORY

MED_REQUEST_CATEGORY = MEDICATION_REQUEST_CATEGORY
_COMMUNITY = freeze(
    [{"coding": [{"system": MED_REQUEST_CATEGORY, "code": "community", "display": "Community"}]}]
)


def prescription(
    ctx: RecordContext,
    drug: Drug,
    *,
    requester: str,
    reason: str | None,
    until: str,
    prior: str | None = None,
    security: tuple[dict[str, str], ...] | None = None,
) -> dict[str, Any]:
    """An active outpatient prescription valid until ``until`` (its status is settled later).

    ``reason`` is the Condition reference it treats; ``prior`` the prescription it renews.

    >>> from synthetic.catalog import Drug
    >>> c = RecordContext("p", __import__("random").Random(0)); c.encounter, c.when = {"reference": "Encounter/e"}, "2025-01-02T09:00:00-05:00"
    >>> d = Drug("1", {"text": "x"}, [], {"numberOfRepeatsAllowed": 0}, 10, 0, False, 1.0, None, {"text": "J02.9"}, "x")
    >>> prescription(c, d, requester="Practitioner/d", reason=None, until="2025-01-12")["reasonCode"]
    [{'text': 'J02.9'}]
    """
    mr: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "id": ctx.new_id("mr"),
        "meta": meta("MedicationRequest", security),
        "status": "active",
        "intent": "order",
        "category": _COMMUNITY,
        "medicationCodeableConcept": drug.code,
        "subject": ctx.subject,
        "encounter": ctx.encounter,
        "authoredOn": ctx.when,
        "requester": {"reference": requester},
    }
    if ctx.encounter is None:  # a renewal authorised between visits (refill request)
        del mr["encounter"]
    if reason:
        mr["reasonReference"] = [{"reference": reason}]
    else:
        mr["reasonCode"] = [drug.indication]
    mr["dosageInstruction"] = drug.dosage
    dispense = dict(drug.dispense)
    dispense["validityPeriod"] = {"start": ctx.when[:10], "end": until}
    mr["dispenseRequest"] = dispense
    if prior:
        mr["priorPrescription"] = {"reference": prior}
    return mr


def administration(
    ctx: RecordContext,
    *,
    code: dict[str, Any],
    performer: str,
    reason: str | None,
    route: dict[str, Any] | None = None,
    site: dict[str, Any] | None = None,
    request: str | None = None,
    security: tuple[dict[str, str], ...] | None = None,
    dose: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A completed MedicationAdministration at the current encounter (with its dose whenever a
    route or site is recorded: FHIR R4B mad-1).

    >>> import random
    >>> from synthetic.context import RecordContext
    >>> c = RecordContext("p", random.Random(0)); c.encounter, c.when = {"reference": "Encounter/e"}, "t"
    >>> administration(c, code={"text": "ketorolac"}, performer="Practitioner/n", reason=None)["status"]
    'completed'
    """
    ma: dict[str, Any] = {
        "resourceType": "MedicationAdministration",
        "id": ctx.new_id("ma"),
        "meta": meta("MedicationAdministration", security),
        "status": "completed",
        "medicationCodeableConcept": code,
        "subject": ctx.subject,
        "context": ctx.encounter,
        "effectiveDateTime": ctx.when,
        "performer": [{"actor": {"reference": performer}}],
    }
    if reason:
        ma["reasonReference"] = [{"reference": reason}]
    if request:
        ma["request"] = {"reference": request}
    if dose is not None and (route is not None or site is not None):
        dosage: dict[str, Any] = {"dose": dose}
        if site is not None:
            dosage["site"] = site
        if route is not None:
            dosage["route"] = route
        ma["dosage"] = dosage
    return ma
