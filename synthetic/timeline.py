"""A patient's visits over the record window, as ordinal days (no FHIR here).

Visits come from the wellness schedule, chronic diagnoses and their follow-ups (with missed
visits), acute episodes, pregnancies and specialty care; visits on the same day merge.

>>> import random
>>> t = Timeline(start=1000, end=2000)
>>> t.add(1500, "acute", acute="uri") and t.add(1500, "follow-up", conditions=("htn",))
True
>>> [(v.day, v.kind, v.acute, v.conditions) for v in t.visits()]
[(1500, 'acute', 'uri', ['htn'])]
"""

from __future__ import annotations

import math
import random
from bisect import bisect_left, insort
from dataclasses import dataclass, field
from typing import Any

CHILD_WELLNESS_DAYS: tuple[int, ...] = (
    5,
    30,
    61,
    122,
    183,
    274,
    365,
    456,
    548,
    730,
    913,
    1096,
    *(int(365.25 * y) for y in range(4, 18)),
)
"""Ages (days) of the Bright Futures well-child visits, newborn to 17 years."""

_KIND_RANK = {
    "prenatal": 0,
    "acute": 1,
    "diagnosis": 2,
    "follow-up": 3,
    "wellness": 4,
    "specialty": 5,
}


@dataclass(slots=True)
class Visit:
    """One office visit (several reasons may share it).

    >>> Visit(10, "wellness").conditions
    []
    """

    day: int
    kind: str
    conditions: list[str] = field(default_factory=list)
    new: list[str] = field(default_factory=list)
    acute: str | None = None
    pregnancy: str | None = None
    week: int = 0
    wellness: bool = False
    specialty: bool = False
    virtual: bool = False
    placed: Any = None
    """Where the schedule put the visit (:class:`synthetic.schedule.Placed`), once booked."""
    plan: Any = None
    """The visit's scheduling draws (:class:`synthetic.visit.scheduling.VisitPlan`)."""


