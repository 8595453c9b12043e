"""Helpers shared by the "Running reports" exercises (``reports`` package).

Handing in an answer (:func:`hand_in`, the answer shapes, :func:`money`), the role and
code-system constants and the date and time helpers, and the few helpers that more than
one exercise uses, live here once; each exercise module imports what it needs.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping
from datetime import date, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from ehr_sandbox.errors import ExerciseError
from ehr_sandbox.exercises.builtin.common import HAND_IN as HAND_IN_KIND
from ehr_sandbox.exercises.builtin.common import hand_ins, record_hand_in
from ehr_sandbox.exercises.grading import GradingContext
from ehr_sandbox.exercises.model import Check, Expect
from synthetic.systems import ICD10CM

FRONT_DESK = "fd.smith"
MA = "ma.garcia"
BILLING = "billing.davis"
PRIVACY_OFFICER = "po.wilson"
PHYSICIAN = "dr.patel"
ICD10 = ICD10CM
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
    """A table (Report, DataFrame or list of dicts) as {"columns": [...], "rows": [...]}.

    A report a classroom server sent in part (``truncated``) is refused: a hand-in is never
    partial data.

    >>> from types import SimpleNamespace as NS
    >>> _table(NS(truncated=True, total_rows=12000, to_pylist=lambda: []), "access report")
    Traceback (most recent call last):
    ...
    ehr_sandbox.errors.ExerciseError: answer: access report is a report the server sent in part (12000 rows, some left out); narrow it so that every row comes back
    """
    if getattr(value, "truncated", False) is True:
        raise ExerciseError(
            f"answer: {field} is a report the server sent in part "
            f"({getattr(value, 'total_rows', '?')} rows, some left out); narrow it so that every row comes back"
        )
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
    """An access report as stored: a table, or a table as :func:`_table` stored it.

    >>> stored = _shape_access([{"username": "rn.kim", "outcome": "0"}])
    >>> _shape_access(stored) == stored
    True
    """
    if isinstance(answer, Mapping) and set(answer) == {"columns", "rows"}:  # as stored
        columns = answer["columns"]
        if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
            raise ExerciseError("answer: access report columns must be a list of names")
        table = _table(answer["rows"], "access report")
        return {
            "columns": [*columns, *(c for c in table["columns"] if c not in columns)],
            "rows": table["rows"],
        }
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


SUBMIT_KIND = HAND_IN_KIND
"""Audit action kind a hand-in is recorded as (the grader reads hand-ins from the audit trail)."""


def normalised(exercise_id: str, answer: Any) -> dict[str, Any]:
    """The answer of a report exercise as it is handed in (checked and normalised).

    Bad shapes raise ExerciseError naming the field and what was expected.

    >>> normalised("reports/immunizations-due", {"patients": ["Patient/p2", "p1"]})
    {'patients': ['p1', 'p2']}
    >>> normalised("reports/immunizations-due", {"patients": "p1"})
    Traceback (most recent call last):
    ...
    ehr_sandbox.errors.ExerciseError: answer: patients must be a list of ids (found str)
    """
    shape = _SHAPES.get(exercise_id)
    if shape is None:
        raise ExerciseError(
            f"hand_in: {exercise_id} is not a report exercise (one of {', '.join(_SHAPES)})"
        )
    return shape(answer)


def hand_in(att: Any, answer: Any) -> dict[str, Any]:
    """Hand in the answer of a report exercise; returns it as stored (checked and normalised).

    The hand-in is an audited action of the student's session (``submit-report`` in the
    tamper-evident audit trail), so it cannot be edited afterwards: a second hand-in replaces
    the first; ``att.reset()`` forgets it. Bad shapes raise ExerciseError naming the field and
    what was expected, and store nothing.

    >>> from ehr_sandbox import exercises
    >>> att = exercises.start("reports/immunizations-due", "doctest")
    >>> hand_in(att, {"patients": ["Patient/p2", "p1"]})
    {'patients': ['p1', 'p2']}
    >>> handed_in(att.sandbox, "reports/immunizations-due", "doctest")
    {'patients': ['p1', 'p2']}
    """
    stored = normalised(att.exercise.id, answer)
    record_hand_in(att, stored)
    return stored


def _hand_ins(
    events: Iterable[Mapping[str, Any]], exercise_id: str, student: str, user: str | None
) -> list[dict[str, Any]]:
    """A report exercise's hand-ins (answers of its shape: a mapping), oldest first."""
    found = hand_ins(events, exercise_id, student=student, user=user)
    return [dict(a) for a in found if isinstance(a, Mapping)]


