"""Bundle planning/import (urn:uuid, contained, conditional, PUT/ifMatch) and export round trips."""

from __future__ import annotations

import copy
from pathlib import Path

import orjson
import pytest

from ehr_sandbox.bundles import (
    export_bundles,
    export_ndjson,
    plan_bundle,
    read_bundle_file,
    read_ndjson_dir,
    transaction_response,
)
from ehr_sandbox.errors import ConflictError, ValidationError
from ehr_sandbox.store import Store
from ehr_sandbox.store.plan_apply import apply_plan, import_bundle, import_resources, store_finder

MRN = "http://ehr-sandbox.org/fhir/mrn"
U1 = "urn:uuid:1f0e6c55-7b0a-4a8e-9a55-0c1d2e3f4a5b"
U2 = "urn:uuid:2a1b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
U3 = "urn:uuid:3b2c4d5e-6f7a-4b8c-9d0e-1f2a3b4c5d6e"


def post(full_url: str, resource: dict, **request: str) -> dict:
    return {
        "fullUrl": full_url,
        "resource": resource,
        "request": {"method": "POST", "url": resource["resourceType"], **request},
    }


def tx(*entries: dict) -> dict:
    return {"resourceType": "Bundle", "type": "transaction", "entry": list(entries)}


def sample_bundle() -> dict:
    return tx(
        post(
            U1,
            {
                "resourceType": "Patient",
                "identifier": [{"system": MRN, "value": "M1"}],
                "name": [{"family": "Kim"}],
            },
        ),
        post(
            U2,
            {
                "resourceType": "Encounter",
                "status": "finished",
                "class": {"code": "AMB"},
                "subject": {"reference": U1},
            },
        ),
        post(
            U3,
            {
                "resourceType": "ExplanationOfBenefit",
                "status": "active",
                "type": {"text": "x"},
                "use": "claim",
                "patient": {"reference": U1},
                "created": "2025-01-01",
                "insurer": {"display": "Payer"},
                "provider": {"display": "Clinic"},
                "outcome": "complete",
                "contained": [
                    {
                        "resourceType": "Coverage",
                        "id": "coverage",
                        "status": "active",
                        "beneficiary": {"reference": U1},
                        "payor": [{"display": "Payer"}],
                    }
                ],
                "insurance": [{"focal": True, "coverage": {"reference": "#coverage"}}],
            },
        ),
    )


def all_refs(store: Store) -> list[str]:
    out = []
    for t in store.types():
        for r in store.iter_type(t):
            out += [
                m.decode()
                for m in __import__("re").findall(rb'"reference":"([^"]+)"', orjson.dumps(r))
            ]
    return out


def test_urn_uuid_and_contained_references_resolve() -> None:
    st = Store()
    stored = import_bundle(st, sample_bundle())
    assert [r["id"] for r in stored] == [u[9:] for u in (U1, U2, U3)]  # urn:uuid ids are kept
    refs = all_refs(st)
    assert refs and not any(r.startswith("urn:") for r in refs)
    for ref in refs:
        if not ref.startswith("#"):
            assert st.exists(*ref.split("/")), ref
    eob = st.read("ExplanationOfBenefit", U3[9:])
    assert eob["insurance"][0]["coverage"]["reference"] == "#coverage"
    assert eob["contained"][0]["beneficiary"]["reference"] == f"Patient/{U1[9:]}"


def test_resource_ids_are_kept_and_bad_ids_replaced() -> None:
    b = tx(
        post("urn:uuid:not a uuid", {"resourceType": "Patient", "id": "keep-me"}),
        post("urn:uuid:x y", {"resourceType": "Patient"}),
    )
    plan = plan_bundle(b, exists=lambda t, i: False, find=lambda t, q: [])
    assert plan[0].resource["id"] == "keep-me"
    again = plan_bundle(copy.deepcopy(b), exists=lambda t, i: False, find=lambda t, q: [])
    assert plan[1].resource["id"] == again[1].resource["id"]  # derived ids are deterministic


def test_invalid_entry_rejects_the_whole_bundle() -> None:
    st = Store()
    b = sample_bundle()
    b["entry"][1]["resource"]["status"] = 42
    with pytest.raises(ValidationError) as err:
        import_bundle(st, b)
    # the entry, the resource and the field, each in its own part of the message
    assert err.value.resource.split()[0] == "Bundle.entry[1]"
    assert err.value.resource.split()[1].startswith("Encounter")
    assert err.value.path.startswith("status")
    assert st.types() == []


