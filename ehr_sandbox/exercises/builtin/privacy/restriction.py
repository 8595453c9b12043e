"""Catalogue item 17 of EXERCISES.md: Restriction (self-pay visit not disclosed to the health plan).

Defines and registers ``privacy/restriction`` (section "Privacy and access control").
The package ``__init__`` imports the exercise modules in catalogue order; helpers shared
within the section are in ``common``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from ehr_sandbox.access import patient_of
from ehr_sandbox.errors import ExerciseError
from ehr_sandbox.exercises.builtin.common import patient_label
from ehr_sandbox.exercises.builtin.privacy.common import (
    ACT_REASON,
    BILLING,
    _living_patients,
    _of_patient,
    _payer_of,
    _refs_in,
)
from ehr_sandbox.exercises.grading import GradingContext, codes
from ehr_sandbox.exercises.model import Check, Criterion, Exercise, Hint, Solution
from ehr_sandbox.exercises.registry import register

# ------------------------------------------------------------------------------------------
# 17. Restriction (self-pay visit not disclosed to the health plan)
# ------------------------------------------------------------------------------------------
RESTRICTION_ADVICE = (
    "a visit paid in full out of pocket is never billed to the plan once the patient asks"
)


def _visit_copy(template: Mapping[str, Any], start: datetime, minutes: int = 30) -> dict[str, Any]:
    enc = copy.deepcopy(dict(template))
    for key in ("id", "meta", "appointment", "text"):
        enc.pop(key, None)
    enc["status"] = "finished"
    enc["period"] = {
        "start": start.isoformat(),
        "end": (start + timedelta(minutes=minutes)).isoformat(),
    }
    return enc


def _claim_for(
    template: Mapping[str, Any], encounter_id: str, coverage_id: str, day: str
) -> dict[str, Any]:
    claim = copy.deepcopy(dict(template))
    for key in ("id", "meta", "text"):
        claim.pop(key, None)
    claim["created"] = day
    claim["billablePeriod"] = {"start": day, "end": day}
    claim["insurance"] = [
        {"sequence": 1, "focal": True, "coverage": {"reference": f"Coverage/{coverage_id}"}}
    ]
    for item in claim.get("item", []):
        item["servicedDate"] = day
        item["encounter"] = [{"reference": f"Encounter/{encounter_id}"}]
    return claim


def _setup_restriction(sandbox: Any, variant: Any) -> dict[str, Any]:
    options = []
    for p in _living_patients(sandbox):
        claims = [c for c in _of_patient(sandbox, "Claim", p["id"]) if c.get("insurance")]
        covs = [c for c in _of_patient(sandbox, "Coverage", p["id"]) if c.get("status") == "active"]
        encs = _of_patient(sandbox, "Encounter", p["id"])
        if claims and covs and encs:
            options.append((p, claims[-1], covs[0], encs[-1]))
    if not options:
        raise ExerciseError(
            "setup: no insured patient with a billed visit; generate a larger sandbox"
        )
    patient, claim, cov, enc = variant.pick(options, salt="patient")
    start = datetime.fromisoformat(enc["period"]["start"])
    today = sandbox.reference_date
    rng = variant.rng()
    self_pay_at = start.replace(
        year=today.year, month=today.month, day=today.day, hour=rng.randint(8, 11), minute=0
    )
    covered_at = self_pay_at - timedelta(days=rng.randint(1, 3), hours=-2)
    system = sandbox.system_session()
    self_pay = system.create(_visit_copy(enc, self_pay_at))
    covered = system.create(_visit_copy(enc, covered_at))
    payer = _payer_of(sandbox, claim)
    return {
        "patient_id": patient["id"],
        "patient_name": patient_label(patient),
        "self_pay_id": self_pay["id"],
        "self_pay_date": self_pay_at.date().isoformat(),
        "covered_id": covered["id"],
        "covered_date": covered_at.date().isoformat(),
        "coverage_id": cov["id"],
        "plan_name": payer[1],
        "template_claim": claim["id"],
        "paid": f"{rng.randint(95, 260)}.00",
    }


def _claims_on(ctx: GradingContext, encounter_id: str) -> list[dict[str, Any]]:
    want = f"Encounter/{encounter_id}"
    return [c for c in ctx.all("Claim") if want in _refs_in(c)]


def _restriction_recorded(ctx: GradingContext) -> Check:
    f = ctx.facts
    want = f"Encounter/{f['self_pay_id']}"
    expected = f"an active Consent for {f['patient_name']} denying purpose HPAYMT for data related to {want}"
    found = [c for c in ctx.all("Consent") if patient_of(c) == f["patient_id"]]
    if not found:
        return Check(
            False,
            "no Consent on the patient's record",
            expected,
            "record the patient's restriction as a Consent",
        )

    def denies(prov: Mapping[str, Any]) -> bool:
        hit = (
            prov.get("type") == "deny"
            and "HPAYMT" in codes(prov.get("purpose", []))
            and want in _refs_in(prov.get("data", []))
        )
        return hit or any(denies(p) for p in prov.get("provision", []) or [])

    good = [c for c in found if c.get("status") == "active" and denies(c.get("provision") or {})]
    if not good:
        return Check(False, f"{len(found)} Consent(s), none denying HPAYMT for {want}", expected)
    return Check(True, f"Consent/{good[0]['id']} restricts the visit", expected)


def _restriction_not_billed(ctx: GradingContext) -> Check:
    f = ctx.facts
    expected = (
        f"no Claim to {f['plan_name']} references the self-pay visit Encounter/{f['self_pay_id']}"
    )
    claims = _claims_on(ctx, f["self_pay_id"])
    if claims:
        return Check(
            False,
            f"billed the health plan for the self-pay visit (Claim/{claims[0]['id']})",
            expected,
            RESTRICTION_ADVICE,
        )
    return Check(True, "the self-pay visit was not billed to the plan", expected)


def _restriction_covered_billed(ctx: GradingContext) -> Check:
    f = ctx.facts
    expected = f"a Claim by {ctx.user.username} for Encounter/{f['covered_id']} to Coverage/{f['coverage_id']}"
    claims = [
        c
        for c in _claims_on(ctx, f["covered_id"])
        if f"Coverage/{f['coverage_id']}" in _refs_in(c.get("insurance", []))
    ]
    if not claims:
        return Check(
            False,
            "the covered visit was not billed",
            expected,
            "restrict only what the patient paid for",
        )
    provs = [p for c in claims for p in ctx.provenance_of_version(f"Claim/{c['id']}", "1")]
    if not any(ctx.by_user(p) for p in provs):
        return Check(False, "the claim was not created by you", expected)
    return Check(True, f"Claim/{claims[0]['id']} for the covered visit", expected)


def _restriction_consent(att: Any) -> None:
    f = att.facts
    consent = {
        "resourceType": "Consent",
        "status": "active",
        # R4B ppc-1: a Consent names its policy (HIPAA Privacy Rule, 45 CFR 164.522)
        "policy": [{"uri": "https://www.ecfr.gov/current/title-45/section-164.522"}],
        "scope": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/consentscope",
                    "code": "patient-privacy",
                }
            ]
        },
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                        "code": "INFA",
                        "display": "information access",
                    }
                ]
            }
        ],
        "patient": {"reference": f"Patient/{f['patient_id']}"},
        "dateTime": f["self_pay_date"],
        "provision": {
            "type": "permit",
            "provision": [
                {
                    "type": "deny",
                    "purpose": [{"system": ACT_REASON, "code": "HPAYMT"}],
                    "data": [
                        {
                            "meaning": "related",
                            "reference": {"reference": f"Encounter/{f['self_pay_id']}"},
                        }
                    ],
                }
            ],
        },
    }
    att.sandbox.login_patient(f["patient_id"]).create(consent)


def _bill(att: Any, encounter_id: str) -> None:
    f, s = att.facts, att.session
    template = s.read("Claim", f["template_claim"])
    day = f["covered_date"] if encounter_id == f["covered_id"] else f["self_pay_date"]
    s.create(_claim_for(template, encounter_id, f["coverage_id"], day))


def _restriction_solution(att: Any) -> None:
    _restriction_consent(att)
    _bill(att, att.facts["covered_id"])


def _restriction_bill_anyway(att: Any) -> None:
    _bill(att, att.facts["covered_id"])
    _bill(att, att.facts["self_pay_id"])
    _restriction_consent(att)


RESTRICTION = register(
    Exercise(
        id="privacy/restriction",
        title="Restriction: a self-pay visit stays away from the health plan",
        topic="privacy",
        competencies=("X.P.2", "X.P.4", "VIII.P.4"),
        minutes=15,
        role=BILLING,
        summary="Record the patient's restriction as a Consent and bill only the covered visit.",
        setup=_setup_restriction,
        instructions=(
            "{patient_name} (`Patient/{patient_id}`) paid **${paid}** in full for today's visit "
            "(`Encounter/{self_pay_id}`, {self_pay_date}) and asked that it **not** be reported to "
            "their health plan, {plan_name}. Their visit of {covered_date} (`Encounter/{covered_id}`) "
            "is billed to the plan as usual (`Coverage/{coverage_id}`).\n\n"
            "1. The patient signs the restriction on the portal kiosk: as the patient "
            "(`att.sandbox.login_patient('{patient_id}')`), create a Consent that denies purpose "
            "`HPAYMT` for data related to the self-pay encounter.\n"
            "2. As billing (`att.session`), submit the claim for the covered visit only "
            "(start from `Claim/{template_claim}`: drop `id`/`meta`, point the items at the encounter, "
            "set the dates). Then call `att.check()`."
        ),
        criteria=(
            Criterion(
                "restriction recorded",
                2,
                _restriction_recorded,
                "A restriction the practice must honour is written into the record so the system enforces it (HIPAA 164.522(a)).",
            ),
            Criterion(
                "self-pay visit not billed to the plan",
                3,
                _restriction_not_billed,
                "A covered entity must agree not to disclose to a health plan a service paid in full out of pocket (HIPAA 164.522(a)(1)(vi)).",
            ),
            Criterion(
                "covered visit billed",
                1,
                _restriction_covered_billed,
                "The restriction covers only the self-pay service; other visits are billed as usual (MAERB VIII.P.4).",
            ),
        ),
        hints=(
            Hint(
                "A Consent: status active, scope patient-privacy, a permit provision with a nested deny provision for purpose HPAYMT and data {meaning: related, reference: the encounter}."
            ),
            Hint(
                "Record the restriction first: once it exists, the EHR refuses a claim that references the visit.",
                cost=1,
            ),
        ),
        solution=Solution(
            _restriction_solution, description="Consent first, then bill the covered visit"
        ),
        wrong_solutions={
            "bill-anyway": Solution(
                _restriction_bill_anyway,
                fails="self-pay visit not billed to the plan",
                message="billed the health plan for the self-pay visit",
                description="bills both visits, then records the restriction",
            )
        },
        patients=8,
    )
)
