"""Public entry points: :func:`generate`, :func:`practice_resources`, :func:`write_dataset`.

>>> recs = list(generate(2, seed=7, years=2))
>>> [r.index for r in recs], recs[0].patient["resourceType"]
([0, 1], 'Patient')
>>> generate(-1)
Traceback (most recent call last):
...
synthetic.errors.ArgumentError: n: expected an integer >= 0, got -1
"""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any

from synthetic.dates import iso_date, parse_reference_date
from synthetic.defects import apply_defects, parse_defects
from synthetic.errors import ArgumentError
from synthetic.record import PatientRecord

GENERATED_TYPES: tuple[str, ...] = (
    "Patient",
    "AllergyIntolerance",
    "Appointment",
    "Claim",
    "ClaimResponse",
    "Condition",
    "Coverage",
    "DiagnosticReport",
    "DocumentReference",
    "Encounter",
    "Immunization",
    "Location",
    "MedicationAdministration",
    "MedicationRequest",
    "Observation",
    "Organization",
    "Practitioner",
    "PractitionerRole",
    "Procedure",
    "Schedule",
    "ServiceRequest",
    "Slot",
    "Specimen",
)
"""Every resource type the generator can write (a ``types`` filter must name some of these)."""

FORMATS = ("ndjson", "bundle")
BUNDLE_TYPES = ("transaction", "collection")
DEFAULT_REFERENCE_DATE = "2026-01-01"


def _int(name: str, value: Any, low: int, high: int | None = None) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or value < low
        or (high is not None and value > high)
    ):
        bound = f">= {low}" if high is None else f"from {low} to {high}"
        raise ArgumentError(f"{name}: expected an integer {bound}, got {value!r}")
    return value


def _date(value: str | date) -> str:
    return iso_date(parse_reference_date(value))


def _population(population: Any) -> str:
    if not isinstance(population, str) or not population:
        raise ArgumentError(f"population: expected a preset name, got {population!r}")
    return population


def _engine(seed: int, reference_date: str, years: int, population: str, content: Any) -> Any:
    from synthetic.engine import engine_for

    return engine_for(
        seed=seed,
        reference_date=reference_date,
        years=years,
        population=population,
        content=content,
    )


def generate(
    n: int,
    *,
    seed: int = 0,
    reference_date: str | date = DEFAULT_REFERENCE_DATE,
    years: int = 10,
    population: str = "family-practice",
    start: int = 0,
    content: Any = None,
    defects: Any = None,
) -> Iterator[PatientRecord]:
    """Stream ``n`` patients (indices ``start`` .. ``start + n - 1``), one record at a time.

    Arguments are checked before the first record is made; bad ones raise ArgumentError naming
    the argument. The output is a pure function of the arguments and the content version.
    ``defects`` opts in to dirty data for data-quality exercises: defect names, or a mapping
    of name to rate (see :mod:`synthetic.defects`); each record lists its own in ``.defects``.

    >>> next(generate(1, seed=1, years=1)).patient["meta"]["tag"][0]["code"]
    'synthetic'
    """
    n = _int("n", n, 0)
    seed = _int("seed", seed, -(2**63))
    years = _int("years", years, 1, 120)
    start = _int("start", start, 0)
    ref = _date(reference_date)
    rates = parse_defects(defects)
    eng = _engine(seed, ref, years, _population(population), content)
    return _stream(eng, start, n, rates, seed)


def _stream(
    eng: Any, start: int, n: int, rates: dict[str, float] | None = None, seed: int = 0
) -> Iterator[PatientRecord]:
    book = eng.book_before(start)  # the schedule the patients share, filled in index order
    for i in range(start, start + n):
        # a record is thousands of small acyclic dicts: letting the cyclic collector run while
        # it is built (and rescan every record the caller keeps) triples the cost
        enabled = gc.isenabled()
        gc.disable()
        try:
            rec = eng.patient(i, book)
        finally:
            if enabled:
                gc.enable()
        if rates:
            rec = apply_defects(rec, rates, seed=seed)
        yield rec


def practice_resources(
    *,
    seed: int = 0,
    reference_date: str | date = DEFAULT_REFERENCE_DATE,
    population: str = "family-practice",
    content: Any = None,
    patients: int = 0,
    years: int = 10,
    start: int = 0,
) -> list[dict[str, Any]]:
    """The shared practice resources every patient record refers to.

    Organization (practice and payers), Location, Practitioner and PractitionerRole for each
    staff member, a Schedule per physician and its free Slots around the reference date; the
    exam rooms (Location), point-of-care kit lots (Device) and their daily QC log (Task). With
    ``patients`` (and the ``years`` and ``start`` given to :func:`generate`), the free Slots
    leave out those the patients fill (their records carry them, busy), and covering
    physicians are added when the roster's days were full.

    >>> sorted({r["resourceType"] for r in practice_resources()})[:4]
    ['Device', 'Location', 'Organization', 'Practitioner']
    >>> free = lambda rs: sum(r["resourceType"] == "Slot" for r in rs)
    >>> free(practice_resources(patients=40, years=1)) < free(practice_resources(years=1))
    True
    """
    seed = _int("seed", seed, -(2**63))
    patients = _int("patients", patients, 0)
    years = _int("years", years, 1, 120)
    start = _int("start", start, 0)
    eng = _engine(seed, _date(reference_date), years, _population(population), content)
    book = eng.schedule_for(start, start + patients) if patients else None
    return eng.practice_resources(book)


