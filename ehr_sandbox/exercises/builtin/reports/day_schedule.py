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
    _answer_of,
    _local_instant,
    _nothing,
    _practice_offset,
    _set_diff,
    _template,
    _tz,
    hand_in,
)
from ehr_sandbox.exercises.grading import GradingContext
from ehr_sandbox.exercises.model import Check, Criterion, Exercise, Hint, Solution
from ehr_sandbox.exercises.registry import register


# ------------------------------------------------------------------------------------------
# 7. Today's schedule with no-shows
# ------------------------------------------------------------------------------------------
def _local_day(text: str | None, offset: str) -> str | None:
    """The practice-local calendar day of a FHIR date/dateTime ('YYYY-MM-DD')."""
    if not text:
        return None
    dt = parse_instant(text)
    return dt.astimezone(_tz(offset)).date().isoformat() if dt else text[:10]


TZ_ADVICE = "a day on the schedule is the practice's local date written in `start` (with its UTC offset), not the UTC date"


def _setup_schedule(sandbox: Any, variant: Any) -> dict[str, Any]:
    rng = variant.rng()
    today = sandbox.reference_date
    offset = _practice_offset(sandbox)
    off_hours = int(offset[:3])
    patients = visible_patients(sandbox, FRONT_DESK, minimum=4)
    chosen = rng.sample(patients, min(len(patients), 6))
    template = _template(sandbox, "Appointment", FRONT_DESK)
    fd = sandbox.login(FRONT_DESK)
    # The trap: evening visits cross midnight UTC when the practice is west of Greenwich
    # (early-morning ones when it is east), so the UTC date and the local date differ.
    late_hour = max(24 + off_hours, 17) if off_hours < 0 else 0
    early_hour = min(off_hours - 1, 7) if off_hours > 0 else 23

    def book(patient: Mapping[str, Any], day: date, hour: int, minute: int, status: str) -> str:
        apt = copy.deepcopy(template)
        apt["status"] = status
        apt["start"] = _local_instant(day, hour, minute, offset)
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
    return {
        "date": today.isoformat(),
        "offset": offset,
        "caller_name": patient_label(chosen[0]),
        "late_visit": tonight,
        "other_day_visit": crossing,
    }


def _schedule_expected(ctx: GradingContext) -> tuple[set[str], set[str], dict[str, dict[str, Any]]]:
    f = ctx.facts
    every = {a["id"]: a for a in ctx.all("Appointment")}
    today = {i for i, a in every.items() if _local_day(a.get("start"), f["offset"]) == f["date"]}
    noshow = {i for i in today if every[i].get("status") == "noshow"}
    return today, noshow, every


def _utc_trouble(ids: set[str], every: Mapping[str, Mapping[str, Any]], offset: str) -> bool:
    return any(
        (i in every)
        and _local_day(every[i].get("start"), offset) != _local_day(every[i].get("start"), "+00:00")
        for i in ids
    )


def _schedule_listed(ctx: GradingContext) -> Check:
    f = ctx.facts
    today, _, every = _schedule_expected(ctx)
    expected = f"the {len(today)} appointments on {f['date']} (practice time, UTC{f['offset']})"
    answer = _answer_of(ctx, "reports/day-schedule")
    if answer is None:
        return _nothing(expected)
    found = set(answer["appointments"])
    if found == today:
        return Check(True, f"all {len(found)} appointments of {f['date']}", expected)
    wrong = (today - found) | (found - today)
    advice = (
        TZ_ADVICE
        if _utc_trouble(wrong, every, f["offset"])
        else "list every appointment of the day, whatever its status"
    )

    def label(i: str) -> str:
        start = (every.get(i) or {}).get("start")
        return f"Appointment/{i} ({start})" if start else f"Appointment/{i} (no such appointment)"

    return Check(False, _set_diff(found, today, "appointments", label), expected, advice)


def _no_shows_found(ctx: GradingContext) -> Check:
    f = ctx.facts
    _, noshow, every = _schedule_expected(ctx)
    expected = f"the {len(noshow)} appointments of {f['date']} with status 'noshow'"
    answer = _answer_of(ctx, "reports/day-schedule")
    if answer is None:
        return _nothing(expected)
    found = set(answer["no_shows"])
    if found == noshow:
        return Check(True, f"{len(found)} no-shows", expected)
    extra = found - noshow

    def label(i: str) -> str:
        a = every.get(i) or {}
        return f"Appointment/{i} ({a.get('status', 'no such appointment')}, {a.get('start', '?')})"

    if any((every.get(i) or {}).get("status") == "cancelled" for i in extra):
        advice = (
            "a cancelled appointment is not a no-show: the patient told the practice in advance"
        )
    elif _utc_trouble((noshow - found) | extra, every, f["offset"]):
        advice = TZ_ADVICE
    else:
        advice = "a no-show is an appointment of the day with status 'noshow'"
    return Check(False, _set_diff(found, noshow, "no-shows", label), expected, advice)


def _schedule_solution(att: Any) -> None:
    rows = att.session.reports.run("day_schedule", date=att.facts["date"]).to_pylist()
    hand_in(
        att,
        {
            "appointments": [r["appointment"] for r in rows],
            "no_shows": [r["appointment"] for r in rows if r["no_show"]],
        },
    )


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
    rows = att.session.reports.run("day_schedule", date=att.facts["date"]).to_pylist()
    hand_in(
        att,
        {
            "appointments": [r["appointment"] for r in rows],
            "no_shows": [r["appointment"] for r in rows if r["status"] in ("noshow", "cancelled")],
        },
    )


DAY_SCHEDULE = register(
    Exercise(
        id="reports/day-schedule",
        title="Today's schedule with no-shows",
        topic="reports",
        competencies=("VI.P.1", "VI.P.6"),
        minutes=15,
        role=FRONT_DESK,
        grader=FRONT_DESK,
        summary="List today's appointments and the no-shows among them from the day schedule report.",
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
