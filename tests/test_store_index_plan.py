"""The index plan and the bulk load: a store that indexes only some parameters finds exactly
what a store indexing every parameter finds (any parameters, modifiers, sorts, encryption),
and a bulk load is all-or-nothing, even when its process is killed."""

from __future__ import annotations

import copy
import math
import os
import signal
import sqlite3
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import synthetic
from ehr_sandbox import crypto
from ehr_sandbox.errors import SearchError
from ehr_sandbox.search import parse
from ehr_sandbox.search.extract import param_rows
from ehr_sandbox.search.registry import params_for
from ehr_sandbox.store import AlreadyExists, Store
from ehr_sandbox.store import index_plan as plans

ROOT = Path(__file__).resolve().parents[1]
REF = date(2026, 1, 1)
TYPES = ["Observation", "Encounter", "Patient", "Condition", "Appointment", "Slot", "Task"]
SETTINGS = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "120")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _clinic() -> list[dict[str, Any]]:
    out = synthetic.practice_resources(seed=21, reference_date=REF, years=2, patients=3)
    for rec in synthetic.generate(3, seed=21, reference_date=REF, years=2):
        out.extend(rec.all())
    # our own copies: generated resources share frozen parts (meta among them) with others
    out = copy.deepcopy(out)
    # a few labelled resources: security labels must stay searchable under any plan
    for k, r in enumerate(x for x in out if x["resourceType"] == "Observation"):
        if k % 5 == 0:
            meta = r.setdefault("meta", {})
            meta["security"] = [
                *meta.get("security", []),
                {"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"},
            ]
    return out


RESOURCES = _clinic()


def _load(store: Store) -> Store:
    with store.bulk() as load:
        load.add(RESOURCES)
    return store


