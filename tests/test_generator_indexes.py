"""The generator's look-up shortcuts answer exactly what the plain definitions answer.

Each shortcut (sorted days for the nearest visit, vaccine windows cut by age, candidate
placements built once, the self-filling date and reference tables, the written-out
VisitState) replaces a scan or a call; these properties compare it with the definition.
"""

from __future__ import annotations

import dataclasses
import random
from datetime import date

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from synthetic.builders.common import SharedRefs, qty, shared_ref
from synthetic.dates import instant, iso_date
from synthetic.engine import engine_for
from synthetic.frozen import FrozenDict
from synthetic.templates import SlotTime, day_slots, slot_id
from synthetic.timeline import Timeline, Visit
from synthetic.vaccination import WindowIndex, is_due
from synthetic.visit.state import VisitState

SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))


def _engine():  # type: ignore[no-untyped-def]
    return engine_for(seed=1, reference_date="2026-01-01", years=10, population="family-practice")


class _Days:
    """A model of the timeline's days in the order they were added (what the scan walked)."""

    def __init__(self, start: int, end: int) -> None:
        self.start, self.end, self.days = start, end, {}

    def add(self, day: int) -> None:
        if self.start <= day < self.end and day not in self.days:
            self.days[day] = True

    def move(self, first: int, last: int, to: int) -> None:
        for d in [d for d in self.days if first <= d <= last]:
            del self.days[d]
            self.add(to)

    def thin(self, rng: random.Random, keep: float) -> None:  # acute visits, no telehealth
        if keep >= 1.0:
            return
        for d in sorted(self.days):
            if rng.random() >= keep:
                del self.days[d]
            else:
                rng.random()  # the telehealth draw of an acute visit

    def nearest(self, day: int, days: int) -> int | None:
        best = None
        for d in self.days:
            if abs(d - day) <= days and (best is None or abs(d - day) < abs(best - day)):
                best = d
        return best


OPS = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.integers(-5, 205)),
        st.tuples(st.just("move"), st.integers(0, 200), st.integers(0, 6), st.integers(-5, 205)),
        st.tuples(st.just("thin"), st.integers(0, 2**32), st.floats(0.0, 1.0)),
    ),
    max_size=40,
)


@SETTINGS
@given(ops=OPS, asks=st.lists(st.tuples(st.integers(-10, 215), st.integers(0, 40)), max_size=20))
def test_nearest_is_the_closest_visit_first_added_among_ties(ops, asks) -> None:  # type: ignore[no-untyped-def]
    t, model = Timeline(0, 200), _Days(0, 200)
    for op in ops:
        if op[0] == "add":
            t.add(op[1], "acute")
            model.add(op[1])
        elif op[0] == "move":
            t.move(op[1], op[1] + op[2], op[3])
            model.move(op[1], op[1] + op[2], op[3])
        else:
            keep = op[2]
            t.thin(random.Random(op[1]), lambda _d, keep=keep: (keep, 0.0))
            model.thin(random.Random(op[1]), keep)
    assert [v.day for v in t.visits()] == sorted(model.days)
    for day, days in asks:
        assert t.nearest(day, days) == model.nearest(day, days)


@SETTINGS
@given(age=st.integers(-10, 45_000), sex=st.sampled_from(["female", "male"]))
def test_window_index_lists_the_vaccines_whose_window_holds_the_age(age: int, sex: str) -> None:
    windows = _engine().vaccine_windows
    expected = [v for v, lo, hi in windows if lo <= age <= hi and v.sex in ("any", sex)]
    assert list(WindowIndex(windows).at(age, sex)) == expected


@SETTINGS
@given(
    seed=st.integers(0, 2**32),
    day=st.integers(738000, 740000),
    age=st.integers(0, 40_000),
    wellness=st.booleans(),
    last=st.one_of(st.none(), st.integers(730000, 740000)),
)
def test_a_completed_series_that_does_not_recur_is_never_due(
    seed, day, age, wellness, last
) -> None:  # type: ignore[no-untyped-def]
    # Immunizing skips these vaccines (and the dose age limit look-up) before calling is_due
    eng = _engine()
    for vac in eng.cat.vaccines:
        if not vac.repeat_days:
            n = len(vac.doses)
            rng = random.Random(seed)
            assert not is_due(rng, vac, n, last, day=day, age_days=age, wellness=wellness)
            assert rng.random() == random.Random(seed).random()  # and draws nothing
    limited = {key for key, _dose in eng.rules.limits}
    for vac in eng.cat.vaccines:
        if vac.key not in limited:
            assert eng.rules.max_age(vac.key, 1 + age % 7) >= 10**6


