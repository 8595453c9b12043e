"""Fuzz: matching never crashes on odd demographics, and scores are symmetric."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ehr_sandbox.network import MasterPatientIndex, score_pair
from tests.test_matching import base_person

ODD = st.one_of(
    st.none(),
    st.integers(),
    st.text(max_size=12),
    st.lists(st.one_of(st.text(max_size=6), st.integers(), st.none()), max_size=3),
    st.dictionaries(st.sampled_from(["family", "given", "line", "postalCode", "value", "system"]),
                    st.one_of(st.text(max_size=8), st.lists(st.text(max_size=5), max_size=2), st.integers()), max_size=4),
)  # fmt: skip
FIELDS = ["name", "gender", "birthDate", "address", "telecom"]


@st.composite
def odd_patient(draw: st.DrawFn) -> dict[str, Any]:
    p = copy.deepcopy(base_person())
    for key in draw(st.lists(st.sampled_from(FIELDS), max_size=3, unique=True)):
        p[key] = draw(ODD)
    return p


@settings(max_examples=200, deadline=None)
@given(a=odd_patient(), b=odd_patient())
def test_scores_are_defined_and_symmetric(a: dict[str, Any], b: dict[str, Any]) -> None:
    ab, ba = score_pair(a, b), score_pair(b, a)
    assert ab.decision in ("match", "review", "non-match")
    assert abs(ab.total - ba.total) < 1e-9
    assert {n: f.agreement for n, f in ab.fields.items()} == {
        n: f.agreement for n, f in ba.fields.items()
    }


@settings(max_examples=50, deadline=None)
@given(patients=st.lists(odd_patient(), min_size=1, max_size=6))
def test_mpi_files_odd_records(patients: list[dict[str, Any]]) -> None:
    mpi = MasterPatientIndex()
    for i, p in enumerate(patients):
        p["id"] = f"x{i}"
        mpi.add("org", p)
    assert sum(len(refs) for refs in mpi.links().values()) == len(patients)
