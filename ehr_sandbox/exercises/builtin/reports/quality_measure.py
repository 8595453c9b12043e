"""Catalogue item 10 of EXERCISES.md: Quality measure.

Defines and registers ``reports/quality-measure`` (section "Running reports").
The package ``__init__`` imports the exercise modules in catalogue order; helpers shared
within the section are in ``common``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

from ehr_sandbox.errors import ExerciseError
from ehr_sandbox.exercises.builtin.common import (
    DIASTOLIC,
    SYSTOLIC,
    blood_pressure,
    bp_values,
    parse_instant,
    patient_facts,
    patient_label,
    ref_id,
    visible_patients,
)
from ehr_sandbox.exercises.builtin.reports.common import (
    ICD10,
    LOINC,
    PHYSICIAN,
    _age_years,
    _answer_of,
    _local_instant,
    _nothing,
    _practice_offset,
    _sandbox_now,
    _set_diff,
    _tz,
    hand_in,
)
from ehr_sandbox.exercises.grading import GradingContext, codes
from ehr_sandbox.exercises.model import Check, Criterion, Exercise, Hint, Solution
from ehr_sandbox.exercises.registry import register


# ------------------------------------------------------------------------------------------
# 10. Quality measure
# ------------------------------------------------------------------------------------------
def _living_on(patient: Mapping[str, Any], day: str) -> bool:
    if patient.get("deceasedBoolean"):
        return False
    died = patient.get("deceasedDateTime")
    return not died or str(died)[:10] > day


A1C_CODES = frozenset({"4548-4", "17856-6"})
FINAL = ("final", "amended", "corrected")
MEASURES: dict[str, dict[str, Any]] = {
    "bp": {
        "report": "bp_control",
        "title": "Controlling high blood pressure",
        "condition": ("I10", "I11", "I12", "I13", "I15", "I16"),
        "ages": (18, 85),
        "numerator": "the most recent blood pressure inside the period is below 140/90",
        "flag": "controlled",
        "plant_condition": ("I10", "Essential (primary) hypertension"),
    },
    "a1c": {
        "report": "a1c_poor_control",
        "title": "Diabetes: HbA1c poor control (> 9%)",
        "condition": ("E10", "E11", "E13"),
        "ages": (18, 75),
        "numerator": "the most recent HbA1c inside the period is above 9.0% (or there is none): an inverse measure",
        "flag": "poor_control",
        "plant_condition": ("E11.9", "Type 2 diabetes mellitus without complications"),
    },
}
PERIOD_ADVICE = "use the most recent value inside the measurement period, not the latest value ever"


def _icd10(cond: Mapping[str, Any]) -> str:
    for c in (cond.get("code") or {}).get("coding", []):
        if c.get("system") == ICD10:
            return str(c.get("code", ""))
    return ""


def _has_condition(
    conditions: Iterable[Mapping[str, Any]], patient_id: str, prefixes: tuple[str, ...], end: str
) -> bool:
    for c in conditions:
        if ref_id(c.get("subject")) != patient_id or not _icd10(c).startswith(prefixes):
            continue
        clinical = codes(c.get("clinicalStatus")) or {"active"}
        if not clinical & {"active", "recurrence", "relapse"}:
            continue
        if codes(c.get("verificationStatus")) & {"entered-in-error", "refuted"}:
            continue
        onset = str(c.get("onsetDateTime") or "")[:10]
        if not onset or onset <= end:
            return True
    return False


def _readings(
    observations: Iterable[Mapping[str, Any]], measure: str, start: str | None, end: str | None
) -> dict[str, tuple[str, Any]]:
    """Each patient's most recent reading (effective, value) with its local day in [start, end]."""
    by_key: dict[tuple[str, str], dict[str, Any]] = {}
    for o in observations:
        eff = o.get("effectiveDateTime")
        if o.get("status") not in FINAL or not eff:
            continue
        day = str(eff)[:10]
        if (start and day < start) or (end and day > end):
            continue
        pid = ref_id(o.get("subject"))
        obs_codes = codes(o.get("code"))
        slot = by_key.setdefault((pid, str(eff)), {})
        if measure == "a1c":
            value = (o.get("valueQuantity") or {}).get("value")
            if obs_codes & A1C_CODES and value is not None:
                slot["a1c"] = value
            continue
        systolic, diastolic = bp_values(o)
        for code, value in ((SYSTOLIC, systolic), (DIASTOLIC, diastolic)):
            if value is not None:
                slot[code] = value
        q = (o.get("valueQuantity") or {}).get("value")
        for code in (SYSTOLIC, DIASTOLIC):
            if code in obs_codes and q is not None:
                slot[code] = q
    latest: dict[str, tuple[datetime, str, Any]] = {}
    for (pid, eff), slot in by_key.items():
        if measure == "a1c":
            if "a1c" not in slot:
                continue
            value: Any = slot["a1c"]
        else:
            if SYSTOLIC not in slot or DIASTOLIC not in slot:
                continue
            value = (slot[SYSTOLIC], slot[DIASTOLIC])
        when = parse_instant(eff) or datetime.fromisoformat(eff[:10]).replace(tzinfo=UTC)
        if pid not in latest or when > latest[pid][0]:
            latest[pid] = (when, eff, value)
    return {pid: (eff, value) for pid, (_, eff, value) in latest.items()}


