"""Catalogue item 8 of EXERCISES.md: Immunizations due.

Defines and registers ``reports/immunizations-due`` (section "Running reports").
The package ``__init__`` imports the exercise modules in catalogue order; helpers shared
within the section are in ``common``.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from datetime import date, datetime, timedelta
from typing import Any

from ehr_sandbox.errors import ExerciseError
from ehr_sandbox.exercises.builtin.common import patient_facts, patient_label, ref_id
from ehr_sandbox.exercises.builtin.reports.common import (
    FRONT_DESK,
    MA,
    age_in_years,
    answer_of,
    hand_in,
    is_alive,
    local_instant,
    nothing_found,
    practice_offset,
    report_expects,
    resource_template,
    set_diff,
)
from ehr_sandbox.exercises.grading import GradingContext
from ehr_sandbox.exercises.model import Check, Criterion, Exercise, Hint, Scenario, Solution
from ehr_sandbox.exercises.registry import register
from synthetic.systems import CVX, V3_ACT_REASON

# ------------------------------------------------------------------------------------------
# 8. Immunizations due
# ------------------------------------------------------------------------------------------
# The two series of the catalogue report's simplified CDC schedule that a small adult-heavy
# sandbox always has patients for: (CVX codes, minimum age in years, repeat interval in days,
# the vaccine planted by setup).
SERIES: dict[str, tuple[frozenset[str], float, int, tuple[str, str]]] = {
    "Influenza": (
        frozenset(
            {"140", "141", "150", "153", "155", "158", "161", "171", "185", "186", "197", "205"}
        ),
        0.5,
        365,
        ("140", "Influenza, seasonal, injectable, preservative free"),
    ),
    "Td/Tdap": (
        frozenset({"115", "113", "09", "139", "138"}),
        11,
        3650,
        ("115", "Tdap"),
    ),
}
DOSE_ADVICE = (
    "an entered-in-error or not-done dose is not immunity: count only doses with status 'completed'"
)


def _cvx(imm: Mapping[str, Any]) -> str | None:
    for c in (imm.get("vaccineCode") or {}).get("coding", []):
        if c.get("system") == CVX:
            return c.get("code")
    return None


def _dose_day(imm: Mapping[str, Any]) -> str:
    return str(imm.get("occurrenceDateTime") or "")[:10]


def _due_patients(
    patients: Iterable[Mapping[str, Any]],
    doses: Iterable[Mapping[str, Any]],
    series: str,
    as_of: str,
    *,
    statuses: tuple[str, ...] | None = ("completed",),
) -> set[str]:
    """Patients due for ``series`` on ``as_of`` (the catalogue report's rule, in Python)."""
    cvx_codes, min_age, repeat_days, _ = SERIES[series]
    last: dict[str, str] = {}
    for d in doses:
        if statuses is not None and d.get("status") not in statuses:
            continue
        day = _dose_day(d)
        if _cvx(d) in cvx_codes and day and day <= as_of:
            pid = ref_id(d.get("patient"))
            last[pid] = max(last.get(pid, ""), day)
    due = set()
    for p in patients:
        birth = str(p.get("birthDate") or "")
        if len(birth) != 10 or birth > as_of or not is_alive(p):
            continue
        if age_in_years(birth, as_of) < min_age:
            continue
        seen = last.get(p["id"])
        if (
            seen is None
            or (date.fromisoformat(as_of) - date.fromisoformat(seen)).days > repeat_days
        ):
            due.add(p["id"])
    return due


def _old_enough(patient: Mapping[str, Any], series: str, as_of: str) -> bool:
    birth = str(patient.get("birthDate") or "")
    return (
        len(birth) == 10
        and is_alive(patient)
        and age_in_years(birth, as_of) >= SERIES[series][1] + 1
    )


def _setup_due(sandbox: Any, variant: Any) -> Scenario:
    """Plant a voided dose, a refused dose and a recent real dose on three patients.

    Every variant gets all three traps: the series is the variant's pick unless the clinic has
    too few patients due for it, and the three patients get a catch-up visit booked this week,
    which puts them on the medical assistant's list (MAs room this week's patients).
    """
    rng = variant.rng()
    today = sandbox.reference_date
    as_of = today.isoformat()
    system = sandbox.system_session()
    everyone = sorted(system.resources("Patient"), key=lambda p: p["id"])
    doses = list(system.resources("Immunization"))
    first = variant.pick(sorted(SERIES), salt="series")
    series, due_old = first, []
    for name in (first, *sorted(set(SERIES) - {first})):
        due_now = _due_patients(everyone, doses, name, as_of)
        due_old = [p for p in everyone if p["id"] in due_now and _old_enough(p, name, as_of)]
        if len(due_old) >= 2:
            series = name
            break
    else:
        raise ExerciseError(
            f"setup: needs 2 patients due for a vaccine series (found {len(due_old)}); generate a larger sandbox"
        )
    _, _, _, (code, display) = SERIES[series]
    voided, refused = rng.sample(due_old, 2)
    # The patient who "had it here recently": another due patient when there is one, so the
    # real dose changes the list.
    rest = [p for p in due_old if p["id"] not in (voided["id"], refused["id"])] or [
        p
        for p in everyone
        if _old_enough(p, series, as_of) and p["id"] not in (voided["id"], refused["id"])
    ]
    if not rest:
        raise ExerciseError(
            f"setup: needs a third adult patient for {series}; generate a larger sandbox"
        )
    given = rng.choice(rest)
    offset = practice_offset(sandbox)
    _book_this_week(sandbox, [voided, given, refused], today, offset, rng)
    ma = sandbox.login(MA)
    template = resource_template(sandbox, "Immunization", MA)
    for key in ("encounter", "reasonReference", "protocolApplied", "note"):
        template.pop(key, None)
    template["vaccineCode"] = {
        "coding": [{"system": CVX, "code": code, "display": display}],
        "text": display,
    }

    def dose(patient: Mapping[str, Any], days_ago: int, status: str) -> str:
        imm = copy.deepcopy(template)
        day = today - timedelta(days=days_ago)
        imm["patient"] = {"reference": f"Patient/{patient['id']}"}
        imm["status"] = status
        imm["occurrenceDateTime"] = local_instant(
            day, rng.randint(9, 15), rng.choice([0, 20, 40]), offset
        )
        imm["expirationDate"] = (day + timedelta(days=180)).isoformat()
        if status == "not-done":
            imm["statusReason"] = {
                "coding": [
                    {
                        "system": V3_ACT_REASON,
                        "code": "PATOBJ",
                        "display": "patient objection",
                    }
                ]
            }
            for key in ("lotNumber", "expirationDate", "site", "route", "doseQuantity"):
                imm.pop(key, None)
        return ma.create(imm)["id"]

    voided_dose = dose(voided, rng.randint(20, 200), "completed")
    ma.mark_entered_in_error(
        f"Immunization/{voided_dose}", reason="Documented on the wrong patient's chart"
    )
    refused_dose = dose(refused, rng.randint(3, 60), "not-done")
    given_dose = dose(given, rng.randint(20, 200), "completed")
    # The expected list, fixed now, as the MA sees the clinic.
    seen = list(ma.resources("Patient"))
    due = _due_patients(seen, list(ma.resources("Immunization")), series, as_of)
    protect = sorted(
        {f"Patient/{p['id']}" for p in seen}
        | {f"Immunization/{d['id']}" for d in ma.resources("Immunization")}
    )
    return Scenario(
        facts={
            "series": series,
            "as_of": as_of,
            **patient_facts(given, "given"),
        },
        answer={
            "due": sorted(due),
            **patient_facts(voided, "voided"),
            **patient_facts(refused, "refused"),
            "voided_dose": voided_dose,
            "refused_dose": refused_dose,
            "given_dose": given_dose,
        },
        protect=tuple(protect),
    )


def _book_this_week(
    sandbox: Any, patients: list[Mapping[str, Any]], today: date, offset: str, rng: Any
) -> None:
    """Book each patient a catch-up visit today (so the MA, who rooms this week's patients, sees them)."""
    fd = sandbox.login(FRONT_DESK)
    template = resource_template(sandbox, "Appointment", FRONT_DESK)
    for i, patient in enumerate(patients):
        apt = copy.deepcopy(template)
        apt["status"] = "booked"
        apt["start"] = local_instant(today, 13 + i, rng.choice([0, 20, 40]), offset)
        apt["end"] = (datetime.fromisoformat(apt["start"]) + timedelta(minutes=15)).isoformat()
        apt["description"] = "Immunization catch-up"
        apt["participant"] = [
            p
            for p in apt.get("participant", [])
            if not (p.get("actor") or {}).get("reference", "").startswith("Patient/")
        ] + [
            {
                "actor": {"reference": f"Patient/{patient['id']}"},
                "required": "required",
                "status": "accepted",
            }
        ]
        fd.create(apt)


def _voided_excluded(ctx: GradingContext) -> Check:
    f, a = ctx.facts, ctx.answer
    expected = (
        f"the patients whose only {f['series']} dose on file was voided (entered-in-error) or "
        "declined (not-done) listed as due"
    )
    answer = answer_of(ctx, "reports/immunizations-due")
    if answer is None:
        return nothing_found(expected)
    found = set(answer["patients"])
    left_out = [
        f"a patient whose only recent dose is {status}"
        for k, status in (("voided", "entered-in-error"), ("refused", "not-done"))
        if a[k + "_id"] not in found
    ]
    if left_out:
        return Check(False, "left out as not due: " + "; ".join(left_out), expected, DOSE_ADVICE)
    return Check(True, f"{a['voided_name']} and {a['refused_name']} listed as due", expected)


def _due_list(ctx: GradingContext) -> Check:
    f, a = ctx.facts, ctx.answer
    due = set(a["due"])
    names = {p["id"]: patient_label(p) for p in ctx.all("Patient")}
    expected = (
        f"every patient you can see who is due for {f['series']} on {f['as_of']}, and no one else"
    )
    answer = answer_of(ctx, "reports/immunizations-due")
    if answer is None:
        return nothing_found(expected)
    found = set(answer["patients"])
    if found == due:
        return Check(True, f"the {len(found)} patients due", expected)
    advice = (
        f"{f['given_name']} had a completed dose on record: not due"
        if f["given_id"] in found
        else "use the immunizations due report for the series and the day, as the chart stood when you started"
    )
    return Check(
        False,
        set_diff(found, due, "patients", lambda i: f"{names.get(i, '?')} (Patient/{i})"),
        expected,
        advice,
    )


def _due_rows(att: Any) -> list[str]:
    f = att.facts
    rows = att.session.reports.run("immunizations_due", as_of=f["as_of"]).to_pylist()
    return [r["patient"] for r in rows if r["series"] == f["series"]]


def _due_solution(att: Any) -> None:
    hand_in(att, {"patients": _due_rows(att)})


def _dose_rows(att: Any) -> list[dict[str, Any]]:
    s = att.session
    return s.reports.sql("SELECT patient, status, cvx, occurrence FROM immunization").to_pylist()


def _due_from(att: Any, keep: tuple[str, ...] | None) -> None:
    f, s = att.facts, att.session
    fake = [
        {
            "patient": {"reference": f"Patient/{d['patient']}"},
            "status": "completed",
            "vaccineCode": {"coding": [{"system": CVX, "code": d["cvx"]}]},
            "occurrenceDateTime": d["occurrence"],
        }
        for d in _dose_rows(att)
        if keep is None or d["status"] in keep
    ]
    patients = list(s.resources("Patient"))
    hand_in(
        att,
        {"patients": sorted(_due_patients(patients, fake, f["series"], f["as_of"], statuses=None))},
    )


def _due_count_voided(att: Any) -> None:
    # Any dose on file counts, whatever its status: the typical mistake.
    _due_from(att, None)


def _due_count_refused(att: Any) -> None:
    # Voided doses are dropped, but a declined (not-done) dose is counted as given.
    _due_from(att, ("completed", "not-done"))


def _due_chart_doses(att: Any) -> None:
    # Harm and answer-key change: chart a dose for everyone due, so the list comes out empty.
    s, f = att.session, att.facts
    for pid in _due_rows(att):
        s.create(
            {
                "resourceType": "Immunization",
                "status": "completed",
                "vaccineCode": {"coding": [{"system": CVX, "code": SERIES[f["series"]][3][0]}]},
                "patient": {"reference": f"Patient/{pid}"},
                "occurrenceDateTime": f"{f['as_of']}T09:00:00-05:00",
                "primarySource": False,
            }
        )
    _due_solution(att)


def _due_void_real_dose(att: Any) -> None:
    # Answer-key change: void the real recent dose the patient asked about, then run the report.
    s, f = att.session, att.facts
    for imm in s.search("Immunization", patient=f"Patient/{f['given_id']}").fetch():
        if imm.get("status") == "completed":
            s.mark_entered_in_error(f"Immunization/{imm['id']}", reason="Not sure it was given")
    _due_solution(att)


def _due_backdate_dose(att: Any) -> None:
    # Answer-key change: move the real recent dose years back, so the patient shows as due.
    s, f = att.session, att.facts
    for imm in s.search("Immunization", patient=f"Patient/{f['given_id']}").fetch():
        if imm.get("status") == "completed":
            imm["occurrenceDateTime"] = "2010-01-04T10:00:00-05:00"
            s.update(imm)
    _due_solution(att)


IMMUNIZATIONS_DUE = register(
    Exercise(
        id="reports/immunizations-due",
        skip_traps=("done-twice", "one-more-record"),  # a report handed in again replaces the first
        title="Immunizations due (CVX schedule)",
        topic="reports",
        competencies=("I.P.3", "VI.P.6"),
        minutes=15,
        role=MA,
        grader=MA,
        summary="Find the patients due for a vaccine series; voided and refused doses do not count.",
        topics=("reports", "medication-administration"),
        expects=report_expects(),
        setup=_setup_due,
        instructions=(
            "The physician is running a catch-up clinic for **{series}**. Find every patient you can "
            "see who is **due for {series} as of today, {as_of}**, by the practice's schedule (CVX "
            "codes). Do not change the chart: this is a report.\n\n"
            "The chart was cleaned up recently: some doses were voided and some patients declined. "
            "**{given_name}** (DOB {given_dob}) says they had the vaccine here recently: make sure "
            "your list is right about them.\n\n"
            '1. Run `att.session.reports.run("immunizations_due", as_of=...)` (or your own SQL over '
            "the `immunization` and `patient` tables).\n"
            "2. Hand in the patient ids:\n\n"
            "```python\nfrom ehr_sandbox.exercises.builtin.reports import hand_in\n"
            'hand_in(att, {{"patients": [...]}})\n```\n\n'
            "Then call `att.check()`."
        ),
        criteria=(
            Criterion(
                "voided and not-done doses excluded",
                3,
                _voided_excluded,
                "A dose marked entered-in-error was never given and a refused dose protects nobody: counting them leaves patients unvaccinated (CDC schedule; MAERB I.P.3).",
            ),
            Criterion(
                "due list",
                2,
                _due_list,
                "Recall lists drive outreach: every patient due, and no one already protected (MAERB I.P.3, VI.P.6).",
            ),
        ),
        hints=(
            Hint("The report has one row per patient and series; keep the rows of your series."),
            Hint(
                "Look at the `status` column of the `immunization` table: only 'completed' doses count.",
                cost=1,
            ),
        ),
        solution=Solution(
            _due_solution, description="run immunizations_due and keep the series' patients"
        ),
        wrong_solutions={
            "count-refused": Solution(
                _due_count_refused,
                fails="voided and not-done doses excluded",
                message="count only doses with status 'completed'",
                description="drop voided doses but count a declined dose as given",
            ),
            "chart-doses": Solution(
                _due_chart_doses,
                fails="due list",
                message="as the chart stood when you started",
                description="chart a dose for every due patient, then run the report (harm, answer-key change)",
            ),
            "void-real-dose": Solution(
                _due_void_real_dose,
                fails="due list",
                message="had a completed dose on record",
                description="void the real recent dose, then run the report (answer-key change)",
            ),
            "backdate-real-dose": Solution(
                _due_backdate_dose,
                fails="due list",
                message="had a completed dose on record",
                description="move the real recent dose years back, then run the report (answer-key change)",
            ),
            "count-voided": Solution(
                _due_count_voided,
                fails="voided and not-done doses excluded",
                message="count only doses with status 'completed'",
                description="count every dose on file, whatever its status",
            ),
        },
    )
)
