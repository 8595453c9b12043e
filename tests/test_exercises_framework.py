"""The exercise framework on a stand-in sandbox: variants, grading, hints, reset, tampering."""

from __future__ import annotations

import pytest
from exercise_fakes import NAMES, FakeSandbox, greet_exercise

from ehr_sandbox import exercises
from ehr_sandbox.errors import ExerciseError
from ehr_sandbox.exercises import Criterion, Exercise, Solution, Variant
from ehr_sandbox.exercises.variants import variant_seed


@pytest.fixture
def greet():
    ex = exercises.register(greet_exercise(), replace=True)
    yield ex
    exercises.unregister(ex.id)


def _start(student: str, **kw):
    return exercises.start("demo/greet", student, sandbox=FakeSandbox(), **kw)


def test_variant_seed_depends_on_salt_student_and_exercise():
    base = variant_seed("salt", "alice", "demo/greet")
    assert base == variant_seed("salt", "alice", "demo/greet")
    assert base != variant_seed("other", "alice", "demo/greet")
    assert base != variant_seed("salt", "bob", "demo/greet")
    assert base != variant_seed("salt", "alice", "demo/other")
    # length-prefixing keeps ("ab","c") and ("a","bc") apart
    assert variant_seed("s", "ab", "c/d") != variant_seed("s", "a", "bc/d")


def test_variant_rejects_empty_student():
    with pytest.raises(ExerciseError, match="student"):
        Variant.of("salt", "", "demo/greet")


def test_students_get_different_variants_and_the_same_student_the_same(greet):
    facts = {s: _start(s).facts for s in ("alice", "bob", "carol", "dave", "erin")}
    assert len({f["name"] for f in facts.values()}) > 1
    assert _start("alice").facts == facts["alice"]
    assert all(f["name"] in NAMES for f in facts.values())


def test_instructions_render_the_variant(greet):
    att = _start("alice")
    assert f"**{att.facts['name']}**" in att.instructions
    assert att._repr_markdown_() == att.instructions


def test_reference_solution_scores_full_marks(greet):
    att = _start("alice")
    greet.solution.apply(att)
    result = att.check()
    assert result.passed and result.score == result.max_score == greet.max_score
    assert all(c.passed for c in result.criteria)


def test_wrong_solution_fails_the_intended_criterion_with_its_message(greet):
    att = _start("bob")
    wrong = greet.wrong_solutions["anonymous"]
    wrong.apply(att)
    result = att.check()
    assert not result.passed
    failed = result.criterion(wrong.fails)
    assert not failed.passed and wrong.message in failed.feedback
    assert "Why it matters" in failed.feedback and "'Hello you'" in failed.feedback
    assert result.score == result.max_score - failed.max_points


def test_feedback_html_is_escaped(greet):
    att = _start("alice")
    att.session.say("<img src=x onerror=alert(1)>")
    html = att.check()._repr_html_()
    assert "<img" not in html and "&lt;img" in html


def test_hints_are_recorded_and_may_cost_points(greet):
    att = _start("carol")
    first, preview = att.hint(), att.hint()
    assert "att.session.say" in first and "costs 1 point" in preview and "accept_cost" in preview
    assert att.hints_used == [0]  # the cost is shown before the hint is taken
    second, third = att.hint(accept_cost=True), att.hint()
    assert "cost 1 point" in second and "No more hints" in third
    assert att.hints_used == [0, 1]
    greet.solution.apply(att)
    result = att.check()
    assert result.passed and result.hint_penalty == 1 and result.score == greet.max_score - 1
    assert result.hints_used == 2


def test_reset_restores_the_start_state_and_keeps_results(greet):
    att = _start("dave")
    start_data = dict(att.sandbox.data)
    greet.solution.apply(att)
    att.submit()
    att.reset()
    assert att.sandbox.data == start_data
    assert len(att.results) == 1 and att.attempts_used == 1
    assert not att.check().passed  # the work is gone after the reset
    assert att.attempts_used == 1  # practice does not use an attempt
    att.submit()
    assert att.attempts_used == 2


def test_tampered_audit_scores_zero(greet):
    att = _start("erin")
    greet.solution.apply(att)
    att.sandbox.audit.tampered = True
    result = att.check()
    assert result.tampered and result.score == 0 and not result.passed
    assert all("tampered" in c.feedback for c in result.criteria)


def test_results_persist_in_the_sandbox_state(greet):
    att = _start("alice")
    att.submit()
    greet.solution.apply(att)
    att.submit()
    stored = att.results
    assert [r.attempt for r in stored] == [1, 2]
    assert [r.passed for r in stored] == [False, True]
    from ehr_sandbox.exercises.persistence import load_attempt_meta

    assert load_attempt_meta(att.sandbox)["student"] == "alice"


