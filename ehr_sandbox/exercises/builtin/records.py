"""Catalogue section "Editing records": exercises 1-6 of EXERCISES.md.

Each exercise edits the legal record through the Session's record-editing operations and is
graded on the record state *and* its Provenance (who did it, through which operation, with
which reason).

>>> from ehr_sandbox.exercises import get
>>> get("records/correction").role
'ma.garcia'
>>> sorted(get("records/entered-in-error").wrong_solutions)
['overwrite', 'status-edit']
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from ehr_sandbox.exercises.builtin.common import (
    BP_PANEL,
    blood_pressure,
    bp_values,
    document_text,
    is_bp,
    note_type,
    parse_instant,
    patient_facts,
    patient_label,
    progress_note,
    ref_id,
    visible_patients,
)
from ehr_sandbox.exercises.grading import GradingContext, codes, provenance_reason, text_of
from ehr_sandbox.exercises.model import Check, Criterion, Exercise, Hint, Solution
from ehr_sandbox.exercises.registry import register

__all__ = [
    "ADDENDUM",
    "AMENDMENT_REQUEST",
    "CORRECTION",
    "ENTERED_IN_ERROR",
    "LATE_ENTRY",
    "REGISTRATION_UPDATE",
    "sandbox_now",
]

MA = "ma.garcia"
PHYSICIAN = "dr.patel"
FRONT_DESK = "fd.smith"
MESSAGE_CATEGORY = "http://ehr-sandbox.org/CodeSystem/message-category"


def sandbox_now(sandbox: Any) -> datetime:
    """The sandbox's current instant without moving its clock."""
    clock = sandbox.clock
    return clock.peek() if hasattr(clock, "peek") else clock()


def _instant(dt: datetime) -> str:
    return dt.replace(microsecond=0).isoformat()


def _same_instant(a: str | None, b: str | None) -> bool:
    da, db = parse_instant(a), parse_instant(b)
    return da is not None and db is not None and da == db


