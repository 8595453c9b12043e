"""Precision boundaries of FHIR decimals, dates, dateTimes and times (``lowBoundary``/``highBoundary``).

FHIR keeps the precision a value was recorded with (``1970-06`` is a month, ``1.0`` is known to
one decimal place); the boundaries are the smallest and largest values that precision allows.

>>> date_boundary("1970-06", high=True)
'1970-06-30'
>>> decimal_boundary(1.0, high=False)
0.95
"""

from __future__ import annotations

import calendar
import re
from decimal import Decimal

__all__ = [
    "datetime_boundary",
    "date_boundary",
    "decimal_boundary",
    "guess_temporal_type",
    "time_boundary",
]

_DATE = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$")
_TIME = re.compile(r"^(\d{2})(?::(\d{2})(?::(\d{2})(?:\.(\d+))?)?)?$")
_DATETIME = re.compile(r"^(\d{4}(?:-\d{2}(?:-\d{2})?)?)(?:T([0-9:.]+)?)?(Z|[+-]\d{2}:\d{2})?$")


def decimal_boundary(value: int | float | Decimal, *, high: bool) -> int | float | Decimal:
    """Half a unit of the last recorded decimal place below (or above) ``value``.

    >>> decimal_boundary(Decimal("2.50"), high=True)
    Decimal('2.505')
    >>> decimal_boundary(3, high=False)
    2.5
    """
    text = format(value, "f") if isinstance(value, Decimal) else repr(value)
    exact = Decimal(text)
    places = -exact.as_tuple().exponent if "." in text else 0  # type: ignore[operator]
    half = Decimal(5) * Decimal(10) ** (-(places + 1))
    result = exact + half if high else exact - half
    return result if isinstance(value, Decimal) else float(result)


def date_boundary(value: str, *, high: bool) -> str | None:
    """First (or last) day a partial date can mean, or None when it is not a date.

    >>> date_boundary("2024", high=True), date_boundary("2024-02", high=True)
    ('2024-12-31', '2024-02-29')
    """
    m = _DATE.match(value)
    if not m:
        return None
    year = int(m.group(1))
    month = int(m.group(2)) if m.group(2) else (12 if high else 1)
    last_day = calendar.monthrange(year, month)[1]
    day = int(m.group(3)) if m.group(3) else (last_day if high else 1)
    return f"{year:04d}-{month:02d}-{day:02d}"


def time_boundary(value: str, *, high: bool) -> str | None:
    """Earliest (or latest) millisecond a partial time can mean, or None when it is not a time.

    >>> time_boundary("12:34", high=True)
    '12:34:59.999'
    """
    m = _TIME.match(value)
    if not m:
        return None
    hour, minute, second, fraction = m.groups()
    minute = minute or ("59" if high else "00")
    second = second or ("59" if high else "00")
    if fraction is None:
        fraction = "999" if high else "000"
    else:
        fraction = (fraction + ("9" if high else "0") * 3)[:3]
    return f"{hour}:{minute}:{second}.{fraction}"


def datetime_boundary(value: str, *, high: bool) -> str | None:
    """Earliest (or latest) instant a partial dateTime can mean, with the widest time zone when
    none was recorded (+14:00 for the low end, -12:00 for the high end).

    >>> datetime_boundary("2010-10-10", high=False)
    '2010-10-10T00:00:00.000+14:00'
    """
    m = _DATETIME.match(value)
    if not m:
        return None
    date_part, time_part, zone = m.groups()
    day = date_boundary(date_part, high=high)
    clock = (
        time_boundary(time_part, high=high)
        if time_part
        else ("23:59:59.999" if high else "00:00:00.000")
    )
    if day is None or clock is None:
        return None
    if zone is None:
        zone = "-12:00" if high else "+14:00"
    return f"{day}T{clock}{zone}"


def guess_temporal_type(value: str) -> str | None:
    """Which temporal type a string looks like when no FHIR type is known.

    >>> guess_temporal_type("12:30"), guess_temporal_type("2020-01-01T10:00:00Z"), guess_temporal_type("x")
    ('time', 'dateTime', None)
    """
    if _DATE.match(value):
        return "date"
    if _TIME.match(value):
        return "time"
    if _DATETIME.match(value):
        return "dateTime"
    return None
