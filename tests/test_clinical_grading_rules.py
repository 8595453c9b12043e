"""The clinical graders' shared rules, stated in general.

A routed finding counts only when it reaches the patient's own provider *and* says the finding
(a message to the right provider that says 'see chart' or reassures asks for nothing); a dose
counts only by a route the vaccine is licensed for, at a site for the route and the patient's
age, from a lot that has not expired — however the dose was written.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from hypothesis import given
from hypothesis import strategies as hs

from ehr_sandbox.exercises.builtin.clinical.common import (
    administered_safely,
    message_recipients,
    message_text,
    routed_saying,
)
from ehr_sandbox.workflows import immunizations
from ehr_sandbox.workflows.care import age_months
from ehr_sandbox.workflows.medication_administration import allowed_sites

OWN = "Practitioner/prac-dr.patel"
TODAY = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
WORDS = hs.lists(
    hs.sampled_from(["please", "review", "today", "chart", "result", "patient", "noted", "call"]),
    min_size=4,
    max_size=12,
)


def _ctx(*current: dict, birth: str = "1980-05-05") -> SimpleNamespace:
    """A grading context whose record holds the chart and ``current`` (each message's version
    at hand-in)."""
    chart = {"birthDate": birth, "generalPractitioner": [{"reference": OWN}]}
    now = {f"{m['resourceType']}/{m['id']}": m for m in current}
    return SimpleNamespace(
        facts={"patient_ref": "Patient/p1"},
        read=lambda ref: now.get(ref, chart if ref.startswith("Patient/") else None),
        now=TODAY,
    )


def _task(owner: str, text: str) -> dict:
    return {
        "resourceType": "Task",
        "id": "t1",
        "status": "requested",
        "for": {"reference": "Patient/p1"},
        "owner": {"reference": owner},
        "description": text,
    }


def _message(owner: str, text: str) -> dict:
    return {
        "resourceType": "Communication",
        "id": "c1",
        "status": "completed",
        "subject": {"reference": "Patient/p1"},
        "recipient": [{"reference": owner}],
        "payload": [{"contentString": text}],
    }


REQUIRED = {"that the result is positive": ["positive"]}
FORBIDDEN = {"that it is negative": ["is negative"]}


@given(words=WORDS, kind=hs.sampled_from([_task, _message]))
def test_a_message_to_the_provider_that_does_not_say_the_finding_does_not_count(words, kind):
    text = " ".join(words)
    m = kind(OWN, text)
    found = routed_saying(_ctx(m), "p1", [m], REQUIRED, FORBIDDEN, "the message")
    assert found is not None and not found.passed
    assert message_text(kind(OWN, text)) == text


@given(words=WORDS, kind=hs.sampled_from([_task, _message]))
def test_a_message_saying_the_finding_counts_only_at_the_patients_provider(words, kind):
    text = "positive rapid strep " + " ".join(words)
    m = kind(OWN, text)
    ok = routed_saying(_ctx(m), "p1", [m], REQUIRED, FORBIDDEN, "the message")
    assert ok is not None and ok.passed
    other = kind("Practitioner/prac-dr.nguyen", text)
    assert message_recipients(other) == ["Practitioner/prac-dr.nguyen"]
    away = routed_saying(_ctx(other), "p1", [other], REQUIRED, FORBIDDEN, "the message")
    assert away is not None and not away.passed and "someone other" in away.found


@given(words=WORDS)
def test_a_message_that_says_the_forbidden_thing_does_not_count(words):
    text = "positive control ok, strep is negative " + " ".join(words)
    m = _task(OWN, text)
    found = routed_saying(_ctx(m), "p1", [m], REQUIRED, FORBIDDEN, "the message")
    assert found is not None and not found.passed


UNDONE = {
    _task: ["cancelled", "entered-in-error", "rejected", "failed", "draft", "completed", "on-hold"],
    _message: ["entered-in-error", "stopped", "not-done"],
}


@given(words=WORDS, kind=hs.sampled_from([_task, _message]), data=hs.data())
def test_a_routing_undone_before_hand_in_does_not_count(words, kind, data):
    """Routed, then cancelled / entered in error / rejected (or moved to another chart): the
    version that said the finding no longer asks anyone for anything."""
    sent = kind(OWN, "positive rapid strep " + " ".join(words))
    assert routed_saying(_ctx(sent), "p1", [sent], REQUIRED, FORBIDDEN, "the message").passed
    status = data.draw(hs.sampled_from(UNDONE[kind]))
    for later in (
        {**sent, "status": status},
        {**sent, "for": {"reference": "Patient/p2"}, "subject": {"reference": "Patient/p2"}},
    ):
        found = routed_saying(_ctx(later), "p1", [sent, later], REQUIRED, FORBIDDEN, "the message")
        assert found is not None and not found.passed
        assert "no longer stands" in found.found
    gone = routed_saying(_ctx(), "p1", [sent], REQUIRED, FORBIDDEN, "the message")
    assert gone is not None and not gone.passed


def _dose(route: str, site: str, expiry: str) -> dict:
    return {
        "route": {"coding": [{"code": route}]},
        "site": {"coding": [{"code": site}]},
        "expirationDate": expiry,
    }


CVX = ["08", "03", "115", "20"]


@given(cvx=hs.sampled_from(CVX), days=hs.integers(min_value=1, max_value=4000))
def test_a_dose_from_an_expired_lot_never_counts(cvx, days):
    route = immunizations.vaccine(cvx)["routes"][0]
    months = 24 if cvx in ("08", "03", "20") else 360
    birth = (TODAY.date() - timedelta(days=months * 31)).isoformat()
    site = allowed_sites(route, months)[0]
    expired = (TODAY.date() - timedelta(days=days)).isoformat()
    assert not administered_safely(_ctx(birth=birth), _dose(route, site, expired), cvx)
    assert administered_safely(_ctx(birth=birth), _dose(route, site, "2030-12-31"), cvx)


@given(cvx=hs.sampled_from(CVX), route=hs.sampled_from(["IM", "SC", "ID", "PO", "IN"]))
def test_a_dose_by_a_route_the_vaccine_is_not_licensed_for_never_counts(cvx, route):
    months = 24 if cvx != "115" else 360
    birth = (TODAY.date() - timedelta(days=months * 31)).isoformat()
    sites = allowed_sites(route, months) or ["LA"]
    ok = administered_safely(_ctx(birth=birth), _dose(route, sites[0], "2030-12-31"), cvx)
    assert ok == (
        route in immunizations.vaccine(cvx)["routes"] and bool(allowed_sites(route, months))
    )


@given(
    months=hs.integers(min_value=2, max_value=600),
    site=hs.sampled_from(["LT", "RT", "LD", "RD", "LG", "RG"]),
)
def test_an_im_site_counts_only_where_it_fits_the_age(months, site):
    birth = (TODAY.date() - timedelta(days=months * 31)).isoformat()
    ok = administered_safely(_ctx(birth=birth), _dose("IM", site, "2030-12-31"), "08")
    assert ok == (site in allowed_sites("IM", age_months({"birthDate": birth}, TODAY.date())))
