"""Write-time validation: the rules every create/update passes before it reaches the store.

``check(resource, exists=...)`` raises :class:`ehr_sandbox.errors.ValidationError` naming
the resource, the field path and what was expected (``.errors`` lists every problem).

>>> from ehr_sandbox.validation import check
>>> check({"resourceType": "Patient", "id": "p1"}, exists=lambda ref: True)
"""

from __future__ import annotations

from ehr_sandbox.errors import ValidationError

from .check import check, problems, resource_label
from .codes import CodeSets, unlicensed_system
from .content_adapter import (
    Lookups,
    code_sets_from_content,
    default_lookups,
    lookups_for,
    reset_default_lookups,
)
from .problem import Problem
from .vitals import VITAL_SIGNS, VitalSign, bmi_problem, expected_bmi, merged_table

__all__ = [
    "VITAL_SIGNS",
    "CodeSets",
    "Lookups",
    "Problem",
    "ValidationError",
    "VitalSign",
    "bmi_problem",
    "check",
    "code_sets_from_content",
    "default_lookups",
    "lookups_for",
    "expected_bmi",
    "merged_table",
    "problems",
    "reset_default_lookups",
    "resource_label",
    "unlicensed_system",
]
