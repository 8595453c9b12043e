"""ViewDefinition engine: FHIRPath features, validation errors, engines and sources."""

from __future__ import annotations

import gzip
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from ehr_sandbox.errors import ViewDefinitionError
from ehr_sandbox.views import (
    compile_view,
    compiles,
    definition,
    evaluate,
    fhirpath_compile,
    fhirpath_parser,
    run,
    view_sql,
)
from ehr_sandbox.views.fhirpath_compile import Env, compile_expression
from ehr_sandbox.views.reference import evaluate_plan


def fp(expression: str, resource: dict[str, Any] | None = None, **constants: Any) -> list[Any]:
    fn = compile_expression(expression, {k: [v] for k, v in constants.items()})
    return fn(
        [resource] if resource is not None else [], Env({k: [v] for k, v in constants.items()})
    )


def col_view(path: str, resource: str = "Patient", **extra: Any) -> dict[str, Any]:
    return {"resource": resource, "select": [{"column": [{"name": "v", "path": path, **extra}]}]}


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("0.1 + 0.2 = 0.3", [True]),
        ("7 div 2", [3]),
        ("7 mod 2", [1]),
        ("'a' & {} & 'b'", ["ab"]),
        ("(1 | 2 | 2).count()", [2]),
        ("2 in (1 | 2)", [True]),
        ("(1 | 2) contains 3", [False]),
        ("true xor false", [True]),
        ("false implies {}", [True]),
        ("{} and false", [False]),
        ("{} or false", []),
        ("@2020-01-02 < @2020-02-01", [True]),
        ("'abc'.startsWith('ab') and 'abc'.upper() = 'ABC'", [True]),
        ("'a,b'.split(',').count()", [2]),
        ("iif(1 > 2, 'x', 'y')", ["y"]),
        ("@T12:30.lowBoundary()", ["12:30:00.000"]),
        ("-(3)", [-3]),
    ],
)
def test_fhirpath_operators_and_functions(expression: str, expected: list[Any]) -> None:
    assert fp(expression) == expected


def test_decimal_arithmetic_is_exact_and_keeps_float_data_float() -> None:
    obs = {"resourceType": "Observation", "valueQuantity": {"value": 0.1}}
    result = fp("value.ofType(Quantity).value + 0.2", obs)
    assert result == [Decimal("0.3")]
    assert fp("value.ofType(Quantity).value * 3", obs) == [pytest.approx(0.3)]
    assert fp("value.ofType(Quantity).value * 3", obs)[0] == 0.3


def test_this_where_and_choice_types() -> None:
    patient = {
        "resourceType": "Patient",
        "name": [{"given": ["A", "B"]}, {"given": ["C"]}],
        "deceasedDateTime": "2020",
    }
    assert fp("name.given.where($this != 'B')", patient) == ["A", "C"]
    assert fp("deceased.ofType(dateTime)", patient) == ["2020"]
    assert fp("deceased.ofType(boolean)", patient) == []
    assert fp("deceased", patient) == ["2020"]
    assert fp("Patient.name.count()", patient) == [2]


def test_expressions_are_parsed_once_not_per_row(monkeypatch: pytest.MonkeyPatch) -> None:
    plan = compile_view(col_view("name.where(use = 'official').family.first()"))
    calls = []
    for module in (fhirpath_parser, definition, fhirpath_compile):
        monkeypatch.setattr(module, "parse", lambda *a: calls.append(a))
    rows = evaluate_plan(
        plan,
        [
            {"resourceType": "Patient", "name": [{"use": "official", "family": f"F{i}"}]}
            for i in range(500)
        ],
    )
    assert len(rows) == 500 and calls == []


