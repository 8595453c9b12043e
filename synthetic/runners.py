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


@dataclass(slots=True)
class PartitionResult:
    """Encoded output of one partition: NDJSON bytes by type, or ``(file name, bytes)`` pairs.

    >>> PartitionResult(0, 2, counts={"Patient": 2}).counts["Patient"]
    2
    """

    start: int
    stop: int
    chunks: dict[str, bytes] = field(default_factory=dict)
    files: list[tuple[str, bytes]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    manifest: bytes = b""

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


def _fill(
    engine: Any, spec: PartitionSpec, types: frozenset[str] | None, result: PartitionResult
) -> None:
    import orjson

    from synthetic.defects import apply_defects
    from synthetic.writers.bundle import encode_patient_bundle, patient_file_name
    from synthetic.writers.ndjson import encode_resources

    counts = result.counts
    rates = dict(spec.defects) if spec.defects else None
    manifest = bytearray()

    def _make(i: int) -> Any:
        record = engine.patient(i)
        if rates:
            record = apply_defects(record, rates, seed=spec.seed)
            for entry in record.defects:
                manifest.extend(orjson.dumps(entry, option=orjson.OPT_APPEND_NEWLINE))
        return record

    if spec.format == "ndjson":
        chunks: dict[str, bytearray] = {}
        for i in range(spec.start, spec.stop):
            record = _make(i)
            for t, data in encode_resources(record.all(), types).items():
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
) -> Iterator[PartitionResult]:
    """Run ``specs`` and yield their results in the order given (bounded work in flight).

    >>> list(iter_partitions([], workers=0))
    Traceback (most recent call last):
    ...
    synthetic.errors.ArgumentError: workers: expected an integer >= 1, got 0
    """
    if not isinstance(workers, int) or workers < 1:
        raise ArgumentError(f"workers: expected an integer >= 1, got {workers!r}")
    if engine not in ENGINES:
        raise ArgumentError(f"engine: expected one of {', '.join(ENGINES)}, got {engine!r}")
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

    # forkserver: forking a parent that runs a progress-bar thread is not safe.
    method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    ctx = multiprocessing.get_context(method)
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        pending: deque[Any] = deque()
        it = iter(specs)
        for spec in it:
            pending.append(pool.submit(run_partition, spec))
            if len(pending) >= 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


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
