"""Rule 2b: what the FHIR R4B definitions require beyond the model's shapes.

The rules are data, taken from the official HL7 FHIR R4B core package by
``tools/build_r4b_rules.py`` into ``data/r4b_rules.json`` (CC0): required bindings, the
resource types each reference may point to, error-level invariants (evaluated with
FHIRPath, compiled once) and the common UCUM units. Also checked here, natively: no empty
arrays, empty objects or nulls anywhere (FHIR forbids them), and no ``birthDate`` after
today.

>>> [p.path for p in r4b_problems({"resourceType": "Observation", "status": "done",
...     "code": {"text": "x"}, "subject": {"reference": "Encounter/1"}})]
['status', 'subject.reference']
"""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime
from functools import cache
from pathlib import Path
from typing import Any

from synthetic.systems import UCUM

from .native_invariants import NATIVE
from .problem import Problem
from .tree import Scan, format_path, scan

__all__ = [
    "compiled_invariants",
    "invariants_for",
    "nonucum_units_as_text",
    "r4b_problems",
    "rules",
    "ucum_problem",
]

_DATA = Path(__file__).with_name("data") / "r4b_rules.json"
_WHY = "FHIR R4B requires it (HL7 core definitions)"
QUANTITY_TYPES = ("Quantity", "Age", "Duration", "Distance", "Count")
"""The FHIR data types whose ``code`` is a unit (UCUM when ``system`` says so)."""


@cache
def rules() -> dict[str, Any]:
    """The R4B rules data (loaded once).

    >>> rules()["types"]["Observation"]["status"]["b"]
    'observation-status'
    """
    return json.loads(_DATA.read_text(encoding="utf-8"))


@cache
def _value_set(name: str) -> tuple[frozenset[str], frozenset[tuple[str, str]]]:
    vs = rules()["valuesets"][name]
    codes = frozenset(c for cs in vs.values() for c in cs)
    pairs = frozenset((s, c) for s, cs in vs.items() for c in cs)
    return codes, pairs


@cache
def compiled_invariants() -> dict[str, list[tuple[str, str, Any]]]:
    """``{context: [(key, human, evaluate)]}``; invariants FHIRPath cannot run are left out.

    A context is a type (``Period``) or an element (``Observation.referenceRange``). Element
    invariants are compiled from the resource root so choice types (``value[x]``) resolve.
    Checks compile only the contexts they meet (:func:`invariants_for`); this compiles all.

    >>> "obs-6" in {k for k, _, _ in compiled_invariants()["Observation"]}
    True
    """
    out: dict[str, list[tuple[str, str, Any]]] = {}
    for context in rules()["invariants"]:
        compiled = invariants_for(context)
        if compiled:
            out[context] = list(compiled)
    return out


@cache
def invariants_for(context: str) -> tuple[tuple[str, str, Any], ...]:
    """The FHIRPath-compiled invariants of one context (compiled on first use, then kept): a
    write compiles only what its resource contains, not the whole R4B table.

    >>> [k for k, _, _ in invariants_for("Period")]
    ['per-1']
    >>> invariants_for("NoSuchType")
    ()
    """
    items = rules()["invariants"].get(context)
    if not items:
        return ()
    import fhirpathpy
    from fhirpathpy.models import models

    model = models["r4"]
    _, _, rest = context.partition(".")
    out = []
    for key, expr, human in items:
        if "htmlChecks" in expr or "conformsTo" in expr or "memberOf" in expr:
            continue  # functions FHIRPath engines here do not implement
        # hasValue() is exists() on primitives; trace() only logs
        expr = _TRACE.sub("", expr.replace(".hasValue()", ".exists()"))
        text = expr if not rest else f"{rest}.where(({expr}).not())"
        try:
            fn = fhirpathpy.compile(text, model)
        except Exception:  # noqa: BLE001 - an expression the engine cannot parse is skipped
            continue
        out.append((key, human, fn))
    return tuple(out)


@cache
def _checks_for(context: str) -> tuple[tuple[str, str, Any, bool], ...]:
    """``(key, human, evaluate, native)`` of one context: the hand-compiled Python of
    :mod:`.native_invariants` where there is one, FHIRPath for the others (compiled only when
    the context has one that is not native)."""
    out: list[tuple[str, str, Any, bool]] = []
    fhirpath: dict[str, Any] | None = None
    for key, _, human in rules()["invariants"].get(context, ()):
        native = NATIVE.get((context, key))
        if native is not None:
            out.append((key, human, native, True))
            continue
        if fhirpath is None:
            fhirpath = {k: fn for k, _, fn in invariants_for(context)}
        if key in fhirpath:
            out.append((key, human, fhirpath[key], False))
    return tuple(out)


_TRACE = re.compile(r"\.trace\('[^']*'\)")
_UCUM_TOKEN = re.compile(r"\{[^}]*\}|[./]|[^./{}]+")


