"""Catalogue item 16 of EXERCISES.md: Break the glass.

Defines and registers ``privacy/break-the-glass`` (section "Privacy and access control").
The package ``__init__`` imports the exercise modules in catalogue order; helpers shared
within the section are in ``common``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ehr_sandbox.audit.events import event_patient, event_username
from ehr_sandbox.errors import ExerciseError
from ehr_sandbox.exercises.builtin.common import patient_label, ref_id
from ehr_sandbox.exercises.builtin.privacy.common import (
    PRIVACY_OFFICER,
    _events_after,
    _last_seq,
    _living_patients,
    _subtype,
    _treated_by,
    _users_by_practitioner,
)
from ehr_sandbox.exercises.grading import GradingContext, codes
from ehr_sandbox.exercises.model import Check, Criterion, Exercise, Hint, Solution
from ehr_sandbox.exercises.registry import register


# ------------------------------------------------------------------------------------------
# 16. Break the glass
# ------------------------------------------------------------------------------------------
def _purposes(ev: Mapping[str, Any]) -> set[str]:
    out: set[str] = set()
    for agent in ev.get("agent", []):
        if agent.get("requestor"):
            out |= codes(agent.get("purposeOfUse", []))
    return out


BTG_PHYSICIAN = "dr.okafor"
BTG_START_CODE, BTG_STOP_CODE = "110127", "110138"
EMERGENCIES = (
    "collapsed in the waiting room and is unresponsive",
    "has severe chest pain and shortness of breath",
    "is having an anaphylactic reaction after a bee sting",
    "arrived confused with a glucose of 41 mg/dL",
)
ROUTINE = (
    "calls to ask whether their cholesterol result came back",
    "wants a refill of a routine prescription",
    "asks for a copy of last year's immunization record",
)


def _setup_btg(sandbox: Any, variant: Any) -> dict[str, Any]:
    treated = _treated_by(sandbox, BTG_PHYSICIAN)
    others = [p for p in _living_patients(sandbox) if p["id"] not in treated]
    if len(others) < 2:
        raise ExerciseError(f"setup: need two patients {BTG_PHYSICIAN} does not treat")
    emergency = variant.pick(others, salt="emergency")
    routine = variant.pick([p for p in others if p["id"] != emergency["id"]], salt="routine")
    gp = ref_id((emergency.get("generalPractitioner") or [{}])[0])
    return {
        "emergency_id": emergency["id"],
        "emergency_name": patient_label(emergency),
        "emergency_what": variant.pick(EMERGENCIES, salt="what"),
        "emergency_gp": _users_by_practitioner(sandbox).get(gp, "another physician"),
        "routine_id": routine["id"],
        "routine_name": patient_label(routine),
        "routine_what": variant.pick(ROUTINE, salt="routine-what"),
        "after_event": _last_seq(sandbox),
    }


def _btg_events(ctx: GradingContext, code: str) -> list[dict[str, Any]]:
    return [
        e
        for e in _events_after(ctx, ctx.facts["after_event"])
        if _subtype(e) == code and event_username(e) == ctx.user.username
    ]


def _btg_override(ctx: GradingContext) -> Check:
    f = ctx.facts
    expected = (
        f"break-the-glass on {f['emergency_name']} with a reason, and the chart read under it"
    )
    starts = [
        e
        for e in _btg_events(ctx, BTG_START_CODE)
        if event_patient(e) == f["emergency_id"] and str(e.get("outcome")) == "0"
    ]
    if not starts:
        return Check(
            False,
            "no emergency override for the emergency patient",
            expected,
            "session.break_glass(patient, reason)",
        )
    if not any((e.get("outcomeDesc") or "").strip() for e in starts):
        return Check(False, "the override has no reason", expected)
    used = [
        e
        for e in _events_after(ctx, f["after_event"])
        if event_username(e) == ctx.user.username
        and event_patient(e) == f["emergency_id"]
        and "BTG" in _purposes(e)
        and str(e.get("outcome")) == "0"
        and _subtype(e) not in (BTG_START_CODE, BTG_STOP_CODE)
    ]
    if not used:
        return Check(False, "the override was started but the chart was never read", expected)
    return Check(
        True, f"override with reason {starts[0].get('outcomeDesc')!r}, {len(used)} reads", expected
    )


def _btg_not_routine(ctx: GradingContext) -> Check:
    f = ctx.facts
    expected = f"no break-the-glass except for {f['emergency_name']}'s emergency"
    misuse = [e for e in _btg_events(ctx, BTG_START_CODE) if event_patient(e) != f["emergency_id"]]
    if misuse:
        names = {f["routine_id"]: f["routine_name"]}
        who = sorted({names.get(event_patient(e) or "", event_patient(e) or "?") for e in misuse})
        return Check(
            False,
            f"break-the-glass used for a routine look-up ({', '.join(who)})",
            expected,
            "the glass is for emergencies; route routine requests to the patient's own care team",
        )
    return Check(True, "break-the-glass used only for the emergency", expected)


def _btg_ended(ctx: GradingContext) -> Check:
    f = ctx.facts
    expected = "the override ended once the emergency was handled"
    stops = [e for e in _btg_events(ctx, BTG_STOP_CODE) if event_patient(e) == f["emergency_id"]]
    if not stops:
        return Check(
            False, "the override was left open", expected, "session.end_break_glass(patient)"
        )
    return Check(True, "override ended", expected)


def _btg_reviewed(ctx: GradingContext) -> Check:
    f = ctx.facts
    expected = f"the override on {f['emergency_name']} reviewed by {PRIVACY_OFFICER} with a note"
    uses = [
        q
        for q in ctx.sandbox.private.get("btg_review", [])
        if q.get("user") == ctx.user.username and q.get("patient") == f["emergency_id"]
    ]
    if not uses:
        return Check(False, "no override in the review queue", expected)
    pending = [q for q in uses if not q.get("reviewed")]
    if pending:
        return Check(
            False,
            f"{len(pending)} override(s) not reviewed",
            expected,
            "every emergency override is reviewed by the privacy officer",
        )
    bad = [
        q
        for q in uses
        if q.get("reviewer") != PRIVACY_OFFICER or not str(q.get("note", "")).strip()
    ]
    if bad:
        return Check(
            False,
            f"reviewed by {bad[0].get('reviewer')!r} with note {bad[0].get('note')!r}",
            expected,
        )
    return Check(True, f"reviewed by {PRIVACY_OFFICER}", expected)


def _btg_emergency(att: Any) -> None:
    f, s = att.facts, att.session
    s.break_glass(
        f"Patient/{f['emergency_id']}",
        f"Emergency: patient {f['emergency_what']}; need allergies and medications",
    )
    s.read("Patient", f["emergency_id"])
    s.search("AllergyIntolerance", patient=f"Patient/{f['emergency_id']}").fetch()
    s.search("MedicationRequest", patient=f"Patient/{f['emergency_id']}").fetch()
    s.end_break_glass(f["emergency_id"])


def _btg_review(att: Any) -> None:
    po = att.sandbox.login(PRIVACY_OFFICER)
    for _ in range(len(att.sandbox.btg_review_queue(po))):
        item = att.sandbox.btg_review_queue(po)[0]
        ok = item["patient"] == att.facts["emergency_id"]
        note = (
            "Emergency treatment documented; access appropriate"
            if ok
            else "Routine look-up: not an emergency"
        )
        att.sandbox.review_btg(po, 0, appropriate=ok, note=note)


def _btg_solution(att: Any) -> None:
    _btg_emergency(att)
    _btg_review(att)


def _btg_routine(att: Any) -> None:
    f, s = att.facts, att.session
    _btg_emergency(att)
    s.break_glass(f"Patient/{f['routine_id']}", "Patient called about a result")
    s.search("Observation", patient=f"Patient/{f['routine_id']}").fetch()
    s.end_break_glass(f["routine_id"])
    _btg_review(att)


BREAK_THE_GLASS = register(
    Exercise(
        id="privacy/break-the-glass",
        title="Break the glass: emergency access, then review",
        topic="privacy",
        competencies=("X.P.2", "XI.P.2"),
        minutes=15,
        role=BTG_PHYSICIAN,
        summary="Override access for an emergency with a reason, end it, and review it as privacy officer.",
        setup=_setup_btg,
        instructions=(
            "You are covering the clinic. **{emergency_name}** (`Patient/{emergency_id}`), a patient "
            "of {emergency_gp}, {emergency_what}. You do not treat this patient, so the chart is "
            "closed to you — but you need their allergies and medications now.\n\n"
            "1. Break the glass for this patient with a reason "
            "(`att.session.break_glass('Patient/{emergency_id}', reason)`), read what you need, "
            "and end the override (`att.session.end_break_glass('{emergency_id}')`).\n"
            "2. Meanwhile **{routine_name}** (`Patient/{routine_id}`), also not your patient, "
            "{routine_what}. Handle it the normal way.\n"
            "3. Then, as the privacy officer (`po = att.sandbox.login('po.wilson')`), review each "
            "override in `att.sandbox.btg_review_queue(po)` with "
            "`att.sandbox.review_btg(po, index, appropriate=..., note=...)`.\n\nThen call `att.check()`."
        ),
        criteria=(
            Criterion(
                "emergency override with a reason",
                3,
                _btg_override,
                "Emergency access is allowed, with a documented reason (HIPAA 164.312(a)(2)(ii) emergency access procedure).",
            ),
            Criterion(
                "no override for routine work",
                3,
                _btg_not_routine,
                "Break-the-glass is for emergencies only; a routine look-up is an unauthorized access (HIPAA 164.502(a); MAERB X.P.2).",
            ),
            Criterion(
                "override ended",
                1,
                _btg_ended,
                "Emergency access lasts only as long as the emergency (HIPAA 164.312(a)(2)(iii) automatic logoff).",
            ),
            Criterion(
                "override reviewed",
                2,
                _btg_reviewed,
                "Every override is reviewed by the privacy officer (HIPAA 164.308(a)(1)(ii)(D) information system activity review).",
            ),
        ),
        hints=(
            Hint(
                "A routine request for someone else's patient goes to that patient's physician: no override."
            ),
            Hint(
                "The review queue lists pending items; index 0 is the oldest pending one.", cost=1
            ),
        ),
        solution=Solution(
            _btg_solution, description="override for the emergency only, ended and reviewed"
        ),
        wrong_solutions={
            "routine-lookup": Solution(
                _btg_routine,
                fails="no override for routine work",
                message="routine look-up",
                description="also breaks the glass for the routine phone call",
            ),
            "unreviewed": Solution(
                _btg_emergency,
                fails="override reviewed",
                message="not reviewed",
                description="never reviews the override",
            ),
        },
        patients=10,
    )
)
