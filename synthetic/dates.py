"""Calendar arithmetic in ordinal days, with cached ISO strings.

The generator works in ``date.toordinal()`` integers and turns them into FHIR strings through
caches, because parsing and formatting dates per resource would dominate the run time.

>>> o = parse_reference_date("2026-01-01")
>>> iso_date(o), iso_date(o + 31)
('2026-01-01', '2026-02-01')
>>> instant(o, 9 * 60 + 30, "-05:00")
'2026-01-01T09:30:00-05:00'
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from synthetic.errors import ArgumentError

DAYS_PER_YEAR = 365.2425

CLOCK: tuple[str, ...] = tuple(f"T{m // 60:02d}:{m % 60:02d}:00" for m in range(24 * 60))
"""The time part of an instant per minute of the day (``CLOCK[570] == "T09:30:00"``)."""


def parse_reference_date(value: str | date, *, argument: str = "reference_date") -> int:
    """Return the ordinal day of ``value`` (a ``date`` or ``YYYY-MM-DD``), else ArgumentError.

    >>> parse_reference_date(date(2026, 1, 1)) == date(2026, 1, 1).toordinal()
    True
    >>> parse_reference_date("2026-02-30")
    Traceback (most recent call last):
    ...
    synthetic.errors.ArgumentError: reference_date: expected a date YYYY-MM-DD, got '2026-02-30'
    """
    if isinstance(value, date):
        return value.toordinal()
    try:
        if not isinstance(value, str) or len(value) != 10:
            raise ValueError(value)
        return date.fromisoformat(value).toordinal()
    except ValueError:
        raise ArgumentError(f"{argument}: expected a date YYYY-MM-DD, got {value!r}") from None


class IsoDates(dict):  # type: ignore[type-arg]
    """Ordinal day -> ``YYYY-MM-DD``, filled on first use (a day not asked for is not stored).

    :func:`iso_date` is this table's ``__getitem__``: a day already seen costs one dict
    lookup in C, no Python call (dates are formatted for nearly every resource).

    >>> table = IsoDates(); table[date(2000, 2, 29).toordinal()], len(table)
    ('2000-02-29', 1)
    """

    __slots__ = ()

    def __missing__(self, ordinal: int) -> str:
        s = self[ordinal] = date.fromordinal(ordinal).isoformat()
        return s


_ISO = IsoDates()
iso_date: Callable[[int], str] = _ISO.__getitem__
"""``YYYY-MM-DD`` of an ordinal day (cached, see :class:`IsoDates`).

>>> iso_date(date(2000, 2, 29).toordinal())
'2000-02-29'
"""


def instant(ordinal: int, minute_of_day: int, offset: str) -> str:
    """A FHIR instant at ``minute_of_day`` on ``ordinal`` with a fixed UTC ``offset``.

    Not cached: visits fall on ~100 distinct (day, minute) pairs per patient-decade, so a
    cache would grow with the dataset (memory must stay flat).

    >>> instant(date(2026, 3, 1).toordinal(), 0, "+00:00")
    '2026-03-01T00:00:00+00:00'
    """
    return iso_date(ordinal) + CLOCK[minute_of_day] + offset


def age_years(birth: int, at: int) -> int:
    """Whole years from ``birth`` to ``at`` (exact calendar age).

    >>> b = date(2000, 6, 15).toordinal()
    >>> age_years(b, date(2010, 6, 14).toordinal()), age_years(b, date(2010, 6, 15).toordinal())
    (9, 10)
    """
    bs, ats = iso_date(birth), iso_date(at)
    years = int(ats[:4]) - int(bs[:4])
    return years - 1 if ats[5:] < bs[5:] else years


def years_to_days(years: float) -> int:
    """Approximate number of days in ``years`` years.

    >>> years_to_days(1)
    365
    """
    return int(years * DAYS_PER_YEAR)


def weekday(ordinal: int) -> int:
    """Monday = 0 ... Sunday = 6.

    >>> weekday(date(2026, 1, 1).toordinal())  # a Thursday
    3
    """
    return (ordinal - 1) % 7
