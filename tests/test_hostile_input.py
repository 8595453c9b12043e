"""Hostile input gets a typed sandbox error and writes nothing (issue 13, Low)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ehr_sandbox.access.scopes import parse_scopes
from ehr_sandbox.errors import SandboxError, ScopeError, SearchError
from ehr_sandbox.sandbox import Sandbox


@pytest.fixture(scope="module")
def sb() -> Sandbox:
    return Sandbox.generate(patients=3, seed=8, years=1)


def _rows(sandbox: Sandbox) -> int:
    con = sandbox._store.connection
    return con.execute("SELECT count(*) FROM versions").fetchone()[0]


def _deep(n: int) -> dict:
    node: dict = {"text": "x"}
    for _ in range(n):
        node = {"coding": [{"extension": [{"url": "u", "valueCodeableConcept": node}]}]}
    return node


def _obs(pid: str, **extra) -> dict:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "subject": {"reference": f"Patient/{pid}"},
        "effectiveDateTime": "2026-01-01",
        **extra,
    }


@pytest.mark.parametrize(
    "extra",
    [
        {"code": _deep(400)},  # RecursionError before
        {"valueString": "caf\ud800e"},  # UnicodeEncodeError before
        {"valueString": "a\x00b"},
        {"note": [{"text": "\udfff"}]},
    ],
    ids=["deep", "surrogate", "nul", "surrogate-note"],
)
def test_hostile_writes_raise_typed_errors_and_write_nothing(sb: Sandbox, extra: dict) -> None:
    fresh = sb.copy()
    pid = sorted(fresh.treating("dr.patel"))[0]
    before = _rows(fresh)
    with pytest.raises(SandboxError):
        fresh.login("dr.patel").create(_obs(pid, **extra))
    assert _rows(fresh) == before


@pytest.mark.parametrize(
    "params",
    [
        {"name:contains": "a\x00"},
        {"name": "\ud800"},
        {"name:contains": "%" * 60000},  # LIKE pattern too complex (OperationalError before)
    ],
    ids=["nul-contains", "surrogate", "pattern"],
)
def test_hostile_searches_raise_typed_errors(sb: Sandbox, params: dict) -> None:
    with pytest.raises(SearchError):
        sb.login("fd.smith").search("Patient", params).fetch()


def test_nul_in_contains_is_not_match_all(sb: Sandbox) -> None:
    s = sb.login("fd.smith")
    with pytest.raises(SearchError):
        s.search("Patient", {"name:contains": "\x00"}).fetch()


@pytest.mark.parametrize("ref", ["Patient/\ud800", "Patient/a\x00b", "Patient/" + "x" * 200])
def test_hostile_ids_read_as_absent(sb: Sandbox, ref: str) -> None:
    from ehr_sandbox.errors import NotFound

    s = sb.login("dr.patel")
    with pytest.raises(NotFound):
        s.read(ref)
    assert s.exists(ref) is False


ODD_SPACE = st.sampled_from(
    [
        "\t",
        "\n",
        "\r",
        "\x0b",
        "\x0c",
        "\x1c",
        "\x1d",
        "\x1e",
        "\x1f",
        "\x85",
        "\xa0",
        "\u1680",
        "\u2000",
        "\u2007",
        "\u2028",
        "\u2029",
        "\u202f",
        "\u3000",
    ]
)


@settings(max_examples=60)
@given(ODD_SPACE)
def test_scopes_split_on_ascii_space_only(sep: str) -> None:
    with pytest.raises(ScopeError):
        parse_scopes(f"patient/Observation.rs{sep}user/*.cruds")
    ok = parse_scopes("patient/Observation.rs  user/Patient.r")
    assert [s.text for s in ok.scopes] == ["patient/Observation.rs", "user/Patient.r"]
