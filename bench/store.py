"""Store benchmark: import rate vs bare FHIR validation; read/search latency at scale.

Run from the repository root (needs ../shared/data/synthea-r4-sample)::

    python bench/store.py                      # import ratio + 200 and 5,000 patients
    python bench/store.py --scales 200 --encrypted-scales 200,5000

1. Import: the 24 Synthea sample bundles through ``plan_bundle`` (validation, ids, references)
   and ``apply_plan`` (versioned rows + search index), against validating the same resources
   with ``synthetic.fhir.validate`` alone. Target: import <= 2x the bare validation time.
0. ``Sandbox.generate(200)``: the time to build a clinic for a class (``--sandbox``).
2. Scale: the Synthea patient bundles replicated (fresh ids per copy) into a file store,
   ``--per-patient`` resources each (Patient first), then read-by-id and search latencies.
   The scale stores are filled with ``Store.create`` directly: validation was measured in 1.

Timings are the best of ``--repeat`` runs for the ratio (the machine may be shared) and
medians/95th percentiles for latencies. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ehr_sandbox.bundles import plan_bundle, read_bundle_file  # noqa: E402
from ehr_sandbox.bundles.references import copy_with_references  # noqa: E402
from ehr_sandbox.search import parse  # noqa: E402
from ehr_sandbox.store import Store  # noqa: E402
from ehr_sandbox.store.plan_apply import apply_plan, store_finder  # noqa: E402
from synthetic.fhir import validate  # noqa: E402

SAMPLE = ROOT.parent / "shared" / "data" / "synthea-r4-sample"
_UUID = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def sample_bundles() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(shared organization/practitioner bundles, patient bundles)."""
    files = sorted(SAMPLE.glob("*.json"))
    shared = [
        f for f in files if f.name.startswith(("hospitalInformation", "practitionerInformation"))
    ]
    return [read_bundle_file(f) for f in shared], [
        read_bundle_file(f) for f in files if f not in shared
    ]


def bench_import(repeat: int) -> None:
    shared, patients = sample_bundles()
    bundles = shared + patients
    resources = [e["resource"] for b in bundles for e in b["entry"]]
    best_validate = best_plan = best_apply = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        for r in resources:
            validate(r)
        best_validate = min(best_validate, time.perf_counter() - t)
        st = Store()
        t_plan = t_apply = 0.0
        for b in bundles:
            t = time.perf_counter()
            plan = plan_bundle(b, exists=st.exists, find=store_finder(st))
            t_plan += time.perf_counter() - t
            t = time.perf_counter()
            apply_plan(st, plan)
            t_apply += time.perf_counter() - t
        best_plan, best_apply = min(best_plan, t_plan), min(best_apply, t_apply)
        st.close()
    total = best_plan + best_apply
    n = len(resources)
    print(
        f"Import of the Synthea sample ({n} resources in {len(bundles)} bundles), best of {repeat}:"
    )
    print(
        f"  bare validation (synthetic.fhir.validate): {best_validate:6.2f} s  {n / best_validate:7.0f} res/s"
    )
    print(
        f"  import = plan {best_plan:.2f} s + apply {best_apply:.2f} s: {total:6.2f} s  {n / total:7.0f} res/s"
    )
    print(f"  ratio import / validation: {total / best_validate:.2f}x  (target <= 2x)")


def _replicas(
    patients: list[dict[str, Any]], shared_ids: set[str], n: int, per_patient: int | None
):
    """Yield n patient record copies as lists of resources with their references resolved."""
    for k in range(n):
        source = patients[k % len(patients)]
        copy_no = k // len(patients)
        own = {e["resource"]["id"] for e in source["entry"]} - shared_ids
        data = orjson.dumps(source)
        if copy_no:
            # one pass over the bytes: every id of this patient's own resources gets a copy suffix
            suffix = f"-c{copy_no}".encode()
            data = _UUID.sub(
                lambda m, own=own, suffix=suffix: (
                    m.group(0) + suffix if m.group(0).decode() in own else m.group(0)
                ),
                data,
            )
        bundle = orjson.loads(data)
        full_urls = {
            e["fullUrl"]: f"{e['resource']['resourceType']}/{e['resource']['id']}"
            for e in bundle["entry"]
        }
        chosen = bundle["entry"] if per_patient is None else bundle["entry"][:per_patient]
        yield [
            copy_with_references(e["resource"], full_urls, find=lambda t, q: [], where="bench")
            for e in chosen
        ]


