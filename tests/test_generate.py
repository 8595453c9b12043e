"""Generator output: FHIR validity, references, labels, ids, determinism and argument errors."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import synthetic
from synthetic.content import load_content
from synthetic.errors import ArgumentError
from synthetic.fhir import validate
from synthetic.ids import valid_id

PRESETS = sorted(load_content().populations)
CONFIDENTIALITY = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
FORBIDDEN_SYSTEMS = ("http://www.ama-assn.org/go/cpt", "http://www.ada.org/cdt")


def references(obj: Any) -> Iterator[str]:
    """Every ``reference`` string inside a resource."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k == "reference" and isinstance(v, str):
                yield v
            else:
                yield from references(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from references(v)


def practice_keys(population: str) -> set[str]:
    return {
        f"{r['resourceType']}/{r['id']}"
        for r in synthetic.practice_resources(population=population)
    }


@pytest.mark.parametrize("population", PRESETS)
@pytest.mark.parametrize("seed", [1, 2])
def test_every_resource_validates_and_every_reference_resolves(population: str, seed: int) -> None:
    known = practice_keys(population)
    problems: list[str] = []
    for rec in synthetic.generate(6, seed=seed, years=3, population=population):
        local = {f"{r['resourceType']}/{r['id']}" for r in rec.all()}
        assert len(local) == rec.count(), "ids repeat inside a record"
        for r in rec.all():
            for path, msg in validate(r):
                problems.append(f"{r['resourceType']}/{r['id']} {path}: {msg}")
            for ref in references(r):
                if ref not in local and ref not in known:
                    problems.append(f"{r['resourceType']}/{r['id']} -> {ref} does not resolve")
    assert problems == []


@pytest.mark.parametrize("population", PRESETS)
def test_practice_resources_validate(population: str) -> None:
    resources = synthetic.practice_resources(population=population, reference_date="2026-03-02")
    by_type: dict[str, list[dict[str, Any]]] = {}
    for r in resources:
        by_type.setdefault(r["resourceType"], []).append(r)
    assert {
        "Organization",
        "Location",
        "Practitioner",
        "PractitionerRole",
        "Schedule",
        "Slot",
    } <= set(by_type)
    keys = {f"{r['resourceType']}/{r['id']}" for r in resources}
    for rtype, items in by_type.items():
        for r in items[:25]:  # slots are many and alike
            assert validate(r) == [], rtype
            for ref in references(r):
                assert ref in keys


def test_staff_roster_follows_the_contract() -> None:
    resources = synthetic.practice_resources()
    usernames = {
        i["value"]
        for r in resources
        if r["resourceType"] == "Practitioner"
        for i in r["identifier"]
        if i["system"] == "http://ehr-sandbox.org/fhir/username"
    }
    roles = {
        r["practitioner"]["reference"]: r["code"][0]["coding"][0]["code"]
        for r in resources
        if r["resourceType"] == "PractitionerRole"
    }
    assert {"dr.patel", "ma.garcia", "fd.smith", "po.wilson", "admin.root"} <= usernames
    assert len(roles) == len(usernames)
    assert set(roles.values()) <= {
        "front_desk",
        "medical_assistant",
        "nurse",
        "physician",
        "billing",
        "privacy_officer",
        "instructor",
        "admin",
    }


def test_labels_tags_and_ids() -> None:
    for rec in synthetic.generate(15, seed=5, years=4):
        for r in rec.all():
            meta = r["meta"]
            assert {
                "system": "http://ehr-sandbox.org/CodeSystem/tags",
                "code": "synthetic",
            }.items() <= meta["tag"][0].items()
            conf = [s["code"] for s in meta["security"] if s["system"] == CONFIDENTIALITY]
            assert len(conf) == 1 and conf[0] in ("N", "R")
            if conf[0] == "N":
                assert len(meta["security"]) == 1
            assert valid_id(r["id"])


def test_patient_identity_and_care_team() -> None:
    recs = list(synthetic.generate(20, seed=9, years=2))
    mrns = [
        i["value"]
        for rec in recs
        for i in rec.patient["identifier"]
        if i["system"] == "http://ehr-sandbox.org/fhir/mrn"
    ]
    assert len(set(mrns)) == len(recs)
    physicians = {
        r["practitioner"]["reference"]
        for r in synthetic.practice_resources()
        if r["resourceType"] == "PractitionerRole"
        and r["code"][0]["coding"][0]["code"] == "physician"
    }
    assert len(physicians) >= 3
    for rec in recs:
        assert rec.patient["generalPractitioner"][0]["reference"] in physicians


def test_no_cpt_or_cdt_anywhere() -> None:
    import orjson

    blob = b"".join(orjson.dumps(r) for rec in synthetic.generate(25, seed=4) for r in rec.all())
    blob += orjson.dumps(synthetic.practice_resources())
    for system in FORBIDDEN_SYSTEMS:
        assert system.encode() not in blob


def test_generate_is_deterministic_and_index_addressable() -> None:
    import orjson

    a = [orjson.dumps(list(r.all())) for r in synthetic.generate(6, seed=11, years=3)]
    b = [orjson.dumps(list(r.all())) for r in synthetic.generate(3, seed=11, years=3, start=3)]
    c = [orjson.dumps(list(r.all())) for r in synthetic.generate(6, seed=12, years=3)]
    assert a[3:] == b
    assert a != c


def test_this_weeks_schedule_exists() -> None:
    from datetime import date

    ref = date(2026, 3, 4)  # a Wednesday
    statuses: dict[str, int] = {}
    today = 0
    for rec in synthetic.generate(150, seed=3, years=1, reference_date=ref):
        for r in rec.by_type("Appointment"):
            statuses[r["status"]] = statuses.get(r["status"], 0) + 1
            if r.get("start", "").startswith(ref.isoformat()):  # recalls, waitlist: no start
                today += 1
                assert r["status"] == "booked"
    assert today > 0
    assert statuses.get("fulfilled", 0) > 0 and statuses.get("booked", 0) > 0


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"n": -1}, "n:"),
        ({"n": 1, "reference_date": "2026-02-30"}, "reference_date:"),
        ({"n": 1, "reference_date": "yesterday"}, "reference_date:"),
        ({"n": 1, "population": "dentistry"}, "population:"),
        ({"n": 1, "years": 0}, "years:"),
        ({"n": 1, "start": -5}, "start:"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs: dict[str, Any], argument: str) -> None:
    n = kwargs.pop("n")
    with pytest.raises(ArgumentError) as err:
        synthetic.generate(n, **kwargs)
    assert str(err.value).startswith(argument)
    assert "expected" in str(err.value)