def _last_change(
    ctx: GradingContext, ref: str
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """(current resource, the Provenance of its current version)."""
    res = ctx.read(ref)
    if res is None:
        return None, None
    provs = ctx.provenance_of_version(ref, str(res.get("meta", {}).get("versionId", "")))
    return res, (provs[-1] if provs else None)


def _documented(
    ctx: GradingContext, prov: dict[str, Any] | None, activity: str, what: str, op: str
) -> Check:
    """Common check: the Provenance shows the attempt's user, the right activity and a reason."""
    expected = f"a Provenance by {ctx.user.username} with activity '{activity}' and a reason"
    if prov is None:
        return Check(False, f"no Provenance for {what}", expected, f"use {op}")
    acts = sorted(ctx.activity(prov))
    if activity not in acts:
        return Check(
            False,
            f"{what} was changed through {'/'.join(acts) or 'an unknown operation'}",
            expected,
            f"use {op}",
        )
    if not ctx.by_user(prov):
        who = text_of(prov.get("agent", [])) or ", ".join(
            (a.get("who") or {}).get("reference", "?") for a in prov.get("agent", [])
        )
        return Check(
            False,
            f"{what} was recorded by {who or 'someone else'}",
            expected,
            "do the work as yourself, in your own session",
        )
    if not provenance_reason(prov):
        return Check(
            False, f"{what} has no reason", expected, "a change to the legal record needs a reason"
        )
    return Check(
        True,
        f"{what} by {ctx.user.username} ({activity}), reason: {provenance_reason(prov)!r}",
        expected,
    )


def _bp_readings(ctx: GradingContext, patient_id: str) -> list[dict[str, Any]]:
    found = ctx.search(
        "Observation", patient=f"Patient/{patient_id}", code=f"http://loinc.org|{BP_PANEL}"
    )
    return [o for o in found if is_bp(o)]


def _describe_bps(readings: list[dict[str, Any]]) -> str:
    if not readings:
        return "no blood pressure readings"
    return ", ".join(f"{s}/{d} ({o.get('status')})" for o in readings for s, d in [bp_values(o)])


def _created_by_user(ctx: GradingContext, res: dict[str, Any], activity: str | None = None) -> bool:
    ref = f"{res['resourceType']}/{res['id']}"
    first = ctx.provenance_of_version(ref, "1")
    return any(ctx.by_user(p) and (activity is None or activity in ctx.activity(p)) for p in first)


# ------------------------------------------------------------------------------------------
# 1. Entered in error
# ------------------------------------------------------------------------------------------
VOID_ADVICE = "never delete; void with a reason"


def _likeness(a: dict[str, Any], b: dict[str, Any]) -> tuple[int, int, int]:
    """Smaller = more alike (same family name, same first initial, close birth year)."""
    na, nb = (a.get("name") or [{}])[0], (b.get("name") or [{}])[0]
    ga, gb = (na.get("given") or ["?"])[0], (nb.get("given") or ["?"])[0]
    ya, yb = int(str(a.get("birthDate", "0"))[:4] or 0), int(str(b.get("birthDate", "0"))[:4] or 0)
    return (
        0 if na.get("family") == nb.get("family") else 1,
        0 if ga[:1] == gb[:1] else 1,
        abs(ya - yb),
    )


def _setup_eie(sandbox: Any, variant: Any) -> dict[str, Any]:
    patients = visible_patients(sandbox, MA, minimum=2)
    right = variant.pick(patients, salt="right")
    wrong = min(
        (p for p in patients if p["id"] != right["id"]),
        key=lambda p: (_likeness(right, p), p["id"]),
    )
    rng = variant.rng()
    systolic = rng.randint(112, 158)
    diastolic = rng.randint(64, min(98, systolic - 30))
    taken = _instant(sandbox_now(sandbox) - timedelta(minutes=rng.randint(15, 90)))
    obs = sandbox.login(MA).create(
        blood_pressure(f"Patient/{wrong['id']}", systolic, diastolic, taken)
    )
    return {
        **patient_facts(right, "right"),
        **patient_facts(wrong, "wrong"),
        "obs_id": obs["id"],
        "systolic": systolic,
        "diastolic": diastolic,
        "taken": taken,
    }


def _eie_original_kept(ctx: GradingContext) -> Check:
    f = ctx.facts
    ref = f"Observation/{f['obs_id']}"
    expected = (
        f"{ref} still on {f['wrong_name']}'s chart, unchanged, with status 'entered-in-error'"
    )
    obs = ctx.read(ref)
    if obs is None:
        return Check(False, f"{ref} no longer exists", expected, VOID_ADVICE)
    if ref_id(obs.get("subject")) != f["wrong_id"]:
        return Check(
            False,
            f"{ref} was overwritten: it now points at Patient/{ref_id(obs.get('subject'))}",
            expected,
            VOID_ADVICE,
        )
    if bp_values(obs) != (f["systolic"], f["diastolic"]):
        return Check(
            False,
            f"{ref} was overwritten with {'/'.join(map(str, bp_values(obs)))}",
            expected,
            VOID_ADVICE,
        )
    if obs.get("status") != "entered-in-error":
        return Check(False, f"{ref} has status {obs.get('status')!r}", expected, VOID_ADVICE)
    return Check(True, f"{ref} kept with status 'entered-in-error'", expected)


def _eie_void_documented(ctx: GradingContext) -> Check:
    ref = f"Observation/{ctx.facts['obs_id']}"
    obs, prov = _last_change(ctx, ref)
    if obs is None or obs.get("status") != "entered-in-error":
        return Check(
            False,
            f"{ref} was not voided",
            "a void recorded with mark_entered_in_error and a reason",
            VOID_ADVICE,
        )
    return _documented(
        ctx,
        prov,
        "entered-in-error",
        f"the void of {ref}",
        "session.mark_entered_in_error(ref, reason=...)",
    )


def _eie_recharted(ctx: GradingContext) -> Check:
    f = ctx.facts
    expected = f"a final BP {f['systolic']}/{f['diastolic']} mmHg on {f['right_name']}'s chart, taken {f['taken']}, charted by {ctx.user.username}"
    readings = _bp_readings(ctx, f["right_id"])
    same = [
        o
        for o in readings
        if bp_values(o) == (f["systolic"], f["diastolic"])
        and o.get("status") in ("final", "amended", "corrected")
        and o["id"] != f["obs_id"]  # moving the original is overwriting, not re-charting
    ]
    if not same:
        return Check(
            False,
            f"{f['right_name']}'s chart has {_describe_bps(readings)}",
            expected,
            "chart the reading again on the right patient",
        )
    good = [o for o in same if _same_instant(o.get("effectiveDateTime"), f["taken"])]
    if not good:
        return Check(
            False,
            f"the reading is charted at {same[0].get('effectiveDateTime')}",
            expected,
            "keep the time the reading was taken",
        )
    if not any(_created_by_user(ctx, o) for o in good):
        return Check(
            False,
            "the new reading was not charted by you",
            expected,
            "chart it in your own session",
        )
    return Check(True, f"Observation/{good[0]['id']} on {f['right_name']}'s chart", expected)


def _eie_solution(att: Any) -> None:
    f, s = att.facts, att.session
    s.mark_entered_in_error(
        f"Observation/{f['obs_id']}",
        reason=f"Charted on the wrong patient; belongs to {f['right_name']} (MRN {f['right_mrn']})",
    )
    s.create(blood_pressure(f"Patient/{f['right_id']}", f["systolic"], f["diastolic"], f["taken"]))


def _eie_overwrite(att: Any) -> None:
    f, s = att.facts, att.session
    obs = s.read("Observation", f["obs_id"])
    obs["subject"] = {"reference": f"Patient/{f['right_id']}"}
    s.update(obs)


def _eie_status_edit(att: Any) -> None:
    f, s = att.facts, att.session
    obs = s.read("Observation", f["obs_id"])
    obs["status"] = "entered-in-error"
    s.update(obs)
    s.create(blood_pressure(f"Patient/{f['right_id']}", f["systolic"], f["diastolic"], f["taken"]))


ENTERED_IN_ERROR = register(
    Exercise(
        id="records/entered-in-error",
        title="Entered in error: a BP on the wrong patient",
        topic="records",
        competencies=("X.P.3", "VI.P.6", "I.P.1"),
        minutes=15,
        role=MA,
        summary="BP charted on a look-alike patient: void it and re-chart it on the right patient.",
        setup=_setup_eie,
        instructions=(
            "This morning you measured a blood pressure of **{systolic}/{diastolic} mmHg** at `{taken}` for "
            "**{right_name}** (DOB {right_dob}, MRN {right_mrn}). It was charted by mistake on "
            "**{wrong_name}** (DOB {wrong_dob}, MRN {wrong_mrn}) as `Observation/{obs_id}`.\n\n"
            "1. Void the wrong entry, giving the reason.\n"
            "2. Chart the reading on the right patient, with the time it was taken.\n\n"
            "Work through `att.session` and call `att.check()` when done."
        ),
        criteria=(
            Criterion(
                "original kept and voided",
                3,
                _eie_original_kept,
                "The legal record keeps every entry: an error is voided (status entered-in-error), never erased or overwritten (documentation standards; MAERB X.P.3).",
            ),
            Criterion(
                "void documented",
                2,
                _eie_void_documented,
                "Who voided an entry and why must be on the record (HIPAA 164.312(b) audit controls; MAERB X.P.3).",
            ),
            Criterion(
                "re-charted on the right patient",
                3,
                _eie_recharted,
                "The right patient's chart must show the reading actually taken, at the time it was taken (MAERB I.P.1, X.P.3).",
            ),
        ),
        hints=(
            Hint("`att.session.mark_entered_in_error(ref, reason=...)` voids without deleting."),
            Hint(
                "Copy the wrong Observation, drop its `id` and `meta`, point `subject` at the right patient and `create` it.",
                cost=1,
            ),
        ),
        solution=Solution(
            _eie_solution,
            description="void with a reason, then create a new Observation on the right patient",
        ),
        wrong_solutions={
            "overwrite": Solution(
                _eie_overwrite,
                fails="original kept and voided",
                message=VOID_ADVICE,
                description="move the Observation to the right patient by editing it",
            ),
            "status-edit": Solution(
                _eie_status_edit,
                fails="void documented",
                message="mark_entered_in_error",
                description="set the status by a plain update, with no reason",
            ),
        },
    )
)


# ------------------------------------------------------------------------------------------
# 2. Correction
# ------------------------------------------------------------------------------------------
def _setup_correction(sandbox: Any, variant: Any) -> dict[str, Any]:
    patient = variant.pick(visible_patients(sandbox, MA), salt="patient")
    rng = variant.rng()
    tens, units = rng.choice([2, 3, 4]), rng.choice([5, 6, 7, 8])
    right, keyed = 100 + 10 * tens + units, 100 + 10 * units + tens  # e.g. 138 keyed as 183
    diastolic = rng.randint(70, 92)
    taken = _instant(sandbox_now(sandbox) - timedelta(minutes=rng.randint(10, 60)))
    obs = sandbox.login(MA).create(
        blood_pressure(f"Patient/{patient['id']}", keyed, diastolic, taken)
    )
    return {
        **patient_facts(patient, "patient"),
        "obs_id": obs["id"],
        "right": right,
        "keyed": keyed,
        "diastolic": diastolic,
        "taken": taken,
    }


def _corr_value(ctx: GradingContext) -> Check:
    f = ctx.facts
    ref = f"Observation/{f['obs_id']}"
    expected = f"{ref} reading {f['right']}/{f['diastolic']} mmHg"
    obs = ctx.read(ref)
    if obs is None:
        return Check(
            False, f"{ref} is gone", expected, "correct the existing entry; never delete it"
        )
    if obs.get("status") == "entered-in-error":
        return Check(
            False,
            f"{ref} was voided instead of corrected",
            expected,
            "a keying error on the right patient is corrected, not voided",
        )
    vals = bp_values(obs)
    if vals != (f["right"], f["diastolic"]) or ref_id(obs.get("subject")) != f["patient_id"]:
        return Check(
            False, f"{ref} reads {vals[0]}/{vals[1]}", expected, "fix only the wrong value"
        )
    return Check(True, f"{ref} reads {vals[0]}/{vals[1]}", expected)


def _corr_status(ctx: GradingContext) -> Check:
    obs = ctx.read(f"Observation/{ctx.facts['obs_id']}") or {}
    ok = obs.get("status") in ("corrected", "amended")
    return Check(
        ok,
        f"status {obs.get('status')!r}",
        "status 'corrected' (or 'amended')",
        "" if ok else "a corrected result says so in its status",
    )


def _corr_history(ctx: GradingContext) -> Check:
    f = ctx.facts
    ref = f"Observation/{f['obs_id']}"
    versions = ctx.history(ref)
    old = [v for v in versions if bp_values(v)[0] == f["keyed"]]
    ok = bool(old) and len(versions) >= 2
    return Check(
        ok,
        f"{len(versions)} version(s), {'including' if old else 'without'} the keyed value {f['keyed']}",
        f"the history still showing {f['keyed']} in an earlier version",
        "" if ok else "correct the same resource so its history keeps the old value",
    )


def _corr_documented(ctx: GradingContext) -> Check:
    ref = f"Observation/{ctx.facts['obs_id']}"
    obs, prov = _last_change(ctx, ref)
    if obs is None or int(obs.get("meta", {}).get("versionId", "1")) < 2:
        return Check(
            False,
            f"{ref} was not changed",
            "a correction with a reason",
            "a correction needs a reason",
        )
    chk = _documented(
        ctx, prov, "correct", f"the change to {ref}", "session.correct(resource, reason=...)"
    )
    if not chk.passed:
        return Check(
            False,
            chk.found,
            chk.expected,
            "a correction needs a reason: " + (chk.advice or "use session.correct"),
        )
    return chk


def _corr_fixed(att: Any) -> dict[str, Any]:
    obs = att.session.read("Observation", att.facts["obs_id"])
    for comp in obs["component"]:
        if comp["valueQuantity"]["value"] == att.facts["keyed"]:
            comp["valueQuantity"]["value"] = att.facts["right"]
    return obs


def _corr_solution(att: Any) -> None:
    f = att.facts
    att.session.correct(
        _corr_fixed(att), reason=f"Transcription error: systolic {f['right']} keyed as {f['keyed']}"
    )


def _corr_no_reason(att: Any) -> None:
    att.session.update(_corr_fixed(att))


CORRECTION = register(
    Exercise(
        id="records/correction",
        title="Correction: a transposed systolic value",
        topic="records",
        competencies=("X.P.3", "I.P.1", "II.P.3"),
        minutes=10,
        role=MA,
        summary="138 keyed as 183: correct it with a reason; history keeps the old value.",
        setup=_setup_correction,
        instructions=(
            "You roomed **{patient_name}** (DOB {patient_dob}, MRN {patient_mrn}) and measured "
            "**{right}/{diastolic} mmHg**, but keyed the systolic as **{keyed}** in `Observation/{obs_id}`.\n\n"
            "Correct the entry so the chart shows what you measured. The record must still show "
            "what was charted before, and why it changed."
        ),
        criteria=(
            Criterion(
                "value corrected",
                2,
                _corr_value,
                "The chart must show the value actually measured (MAERB I.P.1, X.P.3).",
            ),
            Criterion(
                "status shows correction",
                1,
                _corr_status,
                "A corrected result is marked as corrected so readers know it changed (FHIR Observation.status; documentation standards).",
            ),
            Criterion(
                "history keeps the old value",
                1,
                _corr_history,
                "Corrections never erase: the original entry stays readable in the record's history (documentation standards).",
            ),
            Criterion(
                "correction documented with a reason",
                2,
                _corr_documented,
                "Every correction of the legal record names who made it and why (HIPAA 164.312(b); MAERB X.P.3).",
            ),
        ),
        hints=(
            Hint(
                "Read the Observation, change the systolic component's value, and save it with an operation that records a reason."
            ),
            Hint(
                "`att.session.correct(obs, reason=...)` sets the status and keeps the history.",
                cost=1,
            ),
        ),
        solution=Solution(_corr_solution, description="session.correct with a reason"),
        wrong_solutions={
            "no-reason": Solution(
                _corr_no_reason,
                fails="correction documented with a reason",
                message="a correction needs a reason",
                description="edit the value with a plain update and no reason",
            ),
        },
    )
)


# ------------------------------------------------------------------------------------------
# 3. Patient amendment request (HIPAA 164.526)
# ------------------------------------------------------------------------------------------
_AMENDMENT_SCENARIOS: tuple[dict[str, str], ...] = (
    {
        "decision": "accept",
        "note": "Social history: current smoker, about 1 pack per day.",
        "request": "My visit note says I smoke a pack a day. I have never smoked. Please correct my record.",
        "amendment": "Amendment at the patient's request: the patient has never smoked; the social history line 'current smoker, about 1 pack per day' is incorrect.",
        "keyword": "never smoked",
    },
    {
        "decision": "accept",
        "note": "Allergies: no known drug allergies.",
        "request": "My note says I have no drug allergies, but I am allergic to penicillin (I get hives). Please fix this.",
        "amendment": "Amendment at the patient's request: the patient reports a penicillin allergy (hives); 'no known drug allergies' is incorrect.",
        "keyword": "penicillin",
    },
    {
        "decision": "deny",
        "note": "Assessment: blood pressure elevated at today's visit; recheck in 4 weeks.",
        "request": "Please remove the high blood pressure from my note. My pressure is fine at home.",
        "amendment": "",
        "keyword": "",
    },
    {
        "decision": "deny",
        "note": "Plan: influenza vaccine offered; patient declined today.",
        "request": "Please take out that I refused the flu shot. I don't want that in my record.",
        "amendment": "",
        "keyword": "",
    },
)
AMEND_ADVICE = (
    "never silently edit the clinician's note; append the amendment and link it to the request"
)


def _setup_amendment(sandbox: Any, variant: Any) -> dict[str, Any]:
    from ehr_sandbox.errors import AccessDenied

    doctor = sandbox.login(PHYSICIAN)
    patient = variant.pick(visible_patients(sandbox, PHYSICIAN), salt="patient")
    scenario = variant.pick(_AMENDMENT_SCENARIOS, salt="scenario")
    rng = variant.rng()
    now = sandbox_now(sandbox)
    visit = now - timedelta(days=rng.randint(30, 90))
    received = now - timedelta(days=rng.randint(3, 40))
    text = f"Office visit {visit.date().isoformat()}.\n{scenario['note']}\nSigned: {doctor.user.display}"
    note = doctor.create(
        progress_note(
            f"Patient/{patient['id']}",
            doctor.user.ref,
            text,
            _instant(visit),
            type_=note_type(sandbox),
        )
    )
    request = {
        "resourceType": "Communication",
        "status": "completed",
        "category": [
            {
                "coding": [
                    {
                        "system": MESSAGE_CATEGORY,
                        "code": "amendment-request",
                        "display": "Amendment request (HIPAA 164.526)",
                    }
                ]
            }
        ],
        "subject": {"reference": f"Patient/{patient['id']}"},
        "sender": {"reference": f"Patient/{patient['id']}"},
        "recipient": [{"reference": doctor.user.ref}],
        "about": [{"reference": f"DocumentReference/{note['id']}"}],
        "sent": _instant(received),
        "payload": [{"contentString": scenario["request"]}],
    }
    try:  # the request comes through the patient portal
        req = sandbox.login_patient(patient["id"]).create(request)
    except AccessDenied:
        req = sandbox.system_session().create(request)
    return {
        **patient_facts(patient, "patient"),
        "doctor": doctor.user.display,
        "note_id": note["id"],
        "note_version": note["meta"]["versionId"],
        "note_line": scenario["note"],
        "request_id": req["id"],
        "received": _instant(received),
        "received_day": received.date().isoformat(),
        "deadline": (received + timedelta(days=60)).date().isoformat(),
        "request_text": scenario["request"],
        "decision": scenario["decision"],
        "decision_text": (
            "**accepted** the request. Append this amendment to the note and link it to the request: "
            f"*{scenario['amendment']}*"
            if scenario["decision"] == "accept"
            else "**denied** the request because the note is **accurate and complete** (164.526(a)(2)(iv)). "
            "Send the patient a written denial that states this basis and their right to submit a "
            "statement of disagreement (and how to complain)."
        ),
        "amendment": scenario["amendment"],
        "keyword": scenario["keyword"],
    }


def _addenda(ctx: GradingContext) -> list[dict[str, Any]]:
    target = f"DocumentReference/{ctx.facts['note_id']}"
    return [
        d
        for d in ctx.all("DocumentReference")
        if any(
            r.get("code") == "appends" and (r.get("target") or {}).get("reference") == target
            for r in d.get("relatesTo", []) or []
        )
        and d.get("status") != "entered-in-error"
    ]


def _replies(ctx: GradingContext) -> list[dict[str, Any]]:
    req = f"Communication/{ctx.facts['request_id']}"
    return [
        c
        for c in ctx.all("Communication")
        if any(r.get("reference") == req for r in c.get("inResponseTo", []) or [])
        and any(
            ref_id(r) == ctx.facts["patient_id"]
            and (r.get("reference") or "").startswith("Patient/")
            for r in c.get("recipient", []) or []
        )
    ]


def _amend_note_unchanged(ctx: GradingContext) -> Check:
    f = ctx.facts
    ref = f"DocumentReference/{f['note_id']}"
    expected = (
        f"{ref} unchanged (version {f['note_version']}) with the amendment appended separately"
    )
    note, prov = _last_change(ctx, ref)
    if note is None:
        return Check(False, f"{ref} is gone", expected, AMEND_ADVICE)
    version = str(note.get("meta", {}).get("versionId"))
    if version != str(f["note_version"]):
        how = "/".join(sorted(ctx.activity(prov))) if prov else "an unknown operation"
        return Check(
            False,
            f"{ref} was edited in place (now version {version}, through {how})",
            expected,
            AMEND_ADVICE,
        )
    if not _addenda(ctx) and not _replies(ctx):
        return Check(False, "the request has not been answered yet", expected, AMEND_ADVICE)
    return Check(True, f"{ref} still at version {version}", expected)


def _amend_decision(ctx: GradingContext) -> Check:
    f = ctx.facts
    addenda = _addenda(ctx)
    if f["decision"] == "deny":
        expected = "a written denial (a reply to the request) and no amendment appended"
        if addenda:
            return Check(
                False,
                f"{len(addenda)} amendment(s) appended",
                expected,
                "carry out the physician's decision: this request was denied",
            )
        if not _replies(ctx):
            return Check(
                False,
                "no denial was sent",
                expected,
                "a denial must be given to the patient in writing (164.526(d))",
            )
        return Check(True, "denied in writing; no amendment appended", expected)
    expected = f"an addendum (relatesTo appends DocumentReference/{f['note_id']}) mentioning '{f['keyword']}', written by {ctx.user.username}"
    if not addenda:
        return Check(False, "no document appends the note", expected, AMEND_ADVICE)
    good = [d for d in addenda if f["keyword"].lower() in document_text(d).lower()]
    if not good:
        return Check(
            False,
            "the appended document does not contain the amendment",
            expected,
            "append the amendment text the physician approved",
        )
    if not any(_created_by_user(ctx, d) for d in good):
        return Check(
            False,
            "the amendment was not appended by you",
            expected,
            "append it in your own session",
        )
    return Check(True, f"DocumentReference/{good[0]['id']} appends the note", expected)


def _amend_notified(ctx: GradingContext) -> Check:
    f = ctx.facts
    replies = _replies(ctx)
    if f["decision"] == "accept":
        expected = (
            "a reply to the patient's request (inResponseTo) that links the amendment (about)"
        )
        if not replies:
            return Check(
                False,
                "no reply to the request was sent to the patient",
                expected,
                "tell the patient the amendment was made (164.526(c)(2))",
            )
        linked = {d["id"] for d in _addenda(ctx)}
        ok = [
            c
            for c in replies
            if any(
                r.get("reference", "").startswith("DocumentReference/") and ref_id(r) in linked
                for r in c.get("about", []) or []
            )
        ]
        if not ok:
            return Check(
                False,
                "the reply does not link the amendment",
                expected,
                "link the amendment in the reply's about",
            )
        return Check(
            True,
            f"Communication/{ok[0]['id']} answers the request and links the amendment",
            expected,
        )
    expected = "a written denial to the patient (inResponseTo the request) stating the basis and the right to disagree"
    if not replies:
        return Check(
            False,
            "no reply to the request was sent to the patient",
            expected,
            "a denial must be given to the patient in writing (164.526(d))",
        )
    for c in replies:
        text = text_of(c.get("payload", [])).lower()
        if "accurate and complete" in text and "disagree" in text:
            return Check(
                True,
                f"Communication/{c['id']} states the basis and the right to disagree",
                expected,
            )
    return Check(
        False,
        "the denial does not state the basis ('accurate and complete') and the right to submit a statement of disagreement",
        expected,
        "a denial states its basis and the patient's right to disagree (164.526(d)(1))",
    )


def _amend_timely(ctx: GradingContext) -> Check:
    f = ctx.facts
    received = parse_instant(f["received"])
    expected = f"an answer by {f['deadline']} (60 days after the request)"
    times = [parse_instant(c.get("sent")) for c in _replies(ctx)]
    times = [t for t in times if t is not None]
    if not times or received is None:
        return Check(False, "no answer yet", expected, "answer within 60 days (164.526(b)(2))")
    first = min(times)
    ok = first <= received + timedelta(days=60)
    return Check(
        ok,
        f"answered on {first.date().isoformat()}",
        expected,
        "" if ok else "answer within 60 days (164.526(b)(2))",
    )


def _reply(att: Any, text: str, about: list[str]) -> dict[str, Any]:
    f = att.facts
    s = att.session
    return {
        "resourceType": "Communication",
        "status": "completed",
        "category": [
            {
                "coding": [
                    {
                        "system": MESSAGE_CATEGORY,
                        "code": "amendment-request",
                        "display": "Amendment request (HIPAA 164.526)",
                    }
                ]
            }
        ],
        "subject": {"reference": f"Patient/{f['patient_id']}"},
        "sender": {"reference": s.user.ref},
        "recipient": [{"reference": f"Patient/{f['patient_id']}"}],
        "inResponseTo": [{"reference": f"Communication/{f['request_id']}"}],
        "about": [{"reference": r} for r in about],
        "sent": _instant(sandbox_now(att.sandbox)),
        "payload": [{"contentString": text}],
    }


def _amend_solution(att: Any) -> None:
    f, s = att.facts, att.session
    note = f"DocumentReference/{f['note_id']}"
    if f["decision"] == "accept":
        add = s.addendum(
            note,
            f["amendment"],
            reason=f"Patient amendment request of {f['received'][:10]} accepted (HIPAA 164.526)",
        )
        s.create(
            _reply(
                att,
                "Your request to amend your record was accepted. The amendment has been added to your visit note.",
                [note, f"DocumentReference/{add['id']}"],
            )
        )
    else:
        s.create(
            _reply(
                att,
                (
                    "Your request to amend your record was denied because the note is accurate and complete "
                    "(45 CFR 164.526(a)(2)(iv)). You have the right to submit a written statement of disagreement, "
                    "which we will add to your record, and you may complain to our privacy officer or to the "
                    "Secretary of Health and Human Services."
                ),
                [note],
            )
        )


def _amend_edit_note(att: Any) -> None:
    f, s = att.facts, att.session
    note = s.read("DocumentReference", f["note_id"])
    import base64

    note["content"][0]["attachment"]["data"] = base64.b64encode(
        f"Office visit.\n(line removed at the patient's request)\n{f['amendment']}".encode()
    ).decode()
    s.update(note)
    s.create(_reply(att, "Your record was updated.", [f"DocumentReference/{f['note_id']}"]))


AMENDMENT_REQUEST = register(
    Exercise(
        id="records/amendment-request",
        title="Patient amendment request (HIPAA 164.526)",
        topic="records",
        competencies=("X.P.2", "X.P.3", "X.P.4", "V.P.8"),
        minutes=20,
        role=PHYSICIAN,
        summary="A portal request to amend a note: accept (append, link, notify) or deny with grounds, within 60 days.",
        setup=_setup_amendment,
        instructions=(
            "On {received_day} **{patient_name}** (DOB {patient_dob}, MRN {patient_mrn}) sent a request through "
            "the patient portal (`Communication/{request_id}`) to amend your note `DocumentReference/{note_id}`:\n\n"
            "> {request_text}\n\nThe note says: *{note_line}*\n\n"
            "You reviewed it and {decision_text}\n\n"
            "Answer the patient by replying to their request (a `Communication` to the patient with "
            "`inResponseTo` the request) before **{deadline}**. Never change the note itself."
        ),
        criteria=(
            Criterion(
                "note not silently edited",
                3,
                _amend_note_unchanged,
                "An amendment is appended to the record and linked, never written over the clinician's entry (HIPAA 164.526(c)(1)).",
            ),
            Criterion(
                "decision carried out",
                3,
                _amend_decision,
                "An accepted amendment is appended to the affected record; a denied one changes nothing (HIPAA 164.526(c), (d)).",
            ),
            Criterion(
                "patient notified",
                2,
                _amend_notified,
                "The patient is told the outcome in writing; a denial states the basis and the right to disagree (HIPAA 164.526(c)(2), (d)(1)).",
            ),
            Criterion(
                "answered within 60 days",
                1,
                _amend_timely,
                "A covered entity acts on an amendment request within 60 days of receiving it (HIPAA 164.526(b)(2)).",
            ),
        ),
        hints=(
            Hint(
                "Accepting: `att.session.addendum(note_ref, text, reason=...)` appends without touching the note."
            ),
            Hint(
                "Your reply is a Communication with `recipient` the patient, `inResponseTo` the request and `about` the documents it concerns.",
                cost=1,
            ),
        ),
        solution=Solution(
            _amend_solution,
            description="addendum + linked reply (accept) or written denial with basis and right to disagree",
        ),
        wrong_solutions={
            "edit-note": Solution(
                _amend_edit_note,
                fails="note not silently edited",
                message=AMEND_ADVICE,
                description="edit the clinician's note in place",
            ),
        },
    )
)


# ------------------------------------------------------------------------------------------
# 4. Late entry
# ------------------------------------------------------------------------------------------
LATE_ADVICE = "do not backdate: a late entry keeps the time it was recorded and is marked as a late entry with a reason"


def _setup_late(sandbox: Any, variant: Any) -> dict[str, Any]:
    patient = variant.pick(visible_patients(sandbox, MA), salt="patient")
    rng = variant.rng()
    now = sandbox_now(sandbox)
    yesterday = (now - timedelta(days=1)).replace(
        hour=rng.randint(13, 17), minute=rng.choice([5, 10, 20, 35, 40, 50]), second=0
    )
    systolic = rng.randint(142, 168)
    diastolic = rng.randint(88, 102)
    return {
        **patient_facts(patient, "patient"),
        "event_time": _instant(yesterday),
        "systolic": systolic,
        "diastolic": diastolic,
        "call_day": yesterday.date().isoformat(),
        "call_time": yesterday.strftime("%H:%M"),
    }


def _late_reading(ctx: GradingContext) -> list[dict[str, Any]]:
    f = ctx.facts
    return [
        o
        for o in _bp_readings(ctx, f["patient_id"])
        if bp_values(o) == (f["systolic"], f["diastolic"]) and o.get("status") != "entered-in-error"
    ]


def _late_charted(ctx: GradingContext) -> Check:
    f = ctx.facts
    found = _late_reading(ctx)
    expected = f"a BP {f['systolic']}/{f['diastolic']} mmHg on {f['patient_name']}'s chart"
    if not found:
        return Check(
            False,
            f"the chart has {_describe_bps(_bp_readings(ctx, f['patient_id']))}",
            expected,
            "chart the reported reading",
        )
    return Check(True, f"Observation/{found[0]['id']}", expected)


def _late_event_time(ctx: GradingContext) -> Check:
    f = ctx.facts
    expected = f"effective time {f['event_time']} (when it happened)"
    found = _late_reading(ctx)
    if not found:
        return Check(
            False, "no reading charted", expected, "chart the reading with the time it was taken"
        )
    if any(_same_instant(o.get("effectiveDateTime"), f["event_time"]) for o in found):
        return Check(True, f"effective {f['event_time']}", expected)
    return Check(
        False,
        f"effective {found[0].get('effectiveDateTime')}",
        expected,
        "the effective time is when it happened, not when you chart it",
    )


def _late_marked(ctx: GradingContext) -> Check:
    expected = "recorded now (not backdated), tagged late-entry, with a Provenance 'late-entry' by you with a reason"
    found = _late_reading(ctx)
    if not found:
        return Check(False, "no reading charted", expected, LATE_ADVICE)
    obs = found[0]
    ref = f"Observation/{obs['id']}"
    provs = ctx.provenance_of_version(ref, "1")
    recorded = parse_instant(provs[-1].get("recorded")) if provs else None
    issued = parse_instant(obs.get("issued"))
    if issued is not None and recorded is not None and issued < recorded - timedelta(minutes=5):
        return Check(
            False,
            f"issued {obs.get('issued')} although it was recorded at {provs[-1].get('recorded')}",
            expected,
            LATE_ADVICE,
        )
    tagged = "late-entry" in codes(obs.get("meta", {}).get("tag", []))
    chk = _documented(
        ctx,
        provs[-1] if provs else None,
        "late-entry",
        ref,
        "session.late_entry(obs, event_time=..., reason=...)",
    )
    if not tagged or not chk.passed:
        return Check(
            False,
            chk.found if not chk.passed else f"{ref} is not tagged as a late entry",
            expected,
            LATE_ADVICE,
        )
    return Check(True, f"{ref} tagged late-entry; {chk.found}", expected)


def _late_obs(att: Any, effective: str) -> dict[str, Any]:
    f = att.facts
    obs = blood_pressure(f"Patient/{f['patient_id']}", f["systolic"], f["diastolic"], effective)
    obs["note"] = [
        {"text": f"Home reading reported by phone on {f['call_day']} at {f['call_time']}."}
    ]
    return obs


def _late_solution(att: Any) -> None:
    f = att.facts
    att.session.late_entry(
        _late_obs(att, f["event_time"]),
        event_time=f["event_time"],
        reason=f"Phone call of {f['call_day']} {f['call_time']} not charted at the time",
    )


def _late_backdated(att: Any) -> None:
    f = att.facts
    obs = _late_obs(att, f["event_time"])
    obs["issued"] = f["event_time"]
    att.session.create(obs)


def _late_as_now(att: Any) -> None:
    att.session.create(_late_obs(att, _instant(sandbox_now(att.sandbox))))


LATE_ENTRY = register(
    Exercise(
        id="records/late-entry",
        title="Late entry: yesterday's phone call",
        topic="records",
        competencies=("X.P.3", "V.P.7", "I.P.1"),
        minutes=10,
        role=MA,
        summary="Chart yesterday's phone report: effective = event time, recorded = now, tagged late entry.",
        setup=_setup_late,
        instructions=(
            "Yesterday ({call_day}) at **{call_time}** (UTC) **{patient_name}** (DOB {patient_dob}, MRN {patient_mrn}) "
            "phoned to report a home blood pressure of **{systolic}/{diastolic} mmHg** taken just then. "
            "Nobody charted it.\n\nChart it now as a **late entry**: the reading's time is when it was "
            "taken (`{event_time}`); the record must show it was charted late, and why."
        ),
        criteria=(
            Criterion(
                "reading charted",
                2,
                _late_charted,
                "Information a patient reports by phone belongs in the chart (MAERB V.P.7).",
            ),
            Criterion(
                "effective time is the event time",
                2,
                _late_event_time,
                "A reading is dated when it was taken, so trends and decisions use the right time (documentation standards).",
            ),
            Criterion(
                "late entry marked, not backdated",
                3,
                _late_marked,
                "A late entry is labelled as late with the actual recording time and a reason; backdating falsifies the record (documentation standards; MAERB X.P.3).",
            ),
        ),
        hints=(
            Hint(
                "`att.session.late_entry(resource, event_time=..., reason=...)` keeps both times."
            ),
        ),
        solution=Solution(
            _late_solution, description="session.late_entry with the event time and a reason"
        ),
        wrong_solutions={
            "backdated": Solution(
                _late_backdated,
                fails="late entry marked, not backdated",
                message="do not backdate",
                description="create the Observation with issued = the call time",
            ),
            "charted-as-now": Solution(
                _late_as_now,
                fails="effective time is the event time",
                message="not when you chart it",
                description="chart the reading with the current time",
            ),
        },
    )
)


# ------------------------------------------------------------------------------------------
# 5. Addendum
# ------------------------------------------------------------------------------------------
_ADDITIONS: tuple[tuple[str, str], ...] = (
    (
        "Patient also reports mild ankle swelling for one week; advised leg elevation, recheck at follow-up.",
        "ankle swelling",
    ),
    ("Home glucose log reviewed after the visit: fasting values 110-130 mg/dL.", "glucose log"),
    (
        "Outside lipid panel from last month received and reviewed; no change to the plan.",
        "lipid panel",
    ),
    (
        "Patient called back: the rash started after a new laundry detergent; continue plan.",
        "laundry detergent",
    ),
)
ADDENDUM_ADVICE = "an addendum must point to the note it appends (relatesTo code 'appends'); never edit or replace a signed note"


def _setup_addendum(sandbox: Any, variant: Any) -> dict[str, Any]:
    doctor = sandbox.login(PHYSICIAN)
    patient = variant.pick(visible_patients(sandbox, PHYSICIAN), salt="patient")
    addition, keyword = variant.pick(_ADDITIONS, salt="addition")
    rng = variant.rng()
    when = sandbox_now(sandbox) - timedelta(days=rng.randint(1, 6))
    text = (
        f"Office visit {when.date().isoformat()} with {patient_label(patient)}.\n"
        "Assessment and plan discussed; follow up as scheduled."
    )
    note = doctor.create(
        progress_note(
            f"Patient/{patient['id']}",
            doctor.user.ref,
            text,
            _instant(when),
            type_=note_type(sandbox),
        )
    )
    doctor.sign(f"DocumentReference/{note['id']}")
    return {
        **patient_facts(patient, "patient"),
        "note_id": note["id"],
        "note_version": note["meta"]["versionId"],
        "note_date": when.date().isoformat(),
        "addition": addition,
        "keyword": keyword,
    }


def _add_original(ctx: GradingContext) -> Check:
    f = ctx.facts
    ref = f"DocumentReference/{f['note_id']}"
    expected = f"{ref} unchanged at version {f['note_version']}, signature still valid"
    note = ctx.read(ref)
    if note is None:
        return Check(False, f"{ref} is gone", expected, ADDENDUM_ADVICE)
    version = str(note.get("meta", {}).get("versionId"))
    if version != str(f["note_version"]) or note.get("status") != "current":
        return Check(
            False,
            f"{ref} is at version {version} with status {note.get('status')!r}",
            expected,
            ADDENDUM_ADVICE,
        )
    if not ctx.session.verify_signature(ref):
        return Check(False, f"{ref}'s signature no longer verifies", expected, ADDENDUM_ADVICE)
    added = [
        d
        for d in ctx.all("DocumentReference")
        if d["id"] != f["note_id"] and f["keyword"].lower() in document_text(d).lower()
    ]
    if not added:
        return Check(False, "the new information has not been added yet", expected, ADDENDUM_ADVICE)
    return Check(True, f"{ref} unchanged, signature verifies", expected)


def _add_appends(ctx: GradingContext) -> Check:
    f = ctx.facts
    target = f"DocumentReference/{f['note_id']}"
    expected = (
        f"a new DocumentReference with relatesTo 'appends' {target}, containing '{f['keyword']}'"
    )
    docs = [
        d
        for d in ctx.all("DocumentReference")
        if ref_id(d.get("subject")) == f["patient_id"]
        and d["id"] != f["note_id"]
        and f["keyword"].lower() in document_text(d).lower()
    ]
    if not docs:
        return Check(
            False,
            "no document on the chart contains the addition",
            expected,
            "write the addendum text from the instructions",
        )
    links = [
        (r.get("code"), (r.get("target") or {}).get("reference"))
        for d in docs
        for r in d.get("relatesTo", []) or []
    ]
    if ("appends", target) in links:
        return Check(True, f"an addendum appends {target}", expected)
    found = (
        "a separate note with no link to the original"
        if not links
        else f"a note that {links[0][0]} {links[0][1]}"
    )
    return Check(False, found, expected, ADDENDUM_ADVICE)


def _add_by_user(ctx: GradingContext) -> Check:
    f = ctx.facts
    target = f"DocumentReference/{f['note_id']}"
    docs = [
        d
        for d in ctx.all("DocumentReference")
        if any(
            r.get("code") == "appends" and (r.get("target") or {}).get("reference") == target
            for r in d.get("relatesTo", []) or []
        )
    ]
    expected = f"the addendum authored by {ctx.user.username} (Provenance)"
    ok = [d for d in docs if _created_by_user(ctx, d)]
    if not ok:
        return Check(
            False, "no addendum written by you", expected, "write the addendum in your own session"
        )
    return Check(True, f"DocumentReference/{ok[0]['id']} by {ctx.user.username}", expected)


def _add_solution(att: Any) -> None:
    f = att.facts
    att.session.addendum(
        f"DocumentReference/{f['note_id']}",
        f"Addendum: {f['addition']}",
        reason="Information received after signing",
    )


def _add_standalone(att: Any) -> None:
    f, s = att.facts, att.session
    s.create(
        progress_note(
            f"Patient/{f['patient_id']}",
            s.user.ref,
            f"Addendum: {f['addition']}",
            _instant(sandbox_now(att.sandbox)),
        )
    )


def _add_replaces(att: Any) -> None:
    f, s = att.facts, att.session
    doc = progress_note(
        f"Patient/{f['patient_id']}",
        s.user.ref,
        f"Corrected note: {f['addition']}",
        _instant(sandbox_now(att.sandbox)),
    )
    doc["relatesTo"] = [
        {"code": "replaces", "target": {"reference": f"DocumentReference/{f['note_id']}"}}
    ]
    s.create(doc)


ADDENDUM = register(
    Exercise(
        id="records/addendum",
        title="Addendum to a signed note",
        topic="records",
        competencies=("X.P.3", "VI.P.4", "VI.P.6"),
        minutes=10,
        role=PHYSICIAN,
        summary="A signed note needs more: a new DocumentReference that appends it; the original unchanged.",
        setup=_setup_addendum,
        instructions=(
            "You signed your note `DocumentReference/{note_id}` for **{patient_name}** (DOB {patient_dob}, "
            "MRN {patient_mrn}) from {note_date}. Since then you learned:\n\n> {addition}\n\n"
            "Add this to the record. The signed note must stay exactly as signed."
        ),
        criteria=(
            Criterion(
                "original unchanged",
                3,
                _add_original,
                "A signed note is the authenticated legal record: it is never changed, only appended to (documentation standards).",
            ),
            Criterion(
                "addendum appends the note",
                3,
                _add_appends,
                "An addendum is linked to the note it adds to, so readers see both together (FHIR DocumentReference.relatesTo; MAERB X.P.3).",
            ),
            Criterion(
                "addendum authored by you",
                1,
                _add_by_user,
                "Every entry names its author (documentation standards; HIPAA 164.312(b)).",
            ),
        ),
        hints=(
            Hint("`att.session.addendum(note_ref, text, reason=...)` creates the linked addendum."),
        ),
        solution=Solution(_add_solution, description="session.addendum"),
        wrong_solutions={
            "standalone-note": Solution(
                _add_standalone,
                fails="addendum appends the note",
                message="relatesTo code 'appends'",
                description="write a new, unlinked note",
            ),
            "replaces": Solution(
                _add_replaces,
                fails="addendum appends the note",
                message="never edit or replace a signed note",
                description="write a new note that replaces the signed one",
            ),
        },
    )
)


# ------------------------------------------------------------------------------------------
# 6. Registration update
# ------------------------------------------------------------------------------------------
_STREETS = (
    "Maple Avenue",
    "Cedar Lane",
    "Harbor Road",
    "Willow Court",
    "Summit Street",
    "Orchard Way",
)
DUPLICATE_ADVICE = "update the existing registration; never create a duplicate patient"
COVERAGE_ADVICE = (
    "add the new insurer as primary (order 1) and end-date the Coverage it replaces; "
    "never overwrite or delete a Coverage"
)


def _payers(sandbox: Any) -> list[dict[str, Any]]:
    orgs = sandbox.system_session().search("Organization").fetch()
    payers = [o for o in orgs if "pay" in codes(o.get("type", []))]
    return sorted(payers, key=lambda o: o["id"])


def _active_coverages(session: Any, patient_id: str) -> list[dict[str, Any]]:
    found = session.search("Coverage", beneficiary=f"Patient/{patient_id}").fetch()
    return [
        c for c in found if c.get("status") == "active" and not (c.get("period") or {}).get("end")
    ]


def _setup_registration(sandbox: Any, variant: Any) -> dict[str, Any]:
    desk = sandbox.login(FRONT_DESK)
    patients = visible_patients(sandbox, FRONT_DESK)
    payers = _payers(sandbox)
    if len(payers) < 2:
        from ehr_sandbox.errors import ExerciseError

        raise ExerciseError(
            f"setup: the sandbox has {len(payers)} payer Organization(s); the exercise needs 2"
        )
    insured = [p for p in patients if _active_coverages(desk, p["id"])]
    patient = variant.pick(insured or patients, salt="patient")
    current = _active_coverages(desk, patient["id"])
    if current:
        old = sorted(current, key=lambda c: (int(c.get("order", 1)), c["id"]))[0]
    else:
        payer = variant.pick(payers, salt="old-payer")
        old = desk.create(
            {
                "resourceType": "Coverage",
                "status": "active",
                "order": 1,
                "beneficiary": {"reference": f"Patient/{patient['id']}"},
                "payor": [
                    {"reference": f"Organization/{payer['id']}", "display": payer.get("name", "")}
                ],
                "subscriberId": f"OLD{variant.seed % 1000000:06d}",
                "period": {"start": str(patient.get("birthDate", "2000-01-01"))},
            }
        )
    old_payer_id = ref_id((old.get("payor") or [{}])[0])
    others = [p for p in payers if p["id"] != old_payer_id]
    born = int(str(patient.get("birthDate", "1970"))[:4])
    if sandbox.reference_date.year - born < 65:
        # A new employer's plan, not Medicare, for a working-age patient.
        others = [p for p in others if "medicare" not in str(p.get("name", "")).lower()] or others
    new_payer = variant.pick(others, salt="new-payer")
    secondary: dict[str, Any] | None = None
    spare = [p for p in payers if p["id"] not in (old_payer_id, new_payer["id"])]
    has_secondary = any(int(c.get("order", 1) or 1) == 2 for c in current)
    if spare and not has_secondary and variant.pick([True, False], salt="secondary"):
        sec_payer = variant.pick(spare, salt="secondary-payer")
        secondary = desk.create(
            {
                "resourceType": "Coverage",
                "status": "active",
                "order": 2,
                "beneficiary": {"reference": f"Patient/{patient['id']}"},
                "payor": [
                    {
                        "reference": f"Organization/{sec_payer['id']}",
                        "display": sec_payer.get("name", ""),
                    }
                ],
                "subscriberId": f"SEC{variant.seed % 1000000:06d}",
                "period": {"start": f"{sandbox.reference_date.year - 1}-01-01"},
            }
        )
    rng = variant.rng()
    home = next(
        (
            a
            for a in patient.get("address", [])
            if a.get("use", "home") == "home" and not (a.get("period") or {}).get("end")
        ),
        {},
    )
    line = f"{rng.randint(12, 9800)} {rng.choice(_STREETS)}"
    return {
        **patient_facts(patient, "patient"),
        "family": (patient.get("name") or [{}])[0].get("family", ""),
        "old_line": (home.get("line") or [""])[0],
        "new_line": line,
        "new_city": home.get("city", "Springfield"),
        "new_state": home.get("state", "IL"),
        "new_zip": home.get("postalCode", "62701"),
        "old_coverage_id": old["id"],
        "old_payer": (old.get("payor") or [{}])[0].get("display") or old_payer_id,
        "new_payer_id": new_payer["id"],
        "new_payer": new_payer.get("name", new_payer["id"]),
        "member_id": f"M{rng.randint(10**7, 10**8 - 1)}",
        "effective": sandbox_now(sandbox).date().isoformat(),
        "secondary_id": secondary["id"] if secondary else "",
        "secondary_payer": (secondary["payor"][0].get("display") or "") if secondary else "",
        "secondary_line": (
            f"\n- their secondary plan, **{secondary['payor'][0].get('display')}** "
            f"(`Coverage/{secondary['id']}`), stays as it is."
            if secondary
            else ""
        ),
    }


def _reg_single_patient(ctx: GradingContext) -> Check:
    f = ctx.facts
    same = [
        p
        for p in ctx.all("Patient")
        if p.get("birthDate") == f["patient_dob"]
        and (p.get("name") or [{}])[0].get("family") == f["family"]
        and p.get("active", True) is not False
    ]
    expected = f"exactly one Patient record for {f['patient_name']} ({f['patient_dob']})"
    if len(same) != 1:
        return Check(
            False,
            f"{len(same)} Patient records for {f['patient_name']} ({f['patient_dob']})",
            expected,
            DUPLICATE_ADVICE,
        )
    if str(same[0].get("meta", {}).get("versionId", "1")) == "1":
        return Check(False, "the registration has not been updated yet", expected, DUPLICATE_ADVICE)
    return Check(True, f"one record, Patient/{same[0]['id']}", expected)


def _reg_address(ctx: GradingContext) -> Check:
    f = ctx.facts
    expected = f"current home address '{f['new_line']}' from {f['effective']}, the old one kept with an end date"
    patient = ctx.read(f"Patient/{f['patient_id']}") or {}
    addrs = patient.get("address", []) or []
    current = [
        a
        for a in addrs
        if f["new_line"] in (a.get("line") or [])
        and not (a.get("period") or {}).get("end")
        and a.get("use", "home") == "home"
    ]
    if not current:
        return Check(
            False,
            f"the registration shows {[(a.get('line') or [''])[0] for a in addrs]}",
            expected,
            "update the address on the existing record",
        )
    if f["old_line"]:
        old = [a for a in addrs if f["old_line"] in (a.get("line") or [])]
        if not old:
            return Check(
                False,
                "the old address was overwritten",
                expected,
                "end-date the old address instead of overwriting it",
            )
        if not any((a.get("period") or {}).get("end") for a in old):
            return Check(
                False, "the old address is still current", expected, "end-date the old address"
            )
    return Check(True, f"home address '{f['new_line']}', old address end-dated", expected)


def _reg_coverage(ctx: GradingContext) -> Check:
    f = ctx.facts
    expected = (
        f"{f['new_payer']} as the active primary Coverage (order 1), {f['old_payer']} kept and "
        "end-dated"
        + (f", {f['secondary_payer']} still secondary (order 2)" if f["secondary_id"] else "")
    )
    covs = [c for c in ctx.all("Coverage") if ref_id(c.get("beneficiary")) == f["patient_id"]]
    by_id = {c["id"]: c for c in covs}
    old = by_id.get(f["old_coverage_id"])
    if old is None:
        return Check(False, "the old Coverage is gone", expected, COVERAGE_ADVICE)
    if ref_id((old.get("payor") or [{}])[0]) == f["new_payer_id"]:
        return Check(
            False,
            "the old Coverage was overwritten with the new insurer",
            expected,
            COVERAGE_ADVICE,
        )
    if not (old.get("period") or {}).get("end") and old.get("status") == "active":
        return Check(
            False,
            f"the old Coverage ({f['old_payer']}) is still active with no end date",
            expected,
            COVERAGE_ADVICE,
        )
    active = [
        c for c in covs if c.get("status") == "active" and not (c.get("period") or {}).get("end")
    ]
    primary = [c for c in active if int(c.get("order", 0) or 0) == 1]
    desc = [(ref_id((c.get("payor") or [{}])[0]), c.get("order")) for c in active]
    if len(primary) != 1 or ref_id((primary[0].get("payor") or [{}])[0]) != f["new_payer_id"]:
        return Check(False, f"active coverages (payer, order): {desc}", expected, COVERAGE_ADVICE)
    if f["secondary_id"]:
        sec = by_id.get(f["secondary_id"])
        if sec is None or sec not in active or int(sec.get("order", 0) or 0) != 2:
            return Check(
                False,
                f"the secondary plan was changed; active coverages (payer, order): {desc}",
                expected,
                COVERAGE_ADVICE,
            )
    return Check(
        True,
        f"Coverage/{primary[0]['id']} primary with {f['new_payer']}; old one end-dated",
        expected,
    )


def _reg_documented(ctx: GradingContext) -> Check:
    ref = f"Patient/{ctx.facts['patient_id']}"
    patient, prov = _last_change(ctx, ref)
    if patient is None or int(patient.get("meta", {}).get("versionId", "1")) < 2:
        return Check(
            False,
            f"{ref} was not updated",
            "a registration update with a reason",
            "use session.update_address(...)",
        )
    return _documented(
        ctx,
        prov,
        "registration-update",
        f"the update of {ref}",
        "session.update_address(patient, address, reason=...)",
    )


def _reg_address_value(f: dict[str, Any]) -> dict[str, Any]:
    return {
        "line": [f["new_line"]],
        "city": f["new_city"],
        "state": f["new_state"],
        "postalCode": f["new_zip"],
        "country": "US",
    }


def _reg_coverage_value(f: dict[str, Any]) -> dict[str, Any]:
    return {
        "payor": [{"reference": f"Organization/{f['new_payer_id']}", "display": f["new_payer"]}],
        "subscriberId": f["member_id"],
        "relationship": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/subscriber-relationship",
                    "code": "self",
                }
            ]
        },
    }


