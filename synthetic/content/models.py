"""Pydantic models of the clinical content (one class per kind of content file).

Every model is frozen and forbids unknown keys, so a typo in a TOML file is an error that names
the key instead of a silently ignored setting. Ages are in years (fractions allowed, so 0.5 is
six months) unless a field name says otherwise. Code references that may point at more than one
code set are written ``"<set key>|<code>"`` (for example ``"procedure|OV-EST-3"`` or
``"hcpcs|J1885"``); fields whose code set is fixed hold the bare code.

>>> band = PrevalenceBand(age_min=18, age_max=44, sex="any", rate=0.2)
>>> band.covers(30, "female")
True
"""

from __future__ import annotations

import string
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from synthetic.content.clinical_ma import ClinicalMA
from synthetic.content.rules import Rules

Sex = Literal["any", "male", "female"]
"""Who a band applies to; ``any`` matches both sexes."""

Schedule = Literal["II", "III", "IV", "V"]
"""US DEA controlled-substance schedule of a medication (None when not controlled)."""

REF_SETS = ("procedure", "hcpcs")
"""Code sets a billable ``"<set>|<code>"`` reference may name."""

NOTE_FIELDS: dict[str, str] = {
    "patient_name": "patient's full name",
    "age": "age in whole years at the visit",
    "sex": "'male' or 'female'",
    "date": "visit date, ISO",
    "clinician": "the treating clinician's display name",
    "reason": "visit reason text",
    "medications": "current medications of this condition, comma separated (or 'no medication')",
    "labs": "labs ordered at the visit, comma separated (or 'none')",
    "control": "'well controlled' or 'not at goal', from the visit's values",
    "follow_up_months": "the module's follow-up cadence",
    "duration_days": "days since the symptoms began (acute)",
    "systolic": "systolic BP, mmHg",
    "diastolic": "diastolic BP, mmHg",
    "heart_rate": "heart rate, /min",
    "respiratory_rate": "respiratory rate, /min",
    "temperature": "body temperature, Cel",
    "spo2": "oxygen saturation, %",
    "weight": "body weight, kg",
    "height": "body height, cm",
    "bmi": "BMI, kg/m2",
    "a1c": "latest hemoglobin A1c, %",
    "inr": "latest INR",
    "pain_score": "pain 0-10",
    "phq9": "PHQ-9 total score",
    "gad7": "GAD-7 total score",
    "gestational_weeks": "gestational age in weeks",
    "fundal_height": "fundal height, cm",
    "fetal_heart_rate": "fetal heart rate, /min",
    "edd": "estimated delivery date, ISO",
    "visual_acuity_right": "Snellen fraction, right eye",
    "visual_acuity_left": "Snellen fraction, left eye",
    "iop_right": "intraocular pressure right eye, mmHg",
    "iop_left": "intraocular pressure left eye, mmHg",
}
"""Placeholders a condition's ``note_template`` may use (the generator fills every one)."""


def template_fields(template: str) -> list[str]:
    """Names of the ``{placeholders}`` in a note template, in order.

    >>> template_fields("BP {systolic}/{diastolic} mmHg")
    ['systolic', 'diastolic']
    """
    return [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]


class Strict(BaseModel):
    """Base of every content model: frozen, unknown keys rejected.

    >>> Strict.model_config["extra"]
    'forbid'
    """

    model_config = ConfigDict(extra="forbid", frozen=True)


def split_ref(ref: str) -> tuple[str, str]:
    """Split a ``"<set>|<code>"`` reference into its code-set key and code.

    >>> split_ref("hcpcs|J1885")
    ('hcpcs', 'J1885')
    """
    key, sep, code = ref.partition("|")
    if not sep or not key or not code:
        raise ValueError(f"expected '<code set>|<code>', found {ref!r}")
    return key, code


# --------------------------------------------------------------------------- code sets


class CodeSet(Strict):
    """One curated code list (a CSV file under ``codes/``).

    >>> cs = CodeSet(key="ucum", system="http://unitsofmeasure.org", version="2.2",
    ...              licence="UCUM terms of use", codes={"cm": "centimeter"})
    >>> "cm" in cs, cs.display("cm"), len(cs)
    (True, 'centimeter', 1)
    >>> cs.coding("cm")
    {'system': 'http://unitsofmeasure.org', 'code': 'cm', 'display': 'centimeter'}
    """

    key: str = Field(description="short name used in references: loinc, icd10cm, rxnorm, ...")
    system: str = Field(description="the FHIR code system URI")
    version: str = Field(description="release of the code system the displays were taken from")
    licence: str = Field(description="licence of the codes (the full notice is in LICENSES.md)")
    codes: dict[str, str] = Field(description="code -> display, in file order")
    attributes: dict[str, dict[str, str]] = Field(
        default_factory=dict,
        description="code -> extra CSV columns (for example RxNorm 'schedule'), when the file has any",
    )

    def display(self, code: str) -> str:
        """Display text of ``code``; raises KeyError when the code is not in the set.

        >>> CodeSet(key="x", system="s", version="1", licence="l", codes={"a": "A"}).display("a")
        'A'
        """
        return self.codes[code]

    def coding(self, code: str) -> dict[str, str]:
        """A FHIR Coding dict for ``code`` (KeyError when absent).

        >>> CodeSet(key="x", system="s", version="1", licence="l", codes={"a": "A"}).coding("a")["system"]
        's'
        """
        return {"system": self.system, "code": code, "display": self.codes[code]}

    def __contains__(self, code: object) -> bool:
        return code in self.codes

    def __len__(self) -> int:
        return len(self.codes)


# --------------------------------------------------------------------------- shared pieces


class AgeRange(Strict):
    """An inclusive age range in years.

    >>> AgeRange(min=18, max=65).contains(40)
    True
    """

    min: float = Field(ge=0, le=120)
    max: float = Field(ge=0, le=120)

    @model_validator(mode="after")
    def _ordered(self) -> AgeRange:
        if self.max < self.min:
            raise ValueError(f"expected max >= min, found min={self.min} max={self.max}")
        return self

    def contains(self, age: float) -> bool:
        """Whether ``age`` (years) lies in the range.

        >>> AgeRange(min=0, max=2).contains(3)
        False
        """
        return self.min <= age <= self.max


