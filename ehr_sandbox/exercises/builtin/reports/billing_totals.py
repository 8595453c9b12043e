"""Catalogue item 9 of EXERCISES.md: Day sheet, ledger and A/R aging.

Defines and registers ``reports/billing-totals`` (section "Running reports").
The package ``__init__`` imports the exercise modules in catalogue order; helpers shared
within the section are in ``common``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from ehr_sandbox.errors import ExerciseError
from ehr_sandbox.exercises.builtin.common import patient_facts, ref_id
from ehr_sandbox.exercises.builtin.reports.common import (
    AGING_BUCKETS,
    BILLING,
    answer_of,
    hand_in,
    nothing_found,
    report_expects,
)
from ehr_sandbox.exercises.grading import GradingContext
from ehr_sandbox.exercises.model import Check, Criterion, Exercise, Hint, Scenario, Solution
from ehr_sandbox.exercises.registry import register
from ehr_sandbox.reports import load_report
from ehr_sandbox.workflows import ledger
from ehr_sandbox.workflows.payer import secondary_of

# ------------------------------------------------------------------------------------------
# 9. Day sheet, ledger and A/R aging
# ------------------------------------------------------------------------------------------
ADJUSTMENT_ADVICE = (
    "a contractual adjustment is not a payment: post it in the adjustments column, or the "
    "practice's collections look larger than they are"
)


def _amount(value: Any) -> Decimal:
    if isinstance(value, Mapping):
        value = value.get("value")
    return Decimal(str(value)) if value is not None else Decimal(0)


def _cents(d: Decimal) -> str:
    return str(d.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def _claim_total(claim: Mapping[str, Any]) -> Decimal:
    return _amount(claim.get("total"))


def _payment(cr: Mapping[str, Any]) -> tuple[Decimal, Decimal]:
    pay = cr.get("payment") or {}
    return _amount(pay.get("amount")), _amount(pay.get("adjustment"))


def _books(billing: Any, day: str, patient_id: str, as_of: str) -> dict[str, Any]:
    """The answer key from :mod:`ehr_sandbox.workflows.ledger`, the accounting model the
    catalogue's billing reports follow (day sheet receipts are its payments column)."""
    totals = ledger.day_sheet(billing, day)["totals"]
    rows = ledger.ledger(billing, f"Patient/{patient_id}")
    aging = ledger.ar_aging(billing, as_of)["buckets"]
    return {
        "day_sheet": {
            "charges": _cents(totals["charges"]),
            "payments": _cents(totals["receipts"]),
            "adjustments": _cents(totals["adjustments"]),
        },
        "ledger_balance": _cents(rows[-1]["balance"] if rows else Decimal(0)),
        "ar_aging": {
            name: _cents(aging[label]["insurance"] + aging[label]["patient"])
            for name, (_lo, _hi, label) in zip(AGING_BUCKETS, ledger.AGING_BUCKETS, strict=True)
        },
    }


def _open_claim(template: Mapping[str, Any], created: date) -> dict[str, Any]:
    """A copy of a claim, submitted on ``created`` and not yet answered by the payer."""
    claim = copy.deepcopy(dict(template))
    for key in ("id", "meta", "text"):
        claim.pop(key, None)
    day = created.isoformat()
    claim["created"] = day
    claim["status"] = "active"
    claim["billablePeriod"] = {"start": day, "end": day}
    for item in claim.get("item", []):
        item["servicedDate"] = day
    return claim


