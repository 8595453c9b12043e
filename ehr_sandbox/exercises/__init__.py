"""Self-grading exercises: catalogue, attempts, courses and gradebooks.

>>> from ehr_sandbox import exercises
>>> [row["id"] for row in exercises.catalog(topic="records")][:2]
['records/entered-in-error', 'records/correction']
"""

from __future__ import annotations

from ehr_sandbox.exercises.attempt import Attempt, CriterionResult, Result
from ehr_sandbox.exercises.course import Assignment, Course, Student
from ehr_sandbox.exercises.model import Check, Criterion, Exercise, Hint, Solution
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
from ehr_sandbox.exercises.variants import Variant

__all__ = [
    "Assignment",
    "Attempt",
    "Check",
    "Course",
    "Criterion",
    "CriterionResult",
    "Exercise",
    "Hint",
    "Result",
    "Solution",
    "Student",
    "Variant",
    "catalog",
    "get",
    "load_file",
    "load_folder",
    "open_attempt",
    "register",
    "start",
    "unregister",
]
