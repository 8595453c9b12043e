"""Catalogue item 12 of EXERCISES.md: Write a ViewDefinition: vitals flowsheet.

Defines and registers ``reports/vitals-view`` (section "Running reports").
The package ``__init__`` imports the exercise modules in catalogue order; helpers shared
within the section are in ``common``.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from ehr_sandbox.errors import ExerciseError, SandboxError, ViewDefinitionError
from ehr_sandbox.exercises.builtin.common import (
    DIASTOLIC,
    SYSTOLIC,
    blood_pressure,
    patient_facts,
    ref_id,
    sandbox_now,
    visible_patients,
)
from ehr_sandbox.exercises.builtin.reports.common import (
    HAND_IN,
    MA,
    age_in_years,
    answer_of,
    hand_in,
    practice_offset,
    report_expects,
    tz_of,
)
from ehr_sandbox.exercises.grading import GradingContext, codes
from ehr_sandbox.exercises.model import Check, Criterion, Exercise, Hint, Scenario, Solution
from ehr_sandbox.exercises.registry import register
from synthetic.systems import LOINC, OBSERVATION_CATEGORY, UCUM

# ------------------------------------------------------------------------------------------
# 12. Write a ViewDefinition: vitals flowsheet
# ------------------------------------------------------------------------------------------
VIEW_COLUMNS = ("id", "effective", "code", "value", "unit")
VITALS_WHERE = "category.coding.where(code = 'vital-signs').exists()"


def _value_columns(prefix: str = "") -> list[dict[str, str]]:
    return [
        {
            "name": "code",
            "path": "code.coding.where(system = 'http://loinc.org').code.first()",
            "type": "code",
        },
        {"name": "value", "path": "value.ofType(Quantity).value", "type": "decimal"},
        {"name": "unit", "path": "value.ofType(Quantity).code", "type": "code"},
    ]


def _reference_view(patient_id: str) -> dict[str, Any]:
    """The reference vitals flowsheet ViewDefinition for one patient (tests and instructors).

    One row per measured value: each vital-sign Observation's own Quantity, and one row per
    component for panels (blood pressure), leaving out entered-in-error observations.

    >>> v = _reference_view("p1")
    >>> [c["name"] for s in v["select"] for c in s.get("column", [])]
    ['id', 'effective']
    >>> v["where"][0]["path"]
    "subject.reference = 'Patient/p1'"
    """
    return {
        "resourceType": "ViewDefinition",
        "name": "vitals_flowsheet",
        "status": "active",
        "resource": "Observation",
        "where": [
            {"path": f"subject.reference = 'Patient/{patient_id}'"},
            {"path": VITALS_WHERE},
            {"path": "status != 'entered-in-error'"},
        ],
        "select": [
            {
                "column": [
                    {"name": "id", "path": "getResourceKey()", "type": "id"},
                    {"name": "effective", "path": "effective.ofType(dateTime)", "type": "dateTime"},
                ]
            },
            {
                "unionAll": [
                    {
                        "forEach": "where(value.ofType(Quantity).exists())",
                        "column": _value_columns(),
                    },
                    {"forEach": "component", "column": _value_columns()},
                ]
            },
        ],
    }


def _setup_view(sandbox: Any, variant: Any) -> Scenario:
    rng = variant.rng()
    ma = sandbox.login(MA)
    with_vitals = {
        ref_id(o.get("subject"))
        for o in ma.resources("Observation")
        if "vital-signs" in codes(o.get("category"))
    }
    patients = [p for p in visible_patients(sandbox, MA) if p["id"] in with_vitals]
    if not patients:
        raise ExerciseError(
            f"setup: no patient with vital signs that {MA} can see; generate a larger sandbox"
        )
    today = sandbox.reference_date.isoformat()
    # Adult values are planted (an adult weight, a routine BP), so prefer adult patients.
    adults = [p for p in patients if age_in_years(str(p.get("birthDate") or today), today) >= 18]
    patient = variant.pick(adults or patients, salt="patient")
    pid = patient["id"]
    offset = practice_offset(sandbox)
    taken = sandbox_now(sandbox).astimezone(tz_of(offset)).replace(microsecond=0) - timedelta(
        minutes=rng.randint(10, 50)
    )
    systolic, diastolic = rng.randint(108, 162), rng.randint(62, 98)
    bp = ma.create(blood_pressure(f"Patient/{pid}", systolic, diastolic, taken.isoformat()))
    weight = round(rng.uniform(52, 110), 1)
    wrong = ma.create(_vital(pid, "29463-7", "Body weight", weight, "kg", taken))
    ma.mark_entered_in_error(
        f"Observation/{wrong['id']}", reason="Weight keyed in pounds as kilograms"
    )
    # A pulse keyed wrong and corrected: still a valid value (status 'corrected').
    pulse = ma.create(_vital(pid, "8867-4", "Heart rate", rng.randint(88, 99), "/min", taken))
    pulse["valueQuantity"]["value"] = rng.randint(62, 84)
    pulse = ma.correct(pulse, reason="Pulse counted over 15 s and not multiplied; recounted")
    rows = ma.run_view(_reference_view(pid))
    return Scenario(
        facts={
            **patient_facts(patient, "patient"),
            "columns": ", ".join(f"`{c}`" for c in VIEW_COLUMNS),
        },
        answer={
            "rows": sorted((list(k) for k in _view_rows(rows).elements()), key=str),
            "bp_id": bp["id"],
            "systolic": systolic,
            "diastolic": diastolic,
            "voided_id": wrong["id"],
            "corrected_id": pulse["id"],
        },
        protect=tuple(
            sorted(
                f"Observation/{o['id']}"
                for o in ma.search("Observation", patient=f"Patient/{pid}").fetch()
            )
        ),
    )


def _vital(
    pid: str, code: str, display: str, value: float, unit: str, when: datetime
) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": OBSERVATION_CATEGORY,
                        "code": "vital-signs",
                    }
                ]
            }
        ],
        "code": {"coding": [{"system": LOINC, "code": code, "display": display}]},
        "subject": {"reference": f"Patient/{pid}"},
        "effectiveDateTime": when.isoformat(),
        "valueQuantity": {
            "value": value,
            "unit": unit,
            "system": UCUM,
            "code": unit,
        },
    }


def _norm_value(v: Any) -> str | None:
    if v is None:
        return None
    try:
        return str(Decimal(str(v)).normalize())
    except InvalidOperation:
        return str(v)


def _view_rows(rows: Iterable[Mapping[str, Any]]) -> Counter[tuple[Any, ...]]:
    return Counter(
        (
            str(r.get("id")),
            str(r.get("effective")),
            str(r.get("code")),
            _norm_value(r.get("value")),
            str(r.get("unit")),
        )
        for r in rows
    )


def _run_student_view(ctx: GradingContext) -> tuple[list[dict[str, Any]] | None, str]:
    """(rows, '') when the handed-in view runs and has the flowsheet columns, else (None, why).

    Run once per grading (three criteria look at the same rows)."""
    if "view" not in ctx.extra:
        ctx.extra["view"] = _run_view_once(ctx)
    return ctx.extra["view"]


def _run_view_once(ctx: GradingContext) -> tuple[list[dict[str, Any]] | None, str]:
    view = answer_of(ctx, "reports/vitals-view")
    if view is None:
        return None, "nothing handed in"
    if view.get("resource") != "Observation":
        return None, f"a view over {view.get('resource')!r}"
    try:
        rows = ctx.session.run_view(view)
    except (ViewDefinitionError, SandboxError) as exc:
        return None, f"the view does not run: {exc}"
    columns = set(rows[0]) if rows else set()
    missing = [c for c in VIEW_COLUMNS if c not in columns]
    if rows and missing:
        return None, f"no column {', '.join(missing)}"
    return rows, ""


def _view_runs(ctx: GradingContext) -> Check:
    expected = f"an Observation ViewDefinition that runs, with columns {', '.join(VIEW_COLUMNS)}"
    rows, why = _run_student_view(ctx)
    if rows is None:
        return Check(
            False,
            why,
            expected,
            HAND_IN if why == "nothing handed in" else "check the view's JSON and FHIRPath",
        )
    return Check(True, f"a view giving {len(rows)} rows", expected)


def _bp_components(ctx: GradingContext) -> Check:
    f = ctx.answer
    expected = "a systolic and a diastolic row for each blood pressure reading"
    rows, why = _run_student_view(ctx)
    if rows is None:
        return Check(False, why, expected)
    mine = {
        (str(r.get("code")), _norm_value(r.get("value")))
        for r in rows
        if str(r.get("id")) == f["bp_id"]
    }
    want = {(SYSTOLIC, _norm_value(f["systolic"])), (DIASTOLIC, _norm_value(f["diastolic"]))}
    if want <= mine:
        return Check(True, "systolic and diastolic rows for today's reading", expected)
    return Check(
        False,
        f"rows for today's blood pressure: {sorted(mine, key=str) or 'none'}",
        expected,
        "a blood pressure panel has no value of its own: systolic and diastolic are in Observation.component (forEach: component)",
    )


def _rows_match(ctx: GradingContext) -> Check:
    f, a = ctx.facts, ctx.answer
    want = Counter(tuple(r) for r in a["rows"])
    expected = (
        f"the flowsheet rows of {f['patient_name']}'s vital signs as charted when you started"
    )
    rows, why = _run_student_view(ctx)
    if rows is None:
        return Check(False, why, expected)
    got = _view_rows(rows)
    if got == want:
        return Check(True, f"the same {sum(got.values())} rows", expected)
    extra, missing = got - want, want - got
    ids_extra = {k[0] for k in extra}
    ids_missing = {k[0] for k in missing}
    others = {
        ref_id(o.get("subject"))
        for o in ctx.all("Observation")
        if o["id"] in ids_extra and ref_id(o.get("subject")) != f["patient_id"]
    }
    if others:
        advice = f"other patients' rows are in the view: filter on subject.reference = 'Patient/{f['patient_id']}'"
    elif a["voided_id"] in ids_extra:
        advice = "leave out entered-in-error observations (where: status != 'entered-in-error')"
    elif a["corrected_id"] in ids_missing:
        advice = "a corrected (or amended) value is still a valid value: leave out only entered-in-error observations"
    elif missing and all(k[3] is not None for k in missing) and any(k[3] is None for k in extra):
        advice = "values are empty: the path to a Quantity's value is value.ofType(Quantity).value"
    else:
        advice = "one row per value and per component of the vitals as charted when you started; charting or voiding to fit changes the answer"
    found = f"{sum(got.values())} rows; {sum(missing.values())} missing, {sum(extra.values())} not expected"
    return Check(False, found, expected, advice)


def _probe_chart(ctx: GradingContext) -> list[dict[str, Any]]:
    """The patient's observations as charted now, plus new entries charted a day after them
    under new ids: a value charted again, an amended value, a reading voided, another patient's
    reading and a non-vital result. A flowsheet view must select these by what they are, so it
    gives the reference view's rows on them too (a view that picks today's ids does not)."""
    import copy

    pid = ctx.facts["patient_id"]
    mine = sorted(
        (o for o in ctx.all("Observation") if ref_id(o.get("subject")) == pid),
        key=lambda o: o["id"],
    )
    vitals = [o for o in mine if "vital-signs" in codes(o.get("category"))]
    out = list(mine)
    for n, (status, patient, vital) in enumerate(
        (
            ("final", pid, True),
            ("amended", pid, True),
            ("entered-in-error", pid, True),
            ("final", f"{pid}-other", True),
            ("final", pid, False),
        )
    ):
        for m, src in enumerate(vitals):
            new = copy.deepcopy(src)
            new["id"] = f"probe-{n}-{m}"
            new["status"] = status
            new["subject"] = {"reference": f"Patient/{patient}"}
            when = new.get("effectiveDateTime")
            if isinstance(when, str) and "T" in when:  # charted later: a day after the original
                with contextlib.suppress(ValueError):
                    later = datetime.fromisoformat(when.replace("Z", "+00:00")) + timedelta(days=1)
                    new["effectiveDateTime"] = later.isoformat()
            if not vital:
                new["category"] = [{"coding": [{"code": "laboratory"}]}]
            out.append(new)
    return out


def _view_general(ctx: GradingContext) -> Check:
    from ehr_sandbox.views import run

    expected = (
        "a view that selects by patient, category and status, so that it gives the flowsheet "
        "right on entries charted after today too"
    )
    rows, why = _run_student_view(ctx)
    if rows is None:
        return Check(False, why, expected)
    view = answer_of(ctx, "reports/vitals-view") or {}
    probe = _probe_chart(ctx)
    try:
        got = _view_rows(run(view, probe))
    except (ViewDefinitionError, SandboxError) as exc:
        return Check(False, f"the view does not run on new entries: {exc}", expected)
    want = _view_rows(run(_reference_view(ctx.facts["patient_id"]), probe))
    if got == want:
        return Check(True, "the same rows as the reference on new entries", expected)
    extra, missing = got - want, want - got
    return Check(
        False,
        f"on new entries charted after today: {sum(missing.values())} rows missing, "
        f"{sum(extra.values())} not expected",
        expected,
        "select rows by what they are (this patient, vital signs, not entered-in-error), never "
        "by the ids charted today or by today's date: the flowsheet is rerun as new entries are "
        "charted and voided",
    )


def _view_solution(att: Any) -> None:
    hand_in(att, _reference_view(att.facts["patient_id"]))


def _view_without_components(att: Any) -> None:
    view = _reference_view(att.facts["patient_id"])
    view["select"][1] = {"column": _value_columns()}
    hand_in(att, view)


def _view_all_patients(att: Any) -> None:
    view = _reference_view(att.facts["patient_id"])
    view["where"] = view["where"][1:]
    hand_in(att, view)


def _view_final_only(att: Any) -> None:
    view = _reference_view(att.facts["patient_id"])
    view["where"][2] = {"path": "status = 'final'"}
    hand_in(att, view)


def _view_void_to_fit(att: Any) -> None:
    # Answer-key change: void the corrected pulse so a 'final'-only view seems right.
    s, pid = att.session, att.facts["patient_id"]
    for o in s.search("Observation", patient=f"Patient/{pid}").fetch():
        if o.get("status") == "corrected":
            s.mark_entered_in_error(f"Observation/{o['id']}", reason="Not sure of the value")
    _view_final_only(att)


def _view_chart_extra(att: Any) -> None:
    # Harm and answer-key change: chart a made-up vital sign to try the view on.
    s, pid = att.session, att.facts["patient_id"]
    when = datetime.fromisoformat(f"{s.reference_date.isoformat()}T08:00:00-05:00")
    s.create(_vital(pid, "8310-5", "Body temperature", 37.0, "Cel", when))
    _view_solution(att)


def _view_by_ids(att: Any, *, void_only: bool) -> None:
    """Hard-coded to today's chart: the voided entry left out by its id (``void_only``), or
    the rows picked by the ids of today's valid entries."""
    s, pid = att.session, att.facts["patient_id"]
    mine = s.search("Observation", patient=f"Patient/{pid}").fetch()
    view = _reference_view(pid)
    if void_only:
        voided = [o["id"] for o in mine if o.get("status") == "entered-in-error"]
        view["where"][2] = {"path": " and ".join(f"getResourceKey() != '{i}'" for i in voided)}
    else:
        valid = [o["id"] for o in mine if o.get("status") != "entered-in-error"]
        keys = " or ".join(f"getResourceKey() = '{i}'" for i in valid)
        view["where"] = [{"path": keys}, view["where"][1]]
    hand_in(att, view)


