"""Store: create/read/vread/history, versions, conflicts, transactions, meta, encryption, rekey."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ehr_sandbox.errors import ConflictError, NotFound, ValidationError
from ehr_sandbox.search import parse
from ehr_sandbox.store import AlreadyExists, IdentityCodec, Store


class TickClock:
    """A deterministic clock: one second per call."""

    def __init__(self) -> None:
        self.t = datetime(2026, 1, 1, 8, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.t += timedelta(seconds=1)
        return self.t


def patient(pid: str = "p1", family: str = "Garcia", **extra: object) -> dict:
    return {
        "resourceType": "Patient",
        "id": pid,
        "name": [{"family": family, "given": ["Ana"]}],
        **extra,
    }


@pytest.fixture
def store() -> Store:
    return Store(clock=TickClock())


def test_create_read_vread_history(store: Store) -> None:
    created = store.create(patient())
    assert created["meta"]["versionId"] == "1"
    assert store.read("Patient", "p1") == created
    updated = store.update({**created, "gender": "female"}, expected_version="1")
    assert updated["meta"]["versionId"] == "2"
    assert updated["meta"]["lastUpdated"] > created["meta"]["lastUpdated"]
    assert store.vread("Patient", "p1", "1") == created
    assert store.vread("Patient", "p1", 2) == updated
    assert store.vread("Patient", "p1", "3") is None
    assert store.vread("Patient", "p1", "x") is None
    assert [v["meta"]["versionId"] for v in store.history("Patient", "p1")] == ["2", "1"]
    store.create(patient("p2"))
    assert [(v["id"], v["meta"]["versionId"]) for v in store.history("Patient")] == [
        ("p2", "1"),
        ("p1", "2"),
        ("p1", "1"),
    ]
    assert store.count("Patient") == 2 and store.exists("Patient", "p2")
    assert [p["id"] for p in store.iter_type("Patient")] == ["p1", "p2"]


def test_create_keeps_caller_dict_and_generates_deterministic_ids() -> None:
    original = {"resourceType": "Observation", "status": "final", "code": {"text": "x"}}
    a, b = Store(), Store()
    ra, rb = a.create(original), b.create(original)
    assert "id" not in original and "meta" not in original
    assert ra["id"] == rb["id"]
    assert a.create(original)["id"] != ra["id"]


def test_id_namespace_changes_generated_ids() -> None:
    a, b = Store(), Store()
    b.meta_set("store.id_namespace", "clinic-b")
    r = {"resourceType": "Patient"}
    assert a.create(r)["id"] != b.create(r)["id"]


def test_stale_update_names_both_versions(store: Store) -> None:
    v1 = store.create(patient())
    store.update(v1, expected_version="1")
    with pytest.raises(ConflictError) as err:
        store.update({**v1, "gender": "male"}, expected_version="1")
    assert err.value.expected == "1" and err.value.current == "2"
    assert "version 1" in str(err.value) and "version 2" in str(err.value)
    assert store.read("Patient", "p1")["meta"]["versionId"] == "2"
    assert "gender" not in store.read("Patient", "p1")


def test_create_existing_id_and_update_missing(store: Store) -> None:
    store.create(patient())
    with pytest.raises(AlreadyExists, match="Patient/p1 already exists"):
        store.create(patient())
    with pytest.raises(NotFound):
        store.update(patient("nobody"), expected_version="1")
    assert store.update(patient("new"))["meta"]["versionId"] == "1"


@pytest.mark.parametrize(
    ("bad", "path"),
    [
        ({"resourceType": "Nope"}, "resourceType"),
        ({"id": "x"}, "resourceType"),
        ({"resourceType": "Patient", "id": "bad id!"}, "id"),
        ({"resourceType": "Patient", "meta": "x"}, "meta"),
        ({"resourceType": "Patient", "x": {1, 2}}, "(resource)"),
    ],
)
def test_bad_resources_are_typed_errors_and_write_nothing(
    store: Store, bad: dict, path: str
) -> None:
    with pytest.raises(ValidationError) as err:
        store.create(bad)
    assert err.value.path == path
    assert store.types() == []


def test_transaction_is_all_or_nothing(store: Store) -> None:
    store.create(patient("keep"))
    with pytest.raises(RuntimeError), store.transaction():
        store.create(patient("a"))
        store.update({**patient("keep"), "gender": "male"})
        store.meta_set("k", 1)
        raise RuntimeError("boom")
    assert not store.exists("Patient", "a")
    assert store.read("Patient", "keep")["meta"]["versionId"] == "1"
    assert store.meta_get("k") is None
    assert store.search("Patient", parse("Patient", {"gender": "male"})) == []


def test_nested_transaction_joins_outer(store: Store) -> None:
    with pytest.raises(ValueError), store.transaction():
        store.create(patient("outer"))
        with store.transaction():
            store.create(patient("inner"))
        raise ValueError
    assert not store.exists("Patient", "outer") and not store.exists("Patient", "inner")
    with store.transaction():
        store.create(patient("outer"))
        try:
            with store.transaction():
                store.create(patient("inner"))
                raise KeyError
        except KeyError:
            pass
    assert store.exists("Patient", "outer") and not store.exists("Patient", "inner")


def test_conflict_inside_transaction_rolls_back_earlier_writes(store: Store) -> None:
    store.create(patient())
    store.update(patient(), expected_version="1")
    with pytest.raises(ConflictError), store.transaction():
        store.create(patient("x"))
        store.update(patient(), expected_version="1")
    assert not store.exists("Patient", "x")


def test_meta_values(store: Store) -> None:
    store.meta_set("users", [{"u": "ma.garcia"}])
    assert store.meta_get("users") == [{"u": "ma.garcia"}]
    store.meta_set("users", None)
    assert store.meta_get("users", "absent") == "absent"
    with pytest.raises(ValidationError):
        store.meta_set("k", object())


def test_file_store_uses_wal_and_persists(tmp_path: Path) -> None:
    path = tmp_path / "clinic.db"
    st = Store(path, clock=TickClock())
    st.create(patient())
    mode = st.connection.execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"
    st.close()
    again = Store(path)
    assert again.read("Patient", "p1")["name"][0]["family"] == "Garcia"
    again.close()


def test_reader_is_not_blocked_by_a_writer(tmp_path: Path) -> None:
    path = tmp_path / "clinic.db"
    writer = Store(path, clock=TickClock())
    writer.create(patient("before"))
    reader = sqlite3.connect(path, timeout=0.1)
    with writer.transaction():
        writer.create(patient("during"))
        rows = reader.execute("SELECT rid FROM resources ORDER BY seq").fetchall()
        assert rows == [("before",)]  # snapshot read while the write transaction is open
    assert reader.execute("SELECT COUNT(*) FROM resources").fetchone()[0] == 2
    reader.close()
    writer.close()


def test_query_for_another_type_is_refused(store: Store) -> None:
    with pytest.raises(ValidationError):
        store.search("Patient", parse("Observation", {}))


def test_reindex_rebuilds_the_index(store: Store) -> None:
    store.create(patient(gender="female"))
    store.connection.execute("DELETE FROM search_index")
    assert store.search("Patient", parse("Patient", {"gender": "female"})) == []
    assert store.reindex() == 1
    assert [p["id"] for p in store.search("Patient", parse("Patient", {"gender": "female"}))] == [
        "p1"
    ]


def test_a_store_indexed_by_another_registry_is_reindexed_when_opened(tmp_path: Path) -> None:
    from ehr_sandbox.search.registry import registry_fingerprint

    path = tmp_path / "old.db"
    old = Store(path, clock=TickClock())
    old.create(patient(gender="female"))
    # as a store written by a version whose registry lacked the parameter: no index row for
    # it, and that version's fingerprint
    old.connection.execute("DELETE FROM search_index WHERE param = 'gender'")
    old.meta_set("store.index_version", "0123456789abcdef")
    old.close()
    reopened = Store(path)
    found = reopened.search("Patient", parse("Patient", {"gender": "female"}))
    assert [p["id"] for p in found] == ["p1"]
    assert reopened.meta_get("store.index_version") == registry_fingerprint()
    reopened.close()


# --------------------------------------------------------------------------- encryption at rest
crypto = pytest.importorskip("ehr_sandbox.crypto", reason="needs the crypto module (AES-GCM codec)")

SECRET_FAMILY = "Zyxwvutsrq"
SECRET_MRN = "MRN-99887766"
SECRET_CODE = "8480-6"


def _secret_resources() -> list[dict]:
    pat = patient(
        "p1",
        SECRET_FAMILY,
        gender="female",
        birthDate="1961-07-14",
        identifier=[{"system": "http://ehr-sandbox.org/fhir/mrn", "value": SECRET_MRN}],
    )
    obs = {
        "resourceType": "Observation",
        "id": "o1",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": SECRET_CODE}]},
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": "2025-03-04T10:00:00+00:00",
        "valueQuantity": {
            "value": 187.5,
            "unit": "mm[Hg]",
            "system": "http://unitsofmeasure.org",
            "code": "mm[Hg]",
        },
    }
    return [pat, obs]


def _encrypted_store(path: Path) -> Store:
    codec = crypto.AesGcmCodec(crypto.MasterKey.generate())
    st = Store(path, codec=codec, clock=TickClock())
    for r in _secret_resources():
        st.create(r)
    return st


def _db_bytes(path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))


def test_no_plaintext_patient_data_in_encrypted_file(tmp_path: Path) -> None:
    path = tmp_path / "enc.db"
    st = _encrypted_store(path)
    raw = _db_bytes(path)
    for secret in (
        SECRET_FAMILY,
        SECRET_FAMILY.lower(),
        SECRET_MRN,
        SECRET_CODE,
        "1961-07-14",
        "187.5",
        "Patient/p1",
    ):
        assert secret.encode() not in raw, secret
    st.close()
    raw = _db_bytes(path)
    # "1961-07", not "1961": a bare 4-digit string turns up by chance in hex MACs and random ids
    for secret in (SECRET_FAMILY, SECRET_MRN, SECRET_CODE, "1961-07"):
        assert secret.encode() not in raw, secret


def test_plaintext_store_does_contain_the_values(tmp_path: Path) -> None:
    path = tmp_path / "plain.db"
    st = Store(path, clock=TickClock())
    for r in _secret_resources():
        st.create(r)
    assert SECRET_FAMILY.encode() in _db_bytes(path)  # the encrypted test above could fail
    st.close()


@pytest.mark.parametrize(
    "params",
    [
        {"family": "zyx"},
        {"family:exact": SECRET_FAMILY},
        {"identifier": f"http://ehr-sandbox.org/fhir/mrn|{SECRET_MRN}"},
        {"birthdate": "1961"},
        {"birthdate": "ge1961-07-14", "gender": "female"},
        {"gender": "male"},
        {"name:contains": "vuts"},
    ],
)
def test_encrypted_search_matches_plaintext_search(tmp_path: Path, params: dict) -> None:
    enc = _encrypted_store(tmp_path / "enc.db")
    plain = Store(clock=TickClock())
    for r in _secret_resources():
        plain.create(r)
    q = parse("Patient", params)
    assert [r["id"] for r in enc.search("Patient", q)] == [
        r["id"] for r in plain.search("Patient", q)
    ]
    enc.close()


def test_encrypted_observation_search_with_chain_and_quantity(tmp_path: Path) -> None:
    enc = _encrypted_store(tmp_path / "enc.db")
    q = parse(
        "Observation",
        {"subject:Patient.family": "zyx", "value-quantity": "gt180", "date": "2025-03"},
    )
    assert [r["id"] for r in enc.search("Observation", q)] == ["o1"]
    q = parse("Observation", {"patient": "Patient/p1", "value-quantity": "lt180"})
    assert enc.search("Observation", q) == []
    enc.close()


def test_rekey_reseals_rows_and_reblinds_the_index(tmp_path: Path) -> None:
    path = tmp_path / "enc.db"
    st = _encrypted_store(path)
    old_blob = st.connection.execute("SELECT blob FROM versions WHERE rid = 'p1'").fetchone()[0]
    old_index = {
        r[0] for r in st.connection.execute("SELECT s FROM search_index WHERE param = 'identifier'")
    }
    new = crypto.AesGcmCodec(crypto.MasterKey.generate())
    assert st.rekey(new) == 2
    assert (
        st.connection.execute("SELECT blob FROM versions WHERE rid = 'p1'").fetchone()[0]
        != old_blob
    )
    new_index = {
        r[0] for r in st.connection.execute("SELECT s FROM search_index WHERE param = 'identifier'")
    }
    assert new_index and new_index.isdisjoint(old_index)
    key_ids = {r[0] for r in st.connection.execute("SELECT key_id FROM versions")}
    assert key_ids == {new.key_id}
    assert st.read("Patient", "p1")["identifier"][0]["value"] == SECRET_MRN
    found = st.search("Patient", parse("Patient", {"identifier": SECRET_MRN}))
    assert [p["id"] for p in found] == ["p1"]
    st.close()


def test_failed_rekey_changes_nothing(tmp_path: Path) -> None:
    st = _encrypted_store(tmp_path / "enc.db")
    before = st.connection.execute("SELECT blob FROM versions ORDER BY rowid").fetchall()

    class Broken(IdentityCodec):
        encrypting = True

        def seal(self, aad: str, data: bytes) -> bytes:
            if "o1" in aad:
                raise RuntimeError("disk full")
            return data

    with pytest.raises(RuntimeError):
        st.rekey(Broken())
    assert st.connection.execute("SELECT blob FROM versions ORDER BY rowid").fetchall() == before
    assert st.read("Observation", "o1")["status"] == "final"
    st.close()


def test_wrong_key_cannot_read(tmp_path: Path) -> None:
    path = tmp_path / "enc.db"
    _encrypted_store(path).close()
    other = Store(path, codec=crypto.AesGcmCodec(crypto.MasterKey.generate()))
    with pytest.raises(crypto_error()):
        other.read("Patient", "p1")
    other.close()


def crypto_error() -> type[Exception]:
    from ehr_sandbox.errors import CryptoError

    return CryptoError


def test_a_file_that_is_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "notes.db"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(ValidationError, match="an ehr-sandbox SQLite database"):
        Store(bad)


def test_a_type_is_read_in_insertion_order_across_pages_without_a_sort(tmp_path: Path) -> None:
    # Reading a type page by page must walk an index in insertion order: a plan that sorts the
    # whole type for every page is quadratic (a 65,000-Observation report spent seconds there).
    path = tmp_path / "s.db"
    st = Store(path)
    ids = []
    with st.transaction():
        for i in range(1203):  # more than two pages, interleaved with another type
            ids.append(st.create({"resourceType": "Observation", "status": "final"})["id"])
            if i % 3 == 0:
                st.create({"resourceType": "Patient"})
    assert [r["id"] for r in st.iter_type("Observation")] == ids
    plan = " ".join(
        row[3]
        for row in st.connection.execute(
            "EXPLAIN QUERY PLAN SELECT r.seq, r.rid, r.vid, v.blob FROM resources r JOIN versions v "
            "ON v.rowid = r.vrow WHERE r.rtype = ? AND r.seq > ? ORDER BY r.seq LIMIT ?",
            ("Observation", 0, 500),
        )
    )
    assert "TEMP B-TREE" not in plan
    st.close()
    # A file made before the index existed gets it when opened, and reads the same.
    con = sqlite3.connect(path)
    con.execute("DROP INDEX resources_type_seq")
    con.commit()
    con.close()
    again = Store(path)
    assert [r["id"] for r in again.iter_type("Observation")] == ids
    names = {r[0] for r in again.connection.execute("SELECT name FROM sqlite_master")}
    assert "resources_type_seq" in names
    again.close()
