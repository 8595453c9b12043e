"""Documents that carry information between organizations in EMR mode.

Without an exchange, the only way information leaves an EMR is a document someone renders
and sends: a **referral letter**, a printed or **faxed visit summary** (plain text, as a fax
machine prints it), or a **FHIR document Bundle** (a Composition and its entries). The
receiving organization cannot query anything: a person must read the document and re-key
it (see :mod:`ehr_sandbox.network.rekey`).

What a document says is read through the *sender's* Session, so the sender's policy applies.

>>> item = DocumentItem("lab", "2093-3", "Cholesterol [Mass/volume] in Serum or Plasma", "212 mg/dL", "2025-12-12")
>>> render_item(item)
'LAB   2025-12-12  Cholesterol [Mass/volume] in Serum or Plasma: 212 mg/dL'
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from ehr_sandbox.access.labels import (
    CONFIDENTIALITY_RANK,
    confidentiality_coding,
    confidentiality_of,
    highest_confidentiality,
)
from ehr_sandbox.errors import ValidationError
from ehr_sandbox.network.fhir_builders import LIPID_CODES
from ehr_sandbox.network.reading import patient_resources
from synthetic.systems import LOINC, MRN

__all__ = [
    "DOCUMENT_KINDS",
    "Document",
    "DocumentItem",
    "chart_items",
    "compose",
    "items_of",
    "render_document",
    "render_item",
]

DOCUMENT_KINDS = ("referral-letter", "visit-summary", "fhir-document")
"""Referral letter (text), printed/faxed visit summary (text), FHIR document Bundle."""
MRN_SYSTEM = MRN


@dataclass(frozen=True)
class DocumentItem:
    """One fact a document states: kind (allergy, medication, lab, problem), code, text, value, date.

    >>> DocumentItem("allergy", "764146007", "Penicillin", "Urticaria", "2025-12-18").kind
    'allergy'
    """

    kind: str
    code: str
    display: str
    value: str
    date: str
    system: str = ""
    confidentiality: str = "N"
    """The v3-Confidentiality code of the record the fact was read from."""


@dataclass(frozen=True)
class Document:
    """A document sent from one organization to another (or handed to the patient).

    ``text`` is what a person reads; ``bundle`` is set for a FHIR document. ``patient`` holds
    the demographics printed on it (name, birth date, the *sender's* MRN): the receiver must
    find their own chart from those. Build one with :func:`compose` (or ``Network.send``).

    Examples
    --------
    >>> from ehr_sandbox.network.network import Network
    >>> net = Network.generate(seed=3, mode="emr", patients=8, people=2)
    >>> p = net.person("P1")
    >>> doc = compose("referral-letter", net.login("clinic", "dr.patel"), p.records["clinic"],
    ...               source=net.org("clinic"), target=net.org("cardiology"), created="2026-01-02")
    >>> doc.kind, doc.bundle is None, sorted(doc.patient)
    ('referral-letter', True, ['birthDate', 'gender', 'mrn', 'name'])
    >>> doc.patient["mrn"] in doc.text and p.records["clinic"] not in doc.text
    True
    """

    id: str
    kind: str
    source_org: str
    target_org: str
    created: str
    patient: dict[str, str]
    items: tuple[DocumentItem, ...]
    text: str
    bundle: dict[str, Any] | None = field(default=None, repr=False)
    reason: str = ""
    confidentiality: str = "N"
    """The highest confidentiality of what the document states (PRIVACY.md: a Bundle or report
    carries the highest confidentiality of its contents); the FHIR document's Bundle carries it
    in ``meta.security`` too."""


def _patient_header(patient: dict[str, Any]) -> dict[str, str]:
    name = (patient.get("name") or [{}])[0]
    mrn = next(
        (
            i.get("value", "")
            for i in patient.get("identifier", [])
            if i.get("system") == MRN_SYSTEM
        ),
        "",
    )
    return {
        "name": " ".join([*name.get("given", []), name.get("family", "")]).strip(),
        "birthDate": str(patient.get("birthDate", "")),
        "mrn": mrn,
        "gender": str(patient.get("gender", "")),
    }


def _first(concept: dict[str, Any] | None) -> tuple[str, str]:
    coding = ((concept or {}).get("coding") or [{}])[0]
    return str(coding.get("code", "")), str(
        coding.get("display") or (concept or {}).get("text", "")
    )


def _system(concept: dict[str, Any] | None) -> str:
    return str((((concept or {}).get("coding") or [{}])[0]).get("system", ""))


def _active(resource: dict[str, Any]) -> bool:
    status = resource.get("status")
    if status is not None:
        return status in ("active", "final", "amended", "corrected")
    clinical = _first(resource.get("clinicalStatus"))[0]
    return clinical in ("", "active")


def chart_items(session: Any, patient_id: str, *, since: str = "") -> list[DocumentItem]:
    """What this user can see of a patient's allergies, active medications, problems and lipid labs.

    Reads through ``session`` (its policy applies); labs older than ``since`` are left out.

    Parameters
    ----------
    session : Session
    patient_id : str
    since : str, optional
        ISO date; older labs are left out.

    Returns
    -------
    list of DocumentItem
        Sorted by kind, date, code and value.

    Examples
    --------
    >>> from ehr_sandbox.network.network import Network
    >>> net = Network.generate(seed=3, mode="emr", patients=8, people=2)
    >>> p = net.person("P1")
    >>> items = chart_items(net.login("hospital", "dr.okafor"), p.records["hospital"])
    >>> ("allergy", "Penicillin") in {(i.kind, i.display) for i in items}
    True
    >>> chart_items(net.login("hospital", "fd.smith"), p.records["hospital"])  # no clinical access
    []
    """
    found: list[dict[str, Any]] = []
    for rtype in (
        "AllergyIntolerance",
        "MedicationRequest",
        "MedicationStatement",
        "Condition",
        "Observation",
    ):
        found.extend(patient_resources(session, rtype, patient_id))
    return items_of(found, since=since)


def items_of(resources: list[dict[str, Any]], *, since: str = "") -> list[DocumentItem]:
    """Allergies, active medications, active problems and lipid results among ``resources``.

    >>> from ehr_sandbox.network.fhir_builders import allergy
    >>> [i.display for i in items_of([allergy("Patient/p", "2025-12-18", None)])]
    ['Penicillin']
    """
    out: list[DocumentItem] = []
    for r in resources:
        rtype = r.get("resourceType")
        conf = confidentiality_of(r) or "N"
        if rtype == "AllergyIntolerance" and _active(r):
            code, display = _first(r.get("code"))
            reaction = ", ".join(
                m.get("text", "") for x in r.get("reaction", []) for m in x.get("manifestation", [])
            )
            out.append(
                DocumentItem(
                    "allergy",
                    code,
                    display,
                    reaction,
                    str(r.get("recordedDate", ""))[:10],
                    _system(r.get("code")),
                    confidentiality=conf,
                )
            )
        elif rtype in ("MedicationRequest", "MedicationStatement") and r.get("status") == "active":
            code, display = _first(r.get("medicationCodeableConcept"))
            sig = ((r.get("dosageInstruction") or r.get("dosage") or [{}])[0]).get("text", "")
            when = str(r.get("authoredOn") or r.get("dateAsserted") or "")[:10]
            out.append(
                DocumentItem(
                    "medication",
                    code,
                    display,
                    sig,
                    when,
                    _system(r.get("medicationCodeableConcept")),
                    confidentiality=conf,
                )
            )
        elif rtype == "Condition" and _active(r):
            code, display = _first(r.get("code"))
            out.append(
                DocumentItem(
                    "problem",
                    code,
                    display,
                    "",
                    str(r.get("onsetDateTime") or r.get("recordedDate") or "")[:10],
                    confidentiality=conf,
                )
            )
        elif rtype == "Observation":
            code, display = _first(r.get("code"))
            when = str(r.get("effectiveDateTime", ""))[:10]
            if (
                code in LIPID_CODES
                and r.get("status") in ("final", "amended", "corrected")
                and when >= since
            ):
                q = r.get("valueQuantity") or {}
                out.append(
                    DocumentItem(
                        "lab",
                        code,
                        display,
                        f"{q.get('value')} {q.get('unit', '')}".strip(),
                        when,
                        _system(r.get("code")),
                        confidentiality=conf,
                    )
                )
    return sorted(out, key=lambda i: (i.kind, i.date, i.code, i.value))


def render_item(item: DocumentItem) -> str:
    """One line of a printed document.

    Parameters
    ----------
    item : DocumentItem

    Returns
    -------
    str
        Kind (five letters), date, text and value.

    Examples
    --------
    >>> render_item(DocumentItem("allergy", "764146007", "Penicillin", "Urticaria", "2025-12-18"))
    'ALLER 2025-12-18  Penicillin: Urticaria'
    """
    tail = f": {item.value}" if item.value else ""
    return f"{item.kind.upper()[:5]:<5} {item.date:<11} {item.display}{tail}"


def render_document(
    kind: str,
    source_name: str,
    target_name: str,
    created: str,
    patient: dict[str, str],
    items: list[DocumentItem],
    reason: str = "",
) -> str:
    """The text a person reads: a referral letter or a fax cover plus visit summary.

    >>> print(render_document("visit-summary", "Lab", "Clinic", "2025-12-12", {"name": "Ana Diaz", "birthDate": "1980-02-03", "mrn": "L1"}, []).splitlines()[0])
    FAX  2025-12-12  FROM: Lab  TO: Clinic  PAGE 1/1
    """
    if kind not in DOCUMENT_KINDS:
        raise ValidationError("Document", "kind", "one of " + ", ".join(DOCUMENT_KINDS), found=kind)
    who = f"RE: {patient['name']}  DOB {patient['birthDate']}  (our MRN {patient['mrn']})"
    body = [render_item(i) for i in items] or ["(nothing on file)"]
    if kind == "referral-letter":
        return "\n".join(
            [
                f"{source_name}",
                f"{created}",
                "",
                f"Dear colleague at {target_name},",
                "",
                who,
                "",
                f"I am referring this patient to you: {reason or 'please evaluate'}.",
                "Current allergies, medications, problems and recent results as known to us:",
                "",
                *body,
                "",
                "Sincerely,",
                f"{source_name}",
            ]
        )
    header = f"FAX  {created}  FROM: {source_name}  TO: {target_name}  PAGE 1/1"
    title = "VISIT SUMMARY" if kind == "visit-summary" else "CLINICAL DOCUMENT (FHIR)"
    return "\n".join(
        [header, "CONFIDENTIAL: intended for the addressee only", "", title, who, "", *body]
    )


def document_id(kind: str, source: str, target: str, patient_id: str, created: str) -> str:
    """A stable document id from what identifies it.

    >>> document_id("referral-letter", "clinic", "cardiology", "p1", "2025-12-11") == document_id("referral-letter", "clinic", "cardiology", "p1", "2025-12-11")
    True
    """
    return (
        "doc-"
        + hashlib.sha256(f"{kind}|{source}|{target}|{patient_id}|{created}".encode()).hexdigest()[
            :12
        ]
    )


def fhir_bundle(
    doc_id: str,
    source_name: str,
    created: str,
    patient: dict[str, Any],
    entries: list[dict[str, Any]],
) -> dict[str, Any]:
    """A FHIR document Bundle: a Composition first, then the patient and the listed resources.

    >>> b = fhir_bundle("doc-1", "Hospital", "2025-12-18", {"resourceType": "Patient", "id": "p"}, [])
    >>> b["type"], b["entry"][0]["resource"]["resourceType"], b["meta"]["security"][0]["code"]
    ('document', 'Composition', 'N')
    """
    comp = {
        "resourceType": "Composition",
        "id": f"{doc_id}-composition",
        "status": "final",
        "type": {
            "coding": [{"system": LOINC, "code": "11488-4", "display": "Consult note"}],
            "text": "Emergency department visit summary",
        },
        "subject": {"reference": f"Patient/{patient.get('id')}"},
        "date": created,
        "author": [{"display": source_name}],
        "title": "Emergency department visit summary",
        "section": [
            {
                "title": "Entries",
                "entry": [{"reference": f"{r['resourceType']}/{r['id']}"} for r in entries],
            }
        ],
    }
    return {
        "resourceType": "Bundle",
        "id": doc_id,
        # a Bundle carries the highest confidentiality of what it holds (PRIVACY.md)
        "meta": {
            "security": [confidentiality_coding(highest_confidentiality([patient, *entries]))]
        },
        "type": "document",
        "timestamp": f"{created}T23:59:00-05:00",
        "identifier": {"system": "urn:ietf:rfc:3986", "value": f"urn:ehr-sandbox:{doc_id}"},
        "entry": [
            {"fullUrl": f"urn:ehr-sandbox:{r['resourceType']}/{r.get('id')}", "resource": r}
            for r in (comp, patient, *entries)
        ],
    }


def compose(
    kind: str,
    session: Any,
    patient_id: str,
    *,
    source: Any,
    target: Any,
    created: str,
    reason: str = "",
    since: str = "",
) -> Document:
    """Render a document about ``patient_id`` from what ``session`` (a sender's user) may read.

    Parameters
    ----------
    kind : str
        One of :data:`DOCUMENT_KINDS`.
    session : Session
        The sender's session.
    patient_id : str
        The patient at the sender.
    source : Organization
    target : Organization or str
        The receiving organization, or an outside addressee's name.
    created : str
        The document's date.
    reason, since : str, optional

    Returns
    -------
    Document

    Raises
    ------
    ValidationError
        An unknown ``kind``.
    NotFound
        The patient is absent or hidden from ``session``.

    Examples
    --------
    >>> from ehr_sandbox.network.network import Network
    >>> net = Network.generate(seed=3, mode="emr", patients=8, people=2)
    >>> p = net.person("P1")
    >>> doc = compose("fhir-document", net.login("hospital", "dr.okafor"), p.records["hospital"],
    ...               source=net.org("hospital"), target=net.org("clinic"), created="2025-12-18")
    >>> doc.bundle["type"], doc.bundle["entry"][0]["resource"]["resourceType"]
    ('document', 'Composition')
    """
    patient = session.read("Patient", patient_id)
    items = chart_items(session, patient_id, since=since)
    header = _patient_header(patient)
    doc_id = document_id(
        kind, source.key, target.key if hasattr(target, "key") else str(target), patient_id, created
    )
    target_name = getattr(target, "name", str(target))
    bundle = None
    if kind == "fhir-document":
        entries = [
            *patient_resources(session, "AllergyIntolerance", patient_id),
            *[
                m
                for m in patient_resources(session, "MedicationRequest", patient_id)
                if m.get("status") == "active"
            ],
        ]
        bundle = fhir_bundle(doc_id, source.name, created, patient, entries)
    text = render_document(kind, source.name, target_name, created, header, items, reason)
    confidentiality = max(
        [i.confidentiality for i in items]
        + ([confidentiality_of(bundle) or "N"] if bundle is not None else [])
        + [confidentiality_of(patient) or "N"],
        key=CONFIDENTIALITY_RANK.__getitem__,
    )
    return Document(
        doc_id,
        kind,
        source.key,
        getattr(target, "key", str(target)),
        created,
        header,
        tuple(items),
        text,
        bundle,
        reason,
        confidentiality,
    )
