"""Build the validation lookups from the clinical content, once per content object.

The content package (``synthetic.content``) owns the code files; validation only needs a
``system -> set(codes)`` map. Building it walks every code list, so it is done once per
content object and cached: a write then costs one dict lookup per coding.

>>> sets = code_sets_from_content({"http://loinc.org": ["8480-6", "8462-4"]})
>>> sets.contains("http://loinc.org", "8462-4"), sets.contains("http://loinc.org", "0000-0")
(True, False)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import cache
from typing import Any

from .codes import CodeSets

__all__ = ["code_sets_from_content", "default_code_sets"]

# id(content) -> (content, sets); the content object is kept alive so its id is not reused.
_CACHE: dict[int, tuple[Any, CodeSets]] = {}


def code_sets_from_content(content: Any) -> CodeSets:
    """Code sets of ``content``: a loaded content object, or a ``{system: codes}`` mapping.

    >>> code_sets_from_content({"http://hl7.org/fhir/sid/cvx": {"08"}}).checks("http://hl7.org/fhir/sid/cvx")
    True
    """
    hit = _CACHE.get(id(content))
    if hit is not None and hit[0] is content:
        return hit[1]
    sets = CodeSets(_extract(content))
    if len(_CACHE) > 8:
        _CACHE.clear()
    _CACHE[id(content)] = (content, sets)
    return sets


@cache
def default_code_sets() -> CodeSets:
    """Code sets of the shipped content (``synthetic.content.load_content()``), built once.

    Without the content package only the small HL7 systems in
    :data:`ehr_sandbox.validation.codes.BASELINE` are checked.

    >>> default_code_sets().checks("http://terminology.hl7.org/CodeSystem/v3-Confidentiality")
    True
    """
    try:
        from synthetic.content import load_content
    except ImportError:
        return CodeSets({})
    return code_sets_from_content(load_content())


def _extract(content: Any) -> dict[str, set[str]]:
    if isinstance(content, Mapping):
        return {str(system): {str(c) for c in codes} for system, codes in content.items()}
    systems: dict[str, set[str]] = {}
    for entry in _code_entries(content):
        system = getattr(entry, "system", None)
        code = getattr(entry, "code", None)
        if isinstance(system, str) and isinstance(code, str):
            systems.setdefault(system, set()).add(code)
    return systems


def _code_entries(content: Any) -> Iterable[Any]:
    codes = getattr(content, "codes", None)
    if codes is None:
        return []
    if isinstance(codes, Mapping):
        codes = codes.values()
    entries = []
    for item in codes:
        inner = getattr(item, "codes", None) or getattr(item, "entries", None)
        if inner is not None:
            entries.extend(inner.values() if isinstance(inner, Mapping) else inner)
        else:
            entries.append(item)
    return entries
