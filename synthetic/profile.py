"""A patient's clinical profile: which chronic conditions (diagnosed when), habits, allergies.

Conditions are drawn by their prevalence for the patient's age and sex at the end of the record
(the reference date, or death), so prevalence at the reference date follows the content's
targets; the diagnosis day then falls inside the record window, so the diagnostic visit, its
labs and its follow-ups are all part of the record.

>>> import random
>>> p = Profile()
>>> p.has("hypertension", 10)
False
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from synthetic.catalog import AllergyDefC, ConditionDef, Drug
from synthetic.dates import DAYS_PER_YEAR


@dataclass(slots=True)
class Diagnosis:
    """A chronic condition the patient has, its diagnosis day and the drugs it is treated with.

    >>> Diagnosis(_empty(), 100).until > 100
    True
    """

    condition: ConditionDef
    onset: int
    drugs: list[Drug] = field(default_factory=list)
    abatement: int | None = None
    recorded: int = -1
    """Day it entered the chart (the onset, or the first year of records for older conditions)."""

    def __post_init__(self) -> None:
        if self.recorded < 0:
            self.recorded = self.onset

    @property
    def until(self) -> int:
        """First day the condition is over (far in the future while it lasts).

        >>> Diagnosis(_empty(), 5, abatement=9).until
        9
        """
        return self.abatement if self.abatement is not None else 10**9


@dataclass(slots=True)
class Profile:
    """Conditions, habits and allergies of one patient.

    >>> Profile().diagnoses
    {}
    """

    diagnoses: dict[str, Diagnosis] = field(default_factory=dict)
    smoking: str | None = None
    alcohol_score: int | None = None
    adult_bmi: float = 24.0
    obese: bool = False
    growth_z: tuple[float, float, float] | None = None
    """Children's z-scores (height, BMI, head circumference) on the CDC 2000 tables."""
    undiagnosed: dict[str, int] = field(default_factory=dict)
    """Conditions the patient has but that were never diagnosed (key -> onset day)."""
    allergies: list[tuple[AllergyDefC, int]] = field(default_factory=list)

    def has(self, key: str, day: int) -> bool:
        """True when ``key`` is in the chart (recorded) on ``day`` and not yet over.

        >>> Profile().has("x", 0)
        False
        """
        d = self.diagnoses.get(key)
        return d is not None and d.recorded <= day < d.until

    def conflicts(self) -> frozenset[str]:
        """RxNorm codes the patient's allergies rule out.

        >>> Profile().conflicts()
        frozenset()
        """
        out: set[str] = set()
        for a, _ in self.allergies:
            out |= a.conflicts
        return frozenset(out)


def choose_drugs(rng: random.Random, cond: ConditionDef, avoid: frozenset[str]) -> list[Drug]:
    """Draw the drugs for ``cond``: one draw per alternative group, independent singles.

    Drugs the patient is allergic to are not prescribed.

    >>> choose_drugs(random.Random(0), _empty(), frozenset())
    []
    """
    out: list[Drug] = []
    for group in cond.drug_groups:
        x = rng.random()
        for d in group:
            x -= d.probability
            if x < 0:
                if d.key not in avoid:
                    out.append(d)
                break
    for d in cond.drug_singles:
        if rng.random() < d.probability and d.key not in avoid:
            out.append(d)
    return out


def _empty() -> ConditionDef:
    return ConditionDef(
        "x",
        "chronic",
        "I10",
        "X",
        {},
        [],
        None,
        (),
        0,
        99,
        (),
        (),
        None,
        {},
        {},
        (),
        (),
        0,
        (),
        (),
        (),
        (),
        (),
        "",
    )


