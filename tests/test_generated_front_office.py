"""Generated front-office data works through the EHR's workflows: a generated free slot books
through ``workflows.scheduling`` with the same rules as a day the front desk built (cluster and
open-access slots refused to the wrong visit, a modified wave's two seats), generated waitlist
entries and recalls are worked, and a generated secondary plan shows at check-in.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from ehr_sandbox.sandbox import Sandbox
from ehr_sandbox.workflows import scheduling
from ehr_sandbox.workflows.base import RuleRefused, now, today
from ehr_sandbox.workflows.content import table
from synthetic.engine import engine_for
from synthetic.schedule import Book, Request

REF = "2026-01-06"  # a Tuesday the practice is open


def _category(slot: dict[str, Any]) -> str:
    for c in slot.get("serviceCategory", []):
        for cc in c["coding"]:
            if cc["system"] == scheduling.SLOT_CATEGORY:
                return str(cc["code"])
    return ""


@pytest.fixture(scope="module")
def front_desk() -> Any:
    return Sandbox.generate(patients=100, seed=5, years=1, reference_date=REF).login("fd.smith")


def _free(fd: Any, practitioner: str) -> list[dict[str, Any]]:
    sched = f"Schedule/sched-{practitioner.removeprefix('prac-')}"
    return [s for s in scheduling.free_slots(fd, sched) if s["start"] > now(fd).isoformat()]


def _patients(fd: Any, n: int) -> list[str]:
    return [f"Patient/{p['id']}" for p in fd.search("Patient").limit(n).fetch()]


def test_the_workflows_read_the_one_templates_table() -> None:
    from synthetic.templates import table as generator_table

    assert table("templates") == generator_table()


def test_a_generated_free_slot_books_through_the_workflow(front_desk: Any) -> None:
    fd = front_desk
    slot = next(s for s in _free(fd, "prac-dr.patel") if not _category(s))
    (pat,) = _patients(fd, 1)
    appt = scheduling.book(
        fd, pat, f"Slot/{slot['id']}", appointment_type="ROUTINE", reason="cough"
    )
    assert appt["slot"] == [{"reference": f"Slot/{slot['id']}"}]
    assert fd.read(f"Slot/{slot['id']}")["status"] == "busy"
    with pytest.raises(RuleRefused, match="scheduling.slot-taken"):
        scheduling.book(fd, pat, f"Slot/{slot['id']}", appointment_type="ROUTINE", reason="x")


def test_generated_cluster_and_open_access_slots_keep_their_rules(front_desk: Any) -> None:
    fd = front_desk
    free = _free(fd, "prac-dr.okafor")  # pediatrics: the well-child cluster template
    cluster = next(s for s in free if _category(s) == "cluster")
    later = next(s for s in free if _category(s) == "open-access" and s["start"][:10] > REF)
    same_day = next(s for s in free if _category(s) == "open-access" and s["start"][:10] == REF)
    p1, p2, p3 = _patients(fd, 3)
    with pytest.raises(RuleRefused, match="scheduling.cluster"):
        scheduling.book(fd, p1, f"Slot/{cluster['id']}", appointment_type="ROUTINE", reason="x")
    ok = scheduling.book(
        fd, p1, f"Slot/{cluster['id']}", appointment_type="CHECKUP", reason="well child"
    )
    assert ok["status"] == "booked"
    with pytest.raises(RuleRefused, match="scheduling.open-access"):
        scheduling.book(fd, p2, f"Slot/{later['id']}", appointment_type="WALKIN", reason="fever")
    assert today(fd).isoformat() == REF
    got = scheduling.book(
        fd, p3, f"Slot/{same_day['id']}", appointment_type="WALKIN", reason="fever"
    )
    assert got["start"] == same_day["start"]


def test_a_modified_wave_day_offers_two_seats_at_the_hour(front_desk: Any) -> None:
    fd = front_desk
    free = _free(fd, "prac-dr.nguyen")  # internal medicine: modified wave
    starts = Counter(s["start"] for s in free)
    hour = max(t for t, n in starts.items() if n == 2 and t[14:16] == "00")
    pair = [s for s in free if s["start"] == hour]
    p1, p2 = _patients(fd, 6)[4:]
    for pat, s in zip((p1, p2), pair, strict=True):
        scheduling.book(fd, pat, f"Slot/{s['id']}", appointment_type="FOLLOWUP", reason="BP")
    assert {fd.read(f"Slot/{s['id']}")["status"] for s in pair} == {"busy"}
    assert all(n <= 2 for n in starts.values())
    assert not any(t[14:16] not in ("00", "30") for t in starts)


def test_blocked_time_has_no_slot_and_reserved_slots_go_to_their_visits() -> None:
    eng = engine_for(seed=1, reference_date="2026-01-01", years=1, population="family-practice")
    wednesday = 739623  # 2026-01-07
    for prov in eng.practice.physicians:
        for st in eng.practice.layout(prov, wednesday):
            assert st.start >= 8 * 60 + 40  # the staff meeting
            assert st.end <= 12 * 60 or st.start >= 13 * 60  # lunch
    book = Book(eng.practice)
    fit = ("prac-dr.okafor",)
    walk = book.place(Request(wednesday, 15, fit[0], fit, 0.0, True, "WALKIN", True))
    well = book.place(Request(wednesday, 30, fit[0], fit, 0.0, True, "CHECKUP"))
    sick = [
        book.place(Request(wednesday, 15, fit[0], fit, 0.0, True, "ROUTINE")) for _ in range(40)
    ]
    assert (walk.category, well.category) == ("open-access", "cluster")
    assert {p.category for p in sick} == {""}  # a booked-ahead visit never takes them


def test_generated_waitlist_and_recalls_work_through_the_workflow(front_desk: Any) -> None:
    fd = front_desk
    waiting = fd.search("Appointment", status="waitlist").fetch()
    assert waiting, "the generator puts some patients booked weeks ahead on the waitlist"
    w = waiting[0]
    prac = next(
        p["actor"]["reference"]
        for p in w["participant"]
        if p["actor"]["reference"].startswith("Practitioner/")
    )
    period = w["requestedPeriod"][0]
    opening = next(
        s
        for s in _free(fd, prac.removeprefix("Practitioner/"))
        if not _category(s) and period["start"] <= s["start"][:10] <= period["end"]
    )
    got = scheduling.fill_from_waitlist(fd, f"Appointment/{w['id']}", f"Slot/{opening['id']}")
    assert (got["id"], got["status"]) == (w["id"], "booked")
    recalls = fd.search("Appointment", status="proposed").fetch()
    assert recalls and all(r["requestedPeriod"][0]["start"] for r in recalls)
    done = scheduling.cancel(fd, f"Appointment/{recalls[0]['id']}", reason="patient moved away")
    assert done["status"] == "cancelled"


def test_a_generated_secondary_plan_shows_at_check_in(front_desk: Any) -> None:
    from ehr_sandbox.workflows import eligibility

    fd = front_desk
    second = next(c for c in fd.search("Coverage").fetch() if c.get("order") == 2)
    pat = second["beneficiary"]["reference"]
    plans = eligibility.active_coverages(fd, pat)
    assert [c.get("order") for c in plans] == [1, 2]
    for c in plans:
        eligibility.check_eligibility(fd, f"Coverage/{c['id']}")
    fr = eligibility.financial_responsibility(fd, pat)
    assert (fr["primary"], fr["secondary"]) == ("Medicare Part B", "State Medicaid")


@pytest.mark.parametrize(
    "template", ["stream-20", "wave-hourly", "modified-wave", "cluster-well-child"]
)
def test_a_generated_day_matches_the_day_the_workflow_builds(
    front_desk: Any, template: str
) -> None:
    """Inside the template's hours the generator lays out the same slots (starts, seats,
    categories) as ``build_day``, and offers none where ``build_day`` blocks time."""
    from datetime import date

    from synthetic.templates import Templates

    eng = engine_for(seed=1, reference_date="2026-01-01", years=1, population="family-practice")
    gen = Templates(eng.practice.templates.hours)
    for day in ("2026-01-12", "2026-01-14"):  # a Monday, a Wednesday (staff meeting)
        built = scheduling.build_day(front_desk, "Practitioner/prac-dr.patel", day, template)
        want = Counter((s["start"][11:16], _category(s)) for s in built if s["status"] == "free")
        layout = gen.layout(template, date.fromisoformat(day).weekday())
        got = Counter(
            {
                (f"{t.start // 60:02d}:{t.start % 60:02d}", t.category): t.seats
                for t in layout
                if t.end <= 17 * 60  # the template's own day ends at 17:00
            }
        )
        assert got == want, (day, template)
