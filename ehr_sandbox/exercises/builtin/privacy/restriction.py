"""Catalogue item 17 of EXERCISES.md: Restriction (self-pay visit not disclosed to the health plan).

Defines and registers ``privacy/restriction`` (section "Privacy and access control").
The package ``__init__`` imports the exercise modules in catalogue order; helpers shared
within the section are in ``common``.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Any

from ehr_sandbox.access import patient_of
from ehr_sandbox.errors import ExerciseError, SandboxError
from ehr_sandbox.exercises.builtin.common import patient_label
from ehr_sandbox.exercises.builtin.privacy.common import (
    ACT_REASON,
    BILLING,
    disclose,
    disclosures_to,
    has_plan,
    living_patients,
    payer_of,
    records_of_patient,
    refs_in,
)
from ehr_sandbox.exercises.grading import GradingContext, codes
from ehr_sandbox.exercises.model import Check, Criterion, Exercise, Expect, Hint, Scenario, Solution
from ehr_sandbox.exercises.registry import register
from synthetic.systems import CONSENT_SCOPE, HIPAA_164_522, V3_ACT_CODE

ACT_CODE = V3_ACT_CODE

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


def _setup_restriction(sandbox: Any, variant: Any) -> Scenario:
    options = []
    for p in living_patients(sandbox):
        claims = [c for c in records_of_patient(sandbox, "Claim", p["id"]) if has_plan(sandbox, c)]
        covs = [
            c
            for c in records_of_patient(sandbox, "Coverage", p["id"])
            if c.get("status") == "active"
        ]
        encs = records_of_patient(sandbox, "Encounter", p["id"])
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
    payer = payer_of(sandbox, claim)
    return Scenario(
        facts={
            "plan_ref": payer[0],
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
        }  # all public: the instructions name every one
    )


def _claims_on(ctx: GradingContext, encounter_id: str) -> list[dict[str, Any]]:
    want = f"Encounter/{encounter_id}"
    return [c for c in ctx.all("Claim") if want in refs_in(c)]


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

    def denies(prov: Mapping[str, Any], ref: str) -> bool:
        hit = (
            prov.get("type") == "deny"
            and "HPAYMT" in codes(prov.get("purpose", []))
            and ref in refs_in(prov.get("data", []))
        )
        return hit or any(denies(p, ref) for p in prov.get("provision", []) or [])

    active = [c for c in found if c.get("status") == "active"]
    good = [c for c in active if denies(c.get("provision") or {}, want)]
    if not good:
        return Check(False, f"{len(found)} Consent(s), none denying HPAYMT for {want}", expected)
    covered = f"Encounter/{f['covered_id']}"
    if any(denies(c.get("provision") or {}, covered) for c in active):
        return Check(
            False,
            f"the restriction also covers {covered}, a visit the plan pays for",
            expected,
            "restrict only the visit the patient paid for in full",
        )
    return Check(True, f"Consent/{good[0]['id']} restricts the visit", expected)


def claims_service_on(claim: Mapping[str, Any], day: str) -> bool:
    """True when the claim bills a service on ``day``: its billable period or a line's date
    (or period) of service covers it, whatever encounter the lines name (or none).

    >>> claims_service_on({"item": [{"servicedDate": "2026-01-05"}]}, "2026-01-05")
    True
    >>> claims_service_on({"billablePeriod": {"start": "2026-01-02", "end": "2026-01-02"}}, "2026-01-05")
    False
    """
    periods = [claim.get("billablePeriod") or {}] + [
        {"start": i.get("servicedDate"), "end": i.get("servicedDate")}
        if i.get("servicedDate")
        else (i.get("servicedPeriod") or {})
        for i in claim.get("item", []) or []
    ]
    return any(
        str(p.get("start") or "")[:10] <= day <= str(p.get("end") or p.get("start") or "")[:10]
        for p in periods
        if p.get("start")
    )


def _restriction_not_billed(ctx: GradingContext) -> Check:
    f = ctx.facts
    want = f"Encounter/{f['self_pay_id']}"
    expected = (
        f"no claim to {f['plan_name']} and no disclosure to it ever referencing the self-pay visit "
        f"{want} or billing a service on its date, in any version"
    )
    billed = sorted(
        {
            f"Claim/{v['id']}"
            for v in ctx.versions_since_setup()
            if v.get("resourceType") == "Claim"
            and (
                want in refs_in(v)
                or (patient_of(v) == f["patient_id"] and claims_service_on(v, f["self_pay_date"]))
            )
        }
    )
    if billed:
        return Check(
            False,
            f"billed the health plan for the self-pay visit ({', '.join(billed)}, in its history)",
            expected,
            RESTRICTION_ADVICE + "; repointing the claim later does not unsend it",
        )
    told = [d for d in disclosures_to(ctx, f["plan_ref"]) if want in d.get("refs", [])]
    if told:
        return Check(
            False,
            f"disclosed the self-pay visit to the health plan ({len(told)} release(s))",
            expected,
            RESTRICTION_ADVICE,
        )
    return Check(True, "the self-pay visit was not billed to the plan", expected)


def billed_only_on(claim: Mapping[str, Any], day: str) -> bool:
    """True when every date of service the claim states (its billable period, each line's
    date or period of service) is ``day``: the claim bills that visit's day and no other.

    >>> line = {"servicedDate": "2026-01-05"}
    >>> billed_only_on({"billablePeriod": {"start": "2026-01-05"}, "item": [line]}, "2026-01-05")
    True
    >>> billed_only_on({"item": [line, {"servicedDate": "2026-01-04"}]}, "2026-01-05")
    False
    >>> billed_only_on({"item": [{}]}, "2026-01-05")
    False
    """
    periods = [claim.get("billablePeriod") or {}] if claim.get("billablePeriod") else []
    for item in claim.get("item", []) or []:
        if item.get("servicedDate"):
            periods.append({"start": item["servicedDate"]})
        else:
            periods.append(item.get("servicedPeriod") or {})
    return bool(periods) and all(
        str(p.get("start") or "")[:10] == day and str(p.get("end") or p.get("start"))[:10] == day
        for p in periods
    )


def _restriction_covered_billed(ctx: GradingContext) -> Check:
    f = ctx.facts
    expected = (
        f"an active Claim by {ctx.user.username} for Encounter/{f['covered_id']} to "
        f"Coverage/{f['coverage_id']}, dated the visit's day of service ({f['covered_date']})"
    )
    claims = [
        c
        for c in _claims_on(ctx, f["covered_id"])
        if f"Coverage/{f['coverage_id']}" in refs_in(c.get("insurance", []))
        and c.get("status") == "active"  # a draft or cancelled claim bills nobody
    ]
    if not claims:
        return Check(
            False,
            "the covered visit was not billed",
            expected,
            "restrict only what the patient paid for",
        )
    dated = [c for c in claims if billed_only_on(c, f["covered_date"])]
    if not dated:
        return Check(
            False,
            f"Claim/{claims[0]['id']} bills the covered visit on another date of service",
            expected,
            "a claim states the day the service was given: the visit's own date",
        )
    claims = dated
    provs = [p for c in claims for p in ctx.provenance_of_version(f"Claim/{c['id']}", "1")]
    if not any(ctx.by_user(p) for p in provs):
        return Check(False, "the claim was not created by you", expected)
    return Check(True, f"Claim/{claims[0]['id']} for the covered visit", expected)


def restriction_consent(att: Any, encounter: str | None = None) -> None:
    f = att.facts
    encounter = encounter or f["self_pay_id"]
    consent = {
        "resourceType": "Consent",
        "status": "active",
        # R4B ppc-1: a Consent names its policy (HIPAA Privacy Rule, 45 CFR 164.522)
        "policy": [{"uri": HIPAA_164_522}],
        "scope": {
            "coding": [
                {
                    "system": CONSENT_SCOPE,
                    "code": "patient-privacy",
                }
            ]
        },
        "category": [
            {
                "coding": [
                    {
                        "system": V3_ACT_CODE,
                        "code": "INFA",
                        "display": "information access",
                    }
                ]
            }
        ],
        "patient": {"reference": f"Patient/{f['patient_id']}"},
        "policyRule": {"coding": [{"system": ACT_CODE, "code": "OPTIN"}]},
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
                            "reference": {"reference": f"Encounter/{encounter}"},
                        }
                    ],
                }
            ],
        },
    }
    att.login_patient(f["patient_id"]).create(consent)


def _bill(att: Any, encounter_id: str, day: str | None = None) -> None:
    """Bill ``encounter_id`` on its own date (or on ``day``, in a wrong solution)."""
    f, s = att.facts, att.session
    template = s.read("Claim", f["template_claim"])
    own = f["covered_date"] if encounter_id == f["covered_id"] else f["self_pay_date"]
    s.create(_claim_for(template, encounter_id, f["coverage_id"], day or own))


def _restriction_covered_misdated(att: Any) -> None:
    """The reference with the covered visit's claim dated the day before the visit."""
    restriction_consent(att)
    f = att.facts
    before = (date.fromisoformat(f["covered_date"]) - timedelta(days=1)).isoformat()
    _bill(att, f["covered_id"], before)


