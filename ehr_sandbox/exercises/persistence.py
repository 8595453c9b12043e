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

ATTEMPT_KEY = "exercises.attempt"
RESULTS_KEY = "exercises.results"


def _state(sandbox: Any) -> Any:
    state = getattr(sandbox, "state", None)
    if state is None:
        raise ExerciseError("sandbox: has no state namespace to keep exercise results in")
    return state


def save_attempt_meta(sandbox: Any, meta: dict[str, Any]) -> None:
    """Store the attempt's metadata (exercise id, student, salt, facts, hints used)."""
    _state(sandbox)[ATTEMPT_KEY] = copy.deepcopy(meta)


def load_attempt_meta(sandbox: Any) -> dict[str, Any] | None:
    """The attempt metadata stored in this sandbox, or None if it holds no attempt.

    >>> load_attempt_meta(_DictSandbox()) is None
    True
    """
    meta = _state(sandbox).get(ATTEMPT_KEY)
    return copy.deepcopy(meta) if meta is not None else None


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
