"""Fuzz: bad search parameters and bad resources get typed errors and leave the store unchanged."""

from __future__ import annotations

import hashlib
import os
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ehr_sandbox.errors import SearchError, ValidationError
from ehr_sandbox.search import REGISTRY, parse
from ehr_sandbox.search.values import date_range
from ehr_sandbox.store import Store
from ehr_sandbox.store.plan_apply import import_bundle

SETTINGS = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


def _seeded() -> Store:
    s = Store()
    s.create(
        {
            "resourceType": "Patient",
            "id": "p1",
            "gender": "female",
            "birthDate": "1980-01-02",
            "name": [{"family": "Ortiz", "given": ["Eva"]}],
        }
    )
    s.create(
        {
            "resourceType": "Observation",
            "id": "o1",
            "status": "final",
            "code": {"text": "x"},
            "subject": {"reference": "Patient/p1"},
            "effectiveDateTime": "2025-01-01",
            "valueQuantity": {"value": 5, "unit": "mg"},
        }
    )
    return s


STORE = _seeded()


def snapshot(s: Store) -> str:
    h = hashlib.sha256()
    for table in ("resources", "versions", "search_index", "sandbox_meta"):
        for row in s.connection.execute(f"SELECT * FROM {table} ORDER BY rowid"):
            h.update(repr(row).encode())
    return h.hexdigest()


BEFORE = snapshot(STORE)
NAMES = sorted({n for params in REGISTRY.values() for n in params})
WILD = st.text(alphabet=string.printable + "éß中|,:.$\\", min_size=0, max_size=20)
KEYS = st.one_of(
    st.sampled_from(NAMES),
    WILD,
    st.builds(lambda a, b: f"{a}:{b}", st.sampled_from(NAMES), WILD),
    st.builds(lambda a, b: f"{a}.{b}", st.sampled_from(NAMES), WILD),
)
VALUES = st.one_of(WILD, st.integers(), st.none(), st.floats(allow_nan=True), st.booleans())


@SETTINGS
@given(
    rtype=st.sampled_from(["Patient", "Observation", "Encounter", "Basic", "Foobar", "patient"]),
    params=st.lists(st.tuples(KEYS, VALUES), max_size=4),
)
def test_any_parameters_give_results_or_a_search_error(rtype: str, params: list) -> None:
    try:
        q = parse(rtype, params)
    except SearchError as exc:
        assert exc.path and exc.expected
    else:
        assert isinstance(STORE.search(rtype, q), list)
    assert snapshot(STORE) == BEFORE


@SETTINGS
@given(name=WILD.filter(lambda n: n.partition(":")[0].partition(".")[0] not in NAMES), value=WILD)
def test_unknown_parameter_names_are_always_rejected(name: str, value: str) -> None:
    with pytest.raises(SearchError):
        parse("Observation", [(name, value or "x")])


@SETTINGS
@given(value=WILD.filter(lambda v: v and date_range(v[2:] if v[:2].isalpha() else v) is None))
def test_malformed_dates_are_rejected(value: str) -> None:
    with pytest.raises(SearchError) as err:
        parse("Patient", [("birthdate", value)])
    assert err.value.path == "birthdate"


BAD_VALUES = st.one_of(
    st.integers(),
    st.text(max_size=5),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.booleans(),
)
FIELDS = [
    "gender",
    "birthDate",
    "name",
    "active",
    "telecom",
    "identifier",
    "deceasedBoolean",
    "address",
    "id",
    "resourceType",
    "meta",
    "generalPractitioner",
    "maritalStatus",
]


@SETTINGS
@given(field=st.sampled_from(FIELDS), bad=BAD_VALUES, index=st.integers(0, 2))
def test_bad_resources_in_a_bundle_are_rejected_whole(field: str, bad: object, index: int) -> None:
    s = _seeded()
    before = snapshot(s)
    entries = [
        {
            "fullUrl": f"urn:uuid:00000000-0000-4000-8000-00000000000{i}",
            "resource": {"resourceType": "Patient", "gender": "male", "birthDate": "1990-01-01"},
            "request": {"method": "POST", "url": "Patient"},
        }
        for i in range(3)
    ]
    entries[index]["resource"][field] = bad
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
    try:
        import_bundle(s, bundle)
    except ValidationError as exc:
        assert exc.resource.split()[0] == f"Bundle.entry[{index}]"
        assert snapshot(s) == before
    else:
        assert s.count("Patient") == 4  # the mutation happened to be valid FHIR


@SETTINGS
@given(
    resource=st.dictionaries(
        st.sampled_from(["resourceType", "id", "meta", "x"]),
        st.one_of(
            st.text(max_size=8), st.integers(), st.none(), st.sets(st.integers(), max_size=1)
        ),
        max_size=4,
    )
)
def test_store_create_rejects_non_resources_with_a_validation_error(resource: dict) -> None:
    s = Store()
    try:
        s.create(resource)
    except ValidationError as exc:
        assert exc.path
        assert s.types() == []
    else:
        assert s.count(resource["resourceType"]) == 1


def _rich_store(encrypted: bool = False) -> Store:
    from test_search import OBS, PATIENTS, sample_obs, sample_patient

    codec = None
    if encrypted:
        crypto = pytest.importorskip("ehr_sandbox.crypto")
        codec = crypto.AesGcmCodec(crypto.MasterKey(bytes(range(32))))
    s = Store(codec=codec)
    for row in PATIENTS:
        s.create(sample_patient(*row))
    for row in OBS:
        s.create(sample_obs(*row))
    return s


RICH = _rich_store()
CLAUSES = st.sampled_from(
    [
        ("patient", "Patient/p1"),
        ("patient", "p3,p5"),
        ("code", "8480-6"),
        ("code", "http://loinc.org|4548-4"),
        ("code:not", "8480-6"),
        ("status", "final"),
        ("category", "laboratory"),
        ("date", "ge2025"),
        ("date", "lt2025-03-05"),
        ("date", "2025"),
        ("value-quantity", "gt7"),
        ("value-quantity", "le118"),
        ("patient.gender", "female"),
        ("patient.family", "smi"),
        ("patient.birthdate", "lt1990"),
        ("encounter:missing", "false"),
        ("value-quantity:missing", "true"),
    ]
)


@SETTINGS
@given(clauses=st.lists(CLAUSES, min_size=1, max_size=4))
def test_repeated_parameters_intersect_single_parameter_results(
    clauses: list[tuple[str, str]],
) -> None:
    def run(params: list[tuple[str, str]]) -> list[str]:
        return [r["id"] for r in RICH.search("Observation", parse("Observation", params))]

    combined = run(clauses)
    singles = [set(run([c])) for c in clauses]
    assert combined == [i for i in run([clauses[0]]) if all(i in s for s in singles)]


ENCRYPTED = None


@SETTINGS
@given(clauses=st.lists(CLAUSES, min_size=1, max_size=3))
def test_encrypted_store_finds_what_the_plain_store_finds(clauses: list[tuple[str, str]]) -> None:
    global ENCRYPTED
    if ENCRYPTED is None:
        ENCRYPTED = _rich_store(encrypted=True)
    q = parse("Observation", clauses)
    assert [r["id"] for r in ENCRYPTED.search("Observation", q)] == [
        r["id"] for r in RICH.search("Observation", q)
    ]
