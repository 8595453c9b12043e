"""Catalogue item 4, ``records/late-entry``: yesterday's phone report is charted as a late entry
(effective = event time, recorded = now, tagged late entry with a reason), never backdated.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from ehr_sandbox.exercises import rubric, stated
from ehr_sandbox.exercises.builtin.common import (
    blood_pressure,
    bp_values,
    parse_instant,
    patient_facts,
    rewrite_answer_key,
    sandbox_now,
    visible_patients,
)
from ehr_sandbox.exercises.builtin.records.common import (
    MA,
    VALID_RESULT,
    bp_readings,
    change_documented,
    describe_bps,
    iso_instant,
    new_ids,
    same_instant,
)
from ehr_sandbox.exercises.grading import GradingContext, codes, provenance_reason
from ehr_sandbox.exercises.model import Check, Criterion, Exercise, Expect, Hint, Solution

__all__ = ["LATE_ADVICE", "LATE_ENTRY"]

CALL_HOURS = range(13, 18)
CALL_MINUTES = (5, 10, 20, 35, 40, 50)
"""When yesterday's call can have been (hours and minutes, UTC): the times the call of any
variant is at."""

LATE_ADVICE = "do not backdate: a late entry keeps the time it was recorded and is marked as a late entry with a reason"


def _setup_late(sandbox: Any, variant: Any) -> dict[str, Any]:
    patient = variant.pick(visible_patients(sandbox, MA), salt="patient")
    rng = variant.rng()
    now = sandbox_now(sandbox)
    yesterday = (now - timedelta(days=1)).replace(
        hour=rng.randint(CALL_HOURS[0], CALL_HOURS[-1]), minute=rng.choice(CALL_MINUTES), second=0
    )
    systolic = rng.randint(142, 168)
    diastolic = rng.randint(88, 102)
    return {
        **patient_facts(patient, "patient"),
        "event_time": iso_instant(yesterday),
        "systolic": systolic,
        "diastolic": diastolic,
        "call_day": yesterday.date().isoformat(),
        "call_time": yesterday.strftime("%H:%M"),
    }


def _late_reading(ctx: GradingContext) -> list[dict[str, Any]]:
    f = ctx.facts
    new = new_ids(ctx, "Observation")  # an older reading with the same values is not it
    return [
        o
        for o in bp_readings(ctx, f["patient_id"])
        if o["id"] in new
        and bp_values(o) == (f["systolic"], f["diastolic"])
        and o.get("status") in VALID_RESULT  # a cancelled or preliminary reading is not charted
    ]


def _late_charted(ctx: GradingContext) -> Check:
    f = ctx.facts
    found = _late_reading(ctx)
    expected = f"a BP {f['systolic']}/{f['diastolic']} mmHg on {f['patient_name']}'s chart"
    if not found:
        return Check(
            False,
            f"the chart has {describe_bps(bp_readings(ctx, f['patient_id']))}",
            expected,
            "chart the reported reading (status final: it was taken and reported)",
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
    if any(same_instant(o.get("effectiveDateTime"), f["event_time"]) for o in found):
        return Check(True, f"effective {f['event_time']}", expected)
    return Check(
        False,
        f"effective {found[0].get('effectiveDateTime')}",
        expected,
        "the effective time is when it happened, not when you chart it",
    )


def _late_marked(ctx: GradingContext) -> Check:
    expected = (
        "recorded now (not backdated), tagged late-entry, with a Provenance 'late-entry' by you "
        "with a reason, and the entry's words saying when the call was"
    )
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
    chk = change_documented(
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
    why = rubric.check_text(
        provenance_reason(provs[-1]),
        {
            "that it is charted late": [
                "late",
                "not charted",
                "not documented",
                "not recorded",
                "was not entered",
                "missed",
                "forgot",
                "after the fact",
            ],
            "what happened (the phone call and when)": [
                "phone",
                "call",
                "called",
                "telephone",
                ctx.facts["call_day"],
            ],
        },
        what="the late-entry reason",
    )
    if not why.passed:
        return Check(False, why.found, expected, f"{LATE_ADVICE}; {why.advice}")
    when = _call_time_stated(ctx, provenance_reason(provs[-1]), obs)
    if not when.passed:
        return Check(False, when.found, expected, f"{LATE_ADVICE}; {when.advice}")
    return Check(True, f"{ref} tagged late-entry; {chk.found}; {when.found}", expected)


def _call_time_stated(ctx: GradingContext, reason: str | None, obs: dict[str, Any]) -> Check:
    """The late entry's words (its reason and the reading's note) state when the call was: the
    variant's call time in any usual form (14:05, 2:05 PM), and no other time the call of a
    variant can be at."""
    notes = [str(n.get("text", "")) for n in obs.get("note", []) or []]
    hour, minute = (int(x) for x in str(ctx.facts["call_time"]).split(":"))
    return stated.check_stated(
        stated.clock_times("\n".join([reason or "", *notes])),
        (hour, minute),
        name="the time of the call",
        what="the late entry's reason or note",
        rivals=[(h, m) for h in CALL_HOURS for m in CALL_MINUTES],
        advice="a late entry says when the event actually happened: the time of the call, "
        "in the reason or the reading's note",
    )


def _late_obs(att: Any, effective: str, call_time: str | None = None) -> dict[str, Any]:
    """The reading; its note says the call was at ``call_time`` (the variant's by default)."""
    f = att.facts
    obs = blood_pressure(f"Patient/{f['patient_id']}", f["systolic"], f["diastolic"], effective)
    obs["note"] = [
        {
            "text": f"Home reading reported by phone on {f['call_day']} at {call_time or f['call_time']}."
        }
    ]
    return obs


def _late_solution(att: Any, *, call_time: str | None = None) -> None:
    """The reference (``call_time``: the time its words give the call, the variant's by
    default)."""
    f = att.facts
    said = call_time or f["call_time"]
    att.session.late_entry(
        _late_obs(att, f["event_time"], said),
        event_time=f["event_time"],
        reason=f"Phone call of {f['call_day']} {said} not charted at the time",
    )


def _an_hour_off(call_time: str) -> str:
    """Another time the call could have been at: an hour later (earlier at the day's end).

    >>> _an_hour_off("14:05"), _an_hour_off("17:50")
    ('15:05', '16:50')
    """
    hour, minute = (int(x) for x in call_time.split(":"))
    return f"{hour + 1 if hour + 1 in CALL_HOURS else hour - 1:02d}:{minute:02d}"


def _late_backdated(att: Any) -> None:
    f = att.facts
    obs = _late_obs(att, f["event_time"])
    obs["issued"] = f["event_time"]
    att.session.create(obs)


def _late_as_now(att: Any) -> None:
    att.session.create(_late_obs(att, iso_instant(sandbox_now(att.sandbox))))


def _late_meaningless(att: Any) -> None:
    f = att.facts
    att.session.late_entry(
        _late_obs(att, f["event_time"]), event_time=f["event_time"], reason="late"
    )


def _late_not_final(att: Any) -> None:
    """The late entry made right, but with the reading's status 'preliminary' (never a result
    that stands)."""
    f = att.facts
    obs = _late_obs(att, f["event_time"])
    obs["status"] = "preliminary"
    att.session.late_entry(
        obs,
        event_time=f["event_time"],
        reason=f"Phone call of {f['call_day']} {f['call_time']} not charted at the time",
    )


def _late_two_patients(att: Any) -> None:
    """Harm: first charted on another patient (then voided), then done right."""
    f, s = att.facts, att.session
    other = next(p["id"] for p in s.search("Patient").fetch() if p["id"] != f["patient_id"])
    wrong = s.late_entry(
        blood_pressure(f"Patient/{other}", f["systolic"], f["diastolic"], f["event_time"]),
        event_time=f["event_time"],
        reason=f"Phone call of {f['call_day']} {f['call_time']} not charted at the time",
    )
    s.mark_entered_in_error(
        f"Observation/{wrong['id']}",
        reason=f"Charted on the wrong patient; belongs to {f['patient_name']}",
    )
    _late_solution(att)


def _late_answer_key(att: Any) -> None:
    """Answer-key change: move the event time to now in the facts, then chart it 'on time'."""
    now = iso_instant(sandbox_now(att.sandbox))
    f = rewrite_answer_key(att, event_time=now)
    att.session.late_entry(
        _late_obs(att, now),
        event_time=f["event_time"],
        reason=f"Phone call of {f['call_day']} {f['call_time']} not charted at the time",
    )


LATE_ENTRY = Exercise(
    id="records/late-entry",
    title="Late entry: yesterday's phone call",
    topic="records",
    topics=("editing-records", "vital-signs"),
    competencies=("X.P.3", "V.P.7", "I.P.1"),
    minutes=10,
    role=MA,
    summary="Chart yesterday's phone report: effective = event time, recorded = now, tagged late entry.",
    setup=_setup_late,
    instructions=(
        "Yesterday ({call_day}) at **{call_time}** (UTC) **{patient_name}** (DOB {patient_dob}, MRN {patient_mrn}) "
        "phoned to report a home blood pressure of **{systolic}/{diastolic} mmHg** taken just then. "
        "Nobody charted it.\n\nChart it now as a **late entry**: the reading's time is when it was "
        "taken (`{event_time}`); the record must show it was charted late, and why (the reason "
        "says it is late, what happened and when). Change nothing else."
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
        Hint("`att.session.late_entry(resource, event_time=..., reason=...)` keeps both times."),
    ),
    expects=(Expect("Observation", ops=("late-entry",), patients=("patient_id",), at_most=1),),
    solution=Solution(
        _late_solution, description="session.late_entry with the event time and a reason"
    ),
    wrong_solutions={
        "preliminary-reading": Solution(
            _late_not_final,
            fails="reading charted",
            message="status final",
            description="the late entry with the reading's status 'preliminary'",
        ),
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
        "meaningless-reason": Solution(
            _late_meaningless,
            fails="late entry marked, not backdated",
            message="too short or meaningless",
            description="late entry with the reason 'late'",
        ),
        "other-chart-first": Solution(
            _late_two_patients,
            fails="no collateral damage",
            message="unexpected change",
            description="chart it on another patient first, void that, then do it right",
        ),
        "call-time-misstated": Solution(
            lambda att: _late_solution(att, call_time=_an_hour_off(att.facts["call_time"])),
            fails="late entry marked, not backdated",
            message="when the event actually happened",
            description="the late entry right, but its reason and note give the call another "
            "time (another student's call time: it scored full marks before)",
        ),
        "answer-key": Solution(
            _late_answer_key,
            fails="effective time is the event time",
            message="not when you chart it",
            description="rewrite the event time in the facts to now",
        ),
    },
)
