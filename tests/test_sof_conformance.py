"""The HL7 SQL on FHIR v2 conformance suite (../shared/conformance/sql-on-fhir-v2) on the
reference evaluator: every case is one parametrized test (id = file stem + title)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from conftest import SHARED, shared_path
from ehr_sandbox.errors import ViewDefinitionError
from ehr_sandbox.views import compile_view, evaluate, run

SUITE_DIR = ("conformance", "sql-on-fhir-v2")


def _suite_cases() -> list[Any]:
    folder = SHARED.joinpath(*SUITE_DIR)
    if not folder.is_dir():
        # Collected as one case that skips with the reason (shared_path does the skipping).
        return [pytest.param(None, None, id="suite-absent")]
    cases = []
    for path in sorted(folder.glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        for test in data["tests"]:
            cases.append(pytest.param(path.name, test["title"], id=f"{path.stem}-{test['title']}"))
    return cases


def load_case(file: str, title: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    data = json.loads(Path(shared_path(*SUITE_DIR, file)).read_text(encoding="utf-8"))
    test = next(t for t in data["tests"] if t["title"] == title)
    return data["resources"], test


def freeze(value: Any) -> Any:
    if isinstance(value, list):
        return ("list", tuple(freeze(v) for v in value))
    if isinstance(value, dict):
        return ("dict", tuple(sorted((k, freeze(v)) for k, v in value.items())))
    if isinstance(value, bool):
        return ("bool", value)
    return value


def row_multiset(rows: list[dict[str, Any]]) -> Counter:
    return Counter(freeze(r) for r in rows)


def check_case(run, resources: list[dict[str, Any]], test: dict[str, Any]) -> None:
    view = test["view"]
    if test.get("expectError"):
        with pytest.raises(ViewDefinitionError):
            run(view, resources)
        return
    rows = run(view, resources)
    if "expectCount" in test:
        assert len(rows) == test["expectCount"]
    if "expect" in test:
        assert row_multiset(rows) == row_multiset(test["expect"])
    if "expectColumns" in test:
        assert compile_view(view).column_names == test["expectColumns"]
        for row in rows:
            assert list(row) == test["expectColumns"]


@pytest.mark.shared
@pytest.mark.parametrize(("file", "title"), _suite_cases())
def test_reference_engine_passes_suite_case(file: str | None, title: str | None) -> None:
    if file is None:
        shared_path(*SUITE_DIR)
    assert file is not None and title is not None
    resources, test = load_case(file, title)
    check_case(evaluate, resources, test)


@pytest.mark.shared
@pytest.mark.parametrize(("file", "title"), _suite_cases())
def test_auto_engine_passes_suite_case(file: str | None, title: str | None) -> None:
    """The default engine (DuckDB where the view compiles, reference otherwise) passes too."""
    if file is None:
        shared_path(*SUITE_DIR)
    assert file is not None and title is not None
    resources, test = load_case(file, title)
    check_case(lambda view, res: run(view, res, engine="auto"), resources, test)