def test_a_record_does_not_depend_on_what_the_process_made_before() -> None:
    """Caches (bands, quantities, labels) must never leak one patient's values into another's."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    script = (
        "import sys, hashlib, orjson, synthetic\n"
        "order = [int(x) for x in sys.argv[1].split(',')]\n"
        "recs = {i: next(synthetic.generate(1, seed=3, start=i, years=4)) for i in order}\n"
        "print(hashlib.sha256(b''.join(orjson.dumps(list(recs[i].all())) for i in sorted(recs))).hexdigest())\n"
    )
    forward = ",".join(str(i) for i in range(12))
    backward = ",".join(str(i) for i in reversed(range(12)))
    digests = {
        subprocess.run(
            [sys.executable, "-c", script, order],
            capture_output=True,
            text=True,
            check=True,
            cwd=root,
        ).stdout
        for order in (forward, backward)
    }
    assert len(digests) == 1


def test_weight_dosing_does_not_depend_on_which_condition_was_dosed_first() -> None:
    """One RxNorm code may be prescribed for several conditions with different dosages; a
    weight-dosed prescription must follow its own drug and the weight rule, whatever order
    the process met them in (else the bytes depend on the number of workers)."""
    from synthetic.engine import engine_for
    from synthetic.visit.prescribing import Prescribing

    eng = engine_for(seed=1, reference_date="2026-01-01", years=2, population="family-practice")
    rules = eng.rules.weight_doses
    drugs = [
        d
        for cond in eng.cat.conditions.values()
        for group in cond.drug_groups
        for d in group
        if d.key in rules
    ]
    shared = [k for k in rules if sum(d.key == k for d in drugs) > 1]
    assert shared, "content has no weight-dosed drug in two conditions: nothing to check"
    forward, backward = Prescribing(eng), Prescribing(eng)
    a = [forward.dosed(d, 14.0) for d in drugs]
    b = [backward.dosed(d, 14.0) for d in reversed(drugs)][::-1]
    for d, x, y in zip(drugs, a, b, strict=True):
        assert x == y
        assert x.indication == d.indication
        assert x.dosage[0]["timing"]["repeat"]["frequency"] == rules[d.key].doses_per_day


@pytest.mark.parametrize("population", ["family-practice", "ob-gyn"])
def test_making_records_leaves_no_reference_cycles(population: str) -> None:
    """Runs disable the cyclic collector (records are acyclic), so any cycle made while a
    record is built is memory that is never freed: memory would grow with the dataset.

    Measured in a fresh process: in the test process, threads other tests leave running
    (servers, pools) make garbage of their own while the collector is off."""
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent(
        f"""
        import gc
        from synthetic.engine import engine_for
        eng = engine_for(seed=2, reference_date="2026-01-01", years=5, population={population!r})
        eng.patient(0)  # warm the engine's own caches
        gc.collect()
        gc.disable()
        made = sum(eng.patient(i).count() for i in range(1, 25))
        print(made, gc.collect())
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    made, unreachable = map(int, out.stdout.split())
    assert made > 24
    assert unreachable == 0


