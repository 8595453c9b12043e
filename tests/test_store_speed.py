"""The store's fast paths give the same answers as the plain ones: SQL _sort versus the
Python sort, parameters the index plan leaves out, references stored once, deferred index
B-trees, packed rows and the session's lazy paging after the policy."""

from __future__ import annotations

import zlib
from datetime import date

import pytest

import synthetic
from ehr_sandbox.sandbox import Sandbox
from ehr_sandbox.search import parse
from ehr_sandbox.store import Store
from ehr_sandbox.store.packing import ZSTD_MAGIC


@pytest.fixture(scope="module")
def store() -> Store:
    st = Store()
    ref = date(2026, 1, 1)
    recs = list(synthetic.generate(4, seed=11, reference_date=ref, years=2))
    with st.deferred_indexes():
        # the practice's free Slots leave out the ones these patients hold (same settings)
        st.create_many(
            synthetic.practice_resources(seed=11, reference_date=ref, years=2, patients=4)
        )
        for rec in recs:
            st.create_many(list(rec.all()))
    return st


SORTS = [
    ("Observation", {"_sort": "-date"}),
    ("Observation", {"_sort": "date,-code"}),
    ("Observation", {"_sort": "value-quantity", "category": "vital-signs"}),
    ("Observation", {"_sort": "-value-quantity,_id", "code": "http://loinc.org|29463-7"}),
    ("Encounter", {"_sort": "-date,status"}),
    ("Patient", {"_sort": "birthdate"}),
    ("Patient", {"_sort": "-family"}),
    ("Condition", {"_sort": "-onset-date,_id"}),
]


@pytest.mark.parametrize(("rtype", "params"), SORTS)
def test_sql_sort_equals_the_python_sort(store: Store, rtype: str, params: dict) -> None:
    q = parse(rtype, params)
    python = [r["id"] for r in store.search(rtype, q)]
    sql = [r["id"] for r in store.search_iter(rtype, q)]
    assert sql == python and len(sql) > 1


def test_unindexed_parameters_match_a_scan_and_see_new_writes(store: Store) -> None:
    def scan(code: str) -> list[str]:
        return [
            r["id"]
            for r in store.iter_type("Observation")
            if any(t.get("code") == code for t in r.get("meta", {}).get("tag", []))
        ]

    tag = next(store.iter_type("Observation"))["meta"]["tag"][0]["code"]
    q = parse("Observation", {"_tag": tag})
    assert store.search_ids("Observation", q) == scan(tag) != []
    new = store.create(
        {
            "resourceType": "Observation",
            "status": "final",
            "code": {"text": "x"},
            "meta": {"tag": [{"code": tag}]},
        }
    )
    assert new["id"] in store.search_ids("Observation", q)  # checked on the candidates too


def test_a_reference_is_stored_once_and_found_through_both_parameters(store: Store) -> None:
    obs = next(store.iter_type("Observation"))
    pref = obs["subject"]["reference"]
    by_patient = store.search_ids("Observation", parse("Observation", {"patient": pref}))
    by_subject = store.search_ids("Observation", parse("Observation", {"subject": pref}))
    assert by_patient == by_subject and obs["id"] in by_subject
    grp = store.create(
        {
            "resourceType": "Observation",
            "status": "final",
            "code": {"text": "group"},
            "subject": {"reference": "Group/g1"},
        }
    )
    assert store.search_ids("Observation", parse("Observation", {"subject": "Group/g1"})) == [
        grp["id"]
    ]
    assert grp["id"] not in store.search_ids(
        "Observation", parse("Observation", {"patient:missing": "false"})
    )


def test_deferred_indexes_are_rebuilt_even_when_the_block_fails() -> None:
    st = Store()

    def names() -> set[str]:
        rows = st.connection.execute("SELECT name FROM sqlite_master WHERE type = 'index'")
        return {r[0] for r in rows if r[0].startswith("search_index")}

    before = names()
    with pytest.raises(RuntimeError), st.deferred_indexes():
        assert names() == set()
        raise RuntimeError("crash in the middle of a load")
    assert names() == before and len(before) == 2


def test_large_rows_are_packed_and_read_back() -> None:
    st = Store()
    note = {"resourceType": "Basic", "id": "b", "code": {"text": "note " * 200}}
    st.create(note)
    blob = st.connection.execute("SELECT blob FROM versions").fetchone()[0]
    assert blob[:4] == ZSTD_MAGIC and len(blob) < 500
    assert st.read("Basic", "b")["code"] == note["code"]


