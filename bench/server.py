"""Load and fault benchmark of the classroom server: 30 simulated students, concurrently, each
through a whole exercise on loopback (bounded in count and time).

Run from the repository root::

    python -m bench.server                  # 30 students, records/correction
    python -m bench.server --students 10 --json

Each student: sign in (client credentials), start an attempt, do the work with the shipped
reference solution (the same script a student would run locally), ``check()``, ``submit()``.
Printed: p50/p95 latency per operation, throughput, and the same script in-process (the peer:
what the network and the server add) against a floor (``GET /fhir/metadata``). Then the
checks that nothing was lost: every submission is recorded and graded by the server, every
attempt's audit trail and the clinic's verify, and no student could read another's records.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx

from ehr_sandbox import Sandbox, connect
from ehr_sandbox.exercises.registry import get, start

EXERCISE = "records/correction"
DEADLINE_SECONDS = 600


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cli(*args: str) -> dict[str, str]:
    out = subprocess.run(
        [sys.executable, "-m", "ehr_sandbox", *args], capture_output=True, text=True, check=True
    ).stdout
    return dict(line.split(": ", 1) for line in out.splitlines() if ": " in line)


class Timer:
    """Latency samples per operation name (thread-safe)."""

    def __init__(self) -> None:
        self.samples: dict[str, list[float]] = defaultdict(list)
        self._lock = threading.Lock()

    def time(self, name: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            with self._lock:
                self.samples[name].append(time.perf_counter() - t0)

    def table(self) -> list[dict[str, Any]]:
        rows = []
        for name, xs in sorted(self.samples.items()):
            xs = sorted(xs)
            rows.append(
                {
                    "operation": name,
                    "n": len(xs),
                    "p50_ms": round(1000 * statistics.median(xs), 1),
                    "p95_ms": round(1000 * xs[min(len(xs) - 1, int(0.95 * len(xs)))], 1),
                }
            )
        return rows


def _label(method: str, path: str) -> str:
    parts = [p for p in path.split("/") if p]
    return f"{method} {parts[0] if parts else 'bundle'}" + (
        f" {parts[-1]}" if parts and parts[-1].startswith("$") else ""
    )


def timed_session(session: Any, timer: Timer) -> None:
    """Record the latency of every HTTP call a RemoteSession makes, by method and type (the
    FHIR calls it makes through fhirpy and the others through httpx)."""
    call, fhir = session._call, session._fhir

    def wrapped(method: str, path: str, **kwargs: Any) -> Any:
        return timer.time(_label(method, path), call, method, path, **kwargs)

    def wrapped_fhir(method: str, path: str, run: Any, headers: Any = None) -> Any:
        return timer.time(_label(method, path), fhir, method, path, run, headers)

    session._call = wrapped
    session._fhir = wrapped_fhir


def run(students: int = 30, patients: int = 20) -> dict[str, Any]:
    """Start a server process, drive ``students`` concurrently, check, stop; return figures."""
    data = Path(tempfile.mkdtemp(prefix="ehr-sandbox-bench-"))
    port = _free_port()
    root = f"http://127.0.0.1:{port}"
    teacher = _cli("server", "add-instructor", "--data", str(data), "--name", "bench")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ehr_sandbox",
            "serve",
            "--data",
            str(data),
            "--port",
            str(port),
            "--patients",
            str(patients),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    timer = Timer()
    failures: list[str] = []
    results: dict[str, Any] = {}
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                if httpx.get(f"{root}/fhir/metadata", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("the server did not start")
            time.sleep(0.3)
        admin = connect(root, client_id=teacher["client_id"], secret=teacher["secret"])
        slug = admin.course_call("POST", "/course", {"name": "Bench course"})["course"]
        admin.course_call(
            "POST", f"/course/{slug}/assignments", {"exercise": EXERCISE, "max_attempts": 3}
        )
        creds = {
            f"s{i:02d}": admin.course_call("POST", f"/course/{slug}/students", {"id": f"s{i:02d}"})
            for i in range(students)
        }
        attempts: dict[str, Any] = {}
        reference = get(EXERCISE).solution

        def student(name: str) -> None:
            try:
                c = creds[name]
                s = timer.time(
                    "sign in", connect, root, client_id=c["client_id"], secret=c["secret"]
                )
                att = timer.time("start attempt", s.start, EXERCISE, course=slug)
                timed_session(att.session, timer)
                reference.apply(att)
                timer.time("check", att.check)
                result = timer.time("submit", att.submit)
                attempts[name] = (s, att, result)
            except Exception as exc:  # noqa: BLE001 - a benchmark reports every failure
                failures.append(f"{name}: {type(exc).__name__}: {exc}")

        t0 = time.perf_counter()
        threads = [threading.Thread(target=student, args=(n,)) for n in creds]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=DEADLINE_SECONDS)
        wall = time.perf_counter() - t0
        ops = sum(len(v) for v in timer.samples.values())
        floor = []
        for _ in range(50):
            t1 = time.perf_counter()
            httpx.get(f"{root}/fhir/metadata")
            floor.append(time.perf_counter() - t1)
        # nothing lost: every submission recorded, graded by the server, passed (a passing
        # result also means the attempt's audit trail verified: a broken one scores zero)
        recorded = {r["student"]: r for r in _results(admin, slug)}
        lost = [n for n, (_, _, res) in attempts.items() if n not in recorded]
        not_server = [n for n, r in recorded.items() if r.get("graded_by") != "server"]
        not_passed = [n for n, (_, _, res) in attempts.items() if not res.passed]
        # isolation: no student can read another student's planted record
        leaks = 0
        names = sorted(attempts)
        for a, b in zip(names, names[1:] + names[:1], strict=False):
            other = attempts[b][1].facts.get("obs_id")
            mine = attempts[a][1].facts.get("obs_id")
            if other and other != mine and attempts[a][1].session.exists(f"Observation/{other}"):
                leaks += 1
        results = {
            "students": students,
            "completed": len(attempts),
            "failures": failures,
            "wall_s": round(wall, 2),
            "throughput_ops_s": round(ops / wall, 1),
            "latency": timer.table(),
            "floor_metadata_p50_ms": round(1000 * statistics.median(floor), 2),
            "lost_submissions": lost,
            "not_graded_by_server": not_server,
            "not_passed": not_passed,
            "cross_student_reads": leaks,
        }
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    results["audit_ok"] = _verify_clinic(data)
    results["in_process_peer_s"] = _in_process_peer()
    return results


def _results(admin: Any, slug: str) -> list[dict[str, Any]]:
    """Every recorded submission, from the instructor's results endpoint."""
    return list(admin.course_call("GET", f"/course/{slug}/results"))


