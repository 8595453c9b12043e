"""Catalogue section "Running reports": exercises 7-12 of EXERCISES.md.

The student runs the clinic's reports (``att.session.reports.run(...)``, custom SQL with
``att.session.reports.sql(...)``, or a ViewDefinition with ``att.session.run_view(...)``) and
hands in what the report answers with :func:`hand_in`. The grader computes the expected
answer itself from the attempt's sandbox (never a stored key), reading as the student's role
so that both see the same rows, and compares.

>>> from ehr_sandbox.exercises import get
>>> get("reports/day-schedule").role
'fd.smith'
>>> sorted(get("reports/immunizations-due").wrong_solutions)
['count-voided']
>>> money("12.5"), money(0.1 + 0.2)
('12.50', '0.30')
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from ehr_sandbox.errors import ExerciseError, SandboxError, ViewDefinitionError
from ehr_sandbox.exercises.builtin.common import (
    DIASTOLIC,
    SYSTOLIC,
    blood_pressure,
    bp_values,
    mrn,
    parse_instant,
    patient_facts,
    patient_label,
    ref_id,
    visible_patients,
)
from ehr_sandbox.exercises.grading import GradingContext, codes
from ehr_sandbox.exercises.model import Check, Criterion, Exercise, Hint, Solution
from ehr_sandbox.exercises.registry import register

__all__ = [
    "ACCESS_REPORT",
    "ANSWERS_KEY",
    "BILLING_TOTALS",
    "DAY_SCHEDULE",
    "IMMUNIZATIONS_DUE",
    "QUALITY_MEASURE",
    "VITALS_VIEW",
    "hand_in",
    "handed_in",
    "money",
    "reference_vitals_view",
]

ANSWERS_KEY = "exercises.answers"
"""``sandbox.state`` key under which :func:`hand_in` keeps answers, per (exercise, student)."""

FRONT_DESK = "fd.smith"
MA = "ma.garcia"
BILLING = "billing.davis"
PRIVACY_OFFICER = "po.wilson"
PHYSICIAN = "dr.patel"
LOINC = "http://loinc.org"
CVX = "http://hl7.org/fhir/sid/cvx"
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
HAND_IN = (
    "hand in your answer with `hand_in(att, ...)` (from ehr_sandbox.exercises.builtin.reports)"
)


# ------------------------------------------------------------------------------------------
# Handing in an answer
# ------------------------------------------------------------------------------------------
def _ids(value: Any, field: str) -> list[str]:
    """Sorted unique ids from an iterable of ids or 'Type/id' references."""
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Iterable):
        raise ExerciseError(f"answer: {field} must be a list of ids (found {type(value).__name__})")
    out = set()
    for item in value:
        if not isinstance(item, str) or not item.strip():
            raise ExerciseError(f"answer: {field} must hold id strings (found {item!r})")
        out.add(item.strip().rsplit("/", 1)[-1])
    return sorted(out)


def money(value: Any, field: str = "amount") -> str:
    """An amount of USD as text with exactly two decimals (half-up rounding to the cent).

    >>> money(Decimal("1.005")), money(3)
    ('1.01', '3.00')
    >>> money("ten")
    Traceback (most recent call last):
    ...
    ehr_sandbox.errors.ExerciseError: answer: amount must be an amount in USD such as 123.45 (found 'ten')
    """
    if isinstance(value, bool):
        raise ExerciseError(
            f"answer: {field} must be an amount in USD such as 123.45 (found {value!r})"
        )
    try:
        # str() first: a float goes through its shortest repr, not its binary expansion.
        amount = Decimal(str(value).strip().lstrip("$").replace(",", ""))
    except (InvalidOperation, ValueError):
        raise ExerciseError(
            f"answer: {field} must be an amount in USD such as 123.45 (found {value!r})"
        ) from None
    if not amount.is_finite():
        raise ExerciseError(f"answer: {field} must be a finite amount (found {value!r})")
    return str(amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def _require(answer: Any, keys: tuple[str, ...], exercise_id: str) -> Mapping[str, Any]:
    if not isinstance(answer, Mapping):
        raise ExerciseError(
            f"answer for {exercise_id}: expected a dict with keys {list(keys)} (found {type(answer).__name__})"
        )
    missing = [k for k in keys if k not in answer]
    if missing:
        raise ExerciseError(
            f"answer for {exercise_id}: {missing[0]} is missing; expected keys {list(keys)}"
        )
    return answer


def _scalar(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return None if value != value else value  # NaN (pandas' missing) -> None
    if isinstance(value, Decimal):
        return str(value)
    iso = getattr(value, "isoformat", None)
    return iso() if callable(iso) else str(value)


def _table(value: Any, field: str) -> dict[str, Any]:
    """A table (Report, DataFrame or list of dicts) as {"columns": [...], "rows": [...]}."""
    if hasattr(value, "to_pylist"):
        value = value.to_pylist()
    elif hasattr(value, "to_dict") and hasattr(value, "columns"):
        columns = [str(c) for c in value.columns]
        value = value.to_dict("records")
        if not value:
            return {"columns": columns, "rows": []}
    if isinstance(value, Mapping) or not isinstance(value, Iterable) or isinstance(value, str):
        raise ExerciseError(
            f"answer: {field} must be a table (a Report, a DataFrame or a list of dicts)"
        )
    rows = list(value)
    if not all(isinstance(r, Mapping) for r in rows):
        raise ExerciseError(f"answer: {field} must be a list of dicts (one per row)")
    columns: list[str] = []
    for r in rows:
        columns.extend(str(k) for k in r if str(k) not in columns)
    return {
        "columns": columns,
        "rows": [{str(k): _scalar(v) for k, v in r.items()} for r in rows],
    }


def _shape_schedule(answer: Any) -> dict[str, Any]:
    a = _require(answer, ("appointments", "no_shows"), "reports/day-schedule")
    return {
        "appointments": _ids(a["appointments"], "appointments"),
        "no_shows": _ids(a["no_shows"], "no_shows"),
    }


def _shape_due(answer: Any) -> dict[str, Any]:
    a = _require(answer, ("patients",), "reports/immunizations-due")
    return {"patients": _ids(a["patients"], "patients")}


def _shape_billing(answer: Any) -> dict[str, Any]:
    a = _require(answer, ("day_sheet", "ledger_balance", "ar_aging"), "reports/billing-totals")
    sheet = _require(a["day_sheet"], ("charges", "payments", "adjustments"), "day_sheet")
    aging = a["ar_aging"]
    if not isinstance(aging, Mapping):
        raise ExerciseError(
            f"answer: ar_aging must be a dict of bucket -> balance, e.g. {{'0-30': 120.50, ...}} (found {type(aging).__name__})"
        )
    unknown = sorted(set(map(str, aging)) - set(AGING_BUCKETS))
    if unknown:
        raise ExerciseError(
            f"answer: ar_aging bucket {unknown[0]!r} is not one of {list(AGING_BUCKETS)}"
        )
    return {
        "day_sheet": {
            k: money(sheet[k], f"day_sheet.{k}") for k in ("charges", "payments", "adjustments")
        },
        "ledger_balance": money(a["ledger_balance"], "ledger_balance"),
        "ar_aging": {b: money(aging.get(b, 0), f"ar_aging[{b!r}]") for b in AGING_BUCKETS},
    }


def _shape_measure(answer: Any) -> dict[str, Any]:
    a = _require(answer, ("denominator", "numerator"), "reports/quality-measure")
    return {
        "denominator": _ids(a["denominator"], "denominator"),
        "numerator": _ids(a["numerator"], "numerator"),
    }


def _shape_access(answer: Any) -> dict[str, Any]:
    return _table(answer, "access report")


def _shape_view(answer: Any) -> dict[str, Any]:
    if not isinstance(answer, Mapping):
        raise ExerciseError(
            f"answer for reports/vitals-view: expected a ViewDefinition dict (found {type(answer).__name__})"
        )
    try:
        return copy.deepcopy(dict(answer))
    except TypeError as exc:
        raise ExerciseError(
            f"answer for reports/vitals-view: not a JSON-like dict ({exc})"
        ) from None


_SHAPES: dict[str, Callable[[Any], dict[str, Any]]] = {
    "reports/day-schedule": _shape_schedule,
    "reports/immunizations-due": _shape_due,
    "reports/billing-totals": _shape_billing,
    "reports/quality-measure": _shape_measure,
    "reports/access-report": _shape_access,
    "reports/vitals-view": _shape_view,
}


def hand_in(att: Any, answer: Any) -> dict[str, Any]:
    """Hand in the answer of a report exercise; returns it as stored (checked and normalised).

    A second hand-in replaces the first; ``att.reset()`` forgets it. Bad shapes raise
    ExerciseError naming the field and what was expected, and store nothing.

    >>> from types import SimpleNamespace as NS
    >>> att = NS(exercise=NS(id="reports/immunizations-due"), student="alice", sandbox=NS(state={}))
    >>> hand_in(att, {"patients": ["Patient/p2", "p1"]})
    {'patients': ['p1', 'p2']}
    >>> hand_in(att, {"patients": "p1"})
    Traceback (most recent call last):
    ...
    ehr_sandbox.errors.ExerciseError: answer: patients must be a list of ids (found str)
    >>> handed_in(att.sandbox, "reports/immunizations-due", "alice")
    {'patients': ['p1', 'p2']}
    """
    exercise_id = att.exercise.id
    shape = _SHAPES.get(exercise_id)
    if shape is None:
        raise ExerciseError(
            f"hand_in: {exercise_id} is not a report exercise (one of {', '.join(_SHAPES)})"
        )
    stored = shape(answer)
    answers = dict(att.sandbox.state.get(ANSWERS_KEY) or {})
    answers[f"{exercise_id}|{att.student}"] = stored
    att.sandbox.state[ANSWERS_KEY] = answers
    return stored


def handed_in(sandbox: Any, exercise_id: str, student: str) -> dict[str, Any] | None:
    """The answer a student handed in for an exercise in this sandbox (None if none).

    >>> class S:
    ...     state = {ANSWERS_KEY: {"reports/day-schedule|alice": {"appointments": []}}}
    >>> handed_in(S(), "reports/day-schedule", "alice")
    {'appointments': []}
    """
    return (sandbox.state.get(ANSWERS_KEY) or {}).get(f"{exercise_id}|{student}")


def _answer_of(ctx: GradingContext, exercise_id: str) -> dict[str, Any] | None:
    return handed_in(ctx.sandbox, exercise_id, ctx.student)


def _nothing(expected: str) -> Check:
    return Check(False, "nothing handed in", expected, HAND_IN)


def _listing(ids: Iterable[str], label: Callable[[str], str] | None = None, limit: int = 4) -> str:
    items = sorted(ids)
    shown = [label(i) if label else i for i in items[:limit]]
    more = f" and {len(items) - limit} more" if len(items) > limit else ""
    return ", ".join(shown) + more


def _set_diff(
    found: set[str], expected: set[str], noun: str, label: Callable[[str], str] | None = None
) -> str:
    parts = [f"{len(found)} {noun}"]
    if expected - found:
        parts.append(f"missing {_listing(expected - found, label)}")
    if found - expected:
        parts.append(f"not expected {_listing(found - expected, label)}")
    return "; ".join(parts)


# ------------------------------------------------------------------------------------------
# Dates and times
# ------------------------------------------------------------------------------------------
def _sandbox_now(sandbox: Any) -> datetime:
    """The sandbox's current instant without moving its clock."""
    clock = sandbox.clock
    return clock.peek() if hasattr(clock, "peek") else clock()


