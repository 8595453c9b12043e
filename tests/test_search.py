"""Search semantics per parameter type, sort, count, include/revinclude, chains, and errors.

Expected results are computed from the fixture data with plain Python (an oracle), not typed in.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ehr_sandbox.errors import SearchError
from ehr_sandbox.search import parse, resolve_includes
from ehr_sandbox.store import Store

LOINC = "http://loinc.org"
MRN = "http://ehr-sandbox.org/fhir/mrn"
CAT = "http://terminology.hl7.org/CodeSystem/observation-category"
CONF = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
TAGS = "http://ehr-sandbox.org/CodeSystem/tags"

PATIENTS = [
    ("p1", "José", "Álvarez", "female", "1980-05-17", "02139", True, "dr1"),
    ("p2", "Ana", "alvarado", "female", "1980-11", "02140", False, "dr2"),
    ("p3", "Bob", "Smith", "male", "1975", "10001", True, "dr1"),
    ("p4", "Zoë", "Smithson", "other", "1999-12-31", "02139", True, None),
    ("p5", "Li", "Wei", "male", "2001-01-01", "94110", True, "dr2"),
]
OBS = [
    # id, patient, code, value, unit, effective, category, status
    ("o1", "p1", "8480-6", 142, "mm[Hg]", "2025-03-04T10:00:00+00:00", "vital-signs", "final"),
    ("o2", "p1", "8480-6", 118, "mm[Hg]", "2025-06-01T09:30:00-05:00", "vital-signs", "final"),
    ("o3", "p2", "8480-6", 5.4, "mm[Hg]", "2024-12-31", "vital-signs", "amended"),
    ("o4", "p3", "4548-4", 7.1, "%", "2025-03", "laboratory", "final"),
    (
        "o5",
        "p3",
        "4548-4",
        6.4,
        "%",
        {"start": "2025-01-01", "end": "2025-01-02"},
        "laboratory",
        "preliminary",
    ),
    ("o6", "p5", "2339-0", 99, "mg/dL", "2023", "laboratory", "final"),
]


def sample_patient(pid, given, family, gender, birth, zipc, active, gp):
    r = {
        "resourceType": "Patient",
        "id": pid,
        "active": active,
        "gender": gender,
        "birthDate": birth,
        "meta": {
            "tag": [{"system": TAGS, "code": "synthetic"}],
            "security": [{"system": CONF, "code": "R" if pid == "p3" else "N"}],
        },
        "name": [{"family": family, "given": [given]}],
        "identifier": [{"system": MRN, "value": f"MRN{pid}"}],
        "telecom": [
            {"system": "phone", "value": f"555-01{pid[1]}"},
            {"system": "email", "value": f"{pid}@x.org"},
        ],
        "address": [{"line": ["1 Main St"], "city": "Boston", "postalCode": zipc}],
    }
    if gp:
        r["generalPractitioner"] = [{"reference": f"Practitioner/{gp}"}]
    return r


def sample_obs(oid, pid, code, value, unit, eff, cat, status):
    r = {
        "resourceType": "Observation",
        "id": oid,
        "status": status,
        "category": [{"coding": [{"system": CAT, "code": cat}]}],
        "code": {"coding": [{"system": LOINC, "code": code}]},
        "subject": {"reference": f"Patient/{pid}"},
        "encounter": {"reference": f"Encounter/e-{pid}"},
        "valueQuantity": {
            "value": value,
            "unit": unit,
            "system": "http://unitsofmeasure.org",
            "code": unit,
        },
    }
    r["effectivePeriod" if isinstance(eff, dict) else "effectiveDateTime"] = eff
    return r


def _clock():
    t = [datetime(2026, 1, 1, tzinfo=UTC)]

    def now() -> datetime:
        t[0] += timedelta(hours=1)
        return t[0]

    return now


@pytest.fixture(scope="module")
def store() -> Store:
    st = Store(clock=_clock())
    for dr, fam in (("dr1", "Patel"), ("dr2", "Nguyen")):
        st.create({"resourceType": "Practitioner", "id": dr, "name": [{"family": fam}]})
    for row in PATIENTS:
        st.create(sample_patient(*row))
    for row in PATIENTS:
        st.create(
            {
                "resourceType": "Encounter",
                "id": f"e-{row[0]}",
                "status": "finished",
                "class": {
                    "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                    "code": "AMB",
                },
                "subject": {"reference": f"Patient/{row[0]}"},
                "participant": [{"individual": {"reference": "Practitioner/dr1"}}],
                "period": {
                    "start": "2025-03-04T09:00:00+00:00",
                    "end": "2025-03-04T10:00:00+00:00",
                },
            }
        )
    for row in OBS:
        st.create(sample_obs(*row))
    st.create(
        {
            "resourceType": "Observation",
            "id": "panel",
            "status": "final",
            "code": {"text": "panel"},
            "subject": {"reference": "Patient/p1"},
            "hasMember": [{"reference": "Observation/o1"}],
        }
    )
    return st


def ids(store: Store, rtype: str, params) -> list[str]:
    return [r["id"] for r in store.search(rtype, parse(rtype, params))]


def pats(pred) -> list[str]:
    return [p[0] for p in PATIENTS if pred(p)]


def obs(pred) -> list[str]:
    return [o[0] for o in OBS if pred(o)]


# --------------------------------------------------------------------------- string
def test_string_prefix_is_case_and_accent_insensitive(store: Store) -> None:
    assert ids(store, "Patient", {"family": "ALVAR"}) == pats(
        lambda p: p[2].lower().replace("á", "a").startswith("alvar")
    )
    assert ids(store, "Patient", {"name": "jose"}) == ["p1"]
    assert ids(store, "Patient", {"given": "zoe"}) == ["p4"]
    assert ids(store, "Patient", {"family": "smith"}) == pats(
        lambda p: p[2].lower().startswith("smith")
    )


def test_string_exact_and_contains(store: Store) -> None:
    assert ids(store, "Patient", {"family:exact": "Smith"}) == pats(lambda p: p[2] == "Smith")
    assert ids(store, "Patient", {"family:exact": "smith"}) == []
    assert ids(store, "Patient", {"family:contains": "MITHS"}) == pats(
        lambda p: "miths" in p[2].lower()
    )
    assert ids(store, "Patient", {"name:contains": "%"}) == []


def test_string_on_address(store: Store) -> None:
    assert ids(store, "Patient", {"address-postalcode": "0213"}) == pats(
        lambda p: p[5].startswith("0213")
    )
    assert ids(store, "Patient", {"address": "boston"}) == pats(lambda p: True)


# --------------------------------------------------------------------------- token
def test_token_forms(store: Store) -> None:
    assert ids(store, "Observation", {"code": "8480-6"}) == obs(lambda o: o[2] == "8480-6")
    assert ids(store, "Observation", {"code": f"{LOINC}|4548-4"}) == obs(lambda o: o[2] == "4548-4")
    assert ids(store, "Observation", {"code": "http://snomed.info/sct|4548-4"}) == []
    assert ids(store, "Observation", {"code": "|4548-4"}) == []  # these codes all have a system
    assert ids(store, "Observation", {"code": f"{LOINC}|"}) == obs(lambda o: True)
    assert ids(store, "Observation", {"status": "final,amended"}) == [
        *obs(lambda o: o[7] in ("final", "amended")),
        "panel",
    ]
    assert ids(store, "Patient", {"identifier": f"{MRN}|MRNp3"}) == ["p3"]
    assert ids(store, "Patient", {"phone": "555-014"}) == ["p4"]
    assert ids(store, "Patient", {"phone": "p4@x.org"}) == []  # email is not a phone
    assert ids(store, "Patient", {"active": "false"}) == pats(lambda p: not p[6])


def test_token_not_includes_resources_without_the_code(store: Store) -> None:
    got = ids(store, "Observation", {"code:not": "8480-6"})
    assert got == [o for o in obs(lambda o: o[2] != "8480-6")] + ["panel"]
    assert ids(store, "Patient", {"gender:not": "male,female"}) == pats(
        lambda p: p[3] not in ("male", "female")
    )


def test_common_meta_parameters(store: Store) -> None:
    assert ids(store, "Patient", {"_security": f"{CONF}|R"}) == ["p3"]
    assert ids(store, "Patient", {"_tag": f"{TAGS}|synthetic"}) == pats(lambda p: True)
    assert ids(store, "Patient", {"_id": "p2,p5,nope"}) == ["p2", "p5"]
    assert ids(store, "Patient", {"_lastUpdated": "2026-01-01"}) == [
        p["id"]
        for p in store.iter_type("Patient")
        if p["meta"]["lastUpdated"].startswith("2026-01-01")
    ]


def test_missing_modifier(store: Store) -> None:
    assert ids(store, "Patient", {"general-practitioner:missing": "true"}) == pats(
        lambda p: p[7] is None
    )
    assert ids(store, "Patient", {"general-practitioner:missing": "false"}) == pats(
        lambda p: p[7] is not None
    )


# --------------------------------------------------------------------------- date
def _born(p) -> str:
    return p[4]


@pytest.mark.parametrize(
    ("value", "pred"),
    [
        ("1980", lambda b: b.startswith("1980")),
        ("1980-05", lambda b: b.startswith("1980-05")),
        ("eq1980-05-17", lambda b: b == "1980-05-17"),
        ("ne1980", lambda b: not b.startswith("1980")),
        ("gt1980", lambda b: b[:4] > "1980"),
        ("lt1980", lambda b: b[:4] < "1980"),
        ("ge1980", lambda b: b[:4] >= "1980"),
        ("le1980", lambda b: b[:4] <= "1980"),
        ("sa1999-12-30", lambda b: b >= "1999-12-31"),
        ("eb1980-06", lambda b: b[:7] < "1980-06" and len(b) >= 7 or b[:4] < "1980"),
        ("1980-05-17T12:00:00+00:00", lambda b: False),  # a day is not inside one second
    ],
)
def test_date_prefixes_and_precision(store: Store, value: str, pred) -> None:
    assert ids(store, "Patient", {"birthdate": value}) == pats(lambda p: pred(_born(p)))


def test_date_with_time_zone_and_periods(store: Store) -> None:
    # o2 is 2025-06-01T14:30Z; searching the UTC day finds it, the day before does not
    assert "o2" in ids(store, "Observation", {"date": "2025-06-01"})
    assert "o2" not in ids(store, "Observation", {"date": "2025-05-31"})
    # o5's period runs into 2025-01-02: not inside the day 2025-01-01, inside the month
    assert ids(store, "Observation", {"date": "2025-01-01"}) == []
    assert ids(store, "Observation", {"date": "2025-01"}) == ["o5"]
    assert "o5" in ids(store, "Observation", {"date": "ge2025-01-01"})
    assert ids(store, "Observation", {"date": ["ge2025-01-01", "lt2025-04-01"]}) == [
        "o1",
        "o4",
        "o5",
    ]
    enc = ids(store, "Encounter", {"date": "2025-03-04"})
    assert enc == [f"e-{p[0]}" for p in PATIENTS]
    assert ids(store, "Encounter", {"date": "gt2025-03-04T10:00:00+00:00"}) == []


def test_date_ap_is_wider_than_eq(store: Store) -> None:
    eq = ids(store, "Observation", {"date": "2025-03-05"})
    ap = ids(store, "Observation", {"date": "ap2025-03-05"})
    assert set(eq) < set(ap)


# --------------------------------------------------------------------------- quantity
def test_quantity_semantics(store: Store) -> None:
    assert ids(store, "Observation", {"value-quantity": "gt100"}) == obs(lambda o: o[3] > 100)
    assert ids(store, "Observation", {"value-quantity": "le7.1"}) == obs(lambda o: o[3] <= 7.1)
    assert ids(store, "Observation", {"value-quantity": "5.4"}) == obs(
        lambda o: 5.35 <= o[3] < 5.45
    )
    assert ids(store, "Observation", {"value-quantity": "5"}) == obs(lambda o: 4.5 <= o[3] < 5.5)
    assert ids(store, "Observation", {"value-quantity": "ge6|http://unitsofmeasure.org|%"}) == obs(
        lambda o: o[3] >= 6 and o[4] == "%"
    )
    assert ids(store, "Observation", {"value-quantity": "ge6||mg/dL"}) == obs(
        lambda o: o[3] >= 6 and o[4] == "mg/dL"
    )
    assert ids(store, "Observation", {"value-quantity": "ap100"}) == obs(
        lambda o: 90 <= o[3] <= 110
    )
    assert ids(store, "Observation", {"value-quantity": "ne142"}) == obs(lambda o: o[3] != 142)


# --------------------------------------------------------------------------- reference
def test_reference_forms(store: Store) -> None:
    expected = obs(lambda o: o[1] == "p1") + ["panel"]
    assert ids(store, "Observation", {"patient": "Patient/p1"}) == expected
    assert ids(store, "Observation", {"patient": "p1"}) == expected
    assert ids(store, "Observation", {"subject": "http://example.org/fhir/Patient/p1"}) == expected
    assert ids(store, "Observation", {"subject:Patient": "p1"}) == expected
    both = ids(store, "Observation", {"subject": "Patient/p1,Patient/p3"})
    assert both == [o for o in [*obs(lambda o: o[1] in ("p1", "p3")), "panel"]]
    assert ids(store, "Observation", [("subject", "Patient/p1"), ("subject", "Patient/p3")]) == []
    assert ids(store, "Patient", {"general-practitioner": "Practitioner/dr1"}) == pats(
        lambda p: p[7] == "dr1"
    )


def test_repeated_parameters_are_and(store: Store) -> None:
    got = ids(store, "Observation", [("code", "8480-6"), ("status", "final"), ("patient", "p1")])
    assert got == obs(lambda o: o[2] == "8480-6" and o[7] == "final" and o[1] == "p1")


# --------------------------------------------------------------------------- chains
def test_chained_search(store: Store) -> None:
    assert ids(store, "Observation", {"subject:Patient.name": "smith"}) == obs(
        lambda o: o[1] in pats(lambda p: p[2].lower().startswith("smith"))
    )
    assert ids(store, "Observation", {"patient.gender": "female"}) == obs(
        lambda o: o[1] in pats(lambda p: p[3] == "female")
    ) + ["panel"]
    got = ids(store, "Observation", {"patient.general-practitioner.name": "patel"})
    assert got == obs(lambda o: o[1] in pats(lambda p: p[7] == "dr1")) + ["panel"]
    assert ids(store, "Observation", {"patient.name": "nobody"}) == []
    q = parse("Observation", {"patient.general-practitioner.name": "patel"})
    # general-practitioner may point at a Practitioner or an Organization: both have "name"
    assert q.chained_types() == ["Patient", "Practitioner", "Organization"]


# --------------------------------------------------------------------------- sort and count
def test_sort_multiple_keys(store: Store) -> None:
    got = [
        (r["gender"], r["birthDate"])
        for r in store.search("Patient", parse("Patient", {"_sort": "gender,-birthdate"}))
    ]
    assert got == sorted(got, key=lambda g: g[0]) and got != sorted(got)
    for gender in {g for g, _ in got}:
        dates = [b for g, b in got if g == gender]
        assert dates == sorted(dates, reverse=True)


def test_sort_by_date_descending_and_missing_last(store: Store) -> None:
    rs = store.search("Observation", parse("Observation", {"_sort": "-date"}))
    assert rs[-1]["id"] == "panel"  # no effective date
    stamps = [
        r.get("effectiveDateTime") or r.get("effectivePeriod", {}).get("end") for r in rs[:-1]
    ]
    assert stamps[0].startswith("2025-06") and stamps[-1] == "2023"
    names = [
        r["name"][0]["family"]
        for r in store.search("Patient", parse("Patient", {"_sort": "family"}))
    ]
    assert names == sorted(names, key=lambda n: n.lower().replace("á", "a"))


def test_count_and_offset_are_parsed_not_applied_by_the_store(store: Store) -> None:
    q = parse("Patient", {"_count": "2", "_offset": "1"})
    assert (q.count, q.offset) == (2, 1)
    assert q.without_paging().count is None and q.without_paging().offset == 0
    assert len(store.search("Patient", q)) == len(PATIENTS)


# --------------------------------------------------------------------------- includes
def test_include_and_revinclude(store: Store) -> None:
    q = parse("Observation", {"_id": "o1,o4", "_include": "Observation:subject"})
    matches = store.search("Observation", q)
    inc = resolve_includes(store, matches, q)
    assert sorted(r["id"] for r in inc) == ["p1", "p3"]
    q = parse("Patient", {"_id": "p3", "_revinclude": "Observation:subject"})
    inc = resolve_includes(store, store.search("Patient", q), q)
    assert sorted(r["id"] for r in inc) == sorted(obs(lambda o: o[1] == "p3"))
    q = parse("Observation", {"_id": "o1", "_include": "Observation:subject:Practitioner"})
    assert resolve_includes(store, store.search("Observation", q), q) == []


def test_include_iterate_and_wildcard(store: Store) -> None:
    q = parse(
        "Observation",
        [
            ("_id", "panel"),
            ("_include", "Observation:has-member"),
            ("_include:iterate", "Observation:subject,Patient:general-practitioner"),
        ],
    )
    inc = resolve_includes(store, store.search("Observation", q), q)
    assert sorted(r["resourceType"] + "/" + r["id"] for r in inc) == [
        "Observation/o1",
        "Patient/p1",
        "Practitioner/dr1",
    ]
    q = parse("Observation", {"_id": "o1", "_include": "*"})
    got = sorted(
        r["resourceType"] for r in resolve_includes(store, store.search("Observation", q), q)
    )
    assert got == ["Encounter", "Patient"]
    q = parse("Patient", {"_id": "p5", "_revinclude": "*"})
    got = sorted(r["id"] for r in resolve_includes(store, store.search("Patient", q), q))
    assert got == sorted(["e-p5", *obs(lambda o: o[1] == "p5")])


# --------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("rtype", "params", "param"),
    [
        ("Observation", {"colour": "red"}, "colour"),
        ("Observation", {"code:exact": "x"}, "code:exact"),
        ("Patient", {"family:not": "x"}, "family:not"),
        ("Patient", {"birthdate": "1980-02-30"}, "birthdate"),
        ("Patient", {"birthdate": "xx1980"}, "birthdate"),
        ("Patient", {"birthdate:missing": "maybe"}, "birthdate:missing"),
        ("Observation", {"value-quantity": "gtabc"}, "value-quantity"),
        ("Observation", {"value-quantity": "5|mg"}, "value-quantity"),
        ("Observation", {"code": "a|b|c"}, "code"),
        ("Observation", {"code": "|"}, "code"),
        ("Observation", {"patient": "patient/p1"}, "patient"),
        ("Observation", {"patient": "Practitioner/dr1"}, "patient"),
        ("Observation", {"subject": "p1"}, "subject"),
        ("Observation", {"subject": "Foobar/1"}, "subject"),
        ("Observation", {"patient": "Patient%2Fp1"}, "patient"),
        ("Observation", {"code.name": "x"}, "code.name"),
        ("Observation", {"patient.colour": "x"}, "patient.colour"),
        ("Observation", {"subject.name": "x"}, "subject.name"),
        ("Observation", {"subject:Foobar.name": "x"}, "subject:Foobar.name"),
        ("Observation", {"status": "final,"}, "status"),
        ("Observation", {"status": ""}, "status"),
        ("Observation", {"status": None}, "status"),
        ("Observation", {"_sort": "colour"}, "_sort"),
        ("Observation", {"_count": "-1"}, "_count"),
        ("Observation", {"_count": ["1", "2"]}, "_count"),
        ("Observation", {"_include": "Patient:general-practitioner"}, "_include"),
        ("Observation", {"_include": "Observation:code"}, "_include"),
        ("Observation", {"_include": "Observation"}, "_include"),
        ("Observation", {"_include:deep": "Observation:subject"}, "_include:deep"),
        ("Observation", {"_revinclude": "Observation:nothing"}, "_revinclude"),
        ("Observation", {"_has": "x"}, "_has"),
        ("Observation", {"_format": "json"}, "_format"),
        ("Foobar", {}, "resourceType"),
        ("observation", {}, "resourceType"),
    ],
)
def test_bad_parameters_raise_search_error_naming_the_parameter(
    rtype: str, params, param: str
) -> None:
    with pytest.raises(SearchError) as err:
        parse(rtype, params)
    assert err.value.path == param
    assert err.value.expected and param in str(err.value)
