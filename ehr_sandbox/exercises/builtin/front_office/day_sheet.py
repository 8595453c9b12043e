"""Catalogue item 9 (part): posting patient payments and producing the day sheet that reconciles.

Three patients pay toward their balances: cash, a check (with its number), a card. Each is
posted to the right account with its method; the day sheet's receipts and closing A/R and the
deposit slip (cash and checks only: card payments settle through the processor) are handed in
and must reconcile to the cent.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from ehr_sandbox.exercises.builtin.common import patient_label
from ehr_sandbox.exercises.builtin.front_office.common import (
    BILLING,
    check,
    hand_in,
    handed_in,
    payment_typed_in,
    standing_patient_payments,
)
from ehr_sandbox.exercises.grading import GradingContext
from ehr_sandbox.exercises.model import Criterion, Exercise, Expect, Hint, Scenario, Solution
from ehr_sandbox.workflows import ledger, payments
from ehr_sandbox.workflows.base import money
from synthetic.systems import PROCESS_PRIORITY

__all__ = ["DAY_SHEET"]

DEPOSIT = (
    "the deposit slip lists cash and checks only; card payments settle through the card processor"
)


def _setup(sandbox: Any, variant: Any) -> Scenario:
    rng = variant.rng()
    b = sandbox.login(BILLING)
    day = sandbox.reference_date.isoformat()
    owing = []
    for pid in sorted({c["patient"]["reference"] for c in b.search("Claim").fetch()}):
        bal = ledger.balances(b, pid)["patient"]
        if bal >= Decimal("15.00"):
            owing.append((pid, bal))
    chosen = rng.sample(owing, 3)
    methods = ["cash", "check", "card"]
    rng.shuffle(methods)
    pays = []
    for (pid, bal), method in zip(chosen, methods, strict=True):
        amount = min(bal, money(rng.randint(1000, 6000) / 100))
        pat = b.read(pid)
        pays.append(
            {
                "patient_id": pid.split("/")[1],
                "patient_name": patient_label(pat),
                "amount": str(amount),
                "method": method,
                "number": str(rng.randint(1001, 9999)) if method == "check" else "",
            }
        )
    total = sum(money(p["amount"]) for p in pays)
    sheet = ledger.day_sheet(b, day)
    deposit = sum(money(p["amount"]) for p in pays if p["method"] in ("cash", "check"))
    claims = [
        c["id"]
        for c in b.search("Claim").fetch()
        if c["patient"]["reference"] in {pid for pid, _ in chosen}
    ]
    return Scenario(
        facts={
            "day": day,
            "payments": pays,
            "payment_lines": "\n".join(
                f"- **{p['patient_name']}** (`Patient/{p['patient_id']}`): ${p['amount']} by {p['method']}"
                + (f" no. {p['number']}" if p["number"] else "")
                for p in pays
            ),
        },
        answer={
            "receipts": str(money(sheet["totals"]["receipts"] + total)),
            "deposit": str(
                money(
                    sheet["receipts_by_method"].get("cash", Decimal(0))
                    + sheet["receipts_by_method"].get("check", Decimal(0))
                    + deposit
                )
            ),
            "closing_balance": str(money(sheet["closing_balance"] - total)),
        },
        protect=tuple(f"Claim/{c}" for c in claims),
    )


def _posted(ctx: GradingContext) -> Any:
    expected = (
        "each payment on the right patient's account, for the amount and by the method received"
    )
    # as they stand: a payment posted cancelled, in error or as a refund took no money in
    posted = standing_patient_payments(ctx)
    want = {
        (p["patient_id"], str(money(p["amount"])), p["method"], p["number"])
        for p in ctx.facts["payments"]
    }
    got = set()
    for v in posted:
        method = next(
            (
                c.get("code")
                for c in (v.get("paymentIdentifier") or {}).get("type", {}).get("coding", [])
            ),
            None,
        )
        for d in v.get("detail", []):
            pid = (d.get("request") or {}).get("reference", "").split("/")[-1]
            number = (
                (v.get("paymentIdentifier") or {}).get("value", "") if method == "check" else ""
            )
            got.add((pid, str(money(d["amount"])), method, number))
    if got != want:
        wrong = sorted(got - want)
        return check(
            False,
            f"posted {sorted(got)}",
            expected,
            "post each payment on the right patient, with how the patient paid (and the check number)"
            if wrong
            else "post every payment received",
        )
    return check(True, f"{len(got)} payments posted", expected)


def _amount(got: dict[str, Any] | None, key: str) -> Decimal | None:
    try:
        return money((got or {}).get(key))
    except Exception:  # noqa: BLE001 - a malformed amount is a wrong answer
        return None


def _sheet(ctx: GradingContext) -> Any:
    a = ctx.answer
    expected = "the day sheet's receipts and closing A/R balance, to the cent"
    got = handed_in(ctx)
    if _amount(got, "receipts") != money(a["receipts"]) or _amount(got, "closing_balance") != money(
        a["closing_balance"]
    ):
        return check(
            False,
            f"handed in receipts {(got or {}).get('receipts')}, closing {(got or {}).get('closing_balance')}",
            expected,
            "run the day sheet after posting: previous A/R + charges - receipts - adjustments = closing A/R",
        )
    return check(True, "day sheet reconciles", expected)


def _deposit(ctx: GradingContext) -> Any:
    expected = "the deposit slip total (cash and checks received today)"
    got = handed_in(ctx)
    if _amount(got, "deposit") != money(ctx.answer["deposit"]):
        return check(False, f"handed in deposit {(got or {}).get('deposit')}", expected, DEPOSIT)
    return check(True, "deposit matches", expected)


def _post(
    att: Any, *, swap_check: bool = False, wrong_patient: bool = False, status: str = ""
) -> None:
    """Post the payments received (wrong solutions: ``swap_check`` a check as cash,
    ``wrong_patient`` the first on the second patient, ``status`` typed in by hand so)."""
    s = att.session
    pays = [dict(p) for p in att.facts["payments"]]
    for n, p in enumerate(pays):
        pid = p["patient_id"]
        if wrong_patient and n == 0:
            pid = pays[1]["patient_id"]
        method = "cash" if swap_check and p["method"] == "check" else p["method"]
        if status:
            payment_typed_in(
                s, f"Patient/{pid}", p["amount"], method=method, number=p["number"], status=status
            )
            continue
        payments.desk_payment(
            s, f"Patient/{pid}", p["amount"], method=method, number=p["number"] or None
        )


def _hand(att: Any, *, card_in_deposit: bool = False, add_received: bool = False) -> None:
    """Hand in the day sheet's figures (wrong solutions: ``card_in_deposit``; ``add_received``
    the payments received added by hand to a sheet they are not on)."""
    s = att.session
    sheet = ledger.day_sheet(s, att.facts["day"])
    slip = ledger.deposit_slip(s, att.facts["day"])
    deposit = slip["total"]
    receipts, closing = sheet["totals"]["receipts"], sheet["closing_balance"]
    if card_in_deposit:
        deposit += sheet["receipts_by_method"].get("card", Decimal(0))
    if add_received:
        pays = att.facts["payments"]
        receipts += sum(money(p["amount"]) for p in pays)
        closing -= sum(money(p["amount"]) for p in pays)
        deposit += sum(money(p["amount"]) for p in pays if p["method"] != "card")
    hand_in(
        att,
        {"receipts": str(receipts), "deposit": str(deposit), "closing_balance": str(closing)},
    )


def _solution(att: Any) -> None:
    _post(att)
    _hand(att)


def _card_in_deposit(att: Any) -> None:
    _post(att)
    _hand(att, card_in_deposit=True)


def _check_as_cash(att: Any) -> None:
    _post(att, swap_check=True)
    _hand(att)


def _posted_in_error(att: Any) -> None:
    """Every payment typed in as entered-in-error; the figures handed in add them by hand."""
    _post(att, status="entered-in-error")
    _hand(att, add_received=True)


def _wrong_patient(att: Any) -> None:
    _post(att, wrong_patient=True)
    _hand(att)


def _edited_claim(att: Any) -> None:
    s = att.session
    pid = att.facts["payments"][0]["patient_id"]
    c = s.search("Claim", patient=f"Patient/{pid}").first()
    s.update(
        {
            **c,
            "priority": {
                "coding": [
                    {
                        "system": PROCESS_PRIORITY,
                        "code": "stat",
                    }
                ]
            },
        }
    )
    _solution(att)


DAY_SHEET = Exercise(
    id="front-office/day-sheet",
    title="Posting patient payments and the day sheet that reconciles",
    topic="front-office",
    topics=("billing", "reports"),
    competencies=("VII.P.1", "VII.P.3"),
    minutes=15,
    role=BILLING,
    # generated patients pay their copays at the desk and most statements: a clinic of 40
    # has enough patients who still owe a balance
    patients=40,
    summary="Post cash, check and card payments; hand in day-sheet receipts, closing A/R and the deposit.",
    setup=_setup,
    instructions=(
        "Today ({day}) these patients paid toward their balances:\n\n{payment_lines}\n\n"
        "Post each payment, then run the day sheet and the deposit slip and hand in "
        "`front_office.common.hand_in(att, {{'receipts': .., 'deposit': .., 'closing_balance': ..}})` "
        "(amounts as text with cents)."
    ),
    criteria=(
        Criterion(
            "payments posted to the right accounts",
            3,
            _posted,
            "Each payment belongs on the account of the patient who paid, with its method (MAERB VII.P.1).",
        ),
        Criterion(
            "day sheet reconciles",
            2,
            _sheet,
            "The day sheet proves the books: previous balance plus the day's activity equals the closing balance (MAERB VII.P.1).",
        ),
        Criterion(
            "deposit slip right",
            1,
            _deposit,
            "The bank deposit must match the cash and checks received (cash controls).",
        ),
    ),
    expects=(Expect("PaymentReconciliation", ops=("create",), at_most=3), Expect("submit-report")),
    hints=(
        Hint(
            "`payments.desk_payment(...)` per payment; `ledger.day_sheet(session, day)` and `ledger.deposit_slip(session, day)`."
        ),
    ),
    solution=Solution(_solution, description="desk_payment x3, day_sheet, deposit_slip, hand in"),
    wrong_solutions={
        "card-in-deposit": Solution(
            _card_in_deposit,
            fails="deposit slip right",
            message="cash and checks only",
            description="counted the card payment in the bank deposit",
        ),
        "check-as-cash": Solution(
            _check_as_cash,
            fails="payments posted to the right accounts",
            message="how the patient paid",
            description="posted the check as cash",
        ),
        "posted-in-error": Solution(
            _posted_in_error,
            fails="payments posted to the right accounts",
            message="post every payment received",
            description="the payments typed in as entered in error, the sheet's figures "
            "handed in with them added by hand (full marks before)",
        ),
        "payment-on-wrong-patient": Solution(
            _wrong_patient,
            fails="payments posted to the right accounts",
            message="right patient",
            description="posted a payment on another patient's account",
        ),
        "edited-claim": Solution(
            _edited_claim,
            fails="no collateral damage",
            message="the answer key depends on",
            description="changed a claim of a paying patient",
        ),
    },
)