def _offset_of(text: str) -> str | None:
    tail = text[-6:] if isinstance(text, str) else ""
    if len(tail) == 6 and tail[0] in "+-" and tail[3] == ":":
        return tail
    return None


def _tz(offset: str) -> timezone:
    sign = -1 if offset[0] == "-" else 1
    return timezone(sign * timedelta(hours=int(offset[1:3]), minutes=int(offset[4:6])))


def _local_day(text: str | None, offset: str) -> str | None:
    """The practice-local calendar day of a FHIR date/dateTime ('YYYY-MM-DD')."""
    if not text:
        return None
    dt = parse_instant(text)
    return dt.astimezone(_tz(offset)).date().isoformat() if dt else text[:10]


def _practice_offset(sandbox: Any) -> str:
    """The practice's UTC offset, as written in its appointments (content decides it)."""
    for apt in sandbox.system_session().resources("Appointment"):
        off = _offset_of(apt.get("start", ""))
        if off:
            return off
    return "+00:00"


def _local_instant(day: date, hour: int, minute: int, offset: str) -> str:
    return f"{day.isoformat()}T{hour:02d}:{minute:02d}:00{offset}"


def _age_years(birth: str, on: str) -> float:
    """Age as the catalogue reports compute it (days / 365.25)."""
    return (date.fromisoformat(on) - date.fromisoformat(birth[:10])).days / 365.25


def _living_on(patient: Mapping[str, Any], day: str) -> bool:
    if patient.get("deceasedBoolean"):
        return False
    died = patient.get("deceasedDateTime")
    return not died or str(died)[:10] > day


def _alive(patient: Mapping[str, Any]) -> bool:
    return not patient.get("deceasedBoolean") and not patient.get("deceasedDateTime")


def _template(sandbox: Any, resource_type: str, username: str) -> dict[str, Any]:
    """A copy of an existing resource of the type (a valid shape to fill in), without id/meta."""
    found = sorted(sandbox.login(username).resources(resource_type), key=lambda r: r["id"])
    if not found:
        raise ExerciseError(
            f"setup: {username} sees no {resource_type} to model the scenario on (generate a larger sandbox)"
        )
    res = copy.deepcopy(found[0])
    for key in ("id", "meta", "text"):
        res.pop(key, None)
    return res


# ------------------------------------------------------------------------------------------
# 7. Today's schedule with no-shows
# ------------------------------------------------------------------------------------------
TZ_ADVICE = "a day on the schedule is the practice's local date written in `start` (with its UTC offset), not the UTC date"


