"""Catalogue item 31 (part): scrubbing a claim with three planted errors.

A draft claim has three errors drawn from: a line pointing to a diagnosis that does not
support it (medical necessity), an Excludes1 pair, a line priced at the payer's allowed amount
instead of the practice fee, the wrong place of service, the wrong laterality modifier. The
student runs the scrubber, fixes all three, sends a clean claim and voids (or corrects) the
draft; a claim with errors is never sent.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ehr_sandbox.exercises.builtin.front_office.common import (
    BILLING,
    check,
    claim_misstates_visit,
    insured_patients,
    local_day_start,
    op_of,
    visit,
    written,
)
from ehr_sandbox.exercises.grading import GradingContext
from ehr_sandbox.exercises.model import Criterion, Exercise, Expect, Hint, Scenario, Solution
from ehr_sandbox.workflows import claims, coding, fees
from ehr_sandbox.workflows.base import write
from ehr_sandbox.workflows.coding import ClaimLine, claim_codes
from ehr_sandbox.workflows.scrubber import scrub

__all__ = ["SCRUB_CLAIM"]

FIX = "fix every scrubber finding before sending"
ERRORS = ("necessity", "excludes1", "fee", "place-of-service", "laterality")
DOCUMENTED = {
    "necessity": [("R00.2", "Palpitations"), ("I10", "Essential hypertension")],
    "excludes1": [("F33.1", "Major depressive disorder, recurrent, moderate")],
    "laterality": [("S93.401A", "Sprain of right ankle, initial encounter")],
}


def _correct(errors: list[str]) -> tuple[list[str], list[dict[str, Any]]]:
    dx = ["icd10cm|J06.9"]
    lines: list[dict[str, Any]] = [{"service": "procedure|OV-EST-4", "pointers": [1]}]
    for e in errors:
        for code, _ in DOCUMENTED.get(e, []):
            dx.append(f"icd10cm|{code}")
    if "necessity" in errors:
        lines.append({"service": "procedure|ECG-12", "pointers": [dx.index("icd10cm|R00.2") + 1]})
    if "laterality" in errors:
        lines.append(
            {
                "service": "procedure|SPLINT-ANKLE",
                "pointers": [dx.index("icd10cm|S93.401A") + 1],
                "modifiers": ["RT"],
            }
        )
    return dx, lines


def _setup(sandbox: Any, variant: Any) -> Scenario:
    rng = variant.rng()
    p = variant.pick(
        insured_patients(sandbox, ("blueshield", "unityhealth"), username=BILLING), salt="patient"
    )
    errors = sorted(rng.sample(ERRORS, 3), key=ERRORS.index)
    conditions = [("J06.9", "Acute upper respiratory infection", "confirmed")]
    for e in errors:
        conditions += [(c, t, "confirmed") for c, t in DOCUMENTED.get(e, [])]
    doc = rng.choice(["dr.patel", "dr.nguyen", "dr.okafor"])
    v = visit(
        sandbox,
        p["id"],
        doc,
        start=local_day_start(sandbox.reference_date, "09:20"),
        conditions=conditions,
        visit_code="OV-EST-4",
    )
    b = sandbox.login(BILLING)
    dx, lines = _correct(errors)
    claim = coding.claim_resource(b, f"Encounter/{v['encounter']}", diagnoses=dx, lines=lines)
    # plant the errors
    for e in errors:
        if e == "necessity":
            ecg = next(
                it
                for it in claim["item"]
                if it["productOrService"]["coding"][0]["code"] == "ECG-12"
            )
            ecg["diagnosisSequence"] = [1]
        elif e == "excludes1":
            claim["diagnosis"].append(
                {
                    "sequence": len(claim["diagnosis"]) + 1,
                    "diagnosisCodeableConcept": {"coding": [coding.lookup("icd10cm|F32.9")]},
                }
            )
        elif e == "fee":
            ov = claim["item"][0]
            payer_id = claim["insurer"]["reference"].split("-")[-1]
            low = fees.allowed("procedure|OV-EST-4", payer_id, b)
            ov["unitPrice"] = {"value": float(low), "currency": "USD"}
            ov["net"] = {"value": float(low), "currency": "USD"}
        elif e == "place-of-service":
            for it in claim["item"]:
                it["locationCodeableConcept"]["coding"][0].update(
                    {"code": "22", "display": "On campus-outpatient hospital"}
                )
        elif e == "laterality":
            sp = next(
                it
                for it in claim["item"]
                if it["productOrService"]["coding"][0]["code"] == "SPLINT-ANKLE"
            )
            sp["modifier"] = [{"coding": [{"system": coding.MODIFIER_SYSTEM, "code": "LT"}]}]
    claim["total"] = {"value": sum(it["net"]["value"] for it in claim["item"]), "currency": "USD"}
    draft = b.create(claim)
    documented = "; ".join(f"{t} ({c})" for c, t, _ in conditions)
    services = (
        "office visit, established, moderate complexity"
        + (", 12-lead ECG for palpitations" if "necessity" in errors else "")
        + (", ankle splint (right)" if "laterality" in errors else "")
    )
    return Scenario(
        facts={
            "draft": draft["id"],
            "encounter": v["encounter"],
            "patient_id": p["id"],
            "documented": documented,
            "services": services,
        },
        answer={"errors": errors},
        protect=(f"Encounter/{v['encounter']}", *[f"Condition/{c}" for c in v["conditions"]]),
    )


def _sent(ctx: GradingContext) -> list[dict[str, Any]]:
    enc = f"Encounter/{ctx.facts['encounter']}"
    ids = {v["id"] for v in written(ctx, "Claim")} | {ctx.facts["draft"]}
    out = []
    for cid in sorted(ids):
        cur = ctx.read(f"Claim/{cid}") or {}
        if cur.get("status") == "active" and any(
            e.get("reference") == enc for it in cur.get("item", []) for e in it.get("encounter", [])
        ):
            out.append(cur)
    return out


def _fixed(
    error: str, claim: dict[str, Any], findings: list[str], ctx: GradingContext
) -> str | None:
    dx, lines = claim_codes(claim)
    if error == "necessity":
        return next((f for f in findings if "scrub.necessity" in f), None)
    if error == "excludes1":
        return "F32.9 and F33.1 both reported" if "icd10cm|F32.9" in dx else None
    if error == "fee":
        ov = next((ln for ln in lines if ln["service"] == "procedure|OV-EST-4"), None)
        return (
            None
            if ov and fees.charge("procedure|OV-EST-4", ctx.session) == fees.money(ov["price"])
            else f"visit billed at {ov and ov['price']}"
        )
    if error == "place-of-service":
        return (
            None
            if all(ln["pos"] == "11" for ln in lines)
            else f"places of service {[ln['pos'] for ln in lines]}"
        )
    if error == "laterality":
        return next((f for f in findings if "scrub.laterality" in f), None)
    return None


def _dropped(err: str, claim: dict[str, Any], errors: list[str]) -> str | None:
    """What the sent claim left out that the correct claim for this error bills or reports: an
    error "fixed" by deleting the service or diagnosis it was in is not fixed."""
    want_dx, want_lines = _correct(errors)
    dx, lines = claim_codes(claim)
    billed = {ln["service"] for ln in lines}
    needs = {
        "necessity": ["procedure|ECG-12"],
        "laterality": ["procedure|SPLINT-ANKLE"],
        "fee": ["procedure|OV-EST-4"],
    }.get(err, [])
    gone = [svc.split("|", 1)[1] for svc in needs if svc not in billed]
    gone += [
        d.split("|", 1)[1]
        for d in want_dx
        if d not in dx and any(d == f"icd10cm|{c}" for c, _ in DOCUMENTED.get(err, []))
    ]
    return f"{', '.join(gone)} left off the claim instead of corrected" if gone else None


def _error_check(n: int) -> Callable[[GradingContext], Any]:
    def run(ctx: GradingContext) -> Any:
        err = ctx.answer["errors"][n]
        expected = "the sent claim free of this planted error"
        sent = _sent(ctx)
        if len(sent) != 1:
            return check(False, f"{len(sent)} claims sent for the visit", expected, FIX)
        gone = _dropped(err, sent[0], ctx.answer["errors"])
        if gone:
            return check(
                False,
                f"still: {gone}",
                expected,
                "correct the line or code; a service or diagnosis the provider documented stays on the claim",
            )
        findings = [str(f) for f in scrub(ctx.session, sent[0])]
        problem = _fixed(err, sent[0], findings, ctx)
        if problem:
            return check(False, f"still: {problem}", expected, FIX)
        return check(True, "fixed", expected)

    return run


def _clean_sent(ctx: GradingContext) -> Any:
    expected = (
        "one claim for the visit, clean, with every documented service and diagnosis, "
        "sent with claims.submit"
    )
    sent = _sent(ctx)
    if len(sent) != 1:
        return check(
            False,
            f"{len(sent)} claims sent",
            expected,
            "send exactly one clean claim for the visit",
        )
    want_dx, want_lines = _correct(ctx.answer["errors"])
    dx, lines = claim_codes(sent[0])
    billed = {ln["service"] for ln in lines}
    gone = [c.split("|", 1)[1] for c in [*want_dx, *(w["service"] for w in want_lines)]]
    gone = [c for c in gone if f"icd10cm|{c}" not in dx and f"procedure|{c}" not in billed]
    if gone:
        return check(
            False,
            f"{len(gone)} documented service(s) or diagnosis(es) left off the claim",
            expected,
            "a service or diagnosis the provider documented stays on the claim",
        )
    versions = ctx.versions_since_setup(f"Claim/{sent[0]['id']}")
    for v in versions:
        wrong = (
            claim_misstates_visit(ctx, v, f"Encounter/{ctx.facts['encounter']}")
            if v.get("status") == "active"
            else None
        )
        if wrong:
            return check(
                False,
                f"Claim/{v['id']} version {v['meta']['versionId']}: {wrong}",
                expected,
                "bill the visit as it happened: its patient and plan, the practice, the day of "
                "the visit, each service once",
            )
    # a typed claims.submit tag proves nothing: what the workflow guarantees is a clean scrub
    if not any(op_of(ctx, v) == "claims.submit" for v in versions) or any(
        scrub(ctx.session, v) for v in versions if v.get("status") == "active"
    ):
        return check(
            False, "status set by hand", expected, "send with claims.submit so the edits run"
        )
    return check(True, f"Claim/{sent[0]['id']} sent", expected)


def _draft(ctx: GradingContext) -> Any:
    f = ctx.facts
    expected = "the faulty draft never sent; voided (entered-in-error) or corrected and then sent"
    versions = ctx.versions_since_setup(f"Claim/{f['draft']}")
    for v in versions:
        if v.get("status") == "active" and scrub(ctx.session, v):
            return check(
                False,
                f"Claim/{f['draft']} version {v['meta']['versionId']} was sent with errors",
                expected,
                "never send a claim the scrubber rejects",
            )
    cur = ctx.read(f"Claim/{f['draft']}") or {}
    if cur.get("status") not in ("entered-in-error", "active", "cancelled"):
        return check(
            False,
            f"Claim/{f['draft']} left as {cur.get('status')}",
            expected,
            "void the draft you replaced, or it may be sent later",
        )
    return check(True, f"draft {cur.get('status')}", expected)


def _solution(
    att: Any,
    *,
    skip: int | None = None,
    void: bool = True,
    typed_tag: bool = False,
    visit_units: int = 1,
) -> None:
    """The reference (wrong solutions: ``skip`` leaves that planted error in, ``void`` False
    leaves the draft, ``typed_tag`` sends by hand, ``visit_units`` bills the visit that many
    times)."""
    s = att.session
    draft = s.read(f"Claim/{att.facts['draft']}")
    findings = {f.rule for f in scrub(s, draft)}
    dx, lines = claim_codes(draft)
    dx = [d for d in dx if not (d == "icd10cm|F32.9" and "scrub.excludes1" in findings)]
    new_lines = []
    for ln in lines:
        mods = ln["modifiers"]
        ptrs = ln["pointers"]
        if ln["service"] == "procedure|ECG-12":
            ptrs = [dx.index("icd10cm|R00.2") + 1]
        if ln["service"] == "procedure|SPLINT-ANKLE":
            mods = ["RT"]
            ptrs = [dx.index("icd10cm|S93.401A") + 1]
        units = visit_units if ln["service"] == "procedure|OV-EST-4" else 1
        new_lines.append(ClaimLine(ln["service"], tuple(ptrs), units, tuple(mods)))
    c = coding.build_claim(s, f"Encounter/{att.facts['encounter']}", diagnoses=dx, lines=new_lines)
    if skip is not None:
        # leave one planted error in (by its place in ERRORS) and force the claim out
        planted = sorted(
            (ERRORS_BY_FINDING[f] for f in findings if f in ERRORS_BY_FINDING), key=ERRORS.index
        )
        if "icd10cm|F32.9" in claim_codes(draft)[0] and "excludes1" not in planted:
            planted = sorted([*planted, "excludes1"], key=ERRORS.index)
        c = _replant(s, c, planted[skip])
        if typed_tag:  # the claims.submit tag typed in by hand: the scrubber never ran
            write(s, {**c, "status": "active"}, operation="claims.submit")
        else:
            s.update({**c, "status": "active"})
    else:
        claims.submit(s, c["id"])
    if void:
        s.mark_entered_in_error(
            f"Claim/{att.facts['draft']}", "replaced by a corrected claim before sending"
        )


ERRORS_BY_FINDING = {
    "scrub.necessity": "necessity",
    "scrub.excludes1": "excludes1",
    "scrub.fee": "fee",
    "scrub.place-of-service": "place-of-service",
    "scrub.laterality": "laterality",
}


def _replant(s: Any, c: dict[str, Any], err: str | None) -> dict[str, Any]:
    c = dict(c)
    if err == "necessity":
        for it in c["item"]:
            if it["productOrService"]["coding"][0]["code"] == "ECG-12":
                it["diagnosisSequence"] = [1]
    elif err == "excludes1":
        c["diagnosis"] = [
            *c["diagnosis"],
            {
                "sequence": len(c["diagnosis"]) + 1,
                "diagnosisCodeableConcept": {"coding": [coding.lookup("icd10cm|F32.9")]},
            },
        ]
    elif err == "fee":
        c["item"][0]["unitPrice"] = {"value": 1.0, "currency": "USD"}
    elif err == "place-of-service":
        for it in c["item"]:
            it["locationCodeableConcept"]["coding"][0]["code"] = "22"
    elif err == "laterality":
        for it in c["item"]:
            if it["productOrService"]["coding"][0]["code"] == "SPLINT-ANKLE":
                it["modifier"] = [{"coding": [{"system": coding.MODIFIER_SYSTEM, "code": "LT"}]}]
    return s.update(c)


def _fixed_two(att: Any) -> None:
    """Fix two errors, leave the third and force the claim out."""
    _solution(att, skip=-1)


def _dropped_services(att: Any) -> None:
    """Make the scrubber quiet by leaving the faulty lines and the extra diagnoses off the claim."""
    s = att.session
    draft = s.read(f"Claim/{att.facts['draft']}")
    dx, lines = claim_codes(draft)
    keep = [ClaimLine("procedure|OV-EST-4", (1,), 1, ())]
    c = coding.build_claim(s, f"Encounter/{att.facts['encounter']}", diagnoses=dx[:1], lines=keep)
    claims.submit(s, c["id"])
    s.mark_entered_in_error(
        f"Claim/{att.facts['draft']}", "replaced by a corrected claim before sending"
    )


def _sent_as_is(att: Any) -> None:
    s = att.session
    draft = s.read(f"Claim/{att.facts['draft']}")
    s.update({**draft, "status": "active"})


def _changed_visit(att: Any) -> None:
    sys = att.sandbox.system_session()
    enc = sys.read(f"Encounter/{att.facts['encounter']}")
    sys.update({**enc, "reasonCode": [{"text": "palpitations and cough"}]})
    _solution(att)


SCRUB_CLAIM = Exercise(
    id="front-office/scrub-claim",
    title="Scrubbing a claim with three planted errors",
    topic="front-office",
    topics=("insurance-claims", "coding", "billing"),
    competencies=("VIII.P.4", "IX.P.3", "IX.P.2"),
    minutes=20,
    role=BILLING,
    summary="Find and fix three planted claim errors, send one clean claim, void the faulty draft.",
    setup=_setup,
    instructions=(
        "Draft claim `Claim/{draft}` for visit `Encounter/{encounter}` has **three errors**. "
        "The provider documented: {documented}. Services: {services}.\n\n"
        "Run the scrubber (`scrubber.scrub(session, claim)`), fix every error, send one clean claim "
        "and make sure the faulty draft can never be sent."
    ),
    criteria=(
        Criterion(
            "planted error 1 fixed",
            2,
            _error_check(0),
            "Every edit the scrubber raises is a denial waiting to happen (MAERB VIII.P.4).",
        ),
        Criterion(
            "planted error 2 fixed",
            2,
            _error_check(1),
            "Every edit the scrubber raises is a denial waiting to happen (MAERB VIII.P.4).",
        ),
        Criterion(
            "planted error 3 fixed",
            2,
            _error_check(2),
            "Every edit the scrubber raises is a denial waiting to happen (MAERB VIII.P.4).",
        ),
        Criterion(
            "one clean claim sent",
            1,
            _clean_sent,
            "Claims go out only after the edits pass (clearinghouse front-end edits).",
        ),
        Criterion(
            "faulty draft never sent",
            1,
            _draft,
            "A claim sent with errors is a false claim to fix later, with a denial on record (CMS-1500 instructions).",
        ),
    ),
    expects=(
        Expect("Claim", ops=("create", "update", "entered-in-error"), patients=("patient_id",)),
    ),
    hints=(
        Hint(
            "`scrubber.scrub` names each problem and its rule; `coding.build_claim` + `claims.submit` send the corrected claim; `session.mark_entered_in_error` voids the draft."
        ),
    ),
    solution=Solution(
        _solution, description="scrub, rebuild with the three fixes, submit, void the draft"
    ),
    wrong_solutions={
        "visit-billed-three-times": Solution(
            lambda att: _solution(att, visit_units=3),
            fails="one clean claim sent",
            message="each service once",
            description="every planted error fixed, the visit billed for 3 units (full marks "
            "before)",
        ),
        "fixed-two": Solution(
            _fixed_two,
            fails="planted error 3 fixed",
            message=FIX,
            description="fixed two errors, left one, forced the claim out",
        ),
        "submit-tag-by-hand": Solution(
            lambda att: _solution(att, skip=-1, typed_tag=True),
            fails="one clean claim sent",
            message="send with claims.submit so the edits run",
            description="left one error and sent the claim by hand with the claims.submit tag typed in",
        ),
        "left-draft": Solution(
            lambda att: _solution(att, void=False),
            fails="faulty draft never sent",
            message="void the draft",
            description="sent a clean claim but left the faulty draft",
        ),
        "dropped-services": Solution(
            _dropped_services,
            fails="one clean claim sent",
            message="a service or diagnosis the provider documented stays on the claim",
            description="left the faulty lines and diagnoses off the claim so the scrubber is quiet",
        ),
        "sent-as-is": Solution(
            _sent_as_is,
            fails="faulty draft never sent",
            message="never send a claim the scrubber rejects",
            description="set the draft's status to active",
        ),
        "changed-the-visit": Solution(
            _changed_visit,
            fails="no collateral damage",
            message="work done under",
            description="changed the visit record instead of the claim",
        ),
    },
)
