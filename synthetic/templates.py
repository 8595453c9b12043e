"""Provider schedule templates in generated data: each clinician's day laid out as Slots.

The templates are content (``synthetic/content/data/templates.toml``, the same table the EHR's
scheduling workflow builds days from): stream, wave, modified wave and cluster, with blocked
time (lunch, the Wednesday staff meeting) and open-access (same-day) slots. A clinician works
to the template of their specialty (``[assign]``). A template's pattern repeats over the
practice's open hours of the weekday, anchored at the template's ``start``; a slot that would
overlap blocked time or the practice's lunch is not offered at all.

A day's layout is a tuple of :class:`SlotTime`, one per start time, each with its number of
seats (a wave slot seats several patients at once, every other slot one). Seats are numbered
in time order, so a clinician's day is one integer bitmask over seats
(:class:`synthetic.schedule.Book`).

>>> hours = (8 * 60, 17 * 60, (12 * 60, 13 * 60))
>>> t = Templates([hours] * 5 + [None, None])
>>> [(s.start, s.seats) for s in t.layout("wave-hourly", 0)][:2]
[(480, 3), (540, 3)]
>>> [s.start for s in t.layout("stream-20", 2)][:2]  # Wednesday: staff meeting until 08:40
[520, 540]
>>> {s.category for s in t.layout("cluster-well-child", 0)} == {"", "open-access", "cluster"}
True
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from synthetic.dates import CLOCK, iso_date
from synthetic.errors import ContentError
from synthetic.labels import meta
from synthetic.systems import SANDBOX_SLOT_CATEGORY, V2_0276

SLOT_CATEGORY = SANDBOX_SLOT_CATEGORY
"""Slot.serviceCategory system for open-access and cluster slots (as the EHR workflow writes)."""
APPT_TYPE = V2_0276
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Candidate = tuple[int, int, int, int, int]
"""(seat bitmask, start minute, first SlotTime index, SlotTimes covered, seat)."""


@cache
def table() -> dict[str, Any]:
    """The templates table (``synthetic/content/data/templates.toml``; read once).

    Returns
    -------
    dict
        The parsed table.

    Raises
    ------
    ContentError
        When the file is malformed or names an unknown template in ``[assign]``.

    Examples
    --------
    >>> table()["assign"]["default"]
    'stream-20'
    """
    text = (resources.files("synthetic.content") / "data" / "templates.toml").read_text("utf-8")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ContentError(f"templates.toml: {exc}") from exc
    known = {t["id"] for t in data["template"]}
    assign = data["assign"]
    for name in [assign["default"], *(a["template"] for a in assign["by_specialty"])]:
        if name not in known:
            raise ContentError(f"templates.toml: assign: unknown template {name!r}")
    return data


def template_for(specialty: str | None) -> str:
    """The template id a clinician of ``specialty`` works to (``[assign]``).

    Parameters
    ----------
    specialty : str or None
        The clinician's specialty text (staff.toml), None for a covering physician.

    Returns
    -------
    str
        A template id.

    Examples
    --------
    >>> template_for("Pediatrics"), template_for(None)
    ('cluster-well-child', 'stream-20')
    """
    assign = table()["assign"]
    for a in assign["by_specialty"]:
        if a["specialty"] == specialty:
            return str(a["template"])
    return str(assign["default"])


def _hhmm(text: str) -> int:
    h, m = text.split(":")
    return int(h) * 60 + int(m)


@dataclass(frozen=True, slots=True)
class SlotTime:
    """One start time of a template day: its span, seats, first seat's bit, and category
    (``""`` regular, ``"open-access"`` held for same-day visits, ``"cluster"`` reserved for
    ``appointment_type``), with the label the EHR shows.

    >>> SlotTime(480, 500, 1, 0).category
    ''
    """

    start: int
    end: int
    seats: int
    bit: int
    category: str = ""
    appointment_type: str = ""
    label: str = ""


class Templates:
    """Template day layouts and booking candidates for a practice's opening hours.

    Parameters
    ----------
    hours : list
        Per weekday (0 = Monday): ``(open, close, lunch)`` minutes with ``lunch`` a
        ``(start, end)`` pair or None, or None when closed.

    Examples
    --------
    >>> t = Templates([(480, 1020, (720, 780))] * 5 + [None, None])
    >>> t.layout("modified-wave", 0)[0]
    SlotTime(start=480, end=510, seats=2, bit=0, category='', appointment_type='', label='')
    """

    __slots__ = ("hours", "_layouts", "_cands")

    def __init__(self, hours: list[tuple[int, int, tuple[int, int] | None] | None]) -> None:
        self.hours = hours
        self._layouts: dict[tuple[str, int], tuple[SlotTime, ...]] = {}
        self._cands: dict[tuple[str, int, int, str, bool], tuple[list[Candidate], ...]] = {}

    def layout(self, template_id: str, wd: int) -> tuple[SlotTime, ...]:
        """The slot times of ``template_id`` on weekday ``wd`` (empty when closed).

        >>> t = Templates([(480, 1020, (720, 780))] * 5 + [None, None])
        >>> any(s.start < 780 and s.end > 720 for s in t.layout("wave-hourly", 0))  # lunch
        False
        """
        key = (template_id, wd)
        hit = self._layouts.get(key)
        if hit is None:
            hit = self._layouts[key] = self._build(template_id, wd)
        return hit

    def _build(self, template_id: str, wd: int) -> tuple[SlotTime, ...]:
        hours = self.hours[wd]
        if hours is None:
            return ()
        data = table()
        tpl = next(t for t in data["template"] if t["id"] == template_id)
        open_, close, lunch = hours
        blocked = [
            (_hhmm(b["start"]), _hhmm(b["end"]))
            for b in data["block"]
            if b.get("weekday") in (None, _DAYS[wd])
        ]
        if lunch is not None:
            blocked.append(lunch)
        step = int(tpl["slot_minutes"])
        if "pattern" in tpl:
            pattern = [(int(o), int(c)) for o, c in tpl["pattern"]]
            length = int(tpl["appointment_minutes"])
        else:
            pattern, length = [(0, int(tpl.get("per_slot", 1)))], step
        oa = data["open_access"]
        open_times = {_hhmm(x) for x in oa["times"]}
        clusters = [
            (_hhmm(c["start"]), _hhmm(c["end"]), c["appointment_type"], c["label"])
            for c in tpl.get("clusters", [])
        ]
        t = _hhmm(tpl["start"])
        while t - step >= open_:
            t -= step
        out: list[SlotTime] = []
        bit = 0
        while t < close:
            for offset, seats in pattern:
                s, e = t + offset, t + offset + length
                if s < open_ or e > close or any(s < be and e > bs for bs, be in blocked):
                    continue
                cat = atype = label = ""
                if s in open_times:
                    cat, label = "open-access", oa["label"]
                else:
                    for cs, ce, ct, cl in clusters:
                        if cs <= s < ce:
                            cat, atype, label = "cluster", ct, cl
                out.append(SlotTime(s, e, seats, bit, cat, atype, label))
                bit += seats
            t += step
        return tuple(out)

    def candidates(
        self, template_id: str, wd: int, minutes: int, tcode: str, same_day: bool
    ) -> tuple[list[Candidate], ...]:
        """Where a visit can go, in the order to try: (slots reserved for it, other slots).

        A visit covers consecutive slot times (same seat) until its length is reached. An
        open-access slot takes only a same-day visit, a cluster slot only its appointment type;
        starts in such reserved slots come first for the visits they are held for.

        >>> t = Templates([(480, 1020, (720, 780))] * 5 + [None, None])
        >>> held, other = t.candidates("stream-20", 0, 15, "WALKIN", True)
        >>> [c[1] for c in held], len(other) > 10
        ([640, 940], True)
        >>> held, other = t.candidates("stream-20", 0, 30, "FOLLOWUP", False)
        >>> held, other[0]
        ([], (3, 480, 0, 2, 0))
        """
        key = (template_id, wd, minutes, tcode, same_day)
        hit = self._cands.get(key)
        if hit is not None:
            return hit
        times = self.layout(template_id, wd)
        held: list[Candidate] = []
        other: list[Candidate] = []
        for i, first in enumerate(times):
            for seat in range(first.seats):
                bits = 0
                j = i
                ok = True
                while True:
                    st = times[j]
                    if (
                        st.seats <= seat
                        or (st.category == "open-access" and not same_day)
                        or (st.category == "cluster" and st.appointment_type != tcode)
                    ):
                        ok = False
                        break
                    bits |= 1 << (st.bit + seat)
                    if st.end - first.start >= minutes:
                        break
                    j += 1
                    if j == len(times) or times[j].start != st.end:
                        ok = False
                        break
                if ok:
                    (held if first.category else other).append(
                        (bits, first.start, i, j - i + 1, seat)
                    )
        hit = self._cands[key] = (held, other)
        return hit


_HHMM = tuple(f"{m // 60:02d}{m % 60:02d}" for m in range(24 * 60))
_SLOT_META = meta("Slot")  # shared by every Slot (frozen, see synthetic.labels.meta)


def slot_id(provider: str, day: int, minute: int, seat: int = 0) -> str:
    """The id of a clinician's slot at ``minute`` of ``day`` (seat 2 on of a wave: a suffix).

    >>> slot_id("prac-dr.patel", 739622, 545), slot_id("prac-dr.patel", 739622, 540, 1)
    ('slot-dr.patel-2026-01-06-0905', 'slot-dr.patel-2026-01-06-0900-2')
    """
    base = f"slot-{provider.removeprefix('prac-')}-{iso_date(day)}-{_HHMM[minute]}"
    return f"{base}-{seat + 1}" if seat else base


def slot(
    provider: str,
    schedule: dict[str, str],
    day: int,
    st: SlotTime,
    seat: int,
    status: str,
    offset: str,
) -> dict[str, Any]:
    """A Slot of ``st`` (seat ``seat``) in a clinician's Schedule, with its category.

    Open-access and cluster slots carry ``serviceCategory`` and ``comment`` as the EHR's
    scheduling workflow writes them; a cluster slot also its ``appointmentType``.

    >>> st = SlotTime(640, 660, 1, 7, "open-access", "", "Open access (same-day)")
    >>> s = slot("prac-dr.x", {"reference": "Schedule/sched-dr.x"}, 739622, st, 0, "free", "-05:00")
    >>> s["id"], s["serviceCategory"][0]["coding"][0]["code"], s["end"]
    ('slot-dr.x-2026-01-06-1040', 'open-access', '2026-01-06T11:00:00-05:00')
    """
    return day_slots(provider, schedule, day, (st,), seat, status, offset)[0]


def day_slots(
    provider: str,
    schedule: dict[str, str],
    day: int,
    times: Iterable[SlotTime],
    seat: int,
    status: str,
    offset: str,
) -> list[dict[str, Any]]:
    """The Slots (:func:`slot`) of several slot times of one clinician's day, in order.

    >>> lay = [SlotTime(480, 500, 1, 0), SlotTime(500, 520, 1, 1)]
    >>> [s["start"] for s in day_slots("prac-dr.x", {}, 739622, lay, 0, "busy", "-05:00")]
    ['2026-01-06T08:00:00-05:00', '2026-01-06T08:20:00-05:00']
    """
    date = iso_date(day)
    stem = f"slot-{provider.removeprefix('prac-')}-{date}-"
    suffix = f"-{seat + 1}" if seat else ""
    slot_meta = _SLOT_META
    out: list[dict[str, Any]] = []
    for st in times:
        s: dict[str, Any] = {
            "resourceType": "Slot",
            "id": stem + _HHMM[st.start] + suffix,
            "meta": slot_meta,
            "schedule": schedule,
            "status": status,
            "start": date + CLOCK[st.start] + offset,
            "end": date + CLOCK[st.end] + offset,
        }
        if st.category:
            s["serviceCategory"] = [
                {"coding": [{"system": SLOT_CATEGORY, "code": st.category, "display": st.label}]}
            ]
            if st.appointment_type:
                s["appointmentType"] = {
                    "coding": [{"system": APPT_TYPE, "code": st.appointment_type}],
                    "text": st.appointment_type,
                }
            s["comment"] = st.label
        out.append(s)
    return out
