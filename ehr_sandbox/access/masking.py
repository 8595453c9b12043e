"""Minimum necessary: what a role sees of a resource it may read.

Access control decides *whether* a resource is seen; masking decides *how much* of it. Billing
codes claims, so it sees the codes of Observations, Conditions and Procedures but not result
values, interpretations or clinical notes. Whenever anything is removed the narrative
(``text.div``, which repeats the data in HTML) is removed too, and the resource is tagged
``REDACTED`` so nobody mistakes it for the full record; a type the role sees only in part
never keeps its narrative, even when no structured element was there to remove (a note typed
only into the narrative). Contained resources that belong to
another patient are dropped for every role.

>>> obs = {"resourceType": "Observation", "subject": {"reference": "Patient/p"},
...        "code": {"text": "Glucose"}, "valueQuantity": {"value": 212, "unit": "mg/dL"},
...        "text": {"status": "generated", "div": "<div>Glucose 212 mg/dL</div>"}}
>>> m = mask("billing", obs)
>>> "valueQuantity" in m, "text" in m, m["code"]
(False, False, {'text': 'Glucose'})
>>> mask("physician", obs) == obs
True
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import orjson

from ehr_sandbox.access.compartment import patients_of
from synthetic.systems import V3_OBSERVATION_VALUE

REDACTED_SYSTEM = V3_OBSERVATION_VALUE
REDACTED_CODING: dict[str, str] = {
    "system": REDACTED_SYSTEM,
    "code": "REDACTED",
    "display": "redacted",
}

_NOTES = ("note",)
_RESULTS = (
    "value[x]",
    "component.value[x]",
    "interpretation",
    "component.interpretation",
    "referenceRange",
    "component.referenceRange",
    "note",
)

# role -> resource type ("*" = any) -> element paths to remove. "x[x]" is a choice element
# (valueQuantity, valueString, ...); a dotted path goes through lists.
MASKS: dict[str, dict[str, tuple[str, ...]]] = {
    "billing": {
        "*": _NOTES,
        "Observation": _RESULTS,
        "DiagnosticReport": ("conclusion", "conclusionCode", "presentedForm", "result", "note"),
        "Condition": ("note", "evidence", "stage"),
        "Procedure": ("note", "report", "outcome", "complication", "followUp"),
        "DocumentReference": ("content",),
        "Patient": ("photo",),
    },
    "instructor": {
        "Patient": ("photo",),
    },
}
"""Masking profiles per role (roles absent here see everything they may read).

Only roles that cannot update the masked types get a profile: a masked copy is marked
REDACTED and the policy refuses to write it back (it would erase what was withheld)."""


def _remove(node: Any, parts: list[str]) -> bool:
    if isinstance(node, list):
        hit = False
        for item in node:
            hit = _remove(item, parts) or hit
        return hit
    if not isinstance(node, dict):
        return False
    head = parts[0]
    if len(parts) > 1:
        child = node.get(head)
        return _remove(child, parts[1:]) if child is not None else False
    if head.endswith("[x]"):
        prefix = head[:-3]
        keys = [
            k
            for k in node
            if k.startswith(prefix) and len(k) > len(prefix) and k[len(prefix)].isupper()
        ]
    else:
        keys = [head] if head in node else []
    for k in keys:
        del node[k]
    return bool(keys)


def deep_copy(resource: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of a JSON resource (fast path through JSON bytes).

    >>> r = {"a": [{"b": 1}]}; c = deep_copy(r); c["a"][0]["b"] = 2; r["a"][0]["b"]
    1
    """
    try:
        return orjson.loads(orjson.dumps(resource))
    except TypeError:
        return copy.deepcopy(dict(resource))


def mask_paths(role: str, resource_type: str) -> tuple[str, ...]:
    """The element paths ``role`` does not see on ``resource_type``.

    >>> "value[x]" in mask_paths("billing", "Observation"), mask_paths("nurse", "Observation")
    (True, ())
    """
    profile = MASKS.get(role)
    if not profile:
        return ()
    specific = profile.get(resource_type, ())
    general = profile.get("*", ())
    return tuple(dict.fromkeys((*specific, *general)))