def _ticks() -> Any:
    """The same clock for every store (``_lastUpdated`` values must agree between them)."""
    start, n = datetime(2026, 1, 1, tzinfo=UTC), [0]

    def now() -> datetime:
        n[0] += 1
        return start + timedelta(seconds=n[0] // 7)  # ties too: a sort must keep them stable

    return now


ALL = _load(Store(index_plan=plans.ALL, clock=_ticks()))
PLANNED = _load(Store(clock=_ticks()))
V1 = _load(Store(index_plan=plans.DRIVERS_V1, clock=_ticks()))  # a store of the previous plan
SAMPLES = {t: [r for r in RESOURCES if r["resourceType"] == t] for t in TYPES}


def _day(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).date().isoformat()


def _value_from(ptype: str, row: tuple, prefix: str) -> str | None:
    """A search value that matches (or nearly matches) one index row."""
    _, s, x, sys_, lo, _hi, num = row
    if ptype in ("token", "uri"):
        if s is None:
            return None
        return f"{sys_}|{s}" if sys_ and prefix != "bare" else s
    if ptype == "reference":
        return s
    if ptype == "string":
        return (s or "")[:3] or None
    if ptype == "date":
        if lo is None or not math.isfinite(lo):
            return None
        return {"bare": "", "ge": "ge", "lt": "lt", "ne": "ne"}.get(prefix, "") + _day(lo)
    if ptype in ("quantity", "number"):
        return (
            None
            if num is None
            else {"bare": "", "ge": "ge", "lt": "lt"}.get(prefix, "") + f"{num:g}"
        )
    return None


@st.composite
def clause(draw: st.DrawFn, rtype: str) -> tuple[str, str]:
    params = sorted(n for n, p in params_for(rtype).items() if p.type != "special")
    name = draw(st.sampled_from(params))
    p = params_for(rtype)[name]
    how = draw(st.sampled_from(["value", "value", "missing", "not", "other"]))
    if how == "missing":
        return (f"{name}:missing", draw(st.sampled_from(["true", "false"])))
    resource = draw(st.sampled_from(SAMPLES[rtype]))
    rows = param_rows(p, resource)
    if how == "other" or not rows:  # a value taken from another resource (or none at all)
        rows = param_rows(p, draw(st.sampled_from(SAMPLES[rtype]))) or rows
    if not rows:
        return (f"{name}:missing", "true")
    row = draw(st.sampled_from(rows))
    value = _value_from(p.type, row, draw(st.sampled_from(["bare", "ge", "lt", "ne"])))
    if value is None:
        return (f"{name}:missing", "false")
    if how == "not" and p.type in ("token", "uri"):
        return (f"{name}:not", value)
    return (name, value)


@st.composite
def query(draw: st.DrawFn) -> tuple[str, list[tuple[str, str]]]:
    rtype = draw(st.sampled_from(TYPES))
    clauses = draw(st.lists(clause(rtype), min_size=1, max_size=3))
    if draw(st.booleans()):
        sortable = sorted(
            n
            for n, p in params_for(rtype).items()
            if p.type in ("date", "token", "string", "quantity")
        )
        keys = draw(st.lists(st.sampled_from(sortable), min_size=1, max_size=2, unique=True))
        clauses.append(("_sort", ",".join(("-" if draw(st.booleans()) else "") + k for k in keys)))
    return rtype, clauses


def _ids(store: Store, rtype: str, params: list[tuple[str, str]]) -> tuple[list, list, list]:
    q = parse(rtype, params)
    return (
        store.search_ids(rtype, q),
        [r["id"] for r in store.search(rtype, q)],
        [r["id"] for r in store.search_iter(rtype, q)],
    )


def test_the_plan_leaves_parameters_out_of_the_index() -> None:
    def params_in(store: Store) -> set[str]:
        return {r[0] for r in store.connection.execute("SELECT DISTINCT param FROM search_index")}

    def status_types(store: Store) -> set[str]:
        sql = "SELECT DISTINCT rtype FROM search_index WHERE param = 'status'"
        return {r[0] for r in store.connection.execute(sql)}

    assert {"_security", "_tag", "status", "category"} <= params_in(ALL)
    left_out = {"_security", "_tag", "_profile", "_lastUpdated", "category"}
    assert not left_out & params_in(PLANNED)
    assert {"patient", "code", "date", "encounter"} <= params_in(PLANNED)
    # statuses only where relationships filter on them; none in a store of the older plan
    assert status_types(PLANNED) == {"Appointment", "Encounter"} < status_types(ALL)
    assert not status_types(V1) and not left_out & params_in(V1)
    n_all = ALL.connection.execute("SELECT COUNT(*) FROM search_index").fetchone()[0]
    n_planned = PLANNED.connection.execute("SELECT COUNT(*) FROM search_index").fetchone()[0]
    assert n_planned < 0.7 * n_all


@SETTINGS
@given(q=query())
def test_a_planned_index_finds_what_a_full_index_finds(q: tuple[str, list]) -> None:
    rtype, params = q
    try:
        expected = _ids(ALL, rtype, params)
    except SearchError:
        with pytest.raises(SearchError):
            _ids(PLANNED, rtype, params)
        return
    assert _ids(PLANNED, rtype, params) == expected
    assert _ids(V1, rtype, params) == expected


def _scan(rtype: str, pred: Any) -> list[str]:
    return [r["id"] for r in PLANNED.iter_type(rtype) if pred(r)]


def _labels(r: dict[str, Any]) -> set[str]:
    return {c.get("code") for c in (r.get("meta") or {}).get("security", [])}


@pytest.mark.parametrize("rtype", ["Observation", "Encounter"])
def test_security_labels_are_found_as_a_scan_finds_them(rtype: str) -> None:
    restricted = _scan(rtype, lambda r: "R" in _labels(r))
    assert PLANNED.search_ids(rtype, parse(rtype, {"_security": "R"})) == restricted
    assert PLANNED.search_ids(rtype, parse(rtype, {"_security:not": "R"})) == _scan(
        rtype, lambda r: "R" not in _labels(r)
    )
    if rtype == "Observation":
        assert restricted
        pref = next(r for r in RESOURCES if r["resourceType"] == "Patient")["id"]
        q = parse(rtype, {"_security": "R", "patient": f"Patient/{pref}"})
        assert PLANNED.search_ids(rtype, q) == _scan(
            rtype,
            lambda r: "R" in _labels(r) and r["subject"]["reference"] == f"Patient/{pref}",
        )
    # written after the load: found at once, by the same path
    new = PLANNED.create(
        {
            "resourceType": rtype,
            "status": "final" if rtype == "Observation" else "finished",
            "code": {"text": "x"},
            "class": {"code": "AMB"},
            "meta": {"security": [{"code": "R"}]},
        }
    )
    assert new["id"] in PLANNED.search_ids(rtype, parse(rtype, {"_security": "R"}))


def test_an_encrypted_store_with_the_plan_finds_what_the_full_index_finds(tmp_path: Path) -> None:
    enc = Store(
        tmp_path / "e.db", codec=crypto.AesGcmCodec(crypto.MasterKey.generate()), clock=_ticks()
    )
    _load(enc)
    pid = next(r for r in RESOURCES if r["resourceType"] == "Patient")["id"]
    for rtype, params in [
        ("Observation", [("patient", f"Patient/{pid}"), ("status", "final")]),
        ("Observation", [("_security", "R"), ("_sort", "-date")]),
        ("Observation", [("category", "vital-signs"), ("value-quantity", "gt80")]),
        ("Encounter", [("status", "finished"), ("_sort", "-date,status")]),
        ("Slot", [("status", "free"), ("start", "ge2026-01-01")]),
    ]:
        assert _ids(enc, rtype, params) == _ids(ALL, rtype, params), params
    enc.close()


def test_a_failed_bulk_load_writes_nothing_and_keeps_the_index_b_trees() -> None:
    st = Store()
    st.create({"resourceType": "Patient", "id": "taken"})

    def indexes() -> set[str]:
        rows = st.connection.execute("SELECT name FROM sqlite_master WHERE type = 'index'")
        return {r[0] for r in rows}

    before = indexes()
    many = [{"resourceType": "Observation", "id": f"o{i}", "status": "final"} for i in range(9000)]
    with pytest.raises(AlreadyExists, match="Patient/taken"), st.bulk() as load:
        load.add(many)  # two batches are written before the bad one
        load.add([{"resourceType": "Patient", "id": "taken"}])
    assert st.count("Observation") == 0 and st.types() == ["Patient"]
    assert indexes() == before
    assert st.connection.execute("SELECT COUNT(*) FROM search_index").fetchone()[0] == 0


KILLED = r"""
import sys, time
from ehr_sandbox.store import Store
st = Store(sys.argv[1])
def resources():
    for i in range(100_000):
        if i == 12_000:  # three batches are written, inside the one open transaction
            sys.stdout.write("mid\n"); sys.stdout.flush(); time.sleep(60)
        yield {"resourceType": "Observation", "id": f"o{i}", "status": "final",
               "code": {"text": "x"}, "subject": {"reference": "Patient/p"}}
with st.bulk() as load:
    load.add(resources())
"""


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL (POSIX)")
def test_a_bulk_load_killed_midway_leaves_the_previous_state(tmp_path: Path) -> None:
    db = tmp_path / "k.db"
    st = Store(db)
    st.create({"resourceType": "Patient", "id": "p"})
    st.close()
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED, str(db)], stdout=subprocess.PIPE, env=env, text=True
    )
    assert proc.stdout is not None
    try:
        assert proc.stdout.readline().strip() == "mid"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    names = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {"search_index_value", "search_index_seq_param"} <= names
    con.close()
    again = Store(db)
    assert again.types() == ["Patient"] and again.count("Observation") == 0
    again.close()