def _verify_clinic(data: Path) -> bool:
    passphrase = (data / "keys" / "clinic.passphrase").read_text()
    sb = Sandbox.open(data / "clinic.db", passphrase=passphrase)
    try:
        return bool(sb.audit.verify().ok)
    finally:
        sb.close()


def _in_process_peer() -> float:
    """The same student script in-process (one student), for the ratio."""
    t0 = time.perf_counter()
    att = start(EXERCISE, "peer")
    get(EXERCISE).solution.apply(att)
    att.check()
    att.submit()
    return round(time.perf_counter() - t0, 3)


def main(argv: list[str] | None = None) -> None:
    """Command line: print the figures (``--json`` for machine-readable output)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--students", type=int, default=30)
    p.add_argument("--patients", type=int, default=20)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    res = run(students=min(args.students, 100), patients=args.patients)
    if args.json:
        print(json.dumps(res, indent=2))
        return
    print(
        f"{res['completed']}/{res['students']} students completed in {res['wall_s']} s "
        f"({res['throughput_ops_s']} timed operations/s); failures: {len(res['failures'])}"
    )
    print(
        f"floor: GET /fhir/metadata p50 {res['floor_metadata_p50_ms']} ms; "
        f"peer: the same script in-process {res['in_process_peer_s']} s per student"
    )
    print(f"{'operation':<28}{'n':>6}{'p50 ms':>10}{'p95 ms':>10}")
    for row in res["latency"]:
        print(f"{row['operation']:<28}{row['n']:>6}{row['p50_ms']:>10}{row['p95_ms']:>10}")
    print(
        f"lost submissions: {len(res['lost_submissions'])}; not graded by the server: "
        f"{len(res['not_graded_by_server'])}; not passed: {len(res['not_passed'])}; "
        f"cross-student reads: {res['cross_student_reads']}; clinic audit verifies: {res['audit_ok']}"
    )
    for f in res["failures"][:5]:
        print("  failure:", f)


if __name__ == "__main__":
    main()