def test_placements_are_the_template_starts_with_their_first_slot_category() -> None:
    eng = _engine()
    grid = eng.grid
    for provider in eng.practice.physicians:
        for day in range(739617, 739624):
            for minutes, tcode, same_day in ((15, "WALKIN", True), (30, "CHECKUP", False)):
                starts = grid.starts(provider, day, minutes, tcode, same_day)
                placed = grid.placements(provider, day, minutes, tcode, same_day)
                layout = eng.practice.layout(provider, day)
                assert [[b for b, _ in p] for p in placed] == [[c[0] for c in s] for s in starts]
                for s, p in zip(starts, placed, strict=True):
                    for (_bits, minute, first, count, seat), (_b, pl) in zip(s, p, strict=True):
                        assert (pl.provider, pl.minute, pl.first, pl.count, pl.seat) == (
                            provider,
                            minute,
                            first,
                            count,
                            seat,
                        )
                        assert pl.category == layout[first].category


@SETTINGS
@given(
    day=st.integers(700000, 760000),
    starts=st.lists(st.integers(0, 1400), min_size=1, max_size=4),
    seat=st.integers(0, 3),
    category=st.sampled_from(["", "open-access", "cluster"]),
)
def test_day_slots_have_the_id_and_instants_of_each_slot_time(day, starts, seat, category) -> None:  # type: ignore[no-untyped-def]
    times = [SlotTime(m, m + 20, 1, 0, category, "WALKIN" if category else "", "x") for m in starts]
    out = day_slots("prac-dr.x", {"reference": "Schedule/s"}, day, times, seat, "busy", "-05:00")
    assert [s["id"] for s in out] == [slot_id("prac-dr.x", day, m, seat) for m in starts]
    assert [s["start"] for s in out] == [instant(day, m, "-05:00") for m in starts]
    assert [s["end"] for s in out] == [instant(day, m + 20, "-05:00") for m in starts]
    assert all(("serviceCategory" in s) == bool(category) for s in out)


@SETTINGS
@given(ordinal=st.integers(1, date.max.toordinal()))
def test_iso_date_is_the_calendar_date(ordinal: int) -> None:
    assert iso_date(ordinal) == date.fromordinal(ordinal).isoformat()
    assert iso_date(ordinal) == date.fromordinal(ordinal).isoformat()  # from the table


def test_shared_refs_are_shared_and_frozen_until_the_bound_then_plain() -> None:
    assert shared_ref("Practitioner/a") is shared_ref("Practitioner/a")
    assert type(shared_ref("Practitioner/a")) is FrozenDict
    refs = SharedRefs()
    for i in range(10_000):
        assert refs[f"Location/{i}"] == {"reference": f"Location/{i}"}
    extra = refs["Location/extra"]
    assert extra == {"reference": "Location/extra"} and type(extra) is dict
    assert refs["Location/extra"] is not extra and len(refs) == 10_000


def test_visit_state_starts_every_field_at_its_declared_default() -> None:
    a = VisitState(Visit(1, "acute"), 1, 30.0)
    b = VisitState(Visit(2, "wellness"), 2, 3.0)
    for f in dataclasses.fields(VisitState):
        if f.name in ("v", "day", "age"):
            continue
        if f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
            assert getattr(a, f.name) is not getattr(b, f.name)  # a fresh container each
        else:
            default = f.default
        assert getattr(a, f.name) == default and type(getattr(a, f.name)) is type(default)
    assert (a.v.day, a.day, a.age) == (1, 1, 30.0)


def test_nearest_ties_go_to_the_visit_added_first() -> None:
    later_first = Timeline(0, 100)
    later_first.add(50, "acute") and later_first.add(40, "acute")
    earlier_first = Timeline(0, 100)
    earlier_first.add(40, "acute") and earlier_first.add(50, "acute")
    assert (later_first.nearest(45, 10), earlier_first.nearest(45, 10)) == (50, 40)


def test_a_zero_quantity_keeps_its_sign_whatever_was_asked_before() -> None:
    for first, then in ((0.0, -0.0), (-0.0, 0.0)):
        qty(first, "mm")
        assert orjson.dumps(qty(then, "mm")["value"]) == orjson.dumps(then)
