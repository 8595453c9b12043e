"""Break-the-glass through the Session: who may, what it lifts, how it is audited and reviewed."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from ehr_sandbox.errors import AccessDenied, NotFound, ValidationError
from ehr_sandbox.sandbox import Sandbox
from ehr_sandbox.session import Session


@pytest.fixture(scope="module")
def base() -> Sandbox:
    return Sandbox.generate(patients=30, seed=31, years=2)


@pytest.fixture()
def sb(base: Sandbox) -> Sandbox:
    return base.copy()


def _stranger(sb: Sandbox, username: str) -> str:
    """A patient ``username`` has no treatment relationship with."""
    treating = sb.login(username).context.treating
    others = [
        p["id"] for p in sb.system_session().search("Patient").fetch() if p["id"] not in treating
    ]
    assert others, "the clinic should have patients outside this clinician's care"
    return others[0]


def test_without_a_relationship_the_chart_is_absent(sb: Sandbox) -> None:
    pid = _stranger(sb, "dr.okafor")
    with pytest.raises(NotFound):
        sb.login("dr.okafor").read("Patient", pid)


def test_break_glass_opens_one_chart_and_is_audited(sb: Sandbox) -> None:
    pid = _stranger(sb, "dr.okafor")
    s = sb.login("dr.okafor")
    s.break_glass(pid, "unresponsive patient in the waiting room")
    assert s.read("Patient", pid)["id"] == pid
    events = sb.audit.events()
    starts = [e for e in events if any(c.get("code") == "110127" for c in e.get("subtype", []))]
    assert starts, "a break-the-glass start event (DICOM 110127) is recorded"
    reads = [e for e in events[-3:] if e.get("action") == "R"]
    purposes = {
        c.get("code")
        for e in reads
        for a in e["agent"]
        for p in a.get("purposeOfUse", [])
        for c in p.get("coding", [])
    }
    assert "BTG" in purposes


def test_break_glass_is_for_one_patient(sb: Sandbox) -> None:
    strangers = [
        p["id"]
        for p in sb.system_session().search("Patient").fetch()
        if p["id"] not in sb.login("dr.okafor").context.treating
    ]
    assert len(strangers) >= 2
    s = sb.login("dr.okafor")
    s.break_glass(strangers[0], "emergency")
    with pytest.raises(NotFound):
        s.read("Patient", strangers[1])


def test_break_glass_ends_and_expires(sb: Sandbox) -> None:
    pid = _stranger(sb, "dr.okafor")
    s = sb.login("dr.okafor")
    s.break_glass(pid, "emergency")
    s.end_break_glass(pid)
    with pytest.raises(NotFound):
        s.read("Patient", pid)
    s.break_glass(pid, "emergency again")
    sb.clock.advance(hours=2)
    with pytest.raises(NotFound):
        s.read("Patient", pid)


def test_only_physicians_and_nurses_may_break_the_glass(sb: Sandbox) -> None:
    pid = _stranger(sb, "ma.garcia")
    with pytest.raises(AccessDenied, match="physician or nurse"):
        sb.login("ma.garcia").break_glass(pid, "curious")
    assert sb.audit.events()[-1]["outcome"] == "4"


def test_a_reason_is_required(sb: Sandbox) -> None:
    with pytest.raises(ValidationError, match="reason"):
        sb.login("dr.okafor").break_glass(_stranger(sb, "dr.okafor"), "  ")


def test_privacy_officer_reviews_each_use(sb: Sandbox) -> None:
    pid = _stranger(sb, "rn.kim")
    sb.login("rn.kim").break_glass(pid, "code blue")
    po = sb.login("po.wilson")
    queue = sb.btg_review_queue(po)
    assert [(q["user"], q["patient"]) for q in queue] == [("rn.kim", pid)]
    sb.review_btg(po, 0, appropriate=True, note="documented emergency")
    assert sb.btg_review_queue(po) == []
    with pytest.raises(AccessDenied):
        sb.btg_review_queue(sb.login("dr.patel"))


def _exported(s: Session, types: list[str]) -> dict[str, str]:
    with tempfile.TemporaryDirectory() as out:
        s.export(out, types=types)
        return {p.name: p.read_text() for p in sorted(Path(out).glob("*.ndjson"))}


@pytest.mark.parametrize("username", ["dr.okafor", "dr.patel"])
def test_break_glass_lifts_nothing_in_a_bulk_export(sb: Sandbox, username: str) -> None:
    """A bulk export is a copy that outlives the override (a file on disk, a server job one
    downloads later): whatever a break-the-glass covers, the export is the one the user gets
    without it, while the chart itself stays open in the session. (Before, an export during a
    break-the-glass carried the whole chart of the patient it covered.)"""
    types = ["Patient", "Observation", "Condition"]
    s = sb.login(username)
    pid = _stranger(sb, username)
    before = _exported(s, types)
    s.break_glass(pid, "unresponsive patient in the waiting room")
    assert s.read("Patient", pid)["id"] == pid  # the override still opens the chart
    assert s.search("Observation", patient=f"Patient/{pid}").count() > 0
    assert _exported(s, types) == before
    assert pid not in "".join(before.values())


def test_a_kept_reports_object_does_not_outlast_the_break_glass(sb: Sandbox) -> None:
    """Rows a break-the-glass let through are not kept for later: a ``Reports`` object held
    across the end of the override answers as a fresh one does. (Before, it kept each view's
    rows for its lifetime, so a report run after the override still read the patient's chart.)"""
    pid = _stranger(sb, "dr.okafor")
    s = sb.login("dr.okafor")
    query = "SELECT count(*) AS n FROM observation WHERE patient = $p"
    kept = s.reports
    s.break_glass(pid, "unresponsive patient in the waiting room")
    during = kept.sql(query, p=pid).to_pylist()
    assert during[0]["n"] > 0  # the override opened the chart
    s.end_break_glass(pid)
    assert kept.sql(query, p=pid).to_pylist() == s.reports.sql(query, p=pid).to_pylist()
    assert kept.sql(query, p=pid).to_pylist()[0]["n"] == 0
