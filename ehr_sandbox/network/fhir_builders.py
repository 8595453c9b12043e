"""Small FHIR builders for the care journey (encounters, orders, results, allergies, meds).

Codes come from the shipped content sets only (LOINC, RxNorm, SNOMED IPS, HL7 terminology).

>>> allergy("Patient/p", "2025-12-18", "Practitioner/d")["code"]["coding"][0]["code"]
'764146007'
>>> [o["code"]["coding"][0]["code"] for o in lipid_panel("Patient/p", "2025-12-12T09:00:00+00:00", (190, 120, 45))]
['2093-3', '2571-8', '2085-9']
"""

from __future__ import annotations

from typing import Any

from synthetic.systems import (
    ALLERGY_CLINICAL,
    ALLERGY_VERIFICATION,
    LOINC,
    OBSERVATION_CATEGORY,
    RXNORM,
    SNOMED,
    UCUM,
    V3_ACT_CODE,
    V3_PARTICIPATION_TYPE,
)

__all__ = [
    "LIPID_CODES",
    "LIPID_PANEL",
    "MEDS",
    "PENICILLIN",
    "PENICILLIN_CONFLICTS",
    "allergy",
    "appointment",
    "encounter",
    "lipid_panel",
    "medication_request",
    "medication_statement",
    "referral",
    "service_request",
]

LIPID_PANEL = ("57698-3", "Lipid panel with direct LDL - Serum or Plasma")
LIPID_CODES: dict[str, str] = {
    "2093-3": "Cholesterol [Mass/volume] in Serum or Plasma",
    "2571-8": "Triglyceride [Mass/volume] in Serum or Plasma",
    "2085-9": "Cholesterol in HDL [Mass/volume] in Serum or Plasma",
}
PENICILLIN = ("764146007", "Penicillin")
PENICILLIN_CONFLICTS = frozenset({"308182", "308192", "562251", "834061", "834102"})
"""RxNorm codes an allergy to penicillin conflicts with (content: allergies.toml)."""
MEDS: dict[str, tuple[str, str, str]] = {
    "atorvastatin": ("259255", "atorvastatin 80 MG Oral Tablet", "1 tablet by mouth at bedtime"),
    "aspirin": ("243670", "aspirin 81 MG Oral Tablet", "1 tablet by mouth daily"),
    "amoxicillin": (
        "308192",
        "amoxicillin 500 MG Oral Tablet",
        "4 tablets (2 g) by mouth 1 hour before the dental procedure",
    ),
    "lisinopril": ("314076", "lisinopril 10 MG Oral Tablet", "1 tablet by mouth daily"),
}
"""Drugs the journey uses: key -> (RxNorm code, display, sig)."""
_CAT = OBSERVATION_CATEGORY


def _ref(ref: str) -> dict[str, str]:
    return {"reference": ref}


def encounter(
    patient: str,
    practitioner: str,
    start: str,
    end: str,
    *,
    emergency: bool = False,
    reason: str = "",
) -> dict[str, Any]:
    """A finished ambulatory (or emergency) Encounter with one primary performer.

    >>> encounter("Patient/p", "Practitioner/d", "2025-12-11T09:00:00+00:00", "2025-12-11T09:30:00+00:00", emergency=True)["class"]["code"]
    'EMER'
    """
    cls = ("EMER", "emergency") if emergency else ("AMB", "ambulatory")
    enc: dict[str, Any] = {
        "resourceType": "Encounter",
        "status": "finished",
        "class": {
            "system": V3_ACT_CODE,
            "code": cls[0],
            "display": cls[1],
        },
        "subject": _ref(patient),
        "participant": [
            {
                "type": [
                    {
                        "coding": [
                            {
                                "system": V3_PARTICIPATION_TYPE,
                                "code": "PPRF",
                                "display": "primary performer",
                            }
                        ]
                    }
                ],
                "individual": _ref(practitioner),
            }
        ],
        "period": {"start": start, "end": end},
    }
    if reason:
        enc["reasonCode"] = [{"text": reason}]
    return enc