class PrevalenceBand(Strict):
    """Rate of a condition in one age band and sex.

    For chronic conditions ``rate`` is the point prevalence at the reference date (0..1); for
    acute conditions it is the expected number of episodes per person per year; for pregnancy it
    is the probability of being pregnant at the reference date.

    >>> PrevalenceBand(age_min=65, age_max=120, sex="male", rate=0.7).covers(70, "female")
    False
    """

    age_min: float = Field(ge=0, le=120)
    age_max: float = Field(ge=0, le=120)
    sex: Sex = "any"
    rate: float = Field(ge=0, le=20)

    @model_validator(mode="after")
    def _ordered(self) -> PrevalenceBand:
        if self.age_max < self.age_min:
            raise ValueError(f"expected age_max >= age_min, found {self.age_min}..{self.age_max}")
        return self

    def covers(self, age: float, sex: str) -> bool:
        """Whether the band applies to a person of ``age`` years and ``sex``.

        >>> PrevalenceBand(age_min=0, age_max=17, rate=0.1).covers(17.5, "male")
        True
        """
        # bands are written with whole-year bounds ("18-44"), so age 44.9 still belongs to it
        return self.age_min <= age < self.age_max + 1 and self.sex in ("any", sex)


class Distribution(Strict):
    """A normal distribution truncated to [low, high], rounded to ``decimals``.

    >>> Distribution(mean=7.8, sd=1.0, low=6.5, high=12, decimals=1).clamp(5.0)
    6.5
    """

    mean: float
    sd: float = Field(ge=0)
    low: float
    high: float
    decimals: int = Field(default=1, ge=0, le=4)

    @model_validator(mode="after")
    def _ordered(self) -> Distribution:
        if self.high < self.low:
            raise ValueError(f"expected high >= low, found low={self.low} high={self.high}")
        return self

    def clamp(self, value: float) -> float:
        """``value`` limited to [low, high] and rounded to ``decimals``.

        >>> Distribution(mean=0, sd=1, low=0, high=10, decimals=0).clamp(12.4)
        10.0
        """
        return round(min(max(value, self.low), self.high), self.decimals)


# --------------------------------------------------------------------------- conditions


class Criterion(Strict):
    """A measurement that defines a condition (A1c >= 6.5 % for diabetes, BMI >= 30 for obesity).

    The generator keeps people *with* the condition at or above ``at_least`` at diagnosis and
    people *without* it below, so observations and problem lists agree.

    >>> Criterion(loinc="4548-4", at_least=6.5).at_least
    6.5
    """

    loinc: str
    at_least: float
    age_min: float = Field(default=0, description="the criterion applies from this age (years)")


class VitalEffect(Strict):
    """How a condition moves one vital sign: add ``shift`` to the age/sex mean, then clamp.

    >>> VitalEffect(loinc="8480-6", shift=18).shift
    18.0
    """

    loinc: str
    shift: float = 0.0
    floor: float | None = Field(default=None, description="condition-specific minimum")
    ceiling: float | None = Field(default=None, description="condition-specific maximum")
    answers: dict[str, float] = Field(
        default_factory=dict, description="string observations: replaces the answer distribution"
    )

    @model_validator(mode="after")
    def _answers(self) -> VitalEffect:
        if self.answers and abs(sum(self.answers.values()) - 1.0) > 0.011:
            raise ValueError("expected answers probabilities to sum to 1")
        return self


class LabEffect(Strict):
    """Lab values of a person with the condition, at diagnosis and at follow-up visits.

    >>> d = Distribution(mean=8, sd=1, low=6.5, high=12)
    >>> LabEffect(loinc="4548-4", at_diagnosis=d, follow_up=d).loinc
    '4548-4'
    """

    loinc: str
    at_diagnosis: Distribution | None = Field(default=None, description="quantity tests")
    follow_up: Distribution | None = Field(default=None, description="None: same as at diagnosis")
    answer: str | None = Field(
        default=None, description="coded tests: SNOMED answer forced (e.g. Positive)"
    )

    @model_validator(mode="after")
    def _one_kind(self) -> LabEffect:
        if (self.at_diagnosis is None) == (self.answer is None):
            raise ValueError("expected exactly one of at_diagnosis (quantity) or answer (coded)")
        return self


class Dosage(Strict):
    """Structured dose: ``value`` ``unit`` (UCUM) by ``route``, ``frequency_per_day`` times a day.

    ``as_needed`` marks PRN use (``frequency_per_day`` is then the maximum).

    >>> Dosage(value=10, unit="mg", route="oral", frequency_per_day=1).frequency_per_day
    1.0
    """

    value: float = Field(gt=0)
    unit: str = Field(description="UCUM code, must be in codes/ucum.csv")
    route: Literal[
        "oral",
        "inhaled",
        "subcutaneous",
        "intramuscular",
        "topical",
        "ophthalmic",
        "sublingual",
        "nasal",
        "vaginal",
    ]
    frequency_per_day: float = Field(gt=0, le=24)
    as_needed: bool = False


class MedicationOption(Strict):
    """One medication a condition may be treated with.

    ``probability`` is the chance a patient with the condition is on this drug. Options that
    share a ``group`` are alternatives (one draw per group picks at most one), so their
    probabilities must add up to at most 1; options without a group are drawn independently.

    >>> opt = MedicationOption(rxnorm="314076", display="lisinopril 10 MG Oral Tablet",
    ...     dose_text="1 tablet by mouth once daily",
    ...     dosage=Dosage(value=1, unit="{tbl}", route="oral", frequency_per_day=1),
    ...     days_supply=90, refills=3, probability=0.3, group="first_line", indication="I10")
    >>> opt.schedule is None
    True
    """

    rxnorm: str = Field(description="RxNorm SCD/SBD code, must be in codes/rxnorm.csv")
    display: str = Field(description="must equal the RxNorm display in codes/rxnorm.csv")
    dose_text: str = Field(description="patient-facing sig")
    dosage: Dosage
    days_supply: int = Field(ge=1, le=365)
    refills: int = Field(ge=0, le=11, description="number of repeats allowed (0 for acute courses)")
    probability: float = Field(ge=0, le=1)
    group: str | None = None
    schedule: Schedule | None = Field(
        default=None, description="DEA schedule, None if not controlled"
    )
    indication: str = Field(description="ICD-10-CM code the drug is prescribed for (reasonCode)")
    age_min: float = Field(default=0, ge=0, description="never given below this age (years)")
    age_max: float = Field(default=130, ge=0, description="never given above this age (years)")

    @model_validator(mode="after")
    def _controlled(self) -> MedicationOption:
        # 21 CFR 1306.12: a Schedule II prescription may not be refilled
        if self.schedule == "II" and self.refills != 0:
            raise ValueError(f"expected refills = 0 for a Schedule II drug, found {self.refills}")
        if self.age_max < self.age_min:
            raise ValueError("expected age_max >= age_min")
        return self