def test_exercise_definition_errors_name_the_field():
    ex = greet_exercise()
    with pytest.raises(ExerciseError, match="exercise id"):
        greet_exercise("Not An Id")
    with pytest.raises(ExerciseError, match="unknown competency"):
        Exercise(**{**_fields(ex), "competencies": ("Z.P.1",)})
    with pytest.raises(ExerciseError, match="must name one of the criteria"):
        Exercise(
            **{
                **_fields(ex),
                "wrong_solutions": {"x": Solution(lambda a: None, fails="nope", message="m")},
            }
        )
    with pytest.raises(ExerciseError, match="unique"):
        Exercise(**{**_fields(ex), "criteria": ex.criteria + ex.criteria})
    with pytest.raises(ExerciseError, match="points"):
        Criterion("x", 0, lambda ctx: (True, "", ""), "why")


def test_register_refuses_a_silent_redefinition(greet):
    with pytest.raises(ExerciseError, match="already registered"):
        exercises.register(greet_exercise())


def test_unknown_exercise_id_is_a_clear_error():
    with pytest.raises(ExerciseError, match="no exercise 'records/nope'"):
        exercises.start("records/nope", "alice", sandbox=FakeSandbox())


def test_catalog_rows_and_frame(greet):
    rows = exercises.catalog(topic="demo")
    assert [r["id"] for r in rows] == ["demo/greet"]
    frame = exercises.catalog(as_frame=True)
    assert {"id", "title", "topic", "competencies", "minutes"} <= set(frame.columns)
    assert "demo/greet" in set(frame["id"])


def test_instructor_exercise_file_is_loaded(tmp_path):
    course_dir = tmp_path / "course"
    course_dir.mkdir()
    (course_dir / "mine.py").write_text(
        "from exercise_fakes import greet_exercise\nEX = greet_exercise('course/greet-again')\n"
    )
    try:
        loaded = exercises.load_folder(course_dir)
        assert [e.id for e in loaded] == ["course/greet-again"]
        assert exercises.get("course/greet-again").title == "Greet the visitor"
    finally:
        exercises.unregister("course/greet-again")
    (course_dir / "empty.py").write_text("X = 1\n")
    with pytest.raises(ExerciseError, match="defines no Exercise"):
        exercises.load_file(course_dir / "empty.py")


def _fields(ex: Exercise) -> dict:
    from dataclasses import fields

    return {f.name: getattr(ex, f.name) for f in fields(ex)}


def test_grading_context_helpers():
    from ehr_sandbox.exercises.grading import codes, provenance_reason, split_ref, text_of

    assert split_ref("Observation/o1/_history/3") == ("Observation", "o1", "3")
    assert split_ref("Patient/p1") == ("Patient", "p1", None)
    with pytest.raises(ValueError, match="Type/id"):
        split_ref("nonsense")
    assert codes([{"coding": [{"code": "a"}, {"code": "b"}]}, {"code": "c"}]) == {"a", "b", "c"}
    assert provenance_reason({"reason": [{"text": "keyed wrong"}]}) == "keyed wrong"
    assert provenance_reason({}) == ""
    assert "hello" in text_of({"payload": [{"contentString": "hello"}]})


def test_a_shared_sandbox_holds_several_attempts(greet):
    from ehr_sandbox.exercises.persistence import load_attempt_meta

    shared = FakeSandbox()
    a = exercises.start("demo/greet", "alice", sandbox=shared)
    b = exercises.start("demo/greet", "bob", sandbox=shared)
    assert load_attempt_meta(shared, "demo/greet", "alice")["facts"] == a.facts
    assert load_attempt_meta(shared, student="bob")["facts"] == b.facts
    with pytest.raises(ExerciseError, match="several attempts"):
        load_attempt_meta(shared)


def test_catalogue_loads_safely_from_many_threads_at_once() -> None:
    """A fresh process: 16 threads ask for exercises of every section at the same moment;
    each finds its exercise (no thread sees a section half registered)."""
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent(
        """
        import threading
        from ehr_sandbox.exercises import registry
        ids = ["records/correction", "reports/day-schedule", "privacy/restriction",
               "front-office/scrub-claim", "clinical/refill-queue", "emr-ehr/duplicate-test"]
        errors, barrier = [], threading.Barrier(16)
        def ask(i):
            barrier.wait()
            try:
                registry.get(ids[i % len(ids)])
            except Exception as exc:
                errors.append(repr(exc))
        threads = [threading.Thread(target=ask, args=(i,)) for i in range(16)]
        [t.start() for t in threads]
        [t.join() for t in threads]
        print(len(errors), errors[:1])
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split()[0] == "0", out.stdout
