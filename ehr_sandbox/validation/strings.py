"""Rule 5: hostile strings — control characters and over-long values are refused.

Patient data is untrusted input: it is later shown in notebooks, terminals, reports and
exported files. A BEL, ESC or NUL character can rewrite a terminal, break CSV/SQL tooling or
hide text; a multi-megabyte string in a name or note is an attack on every screen that shows
it. Newline and tab are allowed (notes have lines), and so is CR when it is part of a CRLF.

>>> from ehr_sandbox.validation.tree import scan
>>> [p.path for p in string_problems(scan({"resourceType": "Patient", "gender": "male\\x1b[2J"}))]
['gender']
>>> string_problems(scan({"text": "line one\\nline two\\twith a tab"}))
[]
"""

from __future__ import annotations

from .problem import Problem
from .tree import MAX_STRING_BYTES, Scan, format_path

__all__ = ["string_problems"]


def string_problems(found: Scan) -> list[Problem]:
    """Problems for the hostile strings (and over-deep nesting) a :func:`scan` collected.

    >>> from ehr_sandbox.validation.tree import scan
    >>> string_problems(scan({"note": "x" * 1_000_001}))[0].expected
    'a string of at most 1000000 bytes'
    """
    problems = []
    if found.too_deep is not None:
        problems.append(
            Problem(
                format_path(found.too_deep[:8]) + "...",
                "a resource nested at most 64 levels deep",
                why="no FHIR resource needs deeper nesting; such input is an attack on parsers",
                rule="string",
            )
        )
    for bad in found.hostile:
        if bad.problem == "too-long":
            problems.append(
                Problem(
                    format_path(bad.path),
                    f"a string of at most {MAX_STRING_BYTES} bytes",
                    found=bad.detail,
                    why="store large documents as an Attachment in a Binary or DocumentReference, "
                    "not inside a field that every screen and report displays",
                    rule="string",
                )
            )
        else:
            problems.append(
                Problem(
                    format_path(bad.path),
                    "text without control characters (only newline and tab are allowed)",
                    found=bad.detail,
                    why="control characters can rewrite terminals, corrupt exports and hide text "
                    "from the reader; remove them",
                    rule="string",
                )
            )
    return problems
