"""Write resources as Bulk Data NDJSON or as Bundles (the Session decides *which* resources).

Files are written to a temporary name and renamed, so a reader never sees half a file.

>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> paths = export_ndjson({"Patient": [{"resourceType": "Patient", "id": "a"}]}, d)
>>> paths["Patient"].name, paths["Patient"].read_text()
('Patient.ndjson', '{"resourceType":"Patient","id":"a"}\\n')
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import orjson

from ehr_sandbox.errors import ValidationError
from synthetic.fhir import is_resource_type
from synthetic.systems import V3_CONFIDENTIALITY

CONFIDENTIALITY = V3_CONFIDENTIALITY
_ORDER = "ULMNRV"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_NS = uuid.UUID("4b0e1c2d-6a7f-5e8d-9c0b-1a2b3c4d5e6f")


def _atomic_write(path: Path, chunks: Iterable[bytes]) -> None:
    """Write ``path`` through a new temporary file in the same directory, then rename.

    The temporary file is created exclusively (``mkstemp``: never an existing name, never
    through a symlink) and the rename replaces a planted symlink at ``path`` itself rather
    than writing where it points, so nothing is ever written outside the directory.
    """
    import tempfile

    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            for c in chunks:
                fh.write(c)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def output_dir(out_dir: str | Path) -> Path:
    """The export directory, created if needed; a symlink there is refused.

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> (d / "link").symlink_to(d / "elsewhere")
    >>> output_dir(d / "link")
    Traceback (most recent call last):
    ...
    ehr_sandbox.errors.ValidationError: export: out: expected a directory, not a symbolic link (found 'link')
    """
    out = Path(out_dir)
    if out.is_symlink():
        raise ValidationError("export", "out", "a directory, not a symbolic link", found=out.name)
    out.mkdir(parents=True, exist_ok=True)
    return out


def export_ndjson(
    resources_by_type: Mapping[str, Iterable[dict[str, Any]]], out_dir: str | Path
) -> dict[str, Path]:
    """Write ``<Type>.ndjson`` per type into ``out_dir``; return the paths by type.

    Every resource must be of the type it is filed under.

    Parameters
    ----------
    resources_by_type : mapping of str to iterable of dict
        Resources by type.
    out_dir : str or Path
        The folder to write (created if needed).

    Returns
    -------
    dict
        Type to the file written.

    Raises
    ------
    ValidationError
        A resource filed under another type than its own.

    Examples
    --------
    >>> import tempfile
    >>> d = tempfile.mkdtemp()
    >>> paths = export_ndjson({"Patient": [{"resourceType": "Patient", "id": "a"}, {"resourceType": "Patient", "id": "b"}]}, d)
    >>> paths["Patient"].name, len(paths["Patient"].read_text().splitlines())
    ('Patient.ndjson', 2)
    >>> export_ndjson({"Patient": [{"resourceType": "Observation", "id": "o"}]}, d)
    Traceback (most recent call last):
    ...
    ehr_sandbox.errors.ValidationError: Patient: resourceType: expected only Patient resources in Patient.ndjson (found 'Observation')
    """
    out = output_dir(out_dir)
    paths: dict[str, Path] = {}
    for rtype, resources in resources_by_type.items():
        if not is_resource_type(rtype):
            raise ValidationError(str(rtype), "resourceType", "a FHIR resource type", found=rtype)

        def lines(
            rtype: str = rtype, resources: Iterable[dict[str, Any]] = resources
        ) -> Iterable[bytes]:
            for r in resources:
                if r.get("resourceType") != rtype:
                    raise ValidationError(
                        rtype,
                        "resourceType",
                        f"only {rtype} resources in {rtype}.ndjson",
                        found=r.get("resourceType"),
                    )
                yield orjson.dumps(r) + b"\n"

        paths[rtype] = out / f"{rtype}.ndjson"
        _atomic_write(paths[rtype], lines())
    return paths


def highest_confidentiality(resources: Iterable[dict[str, Any]]) -> str | None:
    """The highest v3-Confidentiality code among ``resources`` (U < L < M < N < R < V).

    >>> highest_confidentiality([{"meta": {"security": [{"system": CONFIDENTIALITY, "code": "R"}]}},
    ...                          {"meta": {"security": [{"system": CONFIDENTIALITY, "code": "N"}]}}])
    'R'
    """
    best = -1
    for r in resources:
        for s in (r.get("meta") or {}).get("security") or ():
            if (
                isinstance(s, dict)
                and s.get("system") == CONFIDENTIALITY
                and s.get("code") in tuple(_ORDER)
            ):
                best = max(best, _ORDER.index(s["code"]))
    return _ORDER[best] if best >= 0 else None


def make_bundle(
    resources: Iterable[dict[str, Any]], *, bundle_type: str = "transaction"
) -> dict[str, Any]:
    """A Bundle of ``resources``: ``transaction`` (PUT ``Type/id``, re-importable with the same ids)
    or ``collection``; labelled with the highest confidentiality of its contents.

    >>> b = make_bundle([{"resourceType": "Patient", "id": "a"}])
    >>> b["type"], b["entry"][0]["request"]
    ('transaction', {'method': 'PUT', 'url': 'Patient/a'})
    """
    if bundle_type not in ("transaction", "collection"):
        raise ValidationError("Bundle", "type", "transaction or collection", found=bundle_type)
    items = list(resources)
    entries = []
    for r in items:
        ref = f"{r['resourceType']}/{r['id']}"
        entry: dict[str, Any] = {"fullUrl": f"urn:uuid:{uuid.uuid5(_NS, ref)}", "resource": r}
        if bundle_type == "transaction":
            entry["request"] = {"method": "PUT", "url": ref}
        entries.append(entry)
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": bundle_type, "entry": entries}
    conf = highest_confidentiality(items)
    if conf:
        bundle["meta"] = {"security": [{"system": CONFIDENTIALITY, "code": conf}]}
    return bundle


def export_bundles(
    groups: Mapping[str, Iterable[dict[str, Any]]],
    out_dir: str | Path,
    *,
    bundle_type: str = "transaction",
) -> dict[str, Path]:
    """Write one Bundle per group (e.g. per patient) as ``<name>.json``; return paths by name.

    >>> import tempfile
    >>> p = export_bundles({"patient-a": [{"resourceType": "Patient", "id": "a"}]}, tempfile.mkdtemp())
    >>> p["patient-a"].name
    'patient-a.json'
    """
    out = output_dir(out_dir)
    paths: dict[str, Path] = {}
    for name, resources in groups.items():
        if not _NAME_RE.match(name):
            raise ValidationError(
                "Bundle", "name", "a file name of letters, digits, '.', '_' or '-'", found=name
            )
        bundle = make_bundle(resources, bundle_type=bundle_type)
        paths[name] = out / f"{name}.json"
        _atomic_write(paths[name], [orjson.dumps(bundle, option=orjson.OPT_INDENT_2)])
    return paths