def _setup_schedule(sandbox: Any, variant: Any) -> dict[str, Any]:
    rng = variant.rng()
    today = sandbox.reference_date
    offset = _practice_offset(sandbox)
    off_hours = int(offset[:3])
    patients = visible_patients(sandbox, FRONT_DESK, minimum=4)
    chosen = rng.sample(patients, min(len(patients), 6))
    template = _template(sandbox, "Appointment", FRONT_DESK)
    fd = sandbox.login(FRONT_DESK)
    # The trap: evening visits cross midnight UTC when the practice is west of Greenwich
    # (early-morning ones when it is east), so the UTC date and the local date differ.
    late_hour = max(24 + off_hours, 17) if off_hours < 0 else 0
    early_hour = min(off_hours - 1, 7) if off_hours > 0 else 23

    def book(patient: Mapping[str, Any], day: date, hour: int, minute: int, status: str) -> str:
        apt = copy.deepcopy(template)
        apt["status"] = status
        apt["start"] = _local_instant(day, hour, minute, offset)
        end = datetime.fromisoformat(apt["start"]) + timedelta(minutes=20)
        apt["end"] = end.isoformat()
        apt["participant"] = [
            p
            for p in apt.get("participant", [])
            if not ref_id(p.get("actor"))
            or not (p.get("actor") or {}).get("reference", "").startswith("Patient/")
        ] + [
            {
                "actor": {"reference": f"Patient/{patient['id']}"},
                "required": "required",
                "status": "accepted",
            }
        ]
        if status == "cancelled":
            apt["cancelationReason"] = {"text": "Patient called to cancel"}
        return fd.create(apt)["id"]

    slots = rng.sample(range(9 * 3, 16 * 3), 4)  # 20-minute slots between 09:00 and 16:00
    day_statuses = ["noshow", "fulfilled", rng.choice(["noshow", "fulfilled", "arrived"])]
    for p, slot, status in zip(chosen, slots, day_statuses, strict=False):
        book(p, today, slot // 3, (slot % 3) * 20, status)
    book(chosen[3 % len(chosen)], today, slots[3] // 3, (slots[3] % 3) * 20, "cancelled")
    if off_hours != 0:
        hour = late_hour if off_hours < 0 else early_hour
        # Today's late visit (UTC: tomorrow) and yesterday's (UTC: today), both no-shows.
        tonight = book(chosen[4 % len(chosen)], today, hour, rng.choice([0, 20, 40]), "noshow")
        other_day = today - timedelta(days=1) if off_hours < 0 else today + timedelta(days=1)
        crossing = book(chosen[5 % len(chosen)], other_day, hour, rng.choice([0, 20, 40]), "noshow")
    else:
        tonight = crossing = ""
    return {
        "date": today.isoformat(),
        "offset": offset,
        "caller_name": patient_label(chosen[0]),
        "late_visit": tonight,
        "other_day_visit": crossing,
    }


def _schedule_expected(ctx: GradingContext) -> tuple[set[str], set[str], dict[str, dict[str, Any]]]:
    f = ctx.facts
    every = {a["id"]: a for a in ctx.all("Appointment")}
    today = {i for i, a in every.items() if _local_day(a.get("start"), f["offset"]) == f["date"]}
    noshow = {i for i in today if every[i].get("status") == "noshow"}
    return today, noshow, every


def _utc_trouble(ids: set[str], every: Mapping[str, Mapping[str, Any]], offset: str) -> bool:
    return any(
        (i in every)
        and _local_day(every[i].get("start"), offset) != _local_day(every[i].get("start"), "+00:00")
        for i in ids
    )


def _schedule_listed(ctx: GradingContext) -> Check:
    f = ctx.facts
    today, _, every = _schedule_expected(ctx)
    expected = f"the {len(today)} appointments on {f['date']} (practice time, UTC{f['offset']})"
    answer = _answer_of(ctx, "reports/day-schedule")
    if answer is None:
        return _nothing(expected)
    found = set(answer["appointments"])
    if found == today:
        return Check(True, f"all {len(found)} appointments of {f['date']}", expected)
    wrong = (today - found) | (found - today)
    advice = (
        TZ_ADVICE
        if _utc_trouble(wrong, every, f["offset"])
        else "list every appointment of the day, whatever its status"
    )

    def label(i: str) -> str:
        start = (every.get(i) or {}).get("start")
        return f"Appointment/{i} ({start})" if start else f"Appointment/{i} (no such appointment)"

    return Check(False, _set_diff(found, today, "appointments", label), expected, advice)


def _no_shows_found(ctx: GradingContext) -> Check:
    f = ctx.facts
    _, noshow, every = _schedule_expected(ctx)
    expected = f"the {len(noshow)} appointments of {f['date']} with status 'noshow'"
    answer = _answer_of(ctx, "reports/day-schedule")
    if answer is None:
        return _nothing(expected)
    found = set(answer["no_shows"])
    if found == noshow:
        return Check(True, f"{len(found)} no-shows", expected)
    extra = found - noshow

    def label(i: str) -> str:
        a = every.get(i) or {}
        return f"Appointment/{i} ({a.get('status', 'no such appointment')}, {a.get('start', '?')})"

    if any((every.get(i) or {}).get("status") == "cancelled" for i in extra):
        advice = (
            "a cancelled appointment is not a no-show: the patient told the practice in advance"
        )
    elif _utc_trouble((noshow - found) | extra, every, f["offset"]):
        advice = TZ_ADVICE
    else:
        advice = "a no-show is an appointment of the day with status 'noshow'"
    return Check(False, _set_diff(found, noshow, "no-shows", label), expected, advice)


def _schedule_solution(att: Any) -> None:
    rows = att.session.reports.run("day_schedule", date=att.facts["date"]).to_pylist()
    hand_in(
        att,
        {
            "appointments": [r["appointment"] for r in rows],
            "no_shows": [r["appointment"] for r in rows if r["no_show"]],
        },
    )


def _schedule_utc(att: Any) -> None:
    rows = att.session.reports.sql("SELECT id, start, status FROM appointment").to_pylist()
    day = [r for r in rows if _local_day(r["start"], "+00:00") == att.facts["date"]]
    hand_in(
        att,
        {
            "appointments": [r["id"] for r in day],
            "no_shows": [r["id"] for r in day if r["status"] == "noshow"],
        },
    )


def _schedule_cancelled(att: Any) -> None:
    rows = att.session.reports.run("day_schedule", date=att.facts["date"]).to_pylist()
    hand_in(
        att,
        {
            "appointments": [r["appointment"] for r in rows],
            "no_shows": [r["appointment"] for r in rows if r["status"] in ("noshow", "cancelled")],
        },
    )


DAY_SCHEDULE = register(
    Exercise(
        id="reports/day-schedule",
        title="Today's schedule with no-shows",
        topic="reports",
        competencies=("VI.P.1", "VI.P.6"),
        minutes=15,
        role=FRONT_DESK,
        grader=FRONT_DESK,
        summary="List today's appointments and the no-shows among them from the day schedule report.",
        setup=_setup_schedule,
        instructions=(
            "The clinic day of **{date}** is over and the front desk has updated every appointment's "
            "status. The practice keeps its clock at **UTC{offset}**; evening clinic runs late. "
            "**{caller_name}** has called to ask whether they missed a visit today: the list "
            "you hand in answers them too.\n\n"
            '1. Run the day schedule for {date} (`att.session.reports.run("day_schedule", date=...)`).\n'
            "2. Hand in the ids of **all** appointments on that day and of the **no-shows** among them:\n\n"
            "```python\nfrom ehr_sandbox.exercises.builtin.reports import hand_in\n"
            'hand_in(att, {{"appointments": [...], "no_shows": [...]}})\n```\n\n'
            "Then call `att.check()`."
        ),
        criteria=(
            Criterion(
                "schedule listed",
                3,
                _schedule_listed,
                "The day's schedule is the practice's working list: a visit on the wrong day is a patient nobody expects (MAERB VI.P.1).",
            ),
            Criterion(
                "no-shows identified",
                2,
                _no_shows_found,
                "No-shows are documented and followed up (policy letters, rebooking, discharge after repeats); cancellations are not no-shows (MAERB VI.P.1).",
            ),
        ),
        hints=(
            Hint(
                "Every row of the day schedule report has an `appointment` id and a `no_show` flag."
            ),
            Hint(
                "Do not convert `start` to UTC: 19:20-05:00 on the 1st is 00:20 UTC on the 2nd but still the 1st at the clinic.",
                cost=1,
            ),
        ),
        solution=Solution(
            _schedule_solution,
            description="run day_schedule for the day and hand in its ids and no-show flags",
        ),
        wrong_solutions={
            "utc-date": Solution(
                _schedule_utc,
                fails="schedule listed",
                message="not the UTC date",
                description="pick the day's appointments by their UTC date",
            ),
            "cancelled-as-no-show": Solution(
                _schedule_cancelled,
                fails="no-shows identified",
                message="cancelled appointment is not a no-show",
                description="count cancellations as no-shows",
            ),
        },
    )
)


# ------------------------------------------------------------------------------------------
# 8. Immunizations due
# ------------------------------------------------------------------------------------------
# The two series of the catalogue report's simplified CDC schedule that a small adult-heavy
# sandbox always has patients for: (CVX codes, minimum age in years, repeat interval in days,
# the vaccine planted by setup).
SERIES: dict[str, tuple[frozenset[str], float, int, tuple[str, str]]] = {
    "Influenza": (
        frozenset(
            {"140", "141", "150", "153", "155", "158", "161", "171", "185", "186", "197", "205"}
        ),
        0.5,
        365,
        ("140", "Influenza, seasonal, injectable, preservative free"),
    ),
    "Td/Tdap": (
        frozenset({"115", "113", "09", "139", "138"}),
        11,
        3650,
        ("115", "Tdap"),
    ),
}
DOSE_ADVICE = (
    "an entered-in-error or not-done dose is not immunity: count only doses with status 'completed'"
)


def _cvx(imm: Mapping[str, Any]) -> str | None:
    for c in (imm.get("vaccineCode") or {}).get("coding", []):
        if c.get("system") == CVX:
            return c.get("code")
    return None


def _dose_day(imm: Mapping[str, Any]) -> str:
    return str(imm.get("occurrenceDateTime") or "")[:10]


def _due_patients(
    patients: Iterable[Mapping[str, Any]],
    doses: Iterable[Mapping[str, Any]],
    series: str,
    as_of: str,
    *,
    statuses: tuple[str, ...] | None = ("completed",),
) -> set[str]:
    """Patients due for ``series`` on ``as_of`` (the catalogue report's rule, in Python)."""
    cvx_codes, min_age, repeat_days, _ = SERIES[series]
    last: dict[str, str] = {}
    for d in doses:
        if statuses is not None and d.get("status") not in statuses:
            continue
        day = _dose_day(d)
        if _cvx(d) in cvx_codes and day and day <= as_of:
            pid = ref_id(d.get("patient"))
            last[pid] = max(last.get(pid, ""), day)
    due = set()
    for p in patients:
        birth = str(p.get("birthDate") or "")
        if len(birth) != 10 or birth > as_of or not _alive(p):
            continue
        if _age_years(birth, as_of) < min_age:
            continue
        seen = last.get(p["id"])
        if (
            seen is None
            or (date.fromisoformat(as_of) - date.fromisoformat(seen)).days > repeat_days
        ):
            due.add(p["id"])
    return due


def _setup_due(sandbox: Any, variant: Any) -> dict[str, Any]:
    rng = variant.rng()
    series = variant.pick(sorted(SERIES), salt="series")
    _, min_age, _, (code, display) = SERIES[series]
    today = sandbox.reference_date
    as_of = today.isoformat()
    ma = sandbox.login(MA)
    patients = visible_patients(sandbox, MA, minimum=3)
    doses = list(ma.resources("Immunization"))
    due_now = _due_patients(patients, doses, series, as_of)
    candidates = [
        p
        for p in patients
        if p["id"] in due_now and _age_years(p["birthDate"], as_of) >= min_age + 1
    ]
    if len(candidates) < 3:
        raise ExerciseError(
            f"setup: needs 3 patients due for {series} that {MA} can see (found {len(candidates)}); generate a larger sandbox"
        )
    voided, refused, given = rng.sample(candidates, 3)
    template = _template(sandbox, "Immunization", MA)
    offset = _practice_offset(sandbox)
    for key in ("encounter", "reasonReference", "protocolApplied", "note"):
        template.pop(key, None)
    template["vaccineCode"] = {
        "coding": [{"system": CVX, "code": code, "display": display}],
        "text": display,
    }

    def dose(patient: Mapping[str, Any], days_ago: int, status: str) -> str:
        imm = copy.deepcopy(template)
        day = today - timedelta(days=days_ago)
        imm["patient"] = {"reference": f"Patient/{patient['id']}"}
        imm["status"] = status
        imm["occurrenceDateTime"] = _local_instant(
            day, rng.randint(9, 15), rng.choice([0, 20, 40]), offset
        )
        imm["expirationDate"] = (day + timedelta(days=180)).isoformat()
        if status == "not-done":
            imm["statusReason"] = {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/v3-ActReason",
                        "code": "PATOBJ",
                        "display": "patient objection",
                    }
                ]
            }
            for key in ("lotNumber", "expirationDate", "site", "route", "doseQuantity"):
                imm.pop(key, None)
        return ma.create(imm)["id"]

    voided_dose = dose(voided, rng.randint(20, 200), "completed")
    ma.mark_entered_in_error(
        f"Immunization/{voided_dose}", reason="Documented on the wrong patient's chart"
    )
    refused_dose = dose(refused, rng.randint(3, 60), "not-done")
    given_dose = dose(given, rng.randint(20, 200), "completed")
    return {
        "series": series,
        "as_of": as_of,
        **patient_facts(voided, "voided"),
        **patient_facts(refused, "refused"),
        **patient_facts(given, "given"),
        "voided_dose": voided_dose,
        "refused_dose": refused_dose,
        "given_dose": given_dose,
    }


