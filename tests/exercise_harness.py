"""The shared trap harness every registered exercise goes through.

For each student: setup succeeds; doing nothing does not pass; the reference solution scores
full marks (including "no collateral damage"); every wrong solution fails, for every student,
the criterion it names, with its message; the feedback of a failing criterion never states an
answer value in its "expected" part. Across students: at least two get different scenarios.

Attempts start from a cached pre-built clinic (``ehr_sandbox.exercises.clinics``), so a run of
many students costs one clinic build per clinic in the pool plus each student's setup.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from typing import Any

from ehr_sandbox import exercises
from ehr_sandbox.exercises import COLLATERAL

DEFAULT_STUDENTS = 8
"""Students per exercise in CI; ``EHR_SANDBOX_TRAP_STUDENTS=30`` runs the full 30."""


def trap_students(n: int | None = None) -> list[str]:
    """Student ids for a trap run (``EHR_SANDBOX_TRAP_STUDENTS`` overrides the default)."""
    count = n or int(os.environ.get("EHR_SANDBOX_TRAP_STUDENTS", DEFAULT_STUDENTS))
    return [f"student-{i:02d}" for i in range(count)]


@dataclass
class TrapReport:
    """What one exercise's run found, per wrong solution: the students it did not fail."""

    exercise_id: str
    students: int = 0
    escaped: dict[str, list[str]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    scenarios: set[str] = field(default_factory=set)

    @property
    def caught_everywhere(self) -> int:
        """How many wrong solutions failed for every student."""
        return sum(1 for v in self.escaped.values() if not v)


def _answer_values(att: exercises.Attempt) -> list[str]:
    derived = att._Attempt__derived  # noqa: SLF001 - the harness plays the instructor
    public = json.dumps(derived.facts)
    out: list[str] = []

    def walk(v: Any) -> None:
        if isinstance(v, dict):
            for x in v.values():
                walk(x)
        elif isinstance(v, list | tuple):
            for x in v:
                walk(x)
        elif isinstance(v, int | float) and not isinstance(v, bool) and abs(v) >= 10:
            out.append(f"{v:g}" if isinstance(v, float) else str(v))
        elif isinstance(v, str) and len(v) >= 4 and v not in public:
            out.append(v)

    walk(derived.answer)
    return out


def _expected_part(feedback: str) -> str:
    m = re.search(r"; expected (.*?)(?: Rule of thumb:| Why it matters:|$)", feedback, re.S)
    return m.group(1) if m else ""


def run_traps(exercise_id: str, students: list[str]) -> TrapReport:
    """Run the reference and every wrong solution of one exercise for every student."""
    ex = exercises.get(exercise_id)
    report = TrapReport(exercise_id, escaped={k: [] for k in ex.wrong_solutions})
    if COLLATERAL not in [c.name for c in ex.criteria]:
        report.problems.append("no collateral-damage criterion")
    for student in students:
        try:
            att = exercises.start(exercise_id, student)
        except Exception as exc:  # setup must succeed for every student
            report.problems.append(f"{student}: setup failed: {type(exc).__name__}: {exc}")
            continue
        report.students += 1
        derived = att._Attempt__derived  # noqa: SLF001
        report.scenarios.add(json.dumps([derived.facts, derived.answer], sort_keys=True))
        secrets = _answer_values(att)
        if att.check().passed:
            report.problems.append(f"{student}: doing nothing passes")
        att.reset()
        ex.solution.apply(att)
        ref = att.check()
        if not (ref.passed and ref.score == ex.max_score):
            bad = [f"{c.name}: {c.feedback}" for c in ref.criteria if not c.passed]
            report.problems.append(f"{student}: reference scores {ref.score}: {bad}")
        for i, alternative in enumerate(ex.alternatives):  # other correct ways: full marks too
            att.reset()
            alt = att.check() if alternative.apply(att) is None else None
            if alt is not None and not (alt.passed and alt.score == ex.max_score):
                bad = [f"{c.name}: {c.feedback}" for c in alt.criteria if not c.passed]
                report.problems.append(f"{student}: alternative {i} scores {alt.score}: {bad}")
        for name, wrong in ex.wrong_solutions.items():
            att.reset()
            try:
                wrong.apply(att)
            except Exception as exc:  # a wrong solution must run through (catch refusals inside)
                report.problems.append(f"{student}: wrong solution {name} raised {exc!r}")
            result = att.check()
            crit = result.criterion(wrong.fails)
            if result.passed or crit.passed or wrong.message not in crit.feedback:
                report.escaped[name].append(student)
            for c in result.criteria:
                if c.passed:
                    continue
                leaked = [s for s in secrets if s in _expected_part(c.feedback)]
                if leaked:
                    report.problems.append(
                        f"{student}: {name}: feedback of {c.name!r} states the answer ({leaked[0]!r})"
                    )
        att.sandbox.close()
    return report


def assert_traps_hold(report: TrapReport) -> None:
    """Fail with everything the run found wrong."""
    lines = list(report.problems)
    for name, who in report.escaped.items():
        if who:
            lines.append(
                f"wrong solution {name!r} is not caught for {len(who)} student(s): {who[:5]}"
            )
    if report.students >= 2 and len(report.scenarios) < 2:
        lines.append("every student got the same scenario")
    assert not lines, f"{report.exercise_id}:\n  " + "\n  ".join(lines)
