"""Posting an ERA with a denial and a contractual adjustment, then billing the patient's share.

The payer paid one line (with a CO-45 contractual adjustment and the patient's copay /
deductible / coinsurance) and denied another (CO-50, not medically necessary). The ERA is
posted once, as sent; the statement bills the patient only their share (never the contractual
adjustment nor a CO denial); the denial is left to be worked, not written off.
"""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from typing import Any

from ehr_sandbox.exercises.builtin.common import still_standing
from ehr_sandbox.exercises.builtin.front_office.common import (
    BILLING,
    check,
    insured_patients,
    local_day_start,
    op_of,
    visit,
    written,
)
from ehr_sandbox.exercises.grading import GradingContext
from ehr_sandbox.exercises.model import Criterion, Exercise, Expect, Hint, Scenario, Solution
from ehr_sandbox.workflows import coding, ledger, payer, payments
from ehr_sandbox.workflows.base import money, write

__all__ = ["POST_ERA", "denied_claim"]

CONTRACTUAL = "bill the patient only their share (copay, deductible, coinsurance); the contractual adjustment and a CO denial are never billed to the patient"


def denied_claim(
    sandbox: Any,
    variant: Any,
    *,
    payers: tuple[str, ...] = ("blueshield", "unityhealth"),
    ga: bool = False,
) -> dict[str, Any]:
    """Setup helper: a sent claim whose ECG line the payer will deny (not medically necessary),
    and the payer's ERA for it (not posted). ``ga``: the ECG line carries the GA modifier
    (waiver signed), so the denial is the patient's responsibility (PR-50)."""
    rng = variant.rng()
    p = variant.pick(insured_patients(sandbox, payers, username=BILLING), salt="patient")
    doc = rng.choice(["dr.patel", "dr.nguyen", "dr.okafor"])
    level = rng.choice(["OV-EST-3", "OV-EST-4"])
    v = visit(
        sandbox,
        p["id"],
        doc,
        start=local_day_start(sandbox.reference_date, "08:40"),
        conditions=[("J06.9", "Acute upper respiratory infection", "confirmed")],
        visit_code=level,
    )
    b = sandbox.login(BILLING)
    lines: list[dict[str, Any]] = [
        {"service": f"procedure|{level}", "pointers": [1]},
        {"service": "procedure|ECG-12", "pointers": [1]},
    ]
    if ga:
        lines[1]["modifiers"] = ["GA"]
    claim = coding.claim_resource(
        b, f"Encounter/{v['encounter']}", diagnoses=["icd10cm|J06.9"], lines=lines
    )
    sent = b.create({**claim, "status": "active"})
    era = payer.adjudicate(b, f"Claim/{sent['id']}")
    return {"patient": p, "encounter": v, "claim": sent, "era": era, "billing": b}


def _setup(sandbox: Any, variant: Any) -> Scenario:
    d = denied_claim(sandbox, variant)
    b, p, era = d["billing"], d["patient"], d["era"]
    cr = era["entry"][0]["resource"]
    share = Decimal(0)
    for it in cr["item"]:
        for adj in it["adjudication"]:
            code = adj.get("reason", {}).get("coding", [{}])[0].get("code")
            if code in ("1", "2", "3"):
                share += money(adj["amount"])
    before = ledger.balances(b, f"Patient/{p['id']}")["patient"]
    return Scenario(
        facts={
            "patient_id": p["id"],
            "claim": d["claim"]["id"],
            "era": era,
            "trace": era["entry"][1]["resource"]["paymentIdentifier"]["value"],
        },
        answer={
            "statement_total": str(before + share),
            "paid": str(money(cr["payment"]["amount"])),
        },
        protect=(f"Claim/{d['claim']['id']}",),
    )