def _restriction_solution(att: Any) -> None:
    restriction_consent(att)
    _bill(att, att.facts["covered_id"])


def _restriction_bill_then_repoint(att: Any) -> None:
    # The self-pay visit is billed, the claim then "fixed" to point at the covered visit, and
    # the restriction recorded last.
    f, s = att.facts, att.session
    template = s.read("Claim", f["template_claim"])
    claim = s.create(_claim_for(template, f["self_pay_id"], f["coverage_id"], f["self_pay_date"]))
    fixed = _claim_for(claim, f["covered_id"], f["coverage_id"], f["covered_date"])
    fixed.update(id=claim["id"], meta=claim.get("meta", {}))
    s.update(fixed)
    restriction_consent(att)


def _restriction_wrong_visit(att: Any) -> None:
    # The restriction is recorded on the covered visit instead of the self-pay one.
    f = att.facts
    restriction_consent(att, encounter=f["covered_id"])
    with contextlib.suppress(SandboxError):
        _bill(att, f["covered_id"])  # the EHR now refuses it


def _restriction_disclose_to_plan(att: Any) -> None:
    # Harm: the self-pay visit goes to the plan "for the record" before the restriction is filed.
    f = att.facts
    disclose(
        att.session,
        recipient=f["plan_ref"],
        purpose="HPAYMT",
        refs=[f"Encounter/{f['self_pay_id']}"],
    )
    _restriction_solution(att)


