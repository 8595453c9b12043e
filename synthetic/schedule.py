"""Provider schedules across patients: every appointment fills free slots of one clinician's day.

Patients are generated one at a time, but a clinician's day is shared. A :class:`Book` holds
which seats of each (clinician, day) are taken, as one integer bitmask per day over the seats
of the clinician's template day (:mod:`synthetic.templates`: stream, wave, modified wave or
cluster, blocked lunch and meetings, open-access slots). Each patient's appointments are placed
in patient-index order (:meth:`Book.place`): the wanted clinician first, at the wanted time or
the next free time that day, then the other clinicians who see the patient's age, then
covering (locum tenens) physicians, added when every rostered clinician's day is full. A
same-day visit tries the open-access slots first, a visit of a cluster's type the cluster
first; no other visit takes them. Placement uses no random numbers, so it is a pure function
of the requests made so far: the book after patients ``0..i`` is the same whatever the number
of workers, and a worker starting at patient ``i`` gets a copy of it (see
:mod:`synthetic.runners`).

>>> from synthetic.engine import engine_for
>>> e = engine_for(seed=1, reference_date="2026-01-01", years=1, population="family-practice")
>>> book = Book(e.practice)
>>> a = book.place(Request(739622, 20, "prac-dr.patel", ("prac-dr.patel",), 0.0))
>>> b = book.place(Request(739622, 20, "prac-dr.patel", ("prac-dr.patel",), 0.0))
>>> (a.provider, a.minute), (b.provider, b.minute)
(('prac-dr.patel', 480), ('prac-dr.patel', 500))
>>> w = [book.place(Request(739622, 20, "prac-dr.nguyen", ("prac-dr.nguyen",), 0.0)) for _ in range(3)]
>>> [p.minute for p in w]  # modified wave: two at 08:00, one at 08:30
[480, 480, 510]
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from synthetic.dates import weekday
from synthetic.ids import practice_id
from synthetic.practice import SLOT_MINUTES
from synthetic.templates import Candidate, slot_id

__all__ = ["SLOT_MINUTES", "Book", "Grid", "Placed", "Request", "locum_id", "locum_ids", "slot_id"]

LOCUM_PREFIX = "locum-"
"""Username-like key of covering physicians (``prac-locum-01``...)."""


@dataclass(frozen=True, slots=True)
class Request:
    """One appointment to place: the day, its length, the wanted clinician and the clinicians
    who may see the patient, the wanted time as a share of the day (0 = first start), whether
    it holds its slots (a cancelled appointment frees them), its appointment type (for cluster
    slots) and whether it is booked the same day (for open-access slots).

    >>> Request(1, 20, "prac-a", ("prac-a",), 0.5).holds
    True
    """

    day: int
    minutes: int
    prefer: str
    fit: tuple[str, ...]
    want: float
    holds: bool = True
    tcode: str = ""
    same_day: bool = False


@dataclass(frozen=True, slots=True)
class Placed:
    """Where an appointment went: clinician, start minute of the day, the slot times of the
    clinician's template day it covers (``first``, ``count``), its seat, and the category of
    its first slot (``"open-access"``, ``"cluster"`` or ``""``).

    >>> Placed("prac-a", 480, 0, 1).seat
    0
    """

    provider: str
    minute: int
    first: int
    count: int
    seat: int = 0
    category: str = ""

    def slot_ids(self, day: int, layout: Any) -> list[str]:
        """Ids of the Slots this appointment fills (one per slot time it covers).

        >>> from synthetic.templates import SlotTime
        >>> lay = [SlotTime(480, 500, 1, 0), SlotTime(500, 520, 1, 1), SlotTime(520, 540, 1, 2)]
        >>> Placed("prac-dr.x", 500, 1, 2).slot_ids(739622, lay)
        ['slot-dr.x-2026-01-06-0820', 'slot-dr.x-2026-01-06-0840']
        """
        return [
            slot_id(self.provider, day, layout[j].start, self.seat)
            for j in range(self.first, self.first + self.count)
        ]


def locum_id(n: int) -> str:
    """Practitioner id of the ``n``-th covering physician (from 1).

    >>> locum_id(3)
    'prac-locum-03'
    """
    return practice_id("prac", f"{LOCUM_PREFIX}{n:02d}")


class Grid:
    """Where an appointment can start on a clinician's day: candidates (seat bitmask, minute,
    first slot time, slot times covered, seat) from the clinician's template, reserved slots
    first (see :meth:`synthetic.templates.Templates.candidates`).

    >>> from synthetic.engine import engine_for
    >>> g = Grid(engine_for(seed=1, reference_date="2026-01-01", years=1, population="family-practice").practice)
    >>> g.starts("prac-dr.patel", 739622, 30)[1][0]
    (3, 480, 0, 2, 0)
    """

    __slots__ = ("practice", "_placements")

    def __init__(self, practice: Any) -> None:
        self.practice = practice
        self._placements: dict[tuple[Any, ...], tuple[list[tuple[int, Placed]], ...]] = {}

    def starts(
        self, provider: str, day: int, minutes: int, tcode: str = "", same_day: bool = False
    ) -> tuple[list[Candidate], ...]:
        """Candidate starts on ``day`` for a visit of ``minutes``: (reserved for it, others).

        >>> from synthetic.engine import engine_for
        >>> g = Grid(engine_for(seed=1, reference_date="2026-01-01", years=1, population="family-practice").practice)
        >>> all(m + 20 <= 12 * 60 or m >= 13 * 60 for _, m, _, _, _ in g.starts("prac-dr.patel", 739622, 20)[1])
        True
        """
        pr = self.practice
        return pr.templates.candidates(
            pr.template_of(provider), weekday(day), minutes, tcode, same_day
        )

    def placements(
        self, provider: str, day: int, minutes: int, tcode: str = "", same_day: bool = False
    ) -> tuple[list[tuple[int, Placed]], ...]:
        """:meth:`starts` as (seat bitmask, :class:`Placed`) pairs, built once per clinician,
        weekday, length, type and same-day flag (a bounded cache; a Placed is immutable).

        >>> from synthetic.engine import engine_for
        >>> g = Grid(engine_for(seed=1, reference_date="2026-01-01", years=1, population="family-practice").practice)
        >>> g.placements("prac-dr.patel", 739622, 30)[1][0]
        (3, Placed(provider='prac-dr.patel', minute=480, first=0, count=2, seat=0, category=''))
        """
        key = (provider, weekday(day), minutes, tcode, same_day)
        hit = self._placements.get(key)
        if hit is None:
            layout = self.practice.layout(provider, day)
            hit = tuple(
                [
                    (bits, Placed(provider, minute, first, count, seat, layout[first].category))
                    for bits, minute, first, count, seat in cands
                ]
                for cands in self.starts(provider, day, minutes, tcode, same_day)
            )
            if len(self._placements) < 20_000:
                self._placements[key] = hit
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

    def is_free(self, provider: str, day: int, minute: int, seat: int = 0) -> bool:
        """Whether the slot of ``provider`` starting at ``minute`` on ``day`` is free (a seat).

        >>> from synthetic.engine import engine_for
        >>> b = Book(engine_for(seed=1, reference_date="2026-01-01", years=1, population="family-practice").practice)
        >>> _ = b.place(Request(739622, 30, "prac-dr.patel", ("prac-dr.patel",), 0.0))
        >>> b.is_free("prac-dr.patel", 739622, 480), b.is_free("prac-dr.patel", 739622, 520)
        (False, True)
        """
        for st in self.grid.practice.layout(provider, day):
            if st.start == minute:
                if seat >= st.seats:
                    return False
                return not (self.occupied.get((provider, day), 0) >> (st.bit + seat)) & 1
        return False

    def place(self, req: Request) -> Placed:
        """Place one appointment (see the module text for the order tried).

        >>> from synthetic.engine import engine_for
        >>> b = Book(engine_for(seed=1, reference_date="2026-01-01", years=1, population="family-practice").practice)
        >>> got = [b.place(Request(739622, 20, "prac-dr.patel", ("prac-dr.patel",), 0.5)) for _ in range(30)]
        >>> len({(p.provider, p.minute) for p in got}), got[-1].provider
        (30, 'prac-locum-01')
        """
        return self.book(
            req.day, req.minutes, req.prefer, req.fit, req.want, req.holds, req.tcode, req.same_day
        )

    def book(
        self,
        day: int,
        minutes: int,
        prefer: str,
        fit: tuple[str, ...],
        want: float,
        holds: bool = True,
        tcode: str = "",
        same_day: bool = False,
    ) -> Placed:
        """:meth:`place` of ``Request(day, minutes, prefer, fit, want, holds, tcode, same_day)``
        without building the request.

        >>> from synthetic.engine import engine_for
        >>> b = Book(engine_for(seed=1, reference_date="2026-01-01", years=1, population="family-practice").practice)
        >>> b.book(739622, 20, "prac-dr.patel", ("prac-dr.patel",), 0.0).minute
        480
        """
        hit = self._first_free(prefer, day, minutes, tcode, same_day, want, holds)
        if hit is not None:
            return hit
        for prov in fit:
            if prov != prefer:
                hit = self._first_free(prov, day, minutes, tcode, same_day, want, holds)
                if hit is not None:
                    return hit
        for prov in locum_ids(self.locums):
            hit = self._first_free(prov, day, minutes, tcode, same_day, want, holds)
            if hit is not None:
                return hit
        # every rostered clinician's day is full: a covering physician is added
        self.locums += 1
        prov = locum_id(self.locums)
        for cands in self.grid.placements(prov, day, minutes, tcode, same_day):
            if cands:
                n = len(cands)
                bits, placed = cands[min(n - 1, int(want * n))]
                if holds:
                    self.occupied[(prov, day)] = bits
                return placed
        # no start fits this length on this day: the first slot time
        layout = self.grid.practice.layout(prov, day)
        return Placed(prov, layout[0].start if layout else 9 * 60, 0, 1)

    def _first_free(
        self,
        prov: str,
        day: int,
        minutes: int,
        tcode: str,
        same_day: bool,
        want: float,
        holds: bool,
    ) -> Placed | None:
        """The first free start of ``prov``'s day from the wanted time on (reserved slots
        first), taken when ``holds``; None when the day is full for this visit."""
        occ = self.occupied
        key = (prov, day)
        mask = occ.get(key, 0)
        for cands in self.grid.placements(prov, day, minutes, tcode, same_day):
            n = len(cands)
            s0 = min(n - 1, int(want * n)) if n else 0
            for t in range(s0, s0 + n):
                bits, placed = cands[t % n]
                if mask & bits == 0:
                    if holds:
                        occ[key] = mask | bits
                    return placed
        return None


@lru_cache(maxsize=64)
def locum_ids(n: int) -> tuple[str, ...]:
    """Ids of the first ``n`` covering physicians (:func:`locum_id`), in order (cached).

    >>> locum_ids(2)
    ('prac-locum-01', 'prac-locum-02')
    """
    return tuple(locum_id(k) for k in range(1, n + 1))
