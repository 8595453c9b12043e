"""Benchmark what a class waits on (issue 17): every figure against its floor, in one run.

Sections (``--only`` picks some; all by default):

* ``load``: ``Sandbox.generate(N)`` against a bare SQLite bulk insert of the same JSON (one
  table, one row per resource, one transaction), measured in the same run. Target <= 3x.
  Also shown: the load alone (generation excluded), since the generator is timed elsewhere.
* ``size``: ``Sandbox.generate(M)`` into a file in a fresh process: peak RSS (target <= 1 GB)
  and file size against the NDJSON of the same records (target <= 2x).
* ``search``: ``s.search("Patient").fetch()`` as a physician with N patients against the store
  reading the same rows (target <= 3x), the audit events it wrote (one per patient) and
  whether the chain still verifies; also the first fetch of a fresh login, which first works
  out whom the physician treats. ``--cached`` runs search and sort on a copy of the cached
  clinic (built by the first run) instead of generating one in this process.
* ``sort``: ``.sort("-date").first()`` on one patient's Observations, p95 (target <= 5 ms).
* ``workers``: ``ehr-sandbox generate --workers 2`` (and ``--engine dask`` when installed)
  against ``--workers 1``: wall-clock speed-up (target >= 1.6x on 2 free cores), identical
  bytes, and the peak RSS of the whole process tree.
* ``reports``: ``session.reports.run("bp_control")`` cold (first run) and warm (target <= 5 s
  and <= 1 s) on N patients, and its rows against flattening every resource again.
* ``start``: the first ``exercises.start()`` in a fresh process (target <= 0.3 s), with the
  clinic cache warm (a previous process built it).
* ``cli``: generation on one core end to end (the CLI with its start-up), resources/s
  (target >= 150k/s). No peer generator is installed here (Synthea needs Java); the figure
  is printed against the floor instead.

Run from the repository root: ``python bench/classroom.py --patients 200``. Prints figures;
asserts nothing (speed is never asserted in tests).
"""

from __future__ import annotations

import argparse
import gc
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ehr_sandbox.sandbox import Sandbox  # noqa: E402


def _line(what: str, value: float, floor: float, target: float, unit: str = "x") -> None:
    ok = "meets" if value <= target else "MISSES"
    print(f"  {what}: {value:.2f}{unit} (target <= {target:g}{unit}; floor {floor:.3g}) {ok}")


def _at_least(what: str, value: float, target: float, unit: str = "x") -> None:
    ok = "meets" if value >= target else "MISSES"
    print(f"  {what}: {value:.2f}{unit} (target >= {target:g}{unit}) {ok}")


def bare_insert(resources: list[dict]) -> float:
    """Seconds to insert the resources' JSON into one SQLite table in one transaction."""
    con = sqlite3.connect(":memory:", isolation_level=None)
    con.execute("CREATE TABLE r (rtype TEXT, rid TEXT, json BLOB)")
    t = time.process_time()
    con.execute("BEGIN")
    con.executemany(
        "INSERT INTO r VALUES (?,?,?)",
        [(r["resourceType"], r["id"], orjson.dumps(r)) for r in resources],
    )
    con.execute("COMMIT")
    dt = time.process_time() - t
    con.close()
    return dt


def bench_load(n: int, repeat: int) -> None:
    import synthetic

    ref = date(2026, 1, 1)
    practice = synthetic.practice_resources(seed=7, reference_date=ref)
    gen_best = float("inf")
    for _ in range(repeat):
        t = time.process_time()
        records = list(synthetic.generate(n, seed=7, reference_date=ref))
        gen_best = min(gen_best, time.process_time() - t)
    resources = practice + [r for rec in records for r in rec.all()]
    floor = min(bare_insert(resources) for _ in range(repeat))
    del records
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        t = time.process_time()
        sb = Sandbox.generate(patients=n, seed=7)
        best = min(best, time.process_time() - t)
        sb.close()
    print(f"load: Sandbox.generate({n}), {len(resources):,} resources, best of {repeat}")
    print(
        f"  bare SQLite insert of the same JSON: {floor:.2f} s CPU (all times here are CPU: the machine may be shared)"
    )
    print(f"  generation alone (synthetic.generate): {gen_best:.2f} s")
    print(f"  Sandbox.generate: {best:.2f} s ({len(resources) / best:,.0f} resources/s)")
    _line("generate / bare insert", best / floor, floor, 3)
    _line("(generate - generation) / bare insert", (best - gen_best) / floor, floor, 3)


