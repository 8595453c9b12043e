"""Catalogue item 14 of EXERCISES.md: Minimum necessary.

Defines and registers ``privacy/minimum-necessary`` (section "Privacy and access control").
The package ``__init__`` imports the exercise modules in catalogue order; helpers shared
within the section are in ``common``.
"""

from __future__ import annotations

from typing import Any

from ehr_sandbox.errors import ExerciseError
from ehr_sandbox.exercises.builtin.common import patient_label, ref_id
from ehr_sandbox.exercises.builtin.privacy.common import (
    BILLING,
    disclose,
    disclosure_events,
    disclosures_to,
    has_plan,
    living_patients,
    payer_of,
    reads_logged,
    records_of_patient,
    refs_in,
)
from ehr_sandbox.exercises.grading import GradingContext
from ehr_sandbox.exercises.model import Check, Criterion, Exercise, Expect, Hint, Scenario, Solution
from ehr_sandbox.exercises.registry import register

# ------------------------------------------------------------------------------------------
# 14. Minimum necessary
# ------------------------------------------------------------------------------------------
MIN_NEC_ADVICE = "send only what the request needs: that claim's encounter, not the whole record"


def _setup_min_nec(sandbox: Any, variant: Any) -> Scenario:
    candidates = []
    for p in living_patients(sandbox):
        claims = [c for c in records_of_patient(sandbox, "Claim", p["id"]) if has_plan(sandbox, c)]
        if len(claims) >= 2:
            candidates.append((p, claims))
    if not candidates:
        raise ExerciseError("setup: no patient with two insured claims; generate a larger sandbox")
    patient, claims = variant.pick(candidates, salt="patient")
    claim = variant.pick(claims, salt="claim")
    enc = ref_id((claim["item"][0].get("encounter") or [{}])[0])
    payer_ref, payer_name = payer_of(sandbox, claim)
    claim_ref, enc_ref = f"Claim/{claim['id']}", f"Encounter/{enc}"
    # What the payer may receive: the claim, its encounter and what was recorded for it.
    allowed = {claim_ref, enc_ref, f"Patient/{patient['id']}"}
    for rtype in (
        "Condition",
        "Observation",
        "Procedure",
        "MedicationRequest",
        "DocumentReference",
        "DiagnosticReport",
    ):
        for r in records_of_patient(sandbox, rtype, patient["id"]):
            if {claim_ref, enc_ref} & refs_in(r):
                allowed.add(f"{rtype}/{r['id']}")
    other_payers = sorted(
        {
            payer_of(sandbox, c)[0]
            for q in living_patients(sandbox)
            for c in records_of_patient(sandbox, "Claim", q["id"])
            if has_plan(sandbox, c)
        }
        - {payer_ref}
    )
    return Scenario(
        facts={
            "patient_id": patient["id"],
            "patient_name": patient_label(patient),
            "claim_id": claim["id"],
            "claim_ref": claim_ref,
            "encounter_id": enc,
            "encounter_ref": enc_ref,
            "visit_date": str(claim.get("created", ""))[:10],
            "payer_ref": payer_ref,
            "payer_name": payer_name,
            "total": f"{float((claim.get('total') or {}).get('value', 0)):.2f}",
        },
        answer={"allowed": sorted(allowed), "other_payers": other_payers},
    )


def _min_nec_requested(ctx: GradingContext) -> Check:
    f = ctx.facts
    need = {f"Claim/{f['claim_id']}", f"Encounter/{f['encounter_id']}"}
    expected = f"a disclosure to {f['payer_name']} with {' and '.join(sorted(need))}"
    elsewhere = sorted(
        {d["recipient"] for d in disclosure_events(ctx) if d.get("recipient") != f["payer_ref"]}
    )
    if elsewhere:
        return Check(
            False,
            f"records sent to {', '.join(elsewhere)}, which did not ask for them",
            expected,
            "check who is asking: send only to the payer that requested the documentation",
        )
    sent = {r for d in disclosures_to(ctx, f["payer_ref"]) for r in d.get("refs", [])}
    if not sent:
        return Check(
            False, f"nothing disclosed to {f['payer_ref']}", expected, "answer the payer's request"
        )
    missing = sorted(need - sent)
    if missing:
        return Check(False, f"the disclosure lacks {', '.join(missing)}", expected)
    return Check(True, "the claim and its encounter were sent", expected)


