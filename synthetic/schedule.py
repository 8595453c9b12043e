"""Provider schedules across patients: every appointment fills free slots of one clinician's day.

Patients are generated one at a time, but a clinician's day is shared. A :class:`Book` holds
which slots of each (clinician, day) are taken, as one integer bitmask per day over the
practice's slot grid (:attr:`synthetic.practice.Practice.slot_starts`). Each patient's
appointments are placed in patient-index order (:meth:`Book.place`): the wanted clinician
first, at the wanted time or the next free time that day, then the other clinicians who see
the patient's age, then covering (locum tenens) physicians, added when every rostered
clinician's day is full. Placement uses no random numbers, so it is a pure function of the
requests made so far: the book after patients ``0..i`` is the same whatever the number of
workers, and a worker starting at patient ``i`` gets a copy of it (see
:mod:`synthetic.runners`).

>>> from synthetic.engine import engine_for
>>> e = engine_for(seed=1, reference_date="2026-01-01", years=1, population="family-practice")
>>> book = Book(e.practice)
>>> a = book.place(Request(739622, 20, "prac-dr.patel", ("prac-dr.patel",), 0.0))
>>> b = book.place(Request(739622, 20, "prac-dr.patel", ("prac-dr.patel",), 0.0))
>>> (a.provider, a.minute), (b.provider, b.minute)
(('prac-dr.patel', 480), ('prac-dr.patel', 500))
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from synthetic.dates import weekday
from synthetic.ids import practice_id
from synthetic.practice import SLOT_MINUTES, slot_id

LOCUM_PREFIX = "locum-"
"""Username-like key of covering physicians (``prac-locum-01``...)."""


@dataclass(frozen=True, slots=True)
class Request:
    """One appointment to place: the day, its length, the wanted clinician and the clinicians
    who may see the patient, the wanted time as a share of the day (0 = first start), and
    whether it holds its slots (a cancelled appointment frees them).

    >>> Request(1, 20, "prac-a", ("prac-a",), 0.5).holds
    True
    """

    day: int
    minutes: int
    prefer: str
    fit: tuple[str, ...]
    want: float
    holds: bool = True


@dataclass(frozen=True, slots=True)
class Placed:
    """Where an appointment went: clinician, start minute of the day and the grid slots held.

    >>> Placed("prac-a", 480, 0, 1).slot_ids(739622, [480, 500])
    ['slot-a-2026-01-06-0800']
    """

    provider: str
    minute: int
    first: int
    count: int

    def slot_ids(self, day: int, grid: list[int]) -> list[str]:
        """Ids of the Slots this appointment fills (one per grid slot it covers).

        >>> Placed("prac-dr.x", 500, 1, 2).slot_ids(739622, [480, 500, 520])
        ['slot-dr.x-2026-01-06-0820', 'slot-dr.x-2026-01-06-0840']
        """
        return [
            slot_id(self.provider, day, grid[j]) for j in range(self.first, self.first + self.count)
        ]


def locum_id(n: int) -> str:
    """Practitioner id of the ``n``-th covering physician (from 1).

    >>> locum_id(3)
    'prac-locum-03'
    """
    return practice_id("prac", f"{LOCUM_PREFIX}{n:02d}")


class Grid:
    """Where an appointment of a given length can start on a weekday: (bitmask, minute, first
    grid index, grid slots covered), for starts inside open hours that do not cross lunch.

    >>> from synthetic.engine import engine_for
    >>> g = Grid(engine_for(seed=1, reference_date="2026-01-01", years=1, population="family-practice").practice)
    >>> g.starts(739622, 30)[0]
    (3, 480, 0, 2)
    """

    __slots__ = ("practice", "_cache")

    def __init__(self, practice: Any) -> None:
        self.practice = practice
        self._cache: dict[tuple[int, int], list[tuple[int, int, int, int]]] = {}

    def starts(self, day: int, minutes: int) -> list[tuple[int, int, int, int]]:
        """Candidate starts on ``day`` for a visit of ``minutes``, in time order.

        >>> from synthetic.engine import engine_for
        >>> g = Grid(engine_for(seed=1, reference_date="2026-01-01", years=1, population="family-practice").practice)
        >>> all(m + 20 <= 12 * 60 or m >= 13 * 60 for _, m, _, _ in g.starts(739622, 20))
        True
        """
        wd = weekday(day)
        key = (wd, minutes)
        hit = self._cache.get(key)
        if hit is None:
            grid = self.practice.slot_starts[wd]
            index = {m: j for j, m in enumerate(grid)}
            k = max(1, -(-minutes // SLOT_MINUTES))
            hit = []
            for m in self.practice.starts(day, minutes):
                j = index.get(m)
                if j is None or j + k > len(grid):
                    continue
                if any(grid[j + i] != m + SLOT_MINUTES * i for i in range(k)):
                    continue
                hit.append((((1 << k) - 1) << j, m, j, k))
            self._cache[key] = hit
        return hit


class Book:
    """Taken slots per (clinician, day) and the number of covering physicians so far.

    >>> from synthetic.engine import engine_for
    >>> b = Book(engine_for(seed=1, reference_date="2026-01-01", years=1, population="family-practice").practice)
    >>> b.locums, b.copy().taken("prac-dr.patel", 739622)
    (0, 0)
    """

    __slots__ = ("grid", "occupied", "locums")

    def __init__(self, practice: Any, grid: Grid | None = None) -> None:
        self.grid = grid if grid is not None else Grid(practice)
        self.occupied: dict[tuple[str, int], int] = {}
        self.locums = 0

    def copy(self) -> Book:
        """An independent copy (what a worker starting mid-population gets).

        >>> from synthetic.engine import engine_for
        >>> b = Book(engine_for(seed=1, reference_date="2026-01-01", years=1, population="family-practice").practice)
        >>> c = b.copy(); _ = c.place(Request(739622, 20, "prac-dr.patel", ("prac-dr.patel",), 0.0))
        >>> b.taken("prac-dr.patel", 739622), c.taken("prac-dr.patel", 739622)
        (0, 1)
        """
        c = Book(self.grid.practice, self.grid)
        c.occupied = dict(self.occupied)
        c.locums = self.locums
        return c

    def state(self) -> tuple[dict[tuple[str, int], int], int]:
        """Plain data to rebuild the book elsewhere (see :meth:`from_state`).

        >>> from synthetic.engine import engine_for
        >>> pr = engine_for(seed=1, reference_date="2026-01-01", years=1, population="family-practice").practice
        >>> Book.from_state(pr, Book(pr).state()).locums
        0
        """
        return dict(self.occupied), self.locums

    @classmethod
    def from_state(cls, practice: Any, state: tuple[dict[tuple[str, int], int], int]) -> Book:
        """A book with the taken slots and covering physicians of :meth:`state`.

        >>> from synthetic.engine import engine_for
        >>> pr = engine_for(seed=1, reference_date="2026-01-01", years=1, population="family-practice").practice
        >>> Book.from_state(pr, ({("prac-dr.patel", 739622): 1}, 2)).taken("prac-dr.patel", 739622)
        1
        """
        b = cls(practice)
        b.occupied, b.locums = dict(state[0]), state[1]
        return b

    def taken(self, provider: str, day: int) -> int:
        """Number of grid slots taken on a clinician's day.

        >>> from synthetic.engine import engine_for
        >>> Book(engine_for(seed=1, reference_date="2026-01-01", years=1, population="family-practice").practice).taken("x", 1)
        0
        """
        return self.occupied.get((provider, day), 0).bit_count()

    def is_free(self, provider: str, day: int, minute: int) -> bool:
        """Whether the grid slot of ``provider`` starting at ``minute`` on ``day`` is free.

        >>> from synthetic.engine import engine_for
        >>> b = Book(engine_for(seed=1, reference_date="2026-01-01", years=1, population="family-practice").practice)
        >>> _ = b.place(Request(739622, 30, "prac-dr.patel", ("prac-dr.patel",), 0.0))
        >>> b.is_free("prac-dr.patel", 739622, 480), b.is_free("prac-dr.patel", 739622, 520)
        (False, True)
        """
        grid = self.grid.practice.slot_starts[weekday(day)]
        if minute not in grid:
            return False
        return not (self.occupied.get((provider, day), 0) >> grid.index(minute)) & 1

    def place(self, req: Request) -> Placed:
        """Place one appointment (see the module text for the order tried).

        >>> from synthetic.engine import engine_for
        >>> b = Book(engine_for(seed=1, reference_date="2026-01-01", years=1, population="family-practice").practice)
        >>> got = [b.place(Request(739622, 20, "prac-dr.patel", ("prac-dr.patel",), 0.5)) for _ in range(30)]
        >>> len({(p.provider, p.minute) for p in got}), got[-1].provider
        (30, 'prac-locum-01')
        """
        cands = self.grid.starts(req.day, req.minutes)
        n = len(cands)
        s0 = min(n - 1, int(req.want * n)) if n else 0
        occ = self.occupied
        providers = [req.prefer, *(p for p in req.fit if p != req.prefer)]
        providers.extend(locum_id(k) for k in range(1, self.locums + 1))
        for prov in providers:
            key = (prov, req.day)
            mask = occ.get(key, 0)
            for t in range(n):
                bits, minute, first, count = cands[(s0 + t) % n]
                if mask & bits == 0:
                    if req.holds:
                        occ[key] = mask | bits
                    return Placed(prov, minute, first, count)
        # every rostered clinician's day is full: a covering physician is added
        self.locums += 1
        prov = locum_id(self.locums)
        if not n:  # no start fits this length on this day: the first grid slot
            grid = self.grid.practice.slot_starts[weekday(req.day)]
            return Placed(prov, grid[0] if grid else 9 * 60, 0, 1)
        bits, minute, first, count = cands[s0]
        if req.holds:
            occ[(prov, req.day)] = bits
        return Placed(prov, minute, first, count)
