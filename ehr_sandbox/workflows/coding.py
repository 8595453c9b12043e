"""Coding a visit: code look-ups, the superbill, and a claim in CMS-1500 terms.

Diagnoses are ICD-10-CM; services are the sandbox procedure codes (what CPT would code; CPT is
never used) and HCPCS Level II, with HCPCS Level II modifiers. A claim (``Claim``, status
``draft``) carries up to 12 diagnoses (item 21, A-L), and each line at most 4 diagnosis
pointers (item 24E) and a place of service (item 24B). Lines are priced from the practice fee
schedule (:mod:`ehr_sandbox.workflows.fees`), the same fee for every payer.

>>> lookup("icd10cm|Z34.02")["display"]
'Encounter for supervision of normal first pregnancy, second trimester'
>>> lookup("hcpcs|J1885")["system"]
'https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets'
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

from ehr_sandbox.errors import ValidationError
from ehr_sandbox.workflows.base import Rule, RuleRefused, money, now, write
from ehr_sandbox.workflows.content import table
from ehr_sandbox.workflows.fees import SYSTEMS as FEE_SYSTEMS
from ehr_sandbox.workflows.fees import charge
from synthetic.content.loader import load_content
from synthetic.systems import (
    CLAIM_TYPE,
    HCPCS_MODIFIER,
    ICD10CM,
    PLACE_OF_SERVICE,
    PROCESS_PRIORITY,
)

if TYPE_CHECKING:
    from ehr_sandbox.session import Session

__all__ = [
    "ICD10CM",
    "POS_SYSTEM",
    "RULES",
    "SYSTEMS",
    "ClaimLine",
    "age_on",
    "build_claim",
    "claim_resource",
    "claim_codes",
    "key_of",
    "lookup",
    "superbill",
]

POS_SYSTEM = PLACE_OF_SERVICE
MODIFIER_SYSTEM = HCPCS_MODIFIER
SYSTEMS = {"icd10cm": ICD10CM, **FEE_SYSTEMS}
_RULES_SRC = table("scrub_rules")
RULES = {
    r.id: r
    for r in (
        Rule(
            "coding.max-diagnoses",
            "a CMS-1500 claim lists at most 12 diagnoses (item 21, A-L)",
            _RULES_SRC["cms1500"]["source"],
        ),
        Rule(
            "coding.max-pointers",
            "each service line points to 1-4 of the claim's diagnoses (item 24E)",
            _RULES_SRC["cms1500"]["source"],
        ),
        Rule(
            "coding.place-of-service",
            "each line has a CMS place-of-service code (item 24B)",
            _RULES_SRC["place_of_service"]["source"],
        ),
        Rule(
            "coding.code-set",
            "diagnoses are ICD-10-CM; services are sandbox procedure or HCPCS Level II codes; no CPT",
            _RULES_SRC["source"],
        ),
        Rule(
            "coding.modifier",
            "only HCPCS Level II modifiers the payer accepts",
            _RULES_SRC["modifiers"]["source"],
        ),
    )
}


def _icd_codes() -> dict[str, str]:
    base = load_content().codes["icd10cm"]
    return {c: base.display(c) for c in base.codes}


def key_of(system: str, code: str) -> str:
    """``"icd10cm|I10"`` from a system URL and a code.

    Examples
    --------
    >>> key_of(ICD10CM, "I10")
    'icd10cm|I10'
    """
    for key, url in SYSTEMS.items():
        if system in (key, url):
            return f"{key}|{code}"
    raise RuleRefused(
        RULES["coding.code-set"],
        resource="Claim",
        path="system",
        expected="ICD-10-CM, the sandbox procedure system or HCPCS Level II",
        found=system,
    )


def lookup(key: str) -> dict[str, Any]:
    """The Coding for ``"icd10cm|CODE"``, ``"procedure|CODE"`` or ``"hcpcs|CODE"``.

    Raises
    ------
    RuleRefused
        Unknown system or a code that is not in the code set.

    Examples
    --------
    >>> lookup("procedure|OV-EST-3")["display"]
    'Office visit, established patient, low complexity'
    >>> lookup("icd10cm|ZZZ")
    Traceback (most recent call last):
    ...
    ehr_sandbox.workflows.base.RuleRefused: Claim: code: expected a code of the icd10cm code set (found 'icd10cm|ZZZ'). Refused by rule coding.code-set: ...
    """
    if not isinstance(key, str) or "|" not in key:
        raise ValidationError(
            "Claim", "code", "a key like 'icd10cm|I10' or 'procedure|OV-EST-3'", found=key
        )
    system_key, code = key.split("|", 1)
    if system_key not in SYSTEMS:
        raise RuleRefused(
            RULES["coding.code-set"],
            resource="Claim",
            path="code",
            expected="icd10cm, procedure or hcpcs",
            found=key,
        )
    if system_key == "icd10cm":
        codes = _icd_codes()
        display = codes.get(code)
    else:
        cs = load_content().codes[system_key]
        display = cs.display(code) if code in cs.codes else None
    if display is None:
        raise RuleRefused(
            RULES["coding.code-set"],
            resource="Claim",
            path="code",
            expected=f"a code of the {system_key} code set",
            found=key,
        )
    return {"system": SYSTEMS[system_key], "code": code, "display": display}


@dataclass(frozen=True)
class ClaimLine:
    """One service line: a service key, its diagnosis pointers (1-based), units, modifiers.

    >>> ClaimLine("procedure|OV-EST-3", (1, 2)).pointers
    (1, 2)
    """

    service: str
    pointers: tuple[int, ...]
    units: int = 1
    modifiers: tuple[str, ...] = field(default_factory=tuple)


def age_on(birth_date: str, day: date) -> int:
    """Age in whole years on ``day``.

    >>> age_on("2000-06-15", date(2026, 6, 14)), age_on("2000-06-15", date(2026, 6, 15))
    (25, 26)
    """
    b = date.fromisoformat(birth_date[:10])
    return day.year - b.year - ((day.month, day.day) < (b.month, b.day))


def superbill(session: Session, encounter: str) -> dict[str, Any]:
    """The encounter's superbill: who, when, and what was documented, to code from.

    Returns the patient, date, provider, the documented conditions with their verification
    status (a provisional "rule-out" is listed as such), and the fee schedule's services.

    Examples
    --------
    >>> from ehr_sandbox.sandbox import Sandbox
    >>> b = Sandbox.generate(patients=2, seed=1, years=1).login("billing.davis")
    >>> enc = b.search("Encounter").first()
    >>> sb = superbill(b, f"Encounter/{enc['id']}")
    >>> sorted(sb)[:4]
    ['date', 'diagnoses', 'encounter', 'patient']
    """
    enc = session.read(encounter)
    patient = enc["subject"]["reference"]
    day = (enc.get("period") or {}).get("start", "")[:10]
    documented = []
    for cond in session.search("Condition", patient=patient).fetch():
        if (cond.get("encounter") or {}).get("reference") != encounter:
            continue
        status = next(
            iter(c.get("code") for c in (cond.get("verificationStatus") or {}).get("coding", [])),
            "confirmed",
        )
        for c in (cond.get("code") or {}).get("coding", []):
            if c.get("system") == ICD10CM:
                documented.append(
                    {
                        "code": f"icd10cm|{c['code']}",
                        "display": c.get("display"),
                        "status": status,
                        "text": (cond.get("code") or {}).get("text", ""),
                    }
                )
    return {
        "encounter": encounter,
        "patient": patient,
        "date": day,
        "provider": next(
            (
                p["individual"]["reference"]
                for p in enc.get("participant", [])
                if p.get("individual")
            ),
            None,
        ),
        "diagnoses": documented,
        "services": sorted(load_content().fees),
    }


def _coverage_for(session: Session, patient: str, coverage: str | None) -> dict[str, Any] | None:
    if coverage:
        return session.read(coverage)
    active = [
        c
        for c in session.search("Coverage", patient=patient).fetch()
        if c.get("status") == "active" and not (c.get("period") or {}).get("end")
    ]
    active.sort(key=lambda c: int(c.get("order", 1)))
    return active[0] if active else None


def claim_resource(
    session: Session,
    encounter: str,
    *,
    diagnoses: list[str],
    lines: list[ClaimLine | dict[str, Any]],
    place_of_service: str = "11",
    coverage: str | None = None,
    prior_auth: str | None = None,
) -> dict[str, Any]:
    """A draft professional Claim for a coded encounter (validated, not stored).

    Parameters
    ----------
    session : Session
        The billing specialist's session.
    encounter : str
        ``Encounter/<id>`` being billed.
    diagnoses : list of str
        ICD-10-CM keys (``"icd10cm|J02.9"``) in claim order (A, B, C, ...).
    lines : list of ClaimLine or dict
        Services with 1-based diagnosis pointers.
    place_of_service : str
        CMS place-of-service code (``"11"`` office).
    coverage : str, optional
        ``Coverage/<id>`` billed (default: the patient's active primary coverage).
    prior_auth : str, optional
        The payer's prior-authorisation number, where the service needs one.

    Returns
    -------
    dict
        The draft Claim.

    Raises
    ------
    RuleRefused
        More than 12 diagnoses, a line with 0 or more than 4 pointers or a pointer to no
        diagnosis, an unknown code or a CPT-like code, an unknown modifier or place of service.

    Examples
    --------
    >>> from ehr_sandbox.sandbox import Sandbox
    >>> b = Sandbox.generate(patients=3, seed=1, years=1).login("billing.davis")
    >>> enc = next(e for e in b.search("Encounter").fetch() if b.search("Coverage", patient=e["subject"]["reference"]).count())
    >>> c = claim_resource(b, f"Encounter/{enc['id']}", diagnoses=["icd10cm|J02.9"],
    ...                    lines=[ClaimLine("procedure|OV-EST-3", (1,))])
    >>> c["status"], "id" in c
    ('draft', False)
    >>> claim_resource(b, f"Encounter/{enc['id']}", diagnoses=["icd10cm|J02.9"],
    ...             lines=[ClaimLine("procedure|OV-EST-3", (1, 2))])
    Traceback (most recent call last):
    ...
    ehr_sandbox.workflows.base.RuleRefused: Claim: item[1].diagnosisSequence: expected pointers to diagnoses 1-1 (found [1, 2]). Refused by rule coding.max-pointers: ...
    """
    rules = table("scrub_rules")
    if not diagnoses:
        raise ValidationError("Claim", "diagnosis", "at least one ICD-10-CM diagnosis")
    if len(diagnoses) > rules["cms1500"]["max_diagnoses"]:
        raise RuleRefused(
            RULES["coding.max-diagnoses"],
            resource="Claim",
            path="diagnosis",
            expected=f"at most {rules['cms1500']['max_diagnoses']} diagnoses",
            found=len(diagnoses),
        )
    if len(set(diagnoses)) != len(diagnoses):
        raise ValidationError("Claim", "diagnosis", "each diagnosis once", found=diagnoses)
    dx_codings = []
    for key in diagnoses:
        if not str(key).startswith("icd10cm|"):
            raise RuleRefused(
                RULES["coding.code-set"],
                resource="Claim",
                path="diagnosis",
                expected="ICD-10-CM diagnoses ('icd10cm|CODE')",
                found=key,
            )
        dx_codings.append(lookup(key))
    if place_of_service not in rules["place_of_service"]["codes"]:
        raise RuleRefused(
            RULES["coding.place-of-service"],
            resource="Claim",
            path="item.locationCodeableConcept",
            expected="a CMS place-of-service code (e.g. '11' office)",
            found=place_of_service,
        )
    enc = session.read(encounter)
    patient = enc["subject"]["reference"]
    day = (enc.get("period") or {}).get("start", "")[:10] or now(session).date().isoformat()
    cov = _coverage_for(session, patient, coverage)
    payor = ((cov or {}).get("payor") or [{}])[0].get("reference", "")
    if cov is None or not payor.startswith("Organization/org-payer-") or payor.endswith("-selfpay"):
        raise ValidationError(
            "Claim",
            "insurance",
            f"an active Coverage for {patient} (self-pay visits get a statement, not a claim)",
        )
    items = []
    total = money(0)
    for i, raw in enumerate(lines, start=1):
        line = (
            raw
            if isinstance(raw, ClaimLine)
            else ClaimLine(
                raw["service"],
                tuple(raw.get("pointers", ())),
                int(raw.get("units", 1)),
                tuple(raw.get("modifiers", ())),
            )
        )
        if line.service.startswith("icd10cm|"):
            raise RuleRefused(
                RULES["coding.code-set"],
                resource="Claim",
                path=f"item[{i}].productOrService",
                expected="a service code (procedure or HCPCS), not a diagnosis",
                found=line.service,
            )
        service = lookup(line.service)
        ptrs = list(line.pointers)
        if not ptrs or len(ptrs) > rules["cms1500"]["max_pointers"]:
            raise RuleRefused(
                RULES["coding.max-pointers"],
                resource="Claim",
                path=f"item[{i}].diagnosisSequence",
                expected=f"1 to {rules['cms1500']['max_pointers']} pointers",
                found=ptrs,
            )
        if any(not isinstance(p, int) or p < 1 or p > len(diagnoses) for p in ptrs) or len(
            set(ptrs)
        ) != len(ptrs):
            raise RuleRefused(
                RULES["coding.max-pointers"],
                resource="Claim",
                path=f"item[{i}].diagnosisSequence",
                expected=f"pointers to diagnoses 1-{len(diagnoses)}",
                found=ptrs,
            )
        for m in line.modifiers:
            if m not in rules["modifiers"]["allowed"]:
                raise RuleRefused(
                    RULES["coding.modifier"],
                    resource="Claim",
                    path=f"item[{i}].modifier",
                    expected="one of " + ", ".join(rules["modifiers"]["allowed"]),
                    found=m,
                )
        if line.units < 1:
            raise ValidationError(
                "Claim", f"item[{i}].quantity", "1 or more units", found=line.units
            )
        price = charge(line.service, session, date.fromisoformat(day))
        net = money(price * line.units)
        total += net
        item: dict[str, Any] = {
            "sequence": i,
            "diagnosisSequence": ptrs,
            "productOrService": {"coding": [service], "text": service["display"]},
            "servicedDate": day,
            "locationCodeableConcept": {
                "coding": [
                    {
                        "system": POS_SYSTEM,
                        "code": place_of_service,
                        "display": rules["place_of_service"]["codes"][place_of_service],
                    }
                ]
            },
            "quantity": {"value": line.units},
            "unitPrice": {"value": float(price), "currency": "USD"},
            "net": {"value": float(net), "currency": "USD"},
            "encounter": [{"reference": encounter}],
        }
        if line.modifiers:
            item["modifier"] = [
                {"coding": [{"system": MODIFIER_SYSTEM, "code": m}]} for m in line.modifiers
            ]
        items.append(item)
    if not items:
        raise ValidationError("Claim", "item", "at least one service line")
    insurance: dict[str, Any] = {
        "sequence": 1,
        "focal": True,
        "coverage": {"reference": f"Coverage/{cov['id']}"},
    }
    if prior_auth:
        insurance["preAuthRef"] = [str(prior_auth)]
    claim = {
        "resourceType": "Claim",
        "status": "draft",
        "type": {
            "coding": [
                {
                    "system": CLAIM_TYPE,
                    "code": "professional",
                }
            ]
        },
        "use": "claim",
        "patient": {"reference": patient},
        "billablePeriod": {"start": day, "end": day},
        "created": now(session).date().isoformat(),
        "provider": {"reference": "Organization/practice-1"},
        "priority": {
            "coding": [
                {
                    "system": PROCESS_PRIORITY,
                    "code": "normal",
                }
            ]
        },
        "insurer": {"reference": cov["payor"][0]["reference"]},
        "diagnosis": [
            {"sequence": n, "diagnosisCodeableConcept": {"coding": [c], "text": c["display"]}}
            for n, c in enumerate(dx_codings, start=1)
        ],
        "insurance": [insurance],
        "item": items,
        "total": {"value": float(total), "currency": "USD"},
    }
    return claim


def build_claim(
    session: Session,
    encounter: str,
    *,
    diagnoses: list[str],
    lines: list[ClaimLine | dict[str, Any]],
    place_of_service: str = "11",
    coverage: str | None = None,
    prior_auth: str | None = None,
) -> dict[str, Any]:
    """Create a draft professional Claim from a coded encounter (CMS-1500 rules enforced).

    Parameters and rules as :func:`claim_resource`; the claim is stored as ``draft``.

    Parameters
    ----------
    session : Session
        The billing specialist's session.
    encounter : str
        ``Encounter/<id>`` being billed.
    diagnoses : list of str
        ICD-10-CM keys (``"icd10cm|J02.9"``) in claim order (A, B, C, ...).
    lines : list of ClaimLine or dict
        Services with 1-based diagnosis pointers.
    place_of_service : str
        CMS place-of-service code (``"11"`` office).
    coverage : str, optional
        ``Coverage/<id>`` billed (default: the patient's active primary coverage).
    prior_auth : str, optional
        The payer's prior-authorisation number, where the service needs one.

    Returns
    -------
    dict
        The stored draft Claim.

    Raises
    ------
    RuleRefused
        As :func:`claim_resource`.

    Examples
    --------
    >>> from ehr_sandbox.sandbox import Sandbox
    >>> b = Sandbox.generate(patients=3, seed=1, years=1).login("billing.davis")
    >>> enc = next(e for e in b.search("Encounter").fetch() if b.search("Coverage", patient=e["subject"]["reference"]).count())
    >>> c = build_claim(b, f"Encounter/{enc['id']}", diagnoses=["icd10cm|J02.9"],
    ...                 lines=[ClaimLine("procedure|OV-EST-3", (1,))])
    >>> c["status"], c["item"][0]["unitPrice"]["value"], c["item"][0]["locationCodeableConcept"]["coding"][0]["code"]
    ('draft', 135.0, '11')
    """
    claim = claim_resource(
        session,
        encounter,
        diagnoses=diagnoses,
        lines=lines,
        place_of_service=place_of_service,
        coverage=coverage,
        prior_auth=prior_auth,
    )
    return write(session, claim, operation="coding.build-claim")


def claim_codes(claim: dict[str, Any]) -> tuple[list[str], list[dict[str, Any]]]:
    """The claim's diagnosis keys (in order) and its lines as ``{service, pointers, modifiers, price}``.

    Examples
    --------
    >>> claim_codes({"diagnosis": [{"sequence": 1, "diagnosisCodeableConcept": {"coding": [{"system": ICD10CM, "code": "I10"}]}}],
    ...   "item": [{"sequence": 1, "diagnosisSequence": [1], "productOrService": {"coding": [{"system": SYSTEMS["procedure"], "code": "ECG-12"}]}}]})
    (['icd10cm|I10'], [{'sequence': 1, 'service': 'procedure|ECG-12', 'pointers': [1], 'modifiers': [], 'price': None, 'pos': None}])
    """
    dx = []
    for d in sorted(claim.get("diagnosis", []), key=lambda d: d.get("sequence", 0)):
        c = (d.get("diagnosisCodeableConcept") or {}).get("coding", [{}])[0]
        dx.append(
            key_of(c.get("system", ""), c.get("code", ""))
            if c.get("system") in SYSTEMS.values()
            else f"?|{c.get('code')}"
        )
    out = []
    for item in claim.get("item", []):
        c = (item.get("productOrService") or {}).get("coding", [{}])[0]
        try:
            service = key_of(c.get("system", ""), c.get("code", ""))
        except RuleRefused:
            service = f"?|{c.get('code')}"
        out.append(
            {
                "sequence": item.get("sequence"),
                "service": service,
                "pointers": list(item.get("diagnosisSequence", [])),
                "modifiers": [
                    m["coding"][0]["code"] for m in item.get("modifier", []) if m.get("coding")
                ],
                "price": (item.get("unitPrice") or {}).get("value"),
                "pos": next(
                    iter(
                        c.get("code")
                        for c in (item.get("locationCodeableConcept") or {}).get("coding", [])
                    ),
                    None,
                ),
            }
        )
    return dx, out
