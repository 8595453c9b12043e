"""Rule 1: the resource must validate against the FHIR R4B model.

Delegates to :func:`synthetic.fhir.validate` (the only module that touches the models) and
keeps its field paths as given.

>>> [p.path for p in structural_problems({"resourceType": "Patient", "birthDate": "2001-13-45"})]
['birthDate']
>>> structural_problems({"resourceType": "Patient", "id": "p1"})
[]
"""

from __future__ import annotations

from typing import Any

from synthetic.fhir import is_resource_type, validate

from .problem import Problem

__all__ = ["structural_problems"]

_WHY = "the record must be valid FHIR R4B so every other system (and report) can read it"


def structural_problems(resource: dict[str, Any]) -> list[Problem]:
    """Return one :class:`Problem` per model error (empty when the resource is well formed).

    >>> structural_problems({"resourceType": "Nope"})[0].expected
    'a FHIR R4B resource type'
    """
    bad_contained = _contained_type_problems(resource)
    if bad_contained:
        # The model library crashes on an unknown contained type, so report those first.
        return bad_contained
    try:
        found = validate(resource)
    except (RecursionError, LookupError, AttributeError):
        return [
            Problem("(resource)", "a resource the FHIR model can read", why=_WHY, rule="structure")
        ]
    problems = []
    for path, message in found:
        if path == "resourceType":
            problems.append(
                Problem(
                    path,
                    "a FHIR R4B resource type",
                    found=resource.get("resourceType"),
                    why=_WHY,
                    rule="structure",
                )
            )
        else:
            problems.append(Problem(path, _expected_from(message), why=_WHY, rule="structure"))
    return problems


def _contained_type_problems(resource: dict[str, Any]) -> list[Problem]:
    """Problems for ``contained`` entries whose ``resourceType`` is not a FHIR type.

    >>> [p.path for p in _contained_type_problems({"contained": [{"resourceType": "Nope"}]})]
    ['contained[0].resourceType']
    """
    contained = resource.get("contained")
    if not isinstance(contained, list):
        return []
    problems = []
    for i, inner in enumerate(contained):
        rtype = inner.get("resourceType") if isinstance(inner, dict) else None
        if isinstance(inner, dict) and not (isinstance(rtype, str) and is_resource_type(rtype)):
            problems.append(
                Problem(
                    f"contained[{i}].resourceType",
                    "a FHIR R4B resource type",
                    found=rtype,
                    why=_WHY,
                    rule="structure",
                )
            )
    return problems


def _expected_from(message: str) -> str:
    """Turn pydantic's wording into the 'expected ...' phrase of our messages.

    >>> _expected_from("Input should be a valid string")
    'a valid string'
    >>> _expected_from("Extra inputs are not permitted")
    'no such element (this field is not part of the resource type)'
    >>> _expected_from("Field required")
    'a value (this element is required)'
    """
    if message.startswith("Input should be "):
        return message[len("Input should be ") :]
    if message == "Extra inputs are not permitted":
        return "no such element (this field is not part of the resource type)"
    if message == "Field required":
        return "a value (this element is required)"
    if message.startswith("Value error, "):
        return "a valid value: " + message[len("Value error, ") :]
    return "a valid value: " + message