class AcuteDetails(Strict):
    """Extra facts for an acute condition (an episode with a visit).

    >>> AcuteDetails(reason="sore throat", duration_days=AgeRange(min=3, max=10)).reason
    'sore throat'
    """

    reason: str = Field(
        description="patient's words for the visit reason (Appointment/Encounter reason text)"
    )
    reason_snomed: str | None = Field(
        default=None, description="SNOMED finding for the reason, if any"
    )
    duration_days: AgeRange = Field(description="typical episode length in days (min..max)")
    visit_probability: float = Field(
        default=1.0, ge=0, le=1, description="share of episodes seen at the practice"
    )
    labs: list[str] = Field(
        default_factory=list, description="lab panel ids done at the visit (e.g. rapid strep)"
    )


class PregnancyDetails(Strict):
    """Prenatal care schedule.

    >>> PregnancyDetails(visit_weeks=[8, 12, 16], fundal_height_from_week=20).visit_weeks[0]
    8
    """

    visit_weeks: list[int] = Field(description="gestational weeks of prenatal visits")
    fundal_height_from_week: int = Field(
        default=20, description="fundal height (cm ~ weeks) measured from this week on"
    )
    fundal_height_loinc: str = "11881-0"
    gestational_age_loinc: str = "49051-6"
    fetal_heart_rate_loinc: str = "55283-6"
    labs_by_week: dict[str, list[str]] = Field(
        default_factory=dict, description="gestational week (as text) -> lab panel ids"
    )
    duration_weeks: int = Field(default=40, ge=20, le=44)


class ConditionModule(Strict):
    """A condition as data: who gets it, how it shows in vitals and labs, and how it is treated.

    Semantics the generator follows: a module with ``requires`` is only given to patients who
    have every required module, and its rates are then *conditional* on them (share of
    diabetics with neuropathy); ``excludes`` rules it out. A population's
    ``condition_multipliers`` scale the rates. Medication options that conflict with a
    patient's allergy (``AllergyDef.conflicts_with_rxnorm``) or are outside their age limits are
    skipped. Modules with ``general = false`` are only used by presets that list them.

    >>> m = ConditionModule(id="x", display="X", kind="chronic", icd10="I10",
    ...     prevalence=[PrevalenceBand(age_min=18, age_max=120, rate=0.1)],
    ...     onset_age=AgeRange(min=18, max=90), note_template="{patient_name} seen.")
    >>> m.rate(40, "male"), m.rate(10, "male")
    (0.1, 0.0)
    """

    id: str
    display: str
    kind: Literal["chronic", "acute", "pregnancy"]
    icd10: str = Field(description="ICD-10-CM code, must be in codes/icd10cm.csv")
    snomed: str | None = Field(default=None, description="SNOMED CT (IPS free set) code, optional")
    category: Literal["problem-list-item", "encounter-diagnosis"] = "problem-list-item"
    general: bool = Field(
        default=True,
        description="used by presets that do not list their modules (false: specialty only)",
    )
    sensitivity: list[str] = Field(
        default_factory=list, description="v3-ActCode sensitivity codes (SUD, HIV, MH, PSY)"
    )
    prevalence: list[PrevalenceBand]
    onset_age: AgeRange
    requires: list[str] = Field(
        default_factory=list, description="module ids the patient must already have"
    )
    excludes: list[str] = Field(
        default_factory=list, description="module ids that rule this one out"
    )
    criterion: Criterion | None = None
    vitals_effects: list[VitalEffect] = Field(default_factory=list)
    lab_effects: list[LabEffect] = Field(default_factory=list)
    medications: list[MedicationOption] = Field(default_factory=list)
    follow_up_months: int | None = Field(
        default=None, ge=1, le=24, description="chronic follow-up visit cadence"
    )
    diagnosis_labs: list[str] = Field(
        default_factory=list, description="lab panel ids ordered at diagnosis"
    )
    follow_up_labs: list[str] = Field(
        default_factory=list, description="lab panel ids ordered at follow-up"
    )
    observations: list[str] = Field(
        default_factory=list, description="extra LOINC observations at visits (PHQ-9, IOP...)"
    )
    procedures: list[str] = Field(
        default_factory=list, description="'procedure|code' or 'hcpcs|code' done at visits"
    )
    visit_codes: list[str] = Field(
        default_factory=list, description="billing codes of the visit ('procedure|OV-EST-3')"
    )
    note_template: str = Field(
        description="visit note text with {placeholders} named in NOTE_FIELDS"
    )
    acute: AcuteDetails | None = None
    pregnancy: PregnancyDetails | None = None

    @field_validator("prevalence")
    @classmethod
    def _disjoint_bands(cls, bands: list[PrevalenceBand]) -> list[PrevalenceBand]:
        # rate() takes the first covering band, so an overlap would silently hide a band
        for i, a in enumerate(bands):
            for b in bands[i + 1 :]:
                same_sex = "any" in (a.sex, b.sex) or a.sex == b.sex
                if same_sex and a.age_min < b.age_max + 1 and b.age_min < a.age_max + 1:
                    raise ValueError(
                        f"expected non-overlapping bands, found {a.age_min}-{a.age_max} ({a.sex}) "
                        f"and {b.age_min}-{b.age_max} ({b.sex})"
                    )
        return bands

    @field_validator("note_template")
    @classmethod
    def _known_placeholders(cls, template: str) -> str:
        try:
            names = template_fields(template)
        except ValueError as exc:
            raise ValueError(f"expected balanced {{placeholders}}: {exc}") from None
        unknown = sorted({n for n in names if n not in NOTE_FIELDS})
        if unknown:
            raise ValueError(f"expected placeholders named in NOTE_FIELDS, found {unknown}")
        return template

    @field_validator("medications")
    @classmethod
    def _group_totals(cls, medications: list[MedicationOption]) -> list[MedicationOption]:
        totals: dict[str, float] = {}
        for med in medications:
            if med.group:
                totals[med.group] = totals.get(med.group, 0.0) + med.probability
        for group, total in totals.items():
            if total > 1.0 + 1e-9:
                raise ValueError(
                    f"expected probabilities of medication group {group!r} to sum to <= 1, found {total:.3f}"
                )
        return medications

    @field_validator("procedures", "visit_codes")
    @classmethod
    def _billable_refs(cls, refs: list[str]) -> list[str]:
        for ref in refs:
            key, _ = split_ref(ref)
            if key not in REF_SETS:
                raise ValueError(f"expected a reference to one of {REF_SETS}, found {ref!r}")
        return refs

    @model_validator(mode="after")
    def _kind_details(self) -> ConditionModule:
        if self.kind == "acute" and self.acute is None:
            raise ValueError("expected an [acute] table for kind = 'acute'")
        if self.kind == "pregnancy" and self.pregnancy is None:
            raise ValueError("expected a [pregnancy] table for kind = 'pregnancy'")
        return self

    def rate(self, age: float, sex: str) -> float:
        """The rate of the first prevalence band covering (age, sex); 0 when none does.

        >>> ConditionModule(id="p", display="P", kind="chronic", icd10="I10",
        ...     prevalence=[PrevalenceBand(age_min=0, age_max=5, sex="female", rate=0.5)],
        ...     onset_age=AgeRange(min=0, max=5), note_template="").rate(3, "female")
        0.5
        """
        for band in self.prevalence:
            if band.covers(age, sex):
                return band.rate
        return 0.0