def _reg_solution(att: Any) -> None:
    f, s = att.facts, att.session
    ref = f"Patient/{f['patient_id']}"
    s.update_address(
        ref,
        _reg_address_value(f),
        reason="Patient moved; new address given at check-in",
        effective=f["effective"],
    )
    s.update_coverage(
        ref,
        _reg_coverage_value(f),
        reason="New insurer from new employer; card scanned",
        order=1,
        effective=f["effective"],
    )


def _reg_wrong_order(att: Any) -> None:
    f, s = att.facts, att.session
    ref = f"Patient/{f['patient_id']}"
    s.update_address(ref, _reg_address_value(f), reason="Patient moved", effective=f["effective"])
    s.update_coverage(
        ref, _reg_coverage_value(f), reason="New insurer", order=2, effective=f["effective"]
    )


def _reg_duplicate(att: Any) -> None:
    f, s = att.facts, att.session
    p = s.read("Patient", f["patient_id"])
    dup = {k: v for k, v in p.items() if k not in ("id", "meta", "text")}
    dup["address"] = [{**_reg_address_value(f), "use": "home"}]
    dup["identifier"] = [
        i for i in dup.get("identifier", []) if i.get("system") != "http://ehr-sandbox.org/fhir/mrn"
    ]
    new = s.create(dup)
    s.update_coverage(
        f"Patient/{new['id']}",
        _reg_coverage_value(f),
        reason="new patient registration",
        order=1,
        effective=f["effective"],
    )