@pytest.mark.parametrize(
    ("view", "where"),
    [
        ({"resource": "Patient"}, "select"),
        (
            {"resource": "patient", "select": [{"column": [{"name": "a", "path": "id"}]}]},
            "resource",
        ),
        (col_view("name.("), "select[0].column[0].path"),
        (col_view("name.nosuchfunction()"), "select[0].column[0].path"),
        (
            {"resource": "Patient", "select": [{"column": [{"name": "1bad", "path": "id"}]}]},
            "select[0].column[0].name",
        ),
        (
            {
                "resource": "Patient",
                "select": [{"column": [{"name": "a", "path": "id"}, {"name": "a", "path": "id"}]}],
            },
            "unique column names",
        ),
        (
            {
                "resource": "Patient",
                "select": [
                    {
                        "forEach": "name",
                        "forEachOrNull": "name",
                        "column": [{"name": "a", "path": "id"}],
                    }
                ],
            },
            "select[0]",
        ),
        (
            {
                "resource": "Patient",
                "constant": [{"name": "c", "valueString": "x", "valueInteger": 1}],
                "select": [{"column": [{"name": "a", "path": "%c"}]}],
            },
            "constant[0]",
        ),
        (
            {
                "resource": "Patient",
                "where": [{"path": 3}],
                "select": [{"column": [{"name": "a", "path": "id"}]}],
            },
            "where[0].path",
        ),
        (
            {
                "resource": "Patient",
                "select": [{"column": [{"name": "a", "path": "id", "collection": "yes"}]}],
            },
            "select[0].column[0].collection",
        ),
    ],
)
def test_invalid_views_name_the_path(view: dict[str, Any], where: str) -> None:
    with pytest.raises(ViewDefinitionError) as info:
        compile_view(view)
    assert where in str(info.value) and "expected" in str(info.value)


def test_runtime_errors_name_the_column_and_the_fix() -> None:
    patient = {"resourceType": "Patient", "name": [{"family": "A"}, {"family": "B"}]}
    for engine in ("python", "duckdb"):
        with pytest.raises(ViewDefinitionError, match=r"select\[0\]\.column\[0\].*collection"):
            run(col_view("name.family"), [patient], engine=engine)
    with pytest.raises(ViewDefinitionError, match=r"where\[0\]\.path: expected a boolean"):
        evaluate(
            {
                "resource": "Patient",
                "where": [{"path": "name.family.first()"}],
                "select": [{"column": [{"name": "a", "path": "id"}]}],
            },
            [patient],
        )


def test_engines_fallback_and_strictness() -> None:
    view = col_view("birthDate.lowBoundary()")
    data = [{"resourceType": "Patient", "birthDate": "1970-06"}]
    assert not compiles(view)
    assert run(view, data) == run(view, data, engine="python") == [{"v": "1970-06-01"}]
    with pytest.raises(ViewDefinitionError, match="engine='auto'"):
        run(view, data, engine="duckdb")
    with pytest.raises(ViewDefinitionError, match="engine"):
        run(view, data, engine="spark")


def test_compiled_sql_never_installs_anything() -> None:
    sql = view_sql(
        {
            "resource": "Observation",
            "select": [
                {"column": [{"name": "c", "path": "code.coding.code.first()"}]},
                {
                    "forEach": "component",
                    "column": [{"name": "v", "path": "value.ofType(Quantity).value"}],
                },
            ],
        }
    )
    assert "INSTALL" not in sql.upper() and "LOAD " not in sql.upper()


def test_sources_directory_single_file_gzip_and_missing(tmp_path: Path) -> None:
    rows = [{"resourceType": "Patient", "id": f"p{i}", "gender": "female"} for i in range(3)]
    text = "\n".join(json.dumps(r) for r in rows) + "\n"
    (tmp_path / "Patient.ndjson").write_text(text, encoding="utf-8")
    with gzip.open(tmp_path / "Patient.0002.ndjson.gz", "wt", encoding="utf-8") as fh:
        fh.write(json.dumps({"resourceType": "Patient", "id": "gz"}) + "\n")
    view = col_view("id")
    expected = {r["id"] for r in rows} | {"gz"}
    assert {r["v"] for r in run(view, tmp_path, engine="python")} == expected
    assert {r["v"] for r in run(view, tmp_path, engine="duckdb")} == expected
    assert {r["v"] for r in run(view, tmp_path / "Patient.ndjson")} == {r["id"] for r in rows}
    with pytest.raises(FileNotFoundError):
        run(view, tmp_path / "missing")


def test_forEachOrNull_row_index_and_nulls_agree_across_engines() -> None:
    view = {
        "resource": "Patient",
        "select": [
            {"column": [{"name": "id", "path": "id"}]},
            {
                "forEachOrNull": "telecom",
                "column": [{"name": "i", "path": "%rowIndex"}, {"name": "v", "path": "value"}],
            },
        ],
    }
    data = [
        {"resourceType": "Patient", "id": "a", "telecom": [{"value": "1"}, {"value": "2"}]},
        {"resourceType": "Patient", "id": "b"},
    ]
    expected = [
        {"id": "a", "i": 0, "v": "1"},
        {"id": "a", "i": 1, "v": "2"},
        {"id": "b", "i": 0, "v": None},
    ]
    assert evaluate(view, data) == expected
    assert sorted(run(view, data, engine="duckdb"), key=lambda r: (r["id"], r["i"])) == expected
