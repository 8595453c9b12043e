"""The generated samples the realism tests share (generated once per test session).

The default population is 1,000 patients (seed 21, three years to 2026-01-01); each specialty
preset has 300. Helpers read dates, ages and codes the same way in every realism test.
"""

from __future__ import annotations

from datetime import date
from functools import cache
from typing import Any

import synthetic
from synthetic.content import load_content
from synthetic.engine import engine_for

REF = date(2026, 1, 1)
REF_ISO = REF.isoformat()
N_DEFAULT = 1000
N_PRESET = 300
SEED = 21
YEARS = 3


@cache
def default_sample() -> list[synthetic.PatientRecord]:
    """1,000 family-practice patients."""
    return list(synthetic.generate(N_DEFAULT, seed=SEED, years=YEARS, reference_date=REF))


@cache
def preset_sample(population: str) -> list[synthetic.PatientRecord]:
    """300 patients of a population preset."""
    return list(
        synthetic.generate(
            N_PRESET, seed=SEED, years=YEARS, reference_date=REF, population=population
        )
    )


@cache
def practice(population: str = "family-practice") -> list[dict[str, Any]]:
    """The practice resources (staff, roles, schedules, slots) of a preset."""
    return engine_for(
        seed=SEED, reference_date=REF_ISO, years=YEARS, population=population
    ).practice_resources()


def specialty_presets() -> list[str]:
    """Every preset except the default one."""
    return sorted(p for p in load_content().populations if p != "family-practice")


def all_samples() -> list[tuple[str, list[synthetic.PatientRecord]]]:
    """(preset, records) for the default sample and every preset sample."""
    return [("family-practice", default_sample())] + [
        (p, preset_sample(p)) for p in specialty_presets()
    ]


def day(text: str) -> int:
    """Ordinal day of an ISO date or instant."""
    return date.fromisoformat(text[:10]).toordinal()


def age_days(rec: synthetic.PatientRecord, when: str) -> int:
    """Age in days at ``when``."""
    return day(when) - day(rec.patient["birthDate"])


def age_years(rec: synthetic.PatientRecord, when: str) -> float:
    """Age in years at ``when``."""
    return age_days(rec, when) / 365.2425


def code_of(cc: dict[str, Any], system: str | None = None) -> str:
    """The first code of a CodeableConcept (of ``system`` when given), or ''."""
    for c in cc.get("coding", ()):
        if system is None or c.get("system") == system:
            return str(c.get("code", ""))
    return ""


def keyed(rec: synthetic.PatientRecord) -> dict[str, dict[str, Any]]:
    """Resources of a record by ``Type/id``."""
    return {f"{r['resourceType']}/{r['id']}": r for r in rec.all()}
