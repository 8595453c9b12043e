"""Front-office realism of generated recalls and waitlist entries (issue 15).

Checked on the shared 1,000-patient sample against the content: the conditions' follow-up
intervals (conditions content) and the recall/waitlist policy (``recalls.toml``). Who should be
recalled, and when, is derived here from each record's own Conditions and Appointments.
"""

from __future__ import annotations

import math
import tomllib
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from realism_sample import REF, default_sample

import synthetic
from synthetic.compile import compile_catalog
from synthetic.content import load_content
from synthetic.fhir import validate

pytestmark = [pytest.mark.realism, pytest.mark.slow]

ICD = "http://hl7.org/fhir/sid/icd-10-cm"


def _policy() -> dict[str, Any]:
    root = Path(synthetic.__file__).resolve().parent
    return tomllib.loads((root / "content" / "data" / "recalls.toml").read_text("utf-8"))


def _intervals() -> dict[str, list[int]]:
    """ICD-10-CM code -> follow-up intervals (days) of the chronic conditions with that code."""
    out: dict[str, list[int]] = {}
    for c in compile_catalog(load_content()).conditions.values():
        if c.kind == "chronic" and c.follow_up_days:
            out.setdefault(c.icd10, []).append(c.follow_up_days)
    return out


def _expected_recall(rec: Any, intervals: dict[str, list[int]]) -> tuple[date, str] | None:
    """(due date, clinician) of the recall this record should carry, or None."""
    if rec.patient.get("deceasedDateTime"):
        return None
    apts = rec.by_type("Appointment")
    if any(a["status"] == "booked" for a in apts):
        return None
    done = sorted(a["start"][:10] for a in apts if a["status"] == "fulfilled")
    if not done:
        return None
    last = done[-1]
    best = 0
    for c in rec.by_type("Condition"):
        code = next((x["code"] for x in c["code"].get("coding", []) if x["system"] == ICD), None)
        if code not in intervals or c.get("onsetDateTime", "9999")[:10] > last:
            continue
        if c.get("abatementDateTime") and c["abatementDateTime"][:10] <= last:
            continue
        for days in intervals[code]:
            best = days if not best else min(best, days)
    if not best:
        return None
    due = date.fromisoformat(last) + timedelta(days=best)
    if due < REF - timedelta(days=_policy()["recall"]["overdue_days"]):
        return None
    gp = rec.patient["generalPractitioner"][0]["reference"]
    return due, gp


def test_patients_due_for_follow_up_with_nothing_booked_are_recalled() -> None:
    intervals = _intervals()
    window = _policy()["recall"]["window_days"]
    expected = found = 0
    bad: list[str] = []
    for rec in default_sample():
        recalls = [a for a in rec.by_type("Appointment") if a["status"] == "proposed"]
        want = _expected_recall(rec, intervals)
        expected += want is not None
        found += len(recalls)
        if want is None:
            if recalls:
                bad.append(f"{rec.patient['id']}: recalled without being due")
            continue
        if len(recalls) != 1:
            bad.append(f"{rec.patient['id']}: {len(recalls)} recalls, expected one")
            continue
        r = recalls[0]
        period = r["requestedPeriod"][0]
        start = date.fromisoformat(period["start"])
        if start != want[0] or date.fromisoformat(period["end"]) - start != timedelta(window):
            bad.append(f"{rec.patient['id']}: due {period} != {want[0]}")
        people = {p["actor"]["reference"] for p in r["participant"]}
        if people != {f"Patient/{rec.patient['id']}", want[1]}:
            bad.append(f"{rec.patient['id']}: recall for {people}")
        if (
            r["serviceCategory"][0]["coding"][0]["code"] != "recall"
            or not r["reasonCode"][0]["text"]
        ):
            bad.append(f"{rec.patient['id']}: not in the workflow's recall shape")
        bad.extend(f"{r['id']}: {e}" for e in validate(r))
    assert bad == [], bad[:10]
    # the recall list is a real share of a family practice's chronic patients
    assert 0.05 * len(default_sample()) < expected == found < 0.5 * len(default_sample())


def test_waitlist_entries_ask_for_an_earlier_slot_at_the_content_share() -> None:
    wl = _policy()["waitlist"]
    eligible = entries = 0
    bad: list[str] = []
    for rec in default_sample():
        apts = rec.by_type("Appointment")
        far = [
            a
            for a in apts
            if a["status"] == "booked"
            and date.fromisoformat(a["start"][:10]) >= REF + timedelta(days=wl["min_days_ahead"])
        ]
        eligible += len(far)
        for w in (a for a in apts if a["status"] == "waitlist"):
            entries += 1
            period = w["requestedPeriod"][0]
            later = [a for a in far if a["start"][:10] > period["end"]]
            if period["start"] != REF.isoformat() or not later:
                bad.append(f"{w['id']}: no later booked visit to move up ({period})")
            bad.extend(f"{w['id']}: {e}" for e in validate(w))
    assert bad == [], bad[:10]
    p = wl["share"]
    assert eligible > 200
    assert abs(entries / eligible - p) <= 4 * math.sqrt(p * (1 - p) / eligible), (entries, eligible)