@dataclass(slots=True)
class Summary:
    """What :func:`write_dataset` wrote.

    >>> Summary(Path("out"), 2, {"Patient": 2}, 0.5).total
    2
    """

    out_dir: Path
    patients: int
    resources: dict[str, int]
    seconds: float
    files: list[Path] = field(default_factory=list)
    bytes: int = 0
    defects: int = 0

    @property
    def total(self) -> int:
        """Total number of resources written.

        >>> Summary(Path("."), 1, {"Patient": 1, "Observation": 3}, 1.0).total
        4
        """
        return sum(self.resources.values())

    @property
    def rate(self) -> float:
        """Resources written per second.

        >>> Summary(Path("."), 1, {"Patient": 10}, 2.0).rate
        5.0
        """
        return self.total / self.seconds if self.seconds > 0 else 0.0


def check_types(types: Iterable[str] | None) -> tuple[str, ...] | None:
    """Validate a resource-type filter (None: every type).

    >>> check_types(["Patient", "Observation"])
    ('Observation', 'Patient')
    >>> check_types(["Foo"])
    Traceback (most recent call last):
    ...
    synthetic.errors.ArgumentError: types: unknown resource type 'Foo'; expected some of Patient, AllergyIntolerance, Appointment, Claim, ClaimResponse, Condition, Coverage, DiagnosticReport, DocumentReference, Encounter, Immunization, Location, MedicationAdministration, MedicationRequest, Observation, Organization, Practitioner, PractitionerRole, Procedure, Schedule, ServiceRequest, Slot, Specimen
    """
    if types is None:
        return None
    if isinstance(types, str):
        types = [t for t in types.split(",") if t.strip()]
    out = []
    for t in types:
        t = t.strip()
        if t not in GENERATED_TYPES:
            raise ArgumentError(
                f"types: unknown resource type {t!r}; expected some of {', '.join(GENERATED_TYPES)}"
            )
        out.append(t)
    if not out:
        raise ArgumentError("types: expected at least one resource type")
    return tuple(sorted(set(out)))


