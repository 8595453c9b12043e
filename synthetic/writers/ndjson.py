"""FHIR Bulk Data NDJSON: one ``<Type>.ndjson`` file per resource type.

Encoding is split from writing so a worker process can encode a partition to bytes and the
parent can append the partitions in index order (identical bytes whatever the worker count).

>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> with NdjsonSink(d) as sink:
...     sink.append(encode_resources([{"resourceType": "Patient", "id": "a"}]))
>>> (d / "Patient.ndjson").read_bytes()
b'{"resourceType":"Patient","id":"a"}\\n'
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import orjson

_DUMPS = orjson.dumps
_NL = orjson.OPT_APPEND_NEWLINE
_FLUSH_LINES = 32
"""Lines kept per type before one ``writev`` (at most IOV_MAX buffers). Few: the lines waiting
for the kernel stay in the CPU's cache (128 per type left twice the cache misses)."""


def encode_resources(
    resources: Iterable[dict[str, Any]], types: frozenset[str] | None = None
) -> dict[str, bytearray]:
    """Encode resources as NDJSON lines grouped by type (optionally only ``types``).

    >>> encode_resources([{"resourceType": "Patient"}, {"resourceType": "Encounter"}], frozenset({"Patient"}))
    {'Patient': bytearray(b'{"resourceType":"Patient"}\\n')}
    """
    out: dict[str, bytearray] = {}
    for r in resources:
        t = r["resourceType"]
        if types is not None and t not in types:
            continue
        buf = out.get(t)
        if buf is None:
            buf = out[t] = bytearray()
        buf += _DUMPS(r, option=_NL)
    return out


MANIFEST = "_defects"
"""Key of the defects manifest among the sink's files."""


def final_name(key: str) -> str:
    """File name for a resource type (``<Type>.ndjson``) or the defects manifest.

    >>> final_name("Patient"), final_name(MANIFEST)
    ('Patient.ndjson', 'defects-manifest.jsonl')
    """
    return "defects-manifest.jsonl" if key == MANIFEST else f"{key}.ndjson"


