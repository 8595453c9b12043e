"""Front-office realism of generated data: schedules, slots and no-shows (issues 14 and 15).

Checked on the shared 1,000-patient sample (realism_sample). Every expectation comes from the
content (practice hours, holidays, no-show rate and propensity) or from the records themselves.
"""

from __future__ import annotations

import math
import random
from collections import Counter, defaultdict
from datetime import date
from typing import Any

import pytest
from realism_sample import N_DEFAULT, REF_ISO, SEED, YEARS, default_sample

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


def test_no_clinician_has_two_appointments_at_once() -> None:
    by_provider: dict[tuple[str, str], list[tuple[int, int]]] = defaultdict(list)
    held = 0
    for _, a in _appointments():
        if a["status"] not in HELD:
            continue
        held += 1
        key = (_practitioner(a), a["start"][:10])
        by_provider[key].append((_minute(a["start"]), _minute(a["end"])))
    overlaps = 0
    same_start = 0
    for spans in by_provider.values():
        spans.sort()
        starts = Counter(s for s, _ in spans)
        same_start += sum(c - 1 for c in starts.values() if c > 1)
        for (_, e0), (s1, _) in zip(spans, spans[1:], strict=False):
            overlaps += s1 < e0
    assert held > 5 * N_DEFAULT
    assert same_start == 0
    assert overlaps == 0


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
            if x["resourceType"] == "Appointment" and x["status"] == "cancelled":
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
    capacity = len(fit) * len(book.grid.starts(monday, 20))
    placed = [book.place(Request(monday, 20, fit[0], fit, 0.5)) for _ in range(capacity + 5)]
    assert len({(p.provider, p.minute) for p in placed}) == len(placed)
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
        [a["start"] for a in eng.patient(i).by_type("Appointment")]
        != [a["start"] for a in eng.patient(i, Book(eng.practice)).by_type("Appointment")]
        for i in range(40, 120)
    )
    assert moved > 0
