"""Front office of the generator: plan a patient's appointments, place them in the shared book,
and write the Slots they fill.

Planning draws from the patient's own random stream right after the timeline (clinician
wanted, time of day wanted, missed appointments by the patient's no-show propensity, the
appointments booked ahead of the reference date), so it is cheap and can run for every patient
before any record is built. Placement (:class:`synthetic.schedule.Book`) uses no random numbers.

>>> from synthetic.engine import engine_for
>>> e = engine_for(seed=1, reference_date="2026-01-01", years=2, population="family-practice")
>>> rec = e.patient(3)
>>> slots = {r["id"]: r for r in rec.by_type("Slot")}
>>> booked = [a for a in rec.by_type("Appointment") if a["status"] != "cancelled"]
>>> all(slots[s["reference"][5:]]["status"] == "busy" for a in booked for s in a["slot"])
True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from synthetic.builders.common import shared_ref
from synthetic.ids import practice_id
from synthetic.schedule import Book, Placed
from synthetic.templates import SlotTime, day_slots
from synthetic.timeline import Visit


@dataclass(slots=True)
class VisitPlan:
    """A visit's scheduling draws: type, length, clinician wanted, time wanted, and the
    appointment missed before it (``missed`` is ``"noshow"``, ``"cancelled"`` or None).

    >>> VisitPlan("ROUTINE", 15, "prac-a", ("prac-a",), 0.3).missed is None
    True
    """

    tcode: str
    minutes: int
    prefer: str
    fit: tuple[str, ...]
    want: float
    missed: str | None = None
    same_day: bool = False
    missed_day: int = 0
    missed_want: float = 0.0
    missed_placed: Placed | None = None


@dataclass(slots=True)
class AheadPlan:
    """An appointment booked after the reference date (status ``booked``).

    >>> AheadPlan(1, "CHECKUP", 30, "prac-a", 0.5, None, 0).placed is None
    True
    """

    day: int
    tcode: str
    minutes: int
    prefer: str
    want: float
    reason: str | None
    created: int
    placed: Placed | None = None


@dataclass(slots=True)
class PatientPlan:
    """Everything a patient asks of the schedule, in the order it is placed.

    >>> PatientPlan(1.0, [], "prac-a").ahead
    []
    """

    propensity: float
    visits: list[Visit]
    pcp: str
    ahead: list[AheadPlan] | None = None

    def __post_init__(self) -> None:
        if self.ahead is None:
            self.ahead = []


def no_show_probability(eng: Any, propensity: float) -> float:
    """Chance that a planned visit is missed, for a patient's propensity (content rates).

    >>> from synthetic.engine import engine_for
    >>> e = engine_for(seed=1, reference_date="2026-01-01", years=2, population="family-practice")
    >>> no_show_probability(e, 1.0) == e.practice_no_show()
    True
    """
    return min(eng.rules.scheduling.max_probability, eng.practice_no_show() * propensity)


def plan_visits(
    eng: Any, rng: Any, visits: list[Visit], pcp: str, birth: int, days_per_year: float
) -> PatientPlan:
    """Draw every visit's scheduling choices (mutates ``visits``: sets ``Visit.plan``).

    >>> import random
    >>> from synthetic.engine import engine_for
    >>> e = engine_for(seed=1, reference_date="2026-01-01", years=2, population="family-practice")
    >>> p = plan_visits(e, random.Random(1), [Visit(739622, "wellness")], "prac-dr.patel", 730000, 365.25)
    >>> p.visits[0].plan.tcode, p.visits[0].plan.missed
    ('CHECKUP', None)
    """
    sched = eng.rules.scheduling
    k = sched.propensity_shape
    propensity = rng.gammavariate(k, 1.0 / k)
    p_ns = no_show_probability(eng, propensity)
    p_cancel = eng.practice_cancel()
    own = eng.rates.see_own_pcp
    practice = eng.practice
    types: dict[str, tuple[str, int]] = {}  # kind of visit -> (appointment type, minutes)
    for i, v in enumerate(visits):
        kind = types.get(v.kind)
        if kind is None:
            tcode = eng.appointment_type(v.kind)
            kind = types[v.kind] = (tcode, eng.types[tcode].minutes)
        fit = practice.clinicians_for((v.day - birth) / days_per_year)
        prefer = pcp if pcp in fit and rng.random() < own else fit[rng.randrange(len(fit))]
        vp = VisitPlan(kind[0], kind[1], prefer, fit, rng.random())
        vp.same_day = v.kind == "acute"  # a sick visit is booked the day itself
        # planned visits (not the first, not same-day sick visits) may follow a missed one
        if v.kind != "acute" and i > 0:
            status = None
            if rng.random() < p_ns:
                status = "noshow"
            elif rng.random() < p_cancel:
                status = "cancelled"
            if status is not None:
                missed = practice.open_day(v.day - 7 - rng.randrange(21))
                if birth < missed < v.day and missed > visits[i - 1].day:
                    vp.missed, vp.missed_day, vp.missed_want = status, missed, rng.random()
        v.plan = vp
    return PatientPlan(propensity, visits, pcp)


def place(book: Book, plan: PatientPlan) -> None:
    """Place the patient's appointments in ``book`` (missed ones, visits, then those ahead).

    >>> import random
    >>> from synthetic.engine import engine_for
    >>> from synthetic.schedule import Book
    >>> e = engine_for(seed=1, reference_date="2026-01-01", years=2, population="family-practice")
    >>> p = plan_visits(e, random.Random(1), [Visit(739622, "wellness")], "prac-dr.patel", 730000, 365.25)
    >>> place(Book(e.practice), p); p.visits[0].placed.minute >= 8 * 60
    True
    """
    for v in plan.visits:
        vp = v.plan
        if vp.missed is not None:
            vp.missed_placed = book.book(
                vp.missed_day,
                vp.minutes,
                plan.pcp,
                vp.fit,
                vp.missed_want,
                vp.missed == "noshow",
                vp.tcode,
            )
        v.placed = book.book(
            v.day, vp.minutes, vp.prefer, vp.fit, vp.want, True, vp.tcode, vp.same_day
        )
    for a in plan.ahead or ():
        a.placed = book.book(a.day, a.minutes, a.prefer, (a.prefer,), a.want, tcode=a.tcode)


def busy_slots(eng: Any, day: int, placed: Placed) -> list[dict[str, Any]]:
    """The busy Slots an appointment fills (in the provider's Schedule, by their template).

    >>> from synthetic.engine import engine_for
    >>> from synthetic.schedule import Placed
    >>> e = engine_for(seed=1, reference_date="2026-01-01", years=2, population="family-practice")
    >>> [s["id"] for s in busy_slots(e, 739622, Placed("prac-dr.patel", 480, 0, 2))]
    ['slot-dr.patel-2026-01-06-0800', 'slot-dr.patel-2026-01-06-0820']
    >>> [s["id"] for s in busy_slots(e, 739622, Placed("prac-dr.nguyen", 480, 0, 1, 1))]
    ['slot-dr.nguyen-2026-01-06-0800-2']
    """
    prov = placed.provider
    layout = eng.practice.layout(prov, day)
    first, stop = placed.first, placed.first + placed.count
    if stop <= len(layout):
        times = layout[first:stop]
    else:  # a start the template day does not hold (a locum's day that fits no visit)
        times = tuple(
            layout[j] if j < len(layout) else SlotTime(placed.minute, placed.minute + 20, 1, 0)
            for j in range(first, stop)
        )
    schedule = _SCHEDULE_REFS.get(prov) or schedule_ref(prov)
    return day_slots(prov, schedule, day, times, placed.seat, "busy", eng.offset)


_SCHEDULE_REFS: dict[str, dict[str, str]] = {}


def schedule_ref(provider: str) -> dict[str, str]:
    """The (shared, frozen) reference to a clinician's Schedule (a bounded cache).

    >>> schedule_ref("prac-dr.patel")
    {'reference': 'Schedule/sched-dr.patel'}
    """
    hit = _SCHEDULE_REFS.get(provider)
    if hit is None:
        hit = shared_ref(f"Schedule/{schedule_id(provider)}")
        if len(_SCHEDULE_REFS) < 1000:
            _SCHEDULE_REFS[provider] = hit
    return hit


def schedule_id(provider: str) -> str:
    """The Schedule id of a clinician (``Practitioner/<id>``'s id).

    >>> schedule_id("prac-dr.patel")
    'sched-dr.patel'
    """
    return practice_id("sched", provider.removeprefix("prac-"))


def slot_refs(slots: list[dict[str, Any]]) -> list[dict[str, str]]:
    """References to Slots.

    >>> slot_refs([{"id": "s"}])
    [{'reference': 'Slot/s'}]
    """
    refs = []
    for s in slots:  # (a loop: most appointments fill one or two slots)
        refs.append({"reference": "Slot/" + s["id"]})
    return refs