REGISTRATION_UPDATE = register(
    Exercise(
        id="records/registration-update",
        title="Registration update: new address and insurer",
        topic="records",
        competencies=("VI.P.7", "VIII.P.1", "VII.P.3"),
        minutes=15,
        role=FRONT_DESK,
        summary="New address and insurer: end-date the old ones, keep primary/secondary order right, no duplicate Patient.",
        setup=_setup_registration,
        instructions=(
            "**{patient_name}** (DOB {patient_dob}, MRN {patient_mrn}) checks in and tells you that from "
            "**{effective}**:\n\n- they live at **{new_line}, {new_city}, {new_state} {new_zip}** "
            "(old address: {old_line});\n- their insurance is now **{new_payer}** (member id **{member_id}**) "
            "as their primary plan, replacing {old_payer} (`Coverage/{old_coverage_id}`);{secondary_line}\n\n"
            "Update the registration."
        ),
        criteria=(
            Criterion(
                "one patient record",
                2,
                _reg_single_patient,
                "One person, one record: duplicates split the chart and put patients at risk (MAERB VI.P.7).",
            ),
            Criterion(
                "address updated, old one end-dated",
                2,
                _reg_address,
                "Demographics are kept current and their history kept (MAERB VI.P.7; documentation standards).",
            ),
            Criterion(
                "insurance updated in order",
                2,
                _reg_coverage,
                "Claims go to the right payer only when coverages and their order are right (MAERB VIII.P.1, VII.P.3).",
            ),
            Criterion(
                "documented as registration update",
                1,
                _reg_documented,
                "Changes to a registration record who made them and why (HIPAA 164.312(b)).",
            ),
        ),
        hints=(
            Hint("Search first: `att.session.find_patient(name=..., birthdate=...)`."),
            Hint(
                "`update_address(...)` and `update_coverage(..., order=1, effective=...)` end-date what they replace.",
                cost=1,
            ),
        ),
        solution=Solution(
            _reg_solution, description="update_address and update_coverage on the existing Patient"
        ),
        wrong_solutions={
            "duplicate-patient": Solution(
                _reg_duplicate,
                fails="one patient record",
                message=DUPLICATE_ADVICE,
                description="register the patient again with the new details",
            ),
            "wrong-order": Solution(
                _reg_wrong_order,
                fails="insurance updated in order",
                message="primary (order 1)",
                description="add the new insurer as secondary and leave the old plan active",
            ),
        },
    )
)
