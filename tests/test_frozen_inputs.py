"""Generated resources carry frozen shared parts (``synthetic.frozen``: dict and list
subclasses). The rule: every function of the EHR that takes resources treats them exactly as
the same data in plain dicts and lists (a check written ``type(x) is list`` would silently
skip them: de-identification once passed frozen lists through untouched)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import date
from typing import Any

import orjson
import pytest

import synthetic
from ehr_sandbox.access import patients_of
from ehr_sandbox.crypto.canonical import canonical_json
from ehr_sandbox.deid import deidentify
from ehr_sandbox.search.extract import stored_rows
from ehr_sandbox.views import run
from synthetic.frozen import FrozenDict, FrozenList

REF = date(2026, 1, 1)


def _frozen_count(obj: Any) -> int:
    n = int(isinstance(obj, FrozenDict | FrozenList))
    items = obj.values() if isinstance(obj, dict) else obj if isinstance(obj, list) else ()
    return n + sum(_frozen_count(v) for v in items)


@pytest.fixture(scope="module")
def generated() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for rec in synthetic.generate(3, seed=5, reference_date=REF, years=2):
        out.extend(rec.all())
    assert sum(_frozen_count(r) for r in out) > 100  # the rule is tested on frozen content
    return out


def _deid(resources: list[dict[str, Any]]) -> bytes:
    result = deidentify(resources, reference_date=REF, seed_or_rng=3)
    return orjson.dumps(result.resources, option=orjson.OPT_SORT_KEYS)


VIEW = {
    "resource": "Observation",
    "select": [
        {
            "column": [
                {"name": "id", "path": "id"},
                {"name": "patient", "path": "subject.reference"},
                {"name": "code", "path": "code.coding.first().code"},
                {"name": "codings", "path": "code.coding", "collection": True},
                {"name": "vital", "path": "category.coding.where(code = 'vital-signs').exists()"},
                {"name": "same", "path": "code.coding.first() = code.coding.first()"},
                {"name": "value", "path": "value.ofType(Quantity).value"},
            ]
        }
    ],
}


FUNCTIONS: dict[str, Callable[[list[dict[str, Any]]], Any]] = {
    "deidentify": _deid,
    "canonical_json": lambda rs: [canonical_json(r) for r in rs],
    "search index rows": lambda rs: [sorted(map(repr, stored_rows(r))) for r in rs],
    "patients_of": lambda rs: [patients_of(r) for r in rs],
    "views (python engine)": lambda rs: run(VIEW, rs, engine="python"),
}


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_frozen_content_is_treated_as_plain_data(name: str, generated: list) -> None:
    plain = copy.deepcopy(generated)
    assert sum(_frozen_count(r) for r in plain) == 0
    fn = FUNCTIONS[name]
    assert fn(generated) == fn(plain)