def _due_expected(ctx: GradingContext) -> set[str]:
    f = ctx.facts
    return _due_patients(ctx.all("Patient"), ctx.all("Immunization"), f["series"], f["as_of"])


def _voided_excluded(ctx: GradingContext) -> Check:
    f = ctx.facts
    expected = (
        f"{f['voided_name']} and {f['refused_name']} listed as due (their only {f['series']} doses are "
        "entered-in-error and not-done)"
    )
    answer = _answer_of(ctx, "reports/immunizations-due")
    if answer is None:
        return _nothing(expected)
    found = set(answer["patients"])
    left_out = [
        f"{f[k + '_name']} (Immunization/{f[dose]} is {status})"
        for k, dose, status in (
            ("voided", "voided_dose", "entered-in-error"),
            ("refused", "refused_dose", "not-done"),
        )
        if f[k + "_id"] not in found
    ]
    if left_out:
        return Check(False, "left out as not due: " + "; ".join(left_out), expected, DOSE_ADVICE)
    return Check(True, f"{f['voided_name']} and {f['refused_name']} listed as due", expected)


def _due_list(ctx: GradingContext) -> Check:
    f = ctx.facts
    due = _due_expected(ctx)
    names = {p["id"]: patient_label(p) for p in ctx.all("Patient")}
    expected = f"the {len(due)} patients due for {f['series']} on {f['as_of']}"
    answer = _answer_of(ctx, "reports/immunizations-due")
    if answer is None:
        return _nothing(expected)
    found = set(answer["patients"])
    if found == due:
        return Check(True, f"the {len(found)} patients due", expected)
    advice = (
        f"{f['given_name']} had a completed dose on record: not due"
        if f["given_id"] in found
        else "use the immunizations due report for the series and the day"
    )
    return Check(
        False,
        _set_diff(found, due, "patients", lambda i: f"{names.get(i, '?')} (Patient/{i})"),
        expected,
        advice,
    )


def _due_solution(att: Any) -> None:
    f = att.facts
    rows = att.session.reports.run("immunizations_due", as_of=f["as_of"]).to_pylist()
    hand_in(att, {"patients": [r["patient"] for r in rows if r["series"] == f["series"]]})


def _due_count_voided(att: Any) -> None:
    f, s = att.facts, att.session
    # Any dose on file counts, whatever its status: the typical mistake.
    doses = s.reports.sql("SELECT patient, status, cvx, occurrence FROM immunization").to_pylist()
    fake = [
        {
            "patient": {"reference": f"Patient/{d['patient']}"},
            "status": "completed",
            "vaccineCode": {"coding": [{"system": CVX, "code": d["cvx"]}]},
            "occurrenceDateTime": d["occurrence"],
        }
        for d in doses
    ]
    patients = list(s.resources("Patient"))
    hand_in(
        att,
        {"patients": sorted(_due_patients(patients, fake, f["series"], f["as_of"], statuses=None))},
    )