@cache
def _ucum_atoms() -> frozenset[str]:
    atoms: set[str] = set()
    for code in rules()["ucum_common"]:
        for tok in _UCUM_TOKEN.findall(code):
            if tok not in "./" and not tok.startswith("{"):
                atoms.add(tok.rstrip("0123456789-+") or tok)
    return frozenset(atoms)


def ucum_problem(code: Any) -> bool:
    """True when ``code`` is not a UCUM unit built from the common UCUM units' atoms.

    >>> ucum_problem("mg/dL"), ucum_problem("mm[Hg]"), ucum_problem("bananas"), ucum_problem("{score}")
    (False, False, True, False)
    """
    if not isinstance(code, str) or not code or code != code.strip():
        return True
    if code in rules()["ucum_common"]:
        return False
    atoms = _ucum_atoms()
    for tok in _UCUM_TOKEN.findall(code):
        if tok in "./" or tok.startswith("{"):
            continue
        base = tok.rstrip("0123456789-+") or tok
        if base not in atoms and not base.isdigit():
            return True
    return False


def nonucum_units_as_text(resource: Any) -> list[str]:
    """Keep each non-UCUM unit of ``resource`` as text only; returns the units changed.

    Outside data sometimes names UCUM as a Quantity's system with a code that is not UCUM
    (the Synthea sample writes ``(score)`` and ``units``). On request, an import keeps such
    a unit as ``Quantity.unit`` (the human-readable text) and drops ``system`` and ``code``,
    so the value is stored without claiming a unit it cannot be converted from. Changed in
    place.

    Parameters
    ----------
    resource : dict
        A FHIR resource (any nesting).

    Returns
    -------
    list of str
        The non-UCUM codes that were turned into text, one per Quantity changed.

    Examples
    --------
    >>> obs = {"resourceType": "Observation", "valueQuantity": {"value": 3, "unit": "(score)",
    ...        "system": "http://unitsofmeasure.org", "code": "(score)"}}
    >>> nonucum_units_as_text(obs), obs["valueQuantity"]
    (['(score)'], {'value': 3, 'unit': '(score)'})
    """
    changed: list[str] = []
    stack = [resource]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
            continue
        if not isinstance(node, dict):
            continue
        if (
            node.get("system") == UCUM
            and ("value" in node or "unit" in node)
            and "code" in node
            and ucum_problem(node["code"])
        ):
            code = node.pop("code")
            node.pop("system")
            node.setdefault("unit", str(code))
            changed.append(str(code))
        stack.extend(v for v in node.values() if isinstance(v, dict | list))
    return changed


def r4b_problems(
    resource: dict[str, Any], *, today: date | None = None, found: Scan | None = None
) -> list[Problem]:
    """Every R4B-definition problem of ``resource`` (see the module docs).

    Imports of outside data get the same checks: a Quantity that names UCUM as its system
    must carry a UCUM code (the importer can keep a non-UCUM unit as text only, on request).

    >>> r4b_problems({"resourceType": "Patient", "name": [], "birthDate": None})[0].path
    'name'
    """
    out: list[Problem] = []
    if found is None:
        found = scan(resource)
    _empties(found, out)
    rtype = resource.get("resourceType")
    types = rules()["types"]
    if isinstance(rtype, str) and rtype in types:
        _walk(resource, rtype, "", out, types, resource)
        _resource_invariants(resource, rtype, out)
    if rtype == "Patient":
        _birth_date(resource, today, out)
    return out


def _empties(found: Scan, out: list[Problem]) -> None:
    for path, kind in found.empties:
        in_list = isinstance(path[-1], int)
        if kind == "null":
            expected = (
                "a value (FHIR arrays hold no nulls)"
                if in_list
                else "a value, or the element left out (FHIR has no null)"
            )
        elif in_list:
            expected = "content (FHIR forbids empty objects)"
        else:
            expected = "content, or the element left out (FHIR forbids empty ones)"
        out.append(_p(format_path(path), expected, kind))


def _p(path: str, expected: str, found: Any = None, why: str = _WHY) -> Problem:
    return Problem(path, expected, found=found, why=why, rule="r4b")


def _walk(
    node: dict[str, Any],
    tname: str,
    path: str,
    out: list[Problem],
    types: dict,
    root: dict[str, Any],
) -> None:
    spec = types.get(tname)
    if spec is None:
        return
    for key, value in node.items():
        el = spec.get(key)
        if el is None or value is None:
            continue
        items = value if isinstance(value, list) else [value]
        for i, item in enumerate(items):
            p = f"{path}.{key}" if path else key
            if isinstance(value, list):
                p += f"[{i}]"
            if "b" in el:
                _binding(item, el["b"], el["t"][0], p, out)
            if "r" in el and isinstance(item, dict):
                _target(item, el["r"], p, out)
            if not isinstance(item, dict):
                continue
            child = el["t"][0]
            if child in QUANTITY_TYPES:
                _quantity(item, p, out)
            _type_invariants(item, child, p, out, root)
            _walk(item, child, p, out, types, root)


