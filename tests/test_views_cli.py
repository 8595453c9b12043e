"""`ehr-sandbox view run` / `view sql`: table output, CSV/Parquet files, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from ehr_sandbox.cli.app import main
from ehr_sandbox.views import evaluate

PATIENTS = [
    {
        "resourceType": "Patient",
        "id": "p1",
        "gender": "female",
        "name": [{"given": ["Ann", "Marie"]}],
    },
    {"resourceType": "Patient", "id": "p2", "gender": "male"},
]
VIEW = {
    "resource": "Patient",
    "select": [
        {
            "column": [
                {"name": "id", "path": "id"},
                {"name": "gender", "path": "gender"},
                {"name": "given", "path": "name.given", "collection": True},
            ]
        }
    ],
}


@pytest.fixture()
def workspace(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    (data / "Patient.ndjson").write_text(
        "\n".join(json.dumps(p) for p in PATIENTS) + "\n", encoding="utf-8"
    )
    (tmp_path / "view.json").write_text(json.dumps(VIEW), encoding="utf-8")
    return tmp_path


def test_view_run_prints_a_table(workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["view", "run", str(workspace / "view.json"), "--data", str(workspace / "data")])
    out = capsys.readouterr().out
    assert code == 0
    assert "p1" in out and "p2" in out and "female" in out


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_view_run_writes_files(workspace: Path, suffix: str) -> None:
    target = workspace / f"result{suffix}"
    code = main(
        [
            "view",
            "run",
            str(workspace / "view.json"),
            "--data",
            str(workspace / "data"),
            "--out",
            str(target),
        ]
    )
    assert code == 0
    table = pacsv.read_csv(target) if suffix == ".csv" else pq.read_table(target)
    expected = evaluate(VIEW, PATIENTS)
    assert table.column_names == list(expected[0])
    assert table.column("id").to_pylist() == [r["id"] for r in expected]
    if suffix == ".parquet":
        assert table.column("given").to_pylist() == [r["given"] for r in expected]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["view", "run", "missing.json", "--data", "."], "view file not found"),
        (["view", "run", "{view}", "--data", "no-such-dir"], "data not found"),
        (["view", "run", "{bad}", "--data", "{data}"], "select[0].column[0].path"),
        (["view", "run", "{view}", "--data", "{data}", "--out", "x.xlsx"], "--out"),
    ],
)
def test_view_run_errors_are_one_line(
    workspace: Path, capsys: pytest.CaptureFixture[str], args: list[str], needle: str
) -> None:
    bad = dict(VIEW, select=[{"column": [{"name": "id", "path": "@@"}]}])
    (workspace / "bad.json").write_text(json.dumps(bad), encoding="utf-8")
    paths = {
        "view": workspace / "view.json",
        "bad": workspace / "bad.json",
        "data": workspace / "data",
    }
    code = main([a.format(**{k: str(v) for k, v in paths.items()}) for a in args])
    err = capsys.readouterr().err
    assert code != 0
    assert needle in err
    assert err.strip().count("\n") == 0 and "Traceback" not in err


def test_view_sql_prints_compiled_sql(workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["view", "sql", str(workspace / "view.json")]) == 0
    assert "json_extract_string" in capsys.readouterr().out
