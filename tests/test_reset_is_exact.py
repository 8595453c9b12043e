"""A reset goes back to the variant's start state exactly, the sandbox clock included: the
checks and hints carried over onto the reset attempt's audit trail are stamped without moving
the clock, so the same work after a reset is written with the same times as the first time
(graders that read times, and comparisons of two answers, see the same record)."""

from __future__ import annotations

import json

from ehr_sandbox import exercises


def _written(att) -> list[str]:
    system = att.sandbox.system_session()
    mark = system.change_mark()
    att.exercise.solution.apply(att)
    return sorted(
        json.dumps({k: v for k, v in r.items() if k not in ("id", "meta")}, sort_keys=True)
        for r in system.changes_since(mark)
    )


def test_the_same_work_after_a_reset_is_written_at_the_same_times() -> None:
    att = exercises.start("clinical/blood-draw", "student-03")
    first = _written(att)
    att.check()
    att.check()
    att.reset()
    assert _written(att) == first
    kinds = [e["subtype"][0]["code"] for e in att.sandbox.audit.events()]
    assert kinds.count("exercise-check") == 2  # the checks are still on the record
