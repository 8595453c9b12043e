"""Working a denial: correct and resubmit, or bill the patient.

A posted ERA denied the ECG line as not medically necessary. In one variant the note documents
palpitations that were not coded (CO-50: a coding error, corrected and resubmitted as a
replacement claim); in the other the patient signed a waiver before the test and the claim
carried modifier GA (PR-50: the patient's responsibility, billed on a statement). The original
claim is never edited and nothing is written off.
"""

from __future__ import annotations

import contextlib
from typing import Any

from ehr_sandbox.exercises.builtin.common import still_standing
from ehr_sandbox.exercises.builtin.front_office.common import (
    BILLING,
    check,
    claim_misstates_visit,
    insured_patients,
    local_day_start,
    visit,
    written,
)
from ehr_sandbox.exercises.grading import GradingContext
from ehr_sandbox.exercises.model import Criterion, Exercise, Expect, Hint, Scenario, Solution
from ehr_sandbox.workflows import claims, coding, ledger, payer, payments
from ehr_sandbox.workflows.base import RuleRefused, money
from ehr_sandbox.workflows.coding import ClaimLine, claim_codes
from ehr_sandbox.workflows.scrubber import scrub

__all__ = ["WORK_DENIAL"]

READ_GROUP = "read the denial's group code: a CO denial caused by a coding error is corrected and resubmitted; a PR denial (waiver signed, modifier GA) is billed to the patient"


def _setup(sandbox: Any, variant: Any) -> Scenario:
    rng = variant.rng()
    kind = variant.pick(["co", "pr"], salt="kind")
    p = variant.pick(
        insured_patients(sandbox, ("blueshield", "unityhealth"), username=BILLING), salt="patient"
    )
    doc = rng.choice(["dr.patel", "dr.nguyen", "dr.okafor"])
    conds = [("J06.9", "Acute upper respiratory infection", "confirmed")]
    if kind == "co":
        conds.append(("R00.2", "Palpitations", "confirmed"))
    v = visit(
        sandbox,
        p["id"],
        doc,
        start=local_day_start(sandbox.reference_date, "10:00"),
        conditions=conds,
        visit_code="OV-EST-3",
    )
    b = sandbox.login(BILLING)
    lines: list[dict[str, Any]] = [
        {"service": "procedure|OV-EST-3", "pointers": [1]},
        {"service": "procedure|ECG-12", "pointers": [1]},
    ]
    if kind == "pr":
        lines[1]["modifiers"] = ["GA"]
    claim = coding.claim_resource(
        b, f"Encounter/{v['encounter']}", diagnoses=["icd10cm|J06.9"], lines=lines
    )
    sent = b.create({**claim, "status": "active"})
    cr, _ = payments.post_era(b, payer.adjudicate(b, f"Claim/{sent['id']}"))
    denial = next(
        a
        for it in cr["item"]
        for a in it["adjudication"]
        if a.get("reason", {}).get("coding", [{}])[0].get("code") == "50"
    )
    group = denial["category"]["coding"][0]["code"]
    note = (
        "Note: URI symptoms; the patient also reported palpitations for a week (documented as R00.2); ECG done."
        if kind == "co"
        else "Note: URI symptoms; the patient asked for an ECG. Told it is likely not covered; signed the waiver before the test (claim line carries modifier GA)."
    )
    return Scenario(
        facts={
            "patient_id": p["id"],
            "claim": sent["id"],
            "encounter": v["encounter"],
            "denial": f"{group}-50 (N115)",
            "note": note,
        },
        answer={
            "kind": kind,
            # what the patient owes after insurance, fixed now: the statement must say it
            "patient_balance": str(ledger.balances(b, f"Patient/{p['id']}")["patient"]),
        },
        protect=(f"ClaimResponse/{cr['id']}",),
    )


def _replacements(ctx: GradingContext) -> list[dict[str, Any]]:
    ref = f"Claim/{ctx.facts['claim']}"
    out = {}
    for v in written(ctx, "Claim"):
        if any((r.get("claim") or {}).get("reference") == ref for r in v.get("related", [])):
            out[v["id"]] = ctx.read(f"Claim/{v['id']}") or v
    return list(out.values())


def _statements(ctx: GradingContext) -> list[dict[str, Any]]:
    pid = f"Patient/{ctx.facts['patient_id']}"
    return [v for v in written(ctx, "Invoice") if (v.get("subject") or {}).get("reference") == pid]


