"""A write keeps every label it comes with that only restricts, whoever writes.

Rule, stated over confidentiality codes and sensitivity sets: a user who is not the privacy
officer creates a record carrying labels (a copy of a restricted record, an outside record
filed in the chart, an import from a system that labelled it). The stored record has the
higher of the given confidentiality, the default N and what its codes give, and at least the
given sensitivity codes; a label below N is not kept (only the privacy officer lowers
labels); a record above what the writer may see is refused and nothing is written. (Before,
every label a non-privacy-officer write came with was dropped and the record was labelled from
its codes alone, so a restricted record copied or imported by a clinician became normal data
for every role.)
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ehr_sandbox.access.labels import (
    ACT_CODE,
    CONFIDENTIALITY_RANK,
    confidentiality_coding,
    confidentiality_of,
    sensitivities_of,
)
from ehr_sandbox.errors import AccessDenied
from ehr_sandbox.sandbox import Sandbox

LOINC = "http://loinc.org"


@pytest.fixture(scope="module")
def clinic() -> Sandbox:
    return Sandbox.generate(patients=3, seed=13, years=1)


def _observation(pid: str, day: str, security: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": "8867-4"}]},
        "subject": {"reference": f"Patient/{pid}"},
        "effectiveDateTime": day,
        "valueQuantity": {
            "value": 72,
            "unit": "/min",
            "system": "http://unitsofmeasure.org",
            "code": "/min",
        },
        "meta": {"security": security},
    }


@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    conf=st.one_of(st.none(), st.sampled_from("ULMNRV")),
    sens=st.sets(st.sampled_from(["HIV", "PSY", "MH", "SDV", "STD", "SEX", "BH"]), max_size=3),
)
def test_a_create_keeps_the_labels_it_comes_with_that_restrict(
    clinic: Sandbox, conf: str | None, sens: set[str]
) -> None:
    doctor = clinic.login("dr.patel")
    pid = sorted(doctor.context.treating)[0]
    security = [confidentiality_coding(conf)] if conf else []
    security += [{"system": ACT_CODE, "code": c} for c in sorted(sens)]
    resource = _observation(pid, str(clinic.reference_date), security)
    want = max(conf or "N", "N", key=CONFIDENTIALITY_RANK.__getitem__)
    system = clinic.system_session()
    before = system.search("Observation", patient=f"Patient/{pid}").count()
    if CONFIDENTIALITY_RANK[want] > CONFIDENTIALITY_RANK[doctor.context.role_info.ceiling]:
        with pytest.raises(AccessDenied):
            doctor.create(resource)
        assert system.search("Observation", patient=f"Patient/{pid}").count() == before
        return
    saved = doctor.create(resource)
    stored = system.read("Observation", saved["id"])
    assert confidentiality_of(stored) == want
    assert sens <= sensitivities_of(stored)
    nurse = clinic.login("rn.kim")
    if pid in nurse.context.treating:
        assert nurse.exists(f"Observation/{saved['id']}") == (
            CONFIDENTIALITY_RANK[want] <= CONFIDENTIALITY_RANK["N"]
        )
