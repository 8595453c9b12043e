"""The third-party Synthea R4 sample imports cleanly (../shared/data/synthea-r4-sample)."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import orjson
import pytest

from conftest import shared_path
from ehr_sandbox.bundles import read_bundle_file
from ehr_sandbox.errors import ValidationError
from ehr_sandbox.search import parse
from ehr_sandbox.store import Store
from ehr_sandbox.store.plan_apply import import_bundle

pytestmark = pytest.mark.shared

_REF = re.compile(rb'"reference":"([^"]+)"')


def _ordered_files() -> list[Path]:
    root = shared_path("data", "synthea-r4-sample")
    files = sorted(root.glob("*.json"))
    shared = [
        f for f in files if f.name.startswith(("hospitalInformation", "practitionerInformation"))
    ]
    return shared + [f for f in files if f not in shared]


@pytest.fixture(scope="module")
def imported() -> tuple[Store, list[Path]]:
    files = _ordered_files()
    st = Store()
    for f in files:
        import_bundle(st, read_bundle_file(f))
    return st, files


def test_all_24_files_import(imported: tuple[Store, list[Path]]) -> None:
    st, files = imported
    assert len(files) == 24
    assert files[0].name.startswith("hospitalInformation") and files[1].name.startswith(
        "practitionerInformation"
    )
    assert st.count("Patient") == 22


def test_counts_by_type_match_the_files(imported: tuple[Store, list[Path]]) -> None:
    st, files = imported
    distinct: dict[str, set[str]] = {}
    for f in files:
        for e in orjson.loads(f.read_bytes())["entry"]:
            distinct.setdefault(e["resource"]["resourceType"], set()).add(e["resource"]["id"])
    # Synthea repeats shared organizations/practitioners inside patient bundles: same id, one entity
    assert {t: st.count(t) for t in st.types()} == {t: len(ids) for t, ids in distinct.items()}
    for t, ids in distinct.items():
        assert all(st.exists(t, i) for i in ids)


def test_shared_resources_keep_the_full_hospital_record(imported: tuple[Store, list[Path]]) -> None:
    st, files = imported
    hospital = orjson.loads(files[0].read_bytes())["entry"][0]["resource"]
    stored = st.read("Organization", hospital["id"])
    assert stored["extension"] == hospital["extension"]


def test_every_reference_resolves(imported: tuple[Store, list[Path]]) -> None:
    st, _ = imported
    checked = 0
    for t in st.types():
        for r in st.iter_type(t):
            contained = {c["id"] for c in r.get("contained", [])}
            for ref in (m.decode() for m in _REF.findall(orjson.dumps(r))):
                if ref.startswith("#"):
                    assert ref[1:] in contained, (t, r["id"], ref)
                else:
                    rtype, _, rid = ref.partition("/")
                    assert st.exists(rtype, rid), (t, r["id"], ref)
                checked += 1
    assert checked > 10_000


def test_imported_data_is_searchable(imported: tuple[Store, list[Path]]) -> None:
    st, files = imported
    name = "Agustín"
    pats = st.search("Patient", parse("Patient", {"given": "agustin"}))
    assert [p["name"][0]["given"][0] for p in pats] == [name]
    pid = pats[0]["id"]
    source = orjson.loads(next(f for f in files if f.name.startswith(name)).read_bytes())
    expected = sum(1 for e in source["entry"] if e["resource"]["resourceType"] == "Observation")
    assert len(st.search("Observation", parse("Observation", {"patient": pid}))) == expected
    via_chain = st.search("Observation", parse("Observation", {"patient.given": "agustin"}))
    assert len(via_chain) == expected


def test_one_invalid_entry_rejects_the_bundle_and_writes_nothing() -> None:
    files = _ordered_files()
    st = Store()
    for f in files[:2]:
        import_bundle(st, read_bundle_file(f))
    before = {t: st.count(t) for t in st.types()}
    bundle = read_bundle_file(files[2])
    bad_index = len(bundle["entry"]) // 2
    broken = copy.deepcopy(bundle)
    resource = broken["entry"][bad_index]["resource"]
    resource["meta"] = {"lastUpdated": "not-a-time"}
    with pytest.raises(ValidationError) as err:
        import_bundle(st, broken)
    # the error names the entry and, after it, the resource it holds
    assert err.value.resource.split(" ")[0] == f"Bundle.entry[{bad_index}]"
    assert err.value.path == "meta.lastUpdated"  # the path inside the resource the entry holds
    assert {t: st.count(t) for t in st.types()} == before