def _in_numerator(measure: str, reading: tuple[str, Any] | None) -> bool:
    if measure == "a1c":
        return reading is None or float(reading[1]) > 9
    return reading is not None and reading[1][0] < 140 and reading[1][1] < 90


def _measure_expected(
    patients: Iterable[Mapping[str, Any]],
    conditions: list[dict[str, Any]],
    observations: list[dict[str, Any]],
    measure: str,
    start: str,
    end: str,
) -> tuple[set[str], set[str]]:
    """(denominator, numerator) of the measure over the period, as the catalogue defines it."""
    spec = MEASURES[measure]
    lo, hi = spec["ages"]
    denominator = set()
    for p in patients:
        birth = str(p.get("birthDate") or "")
        if len(birth) != 10 or not _living_on(p, end):
            continue
        age = int(_age_years(birth, end) // 1)
        if lo <= age <= hi and _has_condition(conditions, p["id"], spec["condition"], end):
            denominator.add(p["id"])
    last = _readings(observations, measure, start, end)
    return denominator, {pid for pid in denominator if _in_numerator(measure, last.get(pid))}


def _setup_measure(sandbox: Any, variant: Any) -> dict[str, Any]:
    rng = variant.rng()
    measure = variant.pick(sorted(MEASURES), salt="measure")
    spec = MEASURES[measure]
    year = sandbox.reference_date.year - 1
    # The practice's 12-month quality year ends at a month end of last year (variant).
    last_month = variant.pick([9, 10, 11, 12], salt="period")
    period_end = date(year + (last_month == 12), last_month % 12 + 1, 1) - timedelta(days=1)
    start = date(period_end.year - 1, period_end.month, period_end.day) + timedelta(days=1)
    start, end = start.isoformat(), period_end.isoformat()
    offset = _practice_offset(sandbox)
    lo, hi = spec["ages"]
    patients = [
        p
        for p in visible_patients(sandbox, PHYSICIAN)
        if len(str(p.get("birthDate") or "")) == 10
        and lo + 1 <= _age_years(p["birthDate"], end) < hi
    ]
    if not patients:
        raise ExerciseError(
            f"setup: no patient aged {lo}-{hi} that {PHYSICIAN} can see; generate a larger sandbox"
        )
    doctor = sandbox.login(PHYSICIAN)
    conditions = list(doctor.resources("Condition"))
    with_condition = [
        p for p in patients if _has_condition(conditions, p["id"], spec["condition"], end)
    ]
    patient = variant.pick(with_condition or patients, salt="patient")
    pid = patient["id"]
    if not with_condition:
        code, display = spec["plant_condition"]
        doctor.create(
            {
                "resourceType": "Condition",
                "clinicalStatus": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                            "code": "active",
                        }
                    ]
                },
                "verificationStatus": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                            "code": "confirmed",
                        }
                    ]
                },
                "category": [
                    {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/condition-category",
                                "code": "problem-list-item",
                            }
                        ]
                    }
                ],
                "code": {
                    "coding": [{"system": ICD10, "code": code, "display": display}],
                    "text": display,
                },
                "subject": {"reference": f"Patient/{pid}"},
                "onsetDateTime": f"{year - 2}-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}",
                "recordedDate": f"{year - 2}-10-01",
            }
        )
    # The latest reading inside the period and a newer one after it, on opposite sides of the
    # threshold: only the one inside the period counts.
    own = [o for o in doctor.resources("Observation") if ref_id(o.get("subject")) == pid]
    latest_in = _readings(own, measure, start, end).get(pid)
    inside = datetime.fromisoformat(_local_instant(date.fromisoformat(end), 16, 40, offset))
    if latest_in and (parse_instant(latest_in[0]) or inside) >= inside:
        inside = (parse_instant(latest_in[0]) or inside) + timedelta(minutes=5)
    after = _sandbox_now(sandbox).astimezone(_tz(offset)).replace(microsecond=0) - timedelta(
        minutes=30
    )
    if after.date().isoformat() <= end:
        after = datetime.fromisoformat(
            _local_instant(date.fromisoformat(end) + timedelta(days=1), 0, 30, offset)
        )
    if measure == "bp":
        in_value: Any = (rng.randint(146, 168), rng.randint(91, 99))
        after_value: Any = (rng.randint(118, 132), rng.randint(70, 82))
        for value, when in ((in_value, inside), (after_value, after)):
            doctor.create(blood_pressure(f"Patient/{pid}", value[0], value[1], when.isoformat()))
    else:
        in_value = round(rng.uniform(9.4, 11.8), 1)
        after_value = round(rng.uniform(6.4, 7.8), 1)
        for value, when in ((in_value, inside), (after_value, after)):
            doctor.create(
                {
                    "resourceType": "Observation",
                    "status": "final",
                    "category": [
                        {
                            "coding": [
                                {
                                    "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                    "code": "laboratory",
                                }
                            ]
                        }
                    ],
                    "code": {
                        "coding": [
                            {
                                "system": LOINC,
                                "code": "4548-4",
                                "display": "Hemoglobin A1c/Hemoglobin.total in Blood",
                            }
                        ]
                    },
                    "subject": {"reference": f"Patient/{pid}"},
                    "effectiveDateTime": when.isoformat(),
                    "valueQuantity": {
                        "value": value,
                        "unit": "%",
                        "system": "http://unitsofmeasure.org",
                        "code": "%",
                    },
                }
            )
    return {
        "measure": measure,
        "measure_title": spec["title"],
        "report": spec["report"],
        "numerator_rule": spec["numerator"],
        "flag": spec["flag"],
        "period_start": start,
        "period_end": end,
        **patient_facts(patient, "planted"),
        "inside_value": list(in_value) if isinstance(in_value, tuple) else in_value,
        "after_value": list(after_value) if isinstance(after_value, tuple) else after_value,
    }


