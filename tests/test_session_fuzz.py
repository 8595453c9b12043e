"""Hostile input through the only door: every bad read, search or write through a Session gets
a typed SandboxError (never another exception) and leaves nothing behind."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ehr_sandbox.errors import SandboxError
from ehr_sandbox.sandbox import Sandbox

TYPES = [
    "Patient",
    "Observation",
    "Condition",
    "Encounter",
    "observation",
    "Foobar",
    "",
    "Patient/1",
]
NAMES = [
    "name",
    "code",
    "date",
    "patient",
    "subject:Patient.name",
    "_sort",
    "_count",
    "_include",
    "value-quantity",
    "birthdate",
    "_has:Observation:patient:code",
    "code:in",
    "bogus",
    "date:exact",
]
HOSTILE = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        [
            "ge2020-13-45",
            "lt",
            "1|2|3",
            "Patient/../../etc",
            "' OR 1=1 --",
            "\x00",
            "é" * 5,
            "http://loinc.org|",
            "-date,,",
            "999999999999999999999",
            "Observation:*:iterate",
        ]
    ),
)


@pytest.fixture(scope="module")
def sb() -> Sandbox:
    return Sandbox.generate(patients=6, seed=17, years=1)


def _total(sb: Sandbox) -> int:
    return sum(sb._store.count(t) for t in sb._store.types())


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rtype=st.sampled_from(TYPES),
    params=st.lists(st.tuples(st.sampled_from(NAMES), HOSTILE), max_size=3),
)
def test_hostile_searches_get_typed_errors(
    sb: Sandbox, rtype: str, params: list[tuple[str, str]]
) -> None:
    session = sb.login("dr.patel")
    try:
        result = session.search(rtype, params).fetch_all()
    except SandboxError as exc:
        assert str(exc)  # a message a student can read, never another exception type
    else:
        assert all(r["resourceType"] for r in result)


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rtype=st.sampled_from(TYPES),
    field=st.sampled_from(
        ["status", "subject", "code", "valueQuantity", "id", "meta", "text", "birthDate"]
    ),
    value=st.one_of(
        HOSTILE,
        st.integers(),
        st.none(),
        st.lists(st.text(max_size=5), max_size=2),
        st.dictionaries(st.sampled_from(["reference", "value", "unit"]), HOSTILE, max_size=2),
    ),
)
def test_hostile_writes_get_typed_errors_and_write_nothing(
    sb: Sandbox, rtype: str, field: str, value
) -> None:
    session = sb.login("dr.patel")
    before = _total(sb)
    try:
        session.create({"resourceType": rtype, "status": "final", field: value})
    except SandboxError:
        assert _total(sb) == before
    else:
        assert _total(sb) >= before + 1  # a valid write also records its Provenance


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ref=HOSTILE)
def test_hostile_reads_are_not_found_or_invalid(sb: Sandbox, ref: str) -> None:
    session = sb.login("ma.garcia")
    with pytest.raises(SandboxError):
        session.read(ref)
