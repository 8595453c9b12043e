"""Run generation partitions in-process, on a process pool, or on a dask cluster.

A partition is a range of patient indices; :func:`run_partition` is a pure function of its
:class:`PartitionSpec`, and results are consumed in index order, so every engine and worker
count produces the same bytes.

>>> spec = PartitionSpec(seed=1, reference_date="2026-01-01", years=2, population="family-practice",
...                      start=0, stop=2, format="ndjson")
>>> a = run_partition(spec); b = next(iter_partitions([spec], workers=1))
>>> a.chunks == b.chunks and a.patients == 2
True
"""

from __future__ import annotations

import gc
import os
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from synthetic.errors import ArgumentError

ENGINES = ("process", "dask")


@dataclass(frozen=True, slots=True)
class PartitionSpec:
    """Everything a worker needs to make patients ``start`` (inclusive) to ``stop`` (exclusive).

    >>> PartitionSpec(1, "2026-01-01", 2, "family-practice", 0, 10).format
    'ndjson'
    """

    seed: int
    reference_date: str
    years: int
    population: str
    start: int
    stop: int
    format: str = "ndjson"
    bundle_type: str = "transaction"
    types: tuple[str, ...] | None = None
    content: Any = None
    defects: tuple[tuple[str, float], ...] | None = None
    spill_dir: str | None = None
    schedule: Any = None
    """The shared schedule before patient ``start`` (:meth:`synthetic.schedule.Book.state`);
    None: the worker plans patients ``0 .. start - 1`` itself."""


