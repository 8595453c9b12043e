"""Fuzz: mutated valid resources give either OK or a ValidationError, never another exception."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ehr_sandbox.errors import ValidationError
from ehr_sandbox.validation import CodeSets, check
from tests.test_validation import CODES, bp, condition, patient_named, vital

BASES: list[dict[str, Any]] = [
    bp(128, 82),
    vital("8310-5", 37.1, "Cel"),
    vital("29463-7", 70.2, "kg"),
    condition("I10"),
    patient_named("Ana"),
    {
        "resourceType": "Claim",
        "id": "cl1",
        "status": "active",
        "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/claim-type", "code": "professional"}]},
        "use": "claim",
        "patient": {"reference": "Patient/p1"},
        "created": "2025-01-01",
        "provider": {"reference": "Organization/o1"},
        "priority": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/processpriority", "code": "normal"}]},
        "contained": [{"resourceType": "Coverage", "id": "cov", "status": "active",
                       "beneficiary": {"reference": "Patient/p1"}, "payor": [{"reference": "Organization/o1"}]}],
        "insurance": [{"sequence": 1, "focal": True, "coverage": {"reference": "#cov"}}],
        "total": {"value": 123.45, "currency": "USD"},
    },
]  # fmt: skip

HOSTILE_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x9F), max_size=10),
    st.just("\ud800"),
    st.just("x" * 1_000_001),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
    st.sampled_from(
        ["urn:uuid:1", "#nope", "Patient/", "Foo/1", "http://www.ama-assn.org/go/cpt", "mm[Hg]"]
    ),
)


def _slots(node: Any, out: list[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
    """Every (container, key) pair in the tree, so a mutation can target any element."""
    if isinstance(node, dict):
        for key, value in node.items():
            out.append((node, key))
            _slots(value, out)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out.append((node, i))
            _slots(value, out)
    return out


@st.composite
def mutated(draw: st.DrawFn) -> dict[str, Any]:
    resource = copy.deepcopy(draw(st.sampled_from(BASES)))
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        slots = _slots(resource, [])
        if not slots:
            break
        container, key = draw(st.sampled_from(slots))
        action = draw(st.sampled_from(["delete", "replace", "rename"]))
        if action == "delete":
            del container[key]
        elif action == "replace":
            container[key] = draw(HOSTILE_VALUES)
        elif isinstance(container, dict):
            container[draw(st.text(max_size=8))] = container.pop(key)
    return resource


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(resource=mutated(), refs_exist=st.booleans())
def test_mutated_resources_fail_only_with_validation_error(
    resource: dict[str, Any], refs_exist: bool
) -> None:
    try:
        check(resource, exists=lambda ref: refs_exist, content=CODES)
    except ValidationError as err:
        assert err.errors and err.errors[0] is err
        assert all(isinstance(e, ValidationError) for e in err.errors)
        # A rule that crashed is caught by a safety net; the fuzz must never need it.
        assert not [e for e in err.errors if e.rule == "internal"], err.errors
        rtype = resource.get("resourceType")
        assert err.resource == "resource" or err.resource.split("/")[0] == rtype
        assert str(err).startswith(f"{err.resource}: {err.path}: expected ")


@settings(max_examples=100, deadline=None)
@given(value=HOSTILE_VALUES)
def test_arbitrary_top_level_values_fail_cleanly(value: Any) -> None:
    try:
        check(value, exists=lambda ref: True, content=CodeSets({}))
    except ValidationError as err:
        assert err.path
    else:
        raise AssertionError(f"{value!r} is not a resource but was accepted")