def _posted(ctx: GradingContext) -> Any:
    f, a = ctx.facts, ctx.answer
    expected = "the ERA posted once, exactly as the payer sent it"
    crs = [
        v
        for v in written(ctx, "ClaimResponse")
        if v.get("request", {}).get("reference") == f"Claim/{f['claim']}"
        and v.get("meta", {}).get("versionId") == "1"
    ]
    prs = [
        v
        for v in written(ctx, "PaymentReconciliation")
        if (v.get("paymentIdentifier") or {}).get("value") == f["trace"]
    ]
    if len(crs) != 1 or len(prs) != 1:
        return check(
            False,
            f"{len(crs)} claim responses, {len(prs)} payments posted",
            expected,
            "post an ERA once: a second posting doubles the payment on the books",
        )
    sent = f["era"]["entry"][0]["resource"]
    if json.dumps(crs[0].get("item"), sort_keys=True) != json.dumps(
        sent["item"], sort_keys=True
    ) or money(prs[0]["paymentAmount"]) != money(a["paid"]):
        return check(
            False,
            "posted amounts differ from the ERA",
            expected,
            "post what the payer sent; disagreements are appealed, not edited",
        )
    if op_of(ctx, crs[0]) != "payments.post-era":
        return check(
            False,
            "posted by hand",
            expected,
            "post with payments.post_era so the batch is balanced",
        )
    return check(True, "posted once", expected)


def _statement(ctx: GradingContext) -> Any:
    a = ctx.answer
    pid = f"Patient/{ctx.facts['patient_id']}"
    expected = "one statement for the patient's balance after insurance (their share only)"
    invs = [
        v
        for v in still_standing(
            ctx, written(ctx, "Invoice"), current=True
        )  # as left: a cancelled one bills nobody
        if (v.get("subject") or {}).get("reference") == pid and v.get("status") == "issued"
    ]
    if len(invs) != 1:
        return check(False, f"{len(invs)} statements", expected, CONTRACTUAL)
    total = money(invs[0].get("totalNet", {"value": 0}))
    if total != money(a["statement_total"]):
        return check(False, f"statement for {total}", expected, CONTRACTUAL)
    return check(True, f"statement for {total}", expected)


def _denial_open(ctx: GradingContext) -> Any:
    f = ctx.facts
    expected = "the denied line left open to be worked (corrected, appealed or billed by rule), not written off"
    for v in written(ctx, "PaymentReconciliation"):
        for d in v.get("detail", []):
            kinds = {c.get("code") for c in d.get("type", {}).get("coding", [])}
            if (d.get("request") or {}).get("reference") in (
                f"Claim/{f['claim']}",
                f"Patient/{f['patient_id']}",
            ) and kinds & {"write-off", "transfer-to-patient"}:
                return check(
                    False,
                    f"PaymentReconciliation/{v['id']} ({', '.join(sorted(kinds))})",
                    expected,
                    "a denial is worked, not written off when posting",
                )
    return check(True, "denial left to work", expected)


def _era(att: Any) -> dict[str, Any]:
    return copy.deepcopy(json.loads(json.dumps(dict(att.facts)["era"])))


def _solution(att: Any, *, cancel_statement: bool = False) -> None:
    """The reference (``cancel_statement``: a wrong solution cancelling the statement after
    issuing it)."""
    s = att.session
    payments.post_era(s, _era(att))
    inv = payments.send_statement(s, f"Patient/{att.facts['patient_id']}")
    if cancel_statement:
        s.update({**inv, "status": "cancelled"})


def _billed_contractual(att: Any) -> None:
    s = att.session
    payments.post_era(s, _era(att))
    pid = f"Patient/{att.facts['patient_id']}"
    bal = ledger.balances(s, pid)["total"]
    s.create(
        {
            "resourceType": "Invoice",
            "status": "issued",
            "subject": {"reference": pid},
            "date": "2026-01-01",
            "totalNet": {"value": float(bal), "currency": "USD"},
            "totalGross": {"value": float(bal), "currency": "USD"},
        }
    )


def _tagged_by_hand(att: Any) -> None:
    """The ERA's ClaimResponse and deposit entered by hand with the payments.post-era tag
    typed in; the deposit's lines do not point to the ClaimResponse they pay."""
    s = att.session
    era = _era(att)
    cr, pr = (e["resource"] for e in era["entry"][:2])
    write(s, cr, operation="payments.post-era")
    detail = [{k: v for k, v in d.items() if k != "response"} for d in pr["detail"]]
    write(s, {**pr, "detail": detail}, operation="payments.post-era")
    payments.send_statement(s, f"Patient/{att.facts['patient_id']}")


def _posted_twice(att: Any) -> None:
    s = att.session
    cr, _ = payments.post_era(s, _era(att))
    dup = {k: v for k, v in cr.items() if k not in ("id", "meta")}
    s.create(dup)
    payments.send_statement(s, f"Patient/{att.facts['patient_id']}")