# --------------------------------------------------------------------------- allergies


class Reaction(Strict):
    """A reaction manifestation (SNOMED) and how likely it is when the allergy is recorded.

    >>> Reaction(snomed="126485001", display="Urticaria", probability=0.5, severity="mild").severity
    'mild'
    """

    snomed: str
    display: str
    probability: float = Field(ge=0, le=1)
    severity: Literal["mild", "moderate", "severe"] = "mild"


class AllergyDef(Strict):
    """An allergy or intolerance the generator may give a patient.

    >>> a = AllergyDef(id="latex", display="Latex", category="environment", snomed="111088007",
    ...     prevalence=0.01, reactions=[], criticality="low")
    >>> a.type
    'allergy'
    """

    id: str
    display: str
    category: Literal["food", "medication", "environment", "biologic"]
    snomed: str = Field(description="substance code, SNOMED CT (IPS free set)")
    rxnorm: str | None = Field(
        default=None,
        description="RxNorm ingredient-level code when a drug class is meant, optional",
    )
    type: Literal["allergy", "intolerance"] = "allergy"
    prevalence: float = Field(
        ge=0, le=1, description="share of patients with this allergy recorded"
    )
    onset_age: AgeRange = Field(default_factory=lambda: AgeRange(min=0, max=60))
    reactions: list[Reaction]
    criticality: Literal["low", "high", "unable-to-assess"]
    conflicts_with_rxnorm: list[str] = Field(
        default_factory=list, description="RxNorm products this allergy contraindicates"
    )
    icd10: str | None = Field(default=None, description="Z88/Z91 allergy-status code, optional")


class DrugClass(Strict):
    """A drug class for the EHR's drug-allergy check (``drug_classes.toml``).

    ``classes`` names the ``rules.toml`` ``[drug_classes]`` that make up the class (the one
    class-membership table); the loader fills ``rxnorm`` with their products. ``allergens``
    are the AllergyIntolerance substance codes (SNOMED CT) that mean an allergy to the class;
    ``cross_reactive_with`` lists classes whose allergy also alerts on this one.

    >>> DrugClass(id="x", display="X", rxnorm=["1"], source="s").cross_reactive_with
    []
    """

    id: str
    display: str
    classes: list[str] = Field(
        default_factory=list, description="rules.toml [drug_classes] keys making up the class"
    )
    rxnorm: list[str] = Field(
        default_factory=list, description="RxNorm products in the class (filled from classes)"
    )
    allergens: list[str] = Field(default_factory=list, description="SNOMED CT allergy substances")
    cross_reactive_with: list[str] = Field(default_factory=list)
    source: str = Field(description="where the class and its cross-reactivity come from")


# --------------------------------------------------------------------------- vitals


class VitalBand(Strict):
    """Normal distribution of a vital sign in one age band and sex.

    When ``mean_at_max`` is given the mean moves linearly from ``mean`` at ``age_min`` to it at
    ``age_max`` (growth curves).

    >>> VitalBand(age_min=2, age_max=12, mean=86, mean_at_max=149, sd=5).mean_at(7)
    117.5
    """

    age_min: float = Field(ge=0, le=130)
    age_max: float = Field(ge=0, le=130)
    sex: Sex = "any"
    mean: float
    mean_at_max: float | None = None
    sd: float = Field(ge=0)
    low: float | None = Field(
        default=None, description="truncate draws below this (e.g. adult height 140 cm)"
    )
    high: float | None = Field(
        default=None, description="truncate draws above this (e.g. SpO2 100 %)"
    )

    def covers(self, age: float, sex: str) -> bool:
        """Whether the band applies (age_max exclusive so bands can share bounds).

        >>> VitalBand(age_min=0, age_max=2, mean=1, sd=0).covers(2, "male")
        False
        """
        return self.age_min <= age < self.age_max and self.sex in ("any", sex)

    def mean_at(self, age: float) -> float:
        """Mean at ``age``, interpolated when ``mean_at_max`` is set.

        >>> VitalBand(age_min=0, age_max=1, mean=50, sd=1).mean_at(0.5)
        50.0
        """
        if self.mean_at_max is None or self.age_max <= self.age_min:
            return float(self.mean)
        frac = (age - self.age_min) / (self.age_max - self.age_min)
        return self.mean + (self.mean_at_max - self.mean) * min(max(frac, 0.0), 1.0)


