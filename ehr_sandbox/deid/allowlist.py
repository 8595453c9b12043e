"""What a Safe Harbor export may keep: an **allowlist** of elements per resource type.

Anything not listed is dropped, so a new element, an extension or a free-text field someone
adds later is left out by default instead of leaking. Choice elements are written ``x[x]``
(``value[x]`` keeps ``valueQuantity``, ``valueCodeableConcept`` ...). Inside kept elements
:mod:`ehr_sandbox.deid.safe_harbor` still drops free text (:data:`FREE_TEXT_KEYS`), keeps the
year of dates, rewrites references and generalizes addresses, and every output string is then
scanned for identifiers.

>>> keeps("Observation", "valueQuantity"), keeps("Observation", "note"), keeps("Foo", "id")
(True, False, False)
"""

from __future__ import annotations

from collections.abc import Mapping

from synthetic.systems import EXT_BIRTH_PLACE, US_CORE_BIRTHSEX, US_CORE_ETHNICITY, US_CORE_RACE

_COMMON = ("meta", "contained")

ALLOWED_ELEMENTS: Mapping[str, frozenset[str]] = {
    rtype: frozenset((*_COMMON, *names))
    for rtype, names in {
        "Patient": (
            "active",
            "gender",
            "birthDate",
            "deceased[x]",
            "address",
            "maritalStatus",
            "communication",
            "extension",
            "generalPractitioner",
            "managingOrganization",
            "multipleBirthBoolean",
            "contact",
        ),
        "Encounter": (
            "status",
            "class",
            "type",
            "serviceType",
            "priority",
            "subject",
            "participant",
            "period",
            "length",
            "reasonCode",
            "reasonReference",
            "diagnosis",
            "location",
            "serviceProvider",
            "appointment",
            "episodeOfCare",
            "basedOn",
            "partOf",
            "hospitalization",
        ),
        "Condition": (
            "clinicalStatus",
            "verificationStatus",
            "category",
            "severity",
            "code",
            "bodySite",
            "subject",
            "encounter",
            "onset[x]",
            "abatement[x]",
            "recordedDate",
            "recorder",
            "asserter",
            "stage",
            "evidence",
        ),
        "Observation": (
            "status",
            "category",
            "code",
            "subject",
            "encounter",
            "effective[x]",
            "performer",
            "value[x]",
            "dataAbsentReason",
            "interpretation",
            "bodySite",
            "method",
            "specimen",
            "referenceRange",
            "hasMember",
            "derivedFrom",
            "component",
            "basedOn",
            "partOf",
        ),
        "AllergyIntolerance": (
            "clinicalStatus",
            "verificationStatus",
            "type",
            "category",
            "criticality",
            "code",
            "patient",
            "encounter",
            "onset[x]",
            "recordedDate",
            "recorder",
            "asserter",
            "lastOccurrence",
            "reaction",
        ),
        "MedicationRequest": (
            "status",
            "statusReason",
            "intent",
            "category",
            "priority",
            "doNotPerform",
            "medication[x]",
            "subject",
            "encounter",
            "authoredOn",
            "requester",
            "reasonCode",
            "reasonReference",
            "dosageInstruction",
            "dispenseRequest",
            "substitution",
            "priorPrescription",
            "basedOn",
            "courseOfTherapyType",
        ),
        "MedicationAdministration": (
            "status",
            "statusReason",
            "category",
            "medication[x]",
            "subject",
            "context",
            "effective[x]",
            "performer",
            "reasonCode",
            "reasonReference",
            "request",
            "dosage",
        ),
        "MedicationStatement": (
            "status",
            "category",
            "medication[x]",
            "subject",
            "context",
            "effective[x]",
            "dateAsserted",
            "reasonCode",
            "reasonReference",
            "dosage",
        ),
        # lotNumber is left out: a lot number is unique to a handful of doses (an identifier).
        "Immunization": (
            "status",
            "statusReason",
            "vaccineCode",
            "patient",
            "encounter",
            "occurrence[x]",
            "primarySource",
            "site",
            "route",
            "doseQuantity",
            "performer",
            "reasonCode",
            "isSubpotent",
            "protocolApplied",
        ),
        "Procedure": (
            "status",
            "statusReason",
            "category",
            "code",
            "subject",
            "encounter",
            "performed[x]",
            "performer",
            "reasonCode",
            "reasonReference",
            "bodySite",
            "outcome",
            "complication",
            "followUp",
            "usedCode",
            "basedOn",
            "partOf",
        ),
        "DiagnosticReport": (
            "status",
            "category",
            "code",
            "subject",
            "encounter",
            "effective[x]",
            "performer",
            "result",
            "specimen",
            "basedOn",
            "conclusionCode",
        ),
        "ServiceRequest": (
            "status",
            "intent",
            "category",
            "priority",
            "doNotPerform",
            "code",
            "subject",
            "encounter",
            "occurrence[x]",
            "authoredOn",
            "requester",
            "performerType",
            "reasonCode",
            "reasonReference",
            "basedOn",
        ),
        "Specimen": ("status", "type", "subject", "receivedTime", "request", "collection"),
        "DocumentReference": (
            "status",
            "docStatus",
            "type",
            "category",
            "subject",
            "author",
            "custodian",
            "context",
            "content",
        ),
        "Claim": (
            "status",
            "type",
            "subType",
            "use",
            "patient",
            "billablePeriod",
            "created",
            "insurer",
            "provider",
            "priority",
            "diagnosis",
            "procedure",
            "insurance",
            "item",
            "total",
        ),
        "ClaimResponse": (
            "status",
            "type",
            "use",
            "patient",
            "created",
            "insurer",
            "requestor",
            "request",
            "outcome",
            "item",
            "total",
            "payment",
        ),
        "ExplanationOfBenefit": (
            "status",
            "type",
            "use",
            "patient",
            "billablePeriod",
            "created",
            "insurer",
            "provider",
            "outcome",
            "diagnosis",
            "insurance",
            "item",
            "total",
            "payment",
        ),
        "Coverage": (
            "status",
            "type",
            "beneficiary",
            "relationship",
            "period",
            "payor",
            "order",
        ),
        "CarePlan": (
            "status",
            "intent",
            "category",
            "subject",
            "encounter",
            "period",
            "addresses",
            "goal",
        ),
        "CareTeam": ("status", "category", "subject", "encounter", "period", "participant"),
        "Goal": (
            "description",
            "lifecycleStatus",
            "achievementStatus",
            "category",
            "priority",
            "subject",
            "start[x]",
            "target",
            "addresses",
        ),
        "FamilyMemberHistory": (
            "status",
            "patient",
            "relationship",
            "sex",
            "deceased[x]",
            "condition",
            "born[x]",
            "age[x]",
            "date",
        ),
        "Appointment": (
            "status",
            "serviceType",
            "appointmentType",
            "reasonCode",
            "reasonReference",
            "participant",
            "minutesDuration",
        ),
        "Organization": ("active", "type", "name", "address", "partOf"),
        "Practitioner": ("active", "gender", "qualification"),
        "PractitionerRole": (
            "active",
            "practitioner",
            "organization",
            "code",
            "specialty",
            "location",
        ),
        "Location": ("status", "mode", "type", "address", "physicalType", "managingOrganization"),
        "Medication": ("code", "status", "form", "ingredient"),
        "Consent": ("status", "scope", "category", "patient", "policyRule", "provision"),
    }.items()
}
"""Top-level elements kept per resource type; a type not listed is left out entirely."""