def _action(ctx: GradingContext) -> Any:
    kind = ctx.answer["kind"]
    expected = "the action the denial calls for"
    reps = [r for r in _replacements(ctx) if r.get("status") == "active"]
    stmts = _statements(ctx)
    if kind == "co":
        billed = sorted(
            ln["service"] for ln in claim_codes(_first(ctx, f"Claim/{ctx.facts['claim']}"))[1]
        )
        enc = f"Encounter/{ctx.facts['encounter']}"
        good = [
            r
            for r in reps
            if "icd10cm|R00.2" in claim_codes(r)[0]
            and not scrub(ctx.session, r)
            # the correction is in the diagnoses: the services the visit had are billed as
            # before, once each, for that day (not dropped, not upcoded, not multiplied)
            and sorted(ln["service"] for ln in claim_codes(r)[1]) == billed
            and claim_misstates_visit(ctx, r, enc) is None
        ]
        if len(good) == 1 and not stmts:
            return check(True, f"corrected claim Claim/{good[0]['id']}", expected)
        return check(
            False,
            f"{len(reps)} replacement claim(s) ({len(good)} correcting only what was wrong), "
            f"{len(stmts)} statement(s)",
            expected,
            READ_GROUP + "; the corrected claim bills the services of the visit as the original "
            "did, once each, with the diagnosis that supports them",
        )
    # what stands: a statement issued and then cancelled bills nobody
    issued = [
        v
        for v in still_standing(ctx, stmts, current=True, patient_id=ctx.facts["patient_id"])
        if v.get("status") == "issued"
    ]
    if issued and not reps:
        wrong = [
            v
            for v in issued
            if money((v.get("totalNet") or {}).get("value", "x"))
            != money(ctx.answer["patient_balance"])
        ]
        if wrong:
            return check(
                False,
                f"a statement for {(wrong[0].get('totalNet') or {}).get('value')}",
                expected,
                "a PR denial is billed to the patient for their balance after insurance, as the "
                "ledger shows it (payments.send_statement), not for an amount typed in",
            )
        return check(True, "patient billed", expected)
    return check(
        False, f"{len(reps)} replacement claim(s), {len(stmts)} statement(s)", expected, READ_GROUP
    )


def _original(ctx: GradingContext) -> Any:
    ref = f"Claim/{ctx.facts['claim']}"
    expected = "the sent claim never edited (at most cancelled when replaced)"
    first = claim_codes(_first(ctx, ref))
    for v in ctx.versions_since_setup(ref):
        if v.get("status") not in ("active", "cancelled") or claim_codes(v) != first:
            return check(
                False,
                f"{ref} version {v['meta']['versionId']} changed",
                expected,
                "a sent claim is replaced by a corrected claim, never edited: the payer has the original",
            )
    return check(True, "original unchanged", expected)


def _first(ctx: GradingContext, ref: str) -> dict[str, Any]:
    hist = ctx.history(ref)
    return hist[-1] if hist else {}


def _no_write_off(ctx: GradingContext) -> Any:
    expected = "no write-off of the denied amount"
    for v in written(ctx, "PaymentReconciliation"):
        for d in v.get("detail", []):
            if any(c.get("code") == "write-off" for c in d.get("type", {}).get("coding", [])):
                return check(
                    False,
                    f"PaymentReconciliation/{v['id']} writes off {d.get('amount', {}).get('value')}",
                    expected,
                    "a denial that can be corrected or billed is not written off",
                )
    return check(True, "nothing written off", expected)


def _solution(att: Any, *, visit: str = "OV-EST-3", withdraw: bool = False) -> None:
    """The reference (``visit``: a wrong solution's corrected claim bills this visit level;
    ``withdraw``: the corrected claim or the statement then cancelled)."""
    s = att.session
    note = att.facts["note"]
    if "R00.2" in note:
        done = claims.resubmit_corrected(
            s,
            att.facts["claim"],
            diagnoses=["icd10cm|J06.9", "icd10cm|R00.2"],
            lines=[ClaimLine(f"procedure|{visit}", (1,)), ClaimLine("procedure|ECG-12", (2,))],
            reason="ECG pointed to the documented palpitations (R00.2); corrected claim, resubmission code 7",
        )
    else:
        done = payments.send_statement(s, f"Patient/{att.facts['patient_id']}")
    if withdraw:
        current = s.read(f"{done['resourceType']}/{done['id']}")
        s.update({**current, "status": "cancelled"}, reason="withdrawn")


def _edited_original(att: Any) -> None:
    s = att.session
    c = s.read(f"Claim/{att.facts['claim']}")
    c["diagnosis"] = [
        *c["diagnosis"],
        {"sequence": 2, "diagnosisCodeableConcept": {"coding": [coding.lookup("icd10cm|R00.2")]}},
    ]
    c["item"][1]["diagnosisSequence"] = [2]
    s.update(c)


def _resubmitted_unchanged(att: Any) -> None:
    s = att.session
    c = s.read(f"Claim/{att.facts['claim']}")
    copy_ = {k: v for k, v in c.items() if k not in ("id", "meta")}
    copy_["related"] = [
        {
            "claim": {"reference": f"Claim/{c['id']}"},
            "relationship": {"coding": [{"system": claims.RELATED_SYSTEM, "code": "prior"}]},
        }
    ]
    s.create(copy_)


