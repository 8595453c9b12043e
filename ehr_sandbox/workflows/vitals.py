"""Rooming vitals: plausibility, UCUM units, BMI, growth percentiles, flags and routing.

:func:`record_vitals` takes what the MA measured, refuses an implausible value or a wrong unit
before anything is written (the ranges are :mod:`ehr_sandbox.validation.vitals`), computes BMI
from weight and height (and the CDC BMI-for-age percentile for ages 2-20), flags abnormal
values from ``data/vital_flags.toml`` and, when any value is abnormal, routes a
``Communication`` to the provider in the same transaction. Every vital sign is its own
Observation with its LOINC code (FHIR vital-signs profile); blood pressure is the 85354-9 panel.

>>> s = demo_session()
>>> p = s.search("Patient").first()
>>> ref = identify(s, p["id"], name=display_name(p), birth_date=p["birthDate"])
>>> out = record_vitals(s, ref, systolic=184, diastolic=112, heart_rate=88)
>>> [o["interpretation"][0]["coding"][0]["code"] for o in out.observations if "interpretation" in o]
['HH']
>>> out.message["priority"]
'urgent'
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from statistics import NormalDist
from typing import TYPE_CHECKING, Any

from ehr_sandbox.validation.vitals import vital_problems
from ehr_sandbox.workflows.base import Rule
from ehr_sandbox.workflows.care import (
    age_months,
    age_years,
    category,
    demo_session,
    display_name,
    identify,
    loinc_concept,
    now_text,
    provider_of,
    quantity,
    read_patient,
    refuse,
    require_identified,
    today,
    user_ref,
    write_entries,
)
from ehr_sandbox.workflows.content import table
from synthetic.systems import COMMUNICATION_CATEGORY, V3_OBSERVATION_INTERPRETATION

if TYPE_CHECKING:
    from ehr_sandbox.session import Session

__all__ = [
    "PLAUSIBLE",
    "age_months_for",
    "VitalsResult",
    "bmi",
    "bmi_percentile",
    "flag",
    "record_vitals",
    "demo_session",
    "display_name",
    "identify",
]

PLAUSIBLE = Rule(
    "vitals.plausible",
    "a vital sign carries its UCUM unit and a physiologically possible value (a unit mix-up "
    "such as 98.6 entered as Celsius is refused)",
    "FHIR R4 vital-signs profile; US Core; ehr_sandbox.validation.vitals",
)
BP_PAIR = Rule(
    "vitals.bp-pair",
    "blood pressure is recorded as systolic and diastolic together, systolic above diastolic",
    "FHIR vital-signs profile (85354-9 panel)",
)
NOTHING = Rule("vitals.nothing", "record at least one measurement", "documentation standards")
INTERPRETATION = V3_OBSERVATION_INTERPRETATION
_FLAG_TEXT = {"H": "High", "L": "Low", "HH": "Critical high", "LL": "Critical low"}


@dataclass
class VitalsResult:
    """What :func:`record_vitals` wrote: the Observations and the message to the provider.

    Parameters
    ----------
    observations : list of dict
        The vital-sign Observations.
    message : dict, optional
        The Communication to the provider when a value is out of range.
    flags : dict
        LOINC code of each out-of-range value to its interpretation flag (``H``, ``L``,
        ``HH``, ``LL``).

    Examples
    --------
    >>> VitalsResult()
    VitalsResult(observations=[], message=None, flags={})
    """

    observations: list[dict[str, Any]] = field(default_factory=list)
    message: dict[str, Any] | None = None
    flags: dict[str, str] = field(default_factory=dict)


def bmi(weight_kg: float, height_cm: float) -> float:
    """Body mass index (kg/m2), one decimal.

    Examples
    --------
    >>> bmi(70, 175)
    22.9
    """
    m = height_cm / 100.0
    return round(weight_kg / (m * m), 1)


@cache
def _lms() -> dict[str, list[tuple[float, float, float, float]]]:
    text = (resources.files("ehr_sandbox.workflows") / "data" / "growth_cdc_bmi.csv").read_text(
        "utf-8"
    )
    rows = csv.DictReader(ln for ln in text.splitlines() if ln and not ln.startswith("#"))
    out: dict[str, list[tuple[float, float, float, float]]] = {"male": [], "female": []}
    for r in rows:
        out[r["sex"]].append((float(r["agemos"]), float(r["L"]), float(r["M"]), float(r["S"])))
    return out


def bmi_percentile(value: float, sex: str, months: float) -> float | None:
    """CDC BMI-for-age percentile (ages 24-240 months), from the LMS parameters.

    Returns ``None`` outside 2-20 years or for a sex other than male/female (the CDC charts
    cover only those; under 2 years WHO weight-for-length is used, not shipped here).

    Examples
    --------
    >>> round(bmi_percentile(16.575, "male", 24), 1)
    50.0
    >>> bmi_percentile(18, "male", 12) is None
    True
    """
    table_ = _lms().get(sex)
    if not table_ or not 24 <= months <= 240.5:
        return None
    lo = max((r for r in table_ if r[0] <= months), key=lambda r: r[0])
    hi = min((r for r in table_ if r[0] >= months), key=lambda r: r[0])
    t = 0.0 if hi[0] == lo[0] else (months - lo[0]) / (hi[0] - lo[0])
    L, M, S = (lo[i] + t * (hi[i] - lo[i]) for i in (1, 2, 3))
    z = math.log(value / M) / S if L == 0 else ((value / M) ** L - 1) / (L * S)
    return round(NormalDist().cdf(z) * 100, 1)


def age_months_for(birth_date: str, sandbox: Any) -> int:
    """Completed months of age today on the sandbox clock (used by tests and graders).

    Examples
    --------
    >>> age_months_for("2020-01-01", demo_session().sandbox) >= 60
    True
    """
    return age_months({"birthDate": birth_date}, sandbox.clock.peek().date())


def _to_flag_unit(loinc: str, value: float, unit: str, want: str) -> float:
    if unit == want:
        return value
    if (unit, want) == ("[degF]", "Cel"):
        return (value - 32) * 5 / 9
    return value


def flag(loinc: str, value: float, unit: str, age: int) -> str | None:
    """The interpretation flag (``H``, ``L``, ``HH``, ``LL``) of one vital sign, or None.

    Examples
    --------
    >>> flag("8480-6", 150, "mm[Hg]", 50), flag("8480-6", 186, "mm[Hg]", 50), flag("8310-5", 101.2, "[degF]", 5)
    ('H', 'HH', 'H')
    >>> flag("8867-4", 130, "/min", 4) is None   # adult heart-rate limits do not apply to a child
    True
    """
    rule = table("vital_flags")["flag"].get(loinc)
    if not rule or age < rule.get("min_age_years", 0):
        return None
    v = _to_flag_unit(loinc, value, unit, rule["unit"])
    if "critical_high" in rule and v > rule["critical_high"]:
        return "HH"
    if "critical_low" in rule and v < rule["critical_low"]:
        return "LL"
    if "high" in rule and v > rule["high"]:
        return "H"
    if "low" in rule and v < rule["low"]:
        return "L"
    return None


def _obs(patient: str, when: str, loinc: str, encounter: str | None) -> dict[str, Any]:
    o: dict[str, Any] = {
        "resourceType": "Observation",
        "status": "final",
        "category": category("vital-signs"),
        "code": loinc_concept(loinc),
        "subject": {"reference": patient},
        "effectiveDateTime": when,
    }
    if encounter:
        o["encounter"] = {"reference": encounter}
    return o


def _check(o: dict[str, Any]) -> None:
    problems = vital_problems(o)
    if problems:
        p = problems[0]
        raise refuse(
            PLAUSIBLE,
            f"Observation ({o['code']['coding'][0]['code']})",
            p.path,
            f"{p.expected}. {p.why}".strip(),
            p.found,
        )


def _interpret(o: dict[str, Any], code: str | None) -> None:
    if code:
        o["interpretation"] = [
            {"coding": [{"system": INTERPRETATION, "code": code, "display": _FLAG_TEXT[code]}]}
        ]


def record_vitals(
    session: Session,
    patient: str,
    *,
    systolic: float | None = None,
    diastolic: float | None = None,
    heart_rate: float | None = None,
    respiratory_rate: float | None = None,
    temperature: float | None = None,
    temperature_unit: str = "[degF]",
    spo2: float | None = None,
    weight: float | None = None,
    weight_unit: str = "kg",
    height: float | None = None,
    height_unit: str = "cm",
    head_circumference_cm: float | None = None,
    pain: int | None = None,
    encounter: str | None = None,
    provider: str | None = None,
) -> VitalsResult:
    """Record the rooming vitals of an identified patient (all or nothing).

    Parameters
    ----------
    session : Session
        The MA's session.
    patient : str
        ``Patient/<id>``, identified first with :func:`~ehr_sandbox.workflows.care.identify`.
    systolic, diastolic : float, optional
        Blood pressure in mm[Hg] (both or neither; whole numbers).
    heart_rate, respiratory_rate : float, optional
        Per minute.
    temperature : float, optional
        In ``temperature_unit`` (UCUM ``[degF]`` or ``Cel``).
    spo2 : float, optional
        Pulse oximetry, %.
    weight, height : float, optional
        In ``weight_unit`` (``kg``, ``[lb_av]``, ``g``) and ``height_unit`` (``cm``, ``[in_i]``);
        with both, BMI is computed, and for ages 2-20 its CDC percentile.
    head_circumference_cm : float, optional
        For infants.
    pain : int, optional
        0-10 numeric rating.
    encounter : str, optional
        ``Encounter/<id>`` of the visit.
    provider : str, optional
        Who gets the message for abnormal values (default: the patient's PCP).

    Returns
    -------
    VitalsResult
        The Observations written, the Communication routed (or None) and the flags by LOINC.

    Raises
    ------
    RuleRefused
        ``care.two-identifiers`` (not identified), ``vitals.bp-pair``, ``vitals.plausible``
        (unit or value), ``vitals.nothing``. Nothing is written when any value is refused.

    Examples
    --------
    >>> s = demo_session()
    >>> p = s.search("Patient").first()
    >>> ref = identify(s, p["id"], name=display_name(p), birth_date=p["birthDate"])
    >>> record_vitals(s, ref, temperature=98.6, temperature_unit="Cel")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ehr_sandbox.workflows.base.RuleRefused: Observation (8310-5): valueQuantity.value: expected a body temperature between ... Cel. 98.6 is not a plausible body temperature in degrees Celsius (°C) but looks like degrees Fahrenheit (°F): record it with unit code '[degF]', or convert it (37.0 Cel) (found 98.6). Refused by rule vitals.plausible: a vital sign carries its UCUM unit and a physiologically possible value (a unit mix-up such as 98.6 entered as Celsius is refused) [FHIR R4 vital-signs profile; US Core; ehr_sandbox.validation.vitals]
    """
    ref = require_identified(session, patient, "Observation")
    chart = read_patient(session, ref)
    on = today(session)
    years, months = age_years(chart, on), age_months(chart, on)
    when = now_text(session)
    obs: list[dict[str, Any]] = []
    flags: dict[str, str] = {}
    if (systolic is None) != (diastolic is None):
        raise refuse(BP_PAIR, "Observation (85354-9)", "systolic/diastolic", "both pressures", None)
    if systolic is not None and diastolic is not None:
        bp = _obs(ref, when, "85354-9", encounter)
        comps = []
        worst = None
        for code, value in (("8480-6", systolic), ("8462-4", diastolic)):
            comp = {"code": loinc_concept(code), "valueQuantity": quantity(value, "mm[Hg]")}
            f = flag(code, value, "mm[Hg]", years)
            _interpret(comp, f)
            if f:
                flags[code] = f
                worst = f if worst is None or len(f) > len(worst) else worst
            comps.append(comp)
        bp["component"] = comps
        _interpret(bp, worst)
        obs.append(bp)
    singles = [
        ("8867-4", heart_rate, "/min"),
        ("9279-1", respiratory_rate, "/min"),
        ("8310-5", temperature, temperature_unit),
        ("59408-5", spo2, "%"),
        ("29463-7", weight, weight_unit),
        ("8302-2", height, height_unit),
        ("9843-4", head_circumference_cm, "cm"),
        ("72514-3", pain, "{score}"),
    ]
    for code, value, unit in singles:
        if value is None:
            continue
        o = _obs(ref, when, code, encounter)
        if code == "72514-3":
            o["category"] = category("survey")
        o["valueQuantity"] = quantity(value, unit)
        f = flag(code, float(value), unit, years)
        _interpret(o, f)
        if f:
            flags[code] = f
        obs.append(o)
    if not obs:
        raise refuse(NOTHING, "Observation", "(measurements)", "at least one vital sign")
    for o in obs:
        _check(o)
    if pain is not None and (int(pain) != pain):
        raise refuse(PLAUSIBLE, "Observation (72514-3)", "valueQuantity.value", "0-10 whole", pain)
    if weight is not None and height is not None:
        kg = _convert(weight, weight_unit, {"kg": 1.0, "[lb_av]": 0.45359237, "g": 0.001})
        cm = _convert(height, height_unit, {"cm": 1.0, "[in_i]": 2.54})
        value = bmi(kg, cm)
        o = _obs(ref, when, "39156-5", encounter)
        o["valueQuantity"] = quantity(value, "kg/m2")
        _check(o)
        obs.append(o)
        pct = bmi_percentile(value, chart.get("gender", ""), months + 0.5) if years >= 2 else None
        if pct is not None and years < 20:
            po = _obs(ref, when, "59576-9", encounter)
            po["valueQuantity"] = quantity(pct, "%")
            po["note"] = [{"text": "CDC 2000 BMI-for-age (LMS)"}]
            obs.append(po)
    message = None
    if flags:
        provider_ref = provider_of(chart, provider)
        critical = any(len(f) == 2 for f in flags.values())
        text = (
            "Abnormal vital signs for "
            + display_name(chart)
            + ": "
            + "; ".join(_describe(o) for o in obs if "interpretation" in o)
        )
        message = {
            "resourceType": "Communication",
            "status": "completed",
            "category": [
                {
                    "coding": [
                        {
                            "system": COMMUNICATION_CATEGORY,
                            "code": "alert",
                        }
                    ]
                }
            ],
            "priority": "urgent" if critical else "routine",
            "subject": {"reference": ref},
            "sent": when,
            "sender": user_ref(session),
            "recipient": [{"reference": provider_ref}],
            "payload": [{"contentString": text}],
        }
    entries: list[dict[str, Any]] = []
    for i, o in enumerate(obs):
        entries.append({"fullUrl": f"urn:uuid:00000000-0000-4000-8000-{i:012d}", "resource": o})
    if message is not None:
        message["about"] = [
            {"reference": f"urn:uuid:00000000-0000-4000-8000-{i:012d}"}
            for i, o in enumerate(obs)
            if "interpretation" in o
        ]
        entries.append(message)
    saved = write_entries(session, entries, operation="vitals.record")
    return VitalsResult(
        observations=saved[: len(obs)],
        message=saved[len(obs)] if message is not None else None,
        flags=flags,
    )


def _convert(value: float, unit: str, factors: dict[str, float]) -> float:
    return float(value) * factors.get(unit, 1.0)


def _describe(o: dict[str, Any]) -> str:
    name = o["code"]["coding"][0].get("display", o["code"]["coding"][0]["code"])
    flag_ = o["interpretation"][0]["coding"][0]["display"]
    if "component" in o:
        vals = "/".join(f"{c['valueQuantity']['value']:g}" for c in o["component"])
        return f"{name} {vals} mm[Hg] ({flag_})"
    q = o["valueQuantity"]
    return f"{name} {q['value']:g} {q['code']} ({flag_})"
