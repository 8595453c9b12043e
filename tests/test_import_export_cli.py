"""Import and export through the Session and the CLI: the Synthea sample, a bad bundle, errors."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from conftest import shared_path
from ehr_sandbox.cli.app import main
from ehr_sandbox.errors import ValidationError
from ehr_sandbox.sandbox import Sandbox


def _synthea_files() -> list[Path]:
    folder = shared_path("data", "synthea-r4-sample")
    files = sorted(folder.glob("*.json"))
    shared = [
        f for f in files if f.name.startswith(("hospitalInformation", "practitionerInformation"))
    ]
    return shared + [f for f in files if f not in shared]


def _expected_counts(files: list[Path]) -> Counter[str]:
    """Distinct resources by type (the shared Organizations appear in several files)."""
    seen: set[tuple[str, str]] = set()
    for f in files:
        for e in json.loads(f.read_text(encoding="utf-8")).get("entry", []):
            seen.add((e["resource"]["resourceType"], e["resource"]["id"]))
    return Counter(t for t, _ in seen)


@pytest.fixture(scope="module")
def imported(tmp_path_factory) -> tuple[Path, list[Path]]:
    files = _synthea_files()
    db = tmp_path_factory.mktemp("synthea") / "clinic.db"
    # Synthea writes a few units that are not UCUM ("(score)", "units"): kept as text only
    assert main(["import", *map(str, files), "--db", str(db), "--units", "as-text"]) == 0
    return db, files


def _has_non_ucum_unit(node: object) -> bool:
    """Independent of the validator: UCUM never holds parentheses or the word 'units'."""
    if isinstance(node, dict):
        if node.get("system") == "http://unitsofmeasure.org" and node.get("code") in (
            "(score)",
            "units",
        ):
            return True
        return any(_has_non_ucum_unit(v) for v in node.values())
    if isinstance(node, list):
        return any(_has_non_ucum_unit(v) for v in node)
    return False


def test_synthea_files_with_non_ucum_units_are_refused_by_default(tmp_path, capsys) -> None:
    files = _synthea_files()
    with_bad_units = {f.name for f in files if _has_non_ucum_unit(json.loads(f.read_bytes()))}
    assert with_bad_units  # the sample does carry such units
    db = tmp_path / "strict.db"
    assert main(["import", *map(str, files), "--db", str(db)]) == 2
    assert not db.exists()  # a new file is not kept when any file is refused
    out = capsys.readouterr()
    text = " ".join((out.out + out.err).split())
    refused = {f.name for f in files if f"not imported: {f.name}" in text}
    assert refused == with_bad_units
    assert "valueQuantity.code: expected a UCUM unit code" in text


def test_synthea_counts_by_type_match_the_files(imported) -> None:
    db, files = imported
    sb = Sandbox.open(db)
    try:
        expected = _expected_counts(files)
        assert len(files) == 24
        # Synthea has no sandbox staff, so the import adds the default practice's staff: one
        # Practitioner and one PractitionerRole per account
        staff = len(sb.users)
        assert staff > 0
        for rtype, n in expected.items():
            added = staff if rtype in ("Practitioner", "PractitionerRole") else 0
            assert sb._store.count(rtype) == n + added, rtype
    finally:
        sb.close()


def test_synthea_every_reference_resolves(imported) -> None:
    db, _ = imported
    sb = Sandbox.open(db)
    dangling = []
    try:
        for rtype in (
            "Encounter",
            "Observation",
            "Condition",
            "Claim",
            "ExplanationOfBenefit",
            "Immunization",
        ):
            for r in sb._store.iter_type(rtype):
                stack = [r]
                while stack:
                    node = stack.pop()
                    if isinstance(node, dict):
                        ref = node.get("reference")
                        if isinstance(ref, str) and not ref.startswith("#") and "/" in ref:
                            t, i = ref.split("/")[:2]
                            if not sb._store.exists(t, i):
                                dangling.append(ref)
                        stack.extend(node.values())
                    elif isinstance(node, list):
                        stack.extend(node)
        assert dangling == []
        assert sb.audit.verify().ok
    finally:
        sb.close()


def test_export_round_trip(imported, tmp_path) -> None:
    db, files = imported
    out = tmp_path / "out"
    assert main(["export", "--db", str(db), "--out", str(out)]) == 0
    lines = sum(1 for f in out.glob("*.ndjson") for _ in f.open(encoding="utf-8"))
    assert (out / "Patient.ndjson").exists()
    assert lines > 0
    again = tmp_path / "again.db"
    assert main(["import", str(out), "--db", str(again)]) == 0
    sb = Sandbox.open(again)
    try:
        assert sb._store.count("Patient") == _expected_counts(files)["Patient"]
    finally:
        sb.close()


def test_bundle_with_one_bad_entry_is_rejected_whole(tmp_path) -> None:
    sb = Sandbox.empty()
    good = {"resourceType": "Patient", "id": "p1", "name": [{"family": "Ok"}]}
    bad = {"resourceType": "Patient", "id": "p2", "birthDate": "not-a-date"}
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": "urn:uuid:0b7f7c9a-1111-4222-8333-944455556666",
                "resource": good,
                "request": {"method": "POST", "url": "Patient"},
            },
            {
                "fullUrl": "urn:uuid:0b7f7c9a-1111-4222-8333-944455556667",
                "resource": bad,
                "request": {"method": "POST", "url": "Patient"},
            },
        ],
    }
    path = tmp_path / "b.json"
    path.write_text(json.dumps(bundle), encoding="utf-8")
    with pytest.raises(ValidationError) as err:
        sb.system_session().import_([str(path)])
    assert "entry[1]" in str(err.value) and "birthDate" in str(err.value)
    assert sb._store.count("Patient") == 0


def test_cli_import_of_missing_file_is_one_line(tmp_path, capsys) -> None:
    code = main(["import", str(tmp_path / "nope.json"), "--db", str(tmp_path / "x.db")])
    err = capsys.readouterr().err
    assert code != 0
    assert "nope.json" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_cli_failed_import_into_a_new_file_leaves_nothing(tmp_path, capsys) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    db = tmp_path / "new.db"
    assert main(["import", str(bad), "--db", str(db)]) == 2
    assert "bad.json" in capsys.readouterr().err
    assert list(tmp_path.glob("new.db*")) == []