class Timeline:
    """Collects visits in [start, end) and merges those on the same day.

    >>> t = Timeline(0, 100)
    >>> t.add(5, "wellness"), t.add(500, "wellness"), len(t.visits())
    (True, False, 1)
    """

    __slots__ = ("start", "end", "_by_day", "_days", "_order", "_added")

    def __init__(self, start: int, end: int) -> None:
        self.start = start
        self.end = end
        self._by_day: dict[int, Visit] = {}
        self._days: list[int] = []
        """The days of ``_by_day``, sorted (for :meth:`nearest`)."""
        self._order: dict[int, int] = {}
        """When each day entered ``_by_day`` (ties in :meth:`nearest` go to the earlier)."""
        self._added = 0

    def _new(self, day: int, kind: str) -> Visit:
        v = self._by_day[day] = Visit(day, kind)
        insort(self._days, day)
        self._order[day] = self._added
        self._added += 1
        return v

    def _drop(self, day: int) -> Visit:
        v = self._by_day.pop(day)
        del self._days[bisect_left(self._days, day)]
        del self._order[day]
        return v

    def add(
        self,
        day: int,
        kind: str,
        *,
        conditions: tuple[str, ...] = (),
        new: tuple[str, ...] = (),
        acute: str | None = None,
        pregnancy: str | None = None,
        week: int = 0,
    ) -> bool:
        """Add a visit (merged into one already on ``day``); False when outside the window.

        >>> Timeline(0, 10).add(10, "acute")
        False
        """
        if not self.start <= day < self.end:
            return False
        v = self._by_day.get(day)
        if v is None:
            v = self._new(day, kind)
        elif _KIND_RANK[kind] < _KIND_RANK[v.kind]:
            v.kind = kind
        for c in conditions:
            if c not in v.conditions:
                v.conditions.append(c)
        for c in new:
            if c not in v.new:
                v.new.append(c)
            if c not in v.conditions:
                v.conditions.append(c)
        if acute is not None and v.acute is None:
            v.acute = acute
        if pregnancy is not None:
            v.pregnancy, v.week = pregnancy, week
        if kind == "wellness":
            v.wellness = True
        if kind == "specialty":
            v.specialty = True
        return True

    def has_near(self, day: int, days: int) -> bool:
        """True when a visit lies within ``days`` of ``day``.

        >>> t = Timeline(0, 100); _ = t.add(50, "acute"); t.has_near(45, 5), t.has_near(40, 5)
        (True, False)
        """
        return any(abs(d - day) <= days for d in self._by_day)

    def thin(self, rng: random.Random, era: Any) -> None:
        """Drop and move to video visits by period: ``era(day)`` gives (keep, telehealth).

        Prenatal and diagnostic visits always happen in the office.

        >>> t = Timeline(0, 10); _ = t.add(5, "acute"); t.thin(random.Random(0), lambda d: (0.0, 0.0))
        >>> t.visits()
        []
        """
        for d in sorted(self._by_day):
            keep, tele = era(d)
            if keep >= 1.0 and tele <= 0.0:
                continue
            v = self._by_day[d]
            if v.pregnancy is not None or v.new:
                continue
            if rng.random() >= keep:
                self._drop(d)
            elif v.kind in ("follow-up", "acute") and not v.wellness and rng.random() < tele:
                v.virtual = True

    def move(self, first: int, last: int, to: int) -> None:
        """Move the visits of days ``first``..``last`` to day ``to`` (merged into its visit).

        Used when the patient cannot come (in hospital): what was due is done at ``to``.
        Visits that ``to`` falls outside the window for are dropped.

        >>> t = Timeline(0, 100); _ = t.add(10, "acute", acute="uri"); t.move(9, 11, 20)
        >>> [(v.day, v.acute) for v in t.visits()]
        [(20, 'uri')]
        """
        for d in [d for d in self._by_day if first <= d <= last]:
            v = self._drop(d)
            self.add(
                to,
                v.kind,
                conditions=tuple(v.conditions),
                new=tuple(v.new),
                acute=v.acute,
                pregnancy=v.pregnancy,
                week=v.week,
            )
            moved = self._by_day.get(to)
            if moved is not None:
                moved.wellness = moved.wellness or v.wellness
                moved.specialty = moved.specialty or v.specialty

    def nearest(self, day: int, days: int) -> int | None:
        """The day of the visit closest to ``day`` within ``days`` (None when there is none).

        >>> t = Timeline(0, 100); _ = t.add(50, "acute"); t.nearest(45, 7), t.nearest(30, 7)
        (50, None)
        """
        sorted_days = self._days
        i = bisect_left(sorted_days, day)
        after = sorted_days[i] if i < len(sorted_days) else None  # the first on or after
        before = sorted_days[i - 1] if i > 0 else None  # the last before
        if after is not None and after - day > days:
            after = None
        if before is not None and day - before > days:
            before = None
        if after is None or before is None:
            return after if before is None else before
        if after - day != day - before:
            return after if after - day < day - before else before
        return after if self._order[after] < self._order[before] else before

    def visits(self) -> list[Visit]:
        """Visits in day order.

        >>> Timeline(0, 1).visits()
        []
        """
        return [self._by_day[d] for d in sorted(self._by_day)]


def poisson(rng: random.Random, lam: float) -> int:
    """A Poisson draw (Knuth; ``lam`` is small here).

    >>> poisson(random.Random(0), 0.0)
    0
    """
    if lam <= 0:
        return 0
    limit = math.exp(-lam)
    k, p = 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


def wellness_days(
    rng: random.Random,
    birth: int,
    start: int,
    end: int,
    attend: float,
    child_attend: float = 0.93,
) -> list[int]:
    """Well-child visits by schedule, then yearly adult check-ups attended with ``attend``.

    >>> days = wellness_days(random.Random(1), 0, 0, 800, 1.0)
    >>> days[:2], all(0 <= d < 800 for d in days)
    ([5, 30], True)
    """
    out: list[int] = []
    for age in CHILD_WELLNESS_DAYS:
        day = birth + age + (rng.randrange(10) if age > 30 else 0)
        if start <= day < end and rng.random() < (child_attend if age < 1100 else attend + 0.1):
            out.append(day)
    adult_from = birth + int(18 * 365.25)
    day = max(start, adult_from) + rng.randrange(365)
    while day < end:
        if rng.random() < attend:
            out.append(day)
        day += 330 + rng.randrange(90)
    return out


def follow_up_days(
    rng: random.Random, onset: int, end: int, interval: int, attend: float
) -> list[int]:
    """Follow-up visits every ``interval`` days (+-20 %) after ``onset``, some missed.

    >>> all(d > 100 for d in follow_up_days(random.Random(0), 100, 2000, 180, 1.0))
    True
    """
    out: list[int] = []
    if interval <= 0:
        return out
    day = onset
    while True:
        day += int(interval * rng.uniform(0.85, 1.2))
        if day >= end:
            return out
        if rng.random() < attend:
            out.append(day)
