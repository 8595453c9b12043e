"""Writers and the ``generate`` CLI: NDJSON layout, bundles, filters, determinism, errors."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

import synthetic
from ehr_sandbox.cli.app import main
from synthetic.errors import ArgumentError


def tree(d: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(d.iterdir())}


def test_ndjson_layout_one_file_per_type(tmp_path: Path) -> None:
    summary = synthetic.write_dataset(tmp_path, 8, seed=2, years=3)
    files = tree(tmp_path)
    assert set(files) == {f"{t}.ndjson" for t in summary.resources}
    total = 0
    for name, data in files.items():
        rtype = name.removesuffix(".ndjson")
        lines = data.splitlines()
        assert data.endswith(b"\n")
        assert all(orjson.loads(line)["resourceType"] == rtype for line in lines)
        assert len(lines) == summary.resources[rtype]
        total += len(lines)
    assert total == summary.total
    assert summary.resources["Patient"] == 8
    assert "Practitioner" in summary.resources and "Slot" in summary.resources


def test_types_filter_keeps_only_those_types(tmp_path: Path) -> None:
    summary = synthetic.write_dataset(
        tmp_path, 5, seed=2, years=2, types=["Patient", "Observation"]
    )
    assert set(tree(tmp_path)) == {"Patient.ndjson", "Observation.ndjson"}
    assert set(summary.resources) == {"Patient", "Observation"}


def test_transaction_bundles_resolve_inside_the_bundle(tmp_path: Path) -> None:
    synthetic.write_dataset(tmp_path, 4, seed=3, years=2, format="bundle")
    files = tree(tmp_path)
    assert "practice.json" in files and len(files) == 5
    practice = orjson.loads(files.pop("practice.json"))
    practice_keys = {e["request"]["url"] for e in practice["entry"]}
    assert all(e["request"]["method"] == "PUT" for e in practice["entry"])
    for data in files.values():
        bundle = orjson.loads(data)
        assert bundle["type"] == "transaction"
        urls = {e["fullUrl"] for e in bundle["entry"]}
        assert all(u.startswith("urn:uuid:") for u in urls) and len(urls) == len(bundle["entry"])
        for e in bundle["entry"]:
            assert e["request"] == {"method": "POST", "url": e["resource"]["resourceType"]}
            for ref in _refs(e["resource"]):
                assert ref in urls or ref in practice_keys, ref


def test_collection_bundles_keep_relative_references(tmp_path: Path) -> None:
    synthetic.write_dataset(tmp_path, 2, seed=3, years=2, format="bundle", bundle_type="collection")
    bundle = orjson.loads((tmp_path / "patient-00000000.json").read_bytes())
    assert bundle["type"] == "collection"
    keys = {f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in bundle["entry"]}
    assert all("request" not in e for e in bundle["entry"])
    refs = [r for e in bundle["entry"] for r in _refs(e["resource"])]
    assert refs and all(not r.startswith("urn:") for r in refs)
    assert any(r in keys for r in refs)


def test_failed_run_leaves_no_partial_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from synthetic.engine import Engine

    original = Engine.patient

    def failing(self: Engine, index: int, book: object = None) -> synthetic.PatientRecord:
        if index == 3:
            raise RuntimeError("disk full")
        return original(self, index, book)  # type: ignore[arg-type]

    monkeypatch.setattr(Engine, "patient", failing)
    with pytest.raises(RuntimeError):
        synthetic.write_dataset(tmp_path, 6, seed=1, years=1)
    assert list(tmp_path.iterdir()) == []


def test_workers_give_identical_bytes(tmp_path: Path) -> None:
    args = ["generate", "--patients", "40", "--seed", "5", "--years", "3", "--quiet"]
    assert main([*args, "--out", str(tmp_path / "w1"), "--workers", "1"]) == 0
    assert main([*args, "--out", str(tmp_path / "w2"), "--workers", "2"]) == 0
    one, two = tree(tmp_path / "w1"), tree(tmp_path / "w2")
    assert one == two and len(one) > 10


def test_bundle_workers_give_identical_bytes(tmp_path: Path) -> None:
    for w in (1, 2):
        synthetic.write_dataset(
            tmp_path / f"w{w}", 12, seed=6, years=2, format="bundle", workers=w, partition_size=5
        )
    assert tree(tmp_path / "w1") == tree(tmp_path / "w2")


def test_dask_engine_gives_identical_bytes(tmp_path: Path) -> None:
    pytest.importorskip("dask.distributed")
    synthetic.write_dataset(tmp_path / "p", 10, seed=8, years=2)
    synthetic.write_dataset(
        tmp_path / "d", 10, seed=8, years=2, engine="dask", workers=1, partition_size=4
    )
    assert tree(tmp_path / "p") == tree(tmp_path / "d")


def test_cli_prints_a_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "generate",
            "-n",
            "3",
            "--out",
            str(tmp_path),
            "--years",
            "1",
            "--quiet",
            "--types",
            "Patient,Encounter",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "resources/s" in out and "Patient" in out
    assert set(tree(tmp_path)) <= {"Patient.ndjson", "Encounter.ndjson"}


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--population", "dentistry"], "population"),
        (["--patients", "-4"], "patients"),
        (["--reference-date", "2026-13-01"], "reference_date"),
        (["--types", "Patient,Foo"], "Foo"),
        (["--format", "csv"], "format"),
        (["--workers", "0"], "workers"),
    ],
)
def test_cli_errors_are_one_line_without_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], needle: str
) -> None:
    args = ["generate", "--out", str(tmp_path / "out"), "--quiet"]
    if "--patients" not in extra:
        args += ["--patients", "2"]
    code = main(args + extra)
    err = capsys.readouterr().err
    assert code != 0
    assert needle in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_write_dataset_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ArgumentError, match="bundle_type"):
        synthetic.write_dataset(tmp_path, 1, format="bundle", bundle_type="batch")
    with pytest.raises(ArgumentError, match="engine"):
        synthetic.write_dataset(tmp_path, 1, engine="spark")
    assert list(tmp_path.iterdir()) == []


def _refs(obj: object) -> list[str]:
    out: list[str] = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k == "reference" and isinstance(v, str):
                out.append(v)
            else:
                out.extend(_refs(v))
    elif isinstance(obj, list):
        for v in obj:
            out.extend(_refs(v))
    return out


def test_defects_are_opt_in_listed_and_still_valid_fhir(tmp_path: Path) -> None:
    from synthetic.fhir import validate

    kinds = ["duplicate_patients", "unit_mixups", "missing_data", "transposed_dates"]
    clean = {r.index: r for r in synthetic.generate(40, seed=7, years=3)}
    dirty = list(synthetic.generate(40, seed=7, years=3, defects={k: 0.2 for k in kinds}))
    entries = [d for rec in dirty for d in rec.defects]
    assert {e["kind"] for e in entries} == set(kinds)
    for rec in dirty:
        keys = {f"{r['resourceType']}/{r['id']}": r for r in rec.all()}
        touched = {d["resource"] for d in rec.defects}
        for d in rec.defects:
            assert validate(keys[d["resource"]]) == []
        untouched = [r for r in rec.resources if f"{r['resourceType']}/{r['id']}" not in touched]
        assert untouched == [
            r for r in clean[rec.index].resources if f"{r['resourceType']}/{r['id']}" not in touched
        ]
    assert all(not rec.defects for rec in clean.values())
    summary = synthetic.write_dataset(
        tmp_path, 40, seed=7, years=3, defects={k: 0.2 for k in kinds}
    )
    lines = (tmp_path / "defects-manifest.jsonl").read_bytes().splitlines()
    assert summary.defects == len(lines) == len(entries)
    with pytest.raises(ArgumentError, match="defects"):
        synthetic.generate(1, defects=["typos"])
