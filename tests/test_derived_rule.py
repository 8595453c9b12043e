"""Which references make a record inherit labels is one rule over the HL7 definitions
(``ehr_sandbox.access.derived``, docs/privacy.md "Records about a record inherit its labels").

Rules:

1. **Every R4B resource type is classified.** For every resource type of HL7 FHIR R4B (the
   core package's definitions, ``r4b_rules.json`` "references"), every reference element whose
   name says the record is about, for or because of another (``derived.ABOUT_ELEMENTS``) is
   either a path the record inherits labels through (``DERIVED_FROM``) or a named exemption
   with its reason (``NOT_DERIVED``), never neither, never both.
2. **The table names real elements.** Every path of ``DERIVED_FROM`` is a reference element
   of its type in R4B, and every exemption is an element the rule names.
3. **Reverse lookups read exactly their element.** A search parameter used to find the
   records derived from a source indexes exactly that path, and keeps only types R4B allows
   there.
4. **Any derived path carries labels, whatever the shape.** For any type and path of
   ``DERIVED_FROM`` and any source type R4B allows there, a record pointing at a labelled
   source through that path (a single reference or a list, a relative, absolute or versioned
   reference) names the source, inherits its labels on write, and is raised by a relabel of
   the source, also through a second derived record (transitively).
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ehr_sandbox.access.derived import (
    ABOUT_ELEMENTS,
    DERIVED_FROM,
    NOT_DERIVED,
    VERSIONED_ONLY,
    about_elements,
    cascade,
    derived_sources,
    inherit_labels,
    reverse_lookups,
)
from ehr_sandbox.access.labels import (
    ACT_CODE,
    CONFIDENTIALITY_RANK,
    confidentiality_coding,
    confidentiality_of,
    sensitivities_of,
)
from ehr_sandbox.search.registry import params_for
from ehr_sandbox.validation.r4b import rules
from synthetic.fhir import is_resource_type

REFERENCES: dict[str, dict[str, list[str]]] = rules()["references"]
DERIVED_PATHS = sorted((t, ".".join(p)) for t, paths in DERIVED_FROM.items() for p in paths)


# ---------------------------------------------------------------------------- rule 1
def test_every_r4b_resource_type_is_walked() -> None:
    # the definitions are the whole of R4B, not the types the sandbox happens to write
    assert len(REFERENCES) >= 140
    assert all(is_resource_type(t) for t in REFERENCES)
    assert {"RiskAssessment", "AppointmentResponse", "SupplyDelivery"} <= set(REFERENCES)


def test_every_about_element_of_every_r4b_type_is_derived_or_exempt() -> None:
    derived = set(DERIVED_PATHS)
    missing = []
    for rtype, elements in sorted(REFERENCES.items()):
        for path in sorted(elements):
            if path.rsplit(".", 1)[-1] not in ABOUT_ELEMENTS:
                continue
            if (rtype, path) not in derived and (rtype, path) not in NOT_DERIVED:
                missing.append(f"{rtype}.{path}")
    assert missing == []
    # the helper the module offers walks the same elements
    assert {(t, p) for t, p, _ in about_elements()} <= derived | set(NOT_DERIVED)


def test_no_element_is_both_derived_and_exempt() -> None:
    assert set(DERIVED_PATHS) & set(NOT_DERIVED) == set()


# ---------------------------------------------------------------------------- rule 2
def test_every_derived_path_is_a_reference_element_of_its_r4b_type() -> None:
    unknown = [f"{t}.{p}" for t, p in DERIVED_PATHS if p not in REFERENCES.get(t, {})]
    assert unknown == []


def test_every_exemption_is_an_about_element_with_a_reason() -> None:
    about = {(t, p) for t, p, _ in about_elements()}
    for key, reason in NOT_DERIVED.items():
        assert key in about, key
        assert isinstance(reason, str) and len(reason.split()) >= 8, key
    for name, why in ABOUT_ELEMENTS.items():
        assert len(why.split()) >= 4, name
        # each name of the rule is a reference element of some R4B type (no dead names)
        assert any(p.rsplit(".", 1)[-1] == name for refs in REFERENCES.values() for p in refs)


# ---------------------------------------------------------------------------- rule 3
def test_reverse_lookups_cover_every_derived_path_with_a_parameter_on_exactly_it() -> None:
    looked = {(t, ".".join(p)): (param, targets) for t, p, param, targets in reverse_lookups()}
    assert set(looked) == set(DERIVED_PATHS)
    for (rtype, path), (param, targets) in looked.items():
        candidates = [
            p for p in params_for(rtype).values() if p.type == "reference" and p.paths == (path,)
        ]
        if param is None:
            assert candidates == [], (rtype, path)
            continue
        spec = params_for(rtype)[param]
        assert spec.type == "reference" and spec.paths == (path,), (rtype, path)
        allowed = set(REFERENCES[rtype][path])
        assert "Resource" in allowed or set(targets) <= allowed, (rtype, path, targets)
    # the scheduling records the review found unlabelled are found through the index
    assert looked[("Appointment", "reasonReference")][0] == "reason-reference"
    assert looked[("AppointmentResponse", "appointment")][0] == "appointment"


# ---------------------------------------------------------------------------- rule 4
def _place(path: tuple[str, ...], ref: dict[str, str], listed: list[bool]) -> Any:
    """A value holding ``ref`` at ``path`` (each step a list or not, as ``listed`` says)."""
    value: Any = ref
    for i, step in reversed(list(enumerate(path))):
        value = {step: [value] if listed[i % len(listed)] else value}
    return value


def _labels(level: str, sens: set[str]) -> list[dict[str, Any]]:
    return [confidentiality_coding(level), *({"system": ACT_CODE, "code": c} for c in sorted(sens))]


def _below(record: dict[str, Any], source: dict[str, Any]) -> bool:
    mine = CONFIDENTIALITY_RANK.get(confidentiality_of(record) or "N", 0)
    theirs = CONFIDENTIALITY_RANK.get(confidentiality_of(source) or "N", 0)
    return theirs > mine or not sensitivities_of(source) <= sensitivities_of(record)


@st.composite
def _derivation(draw: st.DrawFn) -> tuple[str, tuple[str, ...], str]:
    rtype, dotted = draw(st.sampled_from(DERIVED_PATHS))
    allowed = REFERENCES[rtype][dotted]
    concrete = sorted(REFERENCES) if "Resource" in allowed else allowed
    source = draw(st.sampled_from([t for t in concrete if t != "Patient"] or concrete))
    return rtype, tuple(dotted.split(".")), source


@settings(max_examples=300, deadline=None)
@given(
    first=_derivation(),
    second=_derivation(),
    listed=st.lists(st.booleans(), min_size=1, max_size=3),
    form=st.sampled_from(["relative", "absolute", "versioned"]),
    level=st.sampled_from(["R", "V"]),
    sens=st.sets(st.sampled_from(["HIV", "SUD", "PSY", "SDV", "ETH"]), max_size=2),
)
def test_any_derived_path_carries_its_sources_labels_directly_and_transitively(
    first: tuple[str, tuple[str, ...], str],
    second: tuple[str, tuple[str, ...], str],
    listed: list[bool],
    form: str,
    level: str,
    sens: set[str],
) -> None:
    rtype, path, stype = first
    if rtype in VERSIONED_ONLY:
        form = "versioned"  # a Provenance is about the versions it records
    ref = {
        "relative": f"{stype}/s1",
        "absolute": f"https://ehr.example.org/fhir/{stype}/s1",
        "versioned": f"{stype}/s1/_history/3",
    }[form]
    record = {
        "resourceType": rtype,
        "id": "d1",
        "meta": {"security": [confidentiality_coding("N")]},
        **_place(path, {"reference": ref}, listed),
    }
    assert derived_sources(record) == [(stype, "s1")]
    source = {"resourceType": stype, "id": "s1", "meta": {"security": _labels(level, sens)}}
    labelled = {
        **record,
        "meta": {"security": inherit_labels(record["meta"]["security"], [source])},
    }
    assert not _below(labelled, source)

    # a second record derived from the first, through any path that may point at its type
    rtype2, path2, _ = second
    allowed2 = REFERENCES[rtype2][".".join(path2)]
    db: dict[tuple[str, str], dict[str, Any]] = {
        (stype, "s1"): {**source, "meta": {"security": [confidentiality_coding("N")]}},
        (rtype, "d1"): record,
    }
    chained = "Resource" in allowed2 or rtype in allowed2
    if chained and (rtype2, "d2") not in db:
        ref2 = f"{rtype}/d1/_history/1" if rtype2 in VERSIONED_ONLY else f"{rtype}/d1"
        db[(rtype2, "d2")] = {
            "resourceType": rtype2,
            "id": "d2",
            "meta": {"security": [confidentiality_coding("N")]},
            **_place(path2, {"reference": ref2}, listed),
        }

    def deps(r: dict[str, Any]) -> list[dict[str, Any]]:
        key = (r["resourceType"], r["id"])
        return [d for d in db.values() if key in derived_sources(d)]

    def write(r: dict[str, Any], _src: dict[str, Any]) -> dict[str, Any]:
        db[(r["resourceType"], r["id"])] = r
        return r

    db[(stype, "s1")] = source  # the relabel of the source
    written = cascade(source, deps, lambda t, i: db.get((t, i)), write)
    assert not _below(db[(rtype, "d1")], source)
    assert (rtype, "d1") in {(r["resourceType"], r["id"]) for r in written}
    if (rtype2, "d2") in db:
        assert not _below(db[(rtype2, "d2")], source), (rtype2, path2)
