"""Where view input comes from: Python dicts or a directory of FHIR Bulk Data NDJSON files.

Both engines read the same :class:`ResourceSource`: the reference evaluator iterates dicts, the
DuckDB engine reads the files directly with ``read_ndjson_objects`` (or a registered Arrow table
of JSON text for in-memory dicts), so nothing is parsed twice for the fast path.

>>> src = ResourceSource.from_any([{"resourceType": "Patient", "id": "a"}])
>>> [r["id"] for r in src.resources("Patient")]
['a']
"""

from __future__ import annotations

import gzip
from collections.abc import Iterable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson

__all__ = ["ResourceSource", "dumps_resource"]


def _default(obj: Any) -> Any:
    if isinstance(obj, Decimal):
        # orjson (3.8) has no raw-number output; a float keeps the value for the SQL engine,
        # which reads decimals as DOUBLE anyway.
        return float(obj)
    raise TypeError(f"cannot serialise {type(obj).__name__} in a FHIR resource")


def dumps_resource(resource: dict[str, Any]) -> bytes:
    """Serialise a resource dict to JSON bytes (Decimal values written as numbers).

    >>> dumps_resource({"resourceType": "Observation", "valueQuantity": {"value": Decimal("1.50")}})
    b'{"resourceType":"Observation","valueQuantity":{"value":1.5}}'
    """
    return orjson.dumps(resource, default=_default)


class ResourceSource:
    """Resources from memory (a list of dicts) or from NDJSON files in a directory.

    >>> ResourceSource.from_any([]).files is None
    True
    """

    def __init__(
        self, items: list[dict[str, Any]] | None = None, files: list[Path] | None = None
    ) -> None:
        self.items = items
        self.files = files

    @classmethod
    def from_any(cls, source: Any) -> ResourceSource:
        """Wrap an iterable of dicts, a directory of NDJSON, one NDJSON file or a ResourceSource.

        >>> ResourceSource.from_any("/nonexistent-dir")
        Traceback (most recent call last):
        ...
        FileNotFoundError: no such NDJSON file or directory: /nonexistent-dir
        """
        if isinstance(source, ResourceSource):
            return source
        if isinstance(source, str | Path):
            path = Path(source)
            if path.is_dir():
                files = sorted(
                    p
                    for p in path.iterdir()
                    if p.is_file() and p.name.endswith((".ndjson", ".ndjson.gz", ".jsonl"))
                )
                return cls(files=files)
            if path.is_file():
                return cls(files=[path])
            raise FileNotFoundError(f"no such NDJSON file or directory: {path}")
        if isinstance(source, dict):
            return cls(items=[source])
        if isinstance(source, Iterable):
            return cls(items=list(source))
        raise TypeError(
            f"source: expected dicts or a directory of NDJSON files, found {type(source).__name__}"
        )

    def files_for(self, resource_type: str) -> list[Path]:
        """The NDJSON files that may hold ``resource_type``.

        Bulk Data names files by type (``Patient.ndjson``, ``Patient-2.ndjson``); files named
        after another resource type are skipped, files with other names are always read (rows
        are filtered on ``resourceType`` anyway).

        >>> ResourceSource(files=[Path("Patient.ndjson"), Path("Observation.ndjson"), Path("extra.ndjson")]).files_for("Patient")
        [PosixPath('Patient.ndjson'), PosixPath('extra.ndjson')]
        """
        from synthetic.fhir import is_resource_type

        out = []
        for p in self.files or []:
            prefix = p.name.split(".")[0].split("-")[0]
            if prefix == resource_type or not is_resource_type(prefix):
                out.append(p)
        return out

    def resources(self, resource_type: str | None = None) -> Iterator[dict[str, Any]]:
        """Iterate resource dicts (of one type when given).

        >>> list(ResourceSource([{"resourceType": "A"}, {"resourceType": "B"}]).resources("B"))
        [{'resourceType': 'B'}]
        """
        if self.items is not None:
            for r in self.items:
                if resource_type is None or (
                    isinstance(r, dict) and r.get("resourceType") == resource_type
                ):
                    yield r
            return
        files = self.files_for(resource_type) if resource_type else (self.files or [])
        for path in files:
            opener = gzip.open if path.name.endswith(".gz") else open
            with opener(path, "rb") as fh:
                for line in fh:
                    if line.strip():
                        r = orjson.loads(line)
                        if resource_type is None or r.get("resourceType") == resource_type:
                            yield r