def _measure_sets(ctx: GradingContext) -> tuple[set[str], set[str]]:
    f = ctx.facts
    return _measure_expected(
        ctx.all("Patient"),
        ctx.all("Condition"),
        ctx.all("Observation"),
        f["measure"],
        f["period_start"],
        f["period_end"],
    )


def _patient_namer(ctx: GradingContext) -> Callable[[str], str]:
    names = {p["id"]: patient_label(p) for p in ctx.all("Patient")}
    return lambda i: f"{names.get(i, 'unknown patient')} (Patient/{i})"


def _denominator_check(ctx: GradingContext) -> Check:
    f = ctx.facts
    denominator, _ = _measure_sets(ctx)
    expected = f"the {len(denominator)} patients of the measure's population in {f['period_start']}..{f['period_end']}"
    answer = _answer_of(ctx, "reports/quality-measure")
    if answer is None:
        return _nothing(expected)
    found = set(answer["denominator"])
    if found == denominator:
        return Check(True, f"{len(found)} patients", expected)
    return Check(
        False,
        _set_diff(found, denominator, "patients", _patient_namer(ctx)),
        expected,
        "the denominator is the eligible population (age, diagnosis), whatever their values",
    )


def _numerator_check(ctx: GradingContext) -> Check:
    f = ctx.facts
    _, numerator = _measure_sets(ctx)
    expected = f"the {len(numerator)} patients for whom {f['numerator_rule']}"
    answer = _answer_of(ctx, "reports/quality-measure")
    if answer is None:
        return _nothing(expected)
    found = set(answer["numerator"])
    if found == numerator:
        return Check(True, f"{len(found)} patients", expected)
    planted = f["planted_id"]
    advice = (
        PERIOD_ADVICE
        if (planted in found) != (planted in numerator)
        else "apply the numerator rule to each patient of the denominator"
    )
    return Check(
        False, _set_diff(found, numerator, "patients", _patient_namer(ctx)), expected, advice
    )


