"""Read FHIR Bundles (JSON files) and Bulk Data NDJSON (one resource per line), streaming.

>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> _ = (d / "Patient.ndjson").write_text('{"resourceType": "Patient", "id": "a"}\\n\\n')
>>> [r["id"] for r in read_ndjson_dir(d)]
['a']
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from ehr_sandbox.errors import ValidationError


def read_bundle_file(path: str | Path) -> dict[str, Any]:
    """Load one Bundle JSON file (ValidationError naming the file when it is not one).

    >>> read_bundle_file("/nonexistent/b.json")
    Traceback (most recent call last):
    ...
    ehr_sandbox.errors.ValidationError: b.json: (file): expected a readable FHIR Bundle JSON file. [Errno 2] No such file or directory: '/nonexistent/b.json'
    """
    p = Path(path)
    try:
        data = orjson.loads(p.read_bytes())
    except OSError as exc:
        raise ValidationError(
            p.name, "(file)", "a readable FHIR Bundle JSON file", why=str(exc)
        ) from None
    except orjson.JSONDecodeError as exc:
        raise ValidationError(p.name, "(file)", "valid JSON", why=str(exc)) from None
    if not isinstance(data, dict) or data.get("resourceType") != "Bundle":
        found = data.get("resourceType") if isinstance(data, dict) else type(data).__name__
        raise ValidationError(p.name, "resourceType", "a Bundle", found=found)
    return data


def read_ndjson_file(path: str | Path) -> Iterator[dict[str, Any]]:
    r"""Resources of one NDJSON file, one per non-empty line, read lazily.

    Parameters
    ----------
    path : str or Path
        The file.

    Yields
    ------
    dict
        Each line's resource.

    Raises
    ------
    ValidationError
        A bad line (not JSON, not a resource), naming ``file:line``.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "Patient.ndjson"
    >>> _ = f.write_text('{"resourceType": "Patient", "id": "a"}\n\n{"resourceType": "Patient", "id": "b"}\n')
    >>> [r["id"] for r in read_ndjson_file(f)]
    ['a', 'b']
    >>> _ = f.write_text('{"resourceType": "Patient"}\nnot json\n')
    >>> list(read_ndjson_file(f))
    Traceback (most recent call last):
    ...
    ehr_sandbox.errors.ValidationError: Patient.ndjson:2: (line): expected one JSON resource per line. ...
    """
    p = Path(path)
    with p.open("rb") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                obj = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise ValidationError(
                    f"{p.name}:{lineno}", "(line)", "one JSON resource per line", why=str(exc)
                ) from None
            if not isinstance(obj, dict) or not isinstance(obj.get("resourceType"), str):
                raise ValidationError(
                    f"{p.name}:{lineno}", "resourceType", "a FHIR resource object"
                )
            yield obj


def read_ndjson_dir(directory: str | Path) -> Iterator[dict[str, Any]]:
    """Resources of every ``*.ndjson`` file in ``directory`` (sorted by name), streaming.

    >>> list(read_ndjson_dir("/nonexistent"))
    Traceback (most recent call last):
    ...
    ehr_sandbox.errors.ValidationError: nonexistent: (directory): expected a directory of .ndjson files
    """
    d = Path(directory)
    if not d.is_dir():
        raise ValidationError(d.name, "(directory)", "a directory of .ndjson files")
    for f in sorted(d.glob("*.ndjson")):
        yield from read_ndjson_file(f)