def _view_dated_to_today(att: Any) -> None:
    """Fitted to today's chart by date: only vitals taken up to the end of today."""
    view = _reference_view(att.facts["patient_id"])
    today = att.session.now().date().isoformat()
    view["where"].append({"path": f"effective.ofType(dateTime) < @{today}T23:59:59Z"})
    hand_in(att, view)


def _view_voided_kept(att: Any) -> None:
    view = _reference_view(att.facts["patient_id"])
    view["where"] = view["where"][:2]
    hand_in(att, view)


VITALS_VIEW = register(
    Exercise(
        id="reports/vitals-view",
        skip_traps=("done-twice", "one-more-record"),  # a report handed in again replaces the first
        title="Write a ViewDefinition: vitals flowsheet",
        topic="reports",
        competencies=("II.P.3", "I.P.1", "VI.P.6"),
        minutes=30,
        role=MA,
        grader=MA,
        summary="Write a SQL on FHIR ViewDefinition giving one patient's vital signs as flowsheet rows.",
        topics=("reports", "vital-signs"),
        expects=report_expects(),
        setup=_setup_view,
        instructions=(
            "Write a **SQL on FHIR ViewDefinition** (a dict) over `Observation` that gives the vital "
            "signs flowsheet of **{patient_name}** (MRN {patient_mrn}, `Patient/{patient_id}`).\n\n"
            "- Columns {columns}: the observation id (`getResourceKey()`), its effective date-time, the "
            "LOINC code, the number and its UCUM unit code.\n"
            "- One row per measured value: an observation's own quantity, and one row per component "
            "of a panel (a blood pressure gives a systolic and a diastolic row).\n"
            "- Only this patient's vital-signs observations, leaving out entries marked entered-in-error.\n\n"
            "Try it with `att.session.run_view(view)`, then hand it in:\n\n"
            "```python\nfrom ehr_sandbox.exercises.builtin.reports import hand_in\nhand_in(att, view)\n```\n\n"
            "Then call `att.check()`."
        ),
        criteria=(
            Criterion(
                "view runs",
                1,
                _view_runs,
                "A ViewDefinition is shared and rerun by others: it must be valid and name its columns (HL7 SQL on FHIR v2).",
            ),
            Criterion(
                "blood pressure components",
                2,
                _bp_components,
                "A flowsheet that drops the blood pressure hides the most-watched vital sign (MAERB I.P.1, II.P.3).",
            ),
            Criterion(
                "rows match the reference",
                3,
                _rows_match,
                "A flowsheet shows exactly one patient's valid measurements: another patient's or a voided value on it is a charting error waiting to happen (MAERB II.P.3, X.P.3).",
            ),
            Criterion(
                "view works on new entries",
                2,
                _view_general,
                "A view is a standing query, rerun as the chart changes: one fitted to today's ids shows tomorrow's voided value and misses tomorrow's reading (HL7 SQL on FHIR v2).",
            ),
        ),
        hints=(
            Hint(
                "Start from `where`: subject, category 'vital-signs' and status; then `select` the id and effective."
            ),
            Hint(
                'Use `unionAll` of two selects with the same columns: one `forEach: "where(value.ofType(Quantity).exists())"` '
                'and one `forEach: "component"`.',
                cost=1,
            ),
        ),
        solution=Solution(_view_solution, description="the reference ViewDefinition"),
        wrong_solutions={
            "final-only": Solution(
                _view_final_only,
                fails="rows match the reference",
                message="a corrected (or amended) value is still a valid value",
                description="keep only status 'final' (drops a corrected value)",
            ),
            "void-to-fit": Solution(
                _view_void_to_fit,
                fails="rows match the reference",
                message="rows",
                description="void the corrected value so a 'final'-only view matches (answer-key change)",
            ),
            "chart-extra-vital": Solution(
                _view_chart_extra,
                fails="rows match the reference",
                message="charting or voiding to fit changes the answer",
                description="chart a made-up temperature to try the view on (harm, answer-key change)",
            ),
            "no-components": Solution(
                _view_without_components,
                fails="blood pressure components",
                message="Observation.component",
                description="read only the observation's own value",
            ),
            "all-patients": Solution(
                _view_all_patients,
                fails="rows match the reference",
                message="other patients' rows",
                description="forget the patient filter",
            ),
            "voided-left-out-by-id": Solution(
                lambda att: _view_by_ids(att, void_only=True),
                fails="view works on new entries",
                message="never by the ids charted today",
                description="leave out the voided entry by its id instead of by its status",
            ),
            "rows-picked-by-id": Solution(
                lambda att: _view_by_ids(att, void_only=False),
                fails="view works on new entries",
                message="never by the ids charted today",
                description="pick today's valid entries by their ids",
            ),
            "dated-to-today": Solution(
                _view_dated_to_today,
                fails="view works on new entries",
                message="never by the ids charted today",
                description="keep only vitals taken up to today (a date fitted to today's chart)",
            ),
            "voided-kept": Solution(
                _view_voided_kept,
                fails="rows match the reference",
                message="entered-in-error",
                description="keep voided observations",
            ),
        },
    )
)