def _setup_billing(sandbox: Any, variant: Any) -> Scenario:
    """Pick the day, the ledger and the as-of date; plant two open claims at an aging boundary.

    Every variant has the three traps: the day has insurance adjustments, the ledger patient's
    payer adjusted a claim, and one open claim is exactly N days old (N a bucket's upper bound)
    and one N + 1 days old, so counting a claim's age off by one moves money between buckets.
    """
    rng = variant.rng()
    system = sandbox.system_session()
    responses = sorted(system.resources("ClaimResponse"), key=lambda r: r["id"])
    claims = sorted(system.resources("Claim"), key=lambda c: c["id"])
    days = sorted({str(r["created"])[:10] for r in responses if _payment(r)[1] > 0})
    if not days:
        raise ExerciseError(
            "setup: no insurance payment with an adjustment in this sandbox; generate a larger sandbox"
        )
    charge_days = {str(c.get("created", ""))[:10] for c in claims}
    # A day with charges as well as payments and adjustments exercises every column.
    day = variant.pick([d for d in days if d in charge_days] or days, salt="day")
    adjusted = sorted(
        {
            ref_id(r.get("patient"))
            for r in responses
            if ref_id(r.get("patient")) and _payment(r)[1] > 0
        }
    )
    patient = system.read("Patient", variant.pick(adjusted, salt="patient"))
    as_of = sandbox.reference_date - timedelta(days=rng.randint(0, 14))
    boundary = variant.pick([30, 60, 90, 120], salt="boundary")
    # a crossover claim only moves a balance to the secondary plan: plant first claims
    templates = [
        c for c in claims if _claim_total(c) > 0 and c.get("item") and secondary_of(c) is None
    ]
    billing = sandbox.login(BILLING)
    planted = []
    for age in (boundary, boundary + 1):
        template = variant.pick(templates, salt=f"claim-{age}")
        planted.append(billing.create(_open_claim(template, as_of - timedelta(days=age)))["id"])
    claims = list(billing.resources("Claim"))
    responses = list(billing.resources("ClaimResponse"))
    books = _books(billing, day, patient["id"], as_of.isoformat())
    return Scenario(
        facts={
            "day": day,
            "as_of": as_of.isoformat(),
            **patient_facts(patient, "ledger"),
        },
        answer={
            **books,
            "boundary_claims": planted,
        },
        protect=tuple(
            sorted(
                [f"Claim/{c['id']}" for c in claims]
                + [f"ClaimResponse/{r['id']}" for r in responses]
            )
        ),
    )


KEY_CHANGED = "use the reports as the books stood when you started: posting, voiding or editing transactions to make the totals fit changes the answer key"


def _day_sheet_totals(ctx: GradingContext) -> Check:
    f = ctx.facts
    want = ctx.answer["day_sheet"]
    expected = (
        f"the day sheet totals of {f['day']} (charges, payments, adjustments), each to the cent"
    )
    answer = answer_of(ctx, "reports/billing-totals")
    if answer is None:
        return nothing_found(expected)
    got = answer["day_sheet"]
    found = (
        f"charges ${got['charges']}, payments ${got['payments']}, adjustments ${got['adjustments']}"
    )
    if got == want:
        return Check(True, found, expected)
    wrong = [k for k in ("charges", "payments", "adjustments") if got[k] != want[k]]
    mixed = (
        Decimal(got["payments"]) == Decimal(want["payments"]) + Decimal(want["adjustments"])
        and Decimal(want["adjustments"]) != 0
    )
    advice = (
        ADJUSTMENT_ADVICE
        if mixed
        else f"add up the day sheet's columns to the cent ({', '.join(wrong)} do not match the day's postings)"
    )
    return Check(False, found + f" ({', '.join(wrong)} wrong)", expected, advice)


def _ledger_check(ctx: GradingContext) -> Check:
    f = ctx.facts
    want = ctx.answer["ledger_balance"]
    expected = f"{f['ledger_name']}'s balance as the patient ledger ends"
    answer = answer_of(ctx, "reports/billing-totals")
    if answer is None:
        return nothing_found(expected)
    got = answer["ledger_balance"]
    if got == want:
        return Check(True, f"${got}", expected)
    return Check(
        False,
        f"${got}, which is not the ledger's balance",
        expected,
        "the balance is the ledger's last running balance: charges minus payments minus "
        "contractual adjustments and write-offs, plus refunds",
    )


