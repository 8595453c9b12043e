"""Exercises 7-12 (running reports) on real generated sandboxes.

For two students each: handing in nothing fails, the reference solution scores full marks,
every wrong solution fails the criterion it is meant to fail with the intended message, and
the two students get different variants. Further tests check that each planted trap is
really in the data (so the wrong solutions fail for the intended reason), that both variants
of the measure and immunization exercises grade right, and that bad hand-ins are refused
without storing anything.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from exercise_checks import AttemptCache, check_reference_and_wrong_solutions

import ehr_sandbox.exercises.builtin.reports as rx
from ehr_sandbox import exercises
from ehr_sandbox.errors import ExerciseError
from ehr_sandbox.exercises.variants import DEFAULT_SALT, Variant

STUDENTS = ("alice", "bob")
REPORT_IDS = [
    "reports/day-schedule",
    "reports/immunizations-due",
    "reports/billing-totals",
    "reports/quality-measure",
    "reports/access-report",
    "reports/vitals-view",
]

_attempt = AttemptCache()


def _student_with(exercise_id: str, salt: str, options: list[str], wanted: str) -> str:
    """The first student name whose variant picks ``wanted`` (as the setup picks it)."""
    for i in range(60):
        student = f"student{i}"
        if Variant.of(DEFAULT_SALT, student, exercise_id).pick(options, salt=salt) == wanted:
            return student
    raise AssertionError(f"no student gets {wanted} in 60 tries")


def test_the_six_report_exercises_are_catalogued():
    ids = [row["id"] for row in exercises.catalog(topic="reports")]
    assert ids == REPORT_IDS
    for ex_id in ids:
        ex = exercises.get(ex_id)
        assert ex.wrong_solutions and ex.hints and ex.competencies and ex.minutes > 0
        assert "hand_in(att" in ex.instructions


@pytest.mark.parametrize("student", STUDENTS)
@pytest.mark.parametrize("exercise_id", REPORT_IDS)
def test_reference_and_wrong_solutions(exercise_id: str, student: str):
    check_reference_and_wrong_solutions(_attempt(exercise_id, student))


@pytest.mark.parametrize("exercise_id", REPORT_IDS)
def test_two_students_get_different_variants(exercise_id: str):
    a, b = _attempt(exercise_id, "alice"), _attempt(exercise_id, "bob")
    assert a.facts != b.facts
    assert a.instructions != b.instructions


def test_reset_forgets_the_answer():
    att = _attempt("reports/billing-totals", "alice")
    att.reset()
    att.exercise.solution.apply(att)
    assert rx.handed_in(att.sandbox, att.exercise.id, "alice") is not None
    att.reset()
    assert rx.handed_in(att.sandbox, att.exercise.id, "alice") is None
    assert "nothing handed in" in att.check().criterion("day sheet totals").feedback


@pytest.mark.parametrize(
    ("exercise_id", "answer", "field"),
    [
        ("reports/day-schedule", {"appointments": ["a1"]}, "no_shows"),
        ("reports/day-schedule", {"appointments": "a1", "no_shows": []}, "appointments"),
        ("reports/immunizations-due", ["p1"], "expected a dict"),
        (
            "reports/billing-totals",
            {
                "day_sheet": {"charges": 1, "payments": 2, "adjustments": "x"},
                "ledger_balance": 0,
                "ar_aging": {},
            },
            "day_sheet.adjustments",
        ),
        (
            "reports/billing-totals",
            {
                "day_sheet": {"charges": 1, "payments": 2, "adjustments": 3},
                "ledger_balance": 0,
                "ar_aging": {"0-45": 1},
            },
            "ar_aging bucket",
        ),
        ("reports/quality-measure", {"denominator": [1], "numerator": []}, "denominator"),
        ("reports/access-report", {"recorded": "x"}, "access report"),
        ("reports/vitals-view", "SELECT 1", "ViewDefinition"),
    ],
)
def test_bad_hand_ins_are_refused_and_store_nothing(exercise_id: str, answer, field: str):
    att = _attempt(exercise_id, "alice")
    att.reset()
    with pytest.raises(ExerciseError, match=field):
        rx.hand_in(att, answer)
    assert rx.handed_in(att.sandbox, exercise_id, "alice") is None


def test_money_is_exact_to_the_cent():
    assert rx.money(Decimal("10.005")) == "10.01"
    assert rx.money("$1,234.5") == "1234.50"
    assert rx.money(0.1 + 0.2) == "0.30"
    with pytest.raises(ExerciseError, match="finite"):
        rx.money("NaN")


# --- the planted traps are really there ---------------------------------------------------
def test_schedule_trap_crosses_midnight_utc():
    att = _attempt("reports/day-schedule", "alice")
    att.reset()
    f = att.facts
    system = att.sandbox.system_session()
    late = system.read("Appointment", f["late_visit"])
    other = system.read("Appointment", f["other_day_visit"])
    for apt, local_is_today in ((late, True), (other, False)):
        start = datetime.fromisoformat(apt["start"])
        utc_day = start.astimezone(UTC).date().isoformat()
        assert (apt["start"][:10] == f["date"]) is local_is_today
        assert (utc_day == f["date"]) is not local_is_today
    rows = att.session.reports.run("day_schedule", date=f["date"]).to_pylist()
    listed = {r["appointment"] for r in rows}
    assert late["id"] in listed and other["id"] not in listed
    assert any(r["status"] == "cancelled" for r in rows)


def test_immunization_trap_voided_and_refused_doses():
    att = _attempt("reports/immunizations-due", "bob")
    att.reset()
    f = att.facts
    system = att.sandbox.system_session()
    assert system.read("Immunization", f["voided_dose"])["status"] == "entered-in-error"
    assert system.read("Immunization", f["refused_dose"])["status"] == "not-done"
    assert system.read("Immunization", f["given_dose"])["status"] == "completed"
    rows = att.session.reports.run("immunizations_due", as_of=f["as_of"]).to_pylist()
    due = {r["patient"] for r in rows if r["series"] == f["series"]}
    assert {f["voided_id"], f["refused_id"]} <= due and f["given_id"] not in due


@pytest.mark.parametrize("series", sorted(rx.SERIES))
def test_both_immunization_series_grade(series: str):
    ex_id = "reports/immunizations-due"
    student = _student_with(ex_id, "series", sorted(rx.SERIES), series)
    att = exercises.start(ex_id, student)
    assert att.facts["series"] == series and series in att.instructions
    check_reference_and_wrong_solutions(att)


def test_billing_day_has_adjustments_so_the_mistake_shows():
    att = _attempt("reports/billing-totals", "alice")
    att.reset()
    rows = att.session.reports.run("day_sheet", date=att.facts["day"]).to_pylist()
    assert sum(r["adjustments"] for r in rows) > 0
    ledger = att.session.reports.run("patient_ledger", patient=att.facts["ledger_id"]).to_pylist()
    assert ledger, "the ledger patient has transactions"


@pytest.mark.parametrize("measure", sorted(rx.MEASURES))
def test_both_quality_measures_grade_and_the_trap_flips_the_planted_patient(measure: str):
    ex_id = "reports/quality-measure"
    student = _student_with(ex_id, "measure", sorted(rx.MEASURES), measure)
    att = exercises.start(ex_id, student)
    f = att.facts
    assert f["measure"] == measure
    rows = att.session.reports.run(
        f["report"], period_start=f["period_start"], period_end=f["period_end"]
    ).to_pylist()
    planted = [r for r in rows if r["patient"] == f["planted_id"]]
    assert planted, "the planted patient is in the denominator"
    inside, after = f["inside_value"], f["after_value"]
    if measure == "bp":
        assert inside[0] >= 140 and after[0] < 140 and after[1] < 90
        assert planted[0]["controlled"] is False
    else:
        assert inside > 9 >= after
        assert planted[0]["poor_control"] is True
    check_reference_and_wrong_solutions(att)


def test_access_report_lists_the_planted_look_ups():
    att = _attempt("reports/access-report", "alice")
    att.reset()
    pid = att.facts["patient_id"]
    rows = att.session.reports.run("access_report", patient=pid).to_pylist()
    users = {r["username"] for r in rows}
    assert len(users & set(rx.ACCESSORS)) == 3
    events = att.sandbox.audit.events(patient=pid)
    assert len(rows) >= sum(1 for e in events if int(e["id"]) <= att.facts["last_event"])


def test_access_report_missing_rows_fail():
    att = _attempt("reports/access-report", "bob")
    att.reset()
    rows = att.session.reports.run("access_report", patient=att.facts["patient_id"]).to_pylist()
    rx.hand_in(att, rows[1:])
    result = att.check()
    assert not result.criterion("every access listed").passed
    assert result.criterion("minimum necessary").passed


def test_vitals_view_reference_rows_include_both_bp_components():
    att = _attempt("reports/vitals-view", "bob")
    att.reset()
    f = att.facts
    rows = att.session.run_view(rx.reference_vitals_view(f["patient_id"]))
    bp = {(r["code"], r["value"]) for r in rows if r["id"] == f["bp_id"]}
    assert bp == {("8480-6", f["systolic"]), ("8462-4", f["diastolic"])}
    assert all(r["id"] != f["voided_id"] for r in rows)
    # An invalid view is graded, not crashed on.
    rx.hand_in(att, {"resourceType": "ViewDefinition", "resource": "Observation", "select": "x"})
    result = att.check()
    assert not result.criterion("view runs").passed


def test_file_backed_attempt_keeps_the_answer_and_resets(tmp_path):
    path = tmp_path / "carol.db"
    att = exercises.start("reports/day-schedule", "carol", path=path)
    att.exercise.solution.apply(att)
    att.sandbox.close()
    again = exercises.open_attempt(path)
    try:
        assert again.check().passed, "the hand-in is kept in the sandbox file"
        again.reset()  # regenerates the variant: setup must be deterministic
        assert rx.handed_in(again.sandbox, "reports/day-schedule", "carol") is None
        assert not again.check().passed
    finally:
        again.sandbox.close()