class NdjsonSink:
    """Appends encoded chunks to ``<Type>.ndjson`` files in ``out_dir``.

    Files are written as ``.part`` and renamed on a clean exit, so a failed run leaves no
    half-written dataset behind (the partial files are removed).

    >>> import tempfile
    >>> with NdjsonSink(tempfile.mkdtemp()) as sink:
    ...     sink.write_practice([{"resourceType": "Location", "id": "l"}])
    >>> [p.name for p in sink.files()]
    ['Location.ndjson']
    """

    def __init__(self, out_dir: str | os.PathLike[str]) -> None:
        self.out_dir = Path(out_dir)
        self._files: dict[str, Any] = {}
        self._bufs: dict[str, list[bytes]] = {}
        self._lines: dict[str, int] = {}
        self.bytes_written = 0

    def __enter__(self) -> NdjsonSink:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        return self

    def _file(self, resource_type: str) -> Any:
        f = self._files.get(resource_type)
        if f is None:
            f = self._files[resource_type] = open(  # noqa: SIM115 - closed in __exit__
                self.out_dir / f"{final_name(resource_type)}.part", "wb", buffering=0
            )
        return f

    def write_manifest(self, data: bytes) -> None:
        """Append JSON lines to the defects manifest (``defects-manifest.jsonl``, not FHIR).

        >>> import tempfile
        >>> with NdjsonSink(tempfile.mkdtemp()) as s:
        ...     s.write_manifest(b'{"kind":"missing_data"}\\n')
        ...     [p.name for p in s.files()]
        ['defects-manifest.jsonl']
        """
        if data:
            self._file(MANIFEST).write(data)

    def append(self, chunks: Mapping[str, bytes | bytearray]) -> None:
        """Append each type's encoded bytes to its file.

        >>> import tempfile
        >>> with NdjsonSink(tempfile.mkdtemp()) as s:
        ...     s.append({"Patient": b"{}\\n"})
        ...     s.bytes_written
        3
        """
        self._flush()
        for t, data in chunks.items():
            self._file(t).write(data)
            self.bytes_written += len(data)

    def write_resource(self, resource: dict[str, Any]) -> None:
        """Append one resource (the streaming path of the in-process runner).

        >>> import tempfile
        >>> with NdjsonSink(tempfile.mkdtemp()) as s:
        ...     s.write_resource({"resourceType": "Patient"})
        ...     s.bytes_written
        27
        """
        data = _DUMPS(resource, option=_NL)
        self._flush()
        self._file(resource["resourceType"]).write(data)
        self.bytes_written += len(data)

    def write_practice(self, resources: list[dict[str, Any]]) -> None:
        """Append the shared practice resources (written before any patient).

        >>> import tempfile
        >>> with NdjsonSink(tempfile.mkdtemp()) as s:
        ...     s.write_practice([{"resourceType": "Organization", "id": "o"}])
        ...     [p.name for p in s.files()]
        ['Organization.ndjson']
        """
        for r in resources:
            self.write_resource(r)

    def write_practice_first(self, resources: list[dict[str, Any]]) -> None:
        """Put the practice resources in front of what was written (for a run that learns the
        practice only after its patients); the files end as if they were written first.

        >>> import tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> with NdjsonSink(d) as s:
        ...     s.write_resource({"resourceType": "Slot", "id": "busy"})
        ...     s.write_practice_first([{"resourceType": "Slot", "id": "free"}])
        >>> (d / "Slot.ndjson").read_text().split()
        ['{"resourceType":"Slot","id":"free"}', '{"resourceType":"Slot","id":"busy"}']
        """
        self._flush()
        for t, data in encode_resources(resources).items():
            self.bytes_written += len(data)
            old = self._files.get(t)
            if old is None:
                self._file(t).write(data)
                continue
            part = self.out_dir / f"{final_name(t)}.part"
            head_path = self.out_dir / f"{final_name(t)}.head"
            head = open(head_path, "wb", buffering=0)  # noqa: SIM115 - closed in __exit__
            try:
                head.write(data)
                with open(part, "rb") as src:
                    _copy_into(src, head)
                os.replace(head_path, part)  # the open descriptor follows the file
            except BaseException:
                head.close()
                head_path.unlink(missing_ok=True)
                raise
            old.close()
            self._files[t] = head

    def write_record(
        self, record: Any, types: frozenset[str] | None, counts: dict[str, int]
    ) -> None:
        """Append one patient's resources (optionally only ``types``), counting them by type.

        The record is drained (:meth:`~synthetic.record.PatientRecord.drain`): its resources
        are let go as they are written.

        >>> import tempfile
        >>> from synthetic.record import PatientRecord
        >>> c = {}
        >>> with NdjsonSink(tempfile.mkdtemp()) as s:
        ...     s.write_record(PatientRecord(0, {"resourceType": "Patient", "id": "p"}), None, c)
        ...     s.count_into(c)
        >>> c
        {'Patient': 1}
        """
        # encoded lines are kept per type and handed to the kernel in one writev per
        # _FLUSH_LINES (no copy into a growing buffer); lines are counted per block written.
        # The record is drained: each resource is freed as soon as it is encoded.
        bufs = self._bufs
        dumps, opt = _DUMPS, _NL
        for r in record.drain():
            t = r["resourceType"]
            if types is not None and t not in types:
                continue
            buf = bufs.get(t)
            if buf is None:
                buf = self._buf(t)
            buf.append(dumps(r, option=opt))
            if len(buf) >= _FLUSH_LINES:
                self._write_block(t, buf)

    def _buf(self, resource_type: str) -> list[bytes]:
        buf = self._bufs.get(resource_type)
        if buf is None:
            buf = self._bufs[resource_type] = []
        return buf

    def _write_block(self, resource_type: str, buf: list[bytes]) -> None:
        self.bytes_written += _writev_all(self._file(resource_type).fileno(), buf)
        lines = self._lines
        lines[resource_type] = lines.get(resource_type, 0) + len(buf)
        buf.clear()

    def count_into(self, counts: dict[str, int]) -> None:
        """Add the number of resources written by :meth:`write_record` so far, by type, to ``counts``.

        Buffered lines are flushed first.

        >>> import tempfile
        >>> from synthetic.record import PatientRecord
        >>> c = {}
        >>> with NdjsonSink(tempfile.mkdtemp()) as s:
        ...     s.write_record(PatientRecord(0, {"resourceType": "Patient", "id": "p"}), None, {})
        ...     s.count_into(c)
        >>> c
        {'Patient': 1}
        """
        self._flush()
        for t, n in self._lines.items():
            counts[t] = counts.get(t, 0) + n
        self._lines.clear()

    def _flush(self) -> None:
        for t, buf in self._bufs.items():
            if buf:
                self._write_block(t, buf)

    def write_partition(self, result: Any) -> None:
        """Append a partition encoded by a worker (see :mod:`synthetic.runners`).

        >>> import tempfile
        >>> from synthetic.runners import PartitionResult
        >>> with NdjsonSink(tempfile.mkdtemp()) as s:
        ...     s.write_partition(PartitionResult(0, 1, chunks={"Patient": b"{}\\n"}))
        ...     s.bytes_written
        3
        """
        self.append(result.chunks)
        for t, path in result.spilled.items():  # a worker's part files: copied in the kernel
            with open(path, "rb") as src:
                self.bytes_written += _copy_into(src, self._file(t))
            os.unlink(path)
        self.write_manifest(result.manifest)

    def files(self) -> list[Path]:
        """Final paths of the files written so far (sorted by name).

        >>> NdjsonSink(".").files()
        []
        """
        return sorted(self.out_dir / final_name(t) for t in self._files)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self._flush()
        for f in self._files.values():
            f.close()
        for t in self._files:
            part = self.out_dir / f"{final_name(t)}.part"
            if exc_type is None:
                part.replace(self.out_dir / final_name(t))
            else:
                part.unlink(missing_ok=True)


def _writev_all(fd: int, chunks: list[bytes]) -> int:
    """Write every chunk to ``fd`` in order (one ``writev`` unless it is cut short); bytes written.

    >>> import tempfile
    >>> with tempfile.TemporaryFile() as f:
    ...     _writev_all(f.fileno(), [b"ab", b"c"] * 1500), f.seek(0), f.read(7)
    (4500, 0, b'abcabca')
    """
    total = 0
    for i in range(0, len(chunks), _FLUSH_LINES):  # at most IOV_MAX buffers per call
        group = chunks[i : i + _FLUSH_LINES]
        size = sum(map(len, group))
        done = os.writev(fd, group) if hasattr(os, "writev") else os.write(fd, b"".join(group))
        if done < size:  # a short write (a signal, a full disk): write the rest plainly
            rest = memoryview(b"".join(group))[done:]
            while rest:
                rest = rest[os.write(fd, rest) :]
        total += size
    return total


def _copy_into(src: Any, dst: Any) -> int:
    """Append all of ``src`` to ``dst`` (``copy_file_range`` where the OS has it); bytes copied."""
    import shutil

    size = os.fstat(src.fileno()).st_size
    done = 0
    if hasattr(os, "copy_file_range"):
        try:
            while done < size:
                n = os.copy_file_range(src.fileno(), dst.fileno(), size - done)
                if n == 0:
                    break
                done += n
            return done
        except OSError:
            src.seek(done)
    shutil.copyfileobj(src, dst, 1 << 20)
    return size
