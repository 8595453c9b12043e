"""Content of the clinical medical assistant's generated records (``clinical_ma.toml``).

Screening questionnaires (PHQ-2/PHQ-9, AUDIT-C) by age with their uptake, family history by
relative, deliveries as hospital admissions, refill requests, and CLIA-waived point-of-care
devices with their daily quality control. Every table carries its source.

>>> q = Questionnaires(phq2_no_depression={"0": 1.0}, source="USPSTF")
>>> q.depression_min_age, q.alcohol_min_age
(12, 18)
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Questionnaires(_Strict):
    """When PHQ-2, PHQ-9 and AUDIT-C are given and how PHQ-2 totals are distributed.

    >>> Questionnaires(phq2_no_depression={"0": 0.9, "3": 0.1}).phq2_positive
    3
    """

    depression_min_age: int = 12
    alcohol_min_age: int = 18
    uptake: float = Field(default=0.7, ge=0, le=1)
    phq2_positive: int = Field(default=3, ge=0, le=6)
    phq2_no_depression: dict[str, float]
    source: str = ""

    @model_validator(mode="after")
    def _scores(self) -> Questionnaires:
        for k in self.phq2_no_depression:
            if not k.isdigit() or not 0 <= int(k) <= 6:
                raise ValueError(f"phq2_no_depression: expected totals 0-6, found {k!r}")
        return self


class FamilyHistoryRow(_Strict):
    """A relative (v3-RoleCode) with a condition (ICD-10-CM), the share who have it, onset ages.

    >>> FamilyHistoryRow(relationship="MTH", icd10="I10", share=0.3, onset_age=[40, 60]).share
    0.3
    """

    relationship: str = Field(pattern=r"^[A-Z]{3,6}$")
    icd10: str
    share: float = Field(ge=0, le=1)
    onset_age: list[int] = Field(min_length=2, max_length=2)


class Source(_Strict):
    """A table's source text.

    >>> Source(text="CDC").text
    'CDC'
    """

    text: str


class Delivery(_Strict):
    """How a pregnancy's outcome is coded and how long a delivery admission lasts.

    >>> Delivery().term_icd10
    'O80'
    """

    term_week: int = 37
    term_icd10: str = "O80"
    preterm_icd10: str = "O60.14X0"
    outcome_icd10: str = "Z37.0"
    loss_icd10: str = "O03.9"
    cesarean_share: float = Field(default=0.321, ge=0, le=1)
    stay_days_vaginal: int = Field(default=2, ge=1)
    stay_days_cesarean: int = Field(default=3, ge=1)
    source: str = ""


class Refills(_Strict):
    """When the pharmacy's refill request arrives on the day it is renewed (minute of day range).

    >>> Refills().request_minutes
    [540, 720]
    """

    request_minutes: list[int] = Field(
        default_factory=lambda: [540, 720], min_length=2, max_length=2
    )
    source: str = ""


class QualityControl(_Strict):
    """Daily QC: the minute of day it is run and the share of first runs that fail.

    >>> QualityControl().minute
    465
    """

    minute: int = Field(default=465, ge=0, lt=24 * 60)
    failure_share: float = Field(default=0.02, ge=0, lt=1)
    retention_days: int = Field(default=730, ge=1)
    source: str = ""


class PocDevice(_Strict):
    """A CLIA-waived test device/kit and the lab panel (``labs.toml`` id) it runs.

    ``test`` is the id of a POC test of ``poc_tests.toml`` (shared with the EHR's QC
    workflow); the loader fills ``control_levels`` from that test's ``[test.controls]``, so
    the levels live in one table.

    >>> PocDevice(id="strep-kit", display="Rapid strep", panel="strep", test="rapid-strep",
    ...           control_levels=["positive", "negative"]).lot_days
    90
    """

    id: str
    display: str
    panel: str
    test: str
    control_levels: list[str] = Field(min_length=1)
    lot_days: int = Field(default=90, ge=7)
    shelf_days: int = Field(default=365, ge=7)


class Rooms(_Strict):
    """Exam rooms per clinician (each clinician rooms patients in their own rooms).

    >>> Rooms().per_clinician
    2
    """

    per_clinician: int = Field(default=2, ge=1, le=6)
    source: str = ""


class SensoryScreen(_Strict):
    """Vision or hearing screening at preventive visits of these ages (years).

    >>> SensoryScreen(kind="vision", ages=[4, 5], refer_share=0.1).ages
    [4, 5]
    """

    kind: Literal["vision", "hearing"]
    ages: list[int] = Field(min_length=1)
    refer_share: float = Field(ge=0, le=1)
    source: str = ""


class Ecg(_Strict):
    """Ranges (ms) of the ECG intervals recorded with a 12-lead ECG.

    >>> Ecg().qt_ms
    [350, 430]
    """

    pr_ms: list[int] = Field(default_factory=lambda: [120, 200], min_length=2, max_length=2)
    qrs_ms: list[int] = Field(default_factory=lambda: [80, 110], min_length=2, max_length=2)
    qt_ms: list[int] = Field(default_factory=lambda: [350, 430], min_length=2, max_length=2)
    source: str = ""


class SpirometryBand(_Strict):
    """FEV1/FVC ratio and FEV1 % predicted ranges for a condition ('' = no lung disease).

    >>> SpirometryBand(condition="copd", ratio=[0.45, 0.69], fev1_percent=[35, 80]).ratio[1] < 0.7
    True
    """

    condition: str
    ratio: list[float] = Field(min_length=2, max_length=2)
    fev1_percent: list[float] = Field(min_length=2, max_length=2)


class Admission(_Strict):
    """Hospital care of patients with a chronic condition (rate per patient-year): an
    inpatient stay (``setting = "inpatient"``, days) or an emergency-department visit treated
    and released the same day (``setting = "emergency"``, hours).

    >>> Admission(condition="copd", rate_per_year=0.1, stay_days=[2, 6], reason="x").stay_days
    [2, 6]
    >>> Admission(condition="asthma", rate_per_year=0.1, setting="emergency", stay_hours=[2, 6],
    ...           reason="x").setting
    'emergency'
    """

    condition: str
    rate_per_year: float = Field(ge=0, le=5)
    setting: Literal["inpatient", "emergency"] = "inpatient"
    stay_days: list[int] = Field(default=[0, 0], min_length=2, max_length=2)
    stay_hours: list[int] = Field(default=[2, 6], min_length=2, max_length=2)
    reason: str
    source: str = ""


class ClinicalMA(_Strict):
    """The whole ``clinical_ma.toml``.

    >>> ClinicalMA(questionnaires=Questionnaires(phq2_no_depression={"0": 1.0})).delivery.loss_icd10
    'O03.9'
    """

    questionnaires: Questionnaires
    family_history: list[FamilyHistoryRow] = Field(default_factory=list)
    family_history_source: Source = Source(text="")
    delivery: Delivery = Field(default_factory=Delivery)
    refills: Refills = Field(default_factory=Refills)
    qc: QualityControl = Field(default_factory=QualityControl)
    poc_device: list[PocDevice] = Field(default_factory=list)
    rooms: Rooms = Field(default_factory=Rooms)
    sensory_screen: list[SensoryScreen] = Field(default_factory=list)
    ecg: Ecg = Field(default_factory=Ecg)
    spirometry_band: list[SpirometryBand] = Field(default_factory=list)
    spirometry_source: Source = Source(text="")
    admission: list[Admission] = Field(default_factory=list)