IMMUNIZATIONS_DUE = register(
    Exercise(
        id="reports/immunizations-due",
        title="Immunizations due (CVX schedule)",
        topic="reports",
        competencies=("I.P.3", "VI.P.6"),
        minutes=15,
        role=MA,
        grader=MA,
        summary="Find the patients due for a vaccine series; voided and refused doses do not count.",
        setup=_setup_due,
        instructions=(
            "The physician wants to run a **{series}** catch-up this week. Find every patient you can "
            "see who is **due for {series} on {as_of}** by the practice's schedule (CVX codes).\n\n"
            "The chart was cleaned up recently: some doses were voided and some patients declined. "
            "**{given_name}** (DOB {given_dob}) says they had the vaccine here recently: make sure "
            "your list is right about them.\n\n"
            '1. Run `att.session.reports.run("immunizations_due", as_of=...)` (or your own SQL over '
            "the `immunization` and `patient` tables).\n"
            "2. Hand in the patient ids:\n\n"
            "```python\nfrom ehr_sandbox.exercises.builtin.reports import hand_in\n"
            'hand_in(att, {{"patients": [...]}})\n```\n\n'
            "Then call `att.check()`."
        ),
        criteria=(
            Criterion(
                "voided and not-done doses excluded",
                3,
                _voided_excluded,
                "A dose marked entered-in-error was never given and a refused dose protects nobody: counting them leaves patients unvaccinated (CDC schedule; MAERB I.P.3).",
            ),
            Criterion(
                "due list",
                2,
                _due_list,
                "Recall lists drive outreach: every patient due, and no one already protected (MAERB I.P.3, VI.P.6).",
            ),
        ),
        hints=(
            Hint("The report has one row per patient and series; keep the rows of your series."),
            Hint(
                "Look at the `status` column of the `immunization` table: only 'completed' doses count.",
                cost=1,
            ),
        ),
        solution=Solution(
            _due_solution, description="run immunizations_due and keep the series' patients"
        ),
        wrong_solutions={
            "count-voided": Solution(
                _due_count_voided,
                fails="voided and not-done doses excluded",
                message="count only doses with status 'completed'",
                description="count every dose on file, whatever its status",
            ),
        },
    )
)


# ------------------------------------------------------------------------------------------
# 9. Day sheet, ledger and A/R aging
# ------------------------------------------------------------------------------------------
AGING_BUCKETS: tuple[str, ...] = ("0-30", "31-60", "61-90", "91-120", ">120")
_BUCKET_BOUNDS = ((0, 30), (31, 60), (61, 90), (91, 120), (121, None))
ADJUSTMENT_ADVICE = (
    "a contractual adjustment is not a payment: post it in the adjustments column, or the "
    "practice's collections look larger than they are"
)


def _amount(value: Any) -> Decimal:
    if isinstance(value, Mapping):
        value = value.get("value")
    return Decimal(str(value)) if value is not None else Decimal(0)


