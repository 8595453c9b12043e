"""Rule 2: vital signs carry the right UCUM unit and a physiologically plausible value.

Vital signs are read by other systems, growth charts and decision support that convert by
unit code, so a wrong unit is worse than a missing value: 98.6 stored as ``Cel`` is a fatal
fever of 98.6 °C to every program that reads it. The table below lists, per vital-sign LOINC
code (the FHIR/US Core vital-signs set), the UCUM codes accepted and the plausible range in
each. The ranges are deliberately wide — they catch unit mix-ups and typos, not illness.

Extra checks: blood pressure is a whole number of mm[Hg] (no device measures tenths) and, in
the 85354-9 panel, systolic must exceed diastolic.

>>> VITAL_SIGNS["8480-6"].units    # from synthetic/content/data/vitals.toml
{'mm[Hg]': (50.0, 260.0)}
>>> round(expected_bmi(70, 175), 1)
22.9
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from synthetic.systems import LOINC, UCUM

from .problem import Problem

__all__ = [
    "BP_PANEL",
    "DIASTOLIC",
    "LOINC",
    "SYSTOLIC",
    "UCUM",
    "VITAL_SIGNS",
    "VitalSign",
    "bmi_problem",
    "content_vital_limits",
    "expected_bmi",
    "merged_table",
    "vital_problems",
]

BP_PANEL = "85354-9"
SYSTOLIC = "8480-6"
DIASTOLIC = "8462-4"
BMI = "39156-5"


@dataclass(frozen=True, slots=True)
class VitalSign:
    """One vital sign: its LOINC code, a name for messages, accepted UCUM units with ranges.

    ``integer`` marks measurements recorded in whole units (blood pressure).

    >>> VitalSign("8867-4", "heart rate", {"/min": _CONTENT}).unit_list()
    "'/min'"
    """

    loinc: str
    name: str
    units: Mapping[str, tuple[float, float]]
    integer: bool = False

    def unit_list(self) -> str:
        """The accepted UCUM codes, quoted, for messages.

        >>> VITAL_SIGNS["8310-5"].unit_list()
        "'Cel' or '[degF]'"
        """
        return " or ".join(repr(u) for u in self.units)


_CONTENT = (math.nan, math.nan)
"""Placeholder: the range comes from the content (synthetic/content/data/vitals.toml)."""


def _table() -> dict[str, VitalSign]:
    signs = [
        VitalSign(SYSTOLIC, "systolic blood pressure", {"mm[Hg]": _CONTENT}, integer=True),
        VitalSign(DIASTOLIC, "diastolic blood pressure", {"mm[Hg]": _CONTENT}, integer=True),
        VitalSign("8867-4", "heart rate", {"/min": _CONTENT}),
        VitalSign("9279-1", "respiratory rate", {"/min": _CONTENT}),
        VitalSign("8310-5", "body temperature", {"Cel": _CONTENT, "[degF]": _CONTENT}),
        VitalSign(
            "29463-7",
            "body weight",
            {"kg": _CONTENT, "[lb_av]": _CONTENT, "g": _CONTENT},
        ),
        VitalSign("8302-2", "body height", {"cm": _CONTENT, "[in_i]": _CONTENT}),
        VitalSign(BMI, "body mass index", {"kg/m2": _CONTENT}),
        VitalSign("2708-6", "oxygen saturation", {"%": (0.0, 100.0)}),
        VitalSign("59408-5", "oxygen saturation by pulse oximetry", {"%": _CONTENT}),
        VitalSign("9843-4", "head circumference", {"cm": _CONTENT, "[in_i]": _CONTENT}),
        VitalSign(
            "8287-5", "head circumference (tape)", {"cm": (15.0, 80.0), "[in_i]": (6.0, 32.0)}
        ),
        VitalSign("59576-9", "BMI percentile", {"%": (0.0, 100.0)}),
        VitalSign("8289-1", "head circumference percentile", {"%": (0.0, 100.0)}),
        VitalSign("77606-2", "weight-for-length percentile", {"%": (0.0, 100.0)}),
        VitalSign("3150-0", "inhaled oxygen concentration", {"%": (0.0, 100.0)}),
        VitalSign("3151-8", "inhaled oxygen flow rate", {"L/min": (0.0, 100.0)}),
        VitalSign("72514-3", "pain severity (0-10)", {"{score}": _CONTENT}),
    ]
    return {s.loinc: s for s in signs}


def _content_limits() -> dict[str, tuple[float, float, str]]:
    """Plausible ranges of the shipped content's vital signs (the one source of the ranges),
    kept in the content cache so a fresh process does not load the content for them."""
    from ehr_sandbox.content_cache import derived

    return {
        loinc: (low, high, unit)
        for loinc, (low, high, unit) in derived("vital-limits", content_vital_limits).items()
    }


def content_vital_limits() -> dict[str, tuple[float, float, str]]:
    """Plausible ranges (low, high, UCUM unit) of the shipped content's vital signs, by LOINC
    code (loads the content).

    >>> content_vital_limits()["8480-6"]
    (50.0, 260.0, 'mm[Hg]')
    """
    from synthetic.content import load_content

    out: dict[str, tuple[float, float, str]] = {}
    content = load_content()
    base = _table()
    vital_ids = {v.loinc for v in content.vitals.values()}
    for vital in (*content.vitals.values(), *content.observations.values()):
        if vital.loinc not in base and vital.loinc not in vital_ids:
            continue  # other observations (scores, IOP...) are not vital signs
        if vital.value_type == "quantity" and vital.unit:
            out[vital.loinc] = (vital.plausible_low, vital.plausible_high, vital.unit)
    return out


# Conversions offered in the "did you mean" hint when a value fits another accepted unit.
_CONVERT: dict[tuple[str, str], Callable[[float], float]] = {
    ("[degF]", "Cel"): lambda f: (f - 32.0) * 5.0 / 9.0,
    ("Cel", "[degF]"): lambda c: c * 9.0 / 5.0 + 32.0,
    ("[lb_av]", "kg"): lambda lb: lb * 0.45359237,
    ("kg", "[lb_av]"): lambda kg: kg / 0.45359237,
    ("g", "kg"): lambda g: g / 1000.0,
    ("kg", "g"): lambda kg: kg * 1000.0,
    ("[in_i]", "cm"): lambda i: i * 2.54,
    ("cm", "[in_i]"): lambda c: c / 2.54,
}
_UNIT_WORDS = {"Cel": "degrees Celsius (°C)", "[degF]": "degrees Fahrenheit (°F)", "kg": "kilograms",
               "[lb_av]": "pounds", "g": "grams", "cm": "centimetres", "[in_i]": "inches"}  # fmt: skip
_DISPLAY_MISTAKES = {"mmHg": "mm[Hg]", "degF": "[degF]", "°F": "[degF]", "F": "[degF]", "C": "Cel",
                     "°C": "Cel", "lb": "[lb_av]", "lbs": "[lb_av]", "in": "[in_i]", "bpm": "/min",
                     "beats/min": "/min", "breaths/min": "/min", "kg/m^2": "kg/m2"}  # fmt: skip


VITAL_SIGNS: dict[str, VitalSign] = {}
"""Vital-sign LOINC code -> accepted units and plausible ranges (filled below from content)."""


def merged_table(
    limits: Mapping[str, tuple[float, float, str]], base: Mapping[str, VitalSign] = VITAL_SIGNS
) -> dict[str, VitalSign]:
    """``base`` with content plausibility limits applied: ``{loinc: (low, high, ucum)}``.

    A limit replaces the range of its unit and, converted, of the other accepted units (one
    source for every unit); a LOINC code the base table lacks becomes a vital sign with that
    single unit.

    >>> t = merged_table({"8310-5": (30.0, 44.0, "Cel"), "11881-0": (10.0, 45.0, "cm")})
    >>> t["8310-5"].units["Cel"], t["8310-5"].units["[degF]"], t["11881-0"].unit_list()
    ((30.0, 44.0), (86.0, 111.2), "'cm'")
    """
    table = dict(base)
    for loinc, (low, high, unit) in limits.items():
        known = table.get(loinc)
        if known is None:
            table[loinc] = VitalSign(
                loinc, f"vital sign {loinc}", {unit: (float(low), float(high))}
            )
        else:
            units = dict(known.units)
            units[unit] = (float(low), float(high))
            for other in known.units:
                convert = _CONVERT.get((unit, other))
                if other != unit and convert is not None:
                    units[other] = (round(convert(low), 2), round(convert(high), 2))
            table[loinc] = VitalSign(loinc, known.name, units, known.integer)
    return table


VITAL_SIGNS.update(merged_table(_content_limits(), _table()))
if any(math.isnan(lo) for sign in VITAL_SIGNS.values() for lo, _ in sign.units.values()):
    raise RuntimeError("a vital sign range expected from vitals.toml is missing there")


def expected_bmi(weight_kg: float, height_cm: float) -> float:
    """Body mass index from weight (kg) and height (cm).

    >>> expected_bmi(80, 200)
    20.0
    """
    metres = height_cm / 100.0
    return weight_kg / (metres * metres)


def bmi_problem(
    bmi: float, weight_kg: float, height_cm: float, *, tolerance: float = 1.0
) -> str | None:
    """A message when a recorded BMI disagrees with weight and height by more than ``tolerance``.

    The write check sees one Observation at a time, so the vitals workflow (which records
    weight, height and BMI together) calls this before writing the three.

    >>> bmi_problem(22.9, 70, 175) is None
    True
    >>> bmi_problem(30.0, 70, 175)
    'BMI 30.0 does not match weight 70 kg and height 175 cm (expected about 22.9 kg/m2); recompute it from the measured values'
    """
    if height_cm <= 0:
        return f"height {height_cm} cm cannot give a BMI; it must be positive"
    want = expected_bmi(weight_kg, height_cm)
    if abs(want - bmi) <= tolerance:
        return None
    return (
        f"BMI {bmi} does not match weight {weight_kg} kg and height {height_cm} cm "
        f"(expected about {want:.1f} kg/m2); recompute it from the measured values"
    )


def _loinc_code(concept: Any, table: Mapping[str, VitalSign]) -> str | None:
    if not isinstance(concept, dict):
        return None
    codings = concept.get("coding")
    if not isinstance(codings, list):
        return None
    for coding in codings:
        if isinstance(coding, dict) and coding.get("system") == LOINC:
            code = coding.get("code")
            if isinstance(code, str) and (code in table or code == BP_PANEL):
                return code
    return None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _quantity_problems(
    sign: VitalSign, quantity: Any, prefix: str, out: list[Problem], whole: bool = True
) -> float | None:
    """Check one valueQuantity; return its value when it is usable for cross-checks."""
    if not isinstance(quantity, dict):
        return None
    system = quantity.get("system")
    unit_code = quantity.get("code")
    why_unit = f"{sign.name} must carry its UCUM unit code so other systems can read and convert it"
    if system != UCUM:
        out.append(
            Problem(
                f"{prefix}.system",
                f"the UCUM system {UCUM!r}",
                found=system,
                why=why_unit,
                rule="vital",
            )
        )
    if not isinstance(unit_code, str) or unit_code not in sign.units:
        why = why_unit
        if isinstance(unit_code, str) and unit_code in _DISPLAY_MISTAKES:
            why = (
                f"{unit_code!r} is display text; the UCUM code is {_DISPLAY_MISTAKES[unit_code]!r}"
            )
        out.append(
            Problem(
                f"{prefix}.code",
                f"UCUM {sign.unit_list()} for {sign.name} (LOINC {sign.loinc})",
                found=unit_code,
                why=why,
                rule="vital",
            )
        )
        return None
    value = _number(quantity.get("value"))
    if value is None:
        return None  # absent or not a number: the structural rule reports the type
    low, high = sign.units[unit_code]
    if not low <= value <= high:
        out.append(
            Problem(
                f"{prefix}.value",
                f"a {sign.name} between {low:g} and {high:g} {unit_code}",
                found=value,
                why=_range_hint(sign, unit_code, value),
                rule="vital",
            )
        )
        return None
    if whole and sign.integer and value != int(value):
        out.append(
            Problem(
                f"{prefix}.value",
                f"a whole number of {unit_code}",
                found=value,
                why="blood pressure is measured and recorded in whole mm[Hg]; round the reading",
                rule="vital",
            )
        )
    return value


def _range_hint(sign: VitalSign, unit_code: str, value: float) -> str:
    for other, (low, high) in sign.units.items():
        convert = _CONVERT.get((other, unit_code))
        if other != unit_code and convert is not None and low <= value <= high:
            return (
                f"{value:g} is not a plausible {sign.name} in {_UNIT_WORDS.get(unit_code, unit_code)} but "
                f"looks like {_UNIT_WORDS.get(other, other)}: record it with unit code {other!r}, or convert "
                f"it ({convert(value):.1f} {unit_code})"
            )
    return "a value this far outside the human range is almost always a typo or a unit mix-up"


def _value_type_problems(
    element: dict[str, Any],
    code: str,
    table: Mapping[str, VitalSign],
    prefix: str,
    out: list[Problem],
) -> None:
    """A vital sign's value must be a Quantity; the BP panel's values live in its components."""
    other = next((k for k in element if k.startswith("value") and k != "valueQuantity"), None)
    if code == BP_PANEL:
        value_key = other or ("valueQuantity" if "valueQuantity" in element else None)
        if value_key is not None:
            out.append(
                Problem(
                    f"{prefix}{value_key}",
                    "no value on the blood pressure panel: systolic (8480-6) and diastolic (8462-4) "
                    "go in component[]",
                    found=value_key,
                    why="a single '120/80' value cannot be trended, graded or converted; each "
                    "pressure is its own component",
                    rule="vital",
                )
            )
    elif other is not None:
        sign = table[code]
        out.append(
            Problem(
                f"{prefix}{other}",
                f"valueQuantity with UCUM {sign.unit_list()} for {sign.name}",
                found=other,
                why="a vital sign recorded as text or another type cannot be charted, range-checked "
                "or converted",
                rule="vital",
            )
        )


def vital_problems(
    resource: dict[str, Any],
    table: Mapping[str, VitalSign] = VITAL_SIGNS,
    *,
    whole_mmhg: bool = True,
) -> list[Problem]:
    """Unit, range, whole-mmHg and systolic-above-diastolic problems of a vital-sign Observation.

    Resources that are not Observations with a vital-sign LOINC code return ``[]``.
    ``whole_mmhg=False`` (imports) accepts fractional blood pressures.

    >>> temp = {"resourceType": "Observation", "code": {"coding": [{"system": LOINC, "code": "8310-5"}]},
    ...         "valueQuantity": {"value": 98.6, "system": UCUM, "code": "Cel", "unit": "C"}}
    >>> print(vital_problems(temp)[0].why)
    98.6 is not a plausible body temperature in degrees Celsius (°C) but looks like degrees Fahrenheit (°F): record it with unit code '[degF]', or convert it (37.0 Cel)
    """
    if resource.get("resourceType") != "Observation":
        return []
    code = _loinc_code(resource.get("code"), table)
    if code is None:
        return []
    problems: list[Problem] = []
    _value_type_problems(resource, code, table, "", problems)
    if code in table and "valueQuantity" in resource:
        _quantity_problems(
            table[code], resource["valueQuantity"], "valueQuantity", problems, whole_mmhg
        )
    components = resource.get("component")
    if not isinstance(components, list):
        return problems
    values: dict[str, tuple[int, float]] = {}
    for i, component in enumerate(components):
        if not isinstance(component, dict):
            continue
        part = _loinc_code(component.get("code"), table)
        if part is not None:
            _value_type_problems(component, part, table, f"component[{i}].", problems)
        if part in table and "valueQuantity" in component:
            value = _quantity_problems(
                table[part],
                component["valueQuantity"],
                f"component[{i}].valueQuantity",
                problems,
                whole_mmhg,
            )
            if value is not None:
                values.setdefault(part, (i, value))
    if SYSTOLIC in values and DIASTOLIC in values:
        (i, systolic), (_, diastolic) = values[SYSTOLIC], values[DIASTOLIC]
        if systolic <= diastolic:
            why = (
                "systolic must exceed diastolic: the two values look swapped"
                if systolic < diastolic
                else "systolic must exceed diastolic: equal values mean no pulse pressure, which is not a reading"
            )
            problems.append(
                Problem(
                    f"component[{i}].valueQuantity.value",
                    f"a systolic pressure above the diastolic ({diastolic:g} mm[Hg])",
                    found=systolic,
                    why=why,
                    rule="vital",
                )
            )
    return problems
