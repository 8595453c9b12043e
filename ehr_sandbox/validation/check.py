"""The write-time gate: :func:`check` runs every rule and raises one ValidationError.

The Session calls ``check(resource, exists=session.exists)`` before every create/update, so
nothing invalid reaches the store. Rules, in order:

1. strings — no control characters, no string over 1 MB, no absurd nesting;
2. structure — the FHIR R4B model accepts it (paths as the model gives them), and the R4B
   definitions hold: required bindings, reference target types, error-level invariants,
   UCUM unit codes, no empty arrays/objects/nulls, no future birthDate (:mod:`.r4b`);
3. references — every ``Reference.reference`` resolves (``exists("Patient/123")``);
4. codes — codes of shipped systems are in the shipped sets; CPT/CDT never;
5. vitals — UCUM unit, plausible value, whole mmHg, systolic above diastolic.

When several problems are found the first is raised and ``err.errors`` lists all of them
(each a :class:`~ehr_sandbox.errors.ValidationError` with ``.rule``), so a student fixes
everything in one round.

>>> from ehr_sandbox.errors import ValidationError
>>> from ehr_sandbox.validation import CodeSets
>>> ok = {"resourceType": "Patient", "id": "p1", "gender": "female"}
>>> check(ok, exists=lambda ref: True) is None
True
>>> bad = {"resourceType": "Observation", "id": "o1", "status": "final",
...        "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9"}]},
...        "subject": {"reference": "Patient/p1"},
...        "component": [
...            {"code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
...             "valueQuantity": {"value": 70, "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}},
...            {"code": {"coding": [{"system": "http://loinc.org", "code": "8462-4"}]},
...             "valueQuantity": {"value": 120, "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}}]}
>>> try:
...     check(bad, exists=lambda ref: True, content=CodeSets({}))
... except ValidationError as err:
...     print(err)
Observation/o1: component[0].valueQuantity.value: expected a systolic pressure above the diastolic (120 mm[Hg]) (found 70.0). systolic must exceed diastolic: the two values look swapped
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from .codes import code_problems
from .content_adapter import lookups_for
from .problem import Problem
from .r4b import r4b_problems
from .references import reference_problems
from .strings import string_problems
from .structural import structural_problems
from .tree import scan
from .vitals import vital_problems

__all__ = ["check", "problems", "resource_label"]

_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")


def resource_label(resource: Any) -> str:
    """How messages name a resource: ``Type/id``, or the type alone before it has an id.

    >>> resource_label({"resourceType": "Patient", "id": "7"}), resource_label({"resourceType": "Patient"})
    ('Patient/7', 'Patient')
    >>> resource_label(["not", "a", "resource"]), resource_label({"resourceType": "Patient", "id": "a b"})
    ('resource', 'Patient')
    """
    if not isinstance(resource, dict):
        return "resource"
    rtype = resource.get("resourceType")
    if not isinstance(rtype, str) or not rtype.isidentifier():
        return "resource"
    rid = resource.get("id")
    if isinstance(rid, str) and _ID.fullmatch(rid):
        return f"{rtype}/{rid}"
    return rtype


def problems(
    resource: Any,
    *,
    exists: Callable[[str], bool],
    content: Any = None,
    strict: bool = True,
) -> list[Problem]:
    """Every problem :func:`check` would report, as :class:`Problem` records (no raising).

    ``content`` is the loaded clinical content (``synthetic.content.load_content()``), a
    :class:`CodeSets`, or ``None`` for the shipped content. ``strict=False`` is for imports
    of outside data (e.g. Synthea): codes of shipped systems need not be in our subset and
    fractional mmHg readings pass; everything else still applies.

    >>> [p.rule for p in problems({"resourceType": "Patient", "gender": 5}, exists=bool)]
    ['structure']
    """
    if not isinstance(resource, dict):
        return [
            Problem(
                "(resource)",
                "a FHIR resource as a JSON object (dict)",
                found=type(resource).__name__,
                rule="structure",
            )
        ]
    found = scan(resource)
    out = string_problems(found)
    if found.too_deep is None:
        out += _guarded(structural_problems, resource)
    out += _guarded(reference_problems, resource, found, exists=exists)
    lookups = lookups_for(content)
    out += _guarded(code_problems, found, lookups.code_sets, strict=strict)
    out += _guarded(vital_problems, resource, lookups.vitals, whole_mmhg=strict)
    if found.too_deep is None:
        # the R4B definitions; a field another rule already explains is not reported twice
        said = {p.path for p in out}
        out += [p for p in _guarded(r4b_problems, resource, found=found) if p.path not in said]
    return _unique(out)


def check(
    resource: Any,
    *,
    exists: Callable[[str], bool],
    content: Any = None,
    strict: bool = True,
) -> None:
    """Raise :class:`ValidationError` when ``resource`` breaks a write rule (see module docs).

    The raised error is the first problem; ``.errors`` lists all of them.

    >>> from ehr_sandbox.errors import ValidationError
    >>> try:
    ...     check({"resourceType": "Observation", "status": "final", "code": {"text": "x"},
    ...            "subject": {"reference": "Patient/404"}}, exists=lambda ref: False)
    ... except ValidationError as err:
    ...     print(err.path, "|", err.expected, "|", len(err.errors))
    subject.reference | a reference to an existing Patient | 1
    """
    found = problems(resource, exists=exists, content=content, strict=strict)
    if not found:
        return
    label = resource_label(resource)
    errors = [p.to_error(label) for p in found]
    first = errors[0]
    first.errors = errors
    raise first


def _guarded(rule: Callable[..., list[Problem]], *args: Any, **kwargs: Any) -> list[Problem]:
    # A rule tripping over input shaped in a way it did not foresee must still refuse the
    # write with a ValidationError (never crash the Session); rule "internal" flags it for us.
    try:
        return rule(*args, **kwargs)
    except (TypeError, ValueError, KeyError, AttributeError, IndexError, RecursionError) as exc:
        return [
            Problem(
                "(resource)",
                "a resource the validator can read",
                found=f"{type(exc).__name__} in {rule.__name__}",
                why="the resource has a shape no FHIR resource has; fix the fields reported by the other rules",
                rule="internal",
            )
        ]


def _unique(found: list[Problem]) -> list[Problem]:
    seen: set[tuple[str, str]] = set()
    out = []
    for p in found:
        key = (p.path, p.expected)
        if key not in seen:
            seen.add(key)
            out.append(p)
    return out