def _restriction_line_without_visit(att: Any) -> None:
    # The covered visit's claim gets a second line dated the self-pay visit, naming no
    # encounter: the plan is billed for the service all the same.
    f, s = att.facts, att.session
    restriction_consent(att)
    claim = _claim_for(
        s.read("Claim", f["template_claim"]), f["covered_id"], f["coverage_id"], f["covered_date"]
    )
    line = copy.deepcopy(claim["item"][0])
    line.pop("encounter", None)
    line.update(sequence=len(claim["item"]) + 1, servicedDate=f["self_pay_date"])
    claim["item"].append(line)
    claim["billablePeriod"] = {"start": f["covered_date"], "end": f["self_pay_date"]}
    s.create(claim)


def _restriction_covered_cancelled(att: Any) -> None:
    # The restriction recorded; the covered visit's claim created already cancelled.
    f, s = att.facts, att.session
    restriction_consent(att)
    claim = _claim_for(
        s.read("Claim", f["template_claim"]), f["covered_id"], f["coverage_id"], f["covered_date"]
    )
    claim["status"] = "cancelled"
    s.create(claim)


def _restriction_bill_anyway(att: Any) -> None:
    _bill(att, att.facts["covered_id"])
    _bill(att, att.facts["self_pay_id"])
    restriction_consent(att)


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
            "(`kiosk = att.login_patient('{patient_id}')`), create a Consent (policyRule OPTIN) that "
            "denies purpose `HPAYMT` for data related to the self-pay encounter.\n"
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
                "A Consent: status active, scope patient-privacy, policyRule OPTIN (v3-ActCode), a permit provision with a nested deny provision for purpose HPAYMT and data {meaning: related, reference: the encounter}."
            ),
            Hint(
                "Record the restriction first: once it exists, the EHR refuses a claim that references the visit.",
                cost=1,
            ),
        ),
        solution=Solution(
            _restriction_solution, description="Consent first, then bill the covered visit"
        ),
        topics=("privacy-security", "insurance-claims", "billing"),
        expects=(
            Expect("Consent", ops=("create",), patients=("patient_id",), at_most=1),
            Expect("Claim", ops=("create",), patients=("patient_id",), at_most=1),
        ),
        actors=("patient:patient_id",),
        wrong_solutions={
            "covered-claim-misdated": Solution(
                _restriction_covered_misdated,
                fails="covered visit billed",
                message="on another date of service",
                description="the covered visit's claim dated the day before the visit",
            ),
            "bill-then-repoint": Solution(
                _restriction_bill_then_repoint,
                fails="self-pay visit not billed to the plan",
                message="repointing the claim later does not unsend it",
                description="bills the self-pay visit, then points the claim at the covered visit",
            ),
            "restrict-wrong-visit": Solution(
                _restriction_wrong_visit,
                fails="restriction recorded",
                message="none denying HPAYMT",
                description="records the restriction on the covered visit",
            ),
            "disclose-to-plan": Solution(
                _restriction_disclose_to_plan,
                fails="self-pay visit not billed to the plan",
                message="disclosed the self-pay visit to the health plan",
                description="sends the self-pay visit to the plan after billing right",
            ),
            "line-without-visit": Solution(
                _restriction_line_without_visit,
                fails="self-pay visit not billed to the plan",
                message="billed the health plan for the self-pay visit",
                description="a claim line dated the self-pay visit that names no encounter",
            ),
            "covered-claim-cancelled": Solution(
                _restriction_covered_cancelled,
                fails="covered visit billed",
                message="restrict only what the patient paid for",
                description="the covered visit's claim created with the status 'cancelled'",
            ),
            "bill-anyway": Solution(
                _restriction_bill_anyway,
                fails="self-pay visit not billed to the plan",
                message="billed the health plan for the self-pay visit",
                description="bills both visits, then records the restriction",
            ),
        },
        patients=8,
    )
)
