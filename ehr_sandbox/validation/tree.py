"""One pass over a resource tree that collects what the write-time rules look at.

The rules need three things from a resource: every string (hostile-string rule), every
``Reference.reference`` (existence rule) and every dict carrying a ``system`` (code rule).
Walking the tree once and handing each rule its list keeps a check to a few microseconds on
top of the structural validation. The walk is iterative, so a maliciously deep document
cannot exhaust Python's recursion limit; it stops and reports at :data:`MAX_DEPTH`.

>>> s = scan({"resourceType": "Observation", "subject": {"reference": "Patient/1"},
...           "code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]}})
>>> [(format_path(p), r) for p, r in s.references]
[('subject.reference', 'Patient/1')]
>>> [format_path(p) for p, _ in s.systems]
['code.coding[0]']
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

Path = tuple[str | int, ...]
"""A location in the tree: dict keys and list indices from the root."""

MAX_DEPTH = 64
"""Nesting deeper than this is refused: no FHIR resource needs it and parsers choke on it."""

MAX_STRING_BYTES = 1_000_000
"""Longest string accepted (UTF-8 bytes); bigger payloads belong in a Binary, not a field."""

# C0 controls except TAB and LF, DEL, C1 controls, a CR not followed by LF (CRLF line endings
# from imported text are legitimate; a lone CR rewrites a terminal line), lone surrogates
# (they cannot be encoded as UTF-8, so the row could not even be stored).
_HOSTILE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]|\r(?!\n)")
_search = _HOSTILE.search
_SHORT = MAX_STRING_BYTES // 4  # a string this short cannot exceed the byte limit


@dataclass(slots=True)
class HostileString:
    """A string the hostile-string rule rejects: where, which problem, and a safe preview.

    >>> HostileString(("note", 0, "text"), "control", "\\\\x07").problem
    'control'
    """

    path: Path
    problem: str  # "control" | "too-long"
    detail: str


@dataclass(slots=True)
class Scan:
    """What one walk collected (see :func:`scan`).

    >>> Scan().references
    []
    """

    references: list[tuple[Path, str]] = field(default_factory=list)
    systems: list[tuple[Path, dict[str, Any]]] = field(default_factory=list)
    hostile: list[HostileString] = field(default_factory=list)
    empties: list[tuple[Path, str]] = field(default_factory=list)
    """Nulls and empty arrays/objects (FHIR forbids them): where, and ``null``/``[]``/``{}``."""
    too_deep: Path | None = None


def _string_problem(path: Path, text: str, out: list[HostileString]) -> None:
    # Character count bounds the byte count from both sides (1..4 bytes per char), so the
    # UTF-8 encoding is computed only for the rare string near the limit.
    if (
        len(text) * 4 > MAX_STRING_BYTES
        and len(text.encode("utf-8", "surrogatepass")) > MAX_STRING_BYTES
    ):
        out.append(
            HostileString(path, "too-long", f"{len(text.encode('utf-8', 'surrogatepass'))} bytes")
        )
        return
    m = _HOSTILE.search(text)
    if m is not None:
        out.append(
            HostileString(path, "control", f"U+{ord(m.group()[0]):04X} at character {m.start()}")
        )


def scan(resource: Any) -> Scan:
    """Walk ``resource`` once; return its references, system-bearing dicts and bad strings.

    >>> scan({"a": "ok\\u0007"}).hostile[0].detail
    'U+0007 at character 2'
    >>> deep = {}; node = deep
    >>> for _ in range(100):
    ...     node["x"] = {}; node = node["x"]
    >>> len(scan(deep).too_deep) == MAX_DEPTH
    True
    """
    out = Scan()
    stack: list[tuple[Any, Path]] = [(resource, ())]
    while stack:
        node, path = stack.pop()
        if len(path) >= MAX_DEPTH:
            if out.too_deep is None:
                out.too_deep = path
            continue
        if isinstance(node, dict):
            ref = node.get("reference")
            if isinstance(ref, str):
                out.references.append(((*path, "reference"), ref))
            if isinstance(node.get("system"), str):
                out.systems.append((path, node))
            children: list[tuple[Any, Path]] = []
            for key, value in node.items():
                if isinstance(key, str) and key.isprintable():
                    key_s = key
                else:  # never echo a raw control character back inside a path
                    key_s = repr(key)
                    if isinstance(key, str):
                        _string_problem((*path, key_s), key, out.hostile)
                if isinstance(value, str):
                    # Cheap test inline; the path tuple is only built for a string that fails.
                    if len(value) > _SHORT or _search(value) is not None:
                        _string_problem((*path, key_s), value, out.hostile)
                elif isinstance(value, dict | list):
                    if value:
                        children.append((value, (*path, key_s)))
                    else:
                        out.empties.append(
                            ((*path, key_s), "{}" if isinstance(value, dict) else "[]")
                        )
                elif value is None:
                    out.empties.append(((*path, key_s), "null"))
            # Pushed in reverse so they pop in document order.
            stack.extend(reversed(children))
        elif isinstance(node, list):
            children = []
            for i, value in enumerate(node):
                if isinstance(value, str):
                    if len(value) > _SHORT or _search(value) is not None:
                        _string_problem((*path, i), value, out.hostile)
                elif isinstance(value, dict | list):
                    if value:
                        children.append((value, (*path, i)))
                    else:
                        out.empties.append(((*path, i), "{}" if isinstance(value, dict) else "[]"))
                elif value is None:
                    out.empties.append(((*path, i), "null"))
            stack.extend(reversed(children))
    return out


def format_path(path: Path) -> str:
    """Render a path the FHIRPath-like way error messages use.

    >>> format_path(("component", 0, "valueQuantity", "unit"))
    'component[0].valueQuantity.unit'
    >>> format_path(())
    '(resource)'
    """
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + part
    return text or "(resource)"