def write_dataset(
    out_dir: str | os.PathLike[str],
    n: int,
    *,
    seed: int = 0,
    format: str = "ndjson",
    bundle_type: str = "transaction",
    workers: int = 1,
    engine: str = "process",
    types: Iterable[str] | None = None,
    reference_date: str | date = DEFAULT_REFERENCE_DATE,
    years: int = 10,
    population: str = "family-practice",
    start: int = 0,
    content: Any = None,
    partition_size: int | None = None,
    address: str | None = None,
    progress: Callable[[int], None] | None = None,
    defects: Any = None,
) -> Summary:
    """Generate ``n`` patients and write them to ``out_dir``; return a :class:`Summary`.

    ``format="ndjson"`` writes FHIR Bulk Data files (one ``<Type>.ndjson`` per type, practice
    resources first, then patients in index order); ``format="bundle"`` writes
    ``practice.json`` and one ``patient-<index>.json`` Bundle per patient (``bundle_type``
    transaction or collection). ``workers > 1`` uses a process pool, ``engine="dask"`` a dask
    cluster (``address`` of a scheduler, else a local one); the bytes are the same whatever the
    workers or the engine. ``progress`` is called with the number of patients written so far.
    ``defects`` opts in to dirty data (see :func:`generate`); the injected defects are listed
    in ``defects-manifest.jsonl``.
    Every argument is checked before anything is written.

    >>> import tempfile
    >>> s = write_dataset(tempfile.mkdtemp(), 2, seed=1, years=1)
    >>> s.patients, s.resources["Patient"]
    (2, 2)
    """
    from synthetic.runners import ENGINES, PartitionSpec

    n = _int("n", n, 0)
    seed = _int("seed", seed, -(2**63))
    years = _int("years", years, 1, 120)
    start = _int("start", start, 0)
    workers = _int("workers", workers, 1, 512)
    ref = _date(reference_date)
    population = _population(population)
    if format not in FORMATS:
        raise ArgumentError(f"format: expected one of {', '.join(FORMATS)}, got {format!r}")
    if bundle_type not in BUNDLE_TYPES:
        raise ArgumentError(
            f"bundle_type: expected one of {', '.join(BUNDLE_TYPES)}, got {bundle_type!r}"
        )
    if engine not in ENGINES:
        raise ArgumentError(f"engine: expected one of {', '.join(ENGINES)}, got {engine!r}")
    type_filter = check_types(types)
    if partition_size is not None:
        partition_size = _int("partition_size", partition_size, 1)
    eng = _engine(seed, ref, years, population, content)  # also checks the population
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ArgumentError(f"out_dir: expected a directory, found a file at {str(out)!r}")
    t0 = time.perf_counter()
    counts: dict[str, int] = {}
    wanted = frozenset(type_filter) if type_filter is not None else None
    in_process = workers == 1 and engine == "process"
    size = partition_size or max(20, min(500, n // (workers * 4) or 1))
    practice: list[dict[str, Any]] | None = None
    if in_process and format == "bundle":
        # the planning pass: every patient's appointments placed in the shared schedule, so
        # the practice (its free slots) is known before the first patient's file. NDJSON in
        # one process places every patient as it builds them and puts the practice in front
        # of the files at the end (NdjsonSink.write_practice_first); partitioned runs plan
        # each partition just before handing it out (see _write_all): no second pass
        book = eng.schedule_for(start, start + n)
        practice = _practice(eng, book, wanted, counts)
    sink: Any
    if format == "ndjson":
        from synthetic.writers.ndjson import NdjsonSink

        sink = NdjsonSink(out)
    else:
        from synthetic.writers.bundle import BundleSink

        sink = BundleSink(out, bundle_type)
    # generated records hold no reference cycles: the cyclic collector would only rescan the
    # engine's long-lived tables, which costs a quarter of the run time
    rates = parse_defects(defects)
    plan = PartitionSpec(
        seed,
        ref,
        years,
        population,
        start,
        start + n,
        format,
        bundle_type,
        type_filter,
        content,
        tuple(sorted(rates.items())) if rates else None,
    )
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        injected = _write_all(
            sink, eng, practice, plan, workers, engine, address, counts, progress, size
        )
    finally:
        if gc_was_enabled:
            gc.enable()
    seconds = time.perf_counter() - t0
    return Summary(
        out, n, dict(sorted(counts.items())), seconds, sink.files(), sink.bytes_written, injected
    )


def _practice(
    eng: Any, book: Any, wanted: frozenset[str] | None, counts: dict[str, int]
) -> list[dict[str, Any]]:
    """The practice resources after ``book`` (the types wanted), counted into ``counts``."""
    out = [r for r in eng.practice_resources(book) if wanted is None or r["resourceType"] in wanted]
    for r in out:
        counts[r["resourceType"]] = counts.get(r["resourceType"], 0) + 1
    return out


def _write_all(
    sink: Any,
    eng: Any,
    practice: list[dict[str, Any]] | None,
    plan: Any,
    workers: int,
    engine: str,
    address: str | None,
    counts: dict[str, int],
    progress: Callable[[int], None] | None,
    size: int,
) -> int:
    """Write the practice and every patient of ``plan``; return the number of defects.

    ``practice`` is the practice planned beforehand (bundles in one process), written first;
    None: it is known only when every patient is placed and is written at the end (NDJSON
    puts it in front of the files, so the bytes are the same either way)."""
    import orjson

    from synthetic.runners import iter_partitions, split

    wanted = frozenset(plan.types) if plan.types is not None else None
    rates = dict(plan.defects) if plan.defects else None
    n = plan.stop - plan.start
    done = injected = 0
    with sink:
        if practice is not None:
            sink.write_practice(practice)
        if workers == 1 and engine == "process":
            book = eng.book_before(plan.start)
            for i in range(plan.start, plan.stop):
                rec = eng.patient(i, book)
                if rates:
                    rec = apply_defects(rec, rates, seed=plan.seed)
                    injected += len(rec.defects)
                    sink.write_manifest(
                        b"".join(
                            orjson.dumps(d, option=orjson.OPT_APPEND_NEWLINE) for d in rec.defects
                        )
                    )
                sink.write_record(rec, wanted, counts)
                done += 1
                if progress is not None and (done % 50 == 0 or done == n):
                    progress(done)
            sink.count_into(counts)
            if practice is None:  # every patient is placed: the practice's free slots are known
                sink.write_practice_first(_practice(eng, book, wanted, counts))
        else:
            book = eng.book_before(plan.start)

            def planned() -> Iterator[Any]:
                # each partition gets the shared schedule as the patients before it left it;
                # planned as the pool asks for work, so workers start at once
                for a, b in split(plan.start, n, size):
                    state = book.state()
                    for i in range(a, b):
                        eng.plan(i, book)
                    yield replace(plan, start=a, stop=b, schedule=state)

            for res in iter_partitions(
                planned(), workers=workers, engine=engine, address=address, spill_dir=sink.out_dir
            ):
                sink.write_partition(res)
                injected += res.manifest.count(b"\n")
                for t, c in res.counts.items():
                    counts[t] = counts.get(t, 0) + c
                done += res.patients
                if progress is not None:
                    progress(done)
            last = _practice(eng, book, wanted, counts)  # every patient is placed
            if plan.format == "ndjson":
                sink.write_practice_first(last)
            else:
                sink.write_practice(last)
    return injected