def _cents(d: Decimal) -> str:
    return str(d.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def _claim_total(claim: Mapping[str, Any]) -> Decimal:
    return _amount(claim.get("total"))


def _payment(cr: Mapping[str, Any]) -> tuple[Decimal, Decimal]:
    pay = cr.get("payment") or {}
    return _amount(pay.get("amount")), _amount(pay.get("adjustment"))


def _day_sheet(
    claims: list[dict[str, Any]], responses: list[dict[str, Any]], day: str
) -> dict[str, str]:
    charges = sum(
        (_claim_total(c) for c in claims if str(c.get("created", ""))[:10] == day), Decimal(0)
    )
    todays = [_payment(r) for r in responses if str(r.get("created", ""))[:10] == day]
    return {
        "charges": _cents(charges),
        "payments": _cents(sum((p for p, _ in todays), Decimal(0))),
        "adjustments": _cents(sum((a for _, a in todays), Decimal(0))),
    }


def _ledger_balance(
    claims: list[dict[str, Any]], responses: list[dict[str, Any]], patient_id: str
) -> str:
    mine = {c["id"] for c in claims if ref_id(c.get("patient")) == patient_id}
    balance = sum((_claim_total(c) for c in claims if c["id"] in mine), Decimal(0))
    for r in responses:
        if ref_id(r.get("request")) in mine:
            paid, adjusted = _payment(r)
            balance -= paid + adjusted
    return _cents(balance)


def _ar_aging(
    claims: list[dict[str, Any]], responses: list[dict[str, Any]], as_of: str
) -> dict[str, str]:
    received: dict[str, Decimal] = {}
    for r in responses:
        if str(r.get("created", ""))[:10] <= as_of:
            paid, adjusted = _payment(r)
            claim = ref_id(r.get("request"))
            received[claim] = received.get(claim, Decimal(0)) + paid + adjusted
    totals = dict.fromkeys(AGING_BUCKETS, Decimal(0))
    for c in claims:
        created = str(c.get("created", ""))[:10]
        if not created or created > as_of or c.get("status") in ("entered-in-error", "cancelled"):
            continue
        balance = _claim_total(c) - received.get(c["id"], Decimal(0))
        if balance <= 0:
            continue
        age = (date.fromisoformat(as_of) - date.fromisoformat(created)).days
        for name, (lo, hi) in zip(AGING_BUCKETS, _BUCKET_BOUNDS, strict=True):
            if age >= lo and (hi is None or age <= hi):
                totals[name] += balance
    return {k: _cents(v) for k, v in totals.items()}


def _setup_billing(sandbox: Any, variant: Any) -> dict[str, Any]:
    billing = sandbox.login(BILLING)
    responses = sorted(billing.resources("ClaimResponse"), key=lambda r: r["id"])
    days = sorted({str(r["created"])[:10] for r in responses if _payment(r)[1] > 0})
    if not days:
        raise ExerciseError(
            "setup: no insurance payment with an adjustment in this sandbox; generate a larger sandbox"
        )
    charge_days = {str(c.get("created", ""))[:10] for c in billing.resources("Claim")}
    # A day with charges as well as payments and adjustments exercises every column.
    day = variant.pick([d for d in days if d in charge_days] or days, salt="day")
    paid_patients = sorted(
        {ref_id(r.get("patient")) for r in responses if ref_id(r.get("patient"))}
    )
    patient = billing.read("Patient", variant.pick(paid_patients, salt="patient"))
    return {
        "day": day,
        "as_of": sandbox.reference_date.isoformat(),
        **patient_facts(patient, "ledger"),
    }


def _billing_data(ctx: GradingContext) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    return ctx.all("Claim"), ctx.all("ClaimResponse")


def _day_sheet_totals(ctx: GradingContext) -> Check:
    f = ctx.facts
    claims, responses = _billing_data(ctx)
    want = _day_sheet(claims, responses, f["day"])
    expected = f"charges ${want['charges']}, payments ${want['payments']}, adjustments ${want['adjustments']} on {f['day']}"
    answer = _answer_of(ctx, "reports/billing-totals")
    if answer is None:
        return _nothing(expected)
    got = answer["day_sheet"]
    found = (
        f"charges ${got['charges']}, payments ${got['payments']}, adjustments ${got['adjustments']}"
    )
    if got == want:
        return Check(True, found, expected)
    mixed = (
        Decimal(got["payments"]) == Decimal(want["payments"]) + Decimal(want["adjustments"])
        and Decimal(want["adjustments"]) != 0
    )
    advice = ADJUSTMENT_ADVICE if mixed else "add up the day sheet's columns to the cent"
    return Check(False, found, expected, advice)


def _ledger_check(ctx: GradingContext) -> Check:
    f = ctx.facts
    claims, responses = _billing_data(ctx)
    want = _ledger_balance(claims, responses, f["ledger_id"])
    expected = f"{f['ledger_name']}'s balance ${want}"
    answer = _answer_of(ctx, "reports/billing-totals")
    if answer is None:
        return _nothing(expected)
    got = answer["ledger_balance"]
    ok = got == want
    return Check(
        ok,
        f"${got}",
        expected,
        ""
        if ok
        else "the balance is the ledger's last running balance (charges - payments - adjustments)",
    )


def _aging_check(ctx: GradingContext) -> Check:
    f = ctx.facts
    claims, responses = _billing_data(ctx)
    want = _ar_aging(claims, responses, f["as_of"])
    expected = "balances " + ", ".join(f"{k}: ${v}" for k, v in want.items())
    answer = _answer_of(ctx, "reports/billing-totals")
    if answer is None:
        return _nothing(expected)
    got = answer["ar_aging"]
    off = [k for k in AGING_BUCKETS if got[k] != want[k]]
    if not off:
        return Check(True, "every bucket to the cent", expected)
    return Check(
        False,
        "; ".join(f"{k}: ${got[k]}" for k in off),
        expected,
        f"take the `balance` column of the A/R aging report as of {f['as_of']}",
    )


def _billing_solution(att: Any) -> None:
    f, r = att.facts, att.session.reports
    sheet = r.run("day_sheet", date=f["day"]).to_pylist()
    ledger = r.run("patient_ledger", patient=f["ledger_id"]).to_pylist()
    aging = r.run("ar_aging", as_of=f["as_of"]).to_pylist()
    hand_in(
        att,
        {
            "day_sheet": {
                k: sum((row[k] for row in sheet), Decimal(0))
                for k in ("charges", "payments", "adjustments")
            },
            "ledger_balance": ledger[-1]["balance"] if ledger else 0,
            "ar_aging": {row["bucket"]: row["balance"] for row in aging},
        },
    )


def _billing_adjustments_as_payments(att: Any) -> None:
    _billing_solution(att)
    answer = handed_in(att.sandbox, att.exercise.id, att.student) or {}
    sheet = answer["day_sheet"]
    sheet["payments"] = Decimal(sheet["payments"]) + Decimal(sheet["adjustments"])
    sheet["adjustments"] = 0
    hand_in(att, answer)


BILLING_TOTALS = register(
    Exercise(
        id="reports/billing-totals",
        title="Day sheet, patient ledger and A/R aging",
        topic="reports",
        competencies=("VII.P.1", "VI.P.7"),
        minutes=20,
        role=BILLING,
        grader=BILLING,
        summary="Totals of the day sheet, one patient's ledger balance and the A/R aging, to the cent.",
        setup=_setup_billing,
        instructions=(
            "Month-end close. Using the practice's reports, find:\n\n"
            "1. the **day sheet totals of {day}**: charges, insurance payments and adjustments;\n"
            "2. the **ledger balance** of **{ledger_name}** (MRN {ledger_mrn});\n"
            "3. the **A/R aging** balance of every bucket (0-30, 31-60, 61-90, 91-120, >120) as of **{as_of}**.\n\n"
            "Hand in amounts in USD (to the cent):\n\n"
            "```python\nfrom ehr_sandbox.exercises.builtin.reports import hand_in\n"
            'hand_in(att, {{"day_sheet": {{"charges": ..., "payments": ..., "adjustments": ...}},\n'
            '              "ledger_balance": ..., "ar_aging": {{"0-30": ..., "31-60": ..., ...}}}})\n```\n\n'
            "Then call `att.check()`."
        ),
        criteria=(
            Criterion(
                "day sheet totals",
                3,
                _day_sheet_totals,
                "Charges, payments and adjustments are posted separately so the day sheet balances and collections are reported truthfully (MAERB VII.P.1).",
            ),
            Criterion(
                "ledger balance",
                2,
                _ledger_check,
                "A patient's statement must show what they really owe (MAERB VII.P.1).",
            ),
            Criterion(
                "A/R aging",
                2,
                _aging_check,
                "Aging drives follow-up of unpaid claims before the payer's filing limits run out (MAERB VII.P.1).",
            ),
        ),
        hints=(
            Hint(
                "`day_sheet`, `patient_ledger` and `ar_aging` are catalogue reports; `.to_pandas()` sums columns."
            ),
            Hint(
                "The payer's `payment.adjustment` is the contractual write-off: it goes in the adjustments column.",
                cost=1,
            ),
        ),
        solution=Solution(
            _billing_solution,
            description="sum the day sheet columns, take the ledger's last balance and the aging balances",
        ),
        wrong_solutions={
            "adjustments-as-payments": Solution(
                _billing_adjustments_as_payments,
                fails="day sheet totals",
                message="a contractual adjustment is not a payment",
                description="post the payer's adjustments as payments",
            ),
        },
    )
)


# ------------------------------------------------------------------------------------------
# 10. Quality measure
# ------------------------------------------------------------------------------------------
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


# ------------------------------------------------------------------------------------------
# 11. Access report
# ------------------------------------------------------------------------------------------
PHI_COLUMNS = frozenset(
    {
        "name",
        "patient_name",
        "family",
        "family_any",
        "given",
        "birth_date",
        "birthdate",
        "dob",
        "mrn",
        "address",
        "line",
        "city",
        "zip",
        "postal_code",
        "phone",
        "telecom",
        "email",
        "ssn",
        "gender",
        "sex",
    }
)
PHI_ADVICE = "minimum necessary: an access report needs who, when, what and why, not the patient's demographics"
ACCESSORS = (
    "dr.patel",
    "dr.nguyen",
    "rn.kim",
    "ma.chen",
    "ma.johnson",
    "fd.brown",
    "billing.davis",
)


def _event_key(ev: Mapping[str, Any]) -> tuple[str, str]:
    who = ""
    for agent in ev.get("agent", []):
        if agent.get("requestor"):
            who = str(agent.get("altId") or "")
            break
    return str(ev.get("recorded", "")), who


def _setup_access(sandbox: Any, variant: Any) -> dict[str, Any]:
    rng = variant.rng()
    patients = sorted(
        (p for p in sandbox.system_session().resources("Patient") if _alive(p)),
        key=lambda p: p["id"],
    )
    patient = variant.pick(patients, salt="patient")
    pid = patient["id"]
    for username in rng.sample(ACCESSORS, 3):
        session = sandbox.login(username)
        for action in rng.sample(("chart", "vitals", "schedule"), 2):
            try:
                if action == "chart":
                    session.read("Patient", pid)
                elif action == "vitals":
                    session.search("Observation", params={"patient": f"Patient/{pid}"}).fetch()
                else:
                    session.search("Appointment", params={"patient": f"Patient/{pid}"}).fetch()
            except SandboxError:
                continue  # a denied access is logged too, and belongs in the report
    events = sandbox.audit.events()
    address = (patient.get("address") or [{}])[0]
    phone = next(
        (t.get("value") for t in patient.get("telecom", []) if t.get("system") == "phone"), ""
    )
    return {
        **patient_facts(patient, "patient"),
        "last_event": int(events[-1]["id"]) if events else 0,
        "phi_values": sorted(
            {
                v
                for v in (
                    mrn(patient),
                    patient.get("birthDate"),
                    (patient.get("name") or [{}])[0].get("family"),
                    (address.get("line") or [""])[0],
                    phone,
                )
                if v
            }
        ),
    }


def _access_rows(ctx: GradingContext) -> tuple[Counter[tuple[str, str]], Counter[tuple[str, str]]]:
    """(accesses before the exercise started, every access now) as (recorded, username) counts."""
    f = ctx.facts
    events = ctx.audit_events(patient=f["patient_id"])
    before = Counter(_event_key(e) for e in events if int(e.get("id", 0)) <= f["last_event"])
    return before, Counter(_event_key(e) for e in events)


def _accesses_listed(ctx: GradingContext) -> Check:
    f = ctx.facts
    before, now = _access_rows(ctx)
    expected = (
        f"at least the {sum(before.values())} accesses to {f['patient_name']}'s record logged before you started, "
        "each with when (`recorded`), who (`username`) and what (`action` or `interaction`)"
    )
    answer = _answer_of(ctx, "reports/access-report")
    if answer is None:
        return _nothing(expected)
    cols = set(answer["columns"])
    lacking = [c for c in ("recorded", "username") if c not in cols] + (
        [] if cols & {"action", "interaction"} else ["action/interaction"]
    )
    if lacking:
        return Check(
            False,
            f"columns {sorted(cols)}; no {', '.join(lacking)}",
            expected,
            "an access report says who, when and what",
        )
    got = Counter(
        (str(r.get("recorded") or ""), str(r.get("username") or "")) for r in answer["rows"]
    )
    missing = before - got
    invented = got - now
    if missing:
        sample = ", ".join(f"{w or 'system'} at {t}" for t, w in sorted(missing)[:3])
        return Check(
            False,
            f"{sum(got.values())} rows; missing {sum(missing.values())} (e.g. {sample})",
            expected,
            "run the access report for this patient over the whole audit trail",
        )
    if invented:
        return Check(
            False,
            f"{sum(invented.values())} rows that are not accesses to this patient",
            expected,
            "list only this patient's audit events",
        )
    return Check(True, f"{sum(got.values())} accesses", expected)


def _minimum_necessary(ctx: GradingContext) -> Check:
    f = ctx.facts
    expected = "no patient demographics (name, birth date, MRN, address, phone) in the report"
    answer = _answer_of(ctx, "reports/access-report")
    if answer is None:
        return _nothing(expected)
    named = sorted(c for c in answer["columns"] if c.lower() in PHI_COLUMNS)
    values = set(map(str, f["phi_values"]))
    leaked = sorted(
        {
            c
            for r in answer["rows"]
            for c, v in r.items()
            if v is not None and any(p in str(v) for p in values)
        }
    )
    if named or leaked:
        return Check(False, f"PHI columns {sorted(set(named) | set(leaked))}", expected, PHI_ADVICE)
    return Check(True, f"columns {answer['columns']}", expected)


def _access_solution(att: Any) -> None:
    hand_in(att, att.session.reports.run("access_report", patient=att.facts["patient_id"]))


def _access_with_phi(att: Any) -> None:
    f, r = att.facts, att.session.reports
    rows = r.run("access_report", patient=f["patient_id"]).to_pylist()
    who = r.sql(
        "SELECT family, given, birth_date, mrn FROM patient WHERE id = $p", p=f["patient_id"]
    ).to_pylist()[0]
    hand_in(att, [{**who, **row} for row in rows])


ACCESS_REPORT = register(
    Exercise(
        id="reports/access-report",
        title="Access report from the audit trail",
        topic="reports",
        competencies=("X.P.2", "VI.P.6"),
        minutes=15,
        role=PRIVACY_OFFICER,
        summary="Produce the access report a patient asked for, with only the columns it needs.",
        setup=_setup_access,
        instructions=(
            "**{patient_name}** (MRN {patient_mrn}) asked who has looked at their record. As privacy "
            "officer, produce the **access report** from the audit trail: when, who (user and role), "
            "what they did and why.\n\n"
            "The report goes into a file that others will handle: include only what it needs.\n\n"
            '1. Run `att.session.reports.run("access_report", patient=...)` (or your own SQL over the '
            "`audit_event` table).\n"
            "2. Hand in the table (a Report, a DataFrame or a list of dicts):\n\n"
            "```python\nfrom ehr_sandbox.exercises.builtin.reports import hand_in\nhand_in(att, report)\n```\n\n"
            "Then call `att.check()`."
        ),
        criteria=(
            Criterion(
                "every access listed",
                3,
                _accesses_listed,
                "An access report must show every access to the record, allowed or denied (HIPAA 164.312(b) audit controls; 164.528 accounting).",
            ),
            Criterion(
                "minimum necessary",
                3,
                _minimum_necessary,
                "Uses and disclosures of PHI are limited to the minimum necessary for the purpose (HIPAA 164.502(b), 164.514(d)).",
            ),
        ),
        hints=(
            Hint(
                "The `access_report` catalogue report already has the columns an access report needs."
            ),
            Hint(
                "The patient is named in the cover letter; the table itself needs no name, birth date or MRN.",
                cost=1,
            ),
        ),
        solution=Solution(
            _access_solution, description="hand in the access_report for the patient as it is"
        ),
        wrong_solutions={
            "with-demographics": Solution(
                _access_with_phi,
                fails="minimum necessary",
                message="minimum necessary",
                description="add the patient's name, birth date and MRN to every row",
            ),
        },
    )
)


# ------------------------------------------------------------------------------------------
# 12. Write a ViewDefinition: vitals flowsheet
# ------------------------------------------------------------------------------------------
VIEW_COLUMNS = ("id", "effective", "code", "value", "unit")
VITALS_WHERE = "category.coding.where(code = 'vital-signs').exists()"


def _value_columns(prefix: str = "") -> list[dict[str, str]]:
    return [
        {
            "name": "code",
            "path": "code.coding.where(system = 'http://loinc.org').code.first()",
            "type": "code",
        },
        {"name": "value", "path": "value.ofType(Quantity).value", "type": "decimal"},
        {"name": "unit", "path": "value.ofType(Quantity).code", "type": "code"},
    ]


def reference_vitals_view(patient_id: str) -> dict[str, Any]:
    """The reference vitals flowsheet ViewDefinition for one patient (what students aim for).

    One row per measured value: each vital-sign Observation's own Quantity, and one row per
    component for panels (blood pressure), leaving out entered-in-error observations.

    >>> v = reference_vitals_view("p1")
    >>> [c["name"] for s in v["select"] for c in s.get("column", [])]
    ['id', 'effective']
    >>> v["where"][0]["path"]
    "subject.reference = 'Patient/p1'"
    """
    return {
        "resourceType": "ViewDefinition",
        "name": "vitals_flowsheet",
        "status": "active",
        "resource": "Observation",
        "where": [
            {"path": f"subject.reference = 'Patient/{patient_id}'"},
            {"path": VITALS_WHERE},
            {"path": "status != 'entered-in-error'"},
        ],
        "select": [
            {
                "column": [
                    {"name": "id", "path": "getResourceKey()", "type": "id"},
                    {"name": "effective", "path": "effective.ofType(dateTime)", "type": "dateTime"},
                ]
            },
            {
                "unionAll": [
                    {
                        "forEach": "where(value.ofType(Quantity).exists())",
                        "column": _value_columns(),
                    },
                    {"forEach": "component", "column": _value_columns()},
                ]
            },
        ],
    }


def _setup_view(sandbox: Any, variant: Any) -> dict[str, Any]:
    rng = variant.rng()
    ma = sandbox.login(MA)
    with_vitals = {
        ref_id(o.get("subject"))
        for o in ma.resources("Observation")
        if "vital-signs" in codes(o.get("category"))
    }
    patients = [p for p in visible_patients(sandbox, MA) if p["id"] in with_vitals]
    if not patients:
        raise ExerciseError(
            f"setup: no patient with vital signs that {MA} can see; generate a larger sandbox"
        )
    today = sandbox.reference_date.isoformat()
    # Adult values are planted (an adult weight, a routine BP), so prefer adult patients.
    adults = [p for p in patients if _age_years(str(p.get("birthDate") or today), today) >= 18]
    patient = variant.pick(adults or patients, salt="patient")
    pid = patient["id"]
    offset = _practice_offset(sandbox)
    taken = _sandbox_now(sandbox).astimezone(_tz(offset)).replace(microsecond=0) - timedelta(
        minutes=rng.randint(10, 50)
    )
    systolic, diastolic = rng.randint(108, 162), rng.randint(62, 98)
    bp = ma.create(blood_pressure(f"Patient/{pid}", systolic, diastolic, taken.isoformat()))
    weight = round(rng.uniform(52, 110), 1)
    wrong = ma.create(
        {
            "resourceType": "Observation",
            "status": "final",
            "category": [
                {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                            "code": "vital-signs",
                        }
                    ]
                }
            ],
            "code": {"coding": [{"system": LOINC, "code": "29463-7", "display": "Body weight"}]},
            "subject": {"reference": f"Patient/{pid}"},
            "effectiveDateTime": taken.isoformat(),
            "valueQuantity": {
                "value": weight,
                "unit": "kg",
                "system": "http://unitsofmeasure.org",
                "code": "kg",
            },
        }
    )
    ma.mark_entered_in_error(
        f"Observation/{wrong['id']}", reason="Weight keyed in pounds as kilograms"
    )
    return {
        **patient_facts(patient, "patient"),
        "bp_id": bp["id"],
        "systolic": systolic,
        "diastolic": diastolic,
        "voided_id": wrong["id"],
        "columns": ", ".join(f"`{c}`" for c in VIEW_COLUMNS),
    }


