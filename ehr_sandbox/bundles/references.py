"""Rewrite the references of one resource: ``urn:uuid`` fullUrls, conditional and contained.

>>> r = {"resourceType": "Observation", "subject": {"reference": "urn:uuid:abc"}}
>>> rewrite_references(r, {"urn:uuid:abc": "Patient/abc"}, find=lambda t, q: [], where="Bundle.entry[0]")
{'resourceType': 'Observation', 'subject': {'reference': 'Patient/abc'}}
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import orjson

from ehr_sandbox.errors import ValidationError
from ehr_sandbox.references import iter_references

_REFERENCE = re.compile(rb'"reference":"([^"\\]*)"')

Finder = Callable[[str, str], list[str]]
"""``find(resource_type, query_string) -> ids`` of current resources matching a FHIR search."""


def _contained_ids(resource: dict[str, Any]) -> set[str]:
    return {
        c["id"]
        for c in resource.get("contained") or ()
        if isinstance(c, dict) and isinstance(c.get("id"), str)
    }


def resolve_conditional(ref: str, find: Finder, where: str, path: str) -> str:
    """``Type?query`` -> ``Type/id`` when exactly one resource matches (else ValidationError).

    >>> resolve_conditional("Patient?identifier=s|1", lambda t, q: ["p9"], "entry[0]", "subject")
    'Patient/p9'
    """
    rtype, _, query = ref.partition("?")
    ids = find(rtype, query)
    if len(ids) != 1:
        raise ValidationError(
            where,
            path,
            f"a conditional reference matching exactly one {rtype}",
            found=ref,
            why=f"{len(ids)} matched",
        )
    return f"{rtype}/{ids[0]}"


def rewrite_references(
    resource: dict[str, Any], full_urls: dict[str, str], *, find: Finder, where: str
) -> dict[str, Any]:
    """Rewrite ``resource``'s references in place (and return it).

    ``full_urls`` maps each Bundle entry's fullUrl to its final ``Type/id``. A ``urn:`` reference
    that names no entry, a ``#id`` that names no contained resource, or a conditional reference
    that does not match exactly one resource raises :class:`ValidationError` naming the field.

    Parameters
    ----------
    resource : dict
        The resource (changed in place).
    full_urls : dict
        Entry fullUrl to final ``Type/id``.
    find : Finder
        ``(type, query) -> ids``, for conditional references (``Patient?identifier=...``).
    where : str
        Names the entry in error messages (``Bundle.entry[0]``).

    Returns
    -------
    dict
        ``resource``.

    Raises
    ------
    ValidationError
        A reference that cannot be resolved.

    Examples
    --------
    >>> r = {"resourceType": "Observation", "subject": {"reference": "Patient?identifier=urn:mrn|7"}}
    >>> rewrite_references(r, {}, find=lambda t, q: ["p7"], where="Bundle.entry[0]")["subject"]
    {'reference': 'Patient/p7'}
    >>> rewrite_references({"subject": {"reference": "urn:uuid:nobody"}}, {}, find=lambda t, q: [], where="Bundle.entry[1]")
    Traceback (most recent call last):
    ...
    ehr_sandbox.errors.ValidationError: Bundle.entry[1]: subject.reference: expected the fullUrl of an entry in this Bundle (found 'urn:uuid:nobody')
    """
    contained = _contained_ids(resource)
    for path, node in iter_references(resource):
        ref = node["reference"]
        if ref in full_urls:
            node["reference"] = full_urls[ref]
        elif ref.startswith("#"):
            if ref != "#" and ref[1:] not in contained:
                raise ValidationError(
                    where,
                    f"{path}.reference",
                    "a contained resource id of this resource",
                    found=ref,
                )
        elif ref.startswith("urn:"):
            raise ValidationError(
                where, f"{path}.reference", "the fullUrl of an entry in this Bundle", found=ref
            )
        elif "?" in ref:
            node["reference"] = resolve_conditional(ref, find, where, f"{path}.reference")
    return resource


def copy_with_references(
    resource: dict[str, Any], full_urls: dict[str, str], *, find: Finder, where: str
) -> dict[str, Any]:
    """A deep copy of ``resource`` with its references rewritten (``resource`` is not changed).

    The common case (only fullUrl and plain references) is done on the JSON bytes in one
    round trip; conditional, unknown ``urn:``/``#id`` or escaped references take the
    field-by-field path of :func:`rewrite_references`, which names the field on error.

    >>> r = {"resourceType": "Encounter", "subject": {"reference": "urn:uuid:a"}}
    >>> copy_with_references(r, {"urn:uuid:a": "Patient/a"}, find=lambda t, q: [], where="e")["subject"]
    {'reference': 'Patient/a'}
    >>> r["subject"]
    {'reference': 'urn:uuid:a'}
    """
    data = orjson.dumps(resource)
    slow = False
    contained = _contained_ids(resource)

    def swap(m: re.Match[bytes]) -> bytes:
        nonlocal slow
        ref = m.group(1).decode()
        if ref in full_urls:
            return b'"reference":"' + full_urls[ref].encode() + b'"'
        if ref.startswith("#"):
            slow = slow or (ref != "#" and ref[1:] not in contained)
        elif ref.startswith("urn:") or "?" in ref:
            slow = True
        return m.group(0)

    fast = _REFERENCE.sub(swap, data)
    if slow or data.count(b'"reference":') != len(_REFERENCE.findall(data)):
        return rewrite_references(orjson.loads(data), full_urls, find=find, where=where)
    return orjson.loads(fast)
