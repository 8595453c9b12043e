"""Benchmark the synthetic generator: resources/s on one core writing NDJSON, against a floor.

Prints:
* rate: resources per second of ``write_dataset`` on one core (NDJSON to a temporary
  directory), by wall clock and by CPU time, for each of ``--repeat`` runs (3), with their median
  and best: on a shared machine the same work measures up to a quarter apart from run to run
  (the instruction count per patient does not change), so one run is not a figure;
* floor: resources per second of ``orjson`` serialising the same, already built records (no
  generation at all), and the ratio rate / floor;
* peer: resources/s of the fastest Python synthetic-FHIR generator installed (``carebundle``,
  ``pip install ".[bench]"``; Synthea needs Java and is not on PyPI), writing the same kind of
  output (NDJSON by type) on one core, and the ratio rate / peer; the same for both command
  lines end to end (process start-up included);
* peak RSS of a whole run at 2,000 and 20,000 patients, each in a fresh subprocess;
* the interpreter, and the machine's load average before and after: a run beside other work
  (or on an interpreter built without profile-guided optimisation) measures lower.

Run ``python bench/generate.py`` (or ``--quick`` for smaller samples). Never part of the tests.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))

RSS_SCRIPT = """
import resource, sys, tempfile
import synthetic
with tempfile.TemporaryDirectory() as d:
    s = synthetic.write_dataset(d, int(sys.argv[1]), seed=1)