class VitalSign(Strict):
    """One vital sign (or other measured observation): code, unit, plausibility limits, distributions.

    ``plausible_low``/``plausible_high`` are hard limits shared with the sandbox's validation: a
    value outside them is impossible (data-entry error), not merely abnormal. Observations with
    ``value_type = "string"`` (a Snellen fraction such as ``20/40``) draw from ``answers``
    instead of ``bands``; their ``unit`` is empty.

    >>> v = VitalSign(id="hr", loinc="8867-4", display="Heart rate", unit="/min", decimals=0,
    ...     plausible_low=20, plausible_high=250, bands=[VitalBand(age_min=0, age_max=120, mean=75, sd=10)])
    >>> v.band_for(30, "female").mean
    75.0
    """

    id: str
    loinc: str
    display: str
    value_type: Literal["quantity", "string"] = "quantity"
    unit: str = Field(default="", description="UCUM code (empty for string observations)")
    decimals: int = Field(default=0, ge=0, le=3)
    plausible_low: float = 0
    plausible_high: float = 1
    answers: dict[str, float] = Field(
        default_factory=dict, description="string observations: value -> probability (sum 1)"
    )
    panel: str | None = Field(
        default=None, description="LOINC of the panel this is a component of (85354-9 for BP)"
    )
    age_min: float = Field(default=0, description="measured from this age on (years)")
    age_max: float = Field(default=120, description="measured up to this age (years)")
    bands: list[VitalBand] = Field(default_factory=list)

    @model_validator(mode="after")
    def _limits(self) -> VitalSign:
        if self.value_type == "string":
            total = sum(self.answers.values())
            if abs(total - 1.0) > 0.011:
                raise ValueError(f"expected answers probabilities to sum to 1, found {total:.3f}")
            return self
        if not self.unit or not self.bands:
            raise ValueError("expected unit and bands for a quantity observation")
        if self.plausible_high <= self.plausible_low:
            raise ValueError("expected plausible_high > plausible_low")
        return self

    def band_for(self, age: float, sex: str) -> VitalBand | None:
        """The first band covering (age, sex), or None.

        >>> VitalSign(id="x", loinc="1", display="x", unit="cm", decimals=0, plausible_low=0,
        ...     plausible_high=1, bands=[VitalBand(age_min=18, age_max=99, mean=1, sd=0)]
        ...     ).band_for(5, "male") is None
        True
        """
        for band in self.bands:
            if band.covers(age, sex):
                return band
        return None


# --------------------------------------------------------------------------- labs


class SexValues(Strict):
    """Sex-specific reference range and distribution overriding a test's defaults.

    >>> SexValues(low=12.0, high=15.5, mean=13.6, sd=1.0).high
    15.5
    """

    low: float
    high: float
    mean: float
    sd: float = Field(ge=0)


class Answer(Strict):
    """A coded answer of a qualitative test and its probability in people without disease.

    >>> Answer(snomed="260385009", display="Negative", probability=0.95).display
    'Negative'
    """

    snomed: str
    display: str
    probability: float = Field(ge=0, le=1)


class LabTest(Strict):
    """One lab test (an Observation in a panel).

    Quantitative tests have ``unit``, a reference range and a normal distribution; qualitative
    tests (``value_type = "coded"``) have ``answers`` instead.

    >>> LabTest(loinc="2345-7", display="Glucose", unit="mg/dL", low=70, high=99, mean=90, sd=9,
    ...         decimals=0).value_type
    'quantity'
    """

    loinc: str
    display: str
    value_type: Literal["quantity", "coded"] = "quantity"
    unit: str | None = Field(default=None, description="UCUM code for quantity tests")
    low: float | None = Field(default=None, description="reference range low")
    high: float | None = Field(default=None, description="reference range high")
    mean: float | None = None
    sd: float | None = Field(default=None, ge=0)
    decimals: int = Field(default=1, ge=0, le=4)
    plausible_low: float | None = Field(default=None, description="hard limit (impossible below)")
    plausible_high: float | None = Field(default=None, description="hard limit (impossible above)")
    by_sex: dict[Literal["male", "female"], SexValues] = Field(default_factory=dict)
    answers: list[Answer] = Field(default_factory=list)

    @model_validator(mode="after")
    def _shape(self) -> LabTest:
        if self.value_type == "quantity":
            missing = [n for n in ("unit", "mean", "sd") if getattr(self, n) is None]
            if missing:
                raise ValueError(f"expected {', '.join(missing)} for a quantity test")
        elif not self.answers:
            raise ValueError("expected answers for a coded test")
        return self


class SpecimenDef(Strict):
    """Specimen type (HL7 v2-0487 code) and collection container.

    >>> SpecimenDef(code="SER", display="Serum", tube="gold-top SST").code
    'SER'
    """

    code: str = Field(description="http://terminology.hl7.org/CodeSystem/v2-0487 code")
    display: str
    tube: str = Field(description="collection container, readable (e.g. 'lavender-top EDTA')")
    collection: Literal["venipuncture", "fingerstick", "clean-catch", "swab"] = "venipuncture"


class LabPanel(Strict):
    """An orderable lab panel (or single test) with its tests.

    >>> p = LabPanel(id="a1c", loinc="4548-4", display="Hemoglobin A1c",
    ...     specimen=SpecimenDef(code="BLD", display="Whole blood", tube="lavender"), tests=[])
    >>> p.fasting
    False
    """

    id: str
    loinc: str = Field(description="LOINC of the order/panel (the test itself for single tests)")
    display: str
    specimen: SpecimenDef
    fasting: bool = False
    turnaround_days: int = Field(default=1, ge=0, le=30)
    procedure: str | None = Field(
        default="procedure|VENIP", description="collection procedure billed, if any"
    )
    tests: list[LabTest]


# --------------------------------------------------------------------------- immunizations


class DoseDef(Strict):
    """One dose of a childhood series.

    >>> DoseDef(age_months=2, min_age_days=42, min_interval_days=28).age_months
    2.0
    """

    age_months: float = Field(ge=0, description="recommended age")
    latest_months: float | None = Field(default=None, description="end of the recommended window")
    min_age_days: int = Field(default=0, ge=0)
    min_interval_days: int = Field(
        default=0, ge=0, description="minimum interval after the previous dose"
    )


class VaccineSchedule(Strict):
    """A vaccine in the CDC schedule: a childhood series and/or a recurring adult dose.

    ``coverage`` is the share of eligible patients who receive each due dose (the rest are gaps).

    >>> VaccineSchedule(id="flu", display="Influenza", cvx="140", group="adult",
    ...     repeat_every_years=1, start_age_years=0.5, coverage=0.5).doses
    []
    """

    id: str
    display: str
    cvx: str = Field(description="CVX code given (codes/cvx.csv)")
    group: Literal["child", "adult", "both"]
    doses: list[DoseDef] = Field(default_factory=list)
    repeat_every_years: float | None = Field(
        default=None, description="recurring interval (influenza 1, Td/Tdap 10)"
    )
    start_age_years: float | None = None
    end_age_years: float | None = None
    sex: Sex = "any"
    coverage: float = Field(ge=0, le=1)
    route: Literal["intramuscular", "subcutaneous", "oral", "nasal"] = "intramuscular"
    site: str = "left deltoid"
    admin_code: str = Field(
        default="procedure|IMM-ADMIN", description="billing code for administration"
    )
    medicare_admin_code: str | None = Field(
        default=None, description="billed instead for Medicare patients (HCPCS G0008/G0009/G0010)"
    )
    source: str = Field(default="", description="where the coverage figure comes from")


