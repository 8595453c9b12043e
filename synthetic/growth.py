"""Children's growth from the CDC 2000 LMS tables (content data, public domain).

A measure at an age and z-score is ``M * (1 + L*S*z) ** (1/L)`` (``M * exp(S*z)`` when L is 0),
with L, M and S interpolated linearly between the table's ages. Infant tables (length, weight,
head circumference) cover birth to 36 months; the 2-20 year tables cover stature, weight and BMI.

>>> g = growth_tables()
>>> round(g.value("length", "male", 0.0, 0.0), 1)
50.0
>>> round(g.zscore("bmi", "female", 120.0, g.value("bmi", "female", 120.0, 1.645)), 3)
1.645
"""

from __future__ import annotations

import bisect
import csv
import math
from functools import cache
from pathlib import Path

_SEX = {"1": "male", "2": "female"}


class GrowthTables:
    """LMS rows by (measure, sex), sorted by age in months.

    >>> GrowthTables({("bmi", "male"): [(24.0, -2.0, 16.6, 0.08)]}).value("bmi", "male", 24.0, 0.0)
    16.6
    """

    def __init__(
        self, rows: dict[tuple[str, str], list[tuple[float, float, float, float]]]
    ) -> None:
        self.rows = {k: sorted(v) for k, v in rows.items()}
        self.ages = {k: [r[0] for r in v] for k, v in self.rows.items()}

    def has(self, measure: str, sex: str, agemos: float) -> bool:
        """Whether the table of ``measure`` covers ``agemos``.

        >>> growth_tables().has("head", "male", 40.0)
        False
        """
        ages = self.ages.get((measure, sex))
        return bool(ages) and ages[0] <= agemos <= ages[-1]  # type: ignore[index]

    def lms(self, measure: str, sex: str, agemos: float) -> tuple[float, float, float]:
        """(L, M, S) at ``agemos`` (clamped to the table's ages).

        >>> growth_tables().lms("stature", "male", 24.0)[1] > 80
        True
        """
        rows = self.rows[(measure, sex)]
        ages = self.ages[(measure, sex)]
        i = bisect.bisect_left(ages, agemos)
        if i <= 0:
            return rows[0][1:]
        if i >= len(rows):
            return rows[-1][1:]
        a0, l0, m0, s0 = rows[i - 1]
        a1, l1, m1, s1 = rows[i]
        f = (agemos - a0) / (a1 - a0) if a1 > a0 else 0.0
        return (l0 + (l1 - l0) * f, m0 + (m1 - m0) * f, s0 + (s1 - s0) * f)

    def value(self, measure: str, sex: str, agemos: float, z: float) -> float:
        """The measure at ``agemos`` for z-score ``z``.

        >>> growth_tables().value("weight_infant", "female", 0.0, 0.0) > 3
        True
        """
        ll, m, s = self.lms(measure, sex, agemos)
        if abs(ll) < 1e-9:
            return m * math.exp(s * z)
        base = 1 + ll * s * z
        if base <= 0.05:  # far tails of a negative-L table: keep the value finite and monotone
            base = 0.05
        return m * base ** (1 / ll)

    def zscore(self, measure: str, sex: str, agemos: float, value: float) -> float:
        """The z-score of ``value`` at ``agemos``.

        >>> abs(growth_tables().zscore("stature", "male", 60.0, growth_tables().lms("stature", "male", 60.0)[1])) < 1e-9
        True
        """
        ll, m, s = self.lms(measure, sex, agemos)
        if abs(ll) < 1e-9:
            return math.log(value / m) / s
        return ((value / m) ** ll - 1) / (ll * s)


def read_tables(path: Path) -> GrowthTables:
    """Read an LMS CSV (measure, sex, agemos, L, M, S; ``#`` comment lines).

    >>> from synthetic.content import DEFAULT_ROOT
    >>> len(read_tables(DEFAULT_ROOT / "growth" / "cdc2000_lms.csv").rows)
    12
    """
    rows: dict[tuple[str, str], list[tuple[float, float, float, float]]] = {}
    with path.open(encoding="utf-8") as fh:
        lines = (line for line in fh if line.strip() and not line.startswith("#"))
        for rec in csv.DictReader(lines):
            key = (rec["measure"], _SEX[rec["sex"]])
            rows.setdefault(key, []).append(
                (float(rec["agemos"]), float(rec["L"]), float(rec["M"]), float(rec["S"]))
            )
    return GrowthTables(rows)


@cache
def growth_tables(root: str | None = None) -> GrowthTables:
    """The CDC 2000 tables of the content folder ``root`` (default: the shipped content).

    >>> growth_tables().has("bmi", "female", 100.0)
    True
    """
    from synthetic.content import DEFAULT_ROOT

    base = Path(root) if root is not None else DEFAULT_ROOT
    return read_tables(base / "growth" / "cdc2000_lms.csv")