def build_store(
    path: Path, n: int, per_patient: int | None, codec: Any = None
) -> tuple[Store, float, int]:
    shared, patients = sample_bundles()
    st = Store(path, codec=codec)
    with st.transaction():
        for b in shared:
            for e in b["entry"]:
                st.create(e["resource"])
    shared_ids = {e["resource"]["id"] for b in shared for e in b["entry"]}
    count = 0
    secs = 0.0
    for record in _replicas(patients, shared_ids, n, per_patient):
        t = time.perf_counter()  # only the store's work is timed, not preparing the copies
        with st.transaction():
            for r in record:
                if not st.exists(r["resourceType"], r["id"]):
                    st.create(r)
                    count += 1
        secs += time.perf_counter() - t
    return st, secs, count


def _lat(fn: Callable[[], Any], times: int) -> tuple[float, float]:
    samples = []
    for _ in range(times):
        t = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(0.95 * (len(samples) - 1))]


def bench_scale(n: int, per_patient: int | None, encrypted: bool) -> None:
    codec = None
    if encrypted:
        from ehr_sandbox.crypto import AesGcmCodec, MasterKey

        codec = AesGcmCodec(MasterKey.generate())
    with tempfile.TemporaryDirectory() as tmp:
        st, secs, count = build_store(Path(tmp) / "bench.db", n, per_patient, codec)
        size = sum(p.stat().st_size for p in Path(tmp).iterdir()) / 1e6
        label = f"{n} patients, {per_patient or 'all'} resources each{' (encrypted)' if encrypted else ''}"
        print(
            f"\nScale: {label}: {count} resources written in {secs:.1f} s ({count / secs:.0f} res/s, no validation), file {size:.0f} MB"
        )
        rng = random.Random(7)
        pats = list(st.iter_type("Patient"))
        obs_ids = [
            r[0]
            for r in st.connection.execute("SELECT rid FROM resources WHERE rtype = 'Observation'")
        ]
        pick = lambda: rng.choice(pats)  # noqa: E731
        cases: list[tuple[str, Callable[[], Any]]] = [
            ("read Observation by id", lambda: st.read("Observation", rng.choice(obs_ids))),
            (
                "Patient?family=<3 letters>",
                lambda: st.search(
                    "Patient", parse("Patient", {"family": pick()["name"][0]["family"][:3]})
                ),
            ),
            (
                "Observation?patient=<id>",
                lambda: st.search("Observation", parse("Observation", {"patient": pick()["id"]})),
            ),
            (
                "Observation?patient&code=8302-2&_sort=-date",
                lambda: st.search(
                    "Observation",
                    parse(
                        "Observation",
                        {
                            "patient": pick()["id"],
                            "code": "http://loinc.org|8302-2",
                            "_sort": "-date",
                        },
                    ),
                ),
            ),
            (
                "Observation?patient.family=<family>&date=ge2015",
                lambda: st.search(
                    "Observation",
                    parse(
                        "Observation",
                        {"patient.family": pick()["name"][0]["family"], "date": "ge2015"},
                    ),
                ),
            ),
            (
                "Encounter?patient=<id>&date=ge2015",
                lambda: st.search(
                    "Encounter", parse("Encounter", {"patient": pick()["id"], "date": "ge2015"})
                ),
            ),
            (
                "Patient?birthdate=ge1980&gender=female",
                lambda: st.search(
                    "Patient", parse("Patient", {"birthdate": "ge1980", "gender": "female"})
                ),
            ),
        ]
        print(f"  {'operation':52s} {'median ms':>10s} {'p95 ms':>8s}")
        for name, fn in cases:
            times = 2000 if name.startswith("read") else 50
            med, p95 = _lat(fn, times)
            print(f"  {name:52s} {med:10.3f} {p95:8.3f}")
        st.close()


