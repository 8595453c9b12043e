"""The reports' cache of flattened rows gives exactly the rows of flattening every resource
again, for every catalogue report and role, before and after writes, and still audits."""

from __future__ import annotations

from typing import Any

import pytest

from ehr_sandbox.errors import AccessDenied
from ehr_sandbox.reports import Reports
from ehr_sandbox.reports.definitions import load_report, report_names
from ehr_sandbox.sandbox import Sandbox

PATIENT: list[str] = []
USERS = ("dr.patel", "billing.davis", "ma.garcia")


class Uncached:
    """A report source with only the plain door (every resource flattened on every run)."""

    def __init__(self, session: Any) -> None:
        self.s = session
        self.reference_date = session.reference_date

    def resources(self, rtype: str) -> Any:
        return self.s.resources(rtype)

    def can_read(self, rtype: str) -> bool:
        return self.s.can_read(rtype)


def _rows(source: Any, name: str, **params: Any) -> Any:
    try:
        return Reports(source).run(name, **params).to_pylist()
    except AccessDenied as exc:
        return ("denied", str(exc))


@pytest.fixture(scope="module")
def sb() -> Sandbox:
    sb = Sandbox.generate(patients=4, seed=3, years=2)
    PATIENT.append(sb.login("dr.patel").search("Patient").first()["id"])
    return sb


def _same_everywhere(sb: Sandbox) -> int:
    compared = 0
    for user in USERS:
        s = sb.login(user)
        for name in report_names():
            if name == "access_report":
                continue  # reads the audit trail, which every run here extends
            params = {p.name: PATIENT[0] for p in load_report(name).params if p.required}
            assert _rows(s, name, **params) == _rows(Uncached(s), name, **params), (user, name)
            compared += 1
    return compared


def test_cached_rows_equal_uncached_rows_for_every_report_and_role(sb: Sandbox) -> None:
    assert _same_everywhere(sb) > 10
    assert _same_everywhere(sb) > 20  # a second, warm, pass


def test_after_writes_the_cache_shows_the_new_versions_only(sb: Sandbox) -> None:
    doc = sb.login("dr.patel")
    pid = doc.search("Patient").first()["id"]
    obs = (
        doc.search("Observation", patient=f"Patient/{pid}", code="http://loinc.org|85354-9")
        .sort("-date")
        .first()
    )
    assert obs is not None
    before = doc.reports.run("vitals_flowsheet", patient=pid).to_pylist()
    obs["component"][0]["valueQuantity"]["value"] = 211
    doc.update(obs, reason="cache test: corrected systolic value")
    after = doc.reports.run("vitals_flowsheet", patient=pid).to_pylist()
    assert before != after
    assert _same_everywhere(sb) > 10


def test_every_cached_run_is_audited_once_per_patient(sb: Sandbox) -> None:
    s = sb.login("dr.patel")
    s.reports.run("bp_control")  # warm the cache
    n0 = sb.audit.count()
    s.reports.run("bp_control")
    events = sb.audit.events()[n0:]
    report_events = [e for e in events if "report" in str(e)]
    patients = {str(e.get("entity", "")) for e in report_events}
    assert len(report_events) == len(events) > 0 and len(patients) == len(report_events)
