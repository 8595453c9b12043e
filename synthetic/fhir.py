"""The one place that chooses the FHIR version and its models.

We emit FHIR R4 (4.0.1) JSON that also validates with the ``fhir.resources.R4B`` models
(``fhir.resources`` ships no plain R4 package). Nothing else in either package imports
``fhir.resources`` directly: call :func:`validate` or :func:`model_class`.

>>> validate({"resourceType": "Patient", "id": "p1", "birthDate": "2001-02-03"})
[]
>>> validate({"resourceType": "Patient", "birthDate": "2001-13-45"})[0][0]
'birthDate'
"""

from __future__ import annotations

from functools import cache
from typing import Any

FHIR_VERSION = "4.0.1"
"""The FHIR release of everything the project writes."""

MODELS_PACKAGE = "fhir.resources.R4B"
"""The model package used to validate (R4B is a superset we stay inside of)."""


@cache
def model_class(resource_type: str) -> Any:
    """Return the pydantic model class for ``resource_type``.

    Raises ``KeyError`` for a name that is not a FHIR resource type.

    >>> model_class("Observation").__name__
    'Observation'
    """
    from fhir.resources.R4B import get_fhir_model_class

    try:
        return get_fhir_model_class(resource_type)
    except (KeyError, ValueError, AttributeError, ImportError) as exc:
        raise KeyError(resource_type) from exc


@cache
def is_resource_type(name: str) -> bool:
    """True when ``name`` is a FHIR resource type (case-sensitive).

    >>> is_resource_type("Observation"), is_resource_type("observation"), is_resource_type("Foobar")
    (True, False, False)
    """
    if not name or not name[0].isupper():
        return False
    # answered from a list of the model names, so no pydantic model is built (importing the
    # models costs about a second; a session start checks many type names)
    from synthetic.fhir_names import MODEL_NAMES

    return name in MODEL_NAMES


def _loc_to_path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(resource)"


def validate(resource: dict[str, Any]) -> list[tuple[str, str]]:
    """Validate one resource dict; return ``[(field_path, message), ...]`` (empty when valid).

    >>> validate({"resourceType": "Nope"})
    [('resourceType', "unknown FHIR resource type 'Nope'")]
    """
    rtype = resource.get("resourceType") if isinstance(resource, dict) else None
    if not isinstance(rtype, str) or not is_resource_type(rtype):
        return [("resourceType", f"unknown FHIR resource type {rtype!r}")]
    from pydantic import ValidationError as PydanticValidationError

    try:
        model_class(rtype).model_validate(resource)
    except PydanticValidationError as exc:
        return [(_loc_to_path(tuple(e["loc"])), str(e["msg"])) for e in exc.errors()]
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        # fhir.resources raises these for some shapes (e.g. a contained resource of unknown type)
        return [("(resource)", f"{type(exc).__name__}: {exc}")]
    return []