def test_a_store_made_before_plans_reads_as_fully_indexed(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    old = Store(path)
    _ = old.create({"resourceType": "Observation", "id": "o", "status": "final"})
    old.connection.execute("DELETE FROM sandbox_meta WHERE key = ?", (plans.PLAN_KEY,))
    old.connection.execute(
        "INSERT INTO search_index (rtype, seq, param, s) VALUES ('Observation', 1, 'status', 'final')"
    )
    old.close()
    reopened = Store(path)  # no plan recorded: every parameter is read from the index
    assert reopened.search_ids("Observation", parse("Observation", {"status": "final"})) == ["o"]
    reopened.connection.execute("DELETE FROM search_index WHERE param = 'status'")
    assert reopened.search_ids("Observation", parse("Observation", {"status": "final"})) == []
    assert reopened.reindex() == 1  # a rebuilt index follows the current plan
    assert reopened.search_ids("Observation", parse("Observation", {"status": "final"})) == ["o"]
    reopened.close()


def test_a_generation_that_fails_midway_leaves_no_half_clinic(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ehr_sandbox.sandbox import Sandbox

    real = synthetic.generate

    def failing(*args: Any, **kwargs: Any) -> Any:
        for k, rec in enumerate(real(*args, **kwargs)):
            if k == 3:
                raise RuntimeError("the generator broke after three patients")
            yield rec

    monkeypatch.setattr(synthetic, "generate", failing)
    path = tmp_path / "clinic.db"
    with pytest.raises(RuntimeError, match="three patients"):
        Sandbox.generate(patients=5, seed=4, years=2, path=path)
    st = Store(path)
    assert st.count("Patient") == 0 and st.count("Observation") == 0
    assert st.meta_get("sealed/users") is None and st.count("Provenance") == 0
    st.close()
    monkeypatch.setattr(synthetic, "generate", real)
    whole = Sandbox.generate(patients=5, seed=4, years=2)
    assert whole.grader_session().search("Patient").count() == 5


def test_an_unknown_index_plan_is_a_clear_error(tmp_path: Path) -> None:
    from ehr_sandbox.errors import ValidationError

    with pytest.raises(ValidationError, match="index_plan"):
        Store(index_plan="everything-please")
    path = tmp_path / "future.db"
    st = Store(path)
    st.meta_set(plans.PLAN_KEY, "from-a-later-version")
    st.close()
    with pytest.raises(ValidationError, match="index plan"):
        Store(path)
