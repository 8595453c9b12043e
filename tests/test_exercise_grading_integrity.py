"""Grader helpers judge what the EHR recorded, not what a student typed or how they labelled it:
a code under the wrong code system is not that code, and work is timed by the EHR's stamp."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ehr_sandbox import exercises
from ehr_sandbox.exercises.builtin.clinical.common import code_of
from ehr_sandbox.exercises.builtin.common import relabel_codes
from ehr_sandbox.exercises.grading import GradingContext, codes, misfiled
from ehr_sandbox.validation.content_adapter import default_lookups
from synthetic.systems import NDC, RXNORM

SHIPPED = default_lookups().code_sets
LOINC = "http://loinc.org"
UNCHECKED = st.sampled_from(
    [NDC, "http://hl7.org/fhir/sid/icd-9-cm", "http://example.org/my-codes", "urn:oid:1.2.3"]
)
# real codes of shipped terminologies, taken from the content the EHR validates against
SHIPPED_CODES = st.sampled_from(["8867-4", "8480-6", "85354-9", "314076", "243670", "E11.42"])


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(SHIPPED_CODES, UNCHECKED)
def test_a_shipped_code_under_an_unchecked_system_is_not_that_code(code, system):
    assert any(SHIPPED.checks(s) and SHIPPED.contains(s, code) for s in SHIPPED.systems)
    coding = {"system": system, "code": code}
    assert misfiled(coding)
    assert codes({"coding": [coding]}) == set()
    assert code_of({"code": {"coding": [coding]}}) is None


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from([LOINC, RXNORM]), SHIPPED_CODES)
def test_codes_in_their_own_system_still_count(system, code):
    coding = {"system": system, "code": code}
    if SHIPPED.contains(system, code):
        assert not misfiled(coding)
        assert codes({"coding": [coding]}) == {code}
        assert code_of({"code": {"coding": [coding]}}) == code


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet="abcdefghij-", min_size=3, max_size=12), UNCHECKED)
def test_local_codes_of_unchecked_systems_still_count(code, system):
    coding = {"system": system, "code": code}
    assert not misfiled(coding)  # no shipped terminology has lower-case letter codes
    assert codes({"coding": [coding]}) == {code}


def test_relabel_keeps_codes_and_identifiers():
    res = {
        "identifier": [{"system": RXNORM, "value": "1"}],
        "code": {"coding": [{"system": RXNORM, "code": "314076"}]},
    }
    out = relabel_codes(res, {RXNORM: NDC})
    assert out["code"]["coding"][0] == {"system": NDC, "code": "314076"}
    assert out["identifier"] == res["identifier"]


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.datetimes(), st.integers(0, 10_000))
def test_written_at_is_the_ehr_stamp_not_the_typed_time(typed, minutes):
    stamp = (typed + timedelta(minutes=minutes)).replace(microsecond=0)
    version = {"sent": typed.isoformat(), "meta": {"lastUpdated": stamp.isoformat() + "+00:00"}}
    assert GradingContext.written_at(version).replace(tzinfo=None) == stamp


def test_a_reply_typed_with_the_message_time_is_still_late():
    ex = exercises.get("front-office/portal-triage")
    att = exercises.start(ex.id, "student-04")
    ex.wrong_solutions["backdated-replies"].apply(att)
    result = att.check()
    assert not result.criterion("answered in time").passed
    att.sandbox.close()
