"""Clinical content as data: code sets, condition modules, distributions, presets.

Everything the generator knows about medicine lives in TOML/CSV files under
``synthetic/content/data``; this package validates them into pydantic models.

>>> from synthetic.content import load_content
>>> c = load_content()
>>> c.codes["icd10cm"].display("I10")
'Essential (primary) hypertension'
>>> plausible_range("8480-6")[2]
'mm[Hg]'
"""

from __future__ import annotations

from synthetic.content.loader import DEFAULT_ROOT, clear_cache, iter_content_files, load_content
from synthetic.content.models import (
    AcuteDetails,
    AllergyDef,
    CodeSet,
    ConditionModule,
    Content,
    Distribution,
    Fee,
    LabPanel,
    LabTest,
    MedicationOption,
    Payer,
    Population,
    PracticeDef,
    PrevalenceTarget,
    SensitivityRule,
    SocialHistory,
    StaffMember,
    VaccineSchedule,
    VitalSign,
    split_ref,
)


def plausible_range(loinc: str) -> tuple[float, float, str]:
    """Hard plausibility limits (low, high, UCUM unit) of a vital sign or lab in the shipped content.

    Raises KeyError for a LOINC code that is neither a vital sign nor a quantitative lab test.

    >>> low, high, unit = plausible_range("8867-4")
    >>> low < 60 < high, unit
    (True, '/min')
    """
    return load_content().plausible_range(loinc)


__all__ = [
    "DEFAULT_ROOT",
    "AcuteDetails",
    "AllergyDef",
    "CodeSet",
    "ConditionModule",
    "Content",
    "Distribution",
    "Fee",
    "LabPanel",
    "LabTest",
    "MedicationOption",
    "Payer",
    "Population",
    "PracticeDef",
    "PrevalenceTarget",
    "SensitivityRule",
    "SocialHistory",
    "StaffMember",
    "VaccineSchedule",
    "VitalSign",
    "clear_cache",
    "iter_content_files",
    "load_content",
    "plausible_range",
    "split_ref",
]
