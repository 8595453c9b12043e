"""Telling a patient their financial responsibility at check-in.

Verify eligibility, tell the patient the copay due today and what remains of the deductible
(billed after the claim, not collected now), collect the copay by the patient's method, check
the patient in.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from ehr_sandbox.exercises.builtin.common import patient_label
from ehr_sandbox.exercises.builtin.front_office.common import (
    FD,
    check,
    fabricate_eligibility,
    free_on,
    hand_in,
    handed_in,
    insured_patients,
    op_of,
    payment_typed_in,
    standing_patient_payments,
    written,
)
from ehr_sandbox.exercises.evidence import payer_answered
from ehr_sandbox.exercises.grading import GradingContext
from ehr_sandbox.exercises.model import Criterion, Exercise, Expect, Hint, Scenario, Solution
from ehr_sandbox.workflows import eligibility, payer, payments, scheduling
from ehr_sandbox.workflows.base import money, write

__all__ = ["FINANCIAL_RESPONSIBILITY"]

DEDUCTIBLE = "collect the copay at check-in; the deductible and coinsurance are billed after the claim is adjudicated"


def _setup(sandbox: Any, variant: Any) -> Scenario:
    fd = sandbox.login(FD)
    rng = variant.rng()
    pats = free_on(
        sandbox, insured_patients(sandbox, ("blueshield", "unityhealth")), sandbox.reference_date
    )
    p, other = rng.sample(pats, 2) if len(pats) >= 2 else (pats[0], pats[0])
    doc = variant.pick(("dr.patel", "dr.nguyen", "dr.okafor"), salt="provider")
    today = sandbox.reference_date
    slots = scheduling.build_day(fd, f"Practitioner/prac-{doc}", today.isoformat(), "stream-20")
    at = rng.choice(["11:00", "11:20", "11:40"])
    slot = next(s for s in slots if s["start"][11:16] == at)
    appt = scheduling.book(
        fd,
        f"Patient/{p['id']}",
        f"Slot/{slot['id']}",
        appointment_type="FOLLOWUP",
        reason="Follow-up visit",
    )
    other_slot = next(s for s in slots if s["start"][11:16] == "13:20")
    other_appt = (
        scheduling.book(
            fd,
            f"Patient/{other['id']}",
            f"Slot/{other_slot['id']}",
            appointment_type="ROUTINE",
            reason="Visit",
        )
        if other["id"] != p["id"]
        else appt
    )
    now = sandbox.clock.peek()
    target = now.replace(hour=15, minute=40, second=0)
    if target > now:
        sandbox.clock.advance(minutes=(target - now).total_seconds() / 60)
    cov = eligibility.active_coverages(fd, f"Patient/{p['id']}")[0]
    pl = payer.plan(cov["payor"][0]["reference"])
    met = payer.deductible_met(sandbox.login("billing.davis"), f"Coverage/{cov['id']}", today.year)
    method = rng.choice(["card", "cash", "check"])
    return Scenario(
        facts={
            "patient_id": p["id"],
            "patient_name": patient_label(p),
            "appointment": appt["id"],
            "time": at,
            "method": method,
            "check_number": str(rng.randint(1000, 9999)) if method == "check" else "",
            "coverage": cov["id"],
        },
        answer={
            "copay": str(pl.copay),
            "deductible_remaining": str(max(Decimal(0), pl.deductible - met)),
        },
        protect=(f"Coverage/{cov['id']}", f"Appointment/{other_appt['id']}")
        if other_appt["id"] != appt["id"]
        else (f"Coverage/{cov['id']}",),
    )


def _payments(ctx: GradingContext) -> list[dict[str, Any]]:
    pid = f"Patient/{ctx.facts['patient_id']}"
    return [
        v
        for v in written(ctx, "PaymentReconciliation")
        if any((d.get("request") or {}).get("reference") == pid for d in v.get("detail", []))
    ]


def _verified(ctx: GradingContext) -> Any:
    expected = "eligibility checked today, before anything was collected"
    seq = ctx.versions_since_setup()
    cov = f"Coverage/{ctx.facts['coverage']}"
    appt = ctx.read(f"Appointment/{ctx.facts['appointment']}") or {}
    idx_resp = [
        i
        for i, v in enumerate(seq)
        if v.get("resourceType") == "CoverageEligibilityResponse"
        and any(x.get("coverage", {}).get("reference") == cov for x in v.get("insurance", []))
        # an answer counts only when it is the payer's: anyone can store a response
        and payer_answered(ctx, v)
        # ... for today's visit (last year's benefits are not what the patient owes today)
        and str(v.get("servicedDate", ""))[:10] == str(appt.get("start", ""))[:10]
    ]
    idx_pay = [i for i, v in enumerate(seq) if v.get("resourceType") == "PaymentReconciliation"]
    if not idx_resp:
        return check(
            False,
            "no eligibility check for the day of the visit",
            expected,
            "verify eligibility, for the day of the visit, before telling the patient what "
            "they owe",
        )
    if idx_pay and min(idx_pay) < min(idx_resp):
        return check(
            False,
            "payment taken before eligibility was checked",
            expected,
            "verify eligibility before telling the patient what they owe",
        )
    return check(True, "verified first", expected)


def _collected(ctx: GradingContext) -> Any:
    f, a = ctx.facts, ctx.answer
    expected = f"one payment of the copay, by {f['method']}"
    pays = _payments(ctx)
    if len(pays) != 1:
        return check(False, f"{len(pays)} payments", expected, DEDUCTIBLE)
    v = pays[0]
    if v["id"] not in {x["id"] for x in standing_patient_payments(ctx)}:
        return check(
            False,
            f"PaymentReconciliation/{v['id']} is {v.get('status')}, not an active patient payment",
            expected,
            "record the copay as a payment received from the patient (payments.desk_payment): "
            "a payment cancelled, in error or booked as a refund took no money in",
        )
    amount = money(v["paymentAmount"])
    method = next(
        (
            c.get("code")
            for c in (v.get("paymentIdentifier") or {}).get("type", {}).get("coding", [])
        ),
        None,
    )
    if amount != money(a["copay"]):
        return check(False, f"collected {amount}", expected, DEDUCTIBLE)
    if method != f["method"] or (
        f["method"] == "check"
        and (v.get("paymentIdentifier") or {}).get("value") != f["check_number"]
    ):
        return check(
            False,
            f"recorded as {method} {(v.get('paymentIdentifier') or {}).get('value')}",
            expected,
            "record how the patient paid (check number for a check): the deposit slip depends on it",
        )
    return check(True, f"collected {amount} by {method}", expected)


def _checked_in(ctx: GradingContext) -> Any:
    f = ctx.facts
    expected = "the patient checked in (arrived)"
    cur = ctx.read(f"Appointment/{f['appointment']}") or {}
    if cur.get("status") != "arrived" or not any(
        op_of(ctx, v) == "scheduling.check-in"
        for v in ctx.versions_since_setup(f"Appointment/{f['appointment']}")
    ):
        return check(
            False,
            f"Appointment is {cur.get('status')}",
            expected,
            "check the patient in so the clinical team sees them arrive",
        )
    return check(True, "arrived", expected)


def _told(ctx: GradingContext) -> Any:
    a = ctx.answer
    expected = "the copay due today and the deductible remaining, as the plan answered"
    got = handed_in(ctx)
    if not got:
        return check(
            False, "nothing handed in", expected, "tell the patient (hand in) what they owe"
        )
    try:
        ok = money(got.get("copay", "x")) == money(a["copay"]) and money(
            got.get("deductible_remaining", "x")
        ) == money(a["deductible_remaining"])
    except Exception:  # noqa: BLE001 - a malformed amount is a wrong answer
        ok = False
    if not ok:
        return check(
            False,
            f"told copay {got.get('copay')}, deductible remaining {got.get('deductible_remaining')}",
            expected,
            "read both figures from today's eligibility response",
        )
    return check(True, "told both figures", expected)


def _solution(
    att: Any,
    *,
    eligibility_first: bool = True,
    extra: bool = False,
    check_in: bool = True,
    payment_status: str = "",
    eligibility_for: str = "",
) -> None:
    """The reference (the keywords make wrong solutions; ``payment_status``: the payment typed
    in by hand with that status instead of recorded at the desk; ``eligibility_for``: the plan
    verified for another service date, the figures worked out from the plan by hand)."""
    f, s = att.facts, att.session
    pid = f"Patient/{f['patient_id']}"
    if eligibility_for:
        cov = f"Coverage/{f['coverage']}"
        eligibility.check_eligibility(s, cov, service_date=eligibility_for)
        pl = payer.plan(s.read(cov)["payor"][0]["reference"])
        met = payer.deductible_met(s, cov, att.sandbox.reference_date.year)
        copay, remaining = pl.copay, max(Decimal(0), pl.deductible - met)
    elif eligibility_first:
        for c in eligibility.active_coverages(s, pid):
            eligibility.check_eligibility(s, f"Coverage/{c['id']}")
        fr = eligibility.financial_responsibility(s, pid)
        copay, remaining = fr["copay_due"], fr["deductible_remaining"]
    else:
        copay = payer.plan(s.read(f"Coverage/{f['coverage']}")["payor"][0]["reference"]).copay
        remaining = payer.plan(
            s.read(f"Coverage/{f['coverage']}")["payor"][0]["reference"]
        ).deductible
    amount = copay + (remaining if extra else 0)
    if payment_status:
        payment_typed_in(
            s, pid, amount, method=f["method"], number=f["check_number"], status=payment_status
        )
    else:
        payments.desk_payment(s, pid, amount, method=f["method"], number=f["check_number"] or None)
    hand_in(att, {"copay": str(copay), "deductible_remaining": str(remaining)})
    if check_in:
        scheduling.check_in(s, f"Appointment/{f['appointment']}")


def _fabricated_eligibility(att: Any) -> None:
    """Store an eligibility request and a response the payer never gave (in force, no copay),
    then collect, tell the plan's figures and check in."""
    f, s = att.facts, att.session
    cov = s.read(f"Coverage/{f['coverage']}")
    fabricate_eligibility(s, f"Coverage/{cov['id']}", att.sandbox.reference_date)
    plan = payer.plan(cov["payor"][0]["reference"])
    payments.desk_payment(
        s,
        f"Patient/{f['patient_id']}",
        plan.copay,
        method=f["method"],
        number=f["check_number"] or None,
    )
    hand_in(att, {"copay": str(plan.copay), "deductible_remaining": "0.00"})
    scheduling.check_in(s, f"Appointment/{f['appointment']}")


