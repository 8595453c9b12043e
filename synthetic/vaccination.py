"""When a vaccine dose is due (CDC schedule as content), independent of FHIR.

Childhood series are due from each dose's age, after the minimum interval, until two years
past the recommended window (catch-up); adult series (zoster, pneumococcal) are offered at
check-ups from their age on; recurring vaccines (influenza yearly in season, Td every ten
years) are due again after their interval.

>>> import random
>>> from synthetic.catalog import VaccineDef
>>> flu = VaccineDef("flu", {}, "Influenza", "both", (), 365, 180, 40000, "any", 0.5, {}, {}, "x")
>>> windows = vaccine_windows([flu])
>>> windows[0][1:]
(180, 40000)
>>> is_due(random.Random(0), flu, 0, None, day=739556, age_days=400, wellness=False)  # 2025-10-01
True
"""

from __future__ import annotations

import random
from bisect import bisect_right
from collections.abc import Iterable

from synthetic.catalog import VaccineDef
from synthetic.dates import iso_date

FLU_SEASON_MONTHS = frozenset({9, 10, 11, 12, 1, 2, 3})
CATCH_UP_DAYS = 2 * 365


def vaccine_windows(vaccines: Iterable[VaccineDef]) -> list[tuple[VaccineDef, int, int]]:
    """(vaccine, first age, last age in days at which a dose can be due), to skip the rest fast.

    >>> vaccine_windows([])
    []
    """
    out = []
    for vac in vaccines:
        starts = ([vac.doses[0][0]] if vac.doses else []) + (
            [vac.start_days] if vac.repeat_days else []
        )
        ends = [vac.doses[-1][1] + CATCH_UP_DAYS] if vac.doses and vac.group != "adult" else []
        if vac.repeat_days or vac.group == "adult":
            ends.append(vac.end_days)
        out.append((vac, min(starts, default=0), max(ends, default=0)))
    return out


class WindowIndex:
    """The vaccines whose window (:func:`vaccine_windows`) holds an age, for a sex, in the
    windows' order: the ages are cut where a window opens or closes, once per sex.

    >>> from synthetic.catalog import VaccineDef
    >>> flu = VaccineDef("flu", {}, "Influenza", "both", (), 365, 180, 40000, "any", 0.5, {}, {}, "x")
    >>> ix = WindowIndex(vaccine_windows([flu]))
    >>> [v.key for v in ix.at(400, "female")], ix.at(100, "male")
    (['flu'], ())
    """

    __slots__ = ("windows", "_by_sex")

    def __init__(self, windows: list[tuple[VaccineDef, int, int]]) -> None:
        self.windows = windows
        self._by_sex: dict[str, tuple[list[int], list[tuple[VaccineDef, ...]]]] = {}

    def at(self, age_days: int, sex: str) -> tuple[VaccineDef, ...]:
        """The vaccines with ``lo <= age_days <= hi`` and a sex of ``"any"`` or ``sex``.

        Examples
        --------
        >>> from types import SimpleNamespace as V
        >>> flu, hpv = V(key="flu", sex="any"), V(key="hpv", sex="female")
        >>> idx = WindowIndex([(flu, 180, 40000), (hpv, 3285, 9490)])
        >>> [v.key for v in idx.at(4000, "female")], [v.key for v in idx.at(4000, "male")], idx.at(10, "male")
        (['flu', 'hpv'], ['flu'], ())
        """
        table = self._by_sex.get(sex)
        if table is None:
            table = self._by_sex[sex] = self._cut(sex)
        cuts, active = table
        i = bisect_right(cuts, age_days) - 1
        return active[i] if i >= 0 else ()

    def _cut(self, sex: str) -> tuple[list[int], list[tuple[VaccineDef, ...]]]:
        mine = [w for w in self.windows if w[0].sex in ("any", sex)]
        cuts = sorted({lo for _, lo, _ in mine} | {hi + 1 for _, _, hi in mine})
        active = [tuple(vac for vac, lo, hi in mine if lo <= c <= hi) for c in cuts]
        return cuts, active


def is_due(
    rng: random.Random,
    vac: VaccineDef,
    doses_given: int,
    last: int | None,
    *,
    day: int,
    age_days: int,
    wellness: bool,
) -> bool:
    """Whether the next dose of ``vac`` is due at a visit on ``day`` (ordinal) at ``age_days``.

    Childhood doses are mostly given at well-child visits and in infancy, sometimes at other
    visits; adult series and long-interval boosters only at check-ups.

    >>> from synthetic.catalog import VaccineDef
    >>> td = VaccineDef("td", {}, "Td", "adult", (), 3650, 7670, 40000, "any", 0.5, {}, {}, "x")
    >>> is_due(random.Random(0), td, 0, None, day=1, age_days=8000, wellness=False)
    False
    """
    if vac.doses and doses_given < len(vac.doses):
        due_age, latest, interval = vac.doses[doses_given]
        until = vac.end_days if vac.group == "adult" else latest + CATCH_UP_DAYS
        if not (due_age <= age_days <= until and (last is None or day - last >= interval)):
            return False
        if vac.group == "adult":
            return wellness
        return wellness or age_days < 2 * 365 or rng.random() < 0.3
    if (
        vac.repeat_days
        and vac.start_days <= age_days <= vac.end_days
        and (last is None or day - last >= vac.repeat_days - 30)
    ):
        if vac.repeat_days <= 366:  # seasonal
            return int(iso_date(day)[5:7]) in FLU_SEASON_MONTHS
        return wellness
    return False