def test_all_invalid_entries_are_listed() -> None:
    b = sample_bundle()
    b["entry"][0]["resource"]["birthDate"] = "1990-02-31"
    b["entry"][1]["resource"]["status"] = 42
    with pytest.raises(ValidationError) as err:
        plan_bundle(b, exists=lambda t, i: False, find=lambda t, q: [])
    assert [e.resource.split()[0] for e in err.value.errors] == [
        "Bundle.entry[0]",
        "Bundle.entry[1]",
    ]
    assert err.value.path == "birthDate"


@pytest.mark.parametrize(
    ("mutate", "path"),
    [
        (
            lambda b: b["entry"][1]["resource"]["subject"].update(
                reference="urn:uuid:00000000-0000-0000-0000-000000000000"
            ),
            "Bundle.entry[1]",
        ),
        (
            lambda b: b["entry"][2]["resource"]["insurance"][0]["coverage"].update(
                reference="#nope"
            ),
            "Bundle.entry[2]",
        ),
        (lambda b: b["entry"][0]["request"].update(method="DELETE"), "Bundle.entry[0]"),
        (lambda b: b["entry"][0]["request"].update(url="Observation"), "Bundle.entry[0]"),
        (lambda b: b["entry"][1].pop("request"), "Bundle.entry[1]"),
        (lambda b: b["entry"][2].update(resource="x"), "Bundle.entry[2]"),
        (lambda b: b.update(type="batch"), "Bundle"),
        (lambda b: b.update(entry={}), "Bundle"),
    ],
)
def test_bad_bundles_name_the_entry_and_write_nothing(mutate, path: str) -> None:
    st = Store()
    b = sample_bundle()
    mutate(b)
    with pytest.raises(ValidationError) as err:
        import_bundle(st, b)
    assert err.value.resource == path
    assert st.types() == []


def test_duplicate_ids_in_one_bundle_are_rejected() -> None:
    b = tx(
        post(U1, {"resourceType": "Patient", "id": "same"}),
        post(U2, {"resourceType": "Patient", "id": "same"}),
    )
    with pytest.raises(ValidationError, match=r"Bundle.entry\[1\]"):
        plan_bundle(b, exists=lambda t, i: False, find=lambda t, q: [])


def test_conditional_create_and_conditional_reference() -> None:
    st = Store()
    st.create(
        {
            "resourceType": "Patient",
            "id": "existing",
            "identifier": [{"system": MRN, "value": "M1"}],
        }
    )
    b = tx(
        post(
            U1,
            {"resourceType": "Patient", "identifier": [{"system": MRN, "value": "M1"}]},
            ifNoneExist=f"identifier={MRN}|M1",
        ),
        post(
            U2,
            {
                "resourceType": "Encounter",
                "status": "finished",
                "class": {"code": "AMB"},
                "subject": {"reference": U1},
            },
        ),
        post(
            U3,
            {
                "resourceType": "Encounter",
                "status": "planned",
                "class": {"code": "AMB"},
                "subject": {"reference": f"Patient?identifier={MRN}|M1"},
            },
        ),
    )
    plan = plan_bundle(b, exists=st.exists, find=store_finder(st))
    assert [w.action for w in plan] == ["exists", "create", "create"]
    apply_plan(st, plan)
    assert st.count("Patient") == 1
    for enc in st.iter_type("Encounter"):
        assert enc["subject"]["reference"] == "Patient/existing"


def test_conditional_reference_must_match_exactly_one() -> None:
    st = Store()
    for i in range(2):
        st.create({"resourceType": "Patient", "id": f"twin{i}", "name": [{"family": "Twin"}]})
    b = tx(
        post(
            U2,
            {
                "resourceType": "Encounter",
                "status": "finished",
                "class": {"code": "AMB"},
                "subject": {"reference": "Patient?family=Twin"},
            },
        )
    )
    with pytest.raises(ValidationError, match="exactly one"):
        import_bundle(st, b)
    b["entry"][0]["resource"]["subject"]["reference"] = "Patient?family=Nobody"
    with pytest.raises(ValidationError, match="0 matched"):
        import_bundle(st, b)
    assert st.count("Encounter") == 0


