"""Recalls and waitlist entries at the reference date, as the EHR's scheduling workflow
records them (``ehr_sandbox.workflows.scheduling.recall`` and ``add_to_waitlist``).

A living patient with a chronic condition that asks for follow-up (the condition's
``follow_up_days``) and nothing booked ahead is on the recall list: a ``proposed`` Appointment
created at the last visit, due that many days later (the shortest interval of the patient's
active conditions), for the patient's own clinician. Recalls overdue for longer than
``recalls.toml [recall] overdue_days`` are dropped (lost to follow-up). A share of the
appointments booked weeks ahead has a waitlist entry: the patient asked to be called if an
earlier slot opens, between the reference date and the day before the booked visit. No random
numbers are drawn from the patient's stream: the waitlist choice is a hash of the patient and
the day.

>>> from synthetic.engine import engine_for
>>> e = engine_for(seed=1, reference_date="2026-01-01", years=2, population="family-practice")
>>> apts = [a for i in range(40) for a in e.patient(i).by_type("Appointment")]
>>> {a["status"] for a in apts} >= {"proposed", "waitlist"}
True
"""

from __future__ import annotations

import tomllib
import zlib
from functools import cache
from importlib import resources
from typing import Any

from synthetic.context import RecordContext
from synthetic.dates import iso_date
from synthetic.labels import meta
from synthetic.templates import SLOT_CATEGORY
from synthetic.visit.state import PatientState


def _recall_category() -> dict[str, Any]:
    return {"coding": [{"system": SLOT_CATEGORY, "code": "recall", "display": "Recall"}]}


@cache
def table() -> dict[str, Any]:
    """The recall and waitlist policy (``synthetic/content/data/recalls.toml``).

    >>> table()["recall"]["window_days"]
    30
    """
    text = (resources.files("synthetic.content") / "data" / "recalls.toml").read_text("utf-8")
    return tomllib.loads(text)


def _share(key: str) -> float:
    return zlib.crc32(key.encode()) / 4294967296.0


def _participants(ctx: RecordContext, practitioner: str) -> list[dict[str, Any]]:
    return [
        {"actor": ctx.subject, "status": "needs-action"},
        {"actor": {"reference": practitioner}, "status": "needs-action"},
    ]


def write(eng: Any, ctx: RecordContext, st: PatientState, plan: Any) -> None:
    """Add the patient's recall (when due) and waitlist entries to the record.

    Parameters
    ----------
    eng : Engine
        The engine (reference day, appointment types, practice).
    ctx : RecordContext
        The record being built.
    st : PatientState
        The patient's state after the last visit.
    plan : PatientPlan
        The patient's placed appointments (visits and those booked ahead).

    Examples
    --------
    >>> from synthetic.engine import engine_for
    >>> e = engine_for(seed=1, reference_date="2026-01-01", years=2, population="family-practice")
    >>> r = next(a for i in range(40) for a in e.patient(i).by_type("Appointment") if a["status"] == "proposed")
    >>> r["serviceCategory"][0]["coding"][0]["code"], r["requestedPeriod"][0]["start"] > r["created"]
    ('recall', True)
    """
    ref = eng.ref
    if st.end < ref or not plan.visits:
        return  # died before the reference date, or never seen
    policy = table()
    ahead = plan.ahead or []
    if not ahead:
        last = plan.visits[-1].day
        interval = 0
        reason = ""
        for d in st.profile.diagnoses.values():
            c = d.condition
            if not c.follow_up_days or d.onset > last:
                continue
            if d.abatement is not None and d.abatement <= last:
                continue
            if not interval or c.follow_up_days < interval:
                interval = c.follow_up_days
                reason = "Chronic condition follow-up" if c.security is not None else c.display
        due = last + interval
        if interval and due >= ref - policy["recall"]["overdue_days"]:
            tcode = eng.appointment_type("follow-up")
            ctx.add(
                {
                    "resourceType": "Appointment",
                    "id": ctx.new_id("apt"),
                    "meta": meta("Appointment"),
                    "status": "proposed",
                    "serviceCategory": [_recall_category()],
                    "appointmentType": eng.type_cc[tcode],
                    "reasonCode": [{"text": reason}],
                    "requestedPeriod": [
                        {
                            "start": iso_date(due),
                            "end": iso_date(due + policy["recall"]["window_days"]),
                        }
                    ],
                    "created": iso_date(last),
                    "participant": _participants(ctx, f"Practitioner/{st.pcp}"),
                }
            )
        return
    wl = policy["waitlist"]
    for a in ahead:
        if a.placed is None or a.day < ref + wl["min_days_ahead"]:
            continue
        if _share(f"{ctx.base}:{a.day}") >= wl["share"]:
            continue
        ctx.add(
            {
                "resourceType": "Appointment",
                "id": ctx.new_id("apt"),
                "meta": meta("Appointment"),
                "status": "waitlist",
                "appointmentType": eng.type_cc[a.tcode],
                "reasonCode": [{"text": a.reason or eng.types[a.tcode].display}],
                "requestedPeriod": [{"start": iso_date(ref), "end": iso_date(a.day - 1)}],
                "created": iso_date(a.created),
                "participant": _participants(ctx, f"Practitioner/{a.placed.provider}"),
            }
        )
