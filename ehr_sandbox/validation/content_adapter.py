"""Build the validation lookups from the clinical content, once per content object.

The content package (``synthetic.content``) owns the code files and vital-sign limits;
validation needs a ``system -> set(codes)`` map and a LOINC -> units/ranges table. Building
them walks every code list, so it is done once per content object and cached: a write then
costs one dict lookup per coding.

>>> look = lookups_for({"http://loinc.org": ["8480-6", "8462-4"]})
>>> look.code_sets.contains("http://loinc.org", "8462-4"), look.code_sets.contains("http://loinc.org", "0000-0")
(True, False)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from synthetic.systems import UCUM

from .codes import CodeSets
from .vitals import VITAL_SIGNS, VitalSign, merged_table

__all__ = [
    "Lookups",
    "code_sets_from_content",
    "default_lookups",
    "lookups_for",
    "reset_default_lookups",
    "shipped_lookup_facts",
]


@dataclass(frozen=True, slots=True)
class Lookups:
    """Everything the rules look up, precomputed: code sets and the vital-sign table.

    >>> Lookups(CodeSets({}), VITAL_SIGNS).vitals["8480-6"].integer
    True
    """

    code_sets: CodeSets
    vitals: Mapping[str, VitalSign]


# id(content) -> (content, lookups); the content object is kept alive so its id is not reused.
_CACHE: dict[int, tuple[Any, Lookups]] = {}
_DEFAULT: list[Lookups] = []


def lookups_for(content: Any) -> Lookups:
    """Lookups of ``content``: a loaded ``synthetic.content.Content``, a :class:`CodeSets`, a
    ``{system: codes}`` mapping, or ``None`` for the shipped content.

    >>> lookups_for(CodeSets({})).vitals is VITAL_SIGNS
    True
    """
    if content is None:
        return default_lookups()
    if isinstance(content, CodeSets):
        return Lookups(content, VITAL_SIGNS)
    hit = _CACHE.get(id(content))
    if hit is not None and hit[0] is content:
        return hit[1]
    built = Lookups(CodeSets(_code_map(content)), merged_table(_vital_limits(content)))
    if len(_CACHE) > 8:
        _CACHE.clear()
    _CACHE[id(content)] = (content, built)
    return built


def code_sets_from_content(content: Any) -> CodeSets:
    """The code sets part of :func:`lookups_for`.

    >>> code_sets_from_content({"http://hl7.org/fhir/sid/cvx": {"08"}}).checks("http://hl7.org/fhir/sid/cvx")
    True
    """
    return lookups_for(content).code_sets


def default_lookups() -> Lookups:
    """Lookups of the shipped content (``synthetic.content.load_content()``), built once.

    When the content cannot be loaded, only the small HL7 systems in
    :data:`ehr_sandbox.validation.codes.BASELINE` and the built-in vital-sign table are used;
    that outcome is cached too (a failed load must not be retried on every write). Call
    :func:`reset_default_lookups` after changing the content files in a running process.

    >>> default_lookups().code_sets.checks("http://terminology.hl7.org/CodeSystem/v3-Confidentiality")
    True
    """
    if _DEFAULT:
        return _DEFAULT[0]
    try:
        from ehr_sandbox.content_cache import derived

        facts = derived("validation-lookups", shipped_lookup_facts)
        built = Lookups(
            CodeSets({system: set(codes) for system, codes in facts["codes"].items()}),
            merged_table(
                {loinc: (low, high, unit) for loinc, (low, high, unit) in facts["vitals"].items()}
            ),
        )
    except Exception:  # noqa: BLE001 - content is optional here; its own tests report why it failed
        built = Lookups(CodeSets({}), VITAL_SIGNS)
    _DEFAULT.append(built)
    return built


def shipped_lookup_facts() -> dict[str, Any]:
    """What :func:`default_lookups` takes from the shipped content, as JSON: ``{"codes":
    {system: [codes]}, "vitals": {loinc: [low, high, unit]}}`` (loads the content; the
    content cache keeps the result, so later processes do not load it).

    >>> facts = shipped_lookup_facts()
    >>> "8480-6" in facts["vitals"] and all(isinstance(c, list) for c in facts["codes"].values())
    True
    """
    from synthetic.content import load_content

    content = load_content()
    return {
        "codes": {system: sorted(codes) for system, codes in _code_map(content).items()},
        "vitals": {loinc: list(limit) for loinc, limit in _vital_limits(content).items()},
    }


def reset_default_lookups() -> None:
    """Forget the cached shipped-content lookups (they are rebuilt on the next check).

    >>> reset_default_lookups(); default_lookups() is default_lookups()
    True
    """
    _DEFAULT.clear()


def _code_map(content: Any) -> dict[str, set[str]]:
    if isinstance(content, Mapping):
        return {str(system): {str(c) for c in codes} for system, codes in content.items()}
    systems: dict[str, set[str]] = {}
    code_sets = getattr(content, "codes", None)
    if isinstance(code_sets, Mapping):
        for code_set in code_sets.values():
            system = getattr(code_set, "system", None)
            codes = getattr(code_set, "codes", None)
            if isinstance(system, str) and codes is not None and not _is_open_ended(system):
                systems.setdefault(system, set()).update(str(c) for c in codes)
    return systems


def _is_open_ended(system: str) -> bool:
    # UCUM is a grammar, not a list: the shipped file names the units we use, but any valid
    # unit expression is a valid code, so it is never checked as a closed set.
    return system == UCUM


def _vital_limits(content: Any) -> dict[str, tuple[float, float, str]]:
    limits: dict[str, tuple[float, float, str]] = {}
    vitals = getattr(content, "vitals", None)
    if isinstance(vitals, Mapping):
        for vital in vitals.values():
            loinc, unit = getattr(vital, "loinc", None), getattr(vital, "unit", None)
            low, high = (
                getattr(vital, "plausible_low", None),
                getattr(vital, "plausible_high", None),
            )
            if (
                isinstance(loinc, str)
                and isinstance(unit, str)
                and low is not None
                and high is not None
            ):
                limits[loinc] = (float(low), float(high), unit)
    return limits