def _aging_check(ctx: GradingContext) -> Check:
    f = ctx.facts
    want = ctx.answer["ar_aging"]
    expected = f"the open balance of every aging bucket as of {f['as_of']}, to the cent"
    answer = answer_of(ctx, "reports/billing-totals")
    if answer is None:
        return nothing_found(expected)
    got = answer["ar_aging"]
    off = [k for k in AGING_BUCKETS if got[k] != want[k]]
    if not off:
        return Check(True, "every bucket to the cent", expected)
    return Check(
        False,
        "wrong buckets: " + "; ".join(f"{k} (you gave ${got[k]})" for k in off),
        expected,
        f"a claim's age is as-of day minus its service day ({f['as_of']} minus the day of service); "
        "0-30 includes day 30 and 31-60 starts at day 31; take the `balance` column of the "
        "A/R aging report",
    )


def _billing_answer(att: Any) -> dict[str, Any]:
    f, r = att.facts, att.session.reports
    sheet = r.run("day_sheet", date=f["day"]).to_pylist()
    ledger = r.run("patient_ledger", patient=f["ledger_id"]).to_pylist()
    aging = r.run("ar_aging", as_of=f["as_of"]).to_pylist()
    return {
        "day_sheet": {
            k: sum((row[k] for row in sheet), Decimal(0))
            for k in ("charges", "payments", "adjustments")
        },
        "ledger_balance": ledger[-1]["balance"] if ledger else 0,
        "ar_aging": {row["bucket"]: row["balance"] for row in aging},
    }


def _billing_solution(att: Any) -> None:
    hand_in(att, _billing_answer(att))


def _billing_adjustments_as_payments(att: Any) -> None:
    answer = _billing_answer(att)
    sheet = answer["day_sheet"]
    sheet["payments"] = Decimal(sheet["payments"]) + Decimal(sheet["adjustments"])
    sheet["adjustments"] = 0
    hand_in(att, answer)


def _billing_aging_off_by_one(att: Any) -> None:
    # The aging query with buckets 0-29, 30-59, ...: a claim exactly 30 days old lands in 31-60.
    s, f = att.session, att.facts
    answer = _billing_answer(att)
    right = "('0-30', 0, 30, 1), ('31-60', 31, 60, 2), ('61-90', 61, 90, 3), ('91-120', 91, 120, 4), ('>120', 121, NULL, 5)"
    shifted = "('0-30', 0, 29, 1), ('31-60', 30, 59, 2), ('61-90', 60, 89, 3), ('91-120', 90, 119, 4), ('>120', 120, NULL, 5)"
    sql = load_report("ar_aging").sql
    if right not in sql:
        raise ExerciseError("wrong solution: the ar_aging report no longer lists its bucket bounds")
    rows = s.reports.sql(sql.replace(right, shifted), as_of=f["as_of"]).to_pylist()
    answer["ar_aging"] = {row["bucket"]: row["balance"] for row in rows}
    hand_in(att, answer)


def _billing_ledger_without_adjustments(att: Any) -> None:
    s, f = att.session, att.facts
    answer = _billing_answer(att)
    rows = s.reports.run("patient_ledger", patient=f["ledger_id"]).to_pylist()
    answer["ledger_balance"] = sum(
        (r["charge"] - r["payment"] + r["refund"] for r in rows), Decimal(0)
    )
    hand_in(att, answer)


def _billing_write_off(att: Any) -> None:
    # Harm and answer-key change: write the ledger patient's claims down to what was paid.
    s, f = att.session, att.facts
    for claim in s.search("Claim", patient=f"Patient/{f['ledger_id']}").fetch():
        claim["total"] = {**claim.get("total", {}), "value": 0}
        for item in claim.get("item", []):
            item["net"] = {**item.get("net", {}), "value": 0}
        s.update(claim)
    _billing_solution(att)