def _wrote_off(att: Any) -> None:
    _solution(att)
    s = att.session
    cr = s.search("ClaimResponse", request=f"Claim/{att.facts['claim']}").first()
    denied = sum(
        money(a["amount"])
        for it in cr["item"]
        for a in it["adjudication"]
        if a.get("reason", {}).get("coding", [{}])[0].get("code") == "50"
    )
    payments.write_off(
        s,
        f"Patient/{att.facts['patient_id']}",
        denied,
        reason="denied, not worth appealing",
        claim=f"Claim/{att.facts['claim']}",
        bucket="insurance",
        approved_by="dr.patel",
    )


def _edited_claim(att: Any) -> None:
    s = att.session
    c = s.read(f"Claim/{att.facts['claim']}")
    s.update({**c, "item": c["item"][:1], "total": c["item"][0]["net"]})
    _solution(att)


POST_ERA = Exercise(
    id="front-office/post-era",
    skip_traps=(
        "done-twice",
        "one-more-record",
    ),  # the EHR refuses the repeat (the ERA is posted once)
    title="Posting an ERA with a denial and a contractual adjustment",
    topic="front-office",
    topics=("billing", "insurance-claims"),
    competencies=("VII.P.1", "VIII.P.4"),
    minutes=15,
    role=BILLING,
    summary="Post the ERA once as sent, bill the patient's share only, leave the denial to be worked.",
    setup=_setup,
    instructions=(
        "The payer's electronic remittance (ERA, trace `{trace}`) for `Claim/{claim}` arrived: "
        "`att.facts['era']` (a ClaimResponse and a PaymentReconciliation). One line was paid with a "
        "contractual adjustment, one was denied.\n\nPost it, then send the patient "
        "(`Patient/{patient_id}`) their statement. Leave the denial for the denial work queue."
    ),
    criteria=(
        Criterion(
            "ERA posted once as sent",
            2,
            _posted,
            "Posting must match the remittance to the cent, once (ASC X12 835 balancing; MAERB VII.P.1).",
        ),
        Criterion(
            "patient billed their share only",
            3,
            _statement,
            "Balance billing the contractual adjustment breaks the payer contract and the patient's trust (payer contracts; MAERB VII.P.1).",
        ),
        Criterion(
            "denial left to work",
            1,
            _denial_open,
            "A denial is corrected, appealed or billed by rule, not written off at posting (revenue-cycle practice).",
        ),
    ),
    expects=(
        Expect("ClaimResponse", ops=("create",), patients=("patient_id",), at_most=1),
        Expect("PaymentReconciliation", ops=("create",), at_most=1),
        Expect("Invoice", ops=("create",), patients=("patient_id",), at_most=1),
    ),
    hints=(
        Hint(
            "`payments.post_era(session, era)`, then `payments.send_statement(session, patient)` bills the patient balance from the ledger."
        ),
    ),
    solution=Solution(_solution, description="post_era, then send_statement"),
    wrong_solutions={
        "statement-cancelled": Solution(
            lambda att: _solution(att, cancel_statement=True),
            fails="patient billed their share only",
            message="bill the patient only their share",
            description="the statement issued, then cancelled (it passed the statement "
            "criterion before, caught only by collateral)",
        ),
        "billed-contractual": Solution(
            _billed_contractual,
            fails="patient billed their share only",
            message="contractual adjustment",
            description="statement for the whole unpaid charge",
        ),
        "post-tag-by-hand": Solution(
            _tagged_by_hand,
            fails="ERA posted once as sent",
            message="so the batch is balanced",
            description="entered the ERA by hand with the payments.post-era tag typed in, deposit not tied to it",
        ),
        "posted-twice": Solution(
            _posted_twice,
            fails="ERA posted once as sent",
            message="post an ERA once",
            description="the ClaimResponse entered a second time",
        ),
        "wrote-off-denial": Solution(
            _wrote_off,
            fails="denial left to work",
            message="not written off",
            description="wrote off the denied line",
        ),
        "edited-claim": Solution(
            _edited_claim,
            fails="no collateral damage",
            message="the answer key depends on",
            description="removed the denied line from the sent claim",
        ),
    },
)
