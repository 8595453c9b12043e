"""Self-grading exercises: catalogue, attempts, courses and gradebooks.

Students: ``att = exercises.start("records/correction", student="alice")``, read
``att.instructions``, work through ``att.session``, then ``att.check()`` (practice feedback,
never counted), ``att.submit()`` (counts), ``att.hint()``, ``att.reset()``; ``start(..., path="alice.db")`` or
``att.save("alice.db")`` keeps the work in a file that ``open_attempt`` and
``ehr-sandbox exercises check`` read.

Instructors: ``Course(name, salt)``, ``enroll``, ``assign(id, due=..., max_attempts=...)``,
``gradebook(out="grades.csv", format="canvas"|"moodle")``, ``competency_report()``. A new
exercise is an :class:`Exercise` (setup, instructions template, criteria with ``why``, hints,
a reference solution and wrong solutions) passed to :func:`register` or written in a ``.py``
file loaded with :func:`load_file`.

>>> from ehr_sandbox import exercises
>>> [row["id"] for row in exercises.catalog(topic="records")][:2]
['records/entered-in-error', 'records/correction']
"""

from __future__ import annotations

from ehr_sandbox.exercises import rubric
from ehr_sandbox.exercises.attempt import Attempt, CriterionResult, Result
from ehr_sandbox.exercises.course import Assignment, Course, Student
from ehr_sandbox.exercises.model import (
    COLLATERAL,
    Check,
    Criterion,
    Exercise,
    Expect,
    Hint,
    Scenario,
    Solution,
)
from ehr_sandbox.exercises.registry import (
    catalog,
    get,
    load_file,
    load_folder,
    open_attempt,
    register,
    start,
    unregister,
)
from ehr_sandbox.exercises.topics import TOPICS
from ehr_sandbox.exercises.variants import Variant

__all__ = [
    "COLLATERAL",
    "TOPICS",
    "Assignment",
    "Attempt",
    "Check",
    "Course",
    "Criterion",
    "CriterionResult",
    "Exercise",
    "Expect",
    "Hint",
    "Result",
    "Scenario",
    "Solution",
    "Student",
    "Variant",
    "catalog",
    "get",
    "load_file",
    "load_folder",
    "open_attempt",
    "register",
    "rubric",
    "start",
    "unregister",
]
