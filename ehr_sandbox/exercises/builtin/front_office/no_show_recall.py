"""Catalogue item 27 (part): document a no-show, reschedule it, and record the recall.

A patient missed this morning's visit; another patient on the same schedule has arrived. The
no-show is recorded as a no-show (not a cancellation), the patient is rebooked at the first
free place of the next working day from 09:00, linked to the missed visit, and the provider's
three-month recall is recorded.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from ehr_sandbox.exercises import rubric
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

__all__ = ["NO_SHOW_RECALL"]

NOSHOW = "a missed visit is documented as a no-show (status noshow), not cancelled or moved: the record shows the patient did not come"


def _setup(sandbox: Any, variant: Any) -> Scenario:
    fd = sandbox.login(FD)
    rng = variant.rng()
    doc = variant.pick(("dr.patel", "dr.nguyen", "dr.okafor"), salt="provider")
    today = sandbox.reference_date
    slots = scheduling.build_day(fd, f"Practitioner/prac-{doc}", today.isoformat(), "stream-20")
    nxt = next_workday(today)
    later = scheduling.build_day(fd, f"Practitioner/prac-{doc}", nxt.isoformat(), "stream-20")
    # patients with nothing else booked today (a clash would be refused, rightly)
    free = [
        x
        for x in visible_patients(sandbox, FD, minimum=2)
        if not any(
            a.get("start", "").startswith(today.isoformat())
            for a in fd.search("Appointment", patient=f"Patient/{x['id']}").fetch()
        )
    ]
    p, q = rng.sample(free, 2)
    p_time = rng.choice(["T08:20:00-05:00", "T08:40:00-05:00"])
    p_slot = next(s for s in slots if s["start"].endswith(p_time))
    q_slot = next(s for s in slots if s["start"].endswith("T09:00:00-05:00"))
    missed = scheduling.book(
        fd,
        f"Patient/{p['id']}",
        f"Slot/{p_slot['id']}",
        appointment_type="FOLLOWUP",
        reason="Blood pressure follow-up",
    )
    arrived = scheduling.book(
        fd, f"Patient/{q['id']}", f"Slot/{q_slot['id']}", appointment_type="ROUTINE", reason="Cough"
    )
    # The morning goes by: it is now 09:30 at the practice; the second patient has arrived.
    now = sandbox.clock.peek()
    target = now.replace(hour=14, minute=30, second=0)
    sandbox.clock.advance(minutes=(target - now).total_seconds() / 60)
    scheduling.check_in(fd, f"Appointment/{arrived['id']}")
    # Some of the next day's morning is already taken.
    taken = rng.randint(0, 3)
    morning = [
        s
        for s in later
        if s["start"] >= f"{nxt.isoformat()}T09:00:00-05:00" and s["status"] == "free"
    ]
    others = [
        x
        for x in free_on(sandbox, visible_patients(sandbox, FD), nxt)
        if x["id"] not in (p["id"], q["id"])
    ]
    for s, who in zip(morning[:taken], others, strict=False):
        scheduling.book(
            fd,
            f"Patient/{who['id']}",
            f"Slot/{s['id']}",
            appointment_type="ROUTINE",
            reason="Visit",
        )
    first = morning[min(taken, len(others))]
    due = (today + timedelta(days=91)).isoformat()
    return Scenario(
        facts={
            "provider": doc,
            "p_id": p["id"],
            "p_name": patient_label(p),
            "missed": missed["id"],
            "missed_time": missed["start"][11:16],
            "q_name": patient_label(q),
            "next_day": nxt.isoformat(),
            "next_schedule": later[0]["schedule"]["reference"],
            "recall_due": due,
        },
        answer={"new_start": first["start"], "arrived": arrived["id"]},
        protect=(f"Appointment/{arrived['id']}",),
    )


def _versions(ctx: GradingContext, pid: str) -> list[dict[str, Any]]:
    return [
        v
        for v in written(ctx, "Appointment")
        if any(
            p.get("actor", {}).get("reference") == f"Patient/{pid}"
            for p in v.get("participant", [])
        )
    ]


def _noshow(ctx: GradingContext) -> Any:
    f = ctx.facts
    expected = f"the {f['missed_time']} visit of {f['p_name']} marked as a no-show, nothing else about it changed"
    cur = ctx.read(f"Appointment/{f['missed']}") or {}
    hist = [v for v in ctx.versions_since_setup(f"Appointment/{f['missed']}")]
    if cur.get("status") != "noshow" or not any(
        op_of(ctx, v) == "scheduling.no-show" for v in hist
    ):
        return check(False, f"Appointment/{f['missed']} is {cur.get('status')}", expected, NOSHOW)
    if any(v.get("start") != cur.get("start") for v in hist):
        return check(False, f"Appointment/{f['missed']} was moved", expected, NOSHOW)
    return check(True, "marked no-show", expected)


def _rebooked(ctx: GradingContext) -> Any:
    f, a = ctx.facts, ctx.answer
    expected = f"a new visit for {f['p_name']} at the first free place on {f['next_day']} from 09:00, linked to the missed one"
    # as each visit was left: one booked and then cancelled does not rebook the patient
    new = [
        v
        for v in still_standing(ctx, _versions(ctx, f["p_id"]), current=True, patient_id=f["p_id"])
        if v.get("status") == "booked" and v["id"] != f["missed"] and v.get("slot")
    ]
    if not new:
        return check(False, "no new booked appointment", expected, "rebook the patient")
    v = new[-1]
    linked = any(
        r.get("reference") == f"Appointment/{f['missed']}"
        for r in v.get("supportingInformation", [])
    )
    if v.get("start") != a["new_start"]:
        return check(
            False,
            f"booked at {v.get('start')}",
            expected,
            "offer the first free place from 09:00 that day",
        )
    if not linked:
        return check(
            False,
            f"Appointment/{v['id']} is not linked to the missed visit",
            expected,
            "use scheduling.reschedule so the new visit points to the missed one",
        )
    return check(True, f"Appointment/{v['id']}", expected)


def _recall(ctx: GradingContext) -> Any:
    f = ctx.facts
    expected = f"a recall for {f['p_name']} due {f['recall_due']}"
    # as each recall was left (a recall cancelled afterwards calls nobody back)
    rec = [
        v
        for v in still_standing(ctx, _versions(ctx, f["p_id"]), current=True, patient_id=f["p_id"])
        if v.get("status") == "proposed" and op_of(ctx, v) == "scheduling.recall"
    ]
    if not rec:
        return check(
            False,
            "no recall recorded (or none left standing)",
            expected,
            "record the provider's recall so the patient is called back",
        )
    doctor = f"Practitioner/prac-{f['provider']}"
    # one recall must be all of it: a provider's name on one and the due date on another
    # brings the patient back to nobody
    rec = [
        v
        for v in rec
        if any((x.get("actor") or {}).get("reference") == doctor for x in v.get("participant", []))
    ]
    if not rec:
        return check(
            False,
            "the recall is with another provider",
            expected,
            "the recall brings the patient back to the provider who asked for it",
        )
    rec = [
        v
        for v in rec
        if any(
            rubric.mentions(r.get("text") or "", term)
            for r in v.get("reasonCode", [])
            for term in ("blood pressure", "BP", "hypertension")
        )
    ]
    if not rec:
        return check(
            False,
            "the recall's reason does not say what the patient comes back for",
            expected,
            "the reason tells whoever calls the patient, and the provider, what the visit is for",
        )
    if not any((v.get("requestedPeriod") or [{}])[0].get("start") == f["recall_due"] for v in rec):
        return check(
            False,
            f"recall due {(rec[-1].get('requestedPeriod') or [{}])[0].get('start')}",
            expected,
            "the recall is due on the date the provider asked",
        )
    return check(True, "recall recorded", expected)


def _first_free(att: Any) -> dict[str, Any]:
    f = att.facts
    return next(
        s
        for s in scheduling.free_slots(att.session, f["next_schedule"])
        if s["start"] >= f"{f['next_day']}T09:00:00-05:00"
    )


def _solution(att: Any, *, then_cancel: str = "") -> None:
    """The reference (``then_cancel``: a wrong solution cancelling, afterwards, the
    ``rebooked`` visit or the ``recall`` it made)."""
    f, s = att.facts, att.session
    scheduling.no_show(s, f"Appointment/{f['missed']}", note="did not arrive, no call")
    new = scheduling.reschedule(
        s,
        f"Appointment/{f['missed']}",
        f"Slot/{_first_free(att)['id']}",
        reason="missed visit rebooked by phone",
    )
    rec = scheduling.recall(
        s,
        f"Patient/{f['p_id']}",
        f"Practitioner/prac-{f['provider']}",
        due=f["recall_due"],
        reason="3-month blood pressure recheck",
    )
    undo = {"rebooked": new, "recall": rec}.get(then_cancel)
    if undo is not None:
        scheduling.cancel(s, f"Appointment/{undo['id']}", reason="no longer needed")


def _recall_elsewhere(att: Any) -> None:
    """No-show and rebooking right; the recall with another provider, for 'follow up'."""
    f, s = att.facts, att.session
    scheduling.no_show(s, f"Appointment/{f['missed']}", note="did not arrive, no call")
    scheduling.reschedule(
        s,
        f"Appointment/{f['missed']}",
        f"Slot/{_first_free(att)['id']}",
        reason="missed visit rebooked by phone",
    )
    other = next(d for d in ("dr.patel", "dr.nguyen", "dr.okafor") if d != f["provider"])
    scheduling.recall(
        s,
        f"Patient/{f['p_id']}",
        f"Practitioner/prac-{other}",
        due=f["recall_due"],
        reason="follow up",
    )


def _book_new_and_recall(att: Any) -> None:
    """Book a new follow-up that points at the missed visit, and set the recall (the tail
    of the wrong solutions that do not reschedule through the workflow)."""
    f, s = att.facts, att.session
    slot = _first_free(att)
    new = scheduling.book(
        s,
        f"Patient/{f['p_id']}",
        f"Slot/{slot['id']}",
        appointment_type="FOLLOWUP",
        reason="Blood pressure follow-up",
    )
    s.update({**new, "supportingInformation": [{"reference": f"Appointment/{f['missed']}"}]})
    scheduling.recall(
        s,
        f"Patient/{f['p_id']}",
        f"Practitioner/prac-{f['provider']}",
        due=f["recall_due"],
        reason="3-month recheck",
    )


def _cancelled(att: Any) -> None:
    f, s = att.facts, att.session
    scheduling.cancel(s, f"Appointment/{f['missed']}", reason="did not come")
    _book_new_and_recall(att)


def _uncancelled(appt: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in appt.items() if k != "cancelationReason"}


def _noshow_tag_by_hand(att: Any) -> None:
    """Cancel the missed visit, then type status noshow and the scheduling.no-show tag over
    the cancellation (the workflow marks only a booked visit)."""
    f, s = att.facts, att.session
    scheduling.cancel(s, f"Appointment/{f['missed']}", reason="did not come")
    write(
        s,
        {**_uncancelled(s.read(f"Appointment/{f['missed']}")), "status": "noshow"},
        operation="scheduling.no-show",
    )
    _book_new_and_recall(att)


def _recall_tag_by_hand(att: Any) -> None:
    """A proposed appointment written by hand for the due date with the scheduling.recall tag
    typed in: no recall category, no reason."""
    f, s = att.facts, att.session
    scheduling.no_show(s, f"Appointment/{f['missed']}")
    scheduling.reschedule(
        s, f"Appointment/{f['missed']}", f"Slot/{_first_free(att)['id']}", reason="rebooked"
    )
    write(
        s,
        {
            "resourceType": "Appointment",
            "status": "proposed",
            "requestedPeriod": [{"start": f["recall_due"]}],
            "participant": [
                {"actor": {"reference": f"Patient/{f['p_id']}"}, "status": "needs-action"}
            ],
        },
        operation="scheduling.recall",
    )


def _no_recall(att: Any) -> None:
    f, s = att.facts, att.session
    scheduling.no_show(s, f"Appointment/{f['missed']}")
    scheduling.reschedule(
        s, f"Appointment/{f['missed']}", f"Slot/{_first_free(att)['id']}", reason="rebooked"
    )


def _arrived_marked(att: Any) -> None:
    _solution(att)
    s = att.session
    for a in s.search("Appointment", status="arrived").fetch():
        s.update({**a, "status": "noshow"})


def _moved(att: Any) -> None:
    f, s = att.facts, att.session
    slot = _first_free(att)
    appt = s.read(f"Appointment/{f['missed']}")
    s.update(
        {
            **appt,
            "start": slot["start"],
            "end": slot["end"],
            "slot": [{"reference": f"Slot/{slot['id']}"}],
        }
    )
    scheduling.recall(
        s,
        f"Patient/{f['p_id']}",
        f"Practitioner/prac-{f['provider']}",
        due=f["recall_due"],
        reason="3-month recheck",
    )


NO_SHOW_RECALL = Exercise(
    id="front-office/no-show-recall",
    skip_traps=("done-twice", "one-more-record"),  # the EHR refuses the repeat (the slot is taken)
    title="A no-show, rescheduled, with a recall",
    topic="front-office",
    topics=("scheduling",),
    competencies=("VI.P.1", "X.P.3"),
    minutes=10,
    role=FD,
    summary="Mark the no-show, rebook at the first free place linked to it, record the 3-month recall.",
    setup=_setup,
    instructions=(
        "It is 09:30. **{p_name}** did not come to the {missed_time} visit with Dr. {provider} "
        "(`Appointment/{missed}`); **{q_name}** has arrived for 09:00. You reach {p_name} by phone:\n\n"
        "1. Record the missed visit.\n2. Rebook it at the first free place on **{next_day}** from "
        "09:00 (schedule `{next_schedule}`).\n3. Dr. {provider} wants {p_name} back for a blood-pressure "
        "recheck in three months: record a recall due **{recall_due}**."
    ),
    criteria=(
        Criterion(
            "no-show documented",
            2,
            _noshow,
            "A no-show is part of the legal and business record (no-show rates, dismissal policy); it is never erased by cancelling or moving the visit (MAERB VI.P.1).",
        ),
        Criterion(
            "rebooked and linked",
            2,
            _rebooked,
            "The new visit is tied to the missed one so follow-up is traceable (MAERB VI.P.1).",
        ),
        Criterion(
            "recall recorded",
            2,
            _recall,
            "Recalls keep patients with chronic conditions from being lost to follow-up (MAERB VI.P.1).",
        ),
    ),
    expects=(
        Expect("Appointment", ops=("create", "update"), patients=("p_id",)),
        Expect("Slot", ops=("update",)),
    ),
    hints=(
        Hint(
            "`scheduling.no_show`, then `scheduling.reschedule` (it links the visits), then `scheduling.recall`."
        ),
    ),
    solution=Solution(_solution, description="no_show, reschedule, recall"),
    wrong_solutions={
        "rebooked-then-cancelled": Solution(
            lambda att: _solution(att, then_cancel="rebooked"),
            fails="rebooked and linked",
            message="rebook the patient",
            description="the new visit cancelled after it was booked (full marks before)",
        ),
        "recall-cancelled": Solution(
            lambda att: _solution(att, then_cancel="recall"),
            fails="recall recorded",
            message="record the provider's recall",
            description="the recall cancelled after it was recorded (full marks before)",
        ),
        "recall-with-another-provider": Solution(
            _recall_elsewhere,
            fails="recall recorded",
            message="the recall brings the patient back to the provider who asked for it",
            description="the recall recorded with another provider, for 'follow up'",
        ),
        "no-show-tag-by-hand": Solution(
            _noshow_tag_by_hand,
            fails="no-show documented",
            message="not cancelled or moved",
            description="cancelled the visit, then typed status noshow and the scheduling.no-show tag",
        ),
        "recall-tag-by-hand": Solution(
            _recall_tag_by_hand,
            fails="recall recorded",
            message="record the provider's recall",
            description="wrote a proposed appointment by hand with the scheduling.recall tag typed in",
        ),
        "cancelled-instead": Solution(
            _cancelled,
            fails="no-show documented",
            message="documented as a no-show",
            description="cancelled the missed visit and booked a new one",
        ),
        "no-recall": Solution(
            _no_recall,
            fails="recall recorded",
            message="recall",
            description="forgot the provider's recall",
        ),
        "arrived-marked-no-show": Solution(
            _arrived_marked,
            fails="no collateral damage",
            message="the answer key depends on",
            description="also marked the arrived patient as a no-show",
        ),
        "moved-the-missed-visit": Solution(
            _moved,
            fails="no-show documented",
            message="documented as a no-show",
            description="moved the missed appointment to the new time",
        ),
    },
)
