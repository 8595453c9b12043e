"""Meta for generated resources: the synthetic tag, security labels and US Core profiles.

Label and profile lists are built once and shared by every resource (each resource still gets
its own ``meta`` dict); treat generated resources as read-only or deep-copy before editing.

>>> m = meta("Observation")
>>> m["tag"][0]["code"], [s["code"] for s in m["security"]]
('synthetic', ['N'])
>>> [s["code"] for s in meta("Condition", SENSITIVE_R + (actcode("SUD"),))["security"]]
['R', 'SUD']
"""

from __future__ import annotations

from functools import cache
from typing import Any

from synthetic.frozen import FrozenDict, FrozenList, freeze
from synthetic.systems import (
    PROFILE_HEAD_CIRCUMFERENCE,
    SANDBOX_TAGS,
    US_CORE_PROFILE_BASE,
    V3_ACT_CODE,
    V3_CONFIDENTIALITY,
)

TAG_SYSTEM = SANDBOX_TAGS
CONFIDENTIALITY = V3_CONFIDENTIALITY
ACTCODE = V3_ACT_CODE
US_CORE = US_CORE_PROFILE_BASE

# shared by many resources: frozen (see synthetic.frozen)
TAGS: list[dict[str, str]] = freeze(
    [{"system": TAG_SYSTEM, "code": "synthetic", "display": "Synthetic test data"}]
)
CONF_N: dict[str, str] = FrozenDict(system=CONFIDENTIALITY, code="N", display="normal")
CONF_R: dict[str, str] = FrozenDict(system=CONFIDENTIALITY, code="R", display="restricted")
SECURITY_N: list[dict[str, str]] = FrozenList((CONF_N,))
SENSITIVE_R: tuple[dict[str, str], ...] = (CONF_R,)

PROFILES: dict[str, str] = {
    "Patient": "us-core-patient",
    "Encounter": "us-core-encounter",
    "AllergyIntolerance": "us-core-allergyintolerance",
    "Immunization": "us-core-immunization",
    "MedicationRequest": "us-core-medicationrequest",
    "Procedure": "us-core-procedure",
    "DocumentReference": "us-core-documentreference",
    "Organization": "us-core-organization",
    "Practitioner": "us-core-practitioner",
    "PractitionerRole": "us-core-practitionerrole",
    "Location": "us-core-location",
    "Coverage": "us-core-coverage",
    "ServiceRequest": "us-core-servicerequest",
    "Specimen": "us-core-specimen",
    "problem": "us-core-condition-problems-health-concerns",
    "encounter-diagnosis": "us-core-condition-encounter-diagnosis",
    "lab": "us-core-observation-lab",
    "report-lab": "us-core-diagnosticreport-lab",
    "report-note": "us-core-diagnosticreport-note",
    "smoking": "us-core-smokingstatus",
    "social": "us-core-simple-observation",
    "85354-9": "us-core-blood-pressure",
    "8867-4": "us-core-heart-rate",
    "9279-1": "us-core-respiratory-rate",
    "8310-5": "us-core-body-temperature",
    "29463-7": "us-core-body-weight",
    "8302-2": "us-core-body-height",
    "39156-5": "us-core-bmi",
    "59408-5": "us-core-pulse-oximetry",
    "9843-4": "head-occipital-frontal-circumference-percentile",
}
"""US Core profile per resource type or per kind (vital LOINC code, condition category...)."""


@cache
def actcode(code: str) -> dict[str, str]:
    """A v3-ActCode sensitivity coding (shared, cached).

    >>> actcode("HIV")["system"] == ACTCODE
    True
    """
    return FrozenDict(system=ACTCODE, code=code)


@cache
def _profile_list(key: str) -> list[str] | None:
    name = PROFILES.get(key)
    if name is None:
        return None
    if name.startswith("head-"):  # the one vital profile that lives in the base spec
        return FrozenList((PROFILE_HEAD_CIRCUMFERENCE,))
    return FrozenList((US_CORE + name,))


_META: dict[tuple[str, tuple[str, ...]], dict[str, Any]] = {}
_META_N: dict[str, dict[str, Any]] = {}
"""``meta`` without sensitivity labels, by profile key."""


def meta(profile_key: str, security: tuple[dict[str, str], ...] | None = None) -> dict[str, Any]:
    """The ``meta`` dict: synthetic tag, one confidentiality code (+ sensitivity codes), profile.

    ``profile_key`` is a resource type or a kind from :data:`PROFILES`; ``security`` is a tuple
    starting with the confidentiality coding (N when omitted). The dict is shared by every
    resource with the same profile and labels, so it is frozen (see :mod:`synthetic.frozen`).

    >>> meta("Nothing")["security"] == [CONF_N] and "profile" not in meta("Nothing")
    True
    >>> meta("Observation") is meta("Observation")
    True
    """
    if security is None:  # the common case: one lookup, no key to build
        hit = _META_N.get(profile_key)
        if hit is None:
            hit = _meta(profile_key, None)
            if len(_META_N) < 4096:
                _META_N[profile_key] = hit
        return hit
    key = (profile_key, tuple([c["code"] for c in security]))
    hit = _META.get(key)
    if hit is None:
        hit = _meta(profile_key, security)
        if len(_META) < 4096:
            _META[key] = hit
    return hit


def _meta(profile_key: str, security: tuple[dict[str, str], ...] | None) -> dict[str, Any]:
    prof = _profile_list(profile_key)
    sec = SECURITY_N if security is None else freeze(list(security))
    if prof is None:
        return FrozenDict(tag=TAGS, security=sec)
    return FrozenDict(profile=prof, tag=TAGS, security=sec)


def labels_of(resource: dict[str, Any]) -> tuple[dict[str, str], ...] | None:
    """The ``security`` to give a record derived from the generated ``resource`` (a task on
    a prescription carries the prescription's labels: ``ehr_sandbox.access.derived``), None
    when ``resource`` is labelled normal (so the shared normal ``meta`` is used).

    >>> labels_of({"meta": meta("MedicationRequest")}) is None
    True
    >>> [c["code"] for c in labels_of({"meta": meta("MedicationRequest", sensitivity_labels(("HIV",)))})]
    ['R', 'HIV']
    """
    security = tuple((resource.get("meta") or {}).get("security") or ())
    if not security or [c.get("code") for c in security] == ["N"]:
        return None
    return security


def sensitivity_labels(codes: tuple[str, ...]) -> tuple[dict[str, str], ...] | None:
    """Security tuple for data with ``codes`` sensitivity (R + each code), None when empty.

    >>> [c["code"] for c in sensitivity_labels(("HIV",))]
    ['R', 'HIV']
    >>> sensitivity_labels(()) is None
    True
    """
    if not codes:
        return None
    return (CONF_R, *(actcode(c) for c in codes))
