"""The compiled clinical catalog the engine draws from.

Content (``synthetic.content``) describes conditions, drugs, labs, vaccines, fees, payers,
staff and population presets as validated data; :mod:`synthetic.compile` turns it into these
records once per content load, with every FHIR coding pre-built, so that the hot path only
references shared dicts and never looks a code up.

>>> d = Dist(5.4, 0.3, 4.0, 6.4, 1)
>>> import random
>>> 4.0 <= d.draw(random.Random(0)) <= 6.4
True
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any

Json = dict[str, Any]

NORMAL_STEPS = 4096
NORMALS: tuple[float, ...] = tuple(
    NormalDist().inv_cdf((i + 0.5) / NORMAL_STEPS) for i in range(NORMAL_STEPS)
)
"""Standard normal quantiles: indexing with a uniform draw is a fast normal draw."""

ROUNDER = 6755399441055744.0
"""1.5 * 2**52: ``(y + ROUNDER) - ROUNDER`` is ``y`` rounded to an integer (half to even), for
``abs(y) < 2**51``, in float arithmetic (no int object, no call)."""


SCALES: dict[int, float] = {d: float(10**d) for d in range(1, 16)}
"""``10.0 ** decimals`` by the decimals (1..15) :func:`round_to` may take its fast path for."""


def decimal_scale(decimals: int) -> float:
    """``10.0 ** decimals`` when :func:`round_to` may take its fast path for it, else 0.0.

    >>> decimal_scale(1), decimal_scale(0), decimal_scale(16)
    (10.0, 0.0, 0.0)
    """
    return SCALES.get(decimals, 0.0)


def round_to(x: float, decimals: int) -> float:
    """``round(x, decimals)``, the same float, mostly without the slow decimal-string path.

    ``round(x, 1)`` converts ``x`` to a decimal string and back (thousands of instructions);
    when ``y = x * 10**decimals`` is positive, not huge and clearly not near a half, the
    nearest integer ``n`` of ``y`` is the correctly rounded decimal, and ``n / 10**decimals``
    (one correctly rounded division) is the float ``round`` returns. Anything else (an int,
    zero or negative values, a near-tie, decimals out of 1..15) is left to ``round`` itself.

    >>> round_to(36.849999, 1), round_to(0.125, 2), round_to(-1.25, 1), round_to(7, 1)
    (36.8, 0.12, -1.2, 7)
    """
    p = SCALES.get(decimals)  # decimal_scale(decimals), without the call
    if p is not None and type(x) is float:
        y = x * p
        n = (y + ROUNDER) - ROUNDER
        # |y - n| < 0.49 with y < 1e13: n is the nearest integer of the exact x * 10**decimals
        if 0.0 < y < 1e13 and -0.49 < y - n < 0.49:
            return n / p
    return round(x, decimals)


@dataclass(frozen=True, slots=True)
class Dist:
    """A truncated normal distribution, rounded.

    >>> Dist(5.0, 0.0, 0.0, 9.0, 1).mean
    5.0
    """

    mean: float
    sd: float
    low: float
    high: float
    decimals: int

    def draw(self, rng: random.Random) -> float:
        """One value (clamped to [low, high], rounded; an int when decimals is 0).

        >>> Dist(10, 0, 0, 20, 0).draw(random.Random(0)), Dist(36.8, 0.0, 35.0, 38.0, 1).draw(None)
        (10, 36.8)
        """
        v = (
            self.mean + NORMALS[int(rng.random() * NORMAL_STEPS)] * self.sd
            if self.sd
            else self.mean
        )
        # min(max(v, low), high) without the builtins' argument parsing
        low = self.low
        if v < low:
            v = low
        high = self.high
        if v > high:
            v = high
        if self.decimals == 0:
            return round(v)  # int(round(v, 0)) without the slow decimal path
        return round_to(v, self.decimals)


@dataclass(frozen=True, slots=True)
class Drug:
    """A prescribable drug option with its pre-built FHIR pieces.

    >>> Drug("1", {}, [], {}, 30, 0, True, 1.0, None, {}, "x").controlled
    True
    """

    key: str
    code: Json
    dosage: list[Json]
    dispense: Json
    days_supply: int
    refills: int
    controlled: bool
    probability: float
    group: str | None
    indication: Json
    display: str
    age_min: float = 0.0
    age_max: float = 200.0

    def fits(self, age: float) -> bool:
        """Whether the drug may be given at ``age`` (years).

        >>> Drug("1", {}, [], {}, 30, 0, False, 1.0, None, {}, "x", 12.0).fits(5.0)
        False
        """
        return self.age_min <= age <= self.age_max + 1


@dataclass(frozen=True, slots=True)
class LabTestDef:
    """One result of an orderable lab panel.

    >>> LabTestDef("2345-7", {}, "mg/dL", False, {}, {}, {}, {}).coded
    False
    """

    loinc: str
    code: Json
    unit: str | None
    coded: bool
    dist: dict[str, Dist]  # by sex ("any", "male", "female")
    ref_range: dict[str, list[Json]]
    low: dict[str, float | None]
    high: dict[str, float | None]
    answers: tuple[tuple[Json, float], ...] = ()


@dataclass(frozen=True, slots=True)
class LabPanelDef:
    """An orderable panel (or single test).

    >>> LabPanelDef("a1c", {}, "A1c", {}, "tube", "venipuncture", 1, None, ()).tests
    ()
    """

    key: str
    code: Json
    display: str
    specimen_type: Json
    specimen_note: str
    collection: str
    turnaround_days: int
    procedure: str | None
    tests: tuple[LabTestDef, ...]


@dataclass(frozen=True, slots=True)
class ConditionDef:
    """A condition module, compiled.

    >>> from synthetic.content import load_content
    >>> from synthetic.compile import compile_catalog
    >>> compile_catalog(load_content()).conditions["hypertension"].kind
    'chronic'
    """

    key: str
    kind: str  # chronic | acute | pregnancy
    icd10: str
    display: str
    code: Json
    category: list[Json]
    security: tuple[Json, ...] | None
    bands: tuple[tuple[float, float, str, float], ...]
    onset_min: float
    onset_max: float
    requires: tuple[str, ...]
    excludes: tuple[str, ...]
    criterion: tuple[str, float] | None
    vitals_effects: dict[str, tuple[float, float | None, float | None, dict[str, float]]]
    lab_effects: dict[str, tuple[Dist | None, Dist | None, Json | None]]
    drug_groups: tuple[tuple[Drug, ...], ...]
    drug_singles: tuple[Drug, ...]
    follow_up_days: int
    diagnosis_labs: tuple[str, ...]
    follow_up_labs: tuple[str, ...]
    observations: tuple[str, ...]
    procedures: tuple[str, ...]
    visit_codes: tuple[str, ...]
    note_template: str
    reason: str = ""
    duration: tuple[int, int] = (3, 10)
    visit_probability: float = 1.0
    acute_labs: tuple[str, ...] = ()
    pregnancy: Any = None

    def rate(self, age: float, sex: str) -> float:
        """Rate of the first band covering (age, sex) (bands' upper bound is whole-year inclusive).

        >>> c = ConditionDef("x", "chronic", "I10", "X", {}, [], None, ((18, 44, "any", 0.2),), 0, 99,
        ...     (), (), None, {}, {}, (), (), 0, (), (), (), (), (), "")
        >>> c.rate(44.5, "male"), c.rate(10, "male")
        (0.2, 0.0)
        """
        for lo, hi, sex_, rate in self.bands:
            if lo <= age < hi + 1 and (sex_ == "any" or sex_ == sex):
                return rate
        return 0.0


@dataclass(frozen=True, slots=True)
class VitalDef:  # noqa: D101 - documented below
    """A vital sign (code, unit, limits, bands).

    >>> VitalDef("t", "8310-5", {}, "Cel", 1, 30, 45, 0, 120, ()).band(40, "male") is None
    True
    """

    key: str
    loinc: str
    code: Json
    unit: str
    decimals: int
    low: float
    high: float
    age_min: float
    age_max: float
    bands: tuple[tuple[float, float, str, float, float | None, float, float, float], ...]
    panel: str | None = None
    answers: dict[str, float] = field(default_factory=dict)

    def band(self, age: float, sex: str) -> tuple[float, float, float, float] | None:
        """(mean, sd, low, high) at ``age`` for ``sex``, None outside every band.

        >>> VitalDef("hr", "8867-4", {}, "/min", 0, 20, 250, 0, 120,
        ...          ((0, 120, "any", 75, None, 10, 40, 120),)).band(30, "f")
        (75.0, 10, 40, 120)
        """
        for lo, hi, sex_, mean, mean_max, sd, blo, bhi in self.bands:
            if lo <= age < hi and (sex_ == "any" or sex_ == sex):
                if mean_max is None or hi <= lo:
                    return float(mean), sd, blo, bhi
                frac = min(max((age - lo) / (hi - lo), 0.0), 1.0)
                return mean + (mean_max - mean) * frac, sd, blo, bhi
        return None


@dataclass(frozen=True, slots=True)
class VaccineDef:
    """A vaccine in the schedule, compiled.

    >>> from synthetic.content import load_content
    >>> from synthetic.compile import compile_catalog
    >>> any(v.repeat_days for v in compile_catalog(load_content()).vaccines)
    True
    """

    key: str
    code: Json
    display: str
    group: str
    doses: tuple[tuple[int, int, int], ...]  # (due age days, latest age days, min interval days)
    repeat_days: int | None
    start_days: int
    end_days: int
    sex: str
    coverage: float
    route: Json
    site: Json
    admin_code: str
    medicare_admin_code: str | None = None


@dataclass(frozen=True, slots=True)
class FeeDef:
    """A billable code and its price.

    >>> FeeDef("procedure|VENIP", {}, 25.0).price
    25.0
    """

    ref: str
    code: Json
    price: float


@dataclass(frozen=True, slots=True)
class PayerDef:
    """A payer (or self-pay).

    >>> from synthetic.content import load_content
    >>> from synthetic.compile import compile_catalog
    >>> {p.type for p in compile_catalog(load_content()).payers} >= {"medicare", "self-pay"}
    True
    """

    key: str
    name: str
    type: str
    type_code: Json
    share: float
    age_min: float
    age_max: float
    allowed_ratio: float
    lag_days: int
    copay: float
    deductible_share: float
    prefix: str


@dataclass(frozen=True, slots=True)
class AllergyDefC:
    """An allergy, compiled.

    >>> AllergyDefC("latex", {}, "environment", "allergy", 0.01, 0, 60, (), "low").conflicts
    frozenset()
    """

    key: str
    code: Json
    category: str
    type: str
    prevalence: float
    onset_min: float
    onset_max: float
    reactions: tuple[tuple[Json, float, str], ...]
    criticality: str
    conflicts: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class PresetDef:
    """A population preset.

    >>> from synthetic.content import load_content
    >>> from synthetic.compile import compile_catalog
    >>> compile_catalog(load_content()).presets["ob-gyn"].female_share
    1.0
    """

    key: str
    display: str
    specialty: str
    ages: tuple[tuple[int, int, float], ...]
    female_share: float
    modules: tuple[str, ...]
    multipliers: dict[str, float]
    observations: tuple[str, ...]
    visit_procedures: tuple[str, ...]
    wellness: bool
    immunizations: bool
    visit_types: tuple[str, ...] = ()


@dataclass(slots=True)
class Catalog:
    """Everything the engine needs, compiled from one content load.

    >>> from synthetic.content import load_content
    >>> from synthetic.compile import compile_catalog
    >>> "a1c" in compile_catalog(load_content()).labs
    True
    """

    conditions: dict[str, ConditionDef]
    labs: dict[str, LabPanelDef]
    vitals: dict[str, VitalDef]
    vaccines: tuple[VaccineDef, ...]
    fees: dict[str, FeeDef]
    payers: tuple[PayerDef, ...]
    allergies: tuple[AllergyDefC, ...]
    presets: dict[str, PresetDef]
    staff: tuple[Any, ...]
    practice: Any
    appointment_types: dict[str, Any]
    social: Any
    targets: tuple[Any, ...]
    observations: dict[str, VitalDef] = field(default_factory=dict)
    observation_codes: dict[str, Json] = field(default_factory=dict)
    snomed: dict[str, Json] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    specialists: tuple[Any, ...] = ()
    former: tuple[Any, ...] = ()
    rules: Any = None