def diagnosis_day(
    rng: random.Random, cond: ConditionDef, birth: int, start: int, end: int, after: int
) -> tuple[int, int] | None:
    """(onset, recorded) days of a condition present by ``end``; None when it cannot have begun.

    The onset is drawn over the condition's onset ages; a condition that began before the
    practice's records start is recorded in the first year of the record window (recordedDate
    later than the onset).

    >>> onset, recorded = diagnosis_day(random.Random(0), _empty(), 0, 100, 200, 0)
    >>> onset <= recorded and 100 <= recorded < 200
    True
    """
    lo = max(birth + int(cond.onset_min * DAYS_PER_YEAR), after)
    hi = min(birth + int(cond.onset_max * DAYS_PER_YEAR), end - 1)
    if lo > hi:
        return None  # too young for this condition at the end of the record
    onset = rng.randint(lo, hi)
    if onset >= start:
        return onset, onset
    recorded = start + rng.randrange(max(1, min(365, end - start)))
    return onset, max(recorded, after)


def draw_conditions(
    rng: random.Random,
    modules: list[ConditionDef],
    multipliers: dict[str, float],
    *,
    sex: str,
    birth: int,
    start: int,
    end: int,
    preset: dict[str, bool],
    avoid: frozenset[str],
) -> dict[str, Diagnosis]:
    """Chronic diagnoses of a patient whose record runs [start, end).

    ``preset`` fixes some conditions (obesity decided from the BMI); modules with ``requires``
    are drawn after their prerequisites and only when all are present, after their onset.

    >>> draw_conditions(random.Random(0), [], {}, sex="male", birth=0, start=10, end=20, preset={},
    ...                 avoid=frozenset())
    {}
    """
    age_end = (end - birth) / DAYS_PER_YEAR
    out: dict[str, Diagnosis] = {}
    pending = [m for m in modules if m.kind == "chronic"]
    for _ in range(3):  # dependencies are at most a couple of levels deep
        later: list[ConditionDef] = []
        for m in pending:
            if any(r not in out for r in m.requires):
                if all(r in out or any(p.key == r for p in pending) for r in m.requires):
                    later.append(m)
                continue
            if any(x in out for x in m.excludes):
                continue
            if m.key in preset:
                has = preset[m.key]
            else:
                has = rng.random() < m.rate(age_end, sex) * multipliers.get(m.key, 1.0)
            if not has or end - start < 2:
                continue
            after = max((out[r].onset for r in m.requires), default=birth)
            days = diagnosis_day(rng, m, birth, start, end, after)
            if days is None:
                continue
            onset, recorded = days
            if recorded >= end:
                continue
            out[m.key] = Diagnosis(m, onset, choose_drugs(rng, m, avoid), recorded=recorded)
        if not later:
            break
        pending = later
    return out


def draw_allergies(
    rng: random.Random, allergies: tuple[AllergyDefC, ...], *, birth: int, end: int
) -> list[tuple[AllergyDefC, int]]:
    """Allergies with their onset day (never after ``end`` nor before birth).

    >>> draw_allergies(random.Random(0), (), birth=0, end=10)
    []
    """
    out: list[tuple[AllergyDefC, int]] = []
    age_end = (end - birth) / DAYS_PER_YEAR
    for a in allergies:
        if rng.random() < a.prevalence and age_end >= a.onset_min:
            age = rng.uniform(a.onset_min, min(a.onset_max, age_end))
            out.append((a, min(end - 1, birth + int(age * DAYS_PER_YEAR))))
    return out


def weighted_choice(rng: random.Random, options: dict[str, float]) -> str:
    """Pick a key with probability proportional to its value.

    >>> weighted_choice(random.Random(0), {"a": 1.0})
    'a'
    """
    x = rng.random() * sum(options.values())
    last = ""
    for k, w in options.items():
        last = k
        x -= w
        if x < 0:
            return k
    return last


def band_for(bands: list[Any], age: float, sex: str) -> Any:
    """The first social-history band covering (age, sex) (whole-year upper bound), or None.

    >>> band_for([], 30, "male") is None
    True
    """
    for b in bands:
        if b.age_min <= age < b.age_max + 1 and b.sex in ("any", sex):
            return b
    return None