def test_ndjson_sink_writes_every_line_of_many_records_in_order(tmp_path: Any) -> None:
    """More records than one system call may take buffers (IOV_MAX): all lines, in order."""
    import orjson

    from synthetic.record import PatientRecord
    from synthetic.writers.ndjson import NdjsonSink

    n = 2600
    counts: dict[str, int] = {}
    with NdjsonSink(tmp_path) as sink:
        for i in range(n):
            obs = {"resourceType": "Observation", "id": f"o{i}"}
            sink.write_record(
                PatientRecord(i, {"resourceType": "Patient", "id": f"p{i}"}, [obs]), None, counts
            )
        sink.count_into(counts)
    patients = (tmp_path / "Patient.ndjson").read_bytes().splitlines()
    assert [orjson.loads(x)["id"] for x in patients] == [f"p{i}" for i in range(n)]
    assert len((tmp_path / "Observation.ndjson").read_bytes().splitlines()) == n
    assert counts == {"Patient": n, "Observation": n}
    assert sink.bytes_written == sum(p.stat().st_size for p in tmp_path.iterdir())


def test_ndjson_sink_lets_go_of_each_resource_it_has_written(tmp_path: Any) -> None:
    """The sink is a record's last reader: resources are freed as written, not with the record."""
    from synthetic.record import PatientRecord
    from synthetic.writers.ndjson import NdjsonSink

    freed: list[str] = []

    class Tracked(dict):  # orjson encodes dict subclasses as objects
        def __del__(self) -> None:
            freed.append(self["id"])

    record = PatientRecord(
        0,
        {"resourceType": "Patient", "id": "p"},
        [Tracked(resourceType="Observation", id=f"o{i}") for i in range(5)],
    )
    with NdjsonSink(tmp_path) as sink:
        sink.write_record(record, None, {})
        assert freed == [f"o{i}" for i in range(5)]  # while the record itself is still held
    lines = (tmp_path / "Observation.ndjson").read_text().splitlines()
    assert [line.split('"id":"')[1].split('"')[0] for line in lines] == [f"o{i}" for i in range(5)]