def _billing_void_old_claims(att: Any) -> None:
    # Answer-key change: cancel the open claims that make the aging awkward.
    s, f = att.session, att.facts
    for row in s.reports.sql(
        "SELECT id FROM claim WHERE substr(created, 1, 10) < $d AND status = 'active'",
        d=f["as_of"],
    ).to_pylist()[-2:]:
        claim = s.read("Claim", row["id"])
        claim["status"] = "cancelled"
        s.update(claim)
    _billing_solution(att)


BILLING_TOTALS = register(
    Exercise(
        id="reports/billing-totals",
        skip_traps=("done-twice", "one-more-record"),  # a report handed in again replaces the first
        title="Day sheet, patient ledger and A/R aging",
        topic="reports",
        competencies=("VII.P.1", "VI.P.7"),
        minutes=20,
        role=BILLING,
        grader=BILLING,
        summary="Totals of the day sheet, one patient's ledger balance and the A/R aging, to the cent.",
        topics=("reports", "billing", "insurance-claims"),
        expects=report_expects(),
        setup=_setup_billing,
        instructions=(
            "Month-end close. Using the practice's reports, find:\n\n"
            "1. the **day sheet totals of {day}**: charges, payments (insurers' and patients') and adjustments;\n"
            "2. the **ledger balance** of **{ledger_name}** (MRN {ledger_mrn});\n"
            "3. the **A/R aging** balance of every bucket (0-30, 31-60, 61-90, 91-120, >120) as of **{as_of}**.\n\n"
            "Hand in amounts in USD (to the cent):\n\n"
            "```python\nfrom ehr_sandbox.exercises.builtin.reports import hand_in\n"
            'hand_in(att, {{"day_sheet": {{"charges": ..., "payments": ..., "adjustments": ...}},\n'
            '              "ledger_balance": ..., "ar_aging": {{"0-30": ..., "31-60": ..., ...}}}})\n```\n\n'
            "Then call `att.check()`."
        ),
        criteria=(
            Criterion(
                "day sheet totals",
                3,
                _day_sheet_totals,
                "Charges, payments and adjustments are posted separately so the day sheet balances and collections are reported truthfully (MAERB VII.P.1).",
            ),
            Criterion(
                "ledger balance",
                2,
                _ledger_check,
                "A patient's statement must show what they really owe (MAERB VII.P.1).",
            ),
            Criterion(
                "A/R aging",
                2,
                _aging_check,
                "Aging drives follow-up of unpaid claims before the payer's filing limits run out (MAERB VII.P.1).",
            ),
        ),
        hints=(
            Hint(
                "`day_sheet`, `patient_ledger` and `ar_aging` are catalogue reports; `.to_pandas()` sums columns."
            ),
            Hint(
                "The payer's `payment.adjustment` is the contractual write-off: it goes in the adjustments column.",
                cost=1,
            ),
        ),
        solution=Solution(
            _billing_solution,
            description="sum the day sheet columns, take the ledger's last balance and the aging balances",
        ),
        wrong_solutions={
            "aging-off-by-one": Solution(
                _billing_aging_off_by_one,
                fails="A/R aging",
                message="0-30 includes day 30",
                description="aging buckets 0-29, 30-59, ...: a claim 30 days old in 31-60",
            ),
            "ledger-without-adjustments": Solution(
                _billing_ledger_without_adjustments,
                fails="ledger balance",
                message="minus contractual adjustments",
                description="ledger balance as charges minus payments only",
            ),
            "write-off-to-fit": Solution(
                _billing_write_off,
                fails="ledger balance",
                message="not the ledger's balance",
                description="edit the patient's claims down, then run the reports (harm, answer-key change)",
            ),
            "cancel-old-claims": Solution(
                _billing_void_old_claims,
                fails="A/R aging",
                message="wrong buckets",
                description="cancel two open claims, then run the aging (answer-key change)",
            ),
            "adjustments-as-payments": Solution(
                _billing_adjustments_as_payments,
                fails="day sheet totals",
                message="a contractual adjustment is not a payment",
                description="post the payer's adjustments as payments",
            ),
        },
    )
)
