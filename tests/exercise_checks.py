"""The check every built-in exercise must pass, shared by the exercise test modules.

For one student's attempt: doing nothing does not pass; the reference solution scores full
marks; each wrong solution fails the criterion it targets with the intended message, and the
feedback says what was expected and why it matters; every reset restores the start state
(when the caller says how to read that state); every check is recorded.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ehr_sandbox import exercises


class AttemptCache:
    """One attempt per (exercise, student) for a test module: sandboxes are the slow part."""

    def __init__(self) -> None:
        self.started: dict[tuple[str, str], exercises.Attempt] = {}

    def __call__(self, exercise_id: str, student: str) -> exercises.Attempt:
        key = (exercise_id, student)
        if key not in self.started:
            self.started[key] = exercises.start(exercise_id, student)
        return self.started[key]


def check_reference_and_wrong_solutions(
    att: exercises.Attempt, state: Callable[[exercises.Attempt], Any] | None = None
) -> None:
    """Run the reference and every wrong solution of ``att``'s exercise and check the grades."""
    ex = att.exercise
    att.reset()
    before = len(att.results)
    start_state = state(att) if state else None
    assert not att.check().passed, "doing nothing must not pass"

    att.reset()
    if state:
        assert state(att) == start_state
    ex.solution.apply(att)
    result = att.check()
    assert result.passed, result.feedback
    assert result.score == result.max_score == ex.max_score

    for name, wrong in ex.wrong_solutions.items():
        att.reset()
        if state:
            assert state(att) == start_state
        wrong.apply(att)
        result = att.check()
        failed = result.criterion(wrong.fails)
        assert not result.passed, f"{name}: {result.feedback}"
        assert not failed.passed, f"{name}: {result.feedback}"
        assert wrong.message in failed.feedback, f"{name}: {failed.feedback}"
        assert "Why it matters" in failed.feedback and "expected" in failed.feedback, (
            failed.feedback
        )
    assert len(att.results) == before + 2 + len(ex.wrong_solutions)
