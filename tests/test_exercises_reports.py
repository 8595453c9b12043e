"""Exercises 7-12 (running reports): hand-ins, answers fixed at setup, traps in every variant.

The reference and every wrong solution of each exercise run for 8 students (30 with
``EHR_SANDBOX_TRAP_STUDENTS=30``) in ``test_exercise_traps.py``. Here: a hand-in is an audited
action, not writable state; bad hand-ins are refused and leave nothing; each planted trap is
really in the data for several students; feedback never states the expected amounts; no
public function computes a student's answer; the instructions name one date.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest

import ehr_sandbox.exercises.builtin.reports as rx
from ehr_sandbox import exercises
from ehr_sandbox.errors import ExerciseError
from ehr_sandbox.exercises.builtin.reports.common import SUBMIT_KIND
from ehr_sandbox.exercises.grading import event_kind

REPORT_IDS = [
    "reports/day-schedule",
    "reports/immunizations-due",
    "reports/billing-totals",
    "reports/quality-measure",
    "reports/access-report",
    "reports/vitals-view",
]
STUDENTS = [f"student-{i:02d}" for i in range(4)]


def _answer(att: exercises.Attempt) -> dict[str, Any]:
    """The answer fixed at setup (the tests play the instructor)."""
    return att._Attempt__derived.answer  # noqa: SLF001


def test_the_six_report_exercises_are_catalogued():
    ids = [row["id"] for row in exercises.catalog(topic="reports")]
    assert ids[: len(REPORT_IDS)] == REPORT_IDS
    for ex_id in REPORT_IDS:
        ex = exercises.get(ex_id)
        assert len(ex.wrong_solutions) >= 4 and ex.hints and ex.competencies
        assert "hand_in(att" in ex.instructions


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
    att = exercises.start(exercise_id, "alice")
    before = att.sandbox.audit.count()
    with pytest.raises(ExerciseError, match=field):
        rx.hand_in(att, answer)
    assert rx.handed_in(att.sandbox, exercise_id, "alice") is None
    assert att.sandbox.audit.count() == before


def test_money_is_exact_to_the_cent():
    assert rx.money(Decimal("10.005")) == "10.01"
    assert rx.money("$1,234.5") == "1234.50"
    assert rx.money(0.1 + 0.2) == "0.30"
    with pytest.raises(ExerciseError, match="finite"):
        rx.money("NaN")


def test_a_hand_in_is_an_audited_action_that_state_writes_and_other_logins_cannot_fake():
    att = exercises.start("reports/immunizations-due", "alice")
    ex = att.exercise
    right = sorted(_answer(att)["due"])
    # A hand-in written into the sandbox's state, or made under another login, is not graded.
    att.sandbox.state["exercises.answers"] = {f"{ex.id}|alice": {"patients": right}}
    forged = {"answer": {"patients": right}, "exercise": ex.id, "student": "alice"}
    att.sandbox.login("ma.chen").audit_action(SUBMIT_KIND, detail=json.dumps(forged))
    assert "nothing handed in" in att.check().criterion("due list").feedback
    # The real hand-in is an audit event of the student's own session, and is graded.
    stored = rx.hand_in(att, {"patients": right})
    last = att.sandbox.audit.events()[-1]
    assert event_kind(last) == SUBMIT_KIND and last["agent"][0]["altId"] == ex.role
    assert stored == {"patients": right}
    assert att.check().criterion("due list").passed


def test_no_public_function_computes_an_answer():
    assert not hasattr(rx, "reference_vitals_view")
    public = [n for n in rx.__all__ if callable(getattr(rx, n))]
    assert sorted(public) == ["hand_in", "handed_in", "money", "normalised"]


# --- the planted traps are really there, for every student ---------------------------------
@pytest.mark.parametrize("student", STUDENTS)
def test_schedule_trap_crosses_midnight_utc(student: str):
    att = exercises.start("reports/day-schedule", student)
    f, a = att.facts, _answer(att)
    system = att.sandbox.system_session()
    late = system.read("Appointment", a["late_visit"])
    other = system.read("Appointment", a["other_day_visit"])
    for apt, local_is_today in ((late, True), (other, False)):
        utc_day = datetime.fromisoformat(apt["start"]).astimezone(UTC).date().isoformat()
        assert (apt["start"][:10] == f["date"]) is local_is_today
        assert (utc_day == f["date"]) is not local_is_today
    assert late["id"] in a["appointments"] and other["id"] not in a["appointments"]
    assert any(a["statuses"][i] == "cancelled" for i in a["appointments"])


@pytest.mark.parametrize("student", STUDENTS)
def test_immunization_traps_and_visibility(student: str):
    att = exercises.start("reports/immunizations-due", student)
    f, a = att.facts, _answer(att)
    ma = att.session
    assert ma.read("Immunization", a["voided_dose"])["status"] == "entered-in-error"
    assert ma.read("Immunization", a["refused_dose"])["status"] == "not-done"
    assert ma.read("Immunization", a["given_dose"])["status"] == "completed"
    assert {a["voided_id"], a["refused_id"]} <= set(a["due"])
    assert f["given_id"] not in a["due"]
    # The planted patients are on the MA's list: setup booked them this week.
    seen = {p["id"] for p in ma.resources("Patient")}
    assert {a["voided_id"], a["refused_id"], f["given_id"]} <= seen


def test_immunizations_instructions_name_one_date():
    att = exercises.start("reports/immunizations-due", "alice")
    text = att.instructions
    assert "this week" not in text
    dates = set(re.findall(r"\d{4}-\d{2}-\d{2}", text)) - {att.facts["given_dob"]}
    assert dates == {att.facts["as_of"]}


@pytest.mark.parametrize("student", STUDENTS)
def test_billing_has_an_aging_boundary_claim_and_an_adjusted_ledger(student: str):
    att = exercises.start("reports/billing-totals", student)
    f, a = att.facts, _answer(att)
    s = att.session
    as_of = date.fromisoformat(f["as_of"])
    ages = sorted(
        (as_of - date.fromisoformat(s.read("Claim", c)["created"][:10])).days
        for c in a["boundary_claims"]
    )
    assert ages[0] in (30, 60, 90, 120) and ages[1] == ages[0] + 1
    rows = s.reports.run("day_sheet", date=f["day"]).to_pylist()
    assert sum(r["adjustments"] for r in rows) > 0
    ledger = s.reports.run("patient_ledger", patient=f["ledger_id"]).to_pylist()
    assert any(r["adjustment"] for r in ledger)


def test_billing_feedback_never_states_the_expected_amounts():
    att = exercises.start("reports/billing-totals", "bob")
    a = _answer(att)
    amounts = {v for v in [*a["day_sheet"].values(), a["ledger_balance"], *a["ar_aging"].values()]}
    amounts = {v for v in amounts if Decimal(v) >= 1}
    rx.hand_in(
        att,
        {
            "day_sheet": {"charges": 1, "payments": 2, "adjustments": 3},
            "ledger_balance": 4,
            "ar_aging": dict.fromkeys(["0-30", "31-60", "61-90", "91-120", ">120"], 5),
        },
    )
    result = att.check()
    assert not result.passed
    for crit in result.failed():
        assert not [v for v in amounts if v in crit.feedback], crit.feedback


@pytest.mark.parametrize("student", STUDENTS)
def test_quality_measure_period_is_not_the_calendar_year_and_the_last_day_decides(student: str):
    att = exercises.start("reports/quality-measure", student)
    f, a = att.facts, _answer(att)
    start, end = date.fromisoformat(f["period_start"]), date.fromisoformat(f["period_end"])
    assert (start.month, start.day) != (1, 1) and end.month < 12
    counting = att.session.read("Observation", a["counting_reading"])
    assert counting["status"] == "corrected"
    assert counting["effectiveDateTime"][:10] == f["period_end"]
    assert (a["planted_id"] in a["numerator"]) == a["planted_in_numerator"]


def test_both_quality_measures_occur():
    seen: set[str] = set()
    for i in range(40):
        seen.add(exercises.start("reports/quality-measure", f"student-{i:02d}").facts["measure"])
        if seen == set(rx.MEASURES):
            break
    assert seen == set(rx.MEASURES)


@pytest.mark.parametrize("student", STUDENTS)
def test_access_report_has_a_refused_access(student: str):
    att = exercises.start("reports/access-report", student)
    a = _answer(att)
    assert a["refused"] and set(map(tuple, a["refused"])) <= set(map(tuple, a["accesses"]))


def test_access_report_missing_rows_fail_and_demographics_in_any_spelling_are_caught():
    att = exercises.start("reports/access-report", "bob")
    rows = att.session.reports.run("access_report", patient=att.facts["patient_id"]).to_pylist()
    rx.hand_in(att, rows[1:])
    result = att.check()
    assert not result.criterion("every access listed").passed
    assert result.criterion("minimum necessary").passed
    y, m, d = att.facts["patient_dob"].split("-")
    rx.hand_in(att, [{**r, "remark": f"dob {int(m)}/{int(d)}/{y}"} for r in rows])
    assert not att.check().criterion("minimum necessary").passed


def test_vitals_view_fixed_rows_include_both_bp_components_and_the_corrected_value():
    att = exercises.start("reports/vitals-view", "bob")
    a = _answer(att)
    bp = {(r[2], r[3]) for r in a["rows"] if r[0] == a["bp_id"]}
    assert bp == {("8480-6", str(a["systolic"])), ("8462-4", str(a["diastolic"]))}
    assert all(r[0] != a["voided_id"] for r in a["rows"])
    assert any(r[0] == a["corrected_id"] for r in a["rows"])
    # An invalid view is graded, not crashed on.
    rx.hand_in(att, {"resourceType": "ViewDefinition", "resource": "Observation", "select": "x"})
    assert not att.check().criterion("view runs").passed


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
