"""Clinical and business rules as content (``rules.toml``), validated on load.

Vaccine products with their licensure dates, dose age limits and injection sites by age; drug
classes for allergy checks, duplicate therapy and one antibiotic per visit; weight-based
pediatric doses; monitoring rules; claim coding edits; payer rules; screenings; pregnancy
length and outcomes; growth; engine probabilities; holidays. Every rule carries its source.

>>> r = Rules.model_validate({"engine": {"source": "x"}, "holidays": {"source": "y"}})
>>> r.engine.see_own_pcp
0.85
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class VaccineProduct(_Strict):
    """One licensed product of a scheduled vaccine, valid on [from, until) within age limits.

    >>> VaccineProduct(vaccine="zoster", cvx="187", mvx="SKB", **{"from": "2017-10-25"}).until
    '9999-12-31'
    """

    vaccine: str
    cvx: str
    mvx: str = Field(pattern=r"^[A-Z]{2,4}$")
    from_: str = Field(alias="from", pattern=r"^\d{4}-\d{2}-\d{2}$")
    until: str = Field(default="9999-12-31", pattern=r"^\d{4}-\d{2}-\d{2}$")
    min_age_days: int = 0
    max_age_days: int = 10**6
    source: str = ""


class VaccineLimit(_Strict):
    """The maximum age (days) of a dose (``dose`` 0: every dose).

    >>> VaccineLimit(vaccine="rotavirus", dose=1, max_age_days=104).max_age_days
    104
    """

    vaccine: str
    dose: int = Field(ge=0)
    max_age_days: int
    source: str = ""


class InjectionSite(_Strict):
    """Injection sites up to an age (days).

    >>> InjectionSite(age_max_days=365, site="left thigh", alternate="right thigh").site
    'left thigh'
    """

    age_max_days: int
    site: str
    alternate: str
    source: str = ""


class DuplicateGroup(_Strict):
    """Drug classes of which a patient takes at most one at a time.

    >>> DuplicateGroup(classes=["statin"]).classes
    ['statin']
    """

    classes: list[str]


class AllergyClass(_Strict):
    """Drug classes an allergy rules out (cross-reactivity included).

    >>> AllergyClass(allergy="penicillin", classes=["penicillin"]).classes
    ['penicillin']
    """

    allergy: str
    classes: list[str]
    source: str = ""


class WeightDose(_Strict):
    """A weight-based liquid dose: mL per administration from mg/kg/day.

    >>> WeightDose(rxnorm="1", mg_per_kg_day=90, doses_per_day=2, mg_per_ml=80, max_mg_day=4000).ml(10)
    5.5
    """

    rxnorm: str
    mg_per_kg_day: float = Field(gt=0)
    doses_per_day: int = Field(gt=0)
    mg_per_ml: float = Field(gt=0)
    max_mg_day: float = Field(gt=0)
    source: str = ""

    def ml(self, weight_kg: float) -> float:
        """mL per dose for ``weight_kg``, to the nearest 0.5 mL (at least 0.5).

        >>> WeightDose(rxnorm="1", mg_per_kg_day=90, doses_per_day=2, mg_per_ml=80, max_mg_day=4000).ml(60)
        25.0
        """
        mg_day = min(self.mg_per_kg_day * weight_kg, self.max_mg_day)
        return max(0.5, round(mg_day / self.doses_per_day / self.mg_per_ml * 2) / 2)


class Monitoring(_Strict):
    """A drug monitoring rule: patients on these drugs get ``panel`` every ``every_days``.

    >>> Monitoring(rxnorm=["855332"], panel="inr", every_days=35).panel
    'inr'
    """

    rxnorm: list[str]
    panel: str
    every_days: int = Field(gt=0)
    source: str = ""


class TrimesterCode(_Strict):
    """Trimester-specific codes replacing an unspecified-trimester code.

    >>> TrimesterCode(unspecified="Z34.80", first="Z34.81", second="Z34.82", third="Z34.83").for_week(30)
    'Z34.83'
    """

    unspecified: str
    first: str
    second: str
    third: str
    source: str = ""

    def for_week(self, week: int) -> str:
        """The code for a gestational age in whole weeks.

        >>> TrimesterCode(unspecified="a", first="b", second="c", third="d").for_week(13)
        'b'
        """
        return self.first if week < 14 else self.second if week < 28 else self.third


class ClaimEdit(_Strict):
    """Drop codes starting with ``prefix`` when a code starting with ``when_prefix`` is present.

    >>> ClaimEdit(prefix="E11.9", when_prefix="E11.4").prefix
    'E11.9'
    """

    prefix: str
    when_prefix: str
    source: str = ""


class PayerRules(_Strict):
    """Medicare from 65, payment lag spread, annual wellness codes.

    >>> PayerRules(medicare_payer="medicare").medicare_age
    65
    """

    medicare_payer: str
    medicare_age: int = 65
    awv_initial: str = "hcpcs|G0438"
    awv_subsequent: str = "hcpcs|G0439"
    lag_low: float = 0.6
    lag_high: float = 1.8
    source: str = ""


class PregnancyRules(_Strict):
    """Pregnancy length and outcome, Tdap window, plausible ages.

    >>> PregnancyRules(delivery_weeks={"39": 1.0}).tdap_week_min
    27
    """

    loss_probability: float = Field(default=0.12, ge=0, le=1)
    loss_icd10: str = "O03.9"
    loss_week_min: int = 7
    loss_week_max: int = 13
    delivery_icd10: str = "Z37.0"
    delivery_weeks: dict[str, float]
    tdap_week_min: int = 27
    tdap_week_max: int = 36
    tdap_vaccine: str = "tdap_pregnancy"
    age_min: float = 15
    age_max: float = 45
    source: str = ""


class GrowthRules(_Strict):
    """Children's BMI z-score distribution and visit noise.

    >>> GrowthRules().obesity_z
    1.645
    """

    bmi_z_mean: float = 0.5
    bmi_z_sd: float = 1.3
    obesity_z: float = 1.645
    noise_sd: float = 0.12
    adult_age: float = 20
    source: str = ""


class Awareness(_Strict):
    """Share of people with a condition who are diagnosed.

    >>> Awareness().hypertension
    0.59
    """

    hypertension: float = Field(default=0.59, ge=0, le=1)
    source: str = ""


class EngineRates(_Strict):
    """Behavioural probabilities of the engine.

    >>> EngineRates().follow_up_attendance
    0.88
    """

    adult_checkup_attendance: float = 0.7
    follow_up_attendance: float = 0.88
    child_wellness_attendance: float = 0.93
    see_own_pcp: float = 0.85
    specialty_visit_probability: float = 0.85
    procedure_at_follow_up: float = 0.25
    febrile_acute_share: float = 0.35
    childhood_vaccine_at_sick_visit: float = 0.3
    follow_up_merge_days: int = 30
    specimen_receipt_minutes: list[int] = Field(default_factory=lambda: [20, 240])
    source: str = ""


class SchedulingRates(_Strict):
    """How patients keep appointments: a per-patient no-show propensity around the practice rate.

    Each patient draws a propensity from a gamma distribution with mean 1 and shape
    ``propensity_shape`` (smaller: more spread); a planned visit is missed with the practice's
    no-show rate times that propensity, so a few patients carry most no-shows, as the
    literature finds (past no-shows are the strongest predictor).

    >>> SchedulingRates().propensity_shape
    1.5
    """

    propensity_shape: float = Field(default=1.5, gt=0)
    max_probability: float = Field(default=0.6, ge=0, le=1)
    source: str = ""


class DenialReason(_Strict):
    """One reason a payer denies a whole claim: CARC group and reason code, RARC remark, share.

    ``description`` and ``remark`` are the codes' texts, which the loader fills in from
    ``carc.csv`` and ``rarc.csv`` (never typed in ``rules.toml``).

    >>> DenialReason(carc="27", group="CO", description="Coverage terminated", share=0.2).rarc
    ''
    """

    carc: str
    group: str = Field(pattern="^(CO|PR|OA|PI)$")
    rarc: str = ""
    description: str
    remark: str = ""
    share: float = Field(gt=0)


class Remittance(_Strict):
    """The revenue cycle after the visit: eligibility checks, denials, desk copays, statements.

    >>> Remittance().denial_rate
    0.075
    """

    denial_rate: float = Field(default=0.075, ge=0, le=1)
    denial: list[DenialReason] = Field(default_factory=list)
    eligibility_check_share: float = Field(default=0.7, ge=0, le=1)
    copay_at_desk: float = Field(default=0.85, ge=0, le=1)
    copay_methods: dict[str, float] = Field(default_factory=lambda: {"card": 0.7, "cash": 0.3})
    statement_after_days: list[int] = Field(default_factory=lambda: [3, 30])
    statement_paid: float = Field(default=0.7, ge=0, le=1)
    statement_paid_after_days: list[int] = Field(default_factory=lambda: [7, 45])
    statement_methods: dict[str, float] = Field(default_factory=lambda: {"card": 0.6, "check": 0.4})
    source: str = ""


class PortalTopic(_Strict):
    """A portal message topic: its share, who answers (a role of the topic's pool), texts.

    >>> PortalTopic(code="refill", share=0.2, reply_role="physician", texts=["x"], replies=["y"]).code
    'refill'
    """

    code: str
    display: str = ""
    share: float = Field(gt=0)
    reply_role: str
    after_visit: bool = False
    texts: list[str] = Field(min_length=1)
    replies: list[str] = Field(min_length=1)


class Portal(_Strict):
    """Patient portal messages: who uses the portal, how often, topics, reply times.

    >>> Portal().min_age
    18
    """

    active_share: float = Field(default=0.4, ge=0, le=1)
    messages_per_year: float = Field(default=2.0, ge=0)
    min_age: int = 18
    reply_hours: list[int] = Field(default_factory=lambda: [1, 20])
    late_share: float = Field(default=0.05, ge=0, le=1)
    late_hours: list[int] = Field(default_factory=lambda: [25, 72])
    topic: list[PortalTopic] = Field(default_factory=list)
    source: str = ""


class Holidays(_Strict):
    """Federal holidays: fixed month-day dates and n-th weekdays ("MM:weekday:n").

    >>> Holidays().fixed[0]
    '01-01'
    """

    fixed: list[str] = Field(default_factory=lambda: ["01-01", "07-04", "12-25"])
    nth: list[str] = Field(default_factory=list)
    source: str = ""


class Laterality(_Strict):
    """Alternative codes (by share) for a code whose side varies.

    >>> Laterality(icd10="S93.401A", alternatives={"S93.401A": 0.5, "S93.402A": 0.5}).icd10
    'S93.401A'
    """

    icd10: str
    alternatives: dict[str, float]
    source: str = ""


class OfficeDrug(_Strict):
    """A drug given in the office: what the MedicationAdministration records for an HCPCS code,
    with the dose given (``dose_mg``; FHIR R4B mad-1 wants a dose wherever a dosage is recorded).

    >>> OfficeDrug(hcpcs="J3301", text="triamcinolone", route="intra-articular", site="knee", dose_mg=40).rxnorm
    ''
    """

    hcpcs: str
    text: str
    rxnorm: str = ""
    route: str
    site: str
    dose_mg: float = Field(gt=0)
    source: str = ""


class Era(_Strict):
    """Visit volume and telehealth share in a period [from, until).

    >>> Era(keep=0.5, telehealth=0.4, **{"from": "2020-03-16", "until": "2020-06-01"}).keep
    0.5
    """

    from_: str = Field(alias="from", pattern=r"^\d{4}-\d{2}-\d{2}$")
    until: str = Field(pattern=r"^\d{4}-\d{2}-\d{2}$")
    keep: float = Field(ge=0, le=1)
    telehealth: float = Field(ge=0, le=1)
    source: str = ""


class Rules(_Strict):
    """Everything in ``rules.toml``.

    >>> Rules().payer_rules is None
    True
    """

    vaccine_product: list[VaccineProduct] = Field(default_factory=list)
    mvx: dict[str, str] = Field(default_factory=dict, description="MVX code -> manufacturer name")
    vaccine_limit: list[VaccineLimit] = Field(default_factory=list)
    injection_site: list[InjectionSite] = Field(default_factory=list)
    drug_classes: dict[str, list[str]] = Field(default_factory=dict)
    antibiotic_classes: list[str] = Field(default_factory=list)
    duplicate_group: list[DuplicateGroup] = Field(default_factory=list)
    allergy_class: list[AllergyClass] = Field(default_factory=list)
    weight_dose: list[WeightDose] = Field(default_factory=list)
    monitoring: list[Monitoring] = Field(default_factory=list)
    trimester_code: list[TrimesterCode] = Field(default_factory=list)
    claim_edit: list[ClaimEdit] = Field(default_factory=list)
    payer_rules: PayerRules | None = None
    pregnancy: PregnancyRules | None = None
    growth: GrowthRules = Field(default_factory=GrowthRules)
    awareness: Awareness = Field(default_factory=Awareness)
    engine: EngineRates = Field(default_factory=EngineRates)
    scheduling: SchedulingRates = Field(default_factory=SchedulingRates)
    remittance: Remittance = Field(default_factory=Remittance)
    portal: Portal = Field(default_factory=Portal)
    holidays: Holidays = Field(default_factory=Holidays)
    laterality: list[Laterality] = Field(default_factory=list)
    office_drug: list[OfficeDrug] = Field(default_factory=list)
    era: list[Era] = Field(default_factory=list)

    def classes_of(self, rxnorm: str) -> frozenset[str]:
        """The drug classes an RxNorm code belongs to.

        >>> Rules(drug_classes={"statin": ["1"]}).classes_of("1")
        frozenset({'statin'})
        """
        return frozenset(k for k, codes in self.drug_classes.items() if rxnorm in codes)
