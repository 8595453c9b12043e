"""Catalogue item 10 of EXERCISES.md: Quality measure.

Defines and registers ``reports/quality-measure`` (section "Running reports").
The package ``__init__`` imports the exercise modules in catalogue order; helpers shared
within the section are in ``common``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from ehr_sandbox.errors import ExerciseError
from ehr_sandbox.exercises.builtin.common import (
    DIASTOLIC,
    SYSTOLIC,
    blood_pressure,
    bp_values,
    parse_instant,
    patient_label,
    ref_id,
    sandbox_now,
    visible_patients,
)
from ehr_sandbox.exercises.builtin.reports.common import (
    ICD10,
    PHYSICIAN,
    age_in_years,
    answer_of,
    hand_in,
    local_instant,
    nothing_found,
    practice_offset,
    report_expects,
    set_diff,
    tz_of,
)
from ehr_sandbox.exercises.grading import GradingContext, codes
from ehr_sandbox.exercises.model import Check, Criterion, Exercise, Hint, Scenario, Solution
from ehr_sandbox.exercises.registry import register
from synthetic.systems import (
    CONDITION_CATEGORY,
    CONDITION_CLINICAL,
    CONDITION_VER_STATUS,
    LOINC,
    OBSERVATION_CATEGORY,
    UCUM,
)


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
PERIOD_ADVICE = (
    "use the most recent reading inside the measurement period, both ends included, whether its "
    "status is final, amended or corrected; not the latest value ever, nor the calendar year; "
    "as the chart stood when you started"
)


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
    observations: Iterable[Mapping[str, Any]],
    measure: str,
    start: str | None,
    end: str | None,
    statuses: tuple[str, ...] = FINAL,
) -> dict[str, tuple[str, Any]]:
    """Each patient's most recent reading (effective, value) with its local day in [start, end]."""
    by_key: dict[tuple[str, str], dict[str, Any]] = {}
    for o in observations:
        eff = o.get("effectiveDateTime")
        if o.get("status") not in statuses or not eff:
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
    statuses: tuple[str, ...] = FINAL,
) -> tuple[set[str], set[str]]:
    """(denominator, numerator) of the measure over the period, as the catalogue defines it."""
    spec = MEASURES[measure]
    lo, hi = spec["ages"]
    denominator = set()
    for p in patients:
        birth = str(p.get("birthDate") or "")
        if len(birth) != 10 or not _living_on(p, end):
            continue
        age = int(age_in_years(birth, end) // 1)
        if lo <= age <= hi and _has_condition(conditions, p["id"], spec["condition"], end):
            denominator.add(p["id"])
    last = _readings(observations, measure, start, end, statuses)
    return denominator, {pid for pid in denominator if _in_numerator(measure, last.get(pid))}


def _value_on_side(measure: str, numerator: bool, rng: Any) -> Any:
    """A reading that puts the patient in the numerator (or keeps them out of it)."""
    if measure == "bp":
        if numerator:  # controlled
            return (rng.randint(112, 132), rng.randint(68, 84))
        return (rng.randint(146, 168), rng.randint(91, 99))
    if numerator:  # poor control: above 9 %
        return round(rng.uniform(9.4, 11.8), 1)
    return round(rng.uniform(6.4, 7.8), 1)


def _a1c(subject: str, value: float, when: str) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": OBSERVATION_CATEGORY,
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
        "subject": {"reference": subject},
        "effectiveDateTime": when,
        "valueQuantity": {
            "value": value,
            "unit": "%",
            "system": UCUM,
            "code": "%",
        },
    }


def _reading(measure: str, subject: str, value: Any, when: str) -> dict[str, Any]:
    if measure == "bp":
        return blood_pressure(subject, value[0], value[1], when)
    return _a1c(subject, value, when)


