"""The R4B invariants met on almost every write, compiled by hand to Python.

FHIRPath (fhirpathpy) evaluates the R4B error-level invariants, but it is slow: a generated
clinic spends most of its validation time in a handful of them (``ref-1`` on every
Reference, ``qty-3`` on every Quantity, ``obs-6``/``obs-7`` on every Observation). Those run
here as plain Python with the same meaning; every other invariant still goes through
FHIRPath (:func:`ehr_sandbox.validation.r4b.compiled_invariants`). The tests check, on
generated resources and on property-based inputs, that each function here gives FHIRPath's
answer.

Each function takes the element the invariant is about (``item``: the Reference, the
Quantity, the Observation, one ``referenceRange``) and the resource it sits in (``root``),
and returns ``True`` when the invariant holds.

>>> NATIVE["Reference", "ref-1"]({"reference": "#med"}, {"contained": [{"id": "med"}]})
True
>>> NATIVE["Reference", "ref-1"]({"reference": "#gone"}, {"contained": [{"id": "med"}]})
False
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["NATIVE", "Invariant"]

Invariant = Callable[[dict[str, Any], dict[str, Any]], bool]
"""``(item, root) -> holds``."""


def _has(node: dict[str, Any], key: str) -> bool:
    return node.get(key) not in (None, [], {}, "")


def _has_choice(node: dict[str, Any], prefix: str) -> bool:
    """Whether a choice element ``prefix[x]`` (e.g. ``value[x]``) is present."""
    return any(
        k.startswith(prefix) and k[len(prefix) : len(prefix) + 1].isupper() and _has(node, k)
        for k in node
    )


def ref_1(item: dict[str, Any], root: dict[str, Any]) -> bool:
    """ref-1: a local reference (``#id``) points at a contained resource.

    ``#`` alone points at the container; FHIRPath's ``substring(1)`` of it is empty, so
    the invariant is not violated (a contained resource may point back at its container).

    >>> ref_1({"reference": "Patient/1"}, {}), ref_1({"reference": "#x"}, {})
    (True, False)
    """
    ref = item.get("reference")
    if not isinstance(ref, str) or not ref.startswith("#"):
        return True
    if ref == "#":
        return True
    contained = root.get("contained") or []
    return ref[1:] in {c.get("id") for c in contained if isinstance(c, dict)}


def qty_3(item: dict[str, Any], root: dict[str, Any]) -> bool:
    """qty-3: a unit code needs its system.

    >>> qty_3({"value": 1, "code": "mg"}, {}), qty_3({"value": 1}, {})
    (False, True)
    """
    return not _has(item, "code") or _has(item, "system")


def obs_6(item: dict[str, Any], root: dict[str, Any]) -> bool:
    """obs-6: ``dataAbsentReason`` only when there is no ``value[x]``.

    >>> obs_6({"dataAbsentReason": {"text": "x"}, "valueString": "y"}, {})
    False
    """
    return not _has(item, "dataAbsentReason") or not _has_choice(item, "value")


def obs_7(item: dict[str, Any], root: dict[str, Any]) -> bool:
    """obs-7: with a ``value[x]``, no component may repeat the Observation's own code.

    >>> obs = {"code": {"coding": [{"code": "a"}]}, "valueString": "v",
    ...        "component": [{"code": {"coding": [{"code": "a"}]}}]}
    >>> obs_7(obs, obs)
    False
    """
    if not _has_choice(item, "value"):
        return True
    own = (item.get("code") or {}).get("coding") or []
    if not own:
        return True
    for component in item.get("component") or []:
        codings = ((component or {}).get("code") or {}).get("coding") or []
        if any(c in own for c in codings):
            return False
    return True


def obs_3(item: dict[str, Any], root: dict[str, Any]) -> bool:
    """obs-3: a reference range has a low, a high or a text.

    >>> obs_3({"appliesTo": [{"text": "adults"}]}, {}), obs_3({"text": "normal"}, {})
    (False, True)
    """
    return _has(item, "low") or _has(item, "high") or _has(item, "text")


def app_1(item: dict[str, Any], root: dict[str, Any]) -> bool:
    """app-1: an Appointment participant has a type or an actor.

    >>> app_1({"status": "accepted"}, {})
    False
    """
    return _has(item, "type") or _has(item, "actor")


NATIVE: dict[tuple[str, str], Invariant] = {
    ("Reference", "ref-1"): ref_1,
    **{(t, "qty-3"): qty_3 for t in ("Quantity", "Age", "Count", "Distance", "Duration")},
    ("Observation", "obs-6"): obs_6,
    ("Observation", "obs-7"): obs_7,
    ("Observation.referenceRange", "obs-3"): obs_3,
    ("Appointment.participant", "app-1"): app_1,
}
"""``{(context, key): invariant}`` for the invariants run natively (contexts as in the
R4B rules data: a type, or ``Resource.element``)."""