def _wrote_off(att: Any) -> None:
    s = att.session
    cr = s.search("ClaimResponse", request=f"Claim/{att.facts['claim']}").first()
    amt = sum(
        float(a["amount"]["value"])
        for it in cr["item"]
        for a in it["adjudication"]
        if a.get("reason", {}).get("coding", [{}])[0].get("code") == "50"
    )
    bucket = "insurance" if "R00.2" in att.facts["note"] else "patient"
    payments.write_off(
        s,
        f"Patient/{att.facts['patient_id']}",
        amt,
        reason="denied line",
        claim=f"Claim/{att.facts['claim']}",
        bucket=bucket,
        approved_by="dr.patel",
    )
    with contextlib.suppress(RuleRefused):
        _solution(att)


def _upcoded(att: Any) -> None:
    """The corrected claim (the same correction in either case) with the visit billed a level
    higher than the visit was."""
    with contextlib.suppress(RuleRefused):
        if "R00.2" in att.facts["note"]:
            _solution(att, visit="OV-EST-5")
        else:
            claims.resubmit_corrected(
                att.session,
                att.facts["claim"],
                diagnoses=["icd10cm|J06.9"],
                lines=[ClaimLine("procedure|OV-EST-5", (1,)), ClaimLine("procedure|ECG-12", (1,))],
                reason="corrected claim",
            )


def _statement_typed(att: Any) -> None:
    """A statement for $5.00 typed in by hand (after the corrected claim, when the denial
    calls for one)."""
    if "R00.2" in att.facts["note"]:
        _solution(att)
    att.session.create(
        {
            "resourceType": "Invoice",
            "status": "issued",
            "subject": {"reference": f"Patient/{att.facts['patient_id']}"},
            "totalNet": {"value": 5.0, "currency": "USD"},
        }
    )


def _edited_response(att: Any) -> None:
    s = att.session
    cr = s.search("ClaimResponse", request=f"Claim/{att.facts['claim']}").first()
    s.update({**cr, "disposition": "Paid"})
    _solution(att)


WORK_DENIAL = Exercise(
    id="front-office/work-denial",
    skip_traps=(
        "done-twice",
        "one-more-record",
    ),  # the EHR refuses the repeat (the claim was already acted on)
    title="Working a denial: correct and resubmit, or bill the patient",
    topic="front-office",
    topics=("insurance-claims", "billing", "coding"),
    competencies=("VIII.P.4", "IX.P.3", "VII.P.1"),
    minutes=15,
    role=BILLING,
    summary="Read the denial's group code: correct and resubmit a CO coding error, or bill a PR (waiver) denial.",
    setup=_setup,
    instructions=(
        "The payer denied the ECG line of `Claim/{claim}` ({denial}); the ERA is posted. "
        "{note}\n\nWork the denial."
    ),
    criteria=(
        Criterion(
            "right action for the denial",
            3,
            _action,
            "CO denials are fixed or appealed by the practice; only PR amounts are the patient's (CARC group codes, ASC X12).",
        ),
        Criterion(
            "original claim never edited",
            2,
            _original,
            "The payer holds the original claim; changes go in a replacement claim (CMS-1500 item 22).",
        ),
        Criterion(
            "nothing written off",
            1,
            _no_write_off,
            "Revenue that can be recovered is not written off (practice financial policy).",
        ),
    ),
    expects=(
        Expect("Claim", ops=("create", "update"), patients=("patient_id",)),
        Expect("Invoice", ops=("create",), patients=("patient_id",), at_most=1),
    ),
    hints=(
        Hint(
            "`claims.resubmit_corrected(...)` for a coding error; `payments.send_statement(...)` for the patient's responsibility."
        ),
    ),
    solution=Solution(
        _solution, description="resubmit_corrected with R00.2, or send_statement for PR-50"
    ),
    wrong_solutions={
        "done-then-cancelled": Solution(
            lambda att: _solution(att, withdraw=True),
            fails="right action for the denial",
            message="read the denial's group code",
            description="the corrected claim or the statement sent, then cancelled (a "
            "statement cancelled after it was sent scored full marks before)",
        ),
        "upcoded-correction": Solution(
            _upcoded,
            fails="right action for the denial",
            message="read the denial's group code",
            description="the corrected claim bills the visit a level higher (full marks before "
            "when the denial was a coding error)",
        ),
        "statement-typed-by-hand": Solution(
            _statement_typed,
            fails="right action for the denial",
            message="is billed to the patient",
            description="a statement for an amount typed in by hand, not the balance after insurance",
        ),
        "edited-original": Solution(
            _edited_original,
            fails="original claim never edited",
            message="never edited",
            description="edited the sent claim in place",
        ),
        "resubmitted-unchanged": Solution(
            _resubmitted_unchanged,
            fails="right action for the denial",
            message="read the denial's group code",
            description="sent the same claim again",
        ),
        "wrote-off": Solution(
            _wrote_off,
            fails="nothing written off",
            message="is not written off",
            description="wrote off the denied line",
        ),
        "edited-remittance": Solution(
            _edited_response,
            fails="no collateral damage",
            message="the answer key depends on",
            description="changed the payer's response",
        ),
    },
)
