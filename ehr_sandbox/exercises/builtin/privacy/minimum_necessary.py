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
    _disclosures_to,
    _living_patients,
    _of_patient,
    _payer_of,
    _reads_logged,
    _refs_in,
    disclose,
)
from ehr_sandbox.exercises.grading import GradingContext
from ehr_sandbox.exercises.model import Check, Criterion, Exercise, Hint, Solution
from ehr_sandbox.exercises.registry import register

# ------------------------------------------------------------------------------------------
# 14. Minimum necessary
# ------------------------------------------------------------------------------------------
MIN_NEC_ADVICE = "send only what the request needs: that claim's encounter, not the whole record"


def _setup_min_nec(sandbox: Any, variant: Any) -> dict[str, Any]:
    candidates = []
    for p in _living_patients(sandbox):
        claims = [c for c in _of_patient(sandbox, "Claim", p["id"]) if c.get("insurance")]
        if len(claims) >= 2:
            candidates.append((p, claims))
    if not candidates:
        raise ExerciseError("setup: no patient with two insured claims; generate a larger sandbox")
    patient, claims = variant.pick(candidates, salt="patient")
    claim = variant.pick(claims, salt="claim")
    enc = ref_id((claim["item"][0].get("encounter") or [{}])[0])
    payer_ref, payer_name = _payer_of(sandbox, claim)
    return {
        "patient_id": patient["id"],
        "patient_name": patient_label(patient),
        "claim_id": claim["id"],
        "encounter_id": enc,
        "visit_date": str(claim.get("created", "")),
        "payer_ref": payer_ref,
        "payer_name": payer_name,
        "total": f"{float((claim.get('total') or {}).get('value', 0)):.2f}",
    }


def _min_nec_requested(ctx: GradingContext) -> Check:
    f = ctx.facts
    need = {f"Claim/{f['claim_id']}", f"Encounter/{f['encounter_id']}"}
    expected = f"a disclosure to {f['payer_name']} with {' and '.join(sorted(need))}"
    sent = {r for d in _disclosures_to(ctx, f["payer_ref"]) for r in d.get("refs", [])}
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
    claim, enc = f"Claim/{f['claim_id']}", f"Encounter/{f['encounter_id']}"
    expected = f"only {claim}, {enc} and resources recorded for that encounter"
    sent = [r for d in _disclosures_to(ctx, f["payer_ref"]) for r in d.get("refs", [])]
    if not sent:
        return Check(False, "nothing disclosed", expected, MIN_NEC_ADVICE)
    extra = []
    for ref in dict.fromkeys(sent):
        if ref in (claim, enc, f"Patient/{f['patient_id']}"):
            continue
        res = ctx.read(ref)
        if res is None or not ({claim, enc} & _refs_in(res)):
            extra.append(ref)
    if extra:
        shown = ", ".join(extra[:5]) + (f" and {len(extra) - 5} more" if len(extra) > 5 else "")
        return Check(
            False,
            f"more than the minimum necessary: {len(extra)} unrelated resources ({shown})",
            expected,
            MIN_NEC_ADVICE,
        )
    return Check(True, f"{len(set(sent))} resources, all about that visit", expected)


def _min_nec_recorded(ctx: GradingContext) -> Check:
    f = ctx.facts
    expected = f"a disclosure by {ctx.user.username} to {f['payer_ref']} for payment (HPAYMT), its reads in the audit trail"
    entries = [d for d in _disclosures_to(ctx, f["payer_ref"]) if d.get("by") == ctx.user.username]
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
    unlogged = [r for d in entries for r in _reads_logged(ctx, d)]
    if unlogged:
        return Check(
            False,
            f"no audited read of {', '.join(unlogged[:3])}",
            expected,
            "release only what you read through the EHR",
        )
    return Check(True, f"{len(entries)} disclosure(s) recorded for payment", expected)


def _min_nec_solution(att: Any) -> None:
    f, s = att.facts, att.session
    enc = f"Encounter/{f['encounter_id']}"
    conditions = [
        f"Condition/{c['id']}"
        for c in s.search("Condition", patient=f"Patient/{f['patient_id']}").fetch()
        if (c.get("encounter") or {}).get("reference") == enc
    ]
    disclose(
        s,
        recipient=f["payer_ref"],
        purpose="HPAYMT",
        refs=[f"Claim/{f['claim_id']}", enc, *conditions],
    )


def _min_nec_whole_record(att: Any) -> None:
    f, s = att.facts, att.session
    pref = f"Patient/{f['patient_id']}"
    refs = [f"Claim/{c['id']}" for c in s.search("Claim", patient=pref).fetch()]
    for rtype in ("Encounter", "Condition", "Observation"):
        refs += [f"{rtype}/{r['id']}" for r in s.search(rtype, patient=pref).fetch()]
    disclose(s, recipient=f["payer_ref"], purpose="HPAYMT", refs=refs)


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
            "Send what supports *that claim*: the claim, its encounter (`Encounter/{encounter_id}`) "
            "and what was recorded for that encounter — release it with\n"
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
        wrong_solutions={
            "whole-record": Solution(
                _min_nec_whole_record,
                fails="only that encounter",
                message="more than the minimum necessary",
                description="every claim, encounter, condition and observation of the patient",
            )
        },
        patients=8,
    )
)
