"""Catalogue item 27 (part): book into a modified-wave day with a blocked lunch.

The day is built from the modified-wave template (two patients at :00, one at :30; lunch and
meetings blocked). One patient asks for a time in the lunch block, another for an hour whose
:00 places are already taken: each gets the first free place at or after the time asked.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ehr_sandbox.exercises.builtin.common import patient_label, still_standing, visible_patients
from ehr_sandbox.exercises.builtin.front_office.common import (
    FD,
    check,
    free_on,
    next_workday,
    op_of,
    written,
)
from ehr_sandbox.exercises.grading import GradingContext
from ehr_sandbox.exercises.model import Criterion, Exercise, Expect, Hint, Scenario, Solution
from ehr_sandbox.workflows import scheduling
from ehr_sandbox.workflows.base import write

__all__ = ["MODIFIED_WAVE"]

PROVIDERS = ("dr.patel", "dr.nguyen", "dr.okafor")
BLOCKED = "never book into blocked time (lunch, meetings): offer the first free place after it"


def _setup(sandbox: Any, variant: Any) -> Scenario:
    fd = sandbox.login(FD)
    rng = variant.rng()
    doc = variant.pick(PROVIDERS, salt="provider")
    day = next_workday(sandbox.reference_date)
    slots = scheduling.build_day(fd, f"Practitioner/prac-{doc}", day.isoformat(), "modified-wave")
    patients = free_on(sandbox, visible_patients(sandbox, FD, minimum=4), day)
    a, b, c1, c2 = rng.sample(patients, 4)
    full_hour = rng.choice([9, 10, 14, 15])
    taken = [s for s in slots if s["start"] == f"{day.isoformat()}T{full_hour:02d}:00:00-05:00"]
    pre = []
    for p, s in zip((c1, c2), taken, strict=False):
        pre.append(
            scheduling.book(
                fd,
                f"Patient/{p['id']}",
                f"Slot/{s['id']}",
                appointment_type="FOLLOWUP",
                reason="Follow-up",
            )["id"]
        )
    lunch_ask = rng.choice(["12:00", "12:30"])

    def first_free(after: str) -> dict[str, Any]:
        t = f"{day.isoformat()}T{after}:00-05:00"
        free = [
            s
            for s in slots
            if s["status"] == "free"
            and s["start"] >= t
            and s.get("comment") is None
            and s["id"] not in {x["id"] for x in taken}
        ]
        return sorted(free, key=lambda s: s["start"])[0]

    want_a = first_free(lunch_ask)
    want_b = first_free(f"{full_hour:02d}:00")
    blocked = [s["id"] for s in slots if s["status"] == "busy-unavailable"]
    return Scenario(
        facts={
            "provider": doc,
            "day": day.isoformat(),
            "a_id": a["id"],
            "a_name": patient_label(a),
            "a_ask": lunch_ask,
            "b_id": b["id"],
            "b_name": patient_label(b),
            "b_ask": f"{full_hour:02d}:00",
            "schedule": slots[0]["schedule"]["reference"],
            "blocked": blocked,
        },
        answer={"a_start": want_a["start"], "b_start": want_b["start"]},
        protect=tuple([f"Slot/{i}" for i in blocked] + [f"Appointment/{i}" for i in pre]),
    )


def _booked(ctx: GradingContext, pid: str) -> list[dict[str, Any]]:
    """The patient's appointments booked since setup, as they were left (one cancelled
    afterwards books nobody)."""
    return [
        v
        for v in still_standing(ctx, written(ctx, "Appointment"), current=True)
        if any(
            p.get("actor", {}).get("reference") == f"Patient/{pid}"
            for p in v.get("participant", [])
        )
        and v.get("status") == "booked"
    ]


def _in_slots(ctx: GradingContext) -> Any:
    f = ctx.facts
    expected = "each patient booked through scheduling.book into a Slot of the day's schedule"
    for key in ("a", "b"):
        found = _booked(ctx, f[f"{key}_id"])
        if not found:
            return check(
                False,
                f"no booked appointment for {f[key + '_name']}",
                expected,
                "book each patient who called",
            )
        if not any(
            v.get("slot") and op_of(ctx, v) in ("scheduling.book", "scheduling.double-book")
            for v in found
        ):
            return check(
                False,
                f"Appointment/{found[-1]['id']} was written by hand, without its Slot",
                expected,
                "book with scheduling.book so the Slot is held",
            )
    return check(True, "both patients booked into slots", expected)


def _not_blocked(ctx: GradingContext) -> Any:
    blocked_starts = set()
    for ref in ctx.facts["blocked"]:
        s = ctx.read(f"Slot/{ref}")
        if s:
            blocked_starts.add((s["start"], s["end"]))
    expected = "no appointment in lunch or meeting time"
    for v in written(ctx, "Appointment"):
        start = datetime.fromisoformat(v["start"]) if v.get("start") else None
        if start is None:
            continue
        for s, e in blocked_starts:
            if datetime.fromisoformat(s) <= start < datetime.fromisoformat(e):
                return check(False, f"Appointment/{v['id']} at {v['start']}", expected, BLOCKED)
    return check(True, "nothing in blocked time", expected)


def _first_free(ctx: GradingContext) -> Any:
    f, a = ctx.facts, ctx.answer
    expected = "each patient at the first free place at or after the time they asked for"
    for key in ("a", "b"):
        found = _booked(ctx, f[f"{key}_id"])
        starts = sorted({v["start"] for v in found})
        if starts != [a[f"{key}_start"]]:
            return check(
                False,
                f"{f[key + '_name']} booked at {', '.join(starts) or 'no time'}",
                expected,
                "look for the first free slot at or after the time asked; a full wave is not double-booked",
            )
    return check(True, "both at the first free place", expected)


def _book(att: Any, key: str, start: str) -> None:
    f = att.facts
    s = att.session
    slot = next(
        x
        for x in scheduling.free_slots(s, f["schedule"])
        if x["start"] >= start and x.get("comment") is None
    )
    scheduling.book(
        s,
        f"Patient/{f[key + '_id']}",
        f"Slot/{slot['id']}",
        appointment_type="ROUTINE",
        reason="Requested visit",
    )


def _solution(att: Any, *, then_cancel: bool = False) -> None:
    """The reference (``then_cancel``: a wrong solution cancelling the first patient's visit
    after booking it)."""
    f = att.facts
    for key in ("a", "b"):
        _book(att, key, f"{f['day']}T{f[key + '_ask']}:00-05:00")
    if then_cancel:
        s = att.session
        a = next(
            x
            for x in s.search("Appointment", patient=f"Patient/{f['a_id']}").fetch()
            if x.get("status") == "booked" and x["start"].startswith(f["day"])
        )
        scheduling.cancel(s, f"Appointment/{a['id']}", reason="booked by mistake")


def _booked_in_lunch(att: Any) -> None:
    f = att.facts
    _book(att, "b", f"{f['day']}T{f['b_ask']}:00-05:00")
    start = f"{f['day']}T{f['a_ask']}:00-05:00"
    end = datetime.fromisoformat(start).replace(minute=int(f["a_ask"][3:]) + 20).isoformat()
    att.session.create(
        {
            "resourceType": "Appointment",
            "status": "booked",
            "start": start,
            "end": end,
            "participant": [
                {"actor": {"reference": f"Patient/{f['a_id']}"}, "status": "accepted"},
                {
                    "actor": {"reference": f"Practitioner/prac-{f['provider']}"},
                    "status": "accepted",
                },
            ],
        }
    )


def _tagged_by_hand(att: Any) -> None:
    """The first patient's appointment written by hand at the first free place, its Slot
    referenced and the scheduling.book tag typed in; the Slot is never held."""
    f = att.facts
    s = att.session
    start = f"{f['day']}T{f['a_ask']}:00-05:00"
    slot = next(
        x
        for x in scheduling.free_slots(s, f["schedule"])
        if x["start"] >= start and x.get("comment") is None
    )
    write(
        s,
        {
            "resourceType": "Appointment",
            "status": "booked",
            "start": slot["start"],
            "end": slot["end"],
            "slot": [{"reference": f"Slot/{slot['id']}"}],
            "participant": [
                {"actor": {"reference": f"Patient/{f['a_id']}"}, "status": "accepted"},
                {
                    "actor": {"reference": f"Practitioner/prac-{f['provider']}"},
                    "status": "accepted",
                },
            ],
        },
        operation="scheduling.book",
    )
    _book(att, "b", f"{f['day']}T{f['b_ask']}:00-05:00")


def _double_booked(att: Any) -> None:
    f = att.facts
    _book(att, "a", f"{f['day']}T{f['a_ask']}:00-05:00")
    s = att.session
    taken = [
        x
        for x in s.search("Slot", schedule=f["schedule"], status="busy").fetch()
        if x["start"] == f"{f['day']}T{f['b_ask']}:00-05:00"
    ]
    scheduling.double_book(
        s,
        f"Patient/{f['b_id']}",
        f"Slot/{taken[0]['id']}",
        appointment_type="ROUTINE",
        reason="patient insisted",
    )


def _bumped(att: Any) -> None:
    f = att.facts
    s = att.session
    _book(att, "a", f"{f['day']}T{f['a_ask']}:00-05:00")
    taken = [
        x
        for x in s.search("Slot", schedule=f["schedule"], status="busy").fetch()
        if x["start"] == f"{f['day']}T{f['b_ask']}:00-05:00"
    ]
    appt = s.search("Appointment", slot=f"Slot/{taken[0]['id']}").first()
    scheduling.cancel(s, f"Appointment/{appt['id']}", reason="make room")
    scheduling.book(
        s,
        f"Patient/{f['b_id']}",
        f"Slot/{taken[0]['id']}",
        appointment_type="ROUTINE",
        reason="Requested visit",
    )


def _freed_lunch(att: Any) -> None:
    f = att.facts
    s = att.session
    _book(att, "b", f"{f['day']}T{f['b_ask']}:00-05:00")
    lunch = next(
        x
        for x in s.search("Slot", schedule=f["schedule"]).fetch()
        if x["status"] == "busy-unavailable" and x["start"] >= f"{f['day']}T{f['a_ask']}:00-05:00"
    )
    freed = s.update({**lunch, "status": "free"})
    scheduling.book(
        s,
        f"Patient/{f['a_id']}",
        f"Slot/{freed['id']}",
        appointment_type="ROUTINE",
        reason="Requested visit",
    )


MODIFIED_WAVE = Exercise(
    id="front-office/modified-wave",
    skip_traps=(
        "done-twice",
        "one-more-record",
    ),  # the EHR refuses the repeat (the slots are taken)
    title="Booking a modified-wave day with a blocked lunch",
    topic="front-office",
    topics=("scheduling",),
    competencies=("VI.P.1",),
    minutes=15,
    role=FD,
    summary="Two callers, a modified-wave template: first free place at or after the time asked; never in lunch.",
    setup=_setup,
    instructions=(
        "Dr. {provider}'s schedule for **{day}** is built from the *modified-wave* template "
        "(Schedule `{schedule}`): two patients at :00, one at :30; lunch and meetings are blocked.\n\n"
        "1. **{a_name}** asks for **{a_ask}**.\n2. **{b_name}** asks for **{b_ask}**.\n\n"
        "Book each of them at the first free place at or after the time they ask for."
    ),
    criteria=(
        Criterion(
            "booked into slots",
            2,
            _in_slots,
            "An appointment holds its slot so the template's capacity stays true (MAERB VI.P.1).",
        ),
        Criterion(
            "nothing in blocked time",
            2,
            _not_blocked,
            "Blocked time is the provider's lunch or meeting; booking into it overbooks the day (MAERB VI.P.1).",
        ),
        Criterion(
            "first free place",
            2,
            _first_free,
            "Offer the first free appointment at or after the requested time; a full wave is not overbooked (scheduling policy).",
        ),
    ),
    expects=(
        Expect("Appointment", ops=("create",), patients=("a_id", "b_id")),
        Expect("Slot", ops=("update",)),
    ),
    hints=(
        Hint(
            "`scheduling.free_slots(session, schedule)` lists the free places; `scheduling.book` holds one."
        ),
    ),
    solution=Solution(
        _solution, description="scheduling.book into the first free slot at or after each request"
    ),
    wrong_solutions={
        "booked-then-cancelled": Solution(
            lambda att: _solution(att, then_cancel=True),
            fails="booked into slots",
            message="book each patient who called",
            description="the first caller booked right, then the visit cancelled (it passed "
            "every booking criterion before, caught only by collateral)",
        ),
        "book-tag-by-hand": Solution(
            _tagged_by_hand,
            fails="booked into slots",
            message="so the Slot is held",
            description="wrote the appointment by hand with its Slot and the scheduling.book tag typed in",
        ),
        "booked-in-lunch": Solution(
            _booked_in_lunch,
            fails="nothing in blocked time",
            message="never book into blocked time",
            description="Appointment created by hand at the lunch time asked",
        ),
        "double-booked": Solution(
            _double_booked,
            fails="first free place",
            message="first free slot",
            description="second patient double-booked into the full wave",
        ),
        "bumped-patient": Solution(
            _bumped,
            fails="no collateral damage",
            message="the answer key depends on",
            description="cancelled a booked patient to make room",
        ),
        "freed-lunch": Solution(
            _freed_lunch,
            fails="no collateral damage",
            message="the answer key depends on",
            description="changed a lunch slot to free and booked into it",
        ),
    },
)
