"""FHIR references: the one place that parses and walks them.

A literal reference names a resource by type and logical id, relative (``Patient/123``),
versioned (``Patient/123/_history/2``) or absolute (``https://x.org/fhir/Patient/123``).
``#id`` (contained), ``urn:`` (transaction placeholders) and conditional references
(``Patient?identifier=...``) name no stored resource.

>>> split_reference("http://example.org/fhir/Patient/123/_history/2")
('Patient', '123')
>>> split_relative("Patient/123/_history/2")
('Patient', '123', '2')
>>> sorted(references_in({"subject": {"reference": "Patient/1"}, "contained": [
...     {"resourceType": "Provenance", "target": [{"reference": "Encounter/e"}]}]}))
['Encounter/e', 'Patient/1']
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

__all__ = [
    "ID_RE",
    "TYPE_RE",
    "iter_references",
    "reference_id",
    "references_in",
    "split_reference",
    "split_relative",
]

ID_RE = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
"""A FHIR logical id (``[A-Za-z0-9\\-.]{1,64}``)."""

TYPE_RE = re.compile(r"^[A-Z][A-Za-z]{1,63}$")
"""The shape of a resource type name (whether it is one is :func:`synthetic.fhir.is_resource_type`)."""

_RELATIVE = re.compile(
    r"^([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(?:/_history/([A-Za-z0-9\-.]{1,64}))?$"
)


@lru_cache(maxsize=1 << 16)
def split_reference(ref: str) -> tuple[str, str] | None:
    """``(type, id)`` of a relative, versioned or absolute literal reference, else None.

    The last ``Type/id`` of the URL counts (a trailing ``_history/<version>`` is skipped), so
    the same resource reached by a relative and an absolute URL gives the same pair.

    Parameters
    ----------
    ref : str
        The ``reference`` string of a Reference.

    Returns
    -------
    tuple of (str, str) or None
        The resource type and logical id; None for ``#contained``, ``urn:``, conditional
        (``Type?query``) and malformed references.

    Examples
    --------
    >>> split_reference("Patient/abc"), split_reference("#c1"), split_reference("patient/abc")
    (('Patient', 'abc'), None, None)
    >>> split_reference("Patient?identifier=x|1") is None
    True
    """
    if not ref or ref.startswith("#") or ref.startswith("urn:") or "?" in ref:
        return None
    parts = ref.split("/")
    if len(parts) >= 4 and parts[-2] == "_history":
        parts = parts[:-2]
    if len(parts) < 2:
        return None
    rtype, rid = parts[-2], parts[-1]
    if not TYPE_RE.match(rtype) or not ID_RE.match(rid):
        return None
    return rtype, rid


def split_relative(ref: str) -> tuple[str, str, str | None] | None:
    """``(type, id, version or None)`` of a relative reference ``Type/id`` or
    ``Type/id/_history/v``; None for anything else (absolute URLs included), strictly.

    Parameters
    ----------
    ref : str
        A reference string.

    Returns
    -------
    tuple of (str, str, str or None) or None

    Examples
    --------
    >>> split_relative("Provenance/x1/_history/2"), split_relative("Patient/p1")
    (('Provenance', 'x1', '2'), ('Patient', 'p1', None))
    >>> split_relative("patient 7") is None, split_relative("Encounter/e/Patient/p") is None
    (True, True)
    """
    m = _RELATIVE.match(ref) if isinstance(ref, str) else None
    return (m.group(1), m.group(2), m.group(3)) if m else None


def reference_id(ref: object, resource_type: str = "Patient") -> str | None:
    """The id in a reference (a Reference dict or its string) to ``resource_type``, else None.

    Lenient on purpose, unlike :func:`split_reference`: the last ``Type/id`` pair counts
    whatever the id's characters, so a record whose reference to its patient is malformed
    still sits in that patient's compartment (access control reads compartments through this
    function; a typo must not take a record out of one).

    Parameters
    ----------
    ref : dict or str
        A Reference (``{"reference": ...}``) or a reference string.
    resource_type : str, default "Patient"
        The type the reference must name.

    Returns
    -------
    str or None

    Examples
    --------
    >>> reference_id({"reference": "https://x.org/fhir/Patient/p7/_history/2"})
    'p7'
    >>> reference_id({"reference": "Group/g1"}) is None, reference_id("Group/g1", "Group")
    (True, 'g1')
    >>> reference_id("Patient/p 1")  # not a valid id, but it names this patient
    'p 1'
    """
    if isinstance(ref, dict):
        ref = ref.get("reference")
    if not isinstance(ref, str) or not ref:
        return None
    parts = ref.split("/")
    if len(parts) >= 4 and parts[-2] == "_history":
        parts = parts[:-2]
    if len(parts) >= 2 and parts[-2] == resource_type and parts[-1]:
        return parts[-1]
    return None


def references_in(node: Any) -> Iterator[str]:
    """Every ``reference`` string inside a resource or any part of one (contained resources
    included), in document order.

    Parameters
    ----------
    node : dict or list
        A resource, or any element of one.

    Yields
    ------
    str

    Examples
    --------
    >>> list(references_in({"subject": {"reference": "Patient/1"}, "x": [{"reference": "Encounter/e"}]}))
    ['Patient/1', 'Encounter/e']
    """
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "reference" and isinstance(value, str):
                yield value
            elif isinstance(value, dict | list):
                yield from references_in(value)
    elif isinstance(node, list):
        for item in node:
            yield from references_in(item)


def iter_references(node: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """``(path, Reference dict)`` for every Reference below ``node`` (for rewriting them in
    place, or naming where a bad one is).

    Parameters
    ----------
    node : dict or list
        A resource, or any element of one.
    path : str, default ""
        The path of ``node`` itself (``"(resource)"`` names a Reference at the top).

    Yields
    ------
    tuple of (str, dict)

    Examples
    --------
    >>> [p for p, _ in iter_references({"a": [{"reference": "X/1"}], "b": {"reference": "Y/2"}})]
    ['a[0]', 'b']
    """
    if isinstance(node, dict):
        if isinstance(node.get("reference"), str):
            yield path or "(resource)", node
        for k, v in node.items():
            if isinstance(v, dict | list):
                yield from iter_references(v, f"{path}.{k}" if path else k)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from iter_references(v, f"{path}[{i}]")
