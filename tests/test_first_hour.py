"""Issue 10, "the first hour": what a new user meets through the command line and the API.

CLI tests run the real entry point in a subprocess (``python -m ehr_sandbox``, the same
``run()`` the installed ``ehr-sandbox`` script calls), not only typer's CliRunner.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ehr_sandbox import Sandbox
from ehr_sandbox.errors import (
    ArgumentError,
    CryptoError,
    DataQualityWarning,
    ImportFailed,
    ValidationError,
)

ROOT = Path(__file__).resolve().parents[1]


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ehr_sandbox", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        timeout=600,
    )


USAGE_ERRORS = [
    ["--no-such-option"],
    ["generate", "--out", "x"],  # missing required option
    ["generate", "--patients", "abc", "--out", "x"],
    ["demo", "--patients", "0"],
    ["no-such-command"],
    ["import", "--db", "x.db"],  # no files
    ["exercises", "start", "records/correction", "--db", "x.db"],  # no --student
]


@pytest.mark.parametrize("args", USAGE_ERRORS, ids=lambda a: " ".join(a))
def test_usage_errors_are_one_line_exit_2(args: list[str], tmp_path) -> None:
    done = cli(*args)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert "Traceback" not in done.stderr and "ModuleNotFoundError" not in done.stderr


def test_usage_errors_do_not_need_the_click_package(tmp_path) -> None:
    # typer >= 0.16 vendors click; the error handling must not import ``click`` itself
    blocker = tmp_path / "block"
    blocker.mkdir()
    (blocker / "click.py").write_text("raise ModuleNotFoundError(\"No module named 'click'\")\n")
    import typer

    if "typer._click" not in sys.modules and not hasattr(typer, "_click"):
        pytest.skip("this typer uses the click package itself")
    env = {"PYTHONPATH": os.pathsep.join([str(blocker), str(ROOT)])}
    done = cli("--no-such-option", env=env)
    assert done.returncode == 2 and done.stderr.startswith("error: No such option")


def test_version_and_help_text() -> None:
    from ehr_sandbox import __version__

    done = cli("--version")
    assert done.returncode == 0 and done.stdout.strip() == f"ehr-sandbox {__version__}"
    done = cli("generate", "--help")
    assert done.returncode == 0
    assert ">>>" not in done.stdout and "CliRunner" not in done.stdout
    assert "Generate synthetic patients" in done.stdout


def test_no_command_help_shows_doctest_code() -> None:
    from typer.main import get_command

    from ehr_sandbox.cli.app import app

    def walk(cmd):
        yield cmd
        for sub in getattr(cmd, "commands", {}).values():
            yield from walk(sub)

    from typer.testing import CliRunner

    runner = CliRunner()

    def walk_paths(cmd, path):
        yield path
        for name, sub in getattr(cmd, "commands", {}).items():
            yield from walk_paths(sub, [*path, name])

    # what a person sees: ``--help`` as rendered (a docstring's numpydoc sections and examples
    # go after click's ``\f``, which ends the help text), for every command and group
    for path in walk_paths(get_command(app), []):
        shown = runner.invoke(app, [*path, "--help"])
        assert shown.exit_code == 0, (path, shown.output)
        assert ">>>" not in shown.output and "Examples" not in shown.output, path
    for cmd in walk(get_command(app)):  # and the one-line summaries lists show
        assert ">>>" not in (cmd.get_short_help_str(limit=300) or ""), cmd.name


def test_new_makes_the_same_staffed_clinic_as_generate(tmp_path) -> None:
    db = tmp_path / "clinic.db"
    done = cli("new", str(db), "--patients", "3", "--seed", "5")
    assert done.returncode == 0, done.stderr
    opened = Sandbox.open(db)
    reference = Sandbox.generate(patients=3, seed=5)
    try:
        assert [(u.username, u.role) for u in opened.users] == [
            (u.username, u.role) for u in reference.users
        ]
        for rtype in ("Patient", "Practitioner", "Schedule", "Slot", "Appointment", "Observation"):
            got = sorted(r["id"] for r in opened.system_session().resources(rtype))
            want = sorted(r["id"] for r in reference.system_session().resources(rtype))
            assert got == want and got, rtype
    finally:
        opened.close()
    assert cli("audit", "verify", "--db", str(db)).returncode == 0
    again = cli("new", str(db))
    assert again.returncode == 2 and "already exists" in again.stderr


def test_new_with_a_passphrase_from_the_environment(tmp_path) -> None:
    db = tmp_path / "enc.db"
    done = cli(
        "new",
        str(db),
        "--patients",
        "1",
        "--passphrase-env",
        "CLINIC_PASS",
        env={"CLINIC_PASS": "s3cret words"},
    )
    assert done.returncode == 0, done.stderr
    with pytest.raises(CryptoError):
        Sandbox.open(db)
    Sandbox.open(db, passphrase="s3cret words").close()
    unset = cli("new", str(tmp_path / "x.db"), "--passphrase-env", "SURELY_UNSET_VAR_123")
    assert unset.returncode == 2 and "SURELY_UNSET_VAR_123" in unset.stderr
    assert not (tmp_path / "x.db").exists()


@pytest.fixture(scope="module")
def bundle_folder(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("gen") / "bundles"
    done = cli(
        "generate",
        "-n",
        "3",
        "--years",
        "1",
        "--seed",
        "2",
        "--format",
        "bundle",
        "--out",
        str(out),
        "--quiet",
    )
    assert done.returncode == 0, done.stderr
    return out


@pytest.fixture(scope="module")
def ndjson_folder(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("gen") / "nd"
    done = cli("generate", "-n", "3", "--years", "1", "--seed", "2", "--out", str(out), "--quiet")
    assert done.returncode == 0, done.stderr
    return out


def _total_lines(folder: Path) -> int:
    return sum(
        1 for f in folder.glob("*.ndjson") for line in f.read_text().splitlines() if line.strip()
    )


def test_import_of_a_bundle_folder_imports_everything(
    bundle_folder, ndjson_folder, tmp_path
) -> None:
    expected = _total_lines(ndjson_folder)  # the same data written as NDJSON
    db = tmp_path / "a.db"
    done = cli("import", str(bundle_folder), "--db", str(db))
    assert done.returncode == 0, done.stderr
    sb = Sandbox.open(db)
    try:
        system = sb.system_session()
        imported = sum(
            system.search(t).count()
            for t in sorted({p.stem for p in ndjson_folder.glob("*.ndjson")})
        )
        assert imported == expected
    finally:
        sb.close()


@pytest.mark.parametrize("order", ["sorted", "reversed"])
def test_import_file_order_does_not_matter(bundle_folder, tmp_path, order) -> None:
    files = sorted(bundle_folder.glob("*.json"))
    if order == "reversed":
        files.reverse()
    sb = Sandbox.empty()
    counts = sb.system_session().import_(files)
    assert counts["Patient"] == 3 and counts["Practitioner"] > 0


def test_import_creates_staff_so_deidentify_and_audit_work(ndjson_folder, tmp_path) -> None:
    db = tmp_path / "imported.db"
    assert cli("import", str(ndjson_folder), "--db", str(db)).returncode == 0
    out = tmp_path / "research"
    done = cli("deidentify", "--db", str(db), "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert (out / "Patient.ndjson").exists()
    assert cli("audit", "verify", "--db", str(db)).returncode == 0


def test_import_without_a_practice_still_gets_staff(tmp_path) -> None:
    folder = tmp_path / "one"
    folder.mkdir()
    (folder / "Patient.ndjson").write_text(
        json.dumps({"resourceType": "Patient", "id": "x1", "name": [{"family": "Doe"}]}) + "\n"
    )
    db = tmp_path / "x.db"
    assert cli("import", str(folder), "--db", str(db)).returncode == 0
    sb = Sandbox.open(db)
    try:
        roles = {u.role for u in sb.users}
        assert {"privacy_officer", "physician", "medical_assistant"} <= roles
    finally:
        sb.close()
    assert cli("deidentify", "--db", str(db), "--out", str(tmp_path / "r")).returncode == 0


def _break_ndjson(src: Path, dst: Path) -> dict[str, str]:
    """Copy an NDJSON folder with three problems in Observation.ndjson; return their places."""
    dst.mkdir()
    for f in src.glob("*.ndjson"):
        (dst / f.name).write_bytes(f.read_bytes())
    lines = (dst / "Observation.ndjson").read_text().splitlines()
    bad_status = json.loads(lines[4])
    bad_status["status"] = 5
    lines[4] = json.dumps(bad_status)
    dangling = json.loads(lines[9])
    dangling["subject"] = {"reference": "Patient/nobody-here"}
    lines[9] = json.dumps(dangling)
    lines[14] = "{not json"
    (dst / "Observation.ndjson").write_text("\n".join(lines) + "\n")
    return {
        "status": f"Observation.ndjson:5 Observation/{bad_status['id']}: status",
        "subject": f"Observation.ndjson:10 Observation/{dangling['id']}: subject.reference",
        "json": "Observation.ndjson:15",
    }


def test_import_errors_name_file_line_resource_and_field_all_at_once(
    ndjson_folder, tmp_path
) -> None:
    places = _break_ndjson(ndjson_folder, tmp_path / "broken")
    db = tmp_path / "b.db"
    done = cli("import", str(tmp_path / "broken"), "--db", str(db))
    assert done.returncode == 2
    for place in places.values():
        assert place in done.stderr, (place, done.stderr)
    for line in done.stderr.splitlines():
        if line.startswith("error: ") and "nothing was imported" not in line:
            assert ".ndjson" in line  # every error names its file
    assert "Traceback" not in done.stderr
    assert list(tmp_path.glob("b.db*")) == []  # a failed import into a new file leaves nothing


def test_import_good_bad_good_says_what_went_in(bundle_folder, tmp_path) -> None:
    db = tmp_path / "c.db"
    assert cli("import", str(bundle_folder / "practice.json"), "--db", str(db)).returncode == 0
    patients = sorted(bundle_folder.glob("patient-*.json"))
    # the broken copy is of a patient who has an Observation; the other two go in around it
    with_obs = next(
        p
        for p in patients
        if any(
            e["resource"]["resourceType"] == "Observation"
            for e in json.loads(p.read_text())["entry"]
        )
    )
    patients.remove(with_obs)
    patients.insert(1, with_obs)
    bad = tmp_path / "bad.json"
    bundle = json.loads(patients[1].read_text())
    idx = next(
        i for i, e in enumerate(bundle["entry"]) if e["resource"]["resourceType"] == "Observation"
    )
    bundle["entry"][idx]["resource"]["status"] = 7
    bad.write_text(json.dumps(bundle))
    done = cli("import", str(patients[0]), str(bad), str(patients[2]), "--db", str(db))
    assert done.returncode == 2
    assert f"imported: {patients[0].name}" in done.stderr
    assert f"imported: {patients[2].name}" in done.stderr
    assert "not imported: bad.json (1 problems)" in done.stderr
    assert f"bad.json Bundle.entry[{idx}]" in done.stderr
    sb = Sandbox.open(db)
    try:
        ids = {r["id"] for r in sb.system_session().resources("Patient")}
    finally:
        sb.close()
    first = json.loads(patients[0].read_text())["entry"][0]["resource"]["id"]
    third = json.loads(patients[2].read_text())["entry"][0]["resource"]["id"]
    skipped = bundle["entry"][0]["resource"]["id"]
    assert ids == {first, third} and skipped not in ids


def test_import_api_raises_import_failed_with_both_sides(bundle_folder, tmp_path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"resourceType": "Patient", "id": "p"}))
    sb = Sandbox.empty()
    with pytest.raises(ImportFailed) as err:
        sb.system_session().import_([bundle_folder / "practice.json", bad])
    assert set(err.value.imported) == {"practice.json"}
    assert set(err.value.refused) == {"bad.json"}
    assert sb.system_session().search("Practitioner").count() > 0


def _import_refusals(sb: Sandbox) -> list[dict]:
    events = [e for e in sb.audit.events() if e.get("outcome") == "8"]
    return events


def test_structural_refusal_is_audited(tmp_path) -> None:
    bad = tmp_path / "bad.ndjson"
    bad.write_text(json.dumps({"resourceType": "Patient", "id": "p", "gender": 5}) + "\n")
    sb = Sandbox.empty()
    before = len(_import_refusals(sb))
    with pytest.raises(ImportFailed):
        sb.system_session().import_([bad])
    assert len(_import_refusals(sb)) == before + 1
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": {"resourceType": "Patient", "gender": 5},
                "request": {"method": "POST", "url": "Patient"},
            }
        ],
    }
    with pytest.raises(ValidationError):
        sb.system_session().transaction(bundle)
    assert len(_import_refusals(sb)) == before + 2
    assert sb.audit.verify().ok


def test_gradebook_of_a_non_course_file(tmp_path) -> None:
    f = tmp_path / "notfhir.json"
    f.write_text(json.dumps({"resourceType": "Patient", "id": "a"}))
    done = cli("gradebook", "--course", str(f))
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "error: course: notfhir.json is not a course file (it holds a FHIR Patient); "
        "give the JSON file written by Course.save"
    )


# ---------------------------------------------------------------- data that must not be lost


def test_rotate_key_keeps_a_passphrase_sandbox_openable(tmp_path) -> None:
    path = tmp_path / "clinic.db"
    sb = Sandbox.generate(patients=2, seed=1, path=path, passphrase="old secret")
    n = sb.system_session().search("Observation").count()
    with pytest.raises(ArgumentError, match="passphrase="):
        sb.rotate_key()  # a random key kept nowhere would lock the file for good
    sb.close()
    assert (
        Sandbox.open(path, passphrase="old secret").system_session().search("Observation").count()
        == n
    )  # the refused rotation changed nothing
    sb = Sandbox.open(path, passphrase="old secret")
    key = os.urandom(32)
    sb.rotate_key(key=key)
    sb.close()
    with pytest.raises(CryptoError):
        Sandbox.open(path, passphrase="old secret")
    again = Sandbox.open(path, key=key)
    assert again.system_session().search("Observation").count() == n
    again.rotate_key(passphrase="spring term")
    again.close()
    last = Sandbox.open(path, passphrase="spring term")
    assert last.audit.verify().ok
    last.close()


def test_export_never_follows_a_planted_symlink(tmp_path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    victim = outside / "victim.txt"
    victim.write_text("keep me")
    # planted: the final name, and any temporary name next to it
    (out / "Patient.ndjson").symlink_to(victim)
    (out / "Patient.ndjson.tmp").symlink_to(outside / "tmp-target")
    sb = Sandbox.generate(patients=2, seed=3)
    sb.system_session().export(str(out))
    assert victim.read_text() == "keep me"
    assert sorted(p.name for p in outside.iterdir()) == ["victim.txt"]
    exported = out / "Patient.ndjson"
    assert not exported.is_symlink() and len(exported.read_text().splitlines()) == 2
    link = tmp_path / "link-out"
    link.symlink_to(outside)
    with pytest.raises(ValidationError, match="symbolic link"):
        sb.system_session().export(str(link))
    assert sorted(p.name for p in outside.iterdir()) == ["victim.txt"]


# ---------------------------------------------------------------- validation gaps (R4B)


def _bad_cases(pid: str, prac: str) -> list[tuple[str, dict, str]]:
    obs = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "2345-7"}]},
        "subject": {"reference": f"Patient/{pid}"},
    }
    return [
        ("Observation.status", {**obs, "status": "done"}, "status"),
        ("Patient.gender", {"resourceType": "Patient", "gender": "xyz"}, "gender"),
        (
            "Encounter.status",
            {
                "resourceType": "Encounter",
                "status": "foo",
                "subject": {"reference": f"Patient/{pid}"},
                "class": {
                    "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                    "code": "AMB",
                },
            },
            "status",
        ),
        (
            "MedicationRequest.status/intent",
            {
                "resourceType": "MedicationRequest",
                "status": "bar",
                "intent": "foo",
                "medicationCodeableConcept": {"text": "aspirin"},
                "subject": {"reference": f"Patient/{pid}"},
            },
            "status",
        ),
        (
            "Condition.clinicalStatus",
            {
                "resourceType": "Condition",
                "subject": {"reference": f"Patient/{pid}"},
                "clinicalStatus": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                            "code": "bogus",
                        }
                    ]
                },
                "code": {"text": "x"},
            },
            "clinicalStatus.coding[0].code",
        ),
        (
            "non-UCUM unit",
            {
                **obs,
                "valueQuantity": {
                    "value": 1.0,
                    "system": "http://unitsofmeasure.org",
                    "code": "bananas",
                    "unit": "bananas",
                },
            },
            "valueQuantity.code",
        ),
        (
            "obs-6",
            {
                **obs,
                "valueQuantity": {
                    "value": 1.0,
                    "system": "http://unitsofmeasure.org",
                    "code": "mg/dL",
                },
                "dataAbsentReason": {"text": "not done"},
            },
            "(resource)",
        ),
        (
            "obs-7",
            {
                **obs,
                "valueQuantity": {
                    "value": 1.0,
                    "system": "http://unitsofmeasure.org",
                    "code": "mg/dL",
                },
                "component": [
                    {
                        "code": obs["code"],
                        "valueQuantity": {
                            "value": 2.0,
                            "system": "http://unitsofmeasure.org",
                            "code": "mg/dL",
                        },
                    }
                ],
            },
            "(resource)",
        ),
        (
            "per-1",
            {**obs, "effectivePeriod": {"start": "2025-03-02", "end": "2025-03-01"}},
            "effectivePeriod",
        ),
        (
            "obs-3",
            {**obs, "referenceRange": [{"appliesTo": [{"text": "adults"}]}]},
            "referenceRange[0]",
        ),
        (
            "reference target type",
            {**obs, "encounter": {"reference": f"Practitioner/{prac}"}},
            "encounter.reference",
        ),
        ("future birthDate", {"resourceType": "Patient", "birthDate": "2999-01-01"}, "birthDate"),
        ("empty array", {"resourceType": "Patient", "name": []}, "name"),
        ("empty object", {"resourceType": "Patient", "name": [{}]}, "name[0]"),
        ("null", {"resourceType": "Patient", "birthDate": None}, "birthDate"),
    ]


@pytest.fixture(scope="module")
def clinic():
    return Sandbox.generate(patients=2, seed=4)


def _ids(sb: Sandbox) -> tuple[str, str]:
    system = sb.system_session()
    pid = next(iter(system.resources("Patient")))["id"]
    prac = next(iter(system.resources("Practitioner")))["id"]
    return pid, prac


def test_r4b_gaps_are_refused_on_create(clinic) -> None:
    pid, prac = _ids(clinic)
    doctor, desk = clinic.login("dr.patel"), clinic.login("fd.smith")
    for name, resource, path in _bad_cases(pid, prac):
        session = desk if resource["resourceType"] == "Patient" else doctor
        with pytest.raises(ValidationError) as err:
            session.create(resource)
        assert path in [e.path for e in err.value.errors], (name, str(err.value))
    with pytest.raises(ValidationError, match="R4B"):
        doctor.create(_bad_cases(pid, prac)[0][1])


def test_r4b_gaps_are_refused_on_import(clinic, tmp_path) -> None:
    pid, prac = _ids(clinic)
    cases = _bad_cases(pid, prac)
    lines = []
    for i, (_, resource, _) in enumerate(cases):
        lines.append(json.dumps({**resource, "id": f"bad-{i}"}))
    f = tmp_path / "Mixed.ndjson"
    f.write_text("\n".join(lines) + "\n")
    sb = clinic.copy()
    with pytest.raises(ImportFailed) as err:
        sb.system_session().import_([f])
    for i, (name, _, path) in enumerate(cases):
        assert any(
            e.resource.startswith(f"Mixed.ndjson:{i + 1} ") and e.path == path
            for e in err.value.errors
        ), name


def test_non_ucum_units_of_outside_data_are_kept_as_text_only_on_request(clinic, tmp_path) -> None:
    pid, _ = _ids(clinic)
    unit = {"value": 7.0, "system": "http://unitsofmeasure.org", "code": "bananas"}
    obs = {
        "resourceType": "Observation",
        "id": "fruit-1",
        "status": "final",
        "code": {"text": "fruit count"},
        "subject": {"reference": f"Patient/{pid}"},
        "valueQuantity": dict(unit),
    }
    f = tmp_path / "Observation.ndjson"
    f.write_text(json.dumps(obs) + "\n")
    sb = clinic.copy()
    system = sb.system_session()
    with pytest.raises(ImportFailed) as err:
        system.import_([f])
    assert [(e.path, e.found) for e in err.value.errors] == [("valueQuantity.code", "bananas")]
    assert "as-text" in str(err.value)
    assert not system.exists("Observation/fruit-1")
    with pytest.warns(DataQualityWarning, match="bananas"):
        assert system.import_([f], units="as-text") == {"Observation": 1}
    stored = system.read("Observation", "fruit-1")["valueQuantity"]
    assert stored == {"value": 7.0, "unit": "bananas"}
    with pytest.raises(ValidationError, match="units"):
        system.import_([f], units="guess")


def test_generated_clinic_passes_the_r4b_rules() -> None:
    import synthetic
    from ehr_sandbox.validation.r4b import r4b_problems

    for rec in synthetic.generate(5, seed=11):
        for r in rec.all():
            assert r4b_problems(r) == [], (r["resourceType"], r4b_problems(r))


def test_generated_medication_administrations_pass_mad_1() -> None:
    import synthetic
    from ehr_sandbox.validation.r4b import r4b_problems

    found = [
        r
        for rec in synthetic.generate(40, seed=11)
        for r in rec.all()
        if r["resourceType"] == "MedicationAdministration"
    ]
    assert found
    assert all(r4b_problems(r) == [] for r in found)


def test_r4b_rules_come_from_the_hl7_package_data() -> None:
    from ehr_sandbox.validation.r4b import compiled_invariants, rules

    data = rules()
    assert "CC0" in data["licence"] and "hl7.fhir.r4b.core" in data["source"]
    keys = {k for items in compiled_invariants().values() for k, _, _ in items}
    assert {"obs-6", "obs-7", "per-1", "obs-3", "qty-3"} <= keys
    assert (ROOT / "tools" / "build_r4b_rules.py").is_file()


def test_readme_key_rotation_snippet_runs(tmp_path, monkeypatch) -> None:
    import re

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = [b for b in re.findall(r"```python\n(.*?)```", readme, re.S) if "rotate_key" in b]
    assert len(blocks) == 1
    monkeypatch.chdir(tmp_path)
    exec(compile(blocks[0], "README.md", "exec"), {"Sandbox": Sandbox})  # noqa: S102
    assert (tmp_path / "clinic.db").exists()
    with pytest.raises(CryptoError):
        Sandbox.open(tmp_path / "clinic.db", passphrase="fall term secret")


def test_readme_and_docstrings_point_at_docs_that_exist() -> None:
    import re

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert not re.search(r"(?<![/\w])(PRIVACY|EXERCISES|CONTENT)\.md", readme)
    for link in re.findall(r"\]\((docs/[^)]+)\)", readme):
        if link in ("docs/privacy.md", "docs/exercises.md"):
            continue  # written by the privacy and grading work
        assert (ROOT / link).is_file(), link
    assert (ROOT / "docs" / "content.md").is_file()


def test_search_given_an_mrn_says_so(clinic) -> None:
    from ehr_sandbox.errors import SearchError

    patients = list(clinic.system_session().resources("Patient"))
    mrn_of = {
        p["id"]: next(i["value"] for i in p["identifier"] if "mrn" in i.get("system", ""))
        for p in patients
    }
    pid, mrn = next(iter(mrn_of.items()))
    doctor = clinic.login("dr.patel")
    with pytest.raises(SearchError) as err:
        doctor.search("Observation", patient=mrn)
    assert mrn in str(err.value) and f"Patient/{pid}" in str(err.value)
    with pytest.raises(SearchError, match="identifier="):
        doctor.search("Patient", _id=mrn)
    # the id itself, and the MRN through the identifier, still work
    assert doctor.search("Observation", patient=pid).count() > 0
    assert doctor.search("Observation", [("patient.identifier", mrn)]).count() > 0
    # a hint never reveals a patient the user cannot see: another patient's portal
    other = next(p for p in mrn_of if p != pid)
    portal = clinic.login_patient(other)
    assert portal.search("Observation", patient=mrn).count() == 0