print(s.total, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def measure_rate(n: int) -> tuple[int, float, float]:
    """(resources, wall seconds, cpu seconds) of writing ``n`` patients as NDJSON on one core.

    >>> measure_rate(2)[0] > 2
    True
    """
    import synthetic

    synthetic.write_dataset(tempfile.mkdtemp(), 5, seed=1)  # load content, build pools
    with tempfile.TemporaryDirectory() as d:
        c0 = time.process_time()
        s = synthetic.write_dataset(d, n, seed=1)
        cpu = time.process_time() - c0
    return s.total, s.seconds, cpu


def measure_floor(n: int) -> tuple[int, float]:
    """(resources, cpu seconds) of orjson serialising ``n`` prebuilt patients' resources.

    >>> measure_floor(1)[0] > 1
    True
    """
    import orjson

    import synthetic

    records = list(synthetic.generate(n, seed=1))
    dumps, opt = orjson.dumps, orjson.OPT_APPEND_NEWLINE
    gc.disable()
    c0 = time.process_time()
    count = 0
    for rec in records:
        for r in rec.all():
            dumps(r, option=opt)
            count += 1
    cpu = time.process_time() - c0
    gc.enable()
    return count, cpu


def measure_peer(n: int) -> tuple[str, int, float] | None:
    """(peer name, resources, cpu seconds) of the peer writing ``n`` patients as NDJSON, or None.

    The peer is ``carebundle`` (a mixed cohort, one visit per patient), when installed.

    >>> r = measure_peer(1)
    >>> r is None or r[1] > 1
    True
    """
    try:
        import carebundle
    except ImportError:
        return None
    carebundle.to_ndjson(carebundle.generate_cohort(count=2, seed=1))  # warm up
    with tempfile.TemporaryDirectory() as d:
        c0 = time.process_time()
        streams = carebundle.to_ndjson(carebundle.generate_cohort(count=n, seed=1))
        count = 0
        for t, text in streams.items():
            Path(d, f"{t}.ndjson").write_text(text)
            count += text.count("\n")
        cpu = time.process_time() - c0
    return f"carebundle {carebundle.__version__}", count, cpu


def _tree_cpu(cmd: list[str]) -> tuple[float, float]:
    """(wall, CPU of the process and its children) of running ``cmd``."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, cwd=ROOT)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def _lines(folder: str) -> int:
    return sum(p.read_bytes().count(b"\n") for p in Path(folder).glob("*.ndjson"))


def measure_cli(n: int, peer_n: int) -> None:
    """Print both command lines end to end (start-up included), resources/s by CPU and wall.

    >>> callable(measure_cli)
    True
    """
    import shutil

    runs = [("ehr-sandbox", n, [sys.executable, "-m", "ehr_sandbox", "generate", "-n", str(n)])]
    runs[0][2].extend(["--quiet", "--out"])
    peer = shutil.which("carebundle")
    if peer is not None:
        args = [peer, "generate", "--profile", "mixed", "--count", str(peer_n), "--seed", "1"]
        runs.append(("carebundle", peer_n, [*args, "--format", "ndjson", "--out"]))
    rates = {}
    for name, count, cmd in runs:
        with tempfile.TemporaryDirectory() as d:
            wall, cpu = _tree_cpu([*cmd, d])
            res = _lines(d)
        rates[name] = res / cpu
        print(
            f"cli {name}: {count:,} patients, {res:,} resources: cpu {cpu:.2f} s -> "
            f"{res / cpu:,.0f} resources/s; wall {wall:.2f} s -> {res / wall:,.0f} resources/s"
        )
    if "carebundle" in rates:
        print(
            f"cli ratio ehr-sandbox / carebundle (cpu): {rates['ehr-sandbox'] / rates['carebundle']:.1f}"
        )
    else:
        print("cli peer: carebundle is not installed (pip install '.[bench]'); no peer ratio")


def peak_rss(n: int) -> tuple[int, float]:
    """(resources, peak RSS in MB) of a fresh process writing ``n`` patients.

    >>> peak_rss(1)[1] > 10
    True
    """
    out = subprocess.run(
        [sys.executable, "-c", RSS_SCRIPT, str(n)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout.split()
    return int(out[0]), int(out[1]) / 1024


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print the figures.

    >>> callable(main)
    True
    """
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller samples (a few seconds)")
    ap.add_argument("--repeat", type=int, default=3, help="runs of the rate (median and best)")
    args = ap.parse_args(argv)
    if args.repeat < 1:
        ap.error(f"--repeat: expected a positive number of runs (found {args.repeat})")
    n_rate = 300 if args.quick else 2000
    rss_sizes = (500, 2000) if args.quick else (2000, 20000)

    print(
        f"python {platform.python_implementation()} {platform.python_version()} ({sys.executable})"
    )
    print(f"load average before: {_load()}")
    # peak RSS first, in fresh processes started before this one has grown (a child inherits
    # its parent's high-water mark across fork)
    rss = [(n, *peak_rss(n)) for n in rss_sizes]
    runs = [measure_rate(n_rate) for _ in range(args.repeat)]
    total = runs[0][0]
    print(f"generate+write NDJSON, 1 core, {n_rate} patients: {total:,} resources")
    for i, (_, wall, cpu) in enumerate(runs, 1):
        print(
            f"  run {i}: wall {wall:.2f} s -> {total / wall:,.0f}/s; cpu {cpu:.2f} s -> {total / cpu:,.0f}/s"
        )
    cpu = statistics.median(c for _, _, c in runs)
    best = min(c for _, _, c in runs)
    print(f"  cpu median {total / cpu:,.0f} resources/s, best {total / best:,.0f} resources/s")
    f_count, f_cpu = measure_floor(min(n_rate, 200))
    floor = f_count / f_cpu
    print(
        f"floor (orjson.dumps of the same records, {f_count:,} resources): {floor:,.0f} resources/s"
    )
    print(f"ratio rate/floor (cpu): {total / cpu / floor:.2f}")
    peer = measure_peer(min(n_rate, 200))
    if peer is None:
        print("peer: carebundle is not installed (pip install '.[bench]'); no peer ratio")
    else:
        name, p_count, p_cpu = peer
        print(f"peer ({name}, NDJSON, {p_count:,} resources): {p_count / p_cpu:,.0f} resources/s")
        print(f"ratio rate/peer (cpu): {total / cpu / (p_count / p_cpu):.1f}")
    measure_cli(n_rate, min(n_rate, 200))
    for n, res, mb in rss:
        print(f"peak RSS at {n:,} patients ({res:,} resources): {mb:,.0f} MB")
    print(f"load average after: {_load()}")


def _load() -> str:
    """The 1, 5 and 15 minute load averages (runnable processes; this machine has
    ``os.cpu_count()`` cores), or 'unknown' where the system does not say."""
    try:
        return " / ".join(f"{x:.2f}" for x in os.getloadavg()) + f" on {os.cpu_count()} cores"
    except (AttributeError, OSError):
        return "unknown"


if __name__ == "__main__":
    main()