def _checkin_tag_by_hand(att: Any) -> None:
    """Cancel the visit, then type status arrived and the scheduling.check-in tag over it."""
    _solution(att, check_in=False)
    s = att.session
    ref = f"Appointment/{att.facts['appointment']}"
    scheduling.cancel(s, ref, reason="patient left")
    left = {k: v for k, v in s.read(ref).items() if k != "cancelationReason"}
    write(s, {**left, "status": "arrived"}, operation="scheduling.check-in")


def _checked_in_other(att: Any) -> None:
    _solution(att)
    s = att.session
    for a in s.search("Appointment", status="booked").fetch():
        if a["id"] != att.facts["appointment"] and a.get("start", "").startswith(
            str(att.sandbox.reference_date)
        ):
            try:
                scheduling.check_in(s, f"Appointment/{a['id']}")
            except Exception:  # noqa: BLE001 - only today's can be checked in
                continue


def _changed_plan(att: Any) -> None:
    s = att.session
    cov = s.read(f"Coverage/{att.facts['coverage']}")
    s.update({**cov, "network": "Tier 1 (waived deductible)"})
    _solution(att)


FINANCIAL_RESPONSIBILITY = Exercise(
    id="front-office/financial-responsibility",
    title="Telling a patient their financial responsibility at check-in",
    topic="front-office",
    topics=("billing", "patient-access", "insurance-claims"),
    competencies=("VIII.P.2", "VII.P.3", "VII.P.1"),
    minutes=10,
    role=FD,
    summary="Verify eligibility, tell copay and deductible remaining, collect the copay only, check in.",
    setup=_setup,
    instructions=(
        "**{patient_name}** is at the desk for the {time} visit (`Appointment/{appointment}`) and "
        "will pay by **{method}** {check_number}. Verify the insurance, tell the patient what they "
        "owe today and how much of the deductible remains (hand it in with "
        "`front_office.common.hand_in(att, {{'copay': '..', 'deductible_remaining': '..'}})`), "
        "collect today's payment and check the patient in."
    ),
    criteria=(
        Criterion(
            "eligibility verified first",
            2,
            _verified,
            "Eligibility is verified before the visit and before collecting (MAERB VIII.P.2).",
        ),
        Criterion(
            "copay collected",
            2,
            _collected,
            "At check-in the practice collects the copay; deductible and coinsurance follow the adjudicated claim (MAERB VII.P.1).",
        ),
        Criterion(
            "checked in", 1, _checked_in, "Check-in starts the visit in the record (MAERB VI.P.7)."
        ),
        Criterion(
            "patient told the right amounts",
            2,
            _told,
            "Patients have a right to know their costs before care (Patient's Bill of Rights; HFMA price transparency).",
        ),
    ),
    expects=(
        Expect("CoverageEligibilityRequest", ops=("create",), patients=("patient_id",)),
        Expect("CoverageEligibilityResponse", ops=("create",), patients=("patient_id",)),
        Expect("PaymentReconciliation", ops=("create",)),
        Expect("Appointment", ops=("update",), patients=("patient_id",)),
        Expect("submit-report"),
    ),
    hints=(
        Hint(
            "`eligibility.check_eligibility`, then `eligibility.financial_responsibility(session, patient)`; `payments.desk_payment`; `scheduling.check_in`."
        ),
    ),
    solution=Solution(_solution, description="verify, tell, collect the copay, check in"),
    wrong_solutions={
        "eligibility-for-another-day": Solution(
            lambda att: _solution(att, eligibility_for="2025-03-02"),
            fails="eligibility verified first",
            message="for the day of the visit",
            description="the plan verified for a day last year, the right figures worked out "
            "by hand (full marks before)",
        ),
        "payment-in-error": Solution(
            lambda att: _solution(att, payment_status="entered-in-error"),
            fails="copay collected",
            message="took no money in",
            description="the copay typed in as a payment entered in error (full marks before)",
        ),
        "collected-deductible": Solution(
            lambda att: _solution(att, extra=True),
            fails="copay collected",
            message="the deductible and coinsurance are billed after",
            description="collected the copay and the remaining deductible",
        ),
        "skipped-eligibility": Solution(
            lambda att: _solution(att, eligibility_first=False),
            fails="eligibility verified first",
            message="verify eligibility",
            description="read the card and collected without verifying",
        ),
        "fabricated-eligibility": Solution(
            _fabricated_eligibility,
            fails="eligibility verified first",
            message="verify eligibility",
            description="stored an eligibility response the payer never gave (no copay)",
        ),
        "check-in-tag-by-hand": Solution(
            _checkin_tag_by_hand,
            fails="checked in",
            message="check the patient in",
            description="cancelled the visit, then typed status arrived and the scheduling.check-in tag",
        ),
        "checked-in-another-patient": Solution(
            _checked_in_other,
            fails="no collateral damage",
            message="the answer key depends on",
            description="also checked in another patient",
        ),
        "changed-the-plan": Solution(
            _changed_plan,
            fails="no collateral damage",
            message="the answer key depends on",
            description="changed the plan on file",
        ),
    },
)
