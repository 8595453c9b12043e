"""The Patient resource (US Core demographics extensions, MRN, care-team physician).

>>> import random
>>> from synthetic.person import make_person, name_pools
>>> p = make_person(random.Random(0), name_pools(), birth=730000, sex="female")
>>> r = patient_resource("abc", p, mrn="MRN00000001", physician_id="prac-dr.patel", organization_id="org-clinic")
>>> r["gender"], r["identifier"][0]["value"], r["generalPractitioner"][0]["reference"]
('female', 'MRN00000001', 'Practitioner/prac-dr.patel')
"""

from __future__ import annotations

from typing import Any

from synthetic.builders.common import coding
from synthetic.dates import iso_date
from synthetic.frozen import freeze, frozen_cache
from synthetic.labels import meta
from synthetic.person import Person
from synthetic.systems import MRN, SSN, US_CORE_PROFILE_BASE, V2_0203, V3_MARITAL_STATUS

US_CORE_EXT = US_CORE_PROFILE_BASE
OMB = "urn:oid:2.16.840.1.113883.6.238"
MRN_SYSTEM = MRN
SSN_SYSTEM = SSN
MARITAL = V3_MARITAL_STATUS
_MRN_TYPE = freeze({"coding": [coding(V2_0203, "MR", "Medical record number")], "text": "MRN"})
_SSN_TYPE = freeze({"coding": [coding(V2_0203, "SS", "Social Security number")], "text": "SSN"})


@frozen_cache
def _race_ext(code: str, display: str) -> dict[str, Any]:
    return {
        "url": US_CORE_EXT + "us-core-race",
        "extension": [
            {"url": "ombCategory", "valueCoding": coding(OMB, code, display)},
            {"url": "text", "valueString": display},
        ],
    }


@frozen_cache
def _ethnicity_ext(hispanic: bool) -> dict[str, Any]:
    code, display = (
        ("2135-2", "Hispanic or Latino") if hispanic else ("2186-5", "Not Hispanic or Latino")
    )
    return {
        "url": US_CORE_EXT + "us-core-ethnicity",
        "extension": [
            {"url": "ombCategory", "valueCoding": coding(OMB, code, display)},
            {"url": "text", "valueString": display},
        ],
    }


@frozen_cache
def _birthsex_ext(code: str) -> dict[str, Any]:
    return {"url": US_CORE_EXT + "us-core-birthsex", "valueCode": code}


@frozen_cache
def _language(code: str, display: str) -> list[dict[str, Any]]:
    return [{"language": {"coding": [coding("urn:ietf:bcp:47", code, display)], "text": display}}]


@frozen_cache
def _marital(code: str, display: str) -> dict[str, Any]:
    return {"coding": [coding(MARITAL, code, display)], "text": display}


def patient_resource(
    base: str,
    person: Person,
    *,
    mrn: str,
    physician_id: str,
    organization_id: str,
) -> dict[str, Any]:
    """Build the Patient for ``person`` with id ``base``.

    Adults carry a marital status; the deceased carry ``deceasedDateTime``.

    >>> import random
    >>> from synthetic.person import make_person, name_pools
    >>> p = make_person(random.Random(1), name_pools(), birth=730000, sex="male")
    >>> p.deceased = 735000
    >>> r = patient_resource("x", p, mrn="MRN1", physician_id="d", organization_id="o")
    >>> r["active"], r["deceasedDateTime"][:4]
    (False, '2013')
    """
    p = person
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "id": base,
        "meta": meta("Patient"),
        "extension": [
            _race_ext(*p.race),
            _ethnicity_ext(p.hispanic),
            _birthsex_ext(p.gender_code),
        ],
        "identifier": [
            {"use": "usual", "type": _MRN_TYPE, "system": MRN_SYSTEM, "value": mrn},
            {"type": _SSN_TYPE, "system": SSN_SYSTEM, "value": p.ssn},
        ],
        "active": p.deceased is None,
        "name": [{"use": "official", "family": p.family, "given": [p.given, p.middle]}],
        "telecom": [
            {"system": "phone", "value": p.phone, "use": "home"},
            {"system": "email", "value": p.email},
        ],
        "gender": p.sex,
        "birthDate": iso_date(p.birth),
    }
    if p.deceased is not None:
        resource["deceasedDateTime"] = iso_date(p.deceased)
    resource["address"] = [
        {
            "use": "home",
            "line": [p.street],
            "city": p.city,
            "state": p.state,
            "postalCode": p.postal_code,
            "country": "US",
        }
    ]
    if p.marital is not None:
        resource["maritalStatus"] = _marital(*p.marital)
    resource["communication"] = _language(*p.language)
    resource["generalPractitioner"] = [{"reference": f"Practitioner/{physician_id}"}]
    resource["managingOrganization"] = {"reference": f"Organization/{organization_id}"}
    return resource