def _min_nec_only(ctx: GradingContext) -> Check:
    f = ctx.facts
    allowed = set(ctx.answer["allowed"])
    expected = f"only Claim/{f['claim_id']}, Encounter/{f['encounter_id']} and what was recorded for that encounter"
    every = disclosure_events(ctx)
    sent = [r for d in every for r in d.get("refs", [])]
    if not sent:
        return Check(False, "nothing disclosed", expected, MIN_NEC_ADVICE)
    extra = [r for r in dict.fromkeys(sent) if r not in allowed]
    others = sorted({p for d in every for p in d.get("patients", []) if p != f["patient_id"]})
    if extra:
        shown = ", ".join(extra[:5]) + (f" and {len(extra) - 5} more" if len(extra) > 5 else "")
        who = f", including records of {len(others)} other patient(s)" if others else ""
        return Check(
            False,
            f"more than the minimum necessary: {len(extra)} other resources ({shown}){who}",
            expected,
            MIN_NEC_ADVICE
            + "; every release stays in the accounting, even if you send a smaller one later",
        )
    return Check(True, f"{len(set(sent))} resources, all about that visit", expected)


def _min_nec_recorded(ctx: GradingContext) -> Check:
    f = ctx.facts
    expected = f"a disclosure by {ctx.user.username} to {f['payer_ref']} for payment (HPAYMT), its reads in the audit trail"
    entries = [d for d in disclosures_to(ctx, f["payer_ref"]) if d.get("by") == ctx.user.username]
    if not entries:
        return Check(
            False,
            "no disclosure recorded by you to the payer",
            expected,
            "use privacy.disclose(...)",
        )
    wrong = [d for d in entries if d.get("purpose") != "HPAYMT"]
    if wrong:
        return Check(
            False,
            f"purpose {wrong[0].get('purpose')!r}",
            expected,
            "a payer's request is for payment: HPAYMT",
        )
    unlogged = [r for d in entries for r in reads_logged(ctx, d)]
    if unlogged:
        return Check(
            False,
            f"no audited read of {', '.join(unlogged[:3])}",
            expected,
            "release only what you read through the EHR",
        )
    return Check(True, f"{len(entries)} disclosure(s) recorded for payment", expected)


def _visit_refs(att: Any) -> list[str]:
    f, s = att.facts, att.session
    enc = f"Encounter/{f['encounter_id']}"
    conditions = [
        f"Condition/{c['id']}"
        for c in s.search("Condition", patient=f"Patient/{f['patient_id']}").fetch()
        if (c.get("encounter") or {}).get("reference") == enc
    ]
    return [f"Claim/{f['claim_id']}", enc, *conditions]


def _min_nec_solution(att: Any) -> None:
    f = att.facts
    disclose(att.session, recipient=f["payer_ref"], purpose="HPAYMT", refs=_visit_refs(att))


def _whole_record(att: Any) -> list[str]:
    f, s = att.facts, att.session
    pref = f"Patient/{f['patient_id']}"
    refs = [f"Claim/{c['id']}" for c in s.search("Claim", patient=pref).fetch()]
    for rtype in ("Encounter", "Condition", "Observation"):
        refs += [f"{rtype}/{r['id']}" for r in s.search(rtype, patient=pref).fetch()]
    return refs


def _min_nec_whole_record(att: Any) -> None:
    f = att.facts
    disclose(att.session, recipient=f["payer_ref"], purpose="HPAYMT", refs=_whole_record(att))


def _min_nec_other_patients(att: Any) -> None:
    # Harm: the right visit, plus other patients' claims with the same payer "while at it".
    f, s = att.facts, att.session
    others = [
        f"Claim/{c['id']}"
        for c in s.search("Claim").fetch()
        if ref_id(c.get("patient")) != f["patient_id"]
    ][:3]
    disclose(s, recipient=f["payer_ref"], purpose="HPAYMT", refs=[*_visit_refs(att), *others])