def _part_covers(mask_part: str, part: str) -> bool:
    if mask_part.endswith("[x]"):
        prefix = mask_part[:-3]
        return part == prefix or (
            part.startswith(prefix) and len(part) > len(prefix) and part[len(prefix)].isupper()
        )
    return part == mask_part


def path_masked(path: str, mask_path: str) -> bool:
    """True when the element ``path`` (as a search parameter reads it) overlaps the masked
    ``mask_path``: the same element, inside it, or containing it.

    >>> path_masked("valueQuantity", "value[x]"), path_masked("component.valueQuantity", "value[x]")
    (True, False)
    >>> path_masked("component.valueQuantity", "component.value[x]"), path_masked("code", "value[x]")
    (True, False)
    """
    a, b = path.split("."), mask_path.split(".")
    n = min(len(a), len(b))
    return all(_part_covers(m, x) for m, x in zip(b[:n], a[:n], strict=True))


def masked_search_params(role: str, resource_type: str) -> frozenset[str]:
    """Search parameters of ``resource_type`` that read an element ``role`` sees masked.

    Derived from :data:`MASKS` and the search registry, so a new mask also closes the search
    and sort side channel (40 ``value-quantity=gtX`` searches would otherwise recover a
    masked value exactly).

    >>> sorted(masked_search_params("billing", "Observation"))
    ['value-concept', 'value-quantity']
    >>> masked_search_params("nurse", "Observation")
    frozenset()
    """
    return _masked_params(role, resource_type)


@lru_cache(maxsize=512)
def _masked_params(role: str, resource_type: str) -> frozenset[str]:
    from ehr_sandbox.errors import SandboxError
    from ehr_sandbox.search.registry import params_for

    paths = mask_paths(role, resource_type)
    if not paths:
        return frozenset()
    try:
        params = params_for(resource_type)
    except SandboxError:  # an unknown type has no parameters to refuse
        return frozenset()
    return frozenset(
        name
        for name, p in params.items()
        if any(path_masked(pp, mp) for pp in p.paths for mp in paths)
    )


def _masks_type(role: str, resource_type: object) -> bool:
    profile = MASKS.get(role)
    return bool(profile and isinstance(resource_type, str) and profile.get(resource_type))


def mask(role: str, resource: dict[str, Any]) -> dict[str, Any]:
    """A new dict: ``resource`` as ``role`` may see it (the input is never modified).

    >>> cond = {"resourceType": "Condition", "code": {"text": "Asthma"}, "note": [{"text": "x"}]}
    >>> sorted(mask("billing", cond)), sorted(cond)
    (['code', 'meta', 'resourceType'], ['code', 'note', 'resourceType'])
    """
    if not isinstance(resource, dict):
        return resource
    rtype = resource.get("resourceType")
    paths = mask_paths(role, rtype) if isinstance(rtype, str) else ()
    contained = resource.get("contained")
    if not paths and not contained:
        return dict(resource)
    out = deep_copy(resource)
    removed = False
    if isinstance(contained, list):
        mine = patients_of(resource)
        keep = []
        for item in out.get("contained", []):
            theirs = patients_of(item)
            if theirs and not theirs <= mine:
                removed = True
                continue
            keep.append(mask(role, item) if isinstance(item, dict) else item)
        out["contained"] = keep
    for path in paths:
        removed = _remove(out, path.split(".")) or removed
    if "text" in out and _masks_type(role, rtype):
        # A type the role sees only in part: its narrative can say what was withheld even
        # when no structured element held it (a note written only in ``text.div``).
        removed = True
    if removed:
        # The narrative repeats the data in HTML: it goes too (it is optional in FHIR).
        out.pop("text", None)
        tag_redacted(out)
    return out


def tag_redacted(resource: dict[str, Any]) -> None:
    """Mark ``resource`` (in place) as a redacted copy, once: nobody mistakes it for the full
    record, and the policy refuses to write it back.

    >>> r = {"resourceType": "Observation"}; tag_redacted(r); tag_redacted(r)
    >>> [c["code"] for c in r["meta"]["security"]]
    ['REDACTED']
    """
    meta = resource.setdefault("meta", {})
    security = meta.setdefault("security", [])
    if isinstance(security, list) and not any(
        isinstance(c, dict) and c.get("code") == "REDACTED" for c in security
    ):
        security.append(dict(REDACTED_CODING))