def appointment(
    patient: str, practitioner: str, start: str, end: str, reason: str
) -> dict[str, Any]:
    """A booked Appointment (this week's schedule gives the rooming staff their relationship).

    >>> appointment("Patient/p", "Practitioner/d", "2026-01-01T09:00:00+00:00", "2026-01-01T09:30:00+00:00", "Consult")["status"]
    'booked'
    """
    return {
        "resourceType": "Appointment",
        "status": "booked",
        "reasonCode": [{"text": reason}],
        "start": start,
        "end": end,
        "participant": [
            {"actor": _ref(patient), "required": "required", "status": "accepted"},
            {"actor": _ref(practitioner), "required": "required", "status": "accepted"},
        ],
    }


def service_request(
    patient: str,
    requester: str,
    authored: str,
    code: tuple[str, str],
    *,
    performer: str | None = None,
    category: str = "laboratory",
    reason: str = "",
    supporting: list[str] | None = None,
) -> dict[str, Any]:
    """An active order (a lab test, or a referral when ``category`` is not laboratory).

    >>> service_request("Patient/p", "Practitioner/d", "2025-12-11", LIPID_PANEL)["code"]["coding"][0]["code"]
    '57698-3'
    """
    sr: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "status": "active",
        "intent": "order",
        "code": {
            "coding": [{"system": LOINC, "code": code[0], "display": code[1]}],
            "text": code[1],
        },
        "subject": _ref(patient),
        "authoredOn": authored,
        "requester": _ref(requester),
    }
    if category == "laboratory":
        sr["category"] = [
            {"coding": [{"system": _CAT, "code": "laboratory", "display": "Laboratory"}]}
        ]
    if performer:
        sr["performer"] = [{"display": performer}]
    if reason:
        sr["reasonCode"] = [{"text": reason}]
    if supporting:
        sr["supportingInfo"] = [_ref(r) for r in supporting]
    return sr


def referral(
    patient: str,
    requester: str,
    authored: str,
    performer: str,
    reason: str,
    supporting: list[str] | None = None,
) -> dict[str, Any]:
    """A referral ServiceRequest to another organization (text-coded: no shipped code for it).

    >>> referral("Patient/p", "Practitioner/d", "2025-12-11", "Riverton Heart Associates", "chest pain")["performer"]
    [{'display': 'Riverton Heart Associates'}]
    """
    sr = service_request(
        patient,
        requester,
        authored,
        ("", ""),
        performer=performer,
        category="referral",
        reason=reason,
        supporting=supporting,
    )
    sr["code"] = {"text": "Referral to cardiology"}
    return sr


def lipid_panel(
    patient: str, when: str, values: tuple[int, int, int], *, based_on: str | None = None
) -> list[dict[str, Any]]:
    """Three final lab Observations: total cholesterol, triglycerides, HDL (mg/dL).

    Parameters
    ----------
    patient : str
        ``Patient/id``.
    when : str
        Effective and issued dateTime.
    values : tuple of int
        Total cholesterol, triglycerides, HDL.
    based_on : str, optional
        The ServiceRequest they answer.

    Returns
    -------
    list of dict

    Examples
    --------
    >>> obs = lipid_panel("Patient/p1", "2025-12-12", (247, 198, 36), based_on="ServiceRequest/s1")
    >>> [(o["code"]["coding"][0]["code"], o["valueQuantity"]["value"]) for o in obs] == list(zip(LIPID_CODES, (247, 198, 36)))
    True
    >>> obs[0]["basedOn"], obs[0]["valueQuantity"]["unit"]
    ([{'reference': 'ServiceRequest/s1'}], 'mg/dL')
    """
    out = []
    for (code, display), value in zip(LIPID_CODES.items(), values, strict=True):
        obs: dict[str, Any] = {
            "resourceType": "Observation",
            "status": "final",
            "category": [
                {"coding": [{"system": _CAT, "code": "laboratory", "display": "Laboratory"}]}
            ],
            "code": {
                "coding": [{"system": LOINC, "code": code, "display": display}],
                "text": display,
            },
            "subject": _ref(patient),
            "effectiveDateTime": when,
            "issued": when,
            "valueQuantity": {"value": value, "unit": "mg/dL", "system": UCUM, "code": "mg/dL"},
        }
        if based_on:
            obs["basedOn"] = [_ref(based_on)]
        out.append(obs)
    return out


