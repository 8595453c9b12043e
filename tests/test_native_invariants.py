"""The hand-compiled R4B invariants give FHIRPath's answers (property tests and real data)."""

from __future__ import annotations

import fhirpathpy
import pytest
from fhirpathpy.models import models
from hypothesis import given, settings
from hypothesis import strategies as st

import synthetic
from ehr_sandbox.validation.native_invariants import NATIVE
from ehr_sandbox.validation.r4b import r4b_problems, rules

_EXPRESSIONS = {
    (context, key): expr
    for context, items in rules()["invariants"].items()
    for key, expr, _ in items
}


def _fhirpath(context: str, key: str):
    text = _EXPRESSIONS[context, key].replace(".hasValue()", ".exists()")
    return fhirpathpy.compile(text, models["r4"])


def _assert_agree(context: str, key: str, item: dict, root: dict) -> None:
    said = _fhirpath(context, key)(item, {"resource": root, "rootResource": root})
    # FHIRPath's empty result means "not violated", as the validator reads it
    assert NATIVE[context, key](item, root) == (said != [False]), (context, key, item, root)


def test_every_native_invariant_is_an_r4b_invariant() -> None:
    assert set(NATIVE) <= set(_EXPRESSIONS)


codings = st.lists(
    st.fixed_dictionaries({"system": st.sampled_from(["s1", "s2"]), "code": st.sampled_from("ab")}),
    min_size=1,
    max_size=2,
)
present = st.sampled_from([None, "x"])


def _drop_none(d: dict) -> dict:
    return {k: v for k, v in d.items() if v is not None}


@settings(max_examples=150, deadline=None)
@given(
    ref=st.sampled_from(["Patient/1", "#", "#c1", "#c2", "http://x/Patient/1", None]),
    contained=st.lists(st.sampled_from(["c1", "c3"]), max_size=2, unique=True),
)
def test_ref_1_agrees_with_fhirpath(ref, contained) -> None:
    root = {"resourceType": "Observation"}
    if contained:
        root["contained"] = [{"resourceType": "Patient", "id": c} for c in contained]
    _assert_agree("Reference", "ref-1", _drop_none({"reference": ref, "display": "d"}), root)


@settings(max_examples=80, deadline=None)
@given(code=present, system=st.sampled_from([None, "http://unitsofmeasure.org"]))
def test_qty_3_agrees_with_fhirpath(code, system) -> None:
    item = _drop_none({"value": 1.5, "code": code, "system": system})
    for context in ("Quantity", "Age", "Count", "Distance", "Duration"):
        _assert_agree(context, "qty-3", item, {})


@settings(max_examples=150, deadline=None)
@given(
    own=codings,
    components=st.lists(codings, max_size=3),
    value=st.sampled_from([None, ("valueString", "v"), ("valueQuantity", {"value": 1})]),
    absent=st.booleans(),
)
def test_obs_6_and_obs_7_agree_with_fhirpath(own, components, value, absent) -> None:
    obs: dict = {"resourceType": "Observation", "status": "final", "code": {"coding": own}}
    if value:
        obs[value[0]] = value[1]
    if absent:
        obs["dataAbsentReason"] = {"text": "not done"}
    if components:
        obs["component"] = [{"code": {"coding": c}} for c in components]
    _assert_agree("Observation", "obs-6", obs, obs)
    _assert_agree("Observation", "obs-7", obs, obs)


@settings(max_examples=60, deadline=None)
@given(low=present, high=present, text=present, applies=st.booleans())
def test_obs_3_and_app_1_agree_with_fhirpath(low, high, text, applies) -> None:
    rr = _drop_none(
        {
            "low": {"value": 1} if low else None,
            "high": {"value": 2} if high else None,
            "text": text,
            "appliesTo": [{"text": "adults"}] if applies else None,
        }
    )
    _assert_agree("Observation.referenceRange", "obs-3", rr, {"resourceType": "Observation"})
    participant = _drop_none(
        {
            "type": [{"text": "t"}] if low else None,
            "actor": {"reference": "Patient/1"} if high else None,
            "status": "accepted",
        }
    )
    _assert_agree("Appointment.participant", "app-1", participant, {"resourceType": "Appointment"})


@pytest.mark.parametrize("seed", [3, 11])
def test_generated_resources_get_the_same_answers(seed: int) -> None:
    checked = 0
    for record in synthetic.generate(3, seed=seed):
        for res in record.all():
            assert r4b_problems(res) == []
            for ref_holder in _references(res):
                _assert_agree("Reference", "ref-1", ref_holder, res)
                checked += 1
            if res["resourceType"] == "Observation":
                _assert_agree("Observation", "obs-6", res, res)
                _assert_agree("Observation", "obs-7", res, res)
                checked += 2
    assert checked > 100


def _references(node):
    if isinstance(node, dict):
        if isinstance(node.get("reference"), str):
            yield node
        for v in node.values():
            yield from _references(v)
    elif isinstance(node, list):
        for v in node:
            yield from _references(v)


def test_a_broken_local_reference_is_refused() -> None:
    obs = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "x"},
        "contained": [{"resourceType": "Patient", "id": "c1"}],
        "subject": {"reference": "#c2"},
    }
    assert [p.path for p in r4b_problems(obs)] == ["subject"]
    obs["subject"]["reference"] = "#c1"
    assert r4b_problems(obs) == []
