"""The search parameters the sandbox supports, as data.

Each :class:`SearchParam` names a parameter, its FHIR search type and the element paths it
reads (a small FHIRPath-like subset: dotted names from the resource root, ``[]`` filters such as
``telecom[system=phone]``). Reference parameters list the target types they accept.

>>> lookup("Observation", "patient").paths, lookup("Observation", "patient").targets
(('subject',), ('Patient',))
>>> lookup("Patient", "birthdate").type
'date'
>>> lookup("Patient", "nope") is None
True
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache

PARAM_TYPES = ("string", "token", "reference", "date", "quantity", "number", "uri", "special")
"""The FHIR search-parameter types the index knows about."""


@dataclass(frozen=True)
class SearchParam:
    """One search parameter of one resource type (or of every type, for the common ones).

    >>> SearchParam("code", "token", ("code",)).type
    'token'
    """

    name: str
    type: str
    paths: tuple[str, ...]
    targets: tuple[str, ...] = ()


def _p(name: str, ptype: str, *paths: str, targets: tuple[str, ...] = ()) -> SearchParam:
    return SearchParam(name, ptype, tuple(paths), targets)


_PAT = ("Patient",)
_PRACT = ("Practitioner", "PractitionerRole", "Organization")

COMMON: dict[str, SearchParam] = {
    p.name: p
    for p in (
        _p("_id", "special", "id"),
        _p("_lastUpdated", "date", "meta.lastUpdated"),
        _p("_tag", "token", "meta.tag"),
        _p("_security", "token", "meta.security"),
        _p("_profile", "uri", "meta.profile"),
    )
}
"""Parameters every resource type has."""


def _subject_params(
    *, code: str | None = "code", date: tuple[str, ...] = (), status: bool = True
) -> list[SearchParam]:
    out = [
        _p("patient", "reference", "subject", targets=_PAT),
        _p("subject", "reference", "subject"),
        _p("encounter", "reference", "encounter", targets=("Encounter",)),
    ]
    if code:
        out.append(_p("code", "token", code))
    if date:
        out.append(_p("date", "date", *date))
    if status:
        out.append(_p("status", "token", "status"))
    return out


_BY_TYPE: dict[str, list[SearchParam]] = {
    "Patient": [
        _p("name", "string", "name"),
        _p("family", "string", "name.family"),
        _p("given", "string", "name.given"),
        _p("birthdate", "date", "birthDate"),
        _p("gender", "token", "gender"),
        _p("identifier", "token", "identifier"),
        _p("address", "string", "address"),
        _p("address-city", "string", "address.city"),
        _p("address-state", "string", "address.state"),
        _p("address-postalcode", "string", "address.postalCode"),
        _p("phone", "token", "telecom[system=phone]"),
        _p("email", "token", "telecom[system=email]"),
        _p("telecom", "token", "telecom"),
        _p("general-practitioner", "reference", "generalPractitioner", targets=_PRACT),
        _p("organization", "reference", "managingOrganization", targets=("Organization",)),
        _p("active", "token", "active"),
        _p("link", "reference", "link.other", targets=("Patient", "RelatedPerson")),
    ],
    "Observation": [
        *_subject_params(date=("effectiveDateTime", "effectivePeriod", "effectiveInstant")),
        _p("category", "token", "category"),
        _p("value-quantity", "quantity", "valueQuantity"),
        _p("value-concept", "token", "valueCodeableConcept"),
        _p("component-code", "token", "component.code"),
        _p("performer", "reference", "performer"),
        _p("based-on", "reference", "basedOn"),
        _p("specimen", "reference", "specimen", targets=("Specimen",)),
        _p("has-member", "reference", "hasMember"),
        _p("derived-from", "reference", "derivedFrom"),
    ],
    "Condition": [
        *_subject_params(status=False),
        _p("category", "token", "category"),
        _p("clinical-status", "token", "clinicalStatus"),
        _p("verification-status", "token", "verificationStatus"),
        _p("onset-date", "date", "onsetDateTime", "onsetPeriod"),
        _p("recorded-date", "date", "recordedDate"),
    ],
    "Encounter": [
        _p("patient", "reference", "subject", targets=_PAT),
        _p("subject", "reference", "subject"),
        _p("date", "date", "period"),
        _p("status", "token", "status"),
        _p("class", "token", "class"),
        _p("type", "token", "type"),
        _p("participant", "reference", "participant.individual"),
        _p("practitioner", "reference", "participant.individual", targets=("Practitioner",)),
        _p("service-provider", "reference", "serviceProvider", targets=("Organization",)),
        _p("location", "reference", "location.location", targets=("Location",)),
        _p("appointment", "reference", "appointment", targets=("Appointment",)),
        _p("reason-code", "token", "reasonCode"),
        _p("reason-reference", "reference", "reasonReference"),
        _p("diagnosis", "reference", "diagnosis.condition", targets=("Condition", "Procedure")),
        _p("based-on", "reference", "basedOn", targets=("ServiceRequest",)),
        _p("part-of", "reference", "partOf", targets=("Encounter",)),
    ],
    "AllergyIntolerance": [
        _p("patient", "reference", "patient", targets=_PAT),
        _p("code", "token", "code", "reaction.substance"),
        _p("clinical-status", "token", "clinicalStatus"),
        _p("verification-status", "token", "verificationStatus"),
        _p("criticality", "token", "criticality"),
        _p("category", "token", "category"),
        _p("date", "date", "recordedDate"),
        _p("encounter", "reference", "encounter", targets=("Encounter",)),
    ],
    "MedicationRequest": [
        *_subject_params(code="medicationCodeableConcept"),
        _p("authoredon", "date", "authoredOn"),
        _p("intent", "token", "intent"),
        _p("requester", "reference", "requester"),
        _p("medication", "reference", "medicationReference", targets=("Medication",)),
    ],
    "MedicationAdministration": [
        *_subject_params(code="medicationCodeableConcept"),
        _p("effective-time", "date", "effectiveDateTime", "effectivePeriod"),
        _p("context", "reference", "context", targets=("Encounter", "EpisodeOfCare")),
        _p("request", "reference", "request", targets=("MedicationRequest",)),
        _p("performer", "reference", "performer.actor"),
    ],
    "Immunization": [
        _p("patient", "reference", "patient", targets=_PAT),
        _p("vaccine-code", "token", "vaccineCode"),
        _p("date", "date", "occurrenceDateTime"),
        _p("status", "token", "status"),
        _p("lot-number", "string", "lotNumber"),
        _p("performer", "reference", "performer.actor"),
        _p("encounter", "reference", "encounter", targets=("Encounter",)),
    ],
    "Procedure": [
        *_subject_params(date=("performedDateTime", "performedPeriod")),
        _p("category", "token", "category"),
        _p("performer", "reference", "performer.actor"),
        _p("based-on", "reference", "basedOn"),
    ],
    "ServiceRequest": [
        *_subject_params(),
        _p("category", "token", "category"),
        _p("intent", "token", "intent"),
        _p("authored", "date", "authoredOn"),
        _p("requester", "reference", "requester"),
        _p("performer", "reference", "performer"),
        _p("occurrence", "date", "occurrenceDateTime", "occurrencePeriod"),
        _p("specimen", "reference", "specimen", targets=("Specimen",)),
    ],
    "Specimen": [
        _p("patient", "reference", "subject", targets=_PAT),
        _p("subject", "reference", "subject"),
        _p("type", "token", "type"),
        _p("status", "token", "status"),
        _p("collected", "date", "collection.collectedDateTime", "collection.collectedPeriod"),
        _p("accession", "token", "accessionIdentifier"),
        _p("collector", "reference", "collection.collector"),
    ],
    "DiagnosticReport": [
        *_subject_params(date=("effectiveDateTime", "effectivePeriod")),
        _p("category", "token", "category"),
        _p("result", "reference", "result", targets=("Observation",)),
        _p("issued", "date", "issued"),
        _p("performer", "reference", "performer"),
        _p("based-on", "reference", "basedOn"),
    ],
    "DocumentReference": [
        _p("patient", "reference", "subject", targets=_PAT),
        _p("subject", "reference", "subject"),
        _p("type", "token", "type"),
        _p("category", "token", "category"),
        _p("date", "date", "date"),
        _p("status", "token", "status"),
        _p("relatesto", "reference", "relatesTo.target", targets=("DocumentReference",)),
        _p("relation", "token", "relatesTo.code"),
        _p("author", "reference", "author"),
        _p("encounter", "reference", "context.encounter", targets=("Encounter", "EpisodeOfCare")),
    ],
    "Appointment": [
        _p("patient", "reference", "participant.actor", targets=_PAT),
        _p("actor", "reference", "participant.actor"),
        _p("practitioner", "reference", "participant.actor", targets=("Practitioner",)),
        _p("location", "reference", "participant.actor", targets=("Location",)),
        _p("date", "date", "start"),
        _p("status", "token", "status"),
        _p("service-type", "token", "serviceType"),
        _p("appointment-type", "token", "appointmentType"),
        _p("slot", "reference", "slot", targets=("Slot",)),
        _p("reason-reference", "reference", "reasonReference"),
        _p("based-on", "reference", "basedOn", targets=("ServiceRequest",)),
    ],
    "AppointmentResponse": [
        _p("appointment", "reference", "appointment", targets=("Appointment",)),
        _p("actor", "reference", "actor"),
        _p("patient", "reference", "actor", targets=_PAT),
        _p("part-status", "token", "participantStatus"),
    ],
    "Slot": [
        _p("schedule", "reference", "schedule", targets=("Schedule",)),
        _p("start", "date", "start"),
        _p("status", "token", "status"),
        _p("service-type", "token", "serviceType"),
    ],
    "Schedule": [
        _p("actor", "reference", "actor"),
        _p("date", "date", "planningHorizon"),
        _p("active", "token", "active"),
        _p("service-type", "token", "serviceType"),
    ],
    "Coverage": [
        _p("patient", "reference", "beneficiary", targets=_PAT),
        _p("beneficiary", "reference", "beneficiary", targets=_PAT),
        _p("subscriber", "reference", "subscriber", targets=("Patient", "RelatedPerson")),
        _p("payor", "reference", "payor"),
        _p("status", "token", "status"),
        _p("type", "token", "type"),
        _p("identifier", "token", "identifier"),
    ],
    "Claim": [
        _p("patient", "reference", "patient", targets=_PAT),
        _p("created", "date", "created"),
        _p("status", "token", "status"),
        _p("use", "token", "use"),
        _p("provider", "reference", "provider"),
        _p("insurer", "reference", "insurer", targets=("Organization",)),
        _p("encounter", "reference", "item.encounter", targets=("Encounter",)),
    ],
    "ClaimResponse": [
        _p("patient", "reference", "patient", targets=_PAT),
        _p("request", "reference", "request", targets=("Claim",)),
        _p("created", "date", "created"),
        _p("status", "token", "status"),
        _p("outcome", "token", "outcome"),
        _p("insurer", "reference", "insurer", targets=("Organization",)),
    ],
    "Practitioner": [
        _p("name", "string", "name"),
        _p("family", "string", "name.family"),
        _p("given", "string", "name.given"),
        _p("identifier", "token", "identifier"),
        _p("active", "token", "active"),
    ],
    "PractitionerRole": [
        _p("practitioner", "reference", "practitioner", targets=("Practitioner",)),
        _p("organization", "reference", "organization", targets=("Organization",)),
        _p("role", "token", "code"),
        _p("specialty", "token", "specialty"),
        _p("identifier", "token", "identifier"),
        _p("active", "token", "active"),
        _p("location", "reference", "location", targets=("Location",)),
    ],
    "Organization": [
        _p("name", "string", "name", "alias"),
        _p("identifier", "token", "identifier"),
        _p("type", "token", "type"),
        _p("active", "token", "active"),
        _p("partof", "reference", "partOf", targets=("Organization",)),
        _p("address", "string", "address"),
    ],
    "Location": [
        _p("name", "string", "name", "alias"),
        _p("identifier", "token", "identifier"),
        _p("type", "token", "type"),
        _p("status", "token", "status"),
        _p("organization", "reference", "managingOrganization", targets=("Organization",)),
        _p("address", "string", "address"),
    ],
    "Provenance": [
        _p("target", "reference", "target"),
        _p("agent", "reference", "agent.who"),
        _p("recorded", "date", "recorded"),
        _p("activity", "token", "activity"),
        _p("patient", "reference", "target", targets=_PAT),
    ],
    "Consent": [
        _p("patient", "reference", "patient", targets=_PAT),
        _p("status", "token", "status"),
        _p("category", "token", "category"),
        _p("scope", "token", "scope"),
        _p("date", "date", "dateTime"),
        _p("period", "date", "provision.period"),
        _p("actor", "reference", "provision.actor.reference"),
    ],
    "Communication": [
        _p("patient", "reference", "subject", targets=_PAT),
        _p("subject", "reference", "subject"),
        _p("sender", "reference", "sender"),
        _p("recipient", "reference", "recipient"),
        _p("sent", "date", "sent"),
        _p("status", "token", "status"),
        _p("category", "token", "category"),
    ],
    "Task": [
        _p("patient", "reference", "for", targets=_PAT),
        _p("subject", "reference", "for"),
        _p("focus", "reference", "focus"),
        _p("owner", "reference", "owner"),
        _p("requester", "reference", "requester"),
        _p("status", "token", "status"),
        _p("code", "token", "code"),
        _p("authored-on", "date", "authoredOn"),
        _p("intent", "token", "intent"),
    ],
    "CarePlan": [
        _p("patient", "reference", "subject", targets=_PAT),
        _p("subject", "reference", "subject"),
        _p("status", "token", "status"),
        _p("category", "token", "category"),
        _p("date", "date", "period"),
        _p("encounter", "reference", "encounter", targets=("Encounter",)),
        _p("condition", "reference", "addresses", targets=("Condition",)),
        _p("goal", "reference", "goal", targets=("Goal",)),
        _p("based-on", "reference", "basedOn", targets=("CarePlan",)),
        _p("part-of", "reference", "partOf", targets=("CarePlan",)),
    ],
    "ExplanationOfBenefit": [
        _p("patient", "reference", "patient", targets=_PAT),
        _p("created", "date", "created"),
        _p("status", "token", "status"),
        _p("claim", "reference", "claim", targets=("Claim",)),
        _p("provider", "reference", "provider"),
    ],
    "Goal": [
        _p("patient", "reference", "subject", targets=_PAT),
        _p("subject", "reference", "subject"),
        _p("lifecycle-status", "token", "lifecycleStatus"),
    ],
    "ImagingStudy": [
        _p("patient", "reference", "subject", targets=_PAT),
        _p("subject", "reference", "subject"),
        _p("started", "date", "started"),
        _p("status", "token", "status"),
        _p("encounter", "reference", "encounter", targets=("Encounter",)),
    ],
    "RelatedPerson": [
        _p("patient", "reference", "patient", targets=_PAT),
        _p("name", "string", "name"),
        _p("relationship", "token", "relationship"),
    ],
    "Account": [
        _p("patient", "reference", "subject", targets=_PAT),
        _p("subject", "reference", "subject"),
        _p("status", "token", "status"),
        _p("owner", "reference", "owner", targets=("Organization",)),
    ],
    "Medication": [
        _p("code", "token", "code"),
        _p("status", "token", "status"),
    ],
}

REGISTRY: dict[str, dict[str, SearchParam]] = {
    rtype: {**COMMON, **{p.name: p for p in params}} for rtype, params in _BY_TYPE.items()
}
"""Per resource type: every parameter it supports (its own plus :data:`COMMON`)."""


def params_for(resource_type: str) -> dict[str, SearchParam]:
    """All parameters of ``resource_type`` (types without their own get the common ones).

    >>> "_id" in params_for("Basic") and "name" in params_for("Patient")
    True
    """
    return REGISTRY.get(resource_type, COMMON)


def lookup(resource_type: str, name: str) -> SearchParam | None:
    """The parameter ``name`` of ``resource_type``, or None.

    >>> lookup("Encounter", "class").paths
    ('class',)
    """
    return params_for(resource_type).get(name)


LAZY_PARAMS: frozenset[str] = frozenset()
"""Parameters a store would index only once a search first uses them. Empty: building an
index during a search writes to the store, and a search must never change it (read-only
opens, the search fuzz test); the meta parameters (``_lastUpdated``, ``_tag``,
``_security``, ``_profile``, about a third of a clinic's index rows) are indexed eagerly."""


@cache
def covering_param(resource_type: str, name: str) -> str | None:
    """The narrower reference parameter that already indexes part of ``name``'s values.

    ``Observation.subject`` and ``Observation.patient`` read the same element; ``patient`` only
    keeps references to a Patient. A store writes such a reference once, under ``patient``, and
    a search on ``subject`` reads both parameters' rows.

    >>> covering_param("Observation", "subject"), covering_param("Observation", "patient")
    ('patient', None)
    """
    params = params_for(resource_type)
    p = params.get(name)
    if p is None or p.type != "reference":
        return None
    for q in params.values():
        if (
            q.name != p.name
            and q.type == "reference"
            and q.paths == p.paths
            and q.targets
            and (not p.targets or (set(q.targets) < set(p.targets)))
        ):
            return q.name
    return None


def registry_fingerprint() -> str:
    """A short hash of the registry: when it changes, stored indexes need :meth:`Store.reindex`.

    >>> len(registry_fingerprint())
    16
    """
    h = hashlib.sha256()
    for rtype in sorted(REGISTRY):
        for p in sorted(REGISTRY[rtype].values(), key=lambda p: p.name):
            h.update(repr((rtype, p)).encode())
    return h.hexdigest()[:16]
