"""Front-office realism of generated data: schedules, slots and no-shows (issues 14 and 15).

Checked on the shared 1,000-patient sample (realism_sample). Every expectation comes from the
content (practice hours, holidays, no-show rate and propensity) or from the records themselves.
"""

from __future__ import annotations

import math
import random
import tomllib
from collections import Counter, defaultdict
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from realism_sample import (
    N_DEFAULT,
    REF_ISO,
    SEED,
    YEARS,
    default_sample,
    practice,
    preset_sample,
    specialty_presets,
)

import synthetic
from synthetic.clinical_rules import compile_rules
from synthetic.content import load_content
from synthetic.fhir import validate

pytestmark = [pytest.mark.realism, pytest.mark.slow]

HELD = ("booked", "fulfilled", "noshow", "arrived", "checked-in")


def _minute(text: str) -> int:
    return int(text[11:13]) * 60 + int(text[14:16])


def _hhmm(text: str) -> int:
    return int(text[:2]) * 60 + int(text[3:5])


def _practitioner(appt: dict[str, Any]) -> str:
    return next(
        p["actor"]["reference"]
        for p in appt["participant"]
        if p["actor"]["reference"].startswith("Practitioner/")
    )


def _appointments() -> list[tuple[Any, dict[str, Any]]]:
    return [(rec, a) for rec in default_sample() for a in rec.by_type("Appointment")]


def _templates() -> dict[str, Any]:
    root = Path(synthetic.__file__).resolve().parent
    return tomllib.loads((root / "content" / "data" / "templates.toml").read_text("utf-8"))