def _norm_value(v: Any) -> str | None:
    if v is None:
        return None
    try:
        return str(Decimal(str(v)).normalize())
    except InvalidOperation:
        return str(v)


def _view_rows(rows: Iterable[Mapping[str, Any]]) -> Counter[tuple[Any, ...]]:
    return Counter(
        (
            str(r.get("id")),
            str(r.get("effective")),
            str(r.get("code")),
            _norm_value(r.get("value")),
            str(r.get("unit")),
        )
        for r in rows
    )


def _run_student_view(ctx: GradingContext) -> tuple[list[dict[str, Any]] | None, str]:
    """(rows, '') when the handed-in view runs and has the flowsheet columns, else (None, why)."""
    view = _answer_of(ctx, "reports/vitals-view")
    if view is None:
        return None, "nothing handed in"
    if view.get("resource") != "Observation":
        return None, f"a view over {view.get('resource')!r}"
    try:
        rows = ctx.session.run_view(view)
    except (ViewDefinitionError, SandboxError) as exc:
        return None, f"the view does not run: {exc}"
    columns = set(rows[0]) if rows else set()
    missing = [c for c in VIEW_COLUMNS if c not in columns]
    if rows and missing:
        return None, f"no column {', '.join(missing)}"
    return rows, ""


def _view_runs(ctx: GradingContext) -> Check:
    expected = f"an Observation ViewDefinition that runs, with columns {', '.join(VIEW_COLUMNS)}"
    rows, why = _run_student_view(ctx)
    if rows is None:
        return Check(
            False,
            why,
            expected,
            HAND_IN if why == "nothing handed in" else "check the view's JSON and FHIRPath",
        )
    return Check(True, f"a view giving {len(rows)} rows", expected)


