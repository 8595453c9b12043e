"""Grading integrity (issue 11): each class of hole, shown closed on real attempts.

1. harm is noticed (collateral-damage criterion, history not only current state);
2./3. the answer key is fixed at setup and not student-writable (read-only facts, forged
   hand-in facts, results written into the hand-in, tampered audit chain, edits around the EHR);
4. free text is judged by a rubric; 6. course rules live on the instructor side; 7. practice
checks never count. Traps in every variant (5) are in ``test_exercise_traps.py``.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime

import pytest
from typer.testing import CliRunner

from ehr_sandbox import Sandbox, exercises
from ehr_sandbox.cli.app import app
from ehr_sandbox.errors import ExerciseError
from ehr_sandbox.exercises import COLLATERAL, Course
from ehr_sandbox.exercises.builtin.common import blood_pressure
from ehr_sandbox.exercises.persistence import ATTEMPT_KEY, RESULTS_KEY

EX = "records/correction"


def _fresh(student: str = "alice") -> exercises.Attempt:
    return exercises.start(EX, student)


def test_facts_are_read_only_and_forged_facts_do_not_grade():
    att = _fresh()
    with pytest.raises(TypeError):
        att.facts["right"] = att.facts["keyed"]  # type: ignore[index]
    metas = dict(att.sandbox.state[ATTEMPT_KEY])
    for meta in metas.values():
        meta["facts"]["right"] = meta["facts"]["keyed"]
    att.sandbox.state[ATTEMPT_KEY] = metas
    # the student 'corrects' to the forged value: graded against the value fixed at setup
    obs = att.session.read("Observation", att.facts["obs_id"])
    att.session.correct(obs, reason=f"Systolic {att.facts['keyed']} keyed in error, verified")
    assert not att.check().criterion("value corrected").passed


def test_salt_is_not_visible_from_an_attempt():
    course = Course("MA", salt="very-secret-salt")
    course.enroll("alice")
    course.assign(EX)
    att = course.start(EX, "alice")
    assert "very-secret-salt" not in repr(vars(att.variant))
    assert "very-secret-salt" not in json.dumps(att.sandbox.state[ATTEMPT_KEY])


def test_unexpected_write_is_named_even_when_later_repaired():
    att = _fresh()
    att.exercise.solution.apply(att)
    other = next(
        p["id"] for p in att.session.search("Patient").fetch() if p["id"] != att.facts["patient_id"]
    )
    stray = att.session.create(
        blood_pressure(f"Patient/{other}", 120, 80, "2026-01-01T08:00:00+00:00")
    )
    att.session.mark_entered_in_error(
        f"Observation/{stray['id']}", reason="charted on the wrong patient, voided at once"
    )
    crit = att.check().criterion(COLLATERAL)
    assert not crit.passed
    assert f"Observation/{stray['id']} version 1 (create)" in crit.feedback
    assert f"Observation/{stray['id']} version 2 (entered-in-error)" in crit.feedback


def test_work_under_another_login_and_writes_around_the_ehr_are_named():
    att = _fresh()
    att.exercise.solution.apply(att)
    att.sandbox.login("dr.patel").search("Patient").first()
    crit = att.check().criterion(COLLATERAL)
    assert not crit.passed and "work done under dr.patel's login" in crit.feedback

    att.reset()
    att.exercise.solution.apply(att)
    raw = blood_pressure(f"Patient/{att.facts['patient_id']}", 99, 60, "2026-01-01T08:00:00+00:00")
    att.sandbox._store.create(raw)  # around the Session: no audit entry
    crit = att.check().criterion(COLLATERAL)
    assert not crit.passed and "written around the EHR" in crit.feedback


def test_meaningless_reason_fails_the_rubric():
    att = _fresh()
    obs = att.session.read("Observation", att.facts["obs_id"])
    for comp in obs["component"]:
        if comp["valueQuantity"]["value"] == att.facts["keyed"]:
            comp["valueQuantity"]["value"] = att.facts["right"]
    att.session.correct(obs, reason="fix")
    crit = att.check().criterion("correction documented with a reason")
    assert not crit.passed and "meaningless" in crit.feedback


def test_addendum_in_the_physicians_own_words_passes():
    att = exercises.start("records/addendum", "bob")
    words = {
        "ankle swelling": "Pt now says both ankles are swollen for about a week. Told to elevate legs; recheck at follow-up.",
        "glucose log": "Reviewed home sugar readings after the visit, fasting 110 to 130. No change.",
        "lipid panel": "Received last month's outside cholesterol results; reviewed, plan unchanged.",
        "laundry detergent": "Patient phoned: rash began after switching detergent. Continue current plan.",
    }[att.facts["keyword"]]
    att.session.addendum(
        f"DocumentReference/{att.facts['note_id']}", words, reason="new information after signing"
    )
    result = att.check()
    assert result.passed, result.feedback


def test_a_repeat_order_with_a_clinical_reason_passes():
    from ehr_sandbox.exercises.builtin.emr_ehr.duplicate_test import file_outside_results
    from ehr_sandbox.network import fhir_builders as fb

    att = exercises.start("emr-ehr/duplicate-test", "carol")
    file_outside_results(att)
    att.session.create(
        fb.service_request(
            f"Patient/{att.facts['patient_id']}",
            f"Practitioner/{att.user.practitioner_id}",
            "2026-01-01",
            fb.LIPID_PANEL,
            reason="Outside panel two weeks ago was non-fasting; repeat fasting before the statin decision",
        )
    )
    assert att.check().passed


def test_practice_never_counts_and_submit_is_stamped_by_the_course():
    course = Course("MA", salt="salt-1234", clock=lambda: datetime(2026, 3, 1, tzinfo=UTC))
    course.enroll("alice")
    course.assign(EX, due="2026-02-01", max_attempts=1)
    att = course.start(EX, "alice")
    for _ in range(3):
        att.check()
    assert course.attempts_used("alice", EX) == 0
    att.exercise.solution.apply(att)
    result = att.submit()
    assert result.late and result.checked_at.startswith("2026-03-01")
    with pytest.raises(ExerciseError, match="attempt limit"):
        att.submit()
    with pytest.warns(UserWarning, match="1 late result"):
        book = course.gradebook(details=True)
    assert book.loc["alice", f"{EX} late"] and book.loc["alice", f"{EX} graded by"] == ""


@pytest.fixture
def handin(tmp_path):
    course = Course("MA", salt="salt-5678")
    course.enroll("dana")
    course.assign(EX, due="2026-02-01", max_attempts=3)
    path = tmp_path / "dana.db"
    att = course.start(EX, "dana", path=path)
    att.exercise.solution.apply(att)
    att.submit()
    att.sandbox.close()
    return course, path


def test_collect_regrades_on_the_instructor_side_and_ignores_written_results(handin):
    course, path = handin
    sb = Sandbox.open(str(path))
    rows = list(sb.state.get(RESULTS_KEY) or [])
    rows.append(
        {**rows[-1], "score": 999.0, "attempt": 7, "checked_at": "2026-01-02T00:00:00+00:00"}
    )
    sb.state[RESULTS_KEY] = rows
    sb.close()
    fresh = Course("MA", salt="salt-5678")
    fresh.enroll("dana")
    fresh.assign(EX, due="2026-02-01", max_attempts=3)
    assert fresh.collect([path]) == 1
    (result,) = fresh.results("dana", EX)
    assert result.graded_by == "instructor" and result.score == result.max_score and not result.flag
    table = fresh.results_table()
    assert list(table["graded_by"]) == ["instructor"]
    assert course.results_table()["graded_by"].tolist() == ["self"]


def test_collect_flags_forged_facts(handin):
    course, path = handin
    sb = Sandbox.open(str(path))
    metas = dict(sb.state[ATTEMPT_KEY])
    for meta in metas.values():
        meta["facts"]["right"] = meta["facts"]["keyed"]
    sb.state[ATTEMPT_KEY] = metas
    sb.close()
    course.collect([path])
    flagged = [r for r in course.results("dana", EX) if r.graded_by == "instructor"]
    assert flagged and "facts do not match" in flagged[0].flag and math.isnan(flagged[0].score)
    assert math.isnan(course.gradebook().loc["dana", EX]) or course.gradebook().loc["dana", EX] > 0


def test_collect_flags_a_tampered_audit_trail(handin):
    course, path = handin
    sb = Sandbox.open(str(path))
    con = sb._store.connection
    seq = con.execute("SELECT seq FROM audit_log ORDER BY seq DESC LIMIT 1 OFFSET 2").fetchone()[0]
    con.execute("DELETE FROM audit_log WHERE seq = ?", (seq,))
    con.commit()
    sb.close()
    course.collect([path])
    flagged = [r for r in course.results("dana", EX) if r.graded_by == "instructor"]
    assert flagged and "audit trail does not verify" in flagged[0].flag


def test_collect_flags_a_setup_record_edited_in_the_file(handin):
    course, path = handin
    sb = Sandbox.open(str(path))
    con = sb._store.connection
    rows = con.execute("SELECT rowid FROM versions ORDER BY rowid LIMIT 2").fetchall()
    blob = con.execute("SELECT blob FROM versions WHERE rowid = ?", (rows[1][0],)).fetchone()[0]
    con.execute("UPDATE versions SET blob = ? WHERE rowid = ?", (blob, rows[0][0]))
    con.commit()
    sb.close()
    course.collect([path])
    flagged = [r for r in course.results("dana", EX) if r.graded_by == "instructor"]
    assert flagged and flagged[0].flag


def test_open_attempt_refuses_forged_facts(handin):
    _, path = handin
    sb = Sandbox.open(str(path))
    metas = dict(sb.state[ATTEMPT_KEY])
    for meta in metas.values():
        meta["facts"]["obs_id"] = "elsewhere"
    sb.state[ATTEMPT_KEY] = metas
    sb.close()
    with pytest.raises(ExerciseError, match="do not match"):
        exercises.open_attempt(path)


def test_exercises_show_gives_the_students_values_or_says_they_vary():
    runner = CliRunner()
    plain = runner.invoke(app, ["exercises", "show", EX])
    assert plain.exit_code == 0 and "vary per student" in plain.output
    att = _fresh("erin")
    mine = runner.invoke(app, ["exercises", "show", EX, "--student", "erin"])
    assert mine.exit_code == 0
    assert f"**{att.facts['keyed']}**" in mine.output and "vary per student" not in mine.output


def test_cli_submit_then_instructor_check_regrades(tmp_path):
    course = Course("MA", salt="salt-cli-1")
    course.enroll("fay")
    course.assign(EX, max_attempts=2)
    course_file = course.save(tmp_path / "course.json")
    db = tmp_path / "fay.db"
    runner = CliRunner()
    started = runner.invoke(
        app,
        [
            "exercises",
            "start",
            EX,
            "--student",
            "fay",
            "--db",
            str(db),
            "--course",
            str(course_file),
        ],
    )
    assert started.exit_code == 0, started.output
    att = exercises.open_attempt(db)
    att.exercise.solution.apply(att)
    att.sandbox.close()
    practice = runner.invoke(app, ["exercises", "check", EX, "--student", "fay", "--db", str(db)])
    assert practice.exit_code == 0 and "practice, not counted" in practice.output
    handed = runner.invoke(app, ["exercises", "submit", EX, "--student", "fay", "--db", str(db)])
    assert handed.exit_code == 0 and "attempt 1" in handed.output
    graded = runner.invoke(
        app,
        [
            "exercises",
            "check",
            EX,
            "--student",
            "fay",
            "--db",
            str(db),
            "--course",
            str(course_file),
        ],
    )
    assert graded.exit_code == 0, graded.output
    (result,) = Course.load(course_file).results("fay", EX)
    assert result.graded_by == "instructor" and result.attempt == 1 and result.passed


def test_an_alternative_correct_solution_widens_the_budget_only_by_what_it_does():
    """The budget is the reference's or an alternative's work, never more: without the
    alternative declared, the same correct repeat order is collateral damage."""
    import dataclasses

    from ehr_sandbox.errors import ExerciseError
    from ehr_sandbox.exercises.attempt import reference_budget
    from ehr_sandbox.exercises.model import Solution

    ex = exercises.get("emr-ehr/duplicate-test")
    assert ex.alternatives  # the repeat order with a documented reason
    att = exercises.start(ex.id, "dave")
    derived = att._Attempt__derived  # noqa: SLF001 - the budget fixed at setup
    pid = att.facts["patient_id"]
    assert derived.budget[f"ServiceRequest|{pid}"] == 1
    bare = dataclasses.replace(ex, alternatives=())
    narrow = reference_budget(bare, att.sandbox, att.variant, derived)
    assert f"ServiceRequest|{pid}" not in narrow
    assert {k: v for k, v in derived.budget.items() if not k.startswith("ServiceRequest")} == narrow
    with pytest.raises(ExerciseError, match="alternative"):
        dataclasses.replace(ex, alternatives=(Solution(lambda a: None, fails="x", message="y"),))


def test_checks_are_counted_across_a_reset_and_collect_reads_them_from_the_audit_trail(tmp_path):
    """Checks never count toward the grade, but the course counts them (a reset does not undo
    it), each submission says how many came before, ``max_checks`` refuses more, and the
    instructor's re-grade of a hand-in file reads them from its audit trail."""
    course = Course("MA", salt="salt-9012")
    course.enroll("eve")
    course.assign(EX, max_checks=3)
    path = tmp_path / "eve.db"
    att = course.start(EX, "eve", path=path)
    assert [att.check().checks for _ in range(2)] == [1, 2]
    att.reset()
    att.exercise.solution.apply(att)
    assert att.check().checks == 3
    with pytest.raises(ExerciseError, match="check limit"):
        att.check()
    assert course.checks_used("eve", EX) == 3
    assert att.submit().checks == 3
    att.sandbox.close()
    fresh = Course("MA", salt="salt-9012")
    fresh.enroll("eve")
    fresh.assign(EX)
    assert fresh.collect([path]) == 1
    (regraded,) = fresh.results("eve", EX)
    assert regraded.graded_by == "instructor" and regraded.checks == 3
    assert fresh.results_table()["checks"].tolist() == [3]