class _Day:
    """A clinician's template day, read here from the content (not from the generator):
    ``times`` maps each slot start to (end, seats, category, appointment type), ``blocked``
    the blocked spans (lunch, meetings) of that weekday."""

    def __init__(self, tpl: dict[str, Any], table: dict[str, Any], weekday: int, hours: Any):
        name = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")[weekday]
        self.blocked = [
            (_hhmm(b["start"]), _hhmm(b["end"]))
            for b in table["block"]
            if b.get("weekday") in (None, name)
        ]
        open_, close = _hhmm(hours.open), _hhmm(hours.close)
        if hours.lunch_start:
            self.blocked.append((_hhmm(hours.lunch_start), _hhmm(hours.lunch_end)))
        step = tpl["slot_minutes"]
        pattern = tpl.get("pattern", [[0, tpl.get("per_slot", 1)]])
        length = tpl.get("appointment_minutes", step)
        oa = {_hhmm(t) for t in table["open_access"]["times"]}
        self.times: dict[int, tuple[int, int, str, str]] = {}
        t = _hhmm(tpl["start"]) - step * ((_hhmm(tpl["start"]) - open_) // step)
        while t < close:
            for off, seats in pattern:
                s, e = t + off, t + off + length
                if s < open_ or e > close or any(s < b1 and e > b0 for b0, b1 in self.blocked):
                    continue
                cat, atype = ("open-access", "") if s in oa else ("", "")
                for c in tpl.get("clusters", []):
                    if not cat and _hhmm(c["start"]) <= s < _hhmm(c["end"]):
                        cat, atype = "cluster", c["appointment_type"]
                self.times[s] = (e, seats, cat, atype)
            t += step

    def in_blocked(self, s: int, e: int) -> bool:
        return any(s < b1 and e > b0 for b0, b1 in self.blocked)


def _template_days(population: str = "family-practice") -> Any:
    """(practitioner ref, date) -> _Day, from content and the practice's PractitionerRoles."""
    table = _templates()
    by_id = {t["id"]: t for t in table["template"]}
    assign = {a["specialty"]: a["template"] for a in table["assign"]["by_specialty"]}
    specialty: dict[str, str] = {}
    for r in practice(population):
        if r["resourceType"] == "PractitionerRole" and r.get("specialty"):
            specialty[r["practitioner"]["reference"]] = r["specialty"][0]["text"]
    hours = {h.day: h for h in load_content().practice.hours}
    names = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    cache: dict[tuple[str, int], _Day] = {}

    def day_of(prac: str, iso: str) -> _Day:
        tid = assign.get(specialty.get(prac, ""), table["assign"]["default"])
        wd = date.fromisoformat(iso[:10]).weekday()
        key = (tid, wd)
        if key not in cache:
            cache[key] = _Day(by_id[tid], table, wd, hours[names[wd]])
        return cache[key]

    return day_of


def _check_template_use(population: str, records: list[Any]) -> Counter[str]:
    """Every held appointment starts at a slot time of its clinician's template, no slot time
    holds more patients than its seats, nothing lies in blocked time, and an appointment in a
    categorized slot fits it. Returns counts of what was seen (for the tests to assert on)."""
    day_of = _template_days(population)
    by_day: dict[tuple[str, str], list[tuple[int, int]]] = defaultdict(list)
    seen: Counter[str] = Counter()
    bad: list[str] = []
    for rec in records:
        slots = {s["id"]: s for s in rec.by_type("Slot")}
        for x in rec.by_type("Slot"):
            d = day_of(_schedule_owner(x), x["start"])
            s, e = _minute(x["start"]), _minute(x["end"])
            if s not in d.times or d.times[s][0] != e or d.in_blocked(s, e):
                bad.append(f"{x['id']}: not a slot of the template")
            elif _category(x) != d.times[s][2]:
                bad.append(f"{x['id']}: category {_category(x)} != {d.times[s][2]}")
        for a in rec.by_type("Appointment"):
            if a["status"] not in HELD:
                continue
            prac = _practitioner(a)
            d = day_of(prac, a["start"])
            s, e = _minute(a["start"]), _minute(a["end"])
            by_day[(prac, a["start"][:10])].append((s, e))
            if d.in_blocked(s, e):
                bad.append(f"{a['id']}: in blocked time")
            if s not in d.times:
                bad.append(f"{a['id']}: starts off the template at {a['start']}")
                continue
            code = a["appointmentType"]["coding"][0]["code"]
            seen[_category(slots[a["slot"][0]["reference"][5:]]) or "regular"] += 1
            for ref in a["slot"]:
                held = slots[ref["reference"][5:]]
                cat = _category(held)
                if cat == "cluster" and code != held["appointmentType"]["coding"][0]["code"]:
                    bad.append(f"{a['id']}: {code} in a cluster for another type")
                if cat == "open-access" and (
                    code != "WALKIN" or a.get("created", "")[:10] != a["start"][:10]
                ):
                    bad.append(f"{a['id']}: open-access slot not booked the same day ({code})")
    for (prac, iso), spans in by_day.items():
        d = day_of(prac, iso)
        starts = Counter(s for s, _ in spans)
        for t, (end, seats, _, _) in d.times.items():
            n = sum(1 for s, e in spans if s < end and e > t)
            if n > seats:
                bad.append(f"{prac} {iso} {t}: {n} patients in {seats} seat(s)")
        seen["double"] += sum(c - 1 for c in starts.values() if c > 1)
        seen["held"] += len(spans)
    assert bad == [], bad[:10]
    return seen


def _schedule_owner(slot: dict[str, Any]) -> str:
    return "Practitioner/prac-" + slot["schedule"]["reference"].removeprefix("Schedule/sched-")


def _category(slot: dict[str, Any]) -> str:
    for c in slot.get("serviceCategory", []):
        for cc in c["coding"]:
            if cc["system"].endswith("slot-category"):
                return str(cc["code"])
    return ""


def test_clinicians_are_booked_only_as_their_templates_allow() -> None:
    seen = _check_template_use("family-practice", default_sample())
    assert seen["held"] > 5 * N_DEFAULT
    # the family practice works to stream, modified wave and cluster templates: each kind of
    # slot is used, and the modified wave's double seat at the hour is used
    assert seen["open-access"] > 50 and seen["cluster"] > 50, seen
    assert seen["double"] > 50, seen


def test_a_wave_template_double_books_up_to_its_seats_and_others_never() -> None:
    table = _templates()
    waves = {t["id"] for t in table["template"] if t.get("per_slot", 1) > 1}
    pop = next(
        p
        for p in specialty_presets()
        if any(
            a["template"] in waves
            and any(
                m.specialty == a["specialty"] for m in load_content().specialists if p in m.presets
            )
            for a in table["assign"]["by_specialty"]
        )
    )
    seen = _check_template_use(pop, preset_sample(pop))
    assert seen["double"] > 100, seen  # a wave seats several patients at the top of the hour
    stream = _check_template_use("ob-gyn", preset_sample("ob-gyn"))
    assert stream["held"] > 1000 and stream["double"] == 0, stream


def test_free_slots_follow_the_templates_and_keep_same_day_slots_open() -> None:
    day_of = _template_days()
    bad = []
    free = [r for r in practice() if r["resourceType"] == "Slot"]
    for x in free:
        d = day_of(_schedule_owner(x), x["start"])
        s, e = _minute(x["start"]), _minute(x["end"])
        if s not in d.times or d.times[s][0] != e or _category(x) != d.times[s][2]:
            bad.append(x["id"])
    assert len(free) > 100 and bad == []
    # appointments booked ahead of the reference date never take a same-day slot
    ahead = [
        a for rec in default_sample() for a in rec.by_type("Appointment") if a["status"] == "booked"
    ]
    slots = {s["id"]: s for rec in default_sample() for s in rec.by_type("Slot")}
    assert len(ahead) > 100
    assert not any(_category(slots[a["slot"][0]["reference"][5:]]) == "open-access" for a in ahead)
    assert sum(_category(x) == "open-access" for x in free) > 10


def test_every_held_appointment_fills_busy_slots_of_its_clinician() -> None:
    practice = synthetic.practice_resources(
        seed=SEED, reference_date=REF_ISO, patients=N_DEFAULT, years=YEARS
    )
    schedules = {
        f"Schedule/{r['id']}": r["actor"][0]["reference"]
        for r in practice
        if r["resourceType"] == "Schedule"
    }
    practitioners = {
        f"Practitioner/{r['id']}" for r in practice if r["resourceType"] == "Practitioner"
    }
    free = {r["id"] for r in practice if r["resourceType"] == "Slot"}
    all_slots: Counter[str] = Counter()
    bad: list[str] = []
    cancelled_with_slot = 0
    for rec in default_sample():
        slots = {s["id"]: s for s in rec.by_type("Slot")}
        all_slots.update(slots.keys())
        used: set[str] = set()
        for a in rec.by_type("Appointment"):
            if a["status"] in ("proposed", "waitlist"):  # a recall, a waitlist request: no slot
                assert "slot" not in a and "start" not in a
                continue
            if a["status"] == "cancelled":
                cancelled_with_slot += "slot" in a
                continue
            prac = _practitioner(a)
            if prac not in practitioners:
                bad.append(f"{a['id']}: unknown clinician {prac}")
            refs = [s["reference"].removeprefix("Slot/") for s in a.get("slot", [])]
            if not refs:
                bad.append(f"{a['id']}: no slot")
                continue
            got = [slots.get(r) for r in refs]
            if any(s is None or s["status"] != "busy" for s in got):
                bad.append(f"{a['id']}: slot missing or not busy")
                continue
            if any(schedules.get(s["schedule"]["reference"]) != prac for s in got):  # type: ignore[index]
                bad.append(f"{a['id']}: slot of another clinician's schedule")
            if got[0]["start"] != a["start"] or got[-1]["end"] < a["end"]:  # type: ignore[index]
                bad.append(f"{a['id']}: slots do not cover the appointment")
            used.update(refs)
        if set(slots) - used:
            bad.append(f"{rec.patient['id']}: slots no appointment fills")
    assert bad == []
    assert cancelled_with_slot == 0  # a cancelled appointment gave its slot back
    assert max(all_slots.values()) == 1  # one appointment per slot across all patients
    assert free and not free & set(all_slots)  # the practice offers only slots nobody holds


def test_appointments_and_slots_inside_open_hours_off_holidays() -> None:
    c = load_content()
    r = compile_rules(c)
    hours = {h.day: h for h in c.practice.hours}
    names = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    bad = []
    n = 0
    for rec in default_sample():
        for x in rec.by_type("Appointment") + rec.by_type("Slot"):
            if x["resourceType"] == "Appointment" and x["status"] in (
                "cancelled",
                "proposed",
                "waitlist",
            ):
                continue
            n += 1
            d = date.fromisoformat(x["start"][:10])
            h = hours.get(names[d.weekday()])
            if h is None or r.is_holiday(d.toordinal()):
                bad.append(x["start"])
                continue
            s, e = _minute(x["start"]), _minute(x["end"])
            if (
                s < _hhmm(h.open)
                or e > _hhmm(h.close)
                or h.lunch_start
                and s < _hhmm(h.lunch_end)
                and e > _hhmm(h.lunch_start)
            ):
                bad.append(x["start"])
    assert n > 10 * N_DEFAULT
    assert bad == []


def _expected_no_show(rate: float, shape: float, cap: float) -> float:
    """E[min(cap, rate * G)], G ~ Gamma(shape, 1/shape), by a seeded Monte Carlo."""
    rng = random.Random(0)
    draws = [min(cap, rate * rng.gammavariate(shape, 1 / shape)) for _ in range(200_000)]
    return sum(draws) / len(draws)


def test_no_show_rate_follows_the_content_and_clusters_in_patients() -> None:
    c = load_content()
    r = compile_rules(c)
    sched = r.scheduling
    walk_in = {t.code for t in c.practice.appointment_types if t.code == "WALKIN"}
    expected = _expected_no_show(
        c.practice.no_show_rate, sched.propensity_shape, sched.max_probability
    )
    no_shows = planned = 0
    per_patient: list[tuple[int, int]] = []
    for rec in default_sample():
        done = sorted(
            (a for a in rec.by_type("Appointment") if a["status"] == "fulfilled"),
            key=lambda a: a["start"],
        )
        # planned visits: not the first, not a same-day sick visit
        eligible = [a for a in done[1:] if a["appointmentType"]["coding"][0]["code"] not in walk_in]
        missed = sum(a["status"] == "noshow" for a in rec.by_type("Appointment"))
        planned += len(eligible)
        no_shows += missed
        if eligible:
            per_patient.append((missed, len(eligible)))
    observed = no_shows / planned
    se = math.sqrt(expected * (1 - expected) / planned)
    # a missed visit is only recorded when it fits between two visits, so at most expected
    assert observed <= expected + 3 * se
    assert observed >= 0.6 * expected, (observed, expected)
    # history matters: no-shows spread wider over patients than with one rate for all
    mean = observed
    var_binomial = sum(k * mean * (1 - mean) for _, k in per_patient)
    var_seen = sum((m - k * mean) ** 2 for m, k in per_patient)
    assert var_seen > 1.3 * var_binomial


def test_generated_schedule_resources_are_valid_fhir() -> None:
    errors = []
    checked = 0
    for rec in default_sample()[:150]:
        for x in rec.by_type("Slot") + rec.by_type("Appointment"):
            checked += 1
            errors.extend(validate(x))
    practice = synthetic.practice_resources(seed=SEED, reference_date=REF_ISO, years=YEARS)
    for x in practice:
        if x["resourceType"] in ("Schedule", "Slot", "Practitioner", "PractitionerRole"):
            checked += 1
            errors.extend(validate(x))
    assert checked > 1000
    assert errors == []


def test_a_full_roster_adds_covering_physicians_without_double_booking() -> None:
    from synthetic.engine import engine_for
    from synthetic.schedule import Book, Request

    eng = engine_for(seed=SEED, reference_date=REF_ISO, years=1, population="family-practice")
    book = Book(eng.practice)
    monday = date(2025, 6, 2).toordinal()
    fit = tuple(eng.practice.clinicians_for(40.0))
    # seats a 20-minute visit can take (open-access and cluster slots are held for others)
    capacity = sum(len(book.grid.starts(p, monday, 20)[1]) for p in fit)
    placed = [book.place(Request(monday, 20, fit[0], fit, 0.5)) for _ in range(capacity + 5)]
    assert len({(p.provider, p.minute, p.seat) for p in placed}) == len(placed)
    assert {p.provider for p in placed[:capacity]} == set(fit)
    assert book.locums == 1
    res = eng.practice_resources(book)
    ids = {f"{r['resourceType']}/{r['id']}" for r in res}
    assert {
        f"Practitioner/{placed[-1].provider}",
        f"Schedule/sched-{placed[-1].provider[5:]}",
    } <= ids


def test_workers_share_the_schedule_byte_for_byte(tmp_path: Any) -> None:
    from synthetic.engine import engine_for
    from synthetic.schedule import Book

    args = {"seed": 4, "years": 1, "reference_date": REF_ISO}
    synthetic.write_dataset(tmp_path / "w1", 120, workers=1, **args)
    synthetic.write_dataset(tmp_path / "w2", 120, workers=2, partition_size=40, **args)
    one = sorted(p.name for p in (tmp_path / "w1").iterdir())
    assert one == sorted(p.name for p in (tmp_path / "w2").iterdir())
    for name in one:
        assert (tmp_path / "w1" / name).read_bytes() == (tmp_path / "w2" / name).read_bytes()
    # the check means something: later partitions' patients are placed around earlier ones
    eng = engine_for(population="family-practice", **args)
    moved = sum(
        [a.get("start") for a in eng.patient(i).by_type("Appointment")]
        != [a.get("start") for a in eng.patient(i, Book(eng.practice)).by_type("Appointment")]
        for i in range(40, 120)
    )
    assert moved > 0