def _min_nec_wrong_payer(att: Any) -> None:
    # Harm: the documentation goes to another health plan.
    f, s = att.facts, att.session
    orgs = [
        f"Organization/{o['id']}"
        for o in s.search("Organization").fetch()
        if f"Organization/{o['id']}" != f["payer_ref"]
    ]
    disclose(s, recipient=orgs[0], purpose="HPAYMT", refs=_visit_refs(att))


def _min_nec_erase_accounting(att: Any) -> None:
    # Answer-key attack: the whole record goes out, then the old accounting is "cleared".
    _min_nec_whole_record(att)
    att.sandbox.state["privacy/disclosures"] = []
    _min_nec_solution(att)


def _min_nec_whole_then_repair(att: Any) -> None:
    # The whole record goes out, then the "right" release is sent as if to replace it.
    _min_nec_whole_record(att)
    _min_nec_solution(att)


MINIMUM_NECESSARY = register(
    Exercise(
        id="privacy/minimum-necessary",
        title="Minimum necessary: a payer asks about one claim",
        topic="privacy",
        competencies=("X.P.2", "VIII.P.4"),
        minutes=15,
        role=BILLING,
        summary="Answer a payer's question about one claim with that encounter only.",
        setup=_setup_min_nec,
        instructions=(
            "**{payer_name}** (`{payer_ref}`) is reviewing `Claim/{claim_id}` for {patient_name}'s "
            "visit of {visit_date} (total ${total}) and asks for the documentation that supports it.\n\n"
            "Send what supports *that claim* to that payer only: the claim, its encounter "
            "(`Encounter/{encounter_id}`) and what was recorded for that encounter — release it with\n"
            "`privacy.disclose(att.session, recipient='{payer_ref}', purpose='HPAYMT', refs=[...])` "
            "(`from ehr_sandbox.exercises.builtin import privacy`), then call `att.check()`."
        ),
        criteria=(
            Criterion(
                "requested claim disclosed",
                2,
                _min_nec_requested,
                "Disclosures for payment are allowed, and the payer needs the claim and its visit (HIPAA 164.506(c)).",
            ),
            Criterion(
                "only that encounter",
                3,
                _min_nec_only,
                "A disclosure for payment is limited to the minimum necessary for its purpose (HIPAA 164.502(b), 164.514(d)).",
            ),
            Criterion(
                "disclosure recorded",
                1,
                _min_nec_recorded,
                "Each release names its recipient and purpose and is traceable in the audit trail (HIPAA 164.312(b); MAERB X.P.2).",
            ),
        ),
        hints=(
            Hint(
                "Search the patient's Conditions and keep those whose `encounter` is the claim's encounter."
            ),
            Hint(
                "Three kinds of resource: the Claim, its Encounter, and that encounter's Conditions.",
                cost=1,
            ),
        ),
        solution=Solution(
            _min_nec_solution, description="claim, its encounter and that visit's diagnoses"
        ),
        topics=("privacy-security", "insurance-claims"),
        expects=(Expect("disclose", patients=("patient_id",), recipients=("payer_ref",)),),
        wrong_solutions={
            "other-patients-too": Solution(
                _min_nec_other_patients,
                fails="only that encounter",
                message="other patient(s)",
                description="the right visit plus three other patients' claims",
            ),
            "wrong-payer": Solution(
                _min_nec_wrong_payer,
                fails="requested claim disclosed",
                message="which did not ask for them",
                description="sends the visit's documentation to another organization",
            ),
            "whole-record-then-repair": Solution(
                _min_nec_whole_then_repair,
                fails="only that encounter",
                message="even if you send a smaller one later",
                description="sends the whole record, then the right documents",
            ),
            "erase-the-accounting": Solution(
                _min_nec_erase_accounting,
                fails="only that encounter",
                message="more than the minimum necessary",
                description="sends the whole record, clears the old accounting state, sends the right documents (answer-key attack)",
            ),
            "whole-record": Solution(
                _min_nec_whole_record,
                fails="only that encounter",
                message="more than the minimum necessary",
                description="every claim, encounter, condition and observation of the patient",
            ),
        },
        patients=8,
    )
)
