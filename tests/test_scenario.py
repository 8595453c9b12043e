"""The EMR-vs-EHR scenario: metrics move in the expected direction and are deterministic."""

from __future__ import annotations

import math

import pytest

from ehr_sandbox.errors import ArgumentError
from ehr_sandbox.network import METRICS, Scenario
from ehr_sandbox.network.organizations import generated_clinic

SEED = 7


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return Scenario(seed=SEED, patients=14, people=4)


def _same(a: dict[str, float], b: dict[str, float]) -> bool:
    return all((math.isnan(a[k]) and math.isnan(b[k])) or a[k] == b[k] for k in a)


def test_ehr_beats_emr_where_expected_and_costs_privacy(scenario: Scenario):
    emr, ehr = scenario.run("emr").metrics, scenario.run("ehr").metrics
    assert set(emr) == set(METRICS) == set(ehr)
    assert ehr["duplicate_tests"] < emr["duplicate_tests"]
    assert ehr["conflicts_caught"] > emr["conflicts_caught"]
    assert ehr["allergies_missed"] < emr["allergies_missed"]
    assert ehr["medications_missed"] < emr["medications_missed"]
    assert ehr["completeness_cardiology-consult"] > emr["completeness_cardiology-consult"]
    assert ehr["steps_to_information"] < emr["steps_to_information"]
    assert ehr["hours_to_lipids"] < emr["hours_to_lipids"]
    assert emr["rekey_errors"] > 0 == ehr["rekey_errors"]
    assert ehr["people_with_access"] > emr["people_with_access"]
    assert ehr["organizations_with_access"] > emr["organizations_with_access"]


def test_outcomes_are_written_to_the_charts(scenario: Scenario):
    for mode in ("emr", "ehr"):
        result = scenario.run(mode)
        cardiology = result.network.org("cardiology").sandbox.system_session()
        held = active = lipid_orders = 0
        for p in result.network.journey.people:
            ref = p.ref("cardiology")
            for mr in cardiology.search("MedicationRequest", patient=ref).fetch():
                if mr["medicationCodeableConcept"]["coding"][0]["code"] == "308192":
                    held += mr["status"] == "on-hold"
                    active += mr["status"] == "active"
            lipid_orders += sum(
                1
                for sr in cardiology.search("ServiceRequest", patient=ref).fetch()
                if sr["code"].get("coding", [{}])[0].get("code") == "57698-3"
            )
        assert held == result.metrics["conflicts_caught"]
        assert active == result.metrics["allergies_missed"]
        assert lipid_orders == result.metrics["duplicate_tests"]


def test_downtime_takes_away_the_exchange_benefit(scenario: Scenario):
    up, down = scenario.run("ehr").metrics, scenario.run("ehr", down="hospital").metrics
    assert down["conflicts_caught"] < up["conflicts_caught"]
    assert down["completeness_cardiology-consult"] < up["completeness_cardiology-consult"]
    frame = scenario.compare(down="hospital")
    assert list(frame.columns) == ["EMR", "EHR", "EMR, hospital down", "EHR, hospital down"]
    assert list(frame.index) == list(METRICS)
    assert frame.loc["duplicate_tests", "EHR"] == up["duplicate_tests"]
    with pytest.raises(ArgumentError, match="down"):
        scenario.run("ehr", down="pharmacy")


def test_per_visit_completeness(scenario: Scenario):
    frame = scenario.run("ehr").visits_frame()
    assert set(frame["visit"]) == {
        "clinic-visit",
        "ed-visit",
        "cardiology-consult",
        "clinic-follow-up",
    }
    assert frame["completeness"].between(0, 1).all()
    emr = scenario.run("emr").visits_frame()
    consult = emr[emr["visit"] == "cardiology-consult"]
    assert all("allergy:penicillin" in m for m in consult["missing"])


def test_plot_has_three_panels(scenario: Scenario):
    fig = scenario.plot(down=None)
    assert len([ax for ax in fig.axes if ax.get_title()]) == 3


def test_deterministic_for_a_seed(scenario: Scenario):
    first = {m: scenario.run(m).metrics for m in ("emr", "ehr")}
    generated_clinic.cache_clear()  # regenerate every organization from scratch
    again = Scenario(seed=SEED, patients=14, people=4)
    for mode in ("emr", "ehr"):
        assert _same(first[mode], again.run(mode).metrics), mode
    a, b = scenario.run("emr").network, again.run("emr").network
    assert [(e.item, e.kind, e.keyed) for e in a.rekey_errors] == [
        (e.item, e.kind, e.keyed) for e in b.rekey_errors
    ]
