"""Catalogue item 9 of EXERCISES.md: Day sheet, ledger and A/R aging.

Defines and registers ``reports/billing-totals`` (section "Running reports").
The package ``__init__`` imports the exercise modules in catalogue order; helpers shared
within the section are in ``common``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from ehr_sandbox.errors import ExerciseError
from ehr_sandbox.exercises.builtin.common import patient_facts, ref_id
from ehr_sandbox.exercises.builtin.reports.common import (
    AGING_BUCKETS,
    BILLING,
    _answer_of,
    _nothing,
    hand_in,
    handed_in,
)
from ehr_sandbox.exercises.grading import GradingContext
from ehr_sandbox.exercises.model import Check, Criterion, Exercise, Hint, Solution
from ehr_sandbox.exercises.registry import register

# ------------------------------------------------------------------------------------------
# 9. Day sheet, ledger and A/R aging
# ------------------------------------------------------------------------------------------
_BUCKET_BOUNDS = ((0, 30), (31, 60), (61, 90), (91, 120), (121, None))
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


def _day_sheet(
    claims: list[dict[str, Any]], responses: list[dict[str, Any]], day: str
) -> dict[str, str]:
    charges = sum(
        (_claim_total(c) for c in claims if str(c.get("created", ""))[:10] == day), Decimal(0)
    )
    todays = [_payment(r) for r in responses if str(r.get("created", ""))[:10] == day]
    return {
        "charges": _cents(charges),
        "payments": _cents(sum((p for p, _ in todays), Decimal(0))),
        "adjustments": _cents(sum((a for _, a in todays), Decimal(0))),
    }


def _ledger_balance(
    claims: list[dict[str, Any]], responses: list[dict[str, Any]], patient_id: str
) -> str:
    mine = {c["id"] for c in claims if ref_id(c.get("patient")) == patient_id}
    balance = sum((_claim_total(c) for c in claims if c["id"] in mine), Decimal(0))
    for r in responses:
        if ref_id(r.get("request")) in mine:
            paid, adjusted = _payment(r)
            balance -= paid + adjusted
    return _cents(balance)


def _ar_aging(
    claims: list[dict[str, Any]], responses: list[dict[str, Any]], as_of: str
) -> dict[str, str]:
    received: dict[str, Decimal] = {}
    for r in responses:
        if str(r.get("created", ""))[:10] <= as_of:
            paid, adjusted = _payment(r)
            claim = ref_id(r.get("request"))
            received[claim] = received.get(claim, Decimal(0)) + paid + adjusted
    totals = dict.fromkeys(AGING_BUCKETS, Decimal(0))
    for c in claims:
        created = str(c.get("created", ""))[:10]
        if not created or created > as_of or c.get("status") in ("entered-in-error", "cancelled"):
            continue
        balance = _claim_total(c) - received.get(c["id"], Decimal(0))
        if balance <= 0:
            continue
        age = (date.fromisoformat(as_of) - date.fromisoformat(created)).days
        for name, (lo, hi) in zip(AGING_BUCKETS, _BUCKET_BOUNDS, strict=True):
            if age >= lo and (hi is None or age <= hi):
                totals[name] += balance
    return {k: _cents(v) for k, v in totals.items()}


def _setup_billing(sandbox: Any, variant: Any) -> dict[str, Any]:
    billing = sandbox.login(BILLING)
    responses = sorted(billing.resources("ClaimResponse"), key=lambda r: r["id"])
    days = sorted({str(r["created"])[:10] for r in responses if _payment(r)[1] > 0})
    if not days:
        raise ExerciseError(
            "setup: no insurance payment with an adjustment in this sandbox; generate a larger sandbox"
        )
    charge_days = {str(c.get("created", ""))[:10] for c in billing.resources("Claim")}
    # A day with charges as well as payments and adjustments exercises every column.
    day = variant.pick([d for d in days if d in charge_days] or days, salt="day")
    paid_patients = sorted(
        {ref_id(r.get("patient")) for r in responses if ref_id(r.get("patient"))}
    )
    patient = billing.read("Patient", variant.pick(paid_patients, salt="patient"))
    return {
        "day": day,
        "as_of": sandbox.reference_date.isoformat(),
        **patient_facts(patient, "ledger"),
    }


def _billing_data(ctx: GradingContext) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    return ctx.all("Claim"), ctx.all("ClaimResponse")


def _day_sheet_totals(ctx: GradingContext) -> Check:
    f = ctx.facts
    claims, responses = _billing_data(ctx)
    want = _day_sheet(claims, responses, f["day"])
    expected = f"charges ${want['charges']}, payments ${want['payments']}, adjustments ${want['adjustments']} on {f['day']}"
    answer = _answer_of(ctx, "reports/billing-totals")
    if answer is None:
        return _nothing(expected)
    got = answer["day_sheet"]
    found = (
        f"charges ${got['charges']}, payments ${got['payments']}, adjustments ${got['adjustments']}"
    )
    if got == want:
        return Check(True, found, expected)
    mixed = (
        Decimal(got["payments"]) == Decimal(want["payments"]) + Decimal(want["adjustments"])
        and Decimal(want["adjustments"]) != 0
    )
    advice = ADJUSTMENT_ADVICE if mixed else "add up the day sheet's columns to the cent"
    return Check(False, found, expected, advice)


def _ledger_check(ctx: GradingContext) -> Check:
    f = ctx.facts
    claims, responses = _billing_data(ctx)
    want = _ledger_balance(claims, responses, f["ledger_id"])
    expected = f"{f['ledger_name']}'s balance ${want}"
    answer = _answer_of(ctx, "reports/billing-totals")
    if answer is None:
        return _nothing(expected)
    got = answer["ledger_balance"]
    ok = got == want
    return Check(
        ok,
        f"${got}",
        expected,
        ""
        if ok
        else "the balance is the ledger's last running balance (charges - payments - adjustments)",
    )


def _aging_check(ctx: GradingContext) -> Check:
    f = ctx.facts
    claims, responses = _billing_data(ctx)
    want = _ar_aging(claims, responses, f["as_of"])
    expected = "balances " + ", ".join(f"{k}: ${v}" for k, v in want.items())
    answer = _answer_of(ctx, "reports/billing-totals")
    if answer is None:
        return _nothing(expected)
    got = answer["ar_aging"]
    off = [k for k in AGING_BUCKETS if got[k] != want[k]]
    if not off:
        return Check(True, "every bucket to the cent", expected)
    return Check(
        False,
        "; ".join(f"{k}: ${got[k]}" for k in off),
        expected,
        f"take the `balance` column of the A/R aging report as of {f['as_of']}",
    )


def _billing_solution(att: Any) -> None:
    f, r = att.facts, att.session.reports
    sheet = r.run("day_sheet", date=f["day"]).to_pylist()
    ledger = r.run("patient_ledger", patient=f["ledger_id"]).to_pylist()
    aging = r.run("ar_aging", as_of=f["as_of"]).to_pylist()
    hand_in(
        att,
        {
            "day_sheet": {
                k: sum((row[k] for row in sheet), Decimal(0))
                for k in ("charges", "payments", "adjustments")
            },
            "ledger_balance": ledger[-1]["balance"] if ledger else 0,
            "ar_aging": {row["bucket"]: row["balance"] for row in aging},
        },
    )


def _billing_adjustments_as_payments(att: Any) -> None:
    _billing_solution(att)
    answer = handed_in(att.sandbox, att.exercise.id, att.student) or {}
    sheet = answer["day_sheet"]
    sheet["payments"] = Decimal(sheet["payments"]) + Decimal(sheet["adjustments"])
    sheet["adjustments"] = 0
    hand_in(att, answer)


BILLING_TOTALS = register(
    Exercise(
        id="reports/billing-totals",
        title="Day sheet, patient ledger and A/R aging",
        topic="reports",
        competencies=("VII.P.1", "VI.P.7"),
        minutes=20,
        role=BILLING,
        grader=BILLING,
        summary="Totals of the day sheet, one patient's ledger balance and the A/R aging, to the cent.",
        setup=_setup_billing,
        instructions=(
            "Month-end close. Using the practice's reports, find:\n\n"
            "1. the **day sheet totals of {day}**: charges, insurance payments and adjustments;\n"
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
            "adjustments-as-payments": Solution(
                _billing_adjustments_as_payments,
                fails="day sheet totals",
                message="a contractual adjustment is not a payment",
                description="post the payer's adjustments as payments",
            ),
        },
    )
)