# --------------------------------------------------------------------------- billing and practice


class Fee(Strict):
    """Price of a billable code.

    >>> Fee(code="procedure|OV-EST-3", display="Office visit", price="112.50").price
    Decimal('112.50')
    """

    code: str = Field(description="'procedure|<code>' or 'hcpcs|<code>'")
    display: str
    price: Decimal = Field(ge=0, decimal_places=2)


class Payer(Strict):
    """An insurer (or self-pay) with its adjudication behaviour.

    >>> Payer(id="self", name="Self-pay", type="self-pay", share=0.1, allowed_ratio=1.0,
    ...       payment_lag_days=0, copay="0.00", deductible_share=0).type
    'self-pay'
    """

    id: str
    name: str
    type: Literal["medicare", "medicaid", "commercial", "self-pay"]
    share: float = Field(ge=0, le=1, description="share of patients covered (within the age rule)")
    age_min: float = 0
    age_max: float = 120
    allowed_ratio: float = Field(gt=0, le=1, description="allowed amount / billed charge")
    payment_lag_days: int = Field(ge=0, le=365)
    copay: Decimal = Field(ge=0, decimal_places=2)
    deductible_share: float = Field(
        ge=0, le=1, description="share of allowed amount applied to deductible"
    )
    identifier_prefix: str = ""


class AppointmentType(Strict):
    """A bookable appointment type.

    >>> AppointmentType(code="ROUTINE", display="Routine follow-up", minutes=20).minutes
    20
    """

    code: str = Field(
        description="http://terminology.hl7.org/CodeSystem/v2-0276 code or sandbox code"
    )
    display: str
    minutes: int = Field(ge=5, le=240)
    visit_code_new: str | None = Field(default=None, description="billing code for a new patient")
    visit_code_established: str | None = Field(
        default=None, description="billing code for an established patient"
    )


class OpeningHours(Strict):
    """Opening hours of one weekday (local time, 'HH:MM').

    >>> OpeningHours(day="mon", open="08:00", close="17:00").close
    '17:00'
    """

    day: Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    open: str = Field(pattern=r"^\d\d:\d\d$")
    close: str = Field(pattern=r"^\d\d:\d\d$")
    lunch_start: str | None = Field(default=None, pattern=r"^\d\d:\d\d$")
    lunch_end: str | None = Field(default=None, pattern=r"^\d\d:\d\d$")


class PracticeDef(Strict):
    """The practice the sandbox simulates.

    ``utc_offset`` is fixed (no DST) so Appointment instants are deterministic.

    >>> PracticeDef.model_fields["utc_offset"].description
    'explicit UTC offset of every local instant, e.g. -05:00'
    """

    name_pattern: str = Field(description="str.format pattern with {city} and {specialty}")
    organization_id: str
    npi: str = Field(description="10-digit NPI-like identifier (fictitious)")
    address_line: str
    city: str
    state: str
    postal_code: str
    phone: str
    utc_offset: str = Field(
        pattern=r"^[+-]\d\d:\d\d$",
        description="explicit UTC offset of every local instant, e.g. -05:00",
    )
    timezone_name: str = Field(description="IANA zone name, for display only")
    hours: list[OpeningHours]
    appointment_types: list[AppointmentType]
    payers: list[Payer]
    no_show_rate: float = Field(ge=0, le=1)
    cancel_rate: float = Field(ge=0, le=1)


class StaffMember(Strict):
    """A member of the fixed staff roster (docs/contracts.md names them).

    >>> StaffMember(username="ma.garcia", role="medical_assistant", given="Maria", family="Garcia",
    ...     npi="1234567893").prefix
    ''
    """

    username: str = Field(pattern=r"^[a-z]+\.[a-z]+$")
    role: Literal[
        "front_desk",
        "medical_assistant",
        "nurse",
        "physician",
        "billing",
        "privacy_officer",
        "instructor",
        "admin",
    ]
    given: str
    family: str
    prefix: str = ""
    qualification: str = Field(default="", description="credential after the name (MD, RN, CMA)")
    npi: str = Field(pattern=r"^\d{10}$", description="fictitious 10-digit NPI-like id")
    start: str = Field(
        default="", pattern=r"^(\d{4}-\d{2}-\d{2})?$", description="employment start (ISO date)"
    )
    end: str = Field(
        default="",
        pattern=r"^(\d{4}-\d{2}-\d{2})?$",
        description="employment end (ISO date); empty while employed",
    )
    specialty: str = ""
    taxonomy: str = Field(default="", description="NUCC Health Care Provider Taxonomy code")
    presets: list[str] = Field(
        default_factory=list,
        description="population presets whose patients this clinician sees (empty: the general presets)",
    )
    patient_age_min: float = Field(default=0, description="sees patients from this age (years)")
    patient_age_max: float = Field(default=130, description="sees patients up to this age (years)")


# --------------------------------------------------------------------------- populations, targets, social


class AgeShare(Strict):
    """Share of the population in one age band.

    >>> AgeShare(age_min=0, age_max=17, share=0.2).share
    0.2
    """

    age_min: int = Field(ge=0, le=110)
    age_max: int = Field(ge=0, le=110)
    share: float = Field(ge=0, le=1)


class Population(Strict):
    """A population preset (a kind of practice and its patients).

    ``condition_multipliers`` scale module rates; ``extra_modules`` are modules only this
    preset uses; ``observations`` are specialty observations taken at every visit.

    >>> Population(id="x", display="X", specialty="Family medicine", age_distribution=[
    ...     AgeShare(age_min=0, age_max=100, share=1.0)], female_share=0.5).modules
    []
    """

    id: str
    display: str
    specialty: str
    age_distribution: list[AgeShare]
    female_share: float = Field(ge=0, le=1)
    modules: list[str] = Field(
        default_factory=list, description="module ids in use (empty: all general modules)"
    )
    extra_modules: list[str] = Field(default_factory=list)
    condition_multipliers: dict[str, float] = Field(default_factory=dict)
    observations: list[str] = Field(
        default_factory=list, description="LOINC codes taken at each visit"
    )
    visit_types: list[str] = Field(
        default_factory=list, description="appointment type codes this practice books"
    )
    visit_procedures: list[str] = Field(
        default_factory=list, description="'procedure|code' done at specialty visits"
    )
    wellness: bool = Field(default=True, description="whether the practice does wellness visits")
    immunizations: bool = True

    @field_validator("age_distribution")
    @classmethod
    def _shares(cls, bands: list[AgeShare]) -> list[AgeShare]:
        total = sum(a.share for a in bands)
        if abs(total - 1.0) > 0.011:
            raise ValueError(f"expected shares to sum to 1, found {total:.3f}")
        return bands