def handed_in(sandbox: Any, exercise_id: str, student: str) -> dict[str, Any] | None:
    """The last answer a student handed in for an exercise in this sandbox (None if none).

    >>> from types import SimpleNamespace as NS
    >>> handed_in(NS(audit=NS(events=lambda: [])), "reports/day-schedule", "alice") is None
    True
    """
    found = _hand_ins(sandbox.audit.events(), exercise_id, student, None)
    return found[-1] if found else None


def answer_of(ctx: GradingContext, exercise_id: str) -> dict[str, Any] | None:
    """The student's last hand-in since setup, made as the exercise's user, checked and
    normalised as :func:`hand_in` stores it: None when there is none, or when the last one is
    not of the exercise's shape (written around ``hand_in``, e.g. the instructions' text)."""
    found = hand_ins(
        ctx.events(SUBMIT_KIND), exercise_id, student=ctx.student, user=ctx.user.username
    )
    if not found:
        return None
    try:
        return normalised(exercise_id, found[-1])
    except (ExerciseError, TypeError, ValueError, ArithmeticError):
        return None


def nothing_found(expected: str) -> Check:
    return Check(False, "nothing handed in", expected, HAND_IN)


def _listing(ids: Iterable[str], label: Callable[[str], str] | None = None, limit: int = 4) -> str:
    items = sorted(ids)
    shown = [label(i) if label else i for i in items[:limit]]
    more = f" and {len(items) - limit} more" if len(items) > limit else ""
    return ", ".join(shown) + more


def set_diff(
    found: set[str], expected: set[str], noun: str, label: Callable[[str], str] | None = None
) -> str:
    """What is wrong with a handed-in set, without giving away the members it lacks.

    >>> set_diff({"a", "x"}, {"a", "b"}, "patients")
    '2 patients; 1 missing; listed in error: x'
    """
    parts = [f"{len(found)} {noun}"]
    if expected - found:
        parts.append(f"{len(expected - found)} missing")
    if found - expected:
        parts.append(f"listed in error: {_listing(found - expected, label)}")
    return "; ".join(parts)


def report_expects() -> tuple[Expect, ...]:
    """What a report exercise may change in the record: nothing but its audited hand-in."""
    return (Expect(SUBMIT_KIND),)


# ------------------------------------------------------------------------------------------
# Dates and times
# ------------------------------------------------------------------------------------------
def _offset_of(text: str) -> str | None:
    tail = text[-6:] if isinstance(text, str) else ""
    if len(tail) == 6 and tail[0] in "+-" and tail[3] == ":":
        return tail
    return None


def tz_of(offset: str) -> timezone:
    sign = -1 if offset[0] == "-" else 1
    return timezone(sign * timedelta(hours=int(offset[1:3]), minutes=int(offset[4:6])))


def practice_offset(sandbox: Any) -> str:
    """The practice's UTC offset, as written in its appointments (content decides it)."""
    for apt in sandbox.system_session().resources("Appointment"):
        off = _offset_of(apt.get("start", ""))
        if off:
            return off
    return "+00:00"


def local_instant(day: date, hour: int, minute: int, offset: str) -> str:
    return f"{day.isoformat()}T{hour:02d}:{minute:02d}:00{offset}"


def age_in_years(birth: str, on: str) -> float:
    """Age as the catalogue reports compute it (days / 365.25)."""
    return (date.fromisoformat(on) - date.fromisoformat(birth[:10])).days / 365.25


def is_alive(patient: Mapping[str, Any]) -> bool:
    return not patient.get("deceasedBoolean") and not patient.get("deceasedDateTime")


def resource_template(sandbox: Any, resource_type: str, username: str) -> dict[str, Any]:
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
# Used by more than one exercise, or by the helpers above
# ------------------------------------------------------------------------------------------
AGING_BUCKETS: tuple[str, ...] = ("0-30", "31-60", "61-90", "91-120", ">120")
