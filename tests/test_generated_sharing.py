"""Generated resources share content only in frozen form: a caller cannot corrupt others.

The generator hands the same coding, reference, ``meta`` or amount object to many resources
and to later records (see :mod:`synthetic.frozen`). The rule, for every generated resource and
every container in it: changing it in place either raises ``SharedContentError`` or changes no
other resource and no later record.
"""

from __future__ import annotations

import copy
import json
import pickle
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs

import synthetic
from synthetic.content import load_content
from synthetic.errors import GenerationError, SharedContentError
from synthetic.frozen import MESSAGE, FrozenDict, FrozenList
from synthetic.record import PatientRecord

PRESETS = sorted(load_content().populations)
SEED = 11
N = 3


def _generate(population: str = "family-practice", n: int = N) -> list[PatientRecord]:
    return list(synthetic.generate(n, seed=SEED, years=4, population=population))


def _bytes(records: list[PatientRecord]) -> list[list[bytes]]:
    return [[orjson.dumps(r) for r in rec.all()] for rec in records]


BASELINE = {p: _bytes(_generate(p)) for p in ("family-practice", "pediatrics")}


def _containers(obj: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    """Every dict and list inside ``obj`` (itself included) with its path."""
    if isinstance(obj, dict | list):
        yield path, obj
        items = obj.items() if isinstance(obj, dict) else enumerate(obj)
        for k, v in items:
            yield from _containers(v, (*path, k))


def _mutate(target: Any, how: int) -> None:
    """One in-place change of a dict or a list (``how`` picks which)."""
    if isinstance(target, dict):
        key = next(iter(target), "x")
        ops = [
            lambda: target.__setitem__("x-mutated", 1),
            lambda: target.__setitem__(key, "mutated"),
            lambda: target.setdefault("security", []),
            lambda: target.update({"x-mutated": 2}),
            lambda: target.pop(key, None),
            lambda: target.clear(),
            lambda: target.__delitem__(key) if key in target else target.clear(),
            lambda: target.__ior__({"x-mutated": 3}),
        ]
    else:
        ops = [
            lambda: target.append("mutated"),
            lambda: target.extend(["mutated"]),
            lambda: target.insert(0, "mutated"),
            lambda: target.__setitem__(0, "mutated") if target else target.append(1),
            lambda: target.clear(),
            lambda: target.pop() if target else target.append(1),
            lambda: target.__iadd__(["mutated"]),
            lambda: target.reverse() if len(target) > 1 else target.append(1),
        ]
    ops[how % len(ops)]()


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
)
@given(
    population=hs.sampled_from(sorted(BASELINE)),
    rec_i=hs.integers(0, N - 1),
    res_pick=hs.integers(0, 10**6),
    path_pick=hs.integers(0, 10**6),
    how=hs.integers(0, 7),
)
def test_mutating_any_container_changes_no_other_resource_and_no_later_record(
    population: str, rec_i: int, res_pick: int, path_pick: int, how: int
) -> None:
    baseline = BASELINE[population]
    records = _generate(population)
    resources = list(records[rec_i].all())
    res_i = res_pick % len(resources)
    found = list(_containers(resources[res_i]))
    path, target = found[path_pick % len(found)]
    try:
        _mutate(target, how)
    except SharedContentError as e:
        assert str(e) == MESSAGE
        assert isinstance(target, FrozenDict | FrozenList), path
        assert orjson.dumps(resources[res_i]) == baseline[rec_i][res_i]  # nothing changed
    else:
        assert not isinstance(target, FrozenDict | FrozenList), path
    now = _bytes(records)
    for i, rec in enumerate(now):
        for j, data in enumerate(rec):
            if (i, j) != (rec_i, res_i):
                assert data == baseline[i][j], (path, records[i].count(), j)
    assert _bytes(_generate(population)) == baseline  # later output is unchanged


@pytest.mark.parametrize("population", PRESETS)
def test_no_plain_container_is_reachable_from_two_resources(population: str) -> None:
    owners: dict[int, tuple[int, int]] = {}
    shared = []
    for i, rec in enumerate(_generate(population, 4)):
        for j, r in enumerate(rec.all()):
            for path, c in _containers(r):
                if isinstance(c, FrozenDict | FrozenList):
                    continue
                prev = owners.setdefault(id(c), (i, j))
                if prev != (i, j):
                    shared.append((r["resourceType"], path))
    assert not shared, shared[:10]


def test_shared_parts_raise_a_typed_error_and_a_deep_copy_is_editable() -> None:
    rec = _generate()[0]
    obs = next(r for r in rec.resources if r["resourceType"] == "Observation")
    with pytest.raises(SharedContentError, match=r"copy\.deepcopy\(resource\)") as info:
        obs["code"]["coding"][0]["display"] = "x"
    assert isinstance(info.value, TypeError) and isinstance(info.value, GenerationError)
    with pytest.raises(SharedContentError):
        obs["meta"]["security"] = []
    obs["status"] = "amended"  # the resource's own top-level fields stay editable
    mine = copy.deepcopy(obs)
    mine["code"]["coding"][0]["display"] = "x"
    mine.setdefault("meta", {})["security"] = [{"code": "R"}]
    assert type(mine["meta"]) is dict and type(mine["code"]["coding"]) is list
    assert obs["code"]["coding"][0]["display"] != "x"


def test_frozen_output_serialises_pickles_and_validates_like_plain_data() -> None:
    from synthetic.fhir import validate

    for rec in _generate(n=2):
        for r in rec.all():
            plain = copy.deepcopy(r)
            assert orjson.dumps(r) == orjson.dumps(plain)
            assert json.dumps(r) == json.dumps(plain)
            back = pickle.loads(pickle.dumps(r))
            assert back == plain and orjson.dumps(back) == orjson.dumps(plain)
        for r in [rec.patient, *rec.resources[:60]]:
            assert validate(r) == [], r["resourceType"]