def bench_sandbox_generate(patients: int = 200, *, seed: int = 7) -> None:
    """Time ``Sandbox.generate(patients)``: generation, bulk load, Provenance and audit."""
    import time

    from ehr_sandbox.sandbox import Sandbox

    start = time.perf_counter()
    sb = Sandbox.generate(patients=patients, seed=seed)
    seconds = time.perf_counter() - start
    total = sum(sb._store.count(t) for t in sb._store.types())
    print(
        f"Sandbox.generate({patients}): {seconds:.1f} s, {total:,} resources "
        f"({total / seconds:,.0f} resources/s), audit events {sb.audit.count():,}"
    )
    sb.close()


def bench_validation(patients: int = 30, repeat: int = 3) -> None:
    """Write-time validation (``validation.check``: model + R4B definitions + sandbox rules)
    and the R4B-definition rules alone, against bare ``fhir.resources`` model validation, on
    generated resources. Target: full validation within 2x of the bare model validation."""
    import synthetic
    from ehr_sandbox.validation import problems
    from ehr_sandbox.validation.r4b import compiled_invariants, r4b_problems

    resources = [r for rec in synthetic.generate(patients, seed=3) for r in rec.all()]
    compiled_invariants()  # compiled once per process, not per write

    def once(fn: Callable[[dict[str, Any]], Any]) -> float:
        t0 = time.process_time()  # CPU time: a busy machine does not count against either side
        for r in resources:
            fn(r)
        return time.process_time() - t0

    def full_check(r: dict[str, Any]) -> Any:
        return problems(r, exists=lambda ref: True)

    # rounds interleave the three, so each sees the same conditions; best round of each counts
    bare = r4b = full = float("inf")
    for _ in range(repeat):
        bare = min(bare, once(validate))
        r4b = min(r4b, once(r4b_problems))
        full = min(full, once(full_check))
    n = len(resources)
    print(
        f"validation of {n:,} generated resources (CPU time, best of {repeat} interleaved rounds):"
    )
    print(f"  bare fhir.resources model validation: {n / bare:,.0f} resources/s (the peer)")
    print(f"  R4B definitions (bindings, references, invariants): {n / r4b:,.0f} resources/s")
    print(f"  full write-time check: {n / full:,.0f} resources/s")
    print(f"  ratio full check / bare model: {full / bare:.2f}x  (target <= 2x)")
    print(f"  ratio R4B rules / bare model: {r4b / bare:.2f}x")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scales", default="200,5000", help="patient counts, comma-separated")
    ap.add_argument(
        "--per-patient", type=int, default=60, help="resources per replicated patient (0 = all)"
    )
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument(
        "--encrypted-scales", default="200", help="patient counts to rerun with AES-GCM rows"
    )
    ap.add_argument("--skip-import", action="store_true")
    ap.add_argument(
        "--validation", type=int, default=30, help="patients for the validation ratio (0 = skip)"
    )
    ap.add_argument(
        "--sandbox",
        type=int,
        default=200,
        help="patients for the Sandbox.generate timing (0 = skip)",
    )
    args = ap.parse_args(argv)
    if args.validation:
        bench_validation(args.validation, args.repeat)
    if args.sandbox:
        bench_sandbox_generate(args.sandbox)
    if not SAMPLE.is_dir():
        sys.exit("needs ../shared/data/synthea-r4-sample next to the repository")
    if not args.skip_import:
        bench_import(args.repeat)
    for n in (int(x) for x in args.scales.split(",") if x):
        bench_scale(n, args.per_patient or None, False)
    for n in (int(x) for x in args.encrypted_scales.split(",") if x):
        bench_scale(n, args.per_patient or None, True)


if __name__ == "__main__":
    main()
