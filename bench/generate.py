"""Benchmark the synthetic generator: resources/s on one core writing NDJSON, against a floor.

Prints:
* rate: resources per second of ``write_dataset`` on one core (NDJSON to a temporary
  directory), by wall clock and by CPU time (the machine may be shared);
* floor: resources per second of ``orjson`` serialising the same, already built records (no
  generation at all), and the ratio rate / floor;
* peak RSS of a whole run at 2,000 and 20,000 patients, each in a fresh subprocess.

Run ``python bench/generate.py`` (or ``--quick`` for smaller samples). Never part of the tests.
"""

from __future__ import annotations

import argparse
import gc
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
    args = ap.parse_args(argv)
    n_rate = 300 if args.quick else 2000
    rss_sizes = (500, 2000) if args.quick else (2000, 20000)

    # peak RSS first, in fresh processes started before this one has grown (a child inherits
    # its parent's high-water mark across fork)
    rss = [(n, *peak_rss(n)) for n in rss_sizes]
    total, wall, cpu = measure_rate(n_rate)
    print(f"generate+write NDJSON, 1 core, {n_rate} patients: {total:,} resources")
    print(f"  wall {wall:.2f} s -> {total / wall:,.0f} resources/s")
    print(f"  cpu  {cpu:.2f} s -> {total / cpu:,.0f} resources/s")
    f_count, f_cpu = measure_floor(min(n_rate, 200))
    floor = f_count / f_cpu
    print(
        f"floor (orjson.dumps of the same records, {f_count:,} resources): {floor:,.0f} resources/s"
    )
    print(f"ratio rate/floor (cpu): {total / cpu / floor:.2f}")
    for n, res, mb in rss:
        print(f"peak RSS at {n:,} patients ({res:,} resources): {mb:,.0f} MB")


if __name__ == "__main__":
    main()
