"""Entering two insurance cards (a child on both parents' plans) and checking eligibility.

The plan on file has ended; the patient now has two plans, one from each parent. The order of
benefits follows the birthday rule (the parent whose birthday comes first in the calendar year
is primary, whatever their age); the subscribers are recorded; eligibility is checked for both
plans; the old plan is ended, never overwritten.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from typing import Any

from ehr_sandbox.exercises.builtin.common import (
    patient_label,
    still_standing,
    then_withdrawn,
    visible_patients,
)
from ehr_sandbox.exercises.builtin.front_office.common import (
    FD,
    check,
    fabricate_eligibility,
    written,
)
from ehr_sandbox.exercises.evidence import payer_answered
from ehr_sandbox.exercises.grading import GradingContext
from ehr_sandbox.exercises.model import Criterion, Exercise, Expect, Hint, Scenario, Solution
from ehr_sandbox.workflows import eligibility, registration
from ehr_sandbox.workflows.payer import plan
from ehr_sandbox.workflows.registration import InsuranceCard

__all__ = ["INSURANCE_CARDS"]

BIRTHDAY = "for a child on both parents' plans the parent whose birthday (month and day) comes first in the year is primary, not the older parent"


def _setup(sandbox: Any, variant: Any) -> Scenario:
    rng = variant.rng()
    fd = sandbox.login(FD)
    pats = [
        p
        for p in visible_patients(sandbox, FD)
        if fd.search("Coverage", patient=f"Patient/{p['id']}").count() >= 1
    ]
    p = variant.pick(pats, salt="patient")
    old = fd.search("Coverage", patient=f"Patient/{p['id']}").first()
    late_year = rng.randint(1978, 1986)
    parents = [
        {
            "given": rng.choice(["Maria", "Aisha", "Jennifer", "Mei"]),
            "birth": date(late_year, rng.randint(8, 12), rng.randint(1, 28)),
            "gender": "female",
        },
        {
            "given": rng.choice(["Carlos", "David", "Kwame", "Hiro"]),
            "birth": date(late_year + rng.randint(2, 5), rng.randint(1, 5), rng.randint(1, 28)),
            "gender": "male",
        },
    ]
    rng.shuffle(parents)
    payers = ["blueshield", "unityhealth"]
    rng.shuffle(payers)
    family = p["name"][0].get("family", "Doe")
    cards = []
    for parent, payer_id in zip(parents, payers, strict=True):
        cards.append(
            {
                "payer": payer_id,
                "payer_name": plan(payer_id).name,
                "member_id": plan(payer_id).prefix
                + "".join(str(rng.randint(0, 9)) for _ in range(9)),
                "group": f"GRP-{rng.randint(10000, 99999)}",
                "subscriber_given": parent["given"],
                "subscriber_family": family,
                "subscriber_birth_date": parent["birth"].isoformat(),
                "subscriber_gender": parent["gender"],
            }
        )
    primary = min(cards, key=lambda c: c["subscriber_birth_date"][5:])
    return Scenario(
        facts={
            "patient_id": p["id"],
            "patient_name": patient_label(p),
            "old_coverage": old["id"],
            "old_payer": old["payor"][0].get("display", ""),
            "cards": cards,
            "card_lines": "\n".join(
                f"- **{c['payer_name']}** (payer id `{c['payer']}`), member id `{c['member_id']}`, group `{c['group']}`; "
                f"subscriber {c['subscriber_given']} {c['subscriber_family']} ({c['subscriber_gender']}, born {c['subscriber_birth_date']}), "
                "the patient is the subscriber's child"
                for c in cards
            ),
        },
        answer={
            "primary_member": primary["member_id"],
            "old_payor": old["payor"][0]["reference"],
            "old_member": old.get("subscriberId"),
        },
        protect=(f"Patient/{p['id']}",),
    )


def _new_covs(ctx: GradingContext) -> dict[str, dict[str, Any]]:
    members = {c["member_id"] for c in ctx.facts["cards"]}
    out: dict[str, dict[str, Any]] = {}
    for c in ctx.all("Coverage"):
        if (
            c.get("subscriberId") in members
            and c["beneficiary"]["reference"] == f"Patient/{ctx.facts['patient_id']}"
            and c.get("status") == "active"
            and not (c.get("period") or {}).get("end")
        ):
            out[c["subscriberId"]] = c
    return out


def _entered(ctx: GradingContext) -> Any:
    expected = "both cards on file: payer, member id and group exactly as printed"
    covs = _new_covs(ctx)
    for card in ctx.facts["cards"]:
        c = covs.get(card["member_id"])
        if c is None:
            return check(
                False,
                f"no active plan with member id {card['member_id']}",
                expected,
                "enter every card the patient has now",
            )
        groups = {k.get("value") for k in c.get("class", [])}
        if not c["payor"][0]["reference"].endswith(card["payer"]) or card["group"] not in groups:
            return check(
                False,
                f"Coverage/{c['id']}: payer {c['payor'][0]['reference']}, groups {sorted(groups)}",
                expected,
                "copy the card exactly",
            )
    return check(True, "both cards on file", expected)


def _order(ctx: GradingContext) -> Any:
    expected = "the birthday-rule parent's plan primary (order 1), the other secondary (order 2)"
    covs = _new_covs(ctx)
    if len(covs) != 2:
        return check(False, f"{len(covs)} of the 2 plans on file", expected, BIRTHDAY)
    orders = {m: int(c.get("order", 0)) for m, c in covs.items()}
    if orders.get(ctx.answer["primary_member"]) != 1 or sorted(orders.values()) != [1, 2]:
        return check(False, f"orders {orders}", expected, BIRTHDAY)
    return check(True, "primary and secondary in the right order", expected)


def _holder_differs(card: dict[str, Any], cov: dict[str, Any], sub: dict[str, Any] | None) -> str:
    """What about the recorded subscriber is not the holder printed on ``card`` ('' when all
    of it is): this patient's relative, the card's name, birth date and sex, the patient their
    child."""
    if not sub or sub.get("resourceType") != "RelatedPerson":
        return "no subscriber recorded"
    if (sub.get("patient") or {}).get("reference") != (cov.get("beneficiary") or {}).get(
        "reference"
    ):
        return "the subscriber recorded is another patient's relative"
    names = sub.get("name") or [{}]
    family = str(names[0].get("family", "")).strip().casefold()
    given = {str(g).strip().casefold() for g in names[0].get("given", [])}
    if (
        family != card["subscriber_family"].casefold()
        or card["subscriber_given"].casefold() not in given
    ):
        return "the subscriber's name is not the name on the card"
    if sub.get("birthDate") != card["subscriber_birth_date"]:
        return "the subscriber's date of birth is not the one on the card"
    if sub.get("gender") != card["subscriber_gender"]:
        return "the subscriber's sex is not the one on the card"
    rel = {c.get("code") for c in (cov.get("relationship") or {}).get("coding", [])}
    if rel != {"child"}:
        return (
            f"the patient recorded as the subscriber's {sorted(rel) or 'nothing'}, not their child"
        )
    return ""


def _subscribers(ctx: GradingContext) -> Any:
    expected = (
        "each plan's subscriber recorded as printed on its card (the parent's name, date of "
        "birth and sex), the patient their child"
    )
    covs = _new_covs(ctx)
    for card in ctx.facts["cards"]:
        c = covs.get(card["member_id"])
        ref = ((c or {}).get("subscriber") or {}).get("reference", "")
        sub = ctx.read(ref) if c and ref.startswith("RelatedPerson/") else None
        sub = sub if sub and still_standing(ctx, [sub]) else None  # deactivated: holds nothing
        why = _holder_differs(card, c, sub) if c else "the plan is not on file"
        if why:
            return check(
                False,
                f"plan {card['member_id']}: {why}",
                expected,
                "record who holds the policy exactly as the card prints it; the payer matches "
                "the claim on the holder",
            )
    return check(True, "subscribers recorded", expected)


def _eligibility(ctx: GradingContext) -> Any:
    expected = "an eligibility check (request and response) for each of the two plans"
    covs = _new_covs(ctx)
    asked = {
        i["coverage"]["reference"]
        for v in written(ctx, "CoverageEligibilityRequest")
        for i in v.get("insurance", [])
    }
    answered = {
        i["coverage"]["reference"]
        for v in written(ctx, "CoverageEligibilityResponse")
        if payer_answered(ctx, v)  # a response counts only when it is the payer's answer
        for i in v.get("insurance", [])
    }
    missing = [
        m
        for m, c in covs.items()
        if f"Coverage/{c['id']}" not in asked or f"Coverage/{c['id']}" not in answered
    ]
    if len(covs) < 2 or missing:
        return check(
            False,
            f"not checked: {missing or 'plans missing'}",
            expected,
            "verify every plan, the secondary too: it pays only if it is in force",
        )
    return check(True, "both plans verified", expected)


def _old_ended(ctx: GradingContext) -> Any:
    f, a = ctx.facts, ctx.answer
    expected = "the old plan ended (an end date), its payer and member id unchanged"
    old = ctx.read(f"Coverage/{f['old_coverage']}") or {}
    versions = ctx.versions_since_setup(f"Coverage/{f['old_coverage']}")
    changed = [
        v
        for v in versions
        if v["payor"][0]["reference"] != a["old_payor"] or v.get("subscriberId") != a["old_member"]
    ]
    if changed:
        return check(
            False,
            f"Coverage/{f['old_coverage']} was rewritten as another plan",
            expected,
            "never overwrite a plan: end it and add the new one, so claims for past visits still find it",
        )
    if not (old.get("period") or {}).get("end"):
        return check(
            False,
            f"Coverage/{f['old_coverage']} has no end date",
            expected,
            "end the plan the patient no longer has",
        )
    # the first version written with an end (the plan as it stands when the history read does
    # not show it yet: a grader answers, it never raises)
    ended = next((v for v in versions if (v.get("period") or {}).get("end")), old)
    at = ctx.written_at(ended)
    try:
        end = date.fromisoformat(str(ended["period"]["end"])[:10])
    except ValueError:
        end = None
    # the EHR's clock is UTC, the practice's day local: 'yesterday' may be two UTC days back
    if at is None or end is None or not at.date() - timedelta(days=2) <= end <= at.date():
        return check(
            False,
            f"Coverage/{f['old_coverage']} ended on another day than the day it ended",
            expected,
            "end the old plan as of the day before the new cards take over: a later end keeps "
            "it in force, an earlier one leaves past visits with no plan to bill",
        )
    return check(True, "old plan ended", expected)


def _cards(att: Any) -> list[InsuranceCard]:
    out = []
    for c in att.facts["cards"]:
        out.append(
            InsuranceCard(
                payer=c["payer"],
                member_id=c["member_id"],
                relationship="child",
                group=c["group"],
                subscriber_given=c["subscriber_given"],
                subscriber_family=c["subscriber_family"],
                subscriber_birth_date=c["subscriber_birth_date"],
                subscriber_gender=c["subscriber_gender"],
            )
        )
    return out


def _solution(att: Any, *, all_plans: bool = True, holders_swapped: bool = False) -> None:
    """The reference (``all_plans``: check both plans; ``holders_swapped``: a wrong solution
    entering each card with the other parent's given name as its subscriber)."""
    s = att.session
    cards = _cards(att)
    if holders_swapped:
        names = [c.subscriber_given for c in cards][::-1]
        cards = [replace(c, subscriber_given=n) for c, n in zip(cards, names, strict=True)]
    covs = registration.add_insurance(s, f"Patient/{att.facts['patient_id']}", cards)
    for c in covs if all_plans else covs[:1]:
        eligibility.check_eligibility(s, f"Coverage/{c['id']}")


def _old_plan_end(att: Any, end: str) -> None:
    """The old plan's end date typed in by hand (``end``) before the cards are added; the
    cards and checks right."""
    s = att.session
    f = att.facts
    old = s.read(f"Coverage/{f['old_coverage']}")
    s.update({**old, "period": {**old.get("period", {}), "end": end}})
    _solution(att)


def _ended_retroactively(att: Any) -> None:
    """The old plan ended the day after it started (past visits left with no plan)."""
    old = att.session.read(f"Coverage/{att.facts['old_coverage']}")
    start = date.fromisoformat(str((old.get("period") or {}).get("start", "2000-01-01"))[:10])
    _old_plan_end(att, (start + timedelta(days=1)).isoformat())


def _ended_next_year(att: Any) -> None:
    """The old plan given an end date a year from today (still in force)."""
    _old_plan_end(att, (att.session.now().date() + timedelta(days=365)).isoformat())


def _fabricated_secondary(att: Any) -> None:
    """Both plans entered; the primary verified with the payer, the secondary's answer typed in
    by hand (in force, no copay)."""
    s = att.session
    covs = registration.add_insurance(s, f"Patient/{att.facts['patient_id']}", _cards(att))
    eligibility.check_eligibility(s, f"Coverage/{covs[0]['id']}")
    for c in covs[1:]:
        fabricate_eligibility(s, f"Coverage/{c['id']}", att.sandbox.reference_date)


def _older_primary(att: Any) -> None:
    s = att.session
    cards = sorted(att.facts["cards"], key=lambda c: c["subscriber_birth_date"])
    old = s.read(f"Coverage/{att.facts['old_coverage']}")
    s.update({**old, "period": {**old.get("period", {}), "end": "2025-12-31"}})
    for n, c in enumerate(cards, start=1):
        rp = s.create(
            {
                "resourceType": "RelatedPerson",
                "patient": {"reference": f"Patient/{att.facts['patient_id']}"},
                "name": [{"family": c["subscriber_family"], "given": [c["subscriber_given"]]}],
                "birthDate": c["subscriber_birth_date"],
            }
        )
        cov = s.create(
            {
                "resourceType": "Coverage",
                "status": "active",
                "subscriberId": c["member_id"],
                "order": n,
                "beneficiary": {"reference": f"Patient/{att.facts['patient_id']}"},
                "subscriber": {"reference": f"RelatedPerson/{rp['id']}"},
                "relationship": {
                    "coding": [{"system": registration.RELATIONSHIP, "code": "child"}]
                },
                "payor": [{"reference": f"Organization/org-payer-{c['payer']}"}],
                "period": {"start": "2026-01-01"},
                "class": [
                    {
                        "type": {
                            "coding": [{"system": registration.COVERAGE_CLASS, "code": "group"}]
                        },
                        "value": c["group"],
                    }
                ],
            }
        )
        eligibility.check_eligibility(s, f"Coverage/{cov['id']}")


def _overwrote_old(att: Any) -> None:
    s = att.session
    cards = _cards(att)
    old = s.read(f"Coverage/{att.facts['old_coverage']}")
    s.update(
        {**old, "payor": [{"reference": cards[0].payer_ref}], "subscriberId": cards[0].member_id}
    )
    _solution(att)


def _changed_patient(att: Any) -> None:
    s = att.session
    p = s.read(f"Patient/{att.facts['patient_id']}")
    s.update({**p, "birthDate": "1990-01-01"})
    _solution(att)


INSURANCE_CARDS = Exercise(
    id="front-office/insurance-cards",
    title="Two insurance cards: order of benefits and eligibility",
    topic="front-office",
    topics=("insurance-claims", "patient-access"),
    competencies=("VIII.P.1", "VIII.P.2", "VI.P.7"),
    minutes=15,
    role=FD,
    summary="Enter both parents' plans (birthday rule), record subscribers, verify both, end the old plan.",
    setup=_setup,
    instructions=(
        "**{patient_name}** (`Patient/{patient_id}`) no longer has the {old_payer} plan on file "
        "(`Coverage/{old_coverage}`). At check-in they hand you two cards:\n\n{card_lines}\n\n"
        "Enter the patient's insurance in the right order of benefits and check eligibility."
    ),
    criteria=(
        Criterion(
            "cards entered exactly",
            2,
            _entered,
            "A claim is paid only when payer, member id and group match the plan's records (MAERB VIII.P.1).",
        ),
        Criterion(
            "order of benefits",
            2,
            _order,
            "Coordination of benefits decides who pays first; the wrong order means denials and refunds (NAIC COB model: birthday rule).",
        ),
        Criterion(
            "subscribers recorded",
            1,
            _subscribers,
            "The payer identifies the policy by its holder (MAERB VIII.P.1).",
        ),
        Criterion(
            "eligibility checked for both plans",
            2,
            _eligibility,
            "Verify eligibility of every plan before the visit (MAERB VIII.P.2).",
        ),
        Criterion(
            "old plan ended, not overwritten",
            1,
            _old_ended,
            "Past claims depend on the plan that was in force; it is ended, never rewritten (documentation standards).",
        ),
    ),
    expects=(
        Expect("Coverage", ops=("create", "update"), patients=("patient_id",)),
        Expect("RelatedPerson", ops=("create",), patients=("patient_id",)),
        Expect("CoverageEligibilityRequest", ops=("create",), patients=("patient_id",)),
        Expect("CoverageEligibilityResponse", ops=("create",), patients=("patient_id",)),
    ),
    hints=(
        Hint(
            "`registration.add_insurance(session, patient, [InsuranceCard(...), ...])` applies the order of benefits; then `eligibility.check_eligibility` for each plan."
        ),
    ),
    solution=Solution(
        _solution, description="add_insurance with both cards, then check_eligibility for each"
    ),
    wrong_solutions={
        "subscriber-then-deactivated": Solution(
            then_withdrawn(
                _solution, "RelatedPerson", patient=lambda att: f"Patient/{att.facts['patient_id']}"
            ),
            fails="subscribers recorded",
            message="record who holds the policy exactly as the card prints it",
            description="both plans and their subscribers recorded, then the subscribers "
            "deactivated (the task's own criteria passed before; only collateral damage caught it)",
        ),
        "old-plan-ended-retroactively": Solution(
            _ended_retroactively,
            fails="old plan ended, not overwritten",
            message="an earlier one leaves past visits with no plan to bill",
            description="the old plan ended the day after it started, by hand",
        ),
        "old-plan-ended-next-year": Solution(
            _ended_next_year,
            fails="old plan ended, not overwritten",
            message="a later end keeps it in force",
            description="the old plan given an end date a year ahead, by hand",
        ),
        "fabricated-eligibility": Solution(
            _fabricated_secondary,
            fails="eligibility checked for both plans",
            message="the secondary too",
            description="typed in the secondary plan's eligibility answer instead of asking the payer",
        ),
        "older-parent-primary": Solution(
            _older_primary,
            fails="order of benefits",
            message="not the older parent",
            description="the older parent's plan entered as primary",
        ),
        "primary-only-checked": Solution(
            lambda att: _solution(att, all_plans=False),
            fails="eligibility checked for both plans",
            message="the secondary too",
            description="eligibility for the primary plan only",
        ),
        "subscriber-names-swapped": Solution(
            lambda att: _solution(att, holders_swapped=True),
            fails="subscribers recorded",
            message="not the name on the card",
            description="each card's subscriber recorded with the other parent's name (any name "
            "passed before)",
        ),
        "overwrote-old-plan": Solution(
            _overwrote_old,
            fails="old plan ended, not overwritten",
            message="never overwrite a plan",
            description="rewrote the old Coverage as the new plan",
        ),
        "changed-patient-record": Solution(
            _changed_patient,
            fails="no collateral damage",
            message="the answer key depends on",
            description="changed the patient's date of birth",
        ),
    },
)
