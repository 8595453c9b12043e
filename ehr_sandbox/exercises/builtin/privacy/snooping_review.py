"""Catalogue item 19 of EXERCISES.md: Snooping review.

Defines and registers ``privacy/snooping-review`` (section "Privacy and access control").
The package ``__init__`` imports the exercise modules in catalogue order; helpers shared
within the section are in ``common``.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ehr_sandbox.audit.events import event_patient, event_username
from ehr_sandbox.errors import AccessDenied, ExerciseError, NotFound
from ehr_sandbox.exercises.builtin.common import patient_label, ref_id
from ehr_sandbox.exercises.builtin.privacy.common import (
    FRONT_DESK,
    PRIVACY_OFFICER,
    SUBMIT_KIND,
    event_seq,
    last_audit_seq,
    living_patients,
    records_of_patient,
    submit,
    submitted_answer,
    treated_by,
    users_by_practitioner,
)
from ehr_sandbox.exercises.grading import GradingContext
from ehr_sandbox.exercises.model import Check, Criterion, Exercise, Expect, Hint, Scenario, Solution
from ehr_sandbox.exercises.registry import register

# ------------------------------------------------------------------------------------------
# 19. Snooping review
# ------------------------------------------------------------------------------------------
SNOOP_CANDIDATES = (
    "fd.brown",
    "ma.chen",
    "ma.johnson",
    "rn.lopez",
    "rn.kim",
    "billing.davis",
    "dr.nguyen",
    "dr.okafor",
)
REVIEWER_SKIP = {"ehr-sandbox", PRIVACY_OFFICER}
CURIOUS_CLERK = "fd.brown"
"""Never on a care team (the VIP's front desk is fd.smith): their peek at a result is refused."""


def _safe_read(session: Any, ref: str) -> None:
    with contextlib.suppress(NotFound, AccessDenied):
        session.read(ref)


def _todays_visit(sandbox: Any, template: Mapping[str, Any], hour: int) -> dict[str, Any]:
    """A booked Appointment on the reference date, copied from one of the patient's own."""
    start = datetime.fromisoformat(str(template["start"]))
    day = sandbox.reference_date
    start = start.replace(year=day.year, month=day.month, day=day.day, hour=hour, minute=0)
    appt = copy.deepcopy(dict(template))
    for key in ("id", "meta", "text", "cancelationReason"):
        appt.pop(key, None)
    length = datetime.fromisoformat(str(template["end"])) - datetime.fromisoformat(
        str(template["start"])
    )
    appt.update(status="booked", start=start.isoformat(), end=(start + length).isoformat())
    return sandbox.system_session().create(appt)


def _setup_snooping(sandbox: Any, variant: Any) -> Scenario:
    """The care team and three curious colleagues open the VIP's chart; one peek is refused.

    Every variant has a refused attempt (a front-desk clerk opening a result, which the
    policy refuses), so a review that flags only successful look-ups misses one everywhere.
    """
    by_prac = users_by_practitioner(sandbox)
    options = []
    for p in living_patients(sandbox):
        appts = [a for a in records_of_patient(sandbox, "Appointment", p["id"]) if a.get("end")]
        if appts and records_of_patient(sandbox, "Observation", p["id"]):
            options.append((p["id"], appts[-1]))
    if not options:
        raise ExerciseError("setup: no patient with an appointment; generate a larger sandbox")
    pid, template = variant.pick(options, salt="vip")
    # Setup makes the VIP's visit today so the care team is a fact of the record.
    appt = _todays_visit(sandbox, template, variant.rng().randint(8, 15))
    vip = sandbox.grader_session().read("Patient", pid)
    care = {FRONT_DESK}
    gp = ref_id((vip.get("generalPractitioner") or [{}])[0])
    if gp in by_prac:
        care.add(by_prac[gp])
    for part in appt.get("participant", []):
        ref = (part.get("actor") or {}).get("reference", "")
        if ref.startswith("Practitioner/") and ref.split("/")[1] in by_prac:
            care.add(by_prac[ref.split("/")[1]])
    rng = variant.rng()
    pool = [u for u in SNOOP_CANDIDATES if u not in care]
    snoopers = sorted(rng.sample(pool, 3))
    start = last_audit_seq(sandbox)
    actions: list[tuple[str, str]] = []
    for user in sorted(care):
        actions.append((user, f"Patient/{pid}"))
    obs = records_of_patient(sandbox, "Observation", pid)
    if obs:
        actions += [(u, f"Observation/{obs[-1]['id']}") for u in sorted(care) if u != FRONT_DESK]
    actions.append((FRONT_DESK, f"Appointment/{appt['id']}"))
    for user in snoopers:
        actions.append((user, f"Patient/{pid}"))
        mine = sorted(treated_by(sandbox, user) - {pid})
        if user in ("fd.brown", "billing.davis"):
            mine = sorted({p for p, _ in options} - {pid})
        if mine:
            actions.append((user, f"Patient/{rng.choice(mine)}"))  # legitimate work, not snooping
    actions.append((CURIOUS_CLERK, f"Observation/{obs[-1]['id']}"))  # refused: still snooping
    rng.shuffle(actions)
    sessions = {u: sandbox.login(u) for u in sorted({u for u, _ in actions})}
    for user, ref in actions:
        _safe_read(sessions[user], ref)
    first, last = start + 1, last_audit_seq(sandbox)
    truth = [
        e
        for e in sandbox.audit.events(patient=pid)
        if first <= event_seq(e) <= last and event_username(e) not in care | REVIEWER_SKIP
    ]
    return Scenario(
        facts={
            "vip_id": pid,
            "vip_name": patient_label(vip),
            "care_team": sorted(care),
            "care_list": ", ".join(f"`{u}`" for u in sorted(care)),
            "from_event": first,
            "to_event": last,
        },
        answer={
            "truth": sorted((str(e["id"]) for e in truth), key=int),
            "refused": sorted(
                (str(e["id"]) for e in truth if str(e.get("outcome")) != "0"), key=int
            ),
        },
    )


def _snoop_truth(ctx: GradingContext) -> set[str]:
    return set(ctx.answer["truth"])


def _flagged(ctx: GradingContext) -> tuple[set[str] | None, str]:
    value = submitted_answer(ctx, "privacy/snooping-review")
    if not isinstance(value, list):
        return None, "no list of flagged event ids handed in (privacy.submit(att, [ids]))"
    flagged = {str(v) for v in value}
    odd = sorted(v for v in flagged if not v.isdigit())
    if odd:  # words, names, the instructions' text: not audit event ids
        return None, f"a list that is not of audit event ids (found {odd[0][:40]!r})"
    return flagged, ""


def _snoop_recall(ctx: GradingContext) -> Check:
    truth = _snoop_truth(ctx)
    expected = "every curiosity look-up flagged, refused attempts included (recall 1.00)"
    flagged, why = _flagged(ctx)
    if flagged is None:
        return Check(False, why, expected)
    hit = flagged & truth
    recall = len(hit) / len(truth) if truth else 1.0
    if recall < 1:
        missed = truth - flagged
        advice = (
            "a refused attempt is snooping too: it shows the intent to look"
            if missed & set(ctx.answer["refused"])
            else "every access outside the care team needs a reason; flag the ones without"
        )
        return Check(
            False, f"recall {recall:.2f}: {len(missed)} look-up(s) missed", expected, advice
        )
    return Check(True, f"recall 1.00 ({len(hit)} of {len(truth)})", expected)


def _snoop_precision(ctx: GradingContext) -> Check:
    truth = _snoop_truth(ctx)
    expected = "only curiosity look-ups flagged (precision 1.00)"
    flagged, why = _flagged(ctx)
    if flagged is None:
        return Check(False, why, expected)
    if not flagged:
        return Check(False, "nothing flagged", expected)
    wrong = flagged - truth
    precision = len(flagged & truth) / len(flagged)
    if wrong:
        return Check(
            False,
            f"precision {precision:.2f}: flagged legitimate treatment access (events {', '.join(sorted(wrong, key=int))})",
            expected,
            "the care team reading its own patient's chart is the job, not snooping",
        )
    return Check(True, f"precision 1.00 ({len(flagged)} flagged)", expected)


def _snoop_reviewed(ctx: GradingContext) -> Check:
    expected = f"the audit trail read by {ctx.user.username} (the review itself is audited)"
    reads = [
        e
        for e in ctx.events("audit-read")
        if event_username(e) == ctx.user.username and str(e.get("outcome")) == "0"
    ]
    if not reads:
        return Check(
            False, "the audit trail was never read by you", expected, "att.session.audit_events()"
        )
    return Check(True, f"{len(reads)} audited review(s)", expected)


def _snoop_events(att: Any) -> list[dict[str, Any]]:
    f = att.facts
    return [
        e
        for e in att.session.audit_events()
        if f["from_event"] <= int(e["id"]) <= f["to_event"] and event_patient(e) == f["vip_id"]
    ]


def _snoop_solution(att: Any) -> None:
    care = set(att.facts["care_team"])
    submit(att, [e["id"] for e in _snoop_events(att) if event_username(e) not in care])


def _snoop_flag_all(att: Any) -> None:
    submit(att, [e["id"] for e in _snoop_events(att)])


def _snoop_successful_only(att: Any) -> None:
    care = set(att.facts["care_team"])
    submit(
        att,
        [
            e["id"]
            for e in _snoop_events(att)
            if event_username(e) not in care and str(e.get("outcome")) == "0"
        ],
    )


def _snoop_whole_window(att: Any) -> None:
    # Every access by the suspects in the window, their legitimate work on other patients too.
    f = att.facts
    care = set(f["care_team"]) | REVIEWER_SKIP
    suspects = {event_username(e) for e in _snoop_events(att)} - care
    submit(
        att,
        [
            e["id"]
            for e in att.session.audit_events()
            if f["from_event"] <= int(e["id"]) <= f["to_event"] and event_username(e) in suspects
        ],
    )


def _snoop_state_hand_in(att: Any) -> None:
    # Answer-key attack: the list is written into the sandbox's state, around the EHR.
    care = set(att.facts["care_team"])
    ids = [e["id"] for e in _snoop_events(att) if event_username(e) not in care]
    att.sandbox.state[f"handin/{att.exercise.id}|{att.student}"] = ids


SNOOPING_REVIEW = register(
    Exercise(
        id="privacy/snooping-review",
        skip_traps=("done-twice", "one-more-record"),  # a report handed in again replaces the first
        title="Snooping review: who looked at the VIP's chart?",
        topic="privacy",
        competencies=("X.P.2", "XI.P.2"),
        minutes=20,
        role=PRIVACY_OFFICER,
        summary="Flag the curiosity look-ups in an audit log, without flagging treatment access.",
        setup=_setup_snooping,
        instructions=(
            "A local celebrity, **{vip_name}** (`Patient/{vip_id}`), has a visit today. "
            "The care team for this visit: {care_list}. Review audit events "
            "**{from_event}–{to_event}** (`att.session.audit_events()`; each event's `id`) and "
            "flag every access to this patient's record by someone who had no job reason to look "
            "(refused attempts count too).\n\n"
            "Hand in the flagged event ids: `privacy.submit(att, ['12', '15', ...])` "
            "(`from ehr_sandbox.exercises.builtin import privacy`), then call `att.check()`."
        ),
        criteria=(
            Criterion(
                "curiosity look-ups flagged",
                3,
                _snoop_recall,
                "Regular review of access records finds workforce members who look without a need (HIPAA 164.308(a)(1)(ii)(D)).",
            ),
            Criterion(
                "treatment access not flagged",
                3,
                _snoop_precision,
                "Accusing staff of snooping for doing their job is itself a harm; sanctions need evidence (HIPAA 164.530(e)).",
            ),
            Criterion(
                "review audited",
                1,
                _snoop_reviewed,
                "Reading the audit trail is itself audited (PRIVACY.md; HIPAA 164.312(b)).",
            ),
        ),
        hints=(
            Hint(
                "`event_patient(ev)` and `event_username(ev)` from `ehr_sandbox.audit.events` "
                "read an event's patient and user."
            ),
            Hint(
                "The same user's access to *another* patient is not about the VIP: keep only events about the VIP.",
                cost=1,
            ),
        ),
        solution=Solution(_snoop_solution, description="VIP events by users outside the care team"),
        topics=("privacy-security",),
        expects=(Expect(SUBMIT_KIND),),
        wrong_solutions={
            "successful-only": Solution(
                _snoop_successful_only,
                fails="curiosity look-ups flagged",
                message="a refused attempt is snooping too",
                description="flags only the look-ups that succeeded",
            ),
            "suspects-whole-window": Solution(
                _snoop_whole_window,
                fails="treatment access not flagged",
                message="flagged legitimate treatment access",
                description="flags everything the suspects did, their work on other patients too",
            ),
            "hand-in-around-the-ehr": Solution(
                _snoop_state_hand_in,
                fails="curiosity look-ups flagged",
                message="no list of flagged event ids handed in",
                description="writes the list into the sandbox state instead of handing it in (answer-key attack)",
            ),
            "flag-everything": Solution(
                _snoop_flag_all,
                fails="treatment access not flagged",
                message="flagged legitimate treatment access",
                description="flags every access to the VIP, the care team's included",
            ),
        },
        patients=10,
    )
)