def allergy(patient: str, recorded: str, recorder: str | None, *, note: str = "") -> dict[str, Any]:
    """An active, confirmed, high-criticality penicillin allergy (urticaria).

    Parameters
    ----------
    patient : str
        ``Patient/id``.
    recorded : str
        The recorded date.
    recorder : str or None
        ``Practitioner/id`` who recorded it.
    note : str, optional
        A note on the allergy.

    Returns
    -------
    dict
        An AllergyIntolerance.

    Examples
    --------
    >>> a = allergy("Patient/p1", "2025-12-18", "Practitioner/x")
    >>> a["code"]["text"], a["criticality"], a["clinicalStatus"]["coding"][0]["code"]
    ('Penicillin', 'high', 'active')
    """
    res: dict[str, Any] = {
        "resourceType": "AllergyIntolerance",
        "clinicalStatus": {
            "coding": [
                {
                    "system": ALLERGY_CLINICAL,
                    "code": "active",
                    "display": "Active",
                }
            ]
        },
        "verificationStatus": {
            "coding": [
                {
                    "system": ALLERGY_VERIFICATION,
                    "code": "confirmed",
                    "display": "Confirmed",
                }
            ]
        },
        "type": "allergy",
        "category": ["medication"],
        "criticality": "high",
        "code": {
            "coding": [{"system": SNOMED, "code": PENICILLIN[0], "display": PENICILLIN[1]}],
            "text": PENICILLIN[1],
        },
        "patient": _ref(patient),
        "recordedDate": recorded,
        "reaction": [
            {
                "manifestation": [
                    {
                        "coding": [{"system": SNOMED, "code": "126485001", "display": "Urticaria"}],
                        "text": "Urticaria",
                    }
                ],
                "severity": "mild",
            }
        ],
    }
    if recorder:
        res["recorder"] = _ref(recorder)
    if note:
        res["note"] = [{"text": note}]
    return res


def _med_concept(key: str) -> dict[str, Any]:
    code, display, _ = MEDS[key]
    return {"coding": [{"system": RXNORM, "code": code, "display": display}], "text": display}


def medication_request(
    patient: str, requester: str, authored: str, key: str, *, status: str = "active"
) -> dict[str, Any]:
    """A prescription of one of :data:`MEDS` (``status="on-hold"`` for a held order).

    >>> medication_request("Patient/p", "Practitioner/d", "2025-12-11", "aspirin")["medicationCodeableConcept"]["coding"][0]["code"]
    '243670'
    """
    return {
        "resourceType": "MedicationRequest",
        "status": status,
        "intent": "order",
        "medicationCodeableConcept": _med_concept(key),
        "subject": _ref(patient),
        "authoredOn": authored,
        "requester": _ref(requester),
        "dosageInstruction": [{"text": MEDS[key][2]}],
    }


def medication_statement(
    patient: str,
    key: str,
    when: str,
    *,
    dosage: str | None = None,
    source: str | None = None,
    note: str = "",
) -> dict[str, Any]:
    """A medication-list entry (MedicationStatement), e.g. re-keyed or reconciled.

    >>> medication_statement("Patient/p", "aspirin", "2026-01-01")["status"]
    'active'
    """
    res: dict[str, Any] = {
        "resourceType": "MedicationStatement",
        "status": "active",
        "medicationCodeableConcept": _med_concept(key),
        "subject": _ref(patient),
        "dateAsserted": when,
        "dosage": [{"text": dosage if dosage is not None else MEDS[key][2]}],
    }
    if source:
        res["informationSource"] = {"display": source}
    if note:
        res["note"] = [{"text": note}]
    return res
