"""Attempt metadata and results kept inside the attempt's sandbox (``sandbox.state``).

Values are whole JSON documents written under two keys, so a file-backed sandbox carries
its attempt (exercise, student, variant facts, hints used) and every checked result with it:
``open_attempt(path)`` and ``Course.collect`` read them back.

>>> sb = _DictSandbox()
>>> append_result(sb, {"exercise_id": "records/x", "student": "alice", "score": 1.0})
1
>>> attempt_count(sb, "records/x", "alice")
1
"""

from __future__ import annotations

import copy
from typing import Any

from ehr_sandbox.errors import ExerciseError

__all__ = [
    "ATTEMPT_KEY",
    "RESULTS_KEY",
    "append_result",
    "attempt_count",
    "load_attempt_meta",
    "load_results",
    "save_attempt_meta",
]

ATTEMPT_KEY = "exercises.attempts"
RESULTS_KEY = "exercises.results"


def _state(sandbox: Any) -> Any:
    state = getattr(sandbox, "state", None)
    if state is None:
        raise ExerciseError("sandbox: has no state namespace to keep exercise results in")
    return state


def _attempt_key(exercise_id: str, student: str) -> str:
    return f"{exercise_id}|{student}"


def save_attempt_meta(sandbox: Any, meta: dict[str, Any]) -> None:
    """Store one attempt's metadata (exercise id, student, salt, facts, hints used).

    A sandbox may hold several attempts (a course's shared clinic): they are kept per
    (exercise, student).
    """
    attempts = dict(_state(sandbox).get(ATTEMPT_KEY) or {})
    attempts[_attempt_key(meta["exercise_id"], meta["student"])] = copy.deepcopy(meta)
    _state(sandbox)[ATTEMPT_KEY] = attempts


def load_attempt_meta(
    sandbox: Any, exercise_id: str | None = None, student: str | None = None
) -> dict[str, Any] | None:
    """The metadata of the one attempt stored here that matches, or None if there is none.

    Raises ExerciseError when several attempts match (name the exercise and the student).

    >>> sb = _DictSandbox()
    >>> load_attempt_meta(sb) is None
    True
    >>> save_attempt_meta(sb, {"exercise_id": "records/x", "student": "alice"})
    >>> load_attempt_meta(sb)["student"]
    'alice'
    """
    attempts = list((_state(sandbox).get(ATTEMPT_KEY) or {}).values())
    found = [
        m
        for m in attempts
        if (exercise_id is None or m.get("exercise_id") == exercise_id)
        and (student is None or m.get("student") == student)
    ]
    if len(found) > 1:
        which = ", ".join(sorted(f"{m['exercise_id']} ({m['student']})" for m in found))
        raise ExerciseError(
            f"sandbox: holds several attempts ({which}); name the exercise and the student"
        )
    return copy.deepcopy(found[0]) if found else None


def load_results(
    sandbox: Any, exercise_id: str | None = None, student: str | None = None
) -> list[dict[str, Any]]:
    """Checked results stored in this sandbox, oldest first, optionally filtered."""
    rows = copy.deepcopy(list(_state(sandbox).get(RESULTS_KEY) or []))
    return [
        r
        for r in rows
        if (exercise_id is None or r.get("exercise_id") == exercise_id)
        and (student is None or r.get("student") == student)
    ]


def append_result(sandbox: Any, result: dict[str, Any]) -> int:
    """Append one result; return how many results the sandbox now holds."""
    rows = load_results(sandbox)
    rows.append(copy.deepcopy(result))
    _state(sandbox)[RESULTS_KEY] = rows
    return len(rows)


def replace_results(sandbox: Any, results: list[dict[str, Any]]) -> None:
    """Overwrite the stored results (used to carry results across a reset)."""
    _state(sandbox)[RESULTS_KEY] = copy.deepcopy(results)


def attempt_count(sandbox: Any, exercise_id: str, student: str) -> int:
    """How many times ``student`` has checked ``exercise_id`` in this sandbox."""
    return len(load_results(sandbox, exercise_id, student))


class _DictSandbox:
    """Stand-in with a plain-dict state, for doctests."""

    def __init__(self) -> None:
        self.state: dict[str, Any] = {}