def test_rows_written_by_earlier_versions_still_read() -> None:
    # plain JSON and zlib streams (the two earlier row formats) next to zstd frames
    st = Store()
    old = {"resourceType": "Basic", "id": "z", "code": {"text": "old " * 100}}
    st.create(old)
    st.create({"resourceType": "Basic", "id": "p", "code": {"text": "short"}})
    doc = st.connection.execute("SELECT blob FROM versions WHERE rid = 'z'").fetchone()[0]
    legacy = zlib.compress(st._packer.unpack(doc))  # noqa: SLF001 - rewrite the row as zlib
    st.connection.execute("UPDATE versions SET blob = ? WHERE rid = 'z'", (legacy,))
    assert st.read("Basic", "z")["code"] == old["code"]
    assert st.read("Basic", "p")["code"] == {"text": "short"}


def test_a_bulk_load_trains_one_dictionary_that_survives_reopen_rekey_and_copy(tmp_path) -> None:
    path = tmp_path / "s.db"
    st = Store(path)
    recs = list(synthetic.generate(2, seed=5, reference_date=date(2026, 1, 1), years=2))
    with st.bulk() as load:
        for rec in recs:
            load.add(list(rec.all()))
    dicts = st.connection.execute("SELECT dict_id FROM pack_dict").fetchall()
    assert len(dicts) == 1
    ids = [r["id"] for r in st.iter_type("Observation")]
    first = st.read("Observation", ids[0])
    st.close()
    again = Store(path)
    assert again.read("Observation", ids[0]) == first
    copy = Store()
    copy.load_from(path)
    assert copy.read("Observation", ids[-1]) == again.read("Observation", ids[-1])
    from ehr_sandbox import crypto

    again.rekey(crypto.AesGcmCodec(crypto.MasterKey.generate()))
    assert again.read("Observation", ids[0]) == first
    sealed = again.connection.execute("SELECT blob FROM pack_dict").fetchone()[0]
    plain = copy.connection.execute("SELECT blob FROM pack_dict").fetchone()[0]
    assert sealed != plain  # the dictionary is made of patient data: sealed with the rows


def test_session_paging_equals_slicing_the_visible_sorted_list() -> None:
    sb = Sandbox.generate(patients=4, seed=9, years=2)
    for user in ("dr.patel", "rn.kim", "billing.davis"):
        s = sb.login(user)
        if not s.can_read("Encounter"):
            continue
        full = [r["id"] for r in s.search("Encounter").sort("-date").fetch()]
        for count in (1, 3):
            for offset in (0, 2):
                page = s.search("Encounter", {"_offset": str(offset)}).sort("-date")
                got = [r["id"] for r in page.limit(count).fetch()]
                assert got == full[offset : offset + count], (user, count, offset)


def _obs(i: int) -> dict:
    return {
        "resourceType": "Observation",
        "id": f"o{i}",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": f"{i % 97}-{i % 7}"}]},
        "subject": {"reference": f"Patient/p{i % 40}"},
        "note": [{"text": f"reading {i} taken at rest, repeated if above {100 + i % 50}"}],
    }


def test_a_rolled_back_load_takes_its_dictionary_with_it(tmp_path) -> None:
    path = tmp_path / "r.db"
    st = Store(path)
    with pytest.raises(RuntimeError), st.bulk() as load:
        load.add(_obs(i) for i in range(20_000))  # the first batch trains a dictionary
        raise RuntimeError("the load fails after its first batches")
    assert st.connection.execute("SELECT COUNT(*) FROM pack_dict").fetchone()[0] == 0
    st.create(_obs(1))  # must not be packed with the dictionary that was rolled back
    st.close()
    assert Store(path).read("Observation", "o1")["note"] == _obs(1)["note"]


def test_a_store_filled_one_write_at_a_time_trains_a_dictionary(tmp_path) -> None:
    path = tmp_path / "w.db"
    st = Store(path)
    for i in range(2100):
        st.create(_obs(i))
    assert st.connection.execute("SELECT COUNT(*) FROM pack_dict").fetchone()[0] == 1
    blobs = dict(st.connection.execute("SELECT rid, LENGTH(blob) FROM versions"))
    assert blobs["o2099"] < blobs["o0"]  # packed with the dictionary, smaller
    st.close()
    again = Store(path)
    assert [again.read("Observation", f"o{i}") is not None for i in (0, 1999, 2099)] == [True] * 3
    assert again.read("Observation", "o2099")["note"] == _obs(2099)["note"]