class PrevalenceTarget(Strict):
    """A published prevalence figure the generated population is tested against.

    >>> PrevalenceTarget(measure="hypertension", module="hypertension", age_min=18, age_max=120,
    ...     sex="any", value=0.477, source="CDC NCHS Data Brief 511", year=2023).value
    0.477
    """

    measure: str
    module: str | None = Field(
        default=None, description="condition module id, or None for social measures"
    )
    age_min: int
    age_max: int
    sex: Sex = "any"
    value: float = Field(ge=0, le=1)
    tolerance: float = Field(
        default=0.05, ge=0, le=1, description="absolute tolerance at n=1000 adults in the band"
    )
    source: str
    year: int = Field(ge=1990, le=2100)
    note: str = ""


class SmokingBand(Strict):
    """Smoking status probabilities in an age/sex band (answers are SNOMED codes for 72166-2).

    >>> SmokingBand(age_min=18, age_max=44, probabilities={"449868002": 0.1, "266919005": 0.9}).sex
    'any'
    """

    age_min: int
    age_max: int
    sex: Sex = "any"
    probabilities: dict[str, float] = Field(description="SNOMED answer code -> probability (sum 1)")

    @model_validator(mode="after")
    def _sum(self) -> SmokingBand:
        total = sum(self.probabilities.values())
        if abs(total - 1.0) > 0.011:
            raise ValueError(f"expected probabilities to sum to 1, found {total:.3f}")
        return self


class AlcoholBand(Strict):
    """AUDIT-C total score distribution in an age/sex band: score (text) -> probability.

    >>> AlcoholBand(age_min=18, age_max=120, scores={"0": 1.0}).scores["0"]
    1.0
    """

    age_min: int
    age_max: int
    sex: Sex = "any"
    scores: dict[str, float]


class SocialHistory(Strict):
    """Social-history observations (Observations, never Conditions).

    >>> SocialHistory.model_fields["smoking_loinc"].default
    '72166-2'
    """

    smoking_loinc: str = "72166-2"
    smoking_min_age: int = 13
    smoking: list[SmokingBand]
    current_smoker_codes: list[str] = Field(description="answers that count as current smoking")
    alcohol_loinc: str = "75626-2"
    alcohol_min_age: int = 18
    alcohol: list[AlcoholBand]


class SensitivityRule(Strict):
    """A code-list rule assigning security labels to data carrying a matching code.

    ``system`` is a code-set key (icd10cm, rxnorm, loinc, snomed); ``match`` says whether
    ``code`` is a prefix or the exact code.

    >>> r = SensitivityRule(system="icd10cm", code="F11", match="prefix", sensitivity=["SUD"])
    >>> r.matches("icd10cm", "F11.20"), r.confidentiality
    (True, 'R')
    """

    system: str
    code: str
    match: Literal["prefix", "exact"] = "prefix"
    sensitivity: list[str]
    confidentiality: Literal["N", "R", "V"] = "R"
    note: str = ""

    def matches(self, system_key: str, code: str) -> bool:
        """Whether this rule applies to ``code`` of code set ``system_key``.

        >>> SensitivityRule(system="icd10cm", code="B20", match="exact", sensitivity=["HIV"]).matches("icd10cm", "B20.1")
        False
        """
        if system_key != self.system:
            return False
        return code.startswith(self.code) if self.match == "prefix" else code == self.code


# --------------------------------------------------------------------------- wellness


class WellVisit(Strict):
    """Preventive visits in one age band: either at listed ages or every ``every_months``.

    >>> v = WellVisit(id="infant", age_min=0, age_max=1, at_months=[1, 2, 4],
    ...     procedure="procedure|WELL-INFANT", icd10="Z00.129")
    >>> v.every_months is None
    True
    """

    id: str
    age_min: float = Field(ge=0, le=130, description="years, inclusive")
    age_max: float = Field(ge=0, le=130, description="years, exclusive")
    at_months: list[float] = Field(
        default_factory=list, description="visit ages in months (Bright Futures)"
    )
    every_months: int | None = Field(
        default=None, ge=1, le=60, description="interval when at_months is empty"
    )
    procedure: str = Field(description="billing code ('procedure|WELL-CHILD')")
    medicare_procedure: str | None = Field(
        default=None, description="billed instead for Medicare patients (HCPCS AWV)"
    )
    icd10: str = Field(description="encounter diagnosis (Z00.129, Z00.00)")
    attendance: float = Field(
        default=0.8, ge=0, le=1, description="share of due visits that happen"
    )

    @model_validator(mode="after")
    def _schedule(self) -> WellVisit:
        if bool(self.at_months) == (self.every_months is not None):
            raise ValueError("expected exactly one of at_months or every_months")
        return self


class Screening(Strict):
    """A preventive screening done at wellness visits (USPSTF / Bright Futures).

    ``kind`` says what ``ref`` names: a lab panel id, a LOINC observation, or a billing code.

    >>> Screening(id="lipid", kind="lab", ref="lipid", age_min=40, age_max=75, every_years=5).sex
    'any'
    """

    id: str
    kind: Literal["lab", "observation", "procedure"]
    ref: str
    age_min: float = Field(ge=0, le=130)
    age_max: float = Field(ge=0, le=130)
    sex: Sex = "any"
    every_years: float = Field(gt=0, le=100, description="interval; 100 means once")
    only_with: list[str] = Field(
        default_factory=list, description="only for patients with one of these modules (risk-based)"
    )
    icd10: str = Field(
        default="", description="claim diagnosis; procedure screenings with one are generated"
    )
    uptake: float = Field(default=1.0, ge=0, le=1, description="share screened when due")
    source: str = ""


class WellnessSchedule(Strict):
    """Preventive care: visit schedule and screenings.

    >>> WellnessSchedule.model_fields["screenings"].description
    'screenings done at wellness visits'
    """

    source: str
    visits: list[WellVisit]
    screenings: list[Screening] = Field(
        default_factory=list, description="screenings done at wellness visits"
    )