FREE_TEXT_KEYS: frozenset[str] = frozenset(
    {
        "text",  # CodeableConcept.text, Dosage.text, Annotation.text, narrative
        "valueString",
        "valueMarkdown",
        "note",
        "comment",
        "description",
        "title",
        "patientInstruction",
        "processNote",
        "conclusion",
        "presentedForm",
        "outcomeDesc",
        "lotNumber",
        "summary",
        "instruction",
        "alias",
        "display",  # Coding.display: the code and system carry the meaning; the words may not
    }
)
"""Free-text (and identifying free-form) keys dropped wherever they appear inside kept elements."""

EXTENSIONS_KEPT: frozenset[str] = frozenset(
    {
        US_CORE_RACE,
        US_CORE_ETHNICITY,
        US_CORE_BIRTHSEX,
        EXT_BIRTH_PLACE,
        "ombCategory",
        "detailed",
    }
)
"""Extension URLs kept (coded values only; their text parts go as free text)."""


def keeps(resource_type: str, key: str) -> bool:
    """True when a Safe Harbor export keeps the top-level element ``key`` of ``resource_type``.

    >>> keeps("Patient", "deceasedDateTime"), keeps("Immunization", "lotNumber")
    (True, False)
    """
    allowed = ALLOWED_ELEMENTS.get(resource_type)
    if allowed is None:
        return False
    if key in allowed:
        return True
    for name in allowed:
        if name.endswith("[x]"):
            stem = name[:-3]
            if key.startswith(stem) and len(key) > len(stem) and key[len(stem)].isupper():
                return True
    return False


MASKED_WHEN_EMPTY: Mapping[str, tuple[str, ...]] = {"Goal": ("description",)}
"""Required elements (FHIR R4B min 1) whose content is often only free text: when nothing
codable is left after de-identification, they carry the data-absent-reason ``masked`` so the
output stays valid FHIR."""