def test_put_updates_with_if_match_and_conflicts() -> None:
    st = Store()
    st.create({"resourceType": "Patient", "id": "p", "gender": "male"})
    put = {
        "resource": {"resourceType": "Patient", "id": "p", "gender": "female"},
        "request": {"method": "PUT", "url": "Patient/p", "ifMatch": 'W/"1"'},
    }
    plan = plan_bundle(tx(put), exists=st.exists, find=store_finder(st))
    results = apply_plan(st, plan)
    assert results[0]["meta"]["versionId"] == "2"
    response = transaction_response(plan, results)
    assert response["entry"][0]["response"]["location"] == "Patient/p/_history/2"
    with pytest.raises(ConflictError):
        import_bundle(st, tx(put, post(U1, {"resourceType": "Patient", "id": "new"})))
    assert not st.exists("Patient", "new")
    bad = copy.deepcopy(put)
    bad["request"]["ifMatch"] = "latest"
    with pytest.raises(ValidationError, match="ifMatch"):
        import_bundle(st, tx(bad))


def test_existing_id_is_the_same_entity_not_a_duplicate() -> None:
    st = Store()
    st.create({"resourceType": "Organization", "id": "org1", "name": "Full record"})
    b = tx(
        post(U1, {"resourceType": "Organization", "id": "org1", "name": "Short copy"}),
        post(U2, {"resourceType": "Patient", "managingOrganization": {"reference": U1}}),
    )
    import_bundle(st, b)
    assert st.count("Organization") == 1
    assert st.read("Organization", "org1")["name"] == "Full record"
    assert st.read("Patient", U2[9:])["managingOrganization"]["reference"] == "Organization/org1"


def test_ndjson_export_import_round_trip(tmp_path: Path) -> None:
    src = Store()
    import_bundle(src, sample_bundle())
    by_type = {t: list(src.iter_type(t)) for t in src.types()}
    paths = export_ndjson(by_type, tmp_path)
    assert sorted(paths) == sorted(by_type)
    dst = Store()
    import_resources(dst, read_ndjson_dir(tmp_path))
    for t, rs in by_type.items():
        assert [r["id"] for r in dst.iter_type(t)] == [r["id"] for r in rs]
        for r in rs:
            got = dst.read(t, r["id"])
            assert {k: v for k, v in got.items() if k != "meta"} == {
                k: v for k, v in r.items() if k != "meta"
            }


def test_bundle_export_round_trip_keeps_ids_and_labels(tmp_path: Path) -> None:
    src = Store()
    import_bundle(src, sample_bundle())
    pat = next(src.iter_type("Patient"))
    pat["meta"]["security"] = [
        {"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}
    ]
    group = [pat, *src.iter_type("Encounter")]
    paths = export_bundles({"patient-1": group}, tmp_path)
    bundle = read_bundle_file(paths["patient-1"])
    assert bundle["meta"]["security"][0]["code"] == "R"
    dst = Store()
    import_bundle(dst, bundle)
    assert dst.exists("Patient", pat["id"]) and dst.count("Encounter") == 1
    import_bundle(
        dst, read_bundle_file(paths["patient-1"])
    )  # PUT again: a new version, no duplicate
    assert dst.count("Patient") == 1 and dst.read("Patient", pat["id"])["meta"]["versionId"] == "2"


def test_readers_name_bad_files(tmp_path: Path) -> None:
    (tmp_path / "Patient.ndjson").write_text('{"resourceType": "Patient", "id": "a"}\nnot json\n')
    with pytest.raises(ValidationError, match=r"Patient.ndjson:2"):
        list(read_ndjson_dir(tmp_path))
    (tmp_path / "b.json").write_text('{"resourceType": "Patient"}')
    with pytest.raises(ValidationError, match="a Bundle"):
        read_bundle_file(tmp_path / "b.json")
    with pytest.raises(ValidationError, match="file name"):
        export_bundles({"../evil": []}, tmp_path)
    with pytest.raises(ValidationError, match="only Patient"):
        export_ndjson({"Patient": [{"resourceType": "Observation", "id": "x"}]}, tmp_path)


def test_ndjson_lines_plan_like_a_collection() -> None:
    lines = [
        {"resourceType": "Patient", "id": "a"},
        {"resourceType": "Patient", "id": "b", "gender": 3},
    ]
    with pytest.raises(ValidationError) as err:
        plan_bundle(lines, exists=lambda t, i: False, find=lambda t, q: [])
    assert err.value.resource == "ndjson[1] Patient/b" and err.value.path.startswith("gender")
    plan = plan_bundle(lines[:1], exists=lambda t, i: False, find=lambda t, q: [])
    assert [w.ref for w in plan] == ["Patient/a"]