def _measure_solution(att: Any) -> None:
    f = att.facts
    rows = att.session.reports.run(
        f["report"], period_start=f["period_start"], period_end=f["period_end"]
    ).to_pylist()
    hand_in(
        att,
        {
            "denominator": [r["patient"] for r in rows],
            "numerator": [r["patient"] for r in rows if r[f["flag"]]],
        },
    )


def _measure_latest_ever(att: Any) -> None:
    f, s = att.facts, att.session
    rows = s.reports.run(
        f["report"], period_start=f["period_start"], period_end=f["period_end"]
    ).to_pylist()
    denominator = [r["patient"] for r in rows]
    last = _readings(list(s.resources("Observation")), f["measure"], None, None)
    hand_in(
        att,
        {
            "denominator": denominator,
            "numerator": [p for p in denominator if _in_numerator(f["measure"], last.get(p))],
        },
    )


QUALITY_MEASURE = register(
    Exercise(
        id="reports/quality-measure",
        title="Quality measure: numerator and denominator",
        topic="reports",
        competencies=("I.P.3", "II.P.2", "VI.P.6"),
        minutes=20,
        role=PHYSICIAN,
        grader=PHYSICIAN,
        summary="Report a quality measure for last year's measurement period: who counts, and who meets it.",
        setup=_setup_measure,
        instructions=(
            "Dr. Patel reports **{measure_title}** for the patients of his panel for the measurement period **{period_start} to "
            "{period_end}**.\n\n"
            "- Denominator: the eligible patients (age and diagnosis, as the report `{report}` defines them).\n"
            "- Numerator: those for whom {numerator_rule}.\n\n"
            '1. Run `att.session.reports.run("{report}", period_start=..., period_end=...)`.\n'
            "2. Hand in the patient ids:\n\n"
            "```python\nfrom ehr_sandbox.exercises.builtin.reports import hand_in\n"
            'hand_in(att, {{"denominator": [...], "numerator": [...]}})\n```\n\n'
            "Then call `att.check()`."
        ),
        criteria=(
            Criterion(
                "denominator",
                2,
                _denominator_check,
                "A measure's rate is only comparable when its population follows the specification (eCQM denominator rules; MAERB VI.P.6).",
            ),
            Criterion(
                "numerator",
                3,
                _numerator_check,
                "A quality measure looks at the measurement period only: values after it belong to next year's report (eCQM measurement period; MAERB II.P.2).",
            ),
        ),
        hints=(
            Hint(
                "Pass both period dates to the report; its defaults are the last 12 months, not the measurement year."
            ),
            Hint(
                "Readings taken after the period end do not count, even when they are the newest.",
                cost=1,
            ),
        ),
        solution=Solution(
            _measure_solution, description="run the measure's report over the measurement period"
        ),
        wrong_solutions={
            "latest-ever": Solution(
                _measure_latest_ever,
                fails="numerator",
                message="not the latest value ever",
                description="judge each patient by their latest value ever",
            ),
        },
    )
)
