"""Catalogue item 7 of EXERCISES.md: Today's schedule with no-shows.

Defines and registers ``reports/day-schedule`` (section "Running reports").
The package ``__init__`` imports the exercise modules in catalogue order; helpers shared
within the section are in ``common``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Any

from ehr_sandbox.exercises.builtin.common import (
    parse_instant,
    patient_label,
    ref_id,
    visible_patients,
)
from ehr_sandbox.exercises.builtin.reports.common import (
    FRONT_DESK,
    answer_of,
    hand_in,
    local_instant,
    nothing_found,
    practice_offset,
    report_expects,
    resource_template,
    set_diff,
    tz_of,
)
from ehr_sandbox.exercises.grading import GradingContext
from ehr_sandbox.exercises.model import (
    COLLATERAL,
    Check,
    Criterion,
    Exercise,
    Hint,
    Scenario,
    Solution,
)
from ehr_sandbox.exercises.registry import register


# ------------------------------------------------------------------------------------------
# 7. Today's schedule with no-shows
# ------------------------------------------------------------------------------------------
def _local_day(text: str | None, offset: str) -> str | None:
    """The practice-local calendar day of a FHIR date/dateTime ('YYYY-MM-DD')."""
    if not text:
        return None
    dt = parse_instant(text)
    return dt.astimezone(tz_of(offset)).date().isoformat() if dt else text[:10]


OTHER_FRONT_DESK = "fd.brown"
TZ_ADVICE = "a day on the schedule is the practice's local date written in `start` (with its UTC offset), not the UTC date"


def _setup_schedule(sandbox: Any, variant: Any) -> Scenario:
    rng = variant.rng()
    today = sandbox.reference_date
    offset = practice_offset(sandbox)
    off_hours = int(offset[:3])
    patients = visible_patients(sandbox, FRONT_DESK, minimum=4)
    chosen = rng.sample(patients, min(len(patients), 6))
    template = resource_template(sandbox, "Appointment", FRONT_DESK)
    fd = sandbox.login(FRONT_DESK)
    # The trap: evening visits cross midnight UTC when the practice is west of Greenwich
    # (early-morning ones when it is east), so the UTC date and the local date differ.
    late_hour = max(24 + off_hours, 17) if off_hours < 0 else 0
    early_hour = min(off_hours - 1, 7) if off_hours > 0 else 23

    def book(patient: Mapping[str, Any], day: date, hour: int, minute: int, status: str) -> str:
        apt = copy.deepcopy(template)
        apt["status"] = status
        apt["start"] = local_instant(day, hour, minute, offset)
        end = datetime.fromisoformat(apt["start"]) + timedelta(minutes=20)
        apt["end"] = end.isoformat()
        apt["participant"] = [
            p
            for p in apt.get("participant", [])
            if not ref_id(p.get("actor"))
            or not (p.get("actor") or {}).get("reference", "").startswith("Patient/")
        ] + [
            {
                "actor": {"reference": f"Patient/{patient['id']}"},
                "required": "required",
                "status": "accepted",
            }
        ]
        if status == "cancelled":
            apt["cancelationReason"] = {"text": "Patient called to cancel"}
        return fd.create(apt)["id"]

    slots = rng.sample(range(9 * 3, 16 * 3), 4)  # 20-minute slots between 09:00 and 16:00
    day_statuses = ["noshow", "fulfilled", rng.choice(["noshow", "fulfilled", "arrived"])]
    for p, slot, status in zip(chosen, slots, day_statuses, strict=False):
        book(p, today, slot // 3, (slot % 3) * 20, status)
    book(chosen[3 % len(chosen)], today, slots[3] // 3, (slots[3] % 3) * 20, "cancelled")
    if off_hours != 0:
        hour = late_hour if off_hours < 0 else early_hour
        # Today's late visit (UTC: tomorrow) and yesterday's (UTC: today), both no-shows.
        tonight = book(chosen[4 % len(chosen)], today, hour, rng.choice([0, 20, 40]), "noshow")
        other_day = today - timedelta(days=1) if off_hours < 0 else today + timedelta(days=1)
        crossing = book(chosen[5 % len(chosen)], other_day, hour, rng.choice([0, 20, 40]), "noshow")
    else:
        tonight = crossing = ""
    every = {a["id"]: a for a in fd.resources("Appointment")}
    day = {i for i, a in every.items() if _local_day(a.get("start"), offset) == today.isoformat()}
    noshow = {i for i in day if every[i].get("status") == "noshow"}
    near = {
        i
        for i, a in every.items()
        if abs(
            (date.fromisoformat(_local_day(a.get("start"), offset) or "1900-01-01") - today).days
        )
        <= 1
    }
    return Scenario(
        facts={
            "date": today.isoformat(),
            "offset": offset,
            "caller_name": patient_label(chosen[0]),
        },
        answer={
            "appointments": sorted(day),
            "no_shows": sorted(noshow),
            "late_visit": tonight,
            "other_day_visit": crossing,
            "starts": {i: every[i].get("start") for i in sorted(near)},
            "statuses": {i: every[i].get("status") for i in sorted(near)},
        },
        protect=tuple(f"Appointment/{i}" for i in sorted(near)),
    )


def _crosses_utc(start: str | None, offset: str) -> bool:
    return _local_day(start, offset) != _local_day(start, "+00:00")


def _schedule_listed(ctx: GradingContext) -> Check:
    f, a = ctx.facts, ctx.answer
    today = set(a["appointments"])
    expected = (
        f"every appointment on {f['date']} in practice time (UTC{f['offset']}), whatever its status"
    )
    answer = answer_of(ctx, "reports/day-schedule")
    if answer is None:
        return nothing_found(expected)
    found = set(answer["appointments"])
    if found == today:
        return Check(True, f"all {len(found)} appointments of {f['date']}", expected)
    starts = a["starts"]
    wrong = (today - found) | (found - today)
    if all(_crosses_utc(starts.get(i), f["offset"]) for i in wrong):
        advice = TZ_ADVICE
    elif any(a["statuses"].get(i) == "cancelled" for i in today - found):
        advice = "the day's schedule lists every appointment, cancelled ones included (they free a slot and are documented)"
    else:
        advice = (
            "list every appointment of the day as it stood when the day closed, whatever its status"
        )

    def label(i: str) -> str:
        start = starts.get(i)
        return (
            f"Appointment/{i} ({start})" if start else f"Appointment/{i} (not on or near that day)"
        )

    return Check(False, set_diff(found, today, "appointments", label), expected, advice)


def _no_shows_found(ctx: GradingContext) -> Check:
    f, a = ctx.facts, ctx.answer
    noshow = set(a["no_shows"])
    expected = f"the appointments of {f['date']} whose patient did not come"
    answer = answer_of(ctx, "reports/day-schedule")
    if answer is None:
        return nothing_found(expected)
    found = set(answer["no_shows"])
    if found == noshow:
        return Check(True, f"{len(found)} no-shows", expected)
    extra = found - noshow
    statuses, starts = a["statuses"], a["starts"]

    def label(i: str) -> str:
        return f"Appointment/{i} ({statuses.get(i, 'not on that day')}, {starts.get(i, '?')})"

    if any(statuses.get(i) == "cancelled" for i in extra):
        advice = (
            "a cancelled appointment is not a no-show: the patient told the practice in advance"
        )
    elif all(_crosses_utc(starts.get(i), f["offset"]) for i in (noshow - found) | extra):
        advice = TZ_ADVICE
    else:
        advice = "a no-show is an appointment of the day with status 'noshow', as the day closed"
    return Check(False, set_diff(found, noshow, "no-shows", label), expected, advice)


def _rows(att: Any, session: Any = None) -> list[dict[str, Any]]:
    s = session or att.session
    return s.reports.run("day_schedule", date=att.facts["date"]).to_pylist()


def _hand_in_rows(att: Any, rows: list[dict[str, Any]]) -> None:
    hand_in(
        att,
        {
            "appointments": [r["appointment"] for r in rows],
            "no_shows": [r["appointment"] for r in rows if r["no_show"]],
        },
    )


def _schedule_solution(att: Any) -> None:
    _hand_in_rows(att, _rows(att))


def _schedule_utc(att: Any) -> None:
    rows = att.session.reports.sql("SELECT id, start, status FROM appointment").to_pylist()
    day = [r for r in rows if _local_day(r["start"], "+00:00") == att.facts["date"]]
    hand_in(
        att,
        {
            "appointments": [r["id"] for r in day],
            "no_shows": [r["id"] for r in day if r["status"] == "noshow"],
        },
    )


def _schedule_cancelled(att: Any) -> None:
    rows = _rows(att)
    hand_in(
        att,
        {
            "appointments": [r["appointment"] for r in rows],
            "no_shows": [r["appointment"] for r in rows if r["status"] in ("noshow", "cancelled")],
        },
    )


def _schedule_skip_cancelled(att: Any) -> None:
    _hand_in_rows(att, [r for r in _rows(att) if r["status"] != "cancelled"])


def _no_show_ids(att: Any) -> list[str]:
    return sorted(r["appointment"] for r in _rows(att) if r["no_show"])


def _schedule_reschedule_no_shows(att: Any) -> None:
    # Harm and answer-key change: the no-shows are moved to next week, then the report run.
    s = att.session
    for i in _no_show_ids(att):
        apt = s.read("Appointment", i)
        for key in ("start", "end"):
            moved = datetime.fromisoformat(apt[key]) + timedelta(days=7)
            apt[key] = moved.isoformat()
        apt["status"] = "booked"
        s.update(apt)
    _hand_in_rows(att, _rows(att))


def _schedule_mark_fulfilled(att: Any) -> None:
    # Answer-key change: the no-shows are marked as seen, so the report has none.
    s = att.session
    for i in _no_show_ids(att):
        apt = s.read("Appointment", i)
        apt["status"] = "fulfilled"
        s.update(apt)
    _hand_in_rows(att, _rows(att))


def _schedule_other_login(att: Any) -> None:
    # Harm: the report is run under a colleague's login.
    _hand_in_rows(att, _rows(att, att.sandbox.login(OTHER_FRONT_DESK)))


DAY_SCHEDULE = register(
    Exercise(
        id="reports/day-schedule",
        skip_traps=("done-twice", "one-more-record"),  # a report handed in again replaces the first
        title="Today's schedule with no-shows",
        topic="reports",
        competencies=("VI.P.1", "VI.P.6"),
        minutes=15,
        role=FRONT_DESK,
        grader=FRONT_DESK,
        summary="List today's appointments and the no-shows among them from the day schedule report.",
        topics=("reports", "scheduling"),
        expects=report_expects(),
        setup=_setup_schedule,
        instructions=(
            "The clinic day of **{date}** is over and the front desk has updated every appointment's "
            "status. The practice keeps its clock at **UTC{offset}**; evening clinic runs late. "
            "**{caller_name}** has called to ask whether they missed a visit today: the list "
            "you hand in answers them too.\n\n"
            '1. Run the day schedule for {date} (`att.session.reports.run("day_schedule", date=...)`).\n'
            "2. Hand in the ids of **all** appointments on that day and of the **no-shows** among them:\n\n"
            "```python\nfrom ehr_sandbox.exercises.builtin.reports import hand_in\n"
            'hand_in(att, {{"appointments": [...], "no_shows": [...]}})\n```\n\n'
            "Then call `att.check()`."
        ),
        criteria=(
            Criterion(
                "schedule listed",
                3,
                _schedule_listed,
                "The day's schedule is the practice's working list: a visit on the wrong day is a patient nobody expects (MAERB VI.P.1).",
            ),
            Criterion(
                "no-shows identified",
                2,
                _no_shows_found,
                "No-shows are documented and followed up (policy letters, rebooking, discharge after repeats); cancellations are not no-shows (MAERB VI.P.1).",
            ),
        ),
        hints=(
            Hint(
                "Every row of the day schedule report has an `appointment` id and a `no_show` flag."
            ),
            Hint(
                "Do not convert `start` to UTC: 19:20-05:00 on the 1st is 00:20 UTC on the 2nd but still the 1st at the clinic.",
                cost=1,
            ),
        ),
        solution=Solution(
            _schedule_solution,
            description="run day_schedule for the day and hand in its ids and no-show flags",
        ),
        wrong_solutions={
            "skip-cancelled": Solution(
                _schedule_skip_cancelled,
                fails="schedule listed",
                message="cancelled ones included",
                description="leave cancelled appointments off the day's list",
            ),
            "reschedule-no-shows": Solution(
                _schedule_reschedule_no_shows,
                fails="no-shows identified",
                message="status 'noshow'",
                description="move the no-shows to next week, then run the report (harm, answer-key change)",
            ),
            "mark-no-shows-fulfilled": Solution(
                _schedule_mark_fulfilled,
                fails="no-shows identified",
                message="status 'noshow'",
                description="mark the no-shows as seen, then run the report (answer-key change)",
            ),
            "colleague-login": Solution(
                _schedule_other_login,
                fails=COLLATERAL,
                message=OTHER_FRONT_DESK,
                description="run the report under a colleague's login (harm)",
            ),
            "utc-date": Solution(
                _schedule_utc,
                fails="schedule listed",
                message="not the UTC date",
                description="pick the day's appointments by their UTC date",
            ),
            "cancelled-as-no-show": Solution(
                _schedule_cancelled,
                fails="no-shows identified",
                message="cancelled appointment is not a no-show",
                description="count cancellations as no-shows",
            ),
        },
    )
)
