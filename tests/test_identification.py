"""Patient identification is a recorded act: two identifiers checked against the chart, kept
in the audit trail (names of the identifiers and whether each matched, never their values);
care operations and graders read it from there."""

from __future__ import annotations

import json
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ehr_sandbox.exercises.builtin.clinical.common import MA, add_patient
from ehr_sandbox.exercises.grading import GradingContext, SetupMark
from ehr_sandbox.sandbox import Sandbox
from ehr_sandbox.workflows import vitals
from ehr_sandbox.workflows.base import RuleRefused
from ehr_sandbox.workflows.care import IDENTIFY_KIND, identify, is_identified

_RNG = random.Random(7)


@pytest.fixture(scope="module")
def clinic():
    return Sandbox.generate(patients=2, seed=7, years=1)


def _identifications(clinic, pid):
    return [e for e in clinic.audit.events(patient=pid) if e["subtype"][0]["code"] == IDENTIFY_KIND]


IDENTIFIERS = ("name", "birth_date", "mrn")


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    pair=st.sets(st.sampled_from(IDENTIFIERS), min_size=2, max_size=3),
    wrong=st.sampled_from((None, *IDENTIFIERS)),
)
def test_every_check_is_recorded_with_what_was_checked_and_no_values(clinic, pair, wrong):
    p = add_patient(clinic, _RNG, age_days=_RNG.randint(20, 80) * 365, gender="female")
    s = clinic.login(MA)
    right = {"name": p["name"], "birth_date": p["dob"], "mrn": p["mrn"]}
    wrong_value = {"name": "Nobody Else", "birth_date": "1901-01-01", "mrn": "MRN0"}
    given_ = {k: (wrong_value[k] if k == wrong else right[k]) for k in pair}
    before = len(_identifications(clinic, p["id"]))
    mismatch = wrong in pair
    if mismatch:
        with pytest.raises(RuleRefused) as err:
            identify(s, p["ref"], **given_)
        assert err.value.rule_id == "care.two-identifiers"
    else:
        assert identify(s, p["ref"], **given_) == p["ref"]
    events = _identifications(clinic, p["id"])
    assert len(events) == before + 1
    detail = json.loads(events[-1]["outcomeDesc"])
    assert detail == {"checked": {k: k != wrong for k in sorted(pair)}, "matched": not mismatch}
    text = json.dumps(events[-1])
    assert all(str(v) not in text for v in given_.values())  # no identifier value in the trail
    assert is_identified(clinic.login(MA), p["ref"]) is not mismatch


def test_fewer_than_two_identifiers_record_nothing_and_allow_nothing(clinic):
    p = add_patient(clinic, _RNG, age_days=30 * 365, gender="male")
    s = clinic.login(MA)
    with pytest.raises(RuleRefused):
        identify(s, p["ref"], name=p["name"])
    assert _identifications(clinic, p["id"]) == []
    with pytest.raises(RuleRefused):
        vitals.record_vitals(s, p["ref"], heart_rate=70)


def test_identification_is_read_from_the_trail_per_user_and_per_visit(clinic):
    p = add_patient(clinic, _RNG, age_days=50 * 365, gender="female")
    identify(clinic.login(MA), p["ref"], name=p["name"], birth_date=p["dob"])
    # the same user in another session: the audit trail, not the session, remembers
    assert vitals.record_vitals(clinic.login(MA), p["ref"], heart_rate=72)
    # another user has not identified the patient
    with pytest.raises(RuleRefused):
        vitals.record_vitals(clinic.login("rn.kim"), p["ref"], heart_rate=72)
    # a later mismatch stops care until the patient is identified again
    with pytest.raises(RuleRefused):
        identify(clinic.login(MA), p["ref"], name=p["name"], birth_date="1901-01-01")
    with pytest.raises(RuleRefused):
        vitals.record_vitals(clinic.login(MA), p["ref"], heart_rate=72)
    identify(clinic.login(MA), p["ref"], mrn=p["mrn"], birth_date=p["dob"])
    assert is_identified(clinic.login(MA), p["ref"])
    # the next day is another visit
    clinic.clock.advance(days=1)
    assert not is_identified(clinic.login(MA), p["ref"])
    with pytest.raises(RuleRefused):
        vitals.record_vitals(clinic.login(MA), p["ref"], heart_rate=72)


def test_a_hand_typed_identification_without_two_identifiers_is_not_one(clinic):
    p = add_patient(clinic, _RNG, age_days=40 * 365, gender="male")
    s = clinic.login(MA)
    s.audit_action(
        IDENTIFY_KIND,
        patient=p["ref"],
        detail=json.dumps({"checked": {"name": True}, "matched": True}),
    )
    assert not is_identified(s, p["ref"])


def test_graders_see_whether_identification_came_before_the_first_write(clinic):
    p = add_patient(clinic, _RNG, age_days=60 * 365, gender="female")
    q = add_patient(clinic, _RNG, age_days=61 * 365, gender="male")
    sys_ = clinic.system_session()
    mark = SetupMark(int(clinic.audit.events()[-1]["id"]), sys_.change_mark())
    ctx = GradingContext(clinic, sys_, {}, clinic.user(MA), "ann", mark=mark)
    s = clinic.login(MA)
    identify(s, p["ref"], name=p["name"], birth_date=p["dob"])
    vitals.record_vitals(s, p["ref"], heart_rate=70)
    # q: charted by hand first, identified afterwards
    s.create(
        {
            "resourceType": "Observation",
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
            "subject": {"reference": q["ref"]},
            "valueQuantity": {
                "value": 70,
                "unit": "/min",
                "system": "http://unitsofmeasure.org",
                "code": "/min",
            },
        }
    )
    identify(s, q["ref"], name=q["name"], birth_date=q["dob"])
    assert ctx.identified_before(p["id"]) is True
    assert ctx.identified_before(q["id"]) is False
