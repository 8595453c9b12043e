"""Catalogue item 37 (part): a downtime day entered late.

The EHR was down yesterday morning; vitals were charted on paper downtime forms. Now the system
is back, the MA back-enters each reading on the right patient with the time written on the
form (inside the outage), as a late entry citing the form, never backdated.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from ehr_sandbox.exercises import rubric
from ehr_sandbox.exercises.builtin.common import (
    blood_pressure,
    bp_values,
    patient_label,
    visible_patients,
)
from ehr_sandbox.exercises.builtin.front_office.common import MA, check, local_day_start, written
from ehr_sandbox.exercises.grading import GradingContext, provenance_reason
from ehr_sandbox.exercises.model import Criterion, Exercise, Expect, Hint, Scenario, Solution
from ehr_sandbox.workflows import maintenance

__all__ = ["DOWNTIME"]

STANDING = ("final", "amended", "corrected")
"""Observation statuses of a reading that stands in the chart."""
LATE = "back-enter paper downtime records as late entries (recorded now, event time from the form) citing the form; never backdate"


def _setup(sandbox: Any, variant: Any) -> Scenario:
    rng = variant.rng()
    ma = sandbox.login(MA)
    pats = [
        p
        for p in visible_patients(sandbox, MA, minimum=2)
        if ma.search("Observation", patient=f"Patient/{p['id']}").count()
    ]
    a, b = rng.sample(pats, 2)
    day = sandbox.reference_date - timedelta(days=1)
    start, end = local_day_start(day, "09:00"), local_day_start(day, "12:00")
    forms = [
        {
            "form": f"DT-{rng.randint(100, 499)}",
            "patient_id": a["id"],
            "patient_name": patient_label(a),
            "time": local_day_start(day, rng.choice(["09:20", "09:40", "10:00"])),
            "systolic": rng.randint(118, 158),
            "diastolic": rng.randint(72, 96),
        },
        {
            "form": f"DT-{rng.randint(500, 999)}",
            "patient_id": b["id"],
            "patient_name": patient_label(b),
            "time": local_day_start(day, rng.choice(["10:40", "11:00", "11:20"])),
            "systolic": rng.randint(110, 150),
            "diastolic": rng.randint(68, 92),
        },
    ]
    prior = ma.search("Observation", patient=f"Patient/{a['id']}").first()
    return Scenario(
        facts={
            "start": start,
            "end": end,
            "reason": "network outage",
            "forms": forms,
            "a_id": a["id"],
            "b_id": b["id"],
            "form_lines": "\n".join(
                f"- Form **{f['form']}**: {f['patient_name']} (`Patient/{f['patient_id']}`), BP **{f['systolic']}/{f['diastolic']} mmHg** at {f['time'][11:16]}"
                for f in forms
            ),
        },
        answer={},
        protect=(f"Observation/{prior['id']}",),
    )


def _entries(ctx: GradingContext, form: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for v in written(ctx, "Observation"):
        if v.get("meta", {}).get("versionId") != "1":
            continue
        if bp_values(v) == (form["systolic"], form["diastolic"]):
            out.append(v)
    return out


def _right_patients(ctx: GradingContext) -> Any:
    expected = "each form's reading once, on the patient named on the form"
    for form in ctx.facts["forms"]:
        found = _entries(ctx, form)
        pats = [(v.get("subject") or {}).get("reference") for v in found]
        if pats != [f"Patient/{form['patient_id']}"]:
            return check(
                False,
                f"form {form['form']}: charted on {pats or 'nobody'}",
                expected,
                "chart each paper form's reading once, on the right patient",
            )
        # as it stands: a reading charted (or left) preliminary, cancelled or in error is not
        # in the chart the clinicians read
        now = ctx.read(f"Observation/{found[0]['id']}") or {}
        if now.get("status") not in STANDING:
            return check(
                False,
                f"form {form['form']}: the reading is {now.get('status')}",
                expected,
                "chart each paper form's reading as a final result: the form is the measurement",
            )
    return check(True, "both readings on the right patients", expected)


def _event_time(ctx: GradingContext) -> Any:
    expected = "the time written on the paper form, inside the outage"
    for form in ctx.facts["forms"]:
        for v in _entries(ctx, form):
            if v.get("effectiveDateTime") != form["time"]:
                return check(
                    False,
                    f"form {form['form']}: effective {v.get('effectiveDateTime')}",
                    expected,
                    "the reading's time is when it was taken, as written on the form",
                )
    return check(True, "event times from the forms", expected)


def _late(ctx: GradingContext) -> Any:
    expected = (
        "each reading back-entered as a late entry, with a reason citing the downtime and the form"
    )
    for form in ctx.facts["forms"]:
        for v in _entries(ctx, form):
            tags = {t.get("code") for t in v.get("meta", {}).get("tag", [])}
            provs = ctx.provenance_of_version(f"Observation/{v['id']}", "1")
            acts = {c for p in provs for c in ctx.activity(p)}
            if "late-entry" not in tags or "late-entry" not in acts:
                return check(False, f"Observation/{v['id']} is not a late entry", expected, LATE)
            res = rubric.check_text(
                provenance_reason(provs[-1]),
                {"the downtime": ["downtime", "outage", "paper"], "the form": [form["form"]]},
                what="the late-entry reason",
            )
            if not res.passed:
                return check(False, res.found, expected, LATE)
    return check(True, "late entries with their forms", expected)


def _obs(
    form: dict[str, Any], *, patient: str | None = None, when: str | None = None
) -> dict[str, Any]:
    return blood_pressure(
        f"Patient/{patient or form['patient_id']}",
        form["systolic"],
        form["diastolic"],
        when or form["time"],
    )


def _downtime(att: Any) -> maintenance.Downtime:
    return maintenance.Downtime(att.facts["start"], att.facts["end"], att.facts["reason"])


def _solution(att: Any, *, status: str = "") -> None:
    """The reference (``status``: a wrong solution back-entering the readings with it)."""
    for form in att.facts["forms"]:
        maintenance.back_enter(
            att.session,
            {**_obs(form), **({"status": status} if status else {})},
            downtime=_downtime(att),
            event_time=form["time"],
            form_id=form["form"],
        )


def _as_now(att: Any) -> None:
    now = att.sandbox.clock.peek().isoformat()
    for form in att.facts["forms"]:
        att.session.late_entry(
            _obs(form, when=now),
            event_time=now,
            reason=f"Downtime back-entry from paper form {form['form']}",
        )


def _backdated(att: Any) -> None:
    for form in att.facts["forms"]:
        obs = _obs(form)
        obs["issued"] = form["time"]
        att.session.create(obs)


def _wrong_patient(att: Any) -> None:
    forms = att.facts["forms"]
    for n, form in enumerate(forms):
        maintenance.back_enter(
            att.session,
            _obs(form, patient=forms[0]["patient_id"] if n == 1 else None),
            downtime=_downtime(att),
            event_time=form["time"],
            form_id=form["form"],
        )


def _edited_prior(att: Any) -> None:
    s = att.session
    prior = s.search("Observation", patient=f"Patient/{att.facts['a_id']}").first()
    s.update({**prior, "note": [{"text": "reviewed during downtime"}]})
    _solution(att)


DOWNTIME = Exercise(
    id="front-office/downtime-day",
    title="A downtime day entered late",
    topic="front-office",
    topics=("ehr-maintenance", "editing-records", "vital-signs"),
    competencies=("X.P.3", "I.P.1"),
    minutes=10,
    role=MA,
    summary="Back-enter the paper downtime forms: right patient, time from the form, late entry citing the form.",
    setup=_setup,
    instructions=(
        "The EHR was down from {start} to {end} ({reason}). These vitals were charted on paper "
        "downtime forms:\n\n{form_lines}\n\nThe system is back: enter them."
    ),
    criteria=(
        Criterion(
            "readings on the right patients",
            2,
            _right_patients,
            "Back-entry copies the paper record to the right chart once (documentation standards; MAERB X.P.3).",
        ),
        Criterion(
            "event time from the paper form",
            2,
            _event_time,
            "A reading is dated when it was taken (documentation standards).",
        ),
        Criterion(
            "back-entered as late entries",
            2,
            _late,
            "Downtime back-entry is labelled late with the recording time and the source form (HIPAA 164.308(a)(7) contingency plan; AHIMA late-entry guidance).",
        ),
    ),
    expects=(Expect("Observation", ops=("late-entry", "create"), patients=("a_id", "b_id")),),
    hints=(
        Hint(
            "`maintenance.back_enter(session, obs, downtime=maintenance.Downtime(start, end, reason), event_time=..., form_id=...)`."
        ),
    ),
    solution=Solution(_solution, description="back_enter each form"),
    wrong_solutions={
        "entered-preliminary": Solution(
            lambda att: _solution(att, status="preliminary"),
            fails="readings on the right patients",
            message="as a final result",
            description="the readings back-entered as preliminary (any status scored full "
            "marks before, entered-in-error too)",
        ),
        "charted-as-now": Solution(
            _as_now,
            fails="event time from the paper form",
            message="as written on the form",
            description="used the current time",
        ),
        "backdated": Solution(
            _backdated,
            fails="back-entered as late entries",
            message="never backdate",
            description="created the readings with the form time as if charted then",
        ),
        "wrong-patient": Solution(
            _wrong_patient,
            fails="readings on the right patients",
            message="on the right patient",
            description="both readings on the first form's patient",
        ),
        "edited-earlier-reading": Solution(
            _edited_prior,
            fails="no collateral damage",
            message="the answer key depends on",
            description="also changed the patient's earlier reading",
        ),
    },
)
