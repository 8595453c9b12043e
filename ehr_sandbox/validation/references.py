"""Rule 3: every reference must point at something that exists.

A reference is relative, ``Type/id`` (optionally ``Type/id/_history/vid``, as Provenance
targets are), and must resolve through the ``exists`` callback the Session passes in. A
``#id`` reference must name a resource in ``contained`` (a bare ``#`` points at the
container itself). ``urn:uuid:``/``urn:oid:`` references are placeholders that only a
transaction Bundle resolves, so they are refused here: the Session replaces them before the
write. Absolute ``http(s)://`` references point at another server (e.g. another
organization in the network) and cannot be checked locally; they pass.

>>> from ehr_sandbox.validation.tree import scan
>>> obs = {"resourceType": "Observation", "subject": {"reference": "Patient/p1"}}
>>> reference_problems(obs, scan(obs), exists=lambda ref: ref == "Patient/p1")
[]
>>> [p.path for p in reference_problems(obs, scan(obs), exists=lambda ref: False)]
['subject.reference']
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ehr_sandbox.references import split_relative
from synthetic.fhir import is_resource_type

from .problem import Problem
from .tree import Scan, format_path

__all__ = ["reference_problems"]


def reference_problems(
    resource: dict[str, Any], found: Scan, *, exists: Callable[[str], bool]
) -> list[Problem]:
    """Problems for references in ``resource`` that do not resolve (see module docs).

    >>> from ehr_sandbox.validation.tree import scan
    >>> r = {"resourceType": "Claim", "contained": [{"resourceType": "Coverage", "id": "c"}],
    ...      "insurance": [{"coverage": {"reference": "#c"}}, {"coverage": {"reference": "#d"}}]}
    >>> [p.path for p in reference_problems(r, scan(r), exists=lambda ref: True)]
    ['insurance[1].coverage.reference']
    """
    if not found.references:
        return []
    own = None
    if isinstance(resource.get("resourceType"), str) and isinstance(resource.get("id"), str):
        own = f"{resource['resourceType']}/{resource['id']}"
    contained: set[str] = set()
    if isinstance(resource.get("contained"), list):
        contained = {
            c["id"]
            for c in resource["contained"]
            if isinstance(c, dict) and isinstance(c.get("id"), str)
        }
    problems = []
    known: dict[str, bool] = {}  # each distinct target is looked up once

    def exists_once(target: str) -> bool:
        if target not in known:
            known[target] = bool(exists(target))
        return known[target]

    for path, ref in found.references:
        problem = _one(ref, own, contained, exists_once)
        if problem is not None:
            expected, why = problem
            problems.append(
                Problem(format_path(path), expected, found=ref, why=why, rule="reference")
            )
    return problems


def _one(
    ref: str, own: str | None, contained: set[str], exists: Callable[[str], bool]
) -> tuple[str, str] | None:
    if ref.startswith("#"):
        if ref == "#" or ref[1:] in contained:
            return None
        return (
            f"a contained resource with id {ref[1:]!r}",
            "a '#id' reference must point at a resource inside this resource's 'contained' list",
        )
    if ref.startswith("urn:"):
        return (
            "a relative reference 'Type/id' to a stored resource",
            "urn:uuid/urn:oid placeholders are resolved only inside a transaction Bundle; "
            "submit the Bundle with session.transaction() or use the stored resource's 'Type/id'",
        )
    if ref.startswith(("http://", "https://")):
        return None
    parts = split_relative(ref)
    if parts is None:
        return (
            "a relative reference of the form 'Type/id' (e.g. 'Patient/123')",
            "other systems resolve references by resource type and id",
        )
    rtype, rid, _version = parts
    if not is_resource_type(rtype):
        return (
            f"a FHIR resource type before the '/' (not {rtype!r})",
            "the type part must be a FHIR resource type",
        )
    target = f"{rtype}/{rid}"
    if target == own or exists(target):
        return None
    return (
        f"a reference to an existing {rtype}",
        f"{target} does not exist (or you may not see it); a dangling reference would leave "
        "the record pointing at nothing — create the target first or fix the id",
    )
