"""Hospital admission from the clinic: direct admission or ED transfer, summary, notification.

:func:`arrange` works from the provider's admission order (a ``ServiceRequest``): it writes the
planned ``Encounter`` at the receiving hospital (class ``IMP`` for a direct admission, ``EMER``
for an ED transfer; ``hospitalization.admitSource``; the unit as its location; ``basedOn`` the
order; the reason), the transfer summary (``DocumentReference``, LOINC 18761-7) and the
notification of the hospital (a ``Communication``). How the hospital learns of it depends on
the network mode: in **EHR mode** the summary is shared through the network's exchange (the
hospital reads it with ``exchange.locate/retrieve``); in **EMR mode** it is faxed
(``network.send("visit-summary", ...)``, medium ``FAXWRIT``) and someone must re-key it.

>>> ADMIT_SOURCE["direct"], ENCOUNTER_CLASS["ed-transfer"]
('gp', 'EMER')
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ehr_sandbox.errors import SandboxError
from ehr_sandbox.workflows.base import Rule
from ehr_sandbox.workflows.care import (
    coding,
    demo_session,
    display_name,
    identify,
    loinc_concept,
    mrn_of,
    now_text,
    read_patient,
    refuse,
    require_identified,
    user_ref,
    write_entries,
)
from synthetic.systems import ADMIT_SOURCE as ADMIT_SOURCE_SYSTEM
from synthetic.systems import V3_ACT_CODE, V3_PARTICIPATION_MODE

if TYPE_CHECKING:
    from ehr_sandbox.session import Session

__all__ = [
    "ADMIT_SOURCE",
    "ENCOUNTER_CLASS",
    "RULES",
    "Admission",
    "arrange",
    "demo_session",
    "display_name",
    "identify",
    "mrn_of",
]

ACT_CODE = V3_ACT_CODE
PARTICIPATION_MODE = V3_PARTICIPATION_MODE
ENCOUNTER_CLASS = {"direct": "IMP", "ed-transfer": "EMER"}
ADMIT_SOURCE = {"direct": "gp", "ed-transfer": "outp"}
_SRC = "CMS Conditions of Participation 42 CFR 482.43 (transfer information); The Joint Commission PC.04.02.01 (hand-off)"
RULES: dict[str, Rule] = {
    r.id: r
    for r in (
        Rule("admission.order", "an admission needs the provider's active order for this patient", _SRC),
        Rule("admission.kind", "direct admission or ED transfer", _SRC),
        Rule("admission.receiving", "the receiving hospital (and unit) is named", _SRC),
        Rule("admission.reason", "the reason for admission is stated", _SRC),
        Rule("admission.summary", "a transfer summary goes with the patient: reason, problems, medications, allergies, last vitals", _SRC),
    )
}  # fmt: skip


@dataclass
class Admission:
    """What :func:`arrange` wrote and how the hospital was notified.

    Parameters
    ----------
    encounter : dict
        The Encounter of the direct admission.
    summary : dict
        The transfer summary (a DocumentReference).
    notification : dict
        The Communication to the hospital.
    channel : str
        How it was sent: ``exchange`` (EHR mode) or ``fax``.
    document : object, optional
        What the network delivered, when sent over one.

    Examples
    --------
    >>> a = Admission({"resourceType": "Encounter"}, {"resourceType": "DocumentReference"},
    ...               {"resourceType": "Communication"}, "fax")
    >>> a.channel, a.document is None
    ('fax', True)
    """

    encounter: dict[str, Any]
    summary: dict[str, Any]
    notification: dict[str, Any]
    channel: str
    document: Any = None


def _summary_text(session: Session, ref: str, reason: str) -> str:
    chart = read_patient(session, ref)
    lines = [
        "TRANSFER SUMMARY",
        f"Patient: {display_name(chart)}  DOB {chart.get('birthDate')}  MRN {mrn_of(chart)}",
        f"Reason for admission: {reason}",
    ]
    probs = [
        (c.get("code") or {}).get("text")
        or (c.get("code") or {}).get("coding", [{}])[0].get("display", "")
        for c in session.search("Condition", subject=ref).fetch()
        if ((c.get("clinicalStatus") or {}).get("coding") or [{}])[0].get("code") == "active"
    ]
    lines.append(
        "Active problems: " + ("; ".join(sorted(set(filter(None, probs)))) or "none recorded")
    )
    meds = [
        (m.get("medicationCodeableConcept") or {}).get("text", "")
        for m in session.search("MedicationRequest", subject=ref, status="active").fetch()
    ]
    lines.append("Medications: " + ("; ".join(sorted(set(filter(None, meds)))) or "none recorded"))
    allergies = [
        (a.get("code") or {}).get("text")
        or (a.get("code") or {}).get("coding", [{}])[0].get("display", "")
        for a in session.search("AllergyIntolerance", patient=ref).fetch()
    ]
    lines.append(
        "Allergies: " + ("; ".join(sorted(set(filter(None, allergies)))) or "NKA recorded")
    )
    vit = (
        session.search("Observation", subject=ref, category="vital-signs")
        .sort("-date")
        .limit(1)
        .fetch()
    )
    if vit:
        v = vit[0]
        if "component" in v:
            val = "/".join(
                f"{c['valueQuantity']['value']:g}" for c in v["component"] if "valueQuantity" in c
            )
        else:
            val = f"{(v.get('valueQuantity') or {}).get('value', '')}"
        lines.append(
            f"Last vitals: {(v.get('code') or {}).get('text') or v['code']['coding'][0].get('display')} {val} ({v.get('effectiveDateTime')})"
        )
    return "\n".join(lines)


def arrange(
    session: Session,
    patient: str,
    order: str,
    *,
    kind: str,
    hospital: str,
    unit: str,
    reason: str,
    network: Any = None,
    org_key: str = "clinic",
    hospital_key: str = "hospital",
) -> Admission:
    """Arrange a direct admission or an ED transfer from the clinic.

    Parameters
    ----------
    patient : str
        ``Patient/<id>``, identified first.
    order : str
        The provider's ``ServiceRequest/<id>`` (active, for this patient).
    kind : str
        ``"direct"`` or ``"ed-transfer"``.
    hospital, unit : str
        The receiving hospital (``Organization/<id>`` or its name) and the unit (e.g.
        "Medical-surgical 4 West", "Emergency department").
    reason : str
        Why the patient is admitted (a sentence).
    network : Network, optional
        When given: EHR mode shares through the exchange, EMR mode faxes the summary to
        ``hospital_key`` (the session must belong to ``org_key``). Without a network the
        summary is faxed (EMR behaviour).

    Raises
    ------
    RuleRefused
        ``admission.*`` or ``care.two-identifiers``; nothing is written when refused.

    Examples
    --------
    >>> s = demo_session()
    >>> p = s.search("Patient").first()
    >>> ref = identify(s, p["id"], birth_date=p["birthDate"], mrn=mrn_of(p))
    >>> arrange(s, ref, "ServiceRequest/none", kind="direct", hospital="Riverton General",
    ...         unit="4 West", reason="community-acquired pneumonia, hypoxic")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ehr_sandbox.workflows.base.RuleRefused: Encounter: basedOn: expected the provider's active admission order ...
    """
    ref = require_identified(session, patient, "Encounter")
    if kind not in ENCOUNTER_CLASS:
        raise refuse(RULES["admission.kind"], "Encounter", "class", "direct or ed-transfer", kind)
    try:
        sr = session.read(order)
    except SandboxError:
        sr = {}
    if (
        sr.get("resourceType") != "ServiceRequest"
        or sr.get("status") != "active"
        or (sr.get("subject") or {}).get("reference") != ref
    ):
        raise refuse(
            RULES["admission.order"],
            "Encounter",
            "basedOn",
            "the provider's active admission order for this patient",
            order,
        )
    if not hospital or not unit:
        raise refuse(
            RULES["admission.receiving"],
            "Encounter",
            "serviceProvider/location",
            "the receiving hospital and unit",
            {"hospital": hospital, "unit": unit},
        )
    if not reason or len(reason.split()) < 3:
        raise refuse(
            RULES["admission.reason"], "Encounter", "reasonCode", "the reason for admission", reason
        )
    when = now_text(session)
    provider = (
        {"reference": hospital} if hospital.startswith("Organization/") else {"display": hospital}
    )
    enc = {
        "resourceType": "Encounter",
        "status": "planned",
        "class": coding(ACT_CODE, ENCOUNTER_CLASS[kind]).get("coding")[0]
        | {"display": "inpatient encounter" if kind == "direct" else "emergency"},
        "type": [
            {
                "text": "direct admission from clinic"
                if kind == "direct"
                else "transfer from clinic to the emergency department"
            }
        ],
        "subject": {"reference": ref},
        "basedOn": [{"reference": order}],
        "period": {"start": when},
        "reasonCode": [{"text": reason}],
        "hospitalization": {
            "admitSource": coding(ADMIT_SOURCE_SYSTEM, ADMIT_SOURCE[kind]),
        },
        "location": [
            {
                "location": {"display": f"{hospital_name(hospital, session)} - {unit}"},
                "status": "planned",
            }
        ],
        "serviceProvider": provider,
    }
    text = _summary_text(session, ref, reason)
    summary = {
        "resourceType": "DocumentReference",
        "status": "current",
        "docStatus": "final",
        "type": loinc_concept("18761-7"),
        "subject": {"reference": ref},
        "date": when,
        "author": [user_ref(session)],
        "description": f"Transfer summary to {hospital_name(hospital, session)} ({unit})",
        "content": [
            {
                "attachment": {
                    "contentType": "text/plain",
                    "data": base64.b64encode(text.encode()).decode(),
                    "title": "Transfer summary",
                }
            }
        ],
        "context": {"related": [{"reference": order}]},
    }
    mode = getattr(network, "mode", "emr") if network is not None else "emr"
    channel = "exchange" if mode == "ehr" else "fax"
    note = {
        "resourceType": "Communication",
        "status": "completed",
        "category": [{"text": "hospital admission notification"}],
        "medium": [
            coding(PARTICIPATION_MODE, "ELECTRONIC" if channel == "exchange" else "FAXWRIT")
        ],
        "subject": {"reference": ref},
        "about": [
            {"reference": "urn:uuid:00000000-0000-4000-8000-00000000f001"},
            {"reference": "urn:uuid:00000000-0000-4000-8000-00000000f002"},
        ],
        "sent": when,
        "sender": user_ref(session),
        "recipient": [provider],
        "payload": [
            {
                "contentString": (
                    f"{'Direct admission' if kind == 'direct' else 'ED transfer'} of "
                    f"{display_name(read_patient(session, ref))} to {hospital_name(hospital, session)}"
                    f" ({unit}): {reason}. Transfer summary "
                    + (
                        "shared through the health information exchange"
                        if channel == "exchange"
                        else "faxed"
                    )
                )
            }
        ],
    }
    saved = write_entries(
        session,
        [
            {"fullUrl": "urn:uuid:00000000-0000-4000-8000-00000000f001", "resource": enc},
            {"fullUrl": "urn:uuid:00000000-0000-4000-8000-00000000f002", "resource": summary},
            note,
        ],
        operation=f"admission.{kind}",
    )
    document = None
    if network is not None and channel == "fax":
        document = network.send(
            "visit-summary",
            session,
            org_key,
            ref.split("/", 1)[1],
            hospital_key,
            created=when,
            reason=reason,
        )
    return Admission(saved[0], saved[1], saved[2], channel, document)


def hospital_name(hospital: str, session: Session) -> str:
    """The hospital's name from ``Organization/<id>`` (or the text given).

    Examples
    --------
    >>> hospital_name("Riverton General", demo_session())
    'Riverton General'
    """
    if hospital.startswith("Organization/"):
        try:
            return str(session.read(hospital).get("name", hospital))
        except SandboxError:
            return hospital
    return hospital