def _binding(item: Any, vs: str, tcode: str, path: str, out: list[Problem]) -> None:
    codes, pairs = _value_set(vs)
    systems = {s for s, _ in pairs}
    expected = f"a code from the R4B required value set {vs} ({', '.join(sorted(codes)[:12])}{', ...' if len(codes) > 12 else ''})"
    if tcode == "code":
        if isinstance(item, str) and item not in codes:
            out.append(_p(path, expected, item))
        return
    codings = (
        [item]
        if tcode == "Coding"
        else (item.get("coding") or [])
        if isinstance(item, dict)
        else []
    )
    for j, c in enumerate(codings):
        if not isinstance(c, dict):
            continue
        sub = path if tcode == "Coding" else f"{path}.coding[{j}]"
        if c.get("system") in systems and (c["system"], c.get("code")) not in pairs:
            out.append(_p(f"{sub}.code", expected, c.get("code")))
    if (
        codings
        and not any(
            isinstance(c, dict) and (c.get("system"), c.get("code")) in pairs for c in codings
        )
        and not any(isinstance(c, dict) and c.get("system") in systems for c in codings)
    ):
        out.append(_p(path, f"{expected}, with its system {', '.join(sorted(systems))}", None))


def _target(item: dict[str, Any], allowed: list[str], path: str, out: list[Problem]) -> None:
    ref = item.get("reference")
    if not isinstance(ref, str) or ref.startswith(("#", "urn:")) or "?" in ref:
        return
    parts = ref.split("/")
    if len(parts) >= 2 and parts[-2][:1].isupper():
        rtype = parts[-2] if "_history" not in parts else parts[-4] if len(parts) >= 4 else ""
        if rtype and rtype not in allowed:
            out.append(
                _p(
                    f"{path}.reference",
                    f"a reference to {' or '.join(allowed)} (R4B allows only these here)",
                    ref,
                )
            )


def _quantity(item: dict[str, Any], path: str, out: list[Problem]) -> None:
    if item.get("system") == UCUM and "code" in item and ucum_problem(item["code"]):
        out.append(
            _p(
                f"{path}.code",
                "a UCUM unit code (e.g. mg/dL, mmol/L, mm[Hg], kg)",
                item["code"],
                why="the unit must be a real UCUM unit so the value can be compared and converted"
                " (an import of outside data can keep it as text only: --units as-text)",
            )
        )


def _holds(fn: Any, item: dict[str, Any], root: dict[str, Any]) -> bool:
    """A native invariant's answer; a shape it cannot read counts as holding (the
    structural rule reports the shape itself), as FHIRPath's failures are skipped."""
    try:
        return bool(fn(item, root))
    except (AttributeError, TypeError, KeyError):
        return True


def _type_invariants(
    item: dict[str, Any], tname: str, path: str, out: list[Problem], root: dict[str, Any]
) -> None:
    for key, human, fn, native in _checks_for(tname):
        if native:
            if not _holds(fn, item, root):
                out.append(_p(path, f"{human} (R4B invariant {key})", None))
            continue
        try:
            ok = fn(item)
        except Exception:  # noqa: BLE001 - an invariant the engine cannot evaluate is skipped
            continue
        if ok == [False]:
            out.append(_p(path, f"{human} (R4B invariant {key})", None))


def _resource_invariants(resource: dict[str, Any], rtype: str, out: list[Problem]) -> None:
    env = {"resource": resource, "rootResource": resource}
    for context in (
        rtype,
        *(c for c in _contexts(rtype) if c.split(".", 1)[1].split(".")[0] in resource),
    ):
        for key, human, fn, native in _checks_for(context):
            if native:
                # an element context's native check runs on each element during the walk
                if context == rtype and not _holds(fn, resource, resource):
                    out.append(_p("(resource)", f"{human} (R4B invariant {key})", None))
                continue
            try:
                result = fn(resource, env)
            except Exception:  # noqa: BLE001 - an invariant the engine cannot evaluate is skipped
                continue
            failed = result == [False] if context == rtype else bool(result)
            if failed:
                path = context.split(".", 1)[1] if "." in context else "(resource)"
                out.append(_p(path, f"{human} (R4B invariant {key})", None))


@cache
def _contexts(rtype: str) -> tuple[str, ...]:
    return tuple(c for c in rules()["invariants"] if c.startswith(rtype + "."))


def _birth_date(resource: dict[str, Any], today: date | None, out: list[Problem]) -> None:
    value = resource.get("birthDate")
    if not isinstance(value, str) or len(value) < 4:
        return
    now = today or datetime.now(UTC).date()
    if value[:10] > now.isoformat()[: len(value[:10])]:
        out.append(
            Problem(
                "birthDate",
                f"a date not after today ({now.isoformat()})",
                found=value,
                why="a patient cannot be born in the future",
                rule="r4b",
            )
        )