def _bp_components(ctx: GradingContext) -> Check:
    f = ctx.facts
    expected = f"rows for Observation/{f['bp_id']} with systolic (8480-6) {f['systolic']} and diastolic (8462-4) {f['diastolic']}"
    rows, why = _run_student_view(ctx)
    if rows is None:
        return Check(False, why, expected)
    mine = {
        (str(r.get("code")), _norm_value(r.get("value")))
        for r in rows
        if str(r.get("id")) == f["bp_id"]
    }
    want = {(SYSTOLIC, _norm_value(f["systolic"])), (DIASTOLIC, _norm_value(f["diastolic"]))}
    if want <= mine:
        return Check(True, f"systolic {f['systolic']} and diastolic {f['diastolic']}", expected)
    return Check(
        False,
        f"rows for that reading: {sorted(mine, key=str) or 'none'}",
        expected,
        "a blood pressure panel has no value of its own: systolic and diastolic are in Observation.component (forEach: component)",
    )


def _rows_match(ctx: GradingContext) -> Check:
    f = ctx.facts
    want = _view_rows(ctx.session.run_view(reference_vitals_view(f["patient_id"])))
    expected = f"the reference flowsheet's {sum(want.values())} rows for {f['patient_name']}"
    rows, why = _run_student_view(ctx)
    if rows is None:
        return Check(False, why, expected)
    got = _view_rows(rows)
    if got == want:
        return Check(True, f"the same {sum(got.values())} rows", expected)
    extra, missing = got - want, want - got
    ids_extra = {k[0] for k in extra}
    others = {
        ref_id(o.get("subject"))
        for o in ctx.all("Observation")
        if o["id"] in ids_extra and ref_id(o.get("subject")) != f["patient_id"]
    }
    if others:
        advice = f"other patients' rows are in the view: filter on subject.reference = 'Patient/{f['patient_id']}'"
    elif f["voided_id"] in ids_extra:
        advice = "leave out entered-in-error observations (where: status != 'entered-in-error')"
    elif missing and all(k[3] is not None for k in missing) and any(k[3] is None for k in extra):
        advice = "values are empty: the path to a Quantity's value is value.ofType(Quantity).value"
    else:
        advice = "compare your rows with the vitals: one row per value and per component"
    found = f"{sum(got.values())} rows; {sum(missing.values())} missing, {sum(extra.values())} not expected"
    return Check(False, found, expected, advice)


def _view_solution(att: Any) -> None:
    hand_in(att, reference_vitals_view(att.facts["patient_id"]))


def _view_without_components(att: Any) -> None:
    view = reference_vitals_view(att.facts["patient_id"])
    view["select"][1] = {"column": _value_columns()}
    hand_in(att, view)


def _view_all_patients(att: Any) -> None:
    view = reference_vitals_view(att.facts["patient_id"])
    view["where"] = view["where"][1:]
    hand_in(att, view)


def _view_voided_kept(att: Any) -> None:
    view = reference_vitals_view(att.facts["patient_id"])
    view["where"] = view["where"][:2]
    hand_in(att, view)


VITALS_VIEW = register(
    Exercise(
        id="reports/vitals-view",
        title="Write a ViewDefinition: vitals flowsheet",
        topic="reports",
        competencies=("II.P.3", "I.P.1", "VI.P.6"),
        minutes=30,
        role=MA,
        grader=MA,
        summary="Write a SQL on FHIR ViewDefinition giving one patient's vital signs as flowsheet rows.",
        setup=_setup_view,
        instructions=(
            "Write a **SQL on FHIR ViewDefinition** (a dict) over `Observation` that gives the vital "
            "signs flowsheet of **{patient_name}** (MRN {patient_mrn}, `Patient/{patient_id}`).\n\n"
            "- Columns {columns}: the observation id (`getResourceKey()`), its effective date-time, the "
            "LOINC code, the number and its UCUM unit code.\n"
            "- One row per measured value: an observation's own quantity, and one row per component "
            "of a panel (a blood pressure gives a systolic and a diastolic row).\n"
            "- Only this patient's vital-signs observations, leaving out entries marked entered-in-error.\n\n"
            "Try it with `att.session.run_view(view)`, then hand it in:\n\n"
            "```python\nfrom ehr_sandbox.exercises.builtin.reports import hand_in\nhand_in(att, view)\n```\n\n"
            "Then call `att.check()`."
        ),
        criteria=(
            Criterion(
                "view runs",
                1,
                _view_runs,
                "A ViewDefinition is shared and rerun by others: it must be valid and name its columns (HL7 SQL on FHIR v2).",
            ),
            Criterion(
                "blood pressure components",
                2,
                _bp_components,
                "A flowsheet that drops the blood pressure hides the most-watched vital sign (MAERB I.P.1, II.P.3).",
            ),
            Criterion(
                "rows match the reference",
                3,
                _rows_match,
                "A flowsheet shows exactly one patient's valid measurements: another patient's or a voided value on it is a charting error waiting to happen (MAERB II.P.3, X.P.3).",
            ),
        ),
        hints=(
            Hint(
                "Start from `where`: subject, category 'vital-signs' and status; then `select` the id and effective."
            ),
            Hint(
                'Use `unionAll` of two selects with the same columns: one `forEach: "where(value.ofType(Quantity).exists())"` '
                'and one `forEach: "component"`.',
                cost=1,
            ),
        ),
        solution=Solution(_view_solution, description="the reference ViewDefinition"),
        wrong_solutions={
            "no-components": Solution(
                _view_without_components,
                fails="blood pressure components",
                message="Observation.component",
                description="read only the observation's own value",
            ),
            "all-patients": Solution(
                _view_all_patients,
                fails="rows match the reference",
                message="other patients' rows",
                description="forget the patient filter",
            ),
            "voided-kept": Solution(
                _view_voided_kept,
                fails="rows match the reference",
                message="entered-in-error",
                description="keep voided observations",
            ),
        },
    )
)