# --------------------------------------------------------------------------- the whole content


class Content(Strict):
    """All clinical content, validated and cross-checked (what :func:`load_content` returns).

    >>> from synthetic.content import load_content
    >>> c = load_content()
    >>> c.codes["loinc"].display("8867-4")
    'Heart rate'
    >>> c.plausible_range("8480-6")[2]
    'mm[Hg]'
    """

    version: str = Field(description="content version (part of the determinism contract)")
    codes: dict[str, CodeSet]
    conditions: dict[str, ConditionModule]
    allergies: list[AllergyDef]
    drug_classes: list[DrugClass] = Field(default_factory=list)
    vitals: dict[str, VitalSign]
    observations: dict[str, VitalSign] = Field(
        default_factory=dict, description="other measured observations (screening scores, IOP...)"
    )
    labs: dict[str, LabPanel]
    immunizations: list[VaccineSchedule]
    fees: dict[str, Fee]
    populations: dict[str, Population]
    prevalence_targets: list[PrevalenceTarget]
    social: SocialHistory
    staff: list[StaffMember]
    specialists: list[StaffMember] = Field(
        default_factory=list, description="specialty clinicians seen only in their presets"
    )
    former: list[StaffMember] = Field(
        default_factory=list,
        description="former employees (an end date): in the practice's history, with no account",
    )
    sensitivity: list[SensitivityRule]
    practice: PracticeDef
    wellness: WellnessSchedule
    rules: Rules = Field(
        default_factory=Rules, description="clinical and business rules (rules.toml)"
    )
    clinical_ma: ClinicalMA | None = Field(
        default=None, description="clinical MA records the generator makes (clinical_ma.toml)"
    )

    def coding(self, key: str, code: str | None = None) -> dict[str, str]:
        """A FHIR Coding for ``key``/``code``, or for a ``"<set>|<code>"`` reference alone.

        >>> from synthetic.content import load_content
        >>> load_content().coding("hcpcs|G0008")["system"]
        'https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets'
        """
        if code is None:
            key, code = split_ref(key)
        return self.codes[key].coding(code)

    def system_key(self, system_uri: str) -> str | None:
        """The code-set key of a code system URI, or None when we do not ship it.

        >>> from synthetic.content import load_content
        >>> load_content().system_key("http://hl7.org/fhir/sid/icd-10-cm")
        'icd10cm'
        """
        for key, cs in self.codes.items():
            if cs.system == system_uri:
                return key
        return None

    def plausible_range(self, loinc: str) -> tuple[float, float, str]:
        """Hard plausibility limits (low, high, UCUM unit) of a vital sign or lab test.

        Raises KeyError when no vital sign or quantitative lab test has that LOINC code.

        >>> from synthetic.content import load_content
        >>> low, high, unit = load_content().plausible_range("8302-2")
        >>> low < 100 < high, unit
        (True, 'cm')
        """
        for vital in (*self.vitals.values(), *self.observations.values()):
            if vital.loinc == loinc and vital.value_type == "quantity":
                return (vital.plausible_low, vital.plausible_high, vital.unit)
        for test in self.lab_tests().values():
            if test.loinc == loinc and test.unit is not None:
                low = test.plausible_low if test.plausible_low is not None else 0.0
                high = test.plausible_high if test.plausible_high is not None else float("inf")
                return (low, high, test.unit)
        raise KeyError(loinc)

    def observation_for(self, loinc: str) -> VitalSign | None:
        """The vital sign or other observation definition with this LOINC code, or None.

        >>> from synthetic.content import load_content
        >>> load_content().observation_for("8310-5").unit
        'Cel'
        """
        for obs in (*self.vitals.values(), *self.observations.values()):
            if obs.loinc == loinc:
                return obs
        return None

    def lab_tests(self) -> dict[str, LabTest]:
        """Every lab test by LOINC (first panel wins when a test is in several panels).

        >>> from synthetic.content import load_content
        >>> load_content().lab_tests()["4548-4"].unit
        '%'
        """
        tests: dict[str, LabTest] = {}
        for panel in self.labs.values():
            for test in panel.tests:
                tests.setdefault(test.loinc, test)
        return tests

    def labels_for(self, codings: list[dict[str, str]]) -> tuple[str, list[str]]:
        """Confidentiality code and sorted sensitivity codes for data carrying ``codings``.

        ``codings`` are FHIR Coding dicts (system URI + code); the highest confidentiality of
        the matching rules wins (N when none matches).

        >>> from synthetic.content import load_content
        >>> c = load_content()
        >>> c.labels_for([{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "F11.20"}])
        ('R', ['OPIOIDUD', 'SUD'])
        >>> c.labels_for([{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "I10"}])
        ('N', [])
        """
        order = {"N": 0, "R": 1, "V": 2}
        level = "N"
        found: set[str] = set()
        for coding in codings:
            key = self.system_key(coding.get("system", ""))
            code = coding.get("code", "")
            if key is None or not code:
                continue
            for rule in self.sensitivity:
                if rule.matches(key, code):
                    found.update(rule.sensitivity)
                    if order[rule.confidentiality] > order[level]:
                        level = rule.confidentiality
        return level, sorted(found)

    def fee(self, ref: str) -> Fee:
        """The fee of a ``"<set>|<code>"`` billing reference (KeyError when unpriced).

        >>> from synthetic.content import load_content
        >>> load_content().fee("procedure|OV-EST-3").price > 0
        True
        """
        return self.fees[ref]

    def staff_member(self, username: str) -> StaffMember:
        """The roster entry of ``username`` (KeyError when absent).

        >>> from synthetic.content import load_content
        >>> load_content().staff_member("ma.garcia").role
        'medical_assistant'
        """
        for member in self.staff:
            if member.username == username:
                return member
        raise KeyError(username)

    def modules_for(self, population: str) -> list[ConditionModule]:
        """The condition modules a population preset uses, in content order.

        >>> from synthetic.content import load_content
        >>> any(m.id == "hypertension" for m in load_content().modules_for("family-practice"))
        True
        """
        pop = self.populations[population]
        wanted = (
            set(pop.modules)
            if pop.modules
            else {m.id for m in self.conditions.values() if m.general}
        )
        wanted.update(pop.extra_modules)
        return [m for m in self.conditions.values() if m.id in wanted]
