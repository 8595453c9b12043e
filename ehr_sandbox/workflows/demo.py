"""One front-office flow for the demo: schedule, verify insurance, bill, get paid, reconcile.

>>> from ehr_sandbox.sandbox import Sandbox
>>> lines = front_office_flow(Sandbox.generate(patients=6, seed=7, years=1))
>>> lines[0].startswith("Front office:"), lines[-1].endswith("reconciles to the cent")
(True, True)
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from ehr_sandbox.workflows import claims, eligibility, ledger, payer, payments, scheduling
from ehr_sandbox.workflows.base import RuleRefused
from ehr_sandbox.workflows.coding import ClaimLine, build_claim
from synthetic.systems import V3_ACT_CODE

if TYPE_CHECKING:
    from ehr_sandbox.sandbox import Sandbox

__all__ = ["front_office_flow"]


def front_office_flow(sandbox: Sandbox) -> list[str]:
    """Run a short front-office day on ``sandbox`` and describe each step in one line.

    The front desk builds tomorrow's modified-wave template for a physician (lunch blocked),
    books an insured patient, checks eligibility and tells them their copay; billing codes the
    visit, scrubs and sends the claim, the payer simulator adjudicates it, billing posts the ERA
    and the day sheet reconciles with the A/R aging.

    Parameters
    ----------
    sandbox : Sandbox
        A generated sandbox (``Sandbox.generate``).

    Returns
    -------
    list of str
        One line per step.

    Examples
    --------
    >>> from ehr_sandbox.sandbox import Sandbox
    >>> lines = front_office_flow(Sandbox.generate(patients=1, seed=1, years=1))
    >>> len(lines), lines[0].startswith("Front office:"), lines[-1].endswith("reconciles to the cent")
    (6, True, True)
    """
    fd = sandbox.login("fd.smith")
    billing = sandbox.login("billing.davis")
    day = scheduling.now(fd).date() + timedelta(days=1)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    slots = scheduling.build_day(fd, "Practitioner/prac-dr.patel", day.isoformat(), "modified-wave")
    blocked = sum(1 for s in slots if s["status"] == "busy-unavailable")
    lines = [
        f"Front office: {len(slots)} slots built for dr.patel on {day} "
        f"(modified wave; {blocked} blocked for lunch/meetings)"
    ]
    covs = sorted(
        (
            c
            for c in fd.search("Coverage").fetch()
            if c.get("status") == "active"
            and payer.is_insurance(c)
            and not (c.get("period") or {}).get("end")
        ),
        key=lambda c: ("medicare" in c["payor"][0]["reference"], c["id"]),
    )
    free = [s for s in slots if s["status"] == "free"]
    booked = None
    for cov in covs:
        try:
            appt = scheduling.book(
                fd,
                cov["beneficiary"]["reference"],
                f"Slot/{free[len(lines)]['id']}",
                appointment_type="FOLLOWUP",
                reason="Blood pressure follow-up",
            )
        except RuleRefused as exc:
            lines.append(f"Refused: {exc.rule_id}")
            continue
        booked = (cov, appt)
        break
    if booked is None:
        lines.append("No insured patient could be booked in this small clinic")
        return lines
    cov, appt = booked
    patient = cov["beneficiary"]["reference"]
    lines.append(f"Booked {patient} at {appt['start']} ({appt['slot'][0]['reference']})")
    for c in eligibility.active_coverages(fd, patient, day):
        eligibility.check_eligibility(fd, f"Coverage/{c['id']}", service_date=day.isoformat())
    fr = eligibility.financial_responsibility(fd, patient, service_date=day.isoformat())
    lines.append(f"Eligibility: {fr['primary']} in force; copay due at check-in ${fr['copay_due']}")
    # Today's visit of the same patient, as the clinical team documented it.
    now = scheduling.now(fd)
    enc = sandbox.system_session().create(
        {
            "resourceType": "Encounter",
            "status": "finished",
            "class": {"system": V3_ACT_CODE, "code": "AMB"},
            "subject": {"reference": patient},
            "participant": [{"individual": {"reference": "Practitioner/prac-dr.patel"}}],
            "period": {"start": now.isoformat(), "end": (now + timedelta(minutes=20)).isoformat()},
        }
    )
    claim = build_claim(
        billing,
        f"Encounter/{enc['id']}",
        diagnoses=["icd10cm|I10"],
        lines=[ClaimLine("procedure|OV-EST-3", (1,))],
        coverage=f"Coverage/{cov['id']}",
    )
    claim = claims.submit(billing, claim["id"])
    lines.append(f"Claim/{claim['id']} scrubbed clean and sent (${claim['total']['value']:.2f})")
    cr, pr = payments.post_era(billing, payer.adjudicate(billing, f"Claim/{claim['id']}"))
    lines.append(f"ERA posted: {cr['disposition']}, paid ${pr['paymentAmount']['value']:.2f}")
    check = ledger.reconcile(billing, scheduling.now(billing).date().isoformat())
    lines.append(
        f"Day sheet closing A/R ${check['day_sheet_closing']} = A/R aging ${check['aging_total']}: "
        + ("reconciles to the cent" if check["ok"] else "DOES NOT reconcile")
    )
    return lines