def _setup_measure(sandbox: Any, variant: Any) -> Scenario:
    """Plant four readings on one eligible patient so that every period mistake flips them.

    The reading that counts is on the period's last day and was corrected (status
    ``corrected``); the day before it, a reading on the other side of the threshold; after
    the period but inside the calendar year, and again today, readings on the other side too,
    and in every later quality year of the calendar year the latest reading is on the other
    side (:func:`_flip_later_years`). So the latest value ever, the calendar year, a period
    that ends later (another variant's quality year), a period end that leaves out its last
    day and a filter on status 'final' all give the wrong answer for this patient, in every
    variant. Whether the counting reading is in the numerator is the variant's pick.
    """
    rng = variant.rng()
    measure = variant.pick(sorted(MEASURES), salt="measure")
    spec = MEASURES[measure]
    year = sandbox.reference_date.year - 1
    # The practice's 12-month quality year ends at a month end before November of last year
    # (variant), so it is never the calendar year.
    last_month = variant.pick([3, 4, 5, 6, 7, 8, 9, 10, 11], salt="period")
    period_end = date(year, last_month + 1, 1) - timedelta(days=1)
    start = date(period_end.year - 1, period_end.month, period_end.day) + timedelta(days=1)
    if period_end.month == 2:  # a year before a month end is a month end too
        start = date(period_end.year - 1, 3, 1)
    start_s, end_s = start.isoformat(), period_end.isoformat()
    offset = practice_offset(sandbox)
    lo, hi = spec["ages"]

    def eligible(found: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [
            p
            for p in found
            if len(str(p.get("birthDate") or "")) == 10
            and lo + 1 <= age_in_years(p["birthDate"], end_s) < hi - 1
        ]

    patients = eligible(visible_patients(sandbox, PHYSICIAN, minimum=0))
    if not patients:
        # The physician's panel has no one of the measure's ages: a patient of that age gets a
        # visit with the physician this week (so the chart opens to him), whatever the clinic.
        everyone = eligible(
            sorted(sandbox.system_session().resources("Patient"), key=lambda p: p["id"])
        )
        if not everyone:
            raise ExerciseError(
                f"setup: no patient aged {lo}-{hi} in this clinic; generate a larger sandbox"
            )
        patients = [variant.pick(everyone, salt="panel")]
        _book_with_physician(sandbox, patients[0], offset)
    doctor = sandbox.login(PHYSICIAN)
    conditions = list(doctor.resources("Condition"))
    with_condition = [
        p for p in patients if _has_condition(conditions, p["id"], spec["condition"], end_s)
    ]
    patient = variant.pick(with_condition or patients, salt="patient")
    pid, subject = patient["id"], f"Patient/{patient['id']}"
    if not with_condition:
        _plant_condition(doctor, spec, pid, year, rng)
    in_numerator = variant.pick([True, False], salt="side")
    counts = _value_on_side(measure, in_numerator, rng)
    other = _value_on_side(measure, not in_numerator, rng)
    own = [o for o in doctor.resources("Observation") if ref_id(o.get("subject")) == pid]

    def after_existing(day: date, hour: int, minute: int) -> datetime:
        """A local time on ``day``, later than any reading of the patient already on that day."""
        when = datetime.fromisoformat(local_instant(day, hour, minute, offset))
        same_day = [
            t
            for o in own
            if str(o.get("effectiveDateTime", ""))[:10] == day.isoformat()
            and (t := parse_instant(o.get("effectiveDateTime"))) is not None
        ]
        if same_day and max(same_day) >= when:
            when = max(same_day) + timedelta(minutes=1)
        return when

    day_before = after_existing(period_end - timedelta(days=1), 23, 50)
    last_day = after_existing(period_end, 16, 40)
    # After the period, inside its calendar year, and after any reading already there.
    in_year = datetime.fromisoformat(
        local_instant(period_end + timedelta(days=rng.randint(5, 25)), 10, 20, offset)
    )
    later = [
        t
        for o in own
        if end_s < str(o.get("effectiveDateTime", ""))[:10] <= f"{year}-12-31"
        and (t := parse_instant(o.get("effectiveDateTime"))) is not None
    ]
    if later and max(later) >= in_year:
        in_year = max(later) + timedelta(minutes=1)
    today = sandbox_now(sandbox).astimezone(tz_of(offset)).replace(microsecond=0) - timedelta(
        minutes=30
    )
    doctor.create(_reading(measure, subject, other, day_before.isoformat()))
    # The counting reading was first keyed with the other value, then corrected.
    first = doctor.create(_reading(measure, subject, other, last_day.isoformat()))
    fixed = _reading(measure, subject, counts, last_day.isoformat())
    fixed.update(id=first["id"], meta=first.get("meta", {}))
    doctor.correct(fixed, reason="Value transcribed from the wrong line of the lab report")
    doctor.create(_reading(measure, subject, other, in_year.isoformat()))
    doctor.create(_reading(measure, subject, other, today.isoformat()))
    _flip_later_years(doctor, measure, pid, other, in_numerator, period_end)
    observations = list(doctor.resources("Observation"))
    conditions = list(doctor.resources("Condition"))
    denominator, numerator = _measure_expected(
        doctor.resources("Patient"), conditions, observations, measure, start_s, end_s
    )
    if pid not in denominator or (pid in numerator) != in_numerator:
        raise ExerciseError(
            f"setup: the planted readings of Patient/{pid} do not decide the measure"
        )
    protect = {f"Patient/{p}" for p in denominator} | {
        f"{r['resourceType']}/{r['id']}"
        for r in (*observations, *conditions)
        if ref_id(r.get("subject")) in denominator
    }
    return Scenario(
        facts={
            "measure": measure,
            "measure_title": spec["title"],
            "report": spec["report"],
            "numerator_rule": spec["numerator"],
            "flag": spec["flag"],
            "period_start": start_s,
            "period_end": end_s,
        },
        answer={
            "denominator": sorted(denominator),
            "numerator": sorted(numerator),
            "planted_id": pid,
            "planted_in_numerator": in_numerator,
            "counting_reading": first["id"],
        },
        protect=tuple(sorted(protect)),
    )


def _next_month_end(day: date) -> date:
    """The last day of the month after ``day``'s.

    >>> _next_month_end(date(2025, 3, 31)), _next_month_end(date(2025, 12, 31))
    (datetime.date(2025, 4, 30), datetime.date(2026, 1, 31))
    """
    first = date(day.year + day.month // 12, day.month % 12 + 1, 1)
    return date(first.year + first.month // 12, first.month % 12 + 1, 1) - timedelta(days=1)


def _flip_later_years(
    doctor: Any, measure: str, pid: str, other: Any, in_numerator: bool, period_end: date
) -> None:
    """For every quality year ending at a later month end of the same calendar year (another
    variant's period), make the planted patient's latest reading inside it one on the other
    side: a reading a minute after whatever reading the patient already had there (never
    inside the period itself: at the earliest the morning after it)."""
    end = _next_month_end(period_end)
    while end.year == period_end.year:
        mine = [o for o in doctor.resources("Observation") if ref_id(o.get("subject")) == pid]
        last = _readings(mine, measure, None, end.isoformat()).get(pid)
        if last is None or _in_numerator(measure, last) == in_numerator:
            seen = datetime.fromisoformat(str(last[0])) if last else None
            tz = seen.tzinfo if seen is not None else UTC
            morning = datetime.combine(period_end + timedelta(days=1), time(9, 10), tzinfo=tz)
            when = max(morning, seen + timedelta(minutes=1)) if seen is not None else morning
            doctor.create(_reading(measure, f"Patient/{pid}", other, when.isoformat()))
        end = _next_month_end(end)


def _book_with_physician(sandbox: Any, patient: Mapping[str, Any], offset: str) -> None:
    """A follow-up visit with the physician today (his chart access follows his schedule)."""
    me = f"Practitioner/{sandbox.user(PHYSICIAN).practitioner_id}"
    start = datetime.fromisoformat(local_instant(sandbox.reference_date, 15, 40, offset))
    sandbox.system_session().create(
        {
            "resourceType": "Appointment",
            "status": "booked",
            "description": "Chronic care follow-up",
            "start": start.isoformat(),
            "end": (start + timedelta(minutes=20)).isoformat(),
            "participant": [
                {"actor": {"reference": f"Patient/{patient['id']}"}, "status": "accepted"},
                {"actor": {"reference": me}, "status": "accepted"},
            ],
        }
    )


def _plant_condition(doctor: Any, spec: Mapping[str, Any], pid: str, year: int, rng: Any) -> None:
    code, display = spec["plant_condition"]
    doctor.create(
        {
            "resourceType": "Condition",
            "clinicalStatus": {
                "coding": [
                    {
                        "system": CONDITION_CLINICAL,
                        "code": "active",
                    }
                ]
            },
            "verificationStatus": {
                "coding": [
                    {
                        "system": CONDITION_VER_STATUS,
                        "code": "confirmed",
                    }
                ]
            },
            "category": [
                {
                    "coding": [
                        {
                            "system": CONDITION_CATEGORY,
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


def _patient_namer(ctx: GradingContext) -> Callable[[str], str]:
    names = {p["id"]: patient_label(p) for p in ctx.all("Patient")}
    return lambda i: f"{names.get(i, 'unknown patient')} (Patient/{i})"


def _denominator_check(ctx: GradingContext) -> Check:
    f = ctx.facts
    denominator = set(ctx.answer["denominator"])
    expected = f"the measure's eligible population for {f['period_start']}..{f['period_end']}"
    answer = answer_of(ctx, "reports/quality-measure")
    if answer is None:
        return nothing_found(expected)
    found = set(answer["denominator"])
    if found == denominator:
        return Check(True, f"{len(found)} patients", expected)
    return Check(
        False,
        set_diff(found, denominator, "patients", _patient_namer(ctx)),
        expected,
        "the denominator is the eligible population (age at the period end, diagnosis), whatever their values",
    )


def _numerator_check(ctx: GradingContext) -> Check:
    f, a = ctx.facts, ctx.answer
    numerator = set(a["numerator"])
    expected = f"the patients of the denominator for whom {f['numerator_rule']}"
    answer = answer_of(ctx, "reports/quality-measure")
    if answer is None:
        return nothing_found(expected)
    found = set(answer["numerator"])
    if found == numerator:
        return Check(True, f"{len(found)} patients", expected)
    planted = a["planted_id"]
    advice = (
        PERIOD_ADVICE
        if (planted in found) != (planted in numerator)
        else "apply the numerator rule to each patient of the denominator, as the chart stood when you started"
    )
    return Check(
        False, set_diff(found, numerator, "patients", _patient_namer(ctx)), expected, advice
    )


def _run_measure(att: Any, start: str, end: str) -> list[dict[str, Any]]:
    return att.session.reports.run(
        att.facts["report"], period_start=start, period_end=end
    ).to_pylist()


def _hand_in_rows(att: Any, rows: list[dict[str, Any]]) -> None:
    flag = att.facts["flag"]
    hand_in(
        att,
        {
            "denominator": [r["patient"] for r in rows],
            "numerator": [r["patient"] for r in rows if r[flag]],
        },
    )


def _measure_solution(att: Any) -> None:
    f = att.facts
    _hand_in_rows(att, _run_measure(att, f["period_start"], f["period_end"]))


def _measure_latest_ever(att: Any) -> None:
    f, s = att.facts, att.session
    rows = _run_measure(att, f["period_start"], f["period_end"])
    denominator = [r["patient"] for r in rows]
    last = _readings(list(s.resources("Observation")), f["measure"], None, None)
    hand_in(
        att,
        {
            "denominator": denominator,
            "numerator": [p for p in denominator if _in_numerator(f["measure"], last.get(p))],
        },
    )


def _measure_calendar_year(att: Any) -> None:
    year = att.facts["period_end"][:4]
    _hand_in_rows(att, _run_measure(att, f"{year}-01-01", f"{year}-12-31"))


def _measure_month_later(att: Any) -> None:
    """The reference run for the quality year that ends a month later (another variant's
    period: the practice's year, misread)."""
    f = att.facts
    end = date.fromisoformat(f["period_end"])
    later_end = date(end.year + end.month // 12, end.month % 12 + 1, 1)  # the next month's
    later_end = date(later_end.year + later_end.month // 12, later_end.month % 12 + 1, 1)
    start = date.fromisoformat(f["period_start"])
    later_start = date(start.year + start.month // 12, start.month % 12 + 1, 1)
    _hand_in_rows(
        att,
        _run_measure(att, later_start.isoformat(), (later_end - timedelta(days=1)).isoformat()),
    )


def _measure_end_exclusive(att: Any) -> None:
    # "effective < period_end": the period's last day is left out.
    f = att.facts
    before = (date.fromisoformat(f["period_end"]) - timedelta(days=1)).isoformat()
    rows = _run_measure(att, f["period_start"], f["period_end"])
    s = att.session
    _, numerator = _measure_expected(
        s.resources("Patient"),
        list(s.resources("Condition")),
        list(s.resources("Observation")),
        f["measure"],
        f["period_start"],
        before,
    )
    hand_in(
        att,
        {
            "denominator": [r["patient"] for r in rows],
            "numerator": [r["patient"] for r in rows if r["patient"] in numerator],
        },
    )


def _measure_final_only(att: Any) -> None:
    # Only status 'final' readings: a corrected value is dropped.
    f, s = att.facts, att.session
    rows = _run_measure(att, f["period_start"], f["period_end"])
    _, numerator = _measure_expected(
        s.resources("Patient"),
        list(s.resources("Condition")),
        list(s.resources("Observation")),
        f["measure"],
        f["period_start"],
        f["period_end"],
        statuses=("final",),
    )
    hand_in(
        att,
        {
            "denominator": [r["patient"] for r in rows],
            "numerator": [r["patient"] for r in rows if r["patient"] in numerator],
        },
    )


def _flip_planted(att: Any) -> tuple[str, Any]:
    """The planted patient and a value on the other side of their counting reading."""
    f, s = att.facts, att.session
    rows = _run_measure(att, f["period_start"], f["period_end"])
    flagged = {r["patient"]: r[f["flag"]] for r in rows}
    # the patient whose last in-period reading is on the period's last day
    last = _readings(
        list(s.resources("Observation")), f["measure"], f["period_start"], f["period_end"]
    )
    pid = next(p for p, (eff, _) in last.items() if eff[:10] == f["period_end"] and p in flagged)
    return pid, _value_on_side(f["measure"], not flagged[pid], att.variant.rng())


def _measure_chart_reading(att: Any) -> None:
    # Answer-key change: chart a new reading late on the period's last day, then run the report.
    f, s = att.facts, att.session
    pid, value = _flip_planted(att)
    when = f"{f['period_end']}T23:55:00-05:00"
    s.create(_reading(f["measure"], f"Patient/{pid}", value, when))
    _measure_solution(att)


def _measure_void_result(att: Any) -> None:
    # Answer-key change: void the reading that decides the measure, then run the report.
    f, s = att.facts, att.session
    pid, _ = _flip_planted(att)
    for o in s.search("Observation", patient=f"Patient/{pid}").fetch():
        if (
            str(o.get("effectiveDateTime", ""))[:10] == f["period_end"]
            and o.get("status") == "corrected"
        ):
            s.mark_entered_in_error(f"Observation/{o['id']}", reason="Duplicate entry")
    _measure_solution(att)


QUALITY_MEASURE = register(
    Exercise(
        id="reports/quality-measure",
        skip_traps=("done-twice", "one-more-record"),  # a report handed in again replaces the first
        title="Quality measure: numerator and denominator",
        topic="reports",
        competencies=("I.P.3", "II.P.2", "VI.P.6"),
        minutes=20,
        role=PHYSICIAN,
        grader=PHYSICIAN,
        summary="Report a quality measure for last year's measurement period: who counts, and who meets it.",
        topics=("reports", "diagnostic-tests"),
        expects=report_expects(),
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
            "calendar-year": Solution(
                _measure_calendar_year,
                fails="numerator",
                message="nor the calendar year",
                description="use the calendar year instead of the measurement period",
            ),
            "a-month-later": Solution(
                _measure_month_later,
                fails="numerator",
                message="measurement period",
                description="the quality year that ends a month later (another variant's period)",
            ),
            "period-end-excluded": Solution(
                _measure_end_exclusive,
                fails="numerator",
                message="both ends included",
                description="leave out the period's last day (effective < period end)",
            ),
            "final-status-only": Solution(
                _measure_final_only,
                fails="numerator",
                message="amended or corrected",
                description="count only readings with status 'final' (drops corrected ones)",
            ),
            "chart-a-reading": Solution(
                _measure_chart_reading,
                fails="numerator",
                message="as the chart stood when you started",
                description="chart a new reading on the period's last day, then run the report (answer-key change)",
            ),
            "void-the-result": Solution(
                _measure_void_result,
                fails="numerator",
                message="as the chart stood when you started",
                description="void the reading that decides the measure, then run the report (answer-key change)",
            ),
            "latest-ever": Solution(
                _measure_latest_ever,
                fails="numerator",
                message="not the latest value ever",
                description="judge each patient by their latest value ever",
            ),
        },
    )
)
