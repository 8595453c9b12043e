"""Catalogue item 8 of EXERCISES.md: Immunizations due.

Defines and registers ``reports/immunizations-due`` (section "Running reports").
The package ``__init__`` imports the exercise modules in catalogue order; helpers shared
within the section are in ``common``.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from datetime import date, timedelta
from typing import Any

from ehr_sandbox.errors import ExerciseError
from ehr_sandbox.exercises.builtin.common import (
    patient_facts,
    patient_label,
    ref_id,
    visible_patients,
)
from ehr_sandbox.exercises.builtin.reports.common import (
    CVX,
    MA,
    _age_years,
    _alive,
    _answer_of,
    _local_instant,
    _nothing,
    _practice_offset,
    _set_diff,
    _template,
    hand_in,
)
from ehr_sandbox.exercises.grading import GradingContext
from ehr_sandbox.exercises.model import Check, Criterion, Exercise, Hint, Solution
from ehr_sandbox.exercises.registry import register

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
        if len(birth) != 10 or birth > as_of or not _alive(p):
            continue
        if _age_years(birth, as_of) < min_age:
            continue
        seen = last.get(p["id"])
        if (
            seen is None
            or (date.fromisoformat(as_of) - date.fromisoformat(seen)).days > repeat_days
        ):
            due.add(p["id"])
    return due


def _setup_due(sandbox: Any, variant: Any) -> dict[str, Any]:
    rng = variant.rng()
    series = variant.pick(sorted(SERIES), salt="series")
    _, min_age, _, (code, display) = SERIES[series]
    today = sandbox.reference_date
    as_of = today.isoformat()
    ma = sandbox.login(MA)
    patients = visible_patients(sandbox, MA, minimum=3)
    doses = list(ma.resources("Immunization"))
    due_now = _due_patients(patients, doses, series, as_of)
    candidates = [
        p
        for p in patients
        if p["id"] in due_now and _age_years(p["birthDate"], as_of) >= min_age + 1
    ]
    if len(candidates) < 3:
        raise ExerciseError(
            f"setup: needs 3 patients due for {series} that {MA} can see (found {len(candidates)}); generate a larger sandbox"
        )
    voided, refused, given = rng.sample(candidates, 3)
    template = _template(sandbox, "Immunization", MA)
    offset = _practice_offset(sandbox)
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
        imm["occurrenceDateTime"] = _local_instant(
            day, rng.randint(9, 15), rng.choice([0, 20, 40]), offset
        )
        imm["expirationDate"] = (day + timedelta(days=180)).isoformat()
        if status == "not-done":
            imm["statusReason"] = {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/v3-ActReason",
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
    return {
        "series": series,
        "as_of": as_of,
        **patient_facts(voided, "voided"),
        **patient_facts(refused, "refused"),
        **patient_facts(given, "given"),
        "voided_dose": voided_dose,
        "refused_dose": refused_dose,
        "given_dose": given_dose,
    }


def _due_expected(ctx: GradingContext) -> set[str]:
    f = ctx.facts
    return _due_patients(ctx.all("Patient"), ctx.all("Immunization"), f["series"], f["as_of"])


def _voided_excluded(ctx: GradingContext) -> Check:
    f = ctx.facts
    expected = (
        f"{f['voided_name']} and {f['refused_name']} listed as due (their only {f['series']} doses are "
        "entered-in-error and not-done)"
    )
    answer = _answer_of(ctx, "reports/immunizations-due")
    if answer is None:
        return _nothing(expected)
    found = set(answer["patients"])
    left_out = [
        f"{f[k + '_name']} (Immunization/{f[dose]} is {status})"
        for k, dose, status in (
            ("voided", "voided_dose", "entered-in-error"),
            ("refused", "refused_dose", "not-done"),
        )
        if f[k + "_id"] not in found
    ]
    if left_out:
        return Check(False, "left out as not due: " + "; ".join(left_out), expected, DOSE_ADVICE)
    return Check(True, f"{f['voided_name']} and {f['refused_name']} listed as due", expected)


def _due_list(ctx: GradingContext) -> Check:
    f = ctx.facts
    due = _due_expected(ctx)
    names = {p["id"]: patient_label(p) for p in ctx.all("Patient")}
    expected = f"the {len(due)} patients due for {f['series']} on {f['as_of']}"
    answer = _answer_of(ctx, "reports/immunizations-due")
    if answer is None:
        return _nothing(expected)
    found = set(answer["patients"])
    if found == due:
        return Check(True, f"the {len(found)} patients due", expected)
    advice = (
        f"{f['given_name']} had a completed dose on record: not due"
        if f["given_id"] in found
        else "use the immunizations due report for the series and the day"
    )
    return Check(
        False,
        _set_diff(found, due, "patients", lambda i: f"{names.get(i, '?')} (Patient/{i})"),
        expected,
        advice,
    )


def _due_solution(att: Any) -> None:
    f = att.facts
    rows = att.session.reports.run("immunizations_due", as_of=f["as_of"]).to_pylist()
    hand_in(att, {"patients": [r["patient"] for r in rows if r["series"] == f["series"]]})


def _due_count_voided(att: Any) -> None:
    f, s = att.facts, att.session
    # Any dose on file counts, whatever its status: the typical mistake.
    doses = s.reports.sql("SELECT patient, status, cvx, occurrence FROM immunization").to_pylist()
    fake = [
        {
            "patient": {"reference": f"Patient/{d['patient']}"},
            "status": "completed",
            "vaccineCode": {"coding": [{"system": CVX, "code": d["cvx"]}]},
            "occurrenceDateTime": d["occurrence"],
        }
        for d in doses
    ]
    patients = list(s.resources("Patient"))
    hand_in(
        att,
        {"patients": sorted(_due_patients(patients, fake, f["series"], f["as_of"], statuses=None))},
    )


IMMUNIZATIONS_DUE = register(
    Exercise(
        id="reports/immunizations-due",
        title="Immunizations due (CVX schedule)",
        topic="reports",
        competencies=("I.P.3", "VI.P.6"),
        minutes=15,
        role=MA,
        grader=MA,
        summary="Find the patients due for a vaccine series; voided and refused doses do not count.",
        setup=_setup_due,
        instructions=(
            "The physician wants to run a **{series}** catch-up this week. Find every patient you can "
            "see who is **due for {series} on {as_of}** by the practice's schedule (CVX codes).\n\n"
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
            "count-voided": Solution(
                _due_count_voided,
                fails="voided and not-done doses excluded",
                message="count only doses with status 'completed'",
                description="count every dose on file, whatever its status",
            ),
        },
    )
)
