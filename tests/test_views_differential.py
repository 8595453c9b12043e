"""Differential tests: the DuckDB fast path and the Python reference evaluator agree.

On the conformance suite (every view the fast path compiles) and on seeded generated-like
records (varied shapes: missing fields, several names, choice types, components, extensions)."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from test_sof_conformance import freeze

from conftest import shared_path
from ehr_sandbox.errors import ViewDefinitionError
from ehr_sandbox.views import compiles, evaluate, run

SUITE = ("conformance", "sql-on-fhir-v2")


def multiset(rows: list[dict[str, Any]]) -> Counter:
    return Counter(freeze(r) for r in rows)


def outcome(fn, *args: Any) -> tuple[str, Any]:
    try:
        return "rows", fn(*args)
    except ViewDefinitionError:
        return "error", None


def test_fast_path_matches_reference_on_every_compilable_suite_view() -> None:
    folder = shared_path(*SUITE)
    compiled = total = 0
    for path in sorted(Path(folder).glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        for test in data["tests"]:
            total += 1
            view = test["view"]
            try:
                if not compiles(view):
                    continue
            except ViewDefinitionError:
                continue
            compiled += 1
            ref_kind, ref_rows = outcome(evaluate, view, data["resources"])
            fast_kind, fast_rows = outcome(run, view, data["resources"], "duckdb")
            assert ref_kind == fast_kind, (path.stem, test["title"])
            if ref_kind == "rows":
                assert multiset(fast_rows) == multiset(ref_rows), (path.stem, test["title"])
                for fast_row, ref_row in zip(fast_rows, ref_rows, strict=False):
                    assert list(fast_row) == list(ref_row)
    # The fast path is only worth having if it covers most of the suite.
    assert compiled >= total // 2


RACES = ["2106-3", "2054-5", "2028-9", None]
LOINC = [
    ("8480-6", "Systolic blood pressure"),
    ("8462-4", "Diastolic blood pressure"),
    ("4548-4", "Hemoglobin A1c"),
]


def generated_like(seed: int, patients: int = 40) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out: list[dict[str, Any]] = []
    for i in range(patients):
        pid = f"p{i}"
        names = []
        for n in range(rng.randint(0, 3)):
            name: dict[str, Any] = {"family": f"Fam{i}-{n}"}
            if rng.random() < 0.7:
                name["given"] = [f"G{i}{n}{k}" for k in range(rng.randint(0, 2))] or ["Solo"]
            if rng.random() < 0.6:
                name["use"] = rng.choice(["official", "usual", "maiden"])
            names.append(name)
        patient: dict[str, Any] = {"resourceType": "Patient", "id": pid}
        if names:
            patient["name"] = names
        if rng.random() < 0.9:
            patient["gender"] = rng.choice(["female", "male", "other", "unknown"])
        if rng.random() < 0.9:
            patient["birthDate"] = (
                f"{rng.randint(1930, 2020)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
            )
        if rng.random() < 0.5:
            patient["active"] = rng.random() < 0.7
        race = rng.choice(RACES)
        if race:
            patient["extension"] = [
                {
                    "url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race",
                    "extension": [{"url": "ombCategory", "valueCoding": {"code": race}}],
                }
            ]
        if rng.random() < 0.5:
            patient["telecom"] = [
                {"system": rng.choice(["phone", "email"]), "value": f"t{i}-{k}"}
                for k in range(rng.randint(1, 3))
            ]
        out.append(patient)
        for j in range(rng.randint(0, 5)):
            code, display = rng.choice(LOINC)
            obs: dict[str, Any] = {
                "resourceType": "Observation",
                "id": f"o{i}-{j}",
                "status": rng.choice(["final", "amended", "entered-in-error"]),
                "subject": {"reference": f"Patient/{pid}"},
                "code": {
                    "coding": [{"system": "http://loinc.org", "code": code, "display": display}]
                },
            }
            kind = rng.random()
            if kind < 0.6:
                obs["valueQuantity"] = {
                    "value": round(rng.uniform(50, 200), rng.randint(0, 2)),
                    "unit": "mm[Hg]",
                }
            elif kind < 0.8:
                obs["valueString"] = "see note"
            elif kind < 0.9:
                obs["component"] = [
                    {
                        "code": {"coding": [{"code": c}]},
                        "valueQuantity": {"value": rng.randint(60, 180)},
                    }
                    for c in ("8480-6", "8462-4")
                ]
            if rng.random() < 0.8:
                obs["effectiveDateTime"] = (
                    f"2025-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T10:00:00-05:00"
                )
            out.append(obs)
        for j in range(rng.randint(0, 3)):
            codings = [
                {
                    "system": "http://hl7.org/fhir/sid/icd-10-cm",
                    "code": rng.choice(["I10", "E11.9", "J45.909"]),
                }
                for _ in range(rng.randint(0, 2))
            ]
            out.append(
                {
                    "resourceType": "Condition",
                    "id": f"c{i}-{j}",
                    "subject": {"reference": f"Patient/{pid}"},
                    "code": {"coding": codings, "text": "condition"},
                    "clinicalStatus": {"coding": [{"code": rng.choice(["active", "resolved"])}]},
                }
            )
    return out


VIEWS: list[dict[str, Any]] = [
    {
        "resource": "Patient",
        "select": [
            {
                "column": [
                    {"name": "id", "path": "getResourceKey()"},
                    {"name": "gender", "path": "gender"},
                    {"name": "birth_date", "path": "birthDate"},
                    {"name": "active", "path": "active"},
                    {
                        "name": "official_family",
                        "path": "name.where(use = 'official').family.first()",
                    },
                    {"name": "given", "path": "name.given.join(' ')"},
                    {"name": "families", "path": "name.family", "collection": True},
                    {
                        "name": "race",
                        "path": "extension('http://hl7.org/fhir/us/core/StructureDefinition/us-core-race')"
                        ".extension('ombCategory').value.ofType(Coding).code.first()",
                    },
                    {"name": "has_phone", "path": "telecom.where(system = 'phone').exists()"},
                    {"name": "n_names", "path": "name.count()"},
                ]
            },
            {
                "forEachOrNull": "telecom",
                "column": [
                    {"name": "tel", "path": "value"},
                    {"name": "tel_i", "path": "%rowIndex"},
                ],
            },
        ],
    },
    {
        "resource": "Observation",
        "where": [{"path": "status != 'entered-in-error'"}],
        "select": [
            {
                "column": [
                    {"name": "id", "path": "id"},
                    {"name": "patient", "path": "subject.getReferenceKey(Patient)"},
                    {"name": "code", "path": "code.coding.code.first()"},
                    {"name": "value", "path": "value.ofType(Quantity).value"},
                    {"name": "text_value", "path": "value.ofType(string)"},
                    {"name": "when", "path": "effective.ofType(dateTime)"},
                    {"name": "high", "path": "value.ofType(Quantity).value > 140"},
                ]
            }
        ],
    },
    {
        "resource": "Observation",
        "select": [
            {"column": [{"name": "id", "path": "id"}]},
            {
                "forEach": "component",
                "column": [
                    {"name": "component_code", "path": "code.coding[0].code"},
                    {"name": "component_value", "path": "value.ofType(Quantity).value"},
                ],
            },
        ],
    },
    {
        "resource": "Condition",
        "select": [
            {
                "column": [
                    {"name": "id", "path": "id"},
                    {"name": "status", "path": "clinicalStatus.coding.code.first()"},
                ]
            },
            {
                "forEach": "code.coding",
                "column": [{"name": "code", "path": "code"}, {"name": "i", "path": "%rowIndex"}],
            },
        ],
    },
    {
        "resource": "Patient",
        "select": [
            {"column": [{"name": "id", "path": "id"}]},
            {
                "unionAll": [
                    {"forEach": "name", "column": [{"name": "label", "path": "family"}]},
                    {"forEach": "telecom", "column": [{"name": "label", "path": "value"}]},
                ]
            },
        ],
    },
]


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("view_index", range(len(VIEWS)))
def test_fast_path_matches_reference_on_generated_like_records(seed: int, view_index: int) -> None:
    view = VIEWS[view_index]
    assert compiles(view)
    resources = generated_like(seed)
    reference = evaluate(view, resources)
    fast = run(view, resources, engine="duckdb")
    assert multiset(fast) == multiset(reference)
    assert all(list(row) == list(reference[0]) for row in fast) if reference else fast == []


def test_fast_path_reads_ndjson_directory_like_the_reference(tmp_path: Path) -> None:
    resources = generated_like(7)
    by_type: dict[str, list[str]] = {}
    for r in resources:
        by_type.setdefault(r["resourceType"], []).append(json.dumps(r))
    for rtype, lines in by_type.items():
        (tmp_path / f"{rtype}.ndjson").write_text("\n".join(lines) + "\n", encoding="utf-8")
    for view in VIEWS:
        reference = evaluate(view, resources)
        assert multiset(run(view, tmp_path, engine="duckdb")) == multiset(reference)
        assert multiset(run(view, tmp_path, engine="python")) == multiset(reference)


@pytest.mark.parametrize(
    "reference",
    [
        "Patient/1",
        "Group/2",
        "http://x/fhir/Patient/3",
        "Patient/4/_history/2",
        "urn:uuid:abc",
        "Patient",
        "x1/5",
        "Patient/",
    ],
)
def test_reference_keys_agree_on_unusual_references(reference: str) -> None:
    view = {
        "resource": "Observation",
        "select": [
            {
                "column": [
                    {"name": "any", "path": "subject.getReferenceKey()"},
                    {"name": "patient", "path": "subject.getReferenceKey(Patient)"},
                ]
            }
        ],
    }
    resources = [{"resourceType": "Observation", "subject": {"reference": reference}}]
    assert run(view, resources, engine="duckdb") == evaluate(view, resources)


def questionnaire_responses(seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)

    def items(prefix: str, depth: int) -> list[dict[str, Any]]:
        out = []
        for k in range(rng.randint(0, 3) if depth else 3):
            item: dict[str, Any] = {"linkId": f"{prefix}{k}", "text": f"Q{prefix}{k}"}
            if depth < 3 and rng.random() < 0.5:
                item["item"] = items(f"{prefix}{k}.", depth + 1)
            if rng.random() < 0.5:
                answer: dict[str, Any] = {"valueString": f"A{prefix}{k}"}
                if depth < 3 and rng.random() < 0.4:
                    answer["item"] = items(f"{prefix}{k}a.", depth + 1)
                item["answer"] = [answer]
            out.append(item)
        return out

    return [
        {
            "resourceType": "QuestionnaireResponse",
            "id": f"qr{i}",
            "status": "completed",
            "item": items("", 0),
        }
        for i in range(15)
    ]


def test_repeat_compiles_and_matches_reference_on_nested_questionnaires() -> None:
    view = {
        "resource": "QuestionnaireResponse",
        "select": [
            {"column": [{"name": "id", "path": "id"}]},
            {
                "repeat": ["item", "answer.item"],
                "column": [{"name": "link", "path": "linkId"}],
                "select": [
                    {
                        "forEachOrNull": "answer",
                        "column": [{"name": "answer", "path": "value.ofType(string)"}],
                    }
                ],
            },
        ],
    }
    assert compiles(view)
    resources = questionnaire_responses(5)
    reference = evaluate(view, resources)
    assert len(reference) > 15
    assert multiset(run(view, resources, engine="duckdb")) == multiset(reference)


PATIENT_PATHS = [
    "id", "gender", "birthDate", "active", "name.family.first()", "name.given", "name.family",
    "telecom.where(system = 'phone').value.first()", "name.where(use = 'official').exists()", "name.count()",
    "name.empty()", "name[1].family", "name[0].given[1]", "extension.exists()", "(gender = 'male') or active",
    "gender != 'female'", "birthDate > @1980-01-01", "birthDate <= '1990'", "telecom.value.join('|')", "active.not()",
    "name.given.count() > 1", "name.given = 'Solo'", "'Solo' = name.given", "active = true", "active implies gender = 'male'",
    "active xor true", "name.where(given.exists()).family.first()", "telecom.exists(system = 'email')", "%rowIndex",
]  # fmt: skip
OBSERVATION_PATHS = [
    "id", "status", "code.coding.code.first()", "value.ofType(Quantity).value", "value.ofType(Quantity).value > 100.5",
    "value.ofType(string)", "effective.ofType(dateTime) < '2025-06'", "component.count()", "component.code.coding.code",
    "subject.getReferenceKey()", "subject.getReferenceKey(Group)", "value.ofType(Quantity).unit = 'mm[Hg]'",
    "component.where(code.coding.code = '8480-6').value.ofType(Quantity).value.first()",
    "status = 'final' and value.ofType(Quantity).exists()", "code.coding.where(system = 'http://loinc.org').exists()",
]  # fmt: skip


def random_view(rng: random.Random, resource: str) -> dict[str, Any]:
    paths = PATIENT_PATHS if resource == "Patient" else OBSERVATION_PATHS
    columns = [
        {"name": f"c{j}", "path": p, **({"collection": True} if rng.random() < 0.3 else {})}
        for j, p in enumerate(rng.sample(paths, rng.randint(1, 3)))
    ]
    select: list[dict[str, Any]] = [{"column": columns}]
    if rng.random() < 0.3:
        each = "name" if resource == "Patient" else "component"
        inner = "family" if resource == "Patient" else "code.coding.code.first()"
        select.append(
            {
                rng.choice(["forEach", "forEachOrNull"]): each,
                "column": [{"name": "i", "path": "%rowIndex"}, {"name": "v", "path": inner}],
            }
        )
    view: dict[str, Any] = {"resource": resource, "select": select}
    if rng.random() < 0.3:
        view["where"] = [
            {"path": "gender = 'female'" if resource == "Patient" else "status = 'final'"}
        ]
    return view


def test_random_views_agree_between_engines() -> None:
    rng = random.Random(2026)
    data = generated_like(11, 30)
    compared = 0
    for i in range(40):
        view = random_view(rng, "Patient" if i % 2 else "Observation")
        if not compiles(view):
            continue
        compared += 1
        ref_kind, ref_rows = outcome(evaluate, view, data)
        fast_kind, fast_rows = outcome(run, view, data, "duckdb")
        assert ref_kind == fast_kind, view
        if ref_kind == "rows":
            assert multiset(fast_rows) == multiset(ref_rows), view
    assert compared >= 30