@dataclass(slots=True)
class PartitionResult:
    """Encoded output of one partition: NDJSON bytes by type, or ``(file name, bytes)`` pairs.

    A spilled partition (its spec had a ``spill_dir``) holds file paths instead of bytes:
    ``spilled`` maps each type (and :data:`MANIFEST_KEY`) to its part file, ``spilled_files``
    lists ``(bundle file name, path)``. The parent then moves or concatenates files; no
    partition's bytes travel through a pipe.

    >>> PartitionResult(0, 2, counts={"Patient": 2}).counts["Patient"]
    2
    """

    start: int
    stop: int
    chunks: dict[str, bytes] = field(default_factory=dict)
    files: list[tuple[str, bytes]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    manifest: bytes = b""
    spilled: dict[str, str] = field(default_factory=dict)
    spilled_files: list[tuple[str, str]] = field(default_factory=list)

    @property
    def patients(self) -> int:
        """Number of patients in the partition.

        >>> PartitionResult(3, 10).patients
        7
        """
        return self.stop - self.start


def run_partition(spec: PartitionSpec) -> PartitionResult:
    """Generate and encode one partition (pure: same spec, same bytes).

    >>> r = run_partition(PartitionSpec(1, "2026-01-01", 1, "family-practice", 5, 7))
    >>> r.patients, r.counts["Patient"]
    (2, 2)
    """
    from synthetic.engine import engine_for

    engine = engine_for(
        seed=spec.seed,
        reference_date=spec.reference_date,
        years=spec.years,
        population=spec.population,
        content=spec.content,
    )
    types = frozenset(spec.types) if spec.types is not None else None
    result = PartitionResult(spec.start, spec.stop)
    gc_was_enabled = gc.isenabled()
    gc.disable()  # generated records hold no cycles (see synthetic.api.write_dataset)
    try:
        _fill(engine, spec, types, result)
    finally:
        if gc_was_enabled:
            gc.enable()
    return result


MANIFEST_KEY = "_defects"
"""Key of the defects manifest in :attr:`PartitionResult.spilled` (as the NDJSON sink's)."""


def _fill(
    engine: Any, spec: PartitionSpec, types: frozenset[str] | None, result: PartitionResult
) -> None:
    if spec.spill_dir is not None:
        _fill_spilled(engine, spec, types, result)
        return
    import orjson

    from synthetic.defects import apply_defects
    from synthetic.writers.bundle import encode_patient_bundle, patient_file_name
    from synthetic.writers.ndjson import encode_resources

    counts = result.counts
    rates = dict(spec.defects) if spec.defects else None
    manifest = bytearray()
    book = _book(engine, spec)

    def _make(i: int) -> Any:
        record = engine.patient(i, book)
        if rates:
            record = apply_defects(record, rates, seed=spec.seed)
            for entry in record.defects:
                manifest.extend(orjson.dumps(entry, option=orjson.OPT_APPEND_NEWLINE))
        return record

    if spec.format == "ndjson":
        chunks: dict[str, bytearray] = {}
        for i in range(spec.start, spec.stop):
            record = _make(i)
            for t, data in encode_resources(record.drain(), types).items():
                buf = chunks.get(t)
                if buf is None:
                    chunks[t] = data
                else:
                    buf += data
        for t, data in chunks.items():
            counts[t] = data.count(b"\n")
        result.chunks = {t: bytes(v) for t, v in chunks.items()}
    else:
        for i in range(spec.start, spec.stop):
            record = _make(i)
            result.files.append(
                (
                    patient_file_name(i),
                    encode_patient_bundle(record, spec.bundle_type, types, counts),
                )
            )
    result.manifest = bytes(manifest)


def _fill_spilled(
    engine: Any, spec: PartitionSpec, types: frozenset[str] | None, result: PartitionResult
) -> None:
    # The worker writes its partition to part files as it goes (flat memory) and returns only
    # their paths; the parent concatenates them in partition order, so the bytes are the
    # same as with any other runner.
    import orjson

    from synthetic.defects import apply_defects
    from synthetic.writers.bundle import encode_patient_bundle, patient_file_name
    from synthetic.writers.ndjson import encode_resources

    assert spec.spill_dir is not None
    folder = os.path.join(spec.spill_dir, f"part-{spec.start:010d}")
    os.makedirs(folder, exist_ok=True)
    files: dict[str, Any] = {}
    rates = dict(spec.defects) if spec.defects else None
    counts = result.counts
    book = _book(engine, spec)

    def out(key: str) -> Any:
        f = files.get(key)
        if f is None:
            path = os.path.join(folder, f"{key}.ndjson")
            f = files[key] = open(path, "wb")  # noqa: SIM115 - closed below
            result.spilled[key] = path
        return f

    try:
        for i in range(spec.start, spec.stop):
            record = engine.patient(i, book)
            if rates:
                record = apply_defects(record, rates, seed=spec.seed)
                for entry in record.defects:
                    out(MANIFEST_KEY).write(orjson.dumps(entry, option=orjson.OPT_APPEND_NEWLINE))
            if spec.format == "ndjson":
                for t, data in encode_resources(record.drain(), types).items():
                    out(t).write(data)
                    counts[t] = counts.get(t, 0) + data.count(b"\n")
            else:
                name = patient_file_name(i)
                path = os.path.join(folder, name)
                with open(path, "wb") as f:
                    f.write(encode_patient_bundle(record, spec.bundle_type, types, counts))
                result.spilled_files.append((name, path))
    finally:
        for f in files.values():
            f.close()
    if MANIFEST_KEY in result.spilled:
        with open(result.spilled.pop(MANIFEST_KEY), "rb") as f:
            result.manifest = f.read()


def _book(engine: Any, spec: PartitionSpec) -> Any:
    from synthetic.schedule import Book

    if spec.schedule is None:
        return engine.book_before(spec.start)
    book = Book.from_state(engine.practice, spec.schedule)
    book.grid = engine.grid
    return book


def split(start: int, n: int, size: int) -> list[tuple[int, int]]:
    """Partition ``n`` indices from ``start`` into ranges of at most ``size``.

    >>> split(10, 5, 2)
    [(10, 12), (12, 14), (14, 15)]
    """
    return [(a, min(a + size, start + n)) for a in range(start, start + n, size)]


def iter_partitions(
    specs: Iterable[PartitionSpec],
    *,
    workers: int = 1,
    engine: str = "process",
    address: str | None = None,
    spill_dir: str | os.PathLike[str] | None = None,
) -> Iterator[PartitionResult]:
    """Run ``specs`` and yield their results in the order given (bounded work in flight).

    With ``spill_dir`` (a folder on the output's file system) and a local pool or cluster,
    workers write their partitions to part files under a private folder in it, removed
    when the run ends; results then carry paths (see :class:`PartitionResult`).

    >>> list(iter_partitions([], workers=0))
    Traceback (most recent call last):
    ...
    synthetic.errors.ArgumentError: workers: expected an integer >= 1, got 0
    """
    if not isinstance(workers, int) or workers < 1:
        raise ArgumentError(f"workers: expected an integer >= 1, got {workers!r}")
    if engine not in ENGINES:
        raise ArgumentError(f"engine: expected one of {', '.join(ENGINES)}, got {engine!r}")
    if spill_dir is None or workers == 1 or (engine == "dask" and address is not None):
        # in-process, or a remote cluster that may not share our file system: bytes
        yield from _run(specs, workers, engine, address)
        return
    import shutil
    import tempfile
    from dataclasses import replace

    folder = tempfile.mkdtemp(prefix=".parts-", dir=os.fspath(spill_dir))
    try:
        yield from _run((replace(s, spill_dir=folder) for s in specs), workers, engine, address)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _run(
    specs: Iterable[PartitionSpec], workers: int, engine: str, address: str | None
) -> Iterator[PartitionResult]:
    if engine == "dask":
        yield from _iter_dask(specs, workers, address)
    elif workers == 1:
        for spec in specs:
            yield run_partition(spec)
    else:
        yield from _iter_pool(specs, workers)


def _iter_pool(specs: Iterable[PartitionSpec], workers: int) -> Iterator[PartitionResult]:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    ctx = multiprocessing.get_context(start_method())
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        pending: deque[Any] = deque()
        it = iter(specs)
        for spec in it:
            pending.append(pool.submit(run_partition, spec))
            if len(pending) >= 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def start_method() -> str:
    """How the process pool starts its workers.

    ``fork`` where it is safe: on Linux, when this process runs no other thread. The workers
    then start in milliseconds and inherit the engine the parent built (content, catalog, name
    pools), so nothing is loaded again per worker. Otherwise (a progress-bar thread, macOS,
    Windows) ``forkserver`` or ``spawn``: forking a process with threads may deadlock the child.
    Same bytes either way: a partition is a pure function of its spec.

    >>> start_method() in ("fork", "forkserver", "spawn")
    True
    """
    import multiprocessing
    import sys
    import threading

    methods = multiprocessing.get_all_start_methods()
    if sys.platform == "linux" and "fork" in methods and threading.active_count() == 1:
        return "fork"
    return "forkserver" if "forkserver" in methods else "spawn"


def _iter_dask(
    specs: Iterable[PartitionSpec], workers: int, address: str | None
) -> Iterator[PartitionResult]:
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise ArgumentError(
            "engine: 'dask' needs dask.distributed; install it with pip install 'ehr-sandbox[dask]'"
        ) from None
    cluster = None
    if address is None:
        cluster = LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=40,
        )
        client = Client(cluster)
    else:
        client = Client(address)
    try:
        pending: deque[Any] = deque()
        for spec in specs:
            pending.append(client.submit(run_partition, spec, pure=False))
            if len(pending) >= 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def default_workers() -> int:
    """Number of CPUs this process may use (the upper bound that makes sense for ``workers``).

    >>> default_workers() >= 1
    True
    """
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