SIZE_SCRIPT = """
import os, resource, sys, tempfile, time
from ehr_sandbox.sandbox import Sandbox
def peak_kb():
    # VmHWM is this process's own peak; Linux carries ru_maxrss across exec, so a child of a
    # big parent (this bench, after its load section) would report the parent's peak instead
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
d = tempfile.mkdtemp(); path = os.path.join(d, "clinic.db")
t = time.process_time()
sb = Sandbox.generate(patients=int(sys.argv[1]), seed=7, path=path); sb.close()
print(time.process_time() - t, os.path.getsize(path), peak_kb())
"""


def bench_size(n: int) -> None:
    import synthetic

    out = subprocess.run(
        [sys.executable, "-c", SIZE_SCRIPT, str(n)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    ).stdout.split()
    seconds, size, rss_kb = float(out[0]), int(out[1]), int(out[2])
    with tempfile.TemporaryDirectory() as d:
        synthetic.write_dataset(d, n, seed=7)
        ndjson = sum(p.stat().st_size for p in Path(d).rglob("*.ndjson"))
    print(f"size: Sandbox.generate({n}) to a file in a fresh process ({seconds:.1f} s)")
    _line("peak RSS", rss_kb / 1024 / 1024, 1.0, 1.0, " GB")
    print(f"  file {size / 1e6:.0f} MB, NDJSON of the same patients {ndjson / 1e6:.0f} MB")
    _line("file / NDJSON", size / ndjson, ndjson, 2)


def bench_search(sb: Sandbox, repeat: int) -> None:
    from ehr_sandbox.search import parse

    s = sb.login("dr.patel")
    q = parse("Patient", {})
    store_best = fetch_best = float("inf")
    n = 0
    for _ in range(repeat):
        t = time.process_time()
        rows = sb._store.search("Patient", q)  # noqa: SLF001 - the floor is the bare store
        store_best = min(store_best, time.process_time() - t)
        before = sb.audit.count()
        t = time.process_time()
        got = s.search("Patient").fetch()
        fetch_best = min(fetch_best, time.process_time() - t)
        events = sb.audit.count() - before
        n = len(got)
    # A fresh login first works out whom the user treats (care team, encounters, this
    # week's schedule): a cost per session, shown apart from the search itself.
    first_best = float("inf")
    for _ in range(repeat):
        fresh = sb.login("dr.patel")
        t = time.process_time()
        fresh.search("Patient").fetch()
        first_best = min(first_best, time.process_time() - t)
    verified = sb.audit.verify().ok
    print(f"search: Patient as a physician, {n} of {len(rows)} patients visible, best of {repeat}")
    print(f"  store.search: {store_best * 1e3:.1f} ms; session fetch: {fetch_best * 1e3:.1f} ms")
    print(f"  audit events of one fetch: {events} (one per patient returned: {n})")
    print(f"  audit chain verifies after the runs: {verified}")
    _line("fetch / store", fetch_best / store_best, store_best, 3)
    print(f"  first fetch of a fresh login (relationships worked out): {first_best * 1e3:.1f} ms")
    _line("first fetch of a fresh login / store", first_best / store_best, store_best, 3)


def bench_sort(sb: Sandbox, samples: int) -> None:
    s = sb.login("dr.patel")
    pids = [p["id"] for p in s.search("Patient").fetch()][:samples]
    times = []
    for pid in pids:
        t = time.process_time()
        s.search("Observation", patient=f"Patient/{pid}").sort("-date").first()
        times.append(time.process_time() - t)
    times.sort()
    p95 = times[int(0.95 * (len(times) - 1))]
    print(f"sort: Observation?patient=..&_sort=-date first(), {len(times)} patients")
    print(f"  median {statistics.median(times) * 1e3:.2f} ms")
    _line("p95", p95 * 1e3, 5, 5, " ms")


def _run_tree(cmd: list[str]) -> tuple[float, float, float, float]:
    """(wall s, peak summed RSS MB of the tree, CPU s of the parent alone, CPU s of all) of ``cmd``."""
    import resource

    import psutil

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    proc = psutil.Popen(
        cmd, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.DEVNULL
    )
    peak = 0
    cpu: dict[int, float] = {}  # last CPU seconds seen per process of the tree
    while proc.poll() is None:
        try:
            procs = [proc, *proc.children(recursive=True)]
            rss = 0
            for p in procs:
                try:
                    ct = p.cpu_times()
                    cpu[p.pid] = ct.user + ct.system
                    rss += p.memory_info().rss
                except psutil.Error:
                    pass
            peak = max(peak, rss)
        except psutil.Error:
            pass
        time.sleep(0.05)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed with {proc.returncode}")
    parent = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    parent = max(parent - sum(v for k, v in cpu.items() if k != proc.pid), cpu.get(proc.pid, 0))
    return wall, peak / 1e6, parent, sum(v for k, v in cpu.items() if k != proc.pid) + parent


def _digest(folder: Path) -> str:
    import hashlib

    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            h.update(p.name.encode())
            h.update(p.read_bytes())
    return h.hexdigest()[:16]


def bench_workers(n: int) -> None:
    base = [sys.executable, "-m", "ehr_sandbox", "generate", "-n", str(n), "--quiet"]
    runs = [("--workers 1", ["--workers", "1"]), ("--workers 2", ["--workers", "2"])]
    try:
        import dask.distributed  # noqa: F401

        runs.append(("--workers 2 --engine dask", ["--workers", "2", "--engine", "dask"]))
    except ImportError:
        print("  (dask not installed: the dask engine is not measured)")
    print(f"workers: generate {n} patients to NDJSON (wall clock needs free cores; CPU shown too)")
    results = {}
    with tempfile.TemporaryDirectory() as d:
        for label, extra in runs:
            out = Path(d) / label.replace(" ", "_")
            wall, mb, parent, total = _run_tree([*base, "--out", str(out), *extra])
            results[label] = (wall, mb, parent, total, _digest(out))
            print(
                f"  {label}: wall {wall:.1f} s, CPU parent {parent:.1f} s / all {total:.1f} s, "
                f"peak RSS of the tree {mb:.0f} MB, digest {results[label][4]}"
            )
    one = results["--workers 1"]
    _platform_ceiling(base, n)
    for label, (wall, mb, parent, total, digest) in results.items():
        if label == "--workers 1":
            continue
        same = "same bytes" if digest == one[4] else "DIFFERENT BYTES"
        _at_least(f"{label} wall speed-up over --workers 1 ({same})", one[0] / wall, 1.6)
        # on 2 free cores the run takes about max(all CPU / 2, parent CPU)
        ideal = one[3] / max(total / 2, parent)
        _at_least(f"{label} speed-up on 2 free cores, from CPU times", ideal, 1.6)
        print(f"    peak memory {mb / one[1]:.2f}x that of --workers 1")


def _platform_ceiling(base: list[str], n: int) -> None:
    """Print what two processes gain on this machine at all: two independent ``--workers 1``
    runs of ``n // 2`` patients at the same time against one of them alone (CPU seconds).

    Generation is memory-bound; where the two cores share caches or memory bandwidth (or
    are one core's two hardware threads under a hypervisor), each process needs more CPU
    when the other runs, and no partitioning can beat ``2 / (that factor)``.
    """
    import resource

    half = [*base[: base.index("-n") + 1], str(n // 2), *base[base.index("-n") + 2 :]]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    def cpu_of(count: int, d: str) -> float:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        procs = [
            subprocess.Popen(
                [*half, "--out", f"{d}/run{k}", "--workers", "1"],
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
            )
            for k in range(count)
        ]
        for p in procs:
            if p.wait():
                raise SystemExit(f"{' '.join(half)} failed with {p.returncode}")
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)

    with tempfile.TemporaryDirectory() as d:
        alone = cpu_of(1, f"{d}/alone")
        pair = cpu_of(2, f"{d}/pair") / 2
    factor = pair / alone
    print(
        f"  platform: two independent --workers 1 runs of {n // 2} patients at once each take "
        f"{factor:.2f}x the CPU of one alone ({pair:.1f} vs {alone:.1f} s): "
        f"two processes gain at most {2 / factor:.2f}x here"
    )


def bench_reports(n: int) -> None:
    from ehr_sandbox.reports import Reports

    try:
        from ehr_sandbox.clinic_cache import generate_cached
    except ImportError:  # an older checkout (for before/after figures)
        generate_cached = Sandbox.generate
    sb = generate_cached(patients=n, seed=7)
    s = sb.login("dr.patel")

    class Uncached:  # the plain door: every resource flattened on every run
        reference_date = s.reference_date
        resources = staticmethod(s.resources)
        can_read = staticmethod(s.can_read)

    t = time.process_time()
    plain = Reports(Uncached()).run("bp_control").to_pylist()
    t_plain = time.process_time() - t
    t = time.process_time()
    cold = s.reports.run("bp_control").to_pylist()
    t_cold = time.process_time() - t
    t = time.process_time()
    warm = s.reports.run("bp_control").to_pylist()
    t_warm = time.process_time() - t
    print(f"reports: bp_control as a physician, {n} patients ({len(warm)} rows)")
    print(f"  without the cache: {t_plain:.2f} s; rows equal to it: {cold == plain == warm}")
    _line("cold (first run, cache empty)", t_cold, t_plain, 5, " s")
    _line("warm", t_warm, t_plain, 1, " s")


START_SCRIPT = """
import time
t0, c0 = time.perf_counter(), time.process_time()
from ehr_sandbox import exercises
att = exercises.start("records/correction", student="alice")
print(time.perf_counter() - t0, time.process_time() - c0)
"""


def bench_start() -> None:
    # A fresh kernel of an installed package has its bytecode compiled (pip does it): the
    # children may write theirs (to a private folder, never into the tree) even when this
    # shell forbids it, and the first run compiles it, as it builds the clinic cache entry.
    with tempfile.TemporaryDirectory() as pyc:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONPYCACHEPREFIX": pyc}
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        runs = []
        for _ in range(4):  # the first may build the cache entries and the bytecode
            out = subprocess.run(
                [sys.executable, "-c", START_SCRIPT],
                capture_output=True,
                text=True,
                cwd=ROOT,
                env=env,
            )
            wall, cpu = out.stdout.split()[-2:]
            runs.append((float(wall), float(cpu)))
    text = ", ".join(f"{w:.2f} s wall / {c:.2f} s CPU" for w, c in runs)
    print(f"start: first exercises.start() in a fresh process (imports included): {text}")
    _line("best wall, clinic cache warm", min(w for w, _ in runs[1:]), 0.3, 0.3, " s")
    _line("best CPU, clinic cache warm", min(c for _, c in runs[1:]), 0.3, 0.3, " s")


def bench_cli(n: int) -> None:
    with tempfile.TemporaryDirectory() as d:
        cmd = [sys.executable, "-m", "ehr_sandbox", "generate", "-n", str(n), "--quiet", "--out", d]
        wall, _, parent, total = _run_tree(cmd)
        count = sum(p.read_bytes().count(b"\n") for p in Path(d).glob("*.ndjson"))
    print(f"cli: generate {n} patients on one core, {count:,} resources, start-up included")
    _at_least("resources/s by wall clock", count / wall / 1000, 150, "k")
    _at_least("resources/s by CPU time", count / total / 1000, 150, "k")


def main(argv: list[str] | None = None) -> None:
    """Run the chosen sections and print their figures.

    >>> callable(main)
    True
    """
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patients", type=int, default=200)
    ap.add_argument("--size-patients", type=int, default=1000)
    ap.add_argument("--clinic", type=int, default=1000, help="patients for search and sort")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--workers-patients", type=int, default=2000)
    ap.add_argument("--report-patients", type=int, default=200)
    ap.add_argument("--cli-patients", type=int, default=2000)
    ap.add_argument(
        "--cached",
        action="store_true",
        help="search and sort on a copy of the cached clinic (built once) instead of a fresh one",
    )
    ap.add_argument("--only", default="load,size,search,sort,workers,reports,start,cli")
    args = ap.parse_args(argv)
    only = set(args.only.split(","))
    if "load" in only:
        bench_load(args.patients, args.repeat)
    if "size" in only:
        bench_size(args.size_patients)
    if "workers" in only:
        bench_workers(args.workers_patients)
    if "reports" in only:
        bench_reports(args.report_patients)
    if "start" in only:
        bench_start()
    if "cli" in only:
        bench_cli(args.cli_patients)
    if only & {"search", "sort"}:
        t = time.process_time()
        if args.cached:  # a copy of the on-disk clinic cache (built once, by the first run)
            from ehr_sandbox.clinic_cache import generate_cached

            sb = generate_cached(patients=args.clinic, seed=7)
        else:
            sb = Sandbox.generate(patients=args.clinic, seed=7)
        print(f"(clinic of {args.clinic} patients ready in {time.process_time() - t:.1f} s)")
        if "search" in only:
            bench_search(sb, args.repeat)
        if "sort" in only:
            bench_sort(sb, 100)


if __name__ == "__main__":
    main()
