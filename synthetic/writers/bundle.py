"""Per-patient FHIR Bundles (transaction or collection) and the shared practice bundle.

Transaction bundles give every entry a deterministic ``urn:uuid`` fullUrl and rewrite the
references between entries to those urns (the server assigns ids on POST); references to the
practice (Practitioner, Organization, ...) stay relative because the practice bundle PUTs those
resources with their own ids. Collection bundles keep relative references and use fullUrls
under a fixed base so that the references resolve against them.

>>> p = {"resourceType": "Patient", "id": "p1", "meta": {"security": [CONF_N]}}
>>> o = {"resourceType": "Observation", "id": "o1", "subject": {"reference": "Patient/p1"}}
>>> b = make_bundle([p, o], "transaction", bundle_id="b1")
>>> b["entry"][1]["resource"]["subject"]["reference"] == b["entry"][0]["fullUrl"]
True
>>> b["entry"][1]["request"]
{'method': 'POST', 'url': 'Observation'}
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import Any

import orjson

from synthetic.errors import ArgumentError
from synthetic.ids import urn_uuid
from synthetic.systems import SANDBOX_BASE, SANDBOX_TAGS, V3_CONFIDENTIALITY

COLLECTION_BASE = SANDBOX_BASE
CONFIDENTIALITY = V3_CONFIDENTIALITY
CONF_N = {"system": CONFIDENTIALITY, "code": "N", "display": "normal"}
_ORDER = "ULMNRV"
BUNDLE_TYPES = ("transaction", "collection")


def highest_confidentiality(resources: Iterable[dict[str, Any]]) -> dict[str, str]:
    """The highest v3-Confidentiality coding among ``resources`` (N when none is labelled).

    >>> r = {"meta": {"security": [{"system": CONFIDENTIALITY, "code": "R"}]}}
    >>> highest_confidentiality([{}, r])["code"]
    'R'
    """
    best = CONF_N
    for res in resources:
        for s in res.get("meta", {}).get("security", ()):
            if s.get("system") == CONFIDENTIALITY and _ORDER.find(s.get("code", "")) > _ORDER.find(
                best["code"]
            ):
                best = s
    return best


def _rewrite(obj: Any, refs: dict[str, str]) -> Any:
    # Copies on the way down: generated resources share template dicts, never mutate them.
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if k == "reference" and isinstance(v, str):
                out[k] = refs.get(v, v)
            else:
                out[k] = _rewrite(v, refs) if isinstance(v, (dict, list)) else v
        return out
    if isinstance(obj, list):
        return [_rewrite(v, refs) if isinstance(v, (dict, list)) else v for v in obj]
    return obj


def make_bundle(
    resources: list[dict[str, Any]],
    bundle_type: str = "transaction",
    *,
    bundle_id: str,
    method: str = "POST",
) -> dict[str, Any]:
    """Wrap ``resources`` in a Bundle of ``bundle_type``; ``method`` POST or PUT (transactions).

    >>> make_bundle([], "batch", bundle_id="x")
    Traceback (most recent call last):
    ...
    synthetic.errors.ArgumentError: bundle_type: expected one of transaction, collection, got 'batch'
    """
    if bundle_type not in BUNDLE_TYPES:
        raise ArgumentError(
            f"bundle_type: expected one of {', '.join(BUNDLE_TYPES)}, got {bundle_type!r}"
        )
    meta = {
        "tag": [{"system": SANDBOX_TAGS, "code": "synthetic"}],
        "security": [highest_confidentiality(resources)],
    }
    entries: list[dict[str, Any]] = []
    if bundle_type == "collection":
        for r in resources:
            entries.append(
                {"fullUrl": f"{COLLECTION_BASE}{r['resourceType']}/{r['id']}", "resource": r}
            )
    else:
        urns = {
            f"{r['resourceType']}/{r['id']}": urn_uuid(r["resourceType"], r["id"])
            for r in resources
        }
        for r in resources:
            key = f"{r['resourceType']}/{r['id']}"
            if method == "PUT":
                entries.append(
                    {"fullUrl": urns[key], "resource": r, "request": {"method": "PUT", "url": key}}
                )
            else:
                entries.append(
                    {
                        "fullUrl": urns[key],
                        "resource": _rewrite(r, urns),
                        "request": {"method": "POST", "url": r["resourceType"]},
                    }
                )
    return {
        "resourceType": "Bundle",
        "id": bundle_id,
        "meta": meta,
        "type": bundle_type,
        "entry": entries,
    }


PRACTICE_FILE = "practice.json"


def patient_file_name(index: int) -> str:
    """File name of patient ``index``'s bundle (sorts in index order).

    >>> patient_file_name(12)
    'patient-00000012.json'
    """
    return f"patient-{index:08d}.json"


def encode_patient_bundle(
    record: Any, bundle_type: str, types: frozenset[str] | None, counts: dict[str, int]
) -> bytes:
    """One patient's Bundle as JSON bytes (optionally only ``types``), counting entries by type.

    >>> from synthetic.record import PatientRecord
    >>> c = {}
    >>> b = encode_patient_bundle(PatientRecord(0, {"resourceType": "Patient", "id": "p"}), "collection", None, c)
    >>> c, orjson.loads(b)["type"]
    ({'Patient': 1}, 'collection')
    """
    res = [r for r in record.all() if types is None or r["resourceType"] in types]
    for r in res:
        counts[r["resourceType"]] = counts.get(r["resourceType"], 0) + 1
    bundle = make_bundle(res, bundle_type, bundle_id=f"bundle-{record.patient['id']}")
    return orjson.dumps(bundle)


class BundleSink:
    """Writes ``practice.json`` and one ``patient-<index>.json`` per patient into ``out_dir``.

    Files are written as ``.part`` and renamed on a clean exit; a failed run removes them.

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> with BundleSink(d, "collection") as sink:
    ...     sink.write_practice([{"resourceType": "Location", "id": "l"}])
    >>> orjson.loads((d / "practice.json").read_bytes())["type"]
    'collection'
    """

    def __init__(self, out_dir: str | os.PathLike[str], bundle_type: str) -> None:
        if bundle_type not in BUNDLE_TYPES:
            raise ArgumentError(
                f"bundle_type: expected one of {', '.join(BUNDLE_TYPES)}, got {bundle_type!r}"
            )
        self.out_dir = Path(out_dir)
        self.bundle_type = bundle_type
        self._names: list[str] = []
        self._manifest = bytearray()
        self.bytes_written = 0

    def __enter__(self) -> BundleSink:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        return self

    def _write(self, name: str, data: bytes) -> None:
        (self.out_dir / f"{name}.part").write_bytes(data)
        self._names.append(name)
        self.bytes_written += len(data)

    def write_practice(self, resources: list[dict[str, Any]]) -> None:
        """Write the practice bundle (transactions PUT the practice resources with their ids).

        >>> import tempfile
        >>> with BundleSink(tempfile.mkdtemp(), "transaction") as s:
        ...     s.write_practice([{"resourceType": "Organization", "id": "o"}])
        ...     [p.name for p in s.files()]
        ['practice.json']
        """
        bundle = make_bundle(resources, self.bundle_type, bundle_id="bundle-practice", method="PUT")
        self._write(PRACTICE_FILE, orjson.dumps(bundle))

    def write_record(
        self, record: Any, types: frozenset[str] | None, counts: dict[str, int]
    ) -> None:
        """Write one patient's bundle.

        >>> import tempfile, pathlib
        >>> from synthetic.record import PatientRecord
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> with BundleSink(d, "transaction") as sink:
        ...     sink.write_record(PatientRecord(7, {"resourceType": "Patient", "id": "p"}), None, {})
        >>> [p.name for p in d.iterdir()]
        ['patient-00000007.json']
        """
        self._write(
            patient_file_name(record.index),
            encode_patient_bundle(record, self.bundle_type, types, counts),
        )

    def count_into(self, counts: dict[str, int]) -> None:
        """Nothing to add: :meth:`write_record` counts as it writes.

        >>> BundleSink(".", "collection").count_into({})
        """

    def write_partition(self, result: Any) -> None:
        """Write the bundles a worker encoded.

        >>> import tempfile, pathlib
        >>> from synthetic.runners import PartitionResult
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> with BundleSink(d, "transaction") as sink:
        ...     sink.write_partition(PartitionResult(0, 1, files=[("patient-00000000.json", b"{}")]))
        >>> (d / "patient-00000000.json").read_bytes()
        b'{}'
        """
        for name, data in result.files:
            self._write(name, data)
        for name, path in result.spilled_files:  # a worker's files: moved, not copied
            self.bytes_written += os.path.getsize(path)
            os.replace(path, self.out_dir / f"{name}.part")
            self._names.append(name)
        self.write_manifest(result.manifest)

    def write_manifest(self, data: bytes) -> None:
        """Append JSON lines to ``defects-manifest.jsonl`` (written on a clean exit).

        >>> BundleSink(".", "collection").write_manifest(b"")
        """
        if data:
            self._manifest += data

    def files(self) -> list[Path]:
        """Final paths of the files written so far.

        >>> BundleSink(".", "collection").files()
        []
        """
        return [self.out_dir / n for n in self._names]

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None and self._manifest:
            self._write("defects-manifest.jsonl", bytes(self._manifest))
        for name in self._names:
            part = self.out_dir / f"{name}.part"
            if exc_type is None:
                part.replace(self.out_dir / name)
            else:
                part.unlink(missing_ok=True)
