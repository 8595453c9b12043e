"""Privacy benchmarks: audit-trail append/verify rates, AES-GCM row sealing and the policy's
overhead on reads and searches (against the bare store, in the same run).

Run from the repository root::

    python -m bench.privacy                 # 100,000 audit events, 20,000 rows
    python -m bench.privacy --events 200000 --json

Target (docs/privacy.md / issue "Privacy and security for real"): ``verify`` of a plaintext trail
at >= 100,000 events/s. The encrypted figure is reported separately (it decrypts every
record to re-hash it).

>>> r = bench_audit(events=200, encrypted=False, repeat=1)
>>> r["events"], r["verify_ok"]
(200, True)
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import time
from typing import Any

from ehr_sandbox.audit import AuditTrail, build_event
from ehr_sandbox.crypto import AesGcmCodec, IdentityCodec, MasterKey

VERIFY_TARGET = 100_000
USERS = [
    {"username": "ma.garcia", "role": "medical_assistant", "practitioner_id": "pr-ma-garcia"},
    {"username": "dr.patel", "role": "physician", "practitioner_id": "pr-dr-patel"},
    {"username": "fd.smith", "role": "front_desk", "practitioner_id": "pr-fd-smith"},
]
LABEL_N = [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "N"}]


def sample_event(i: int) -> dict[str, Any]:
    """A realistic read/search AuditEvent (about 1.3 KB of canonical JSON).

    >>> sample_event(3)["resourceType"]
    'AuditEvent'
    """
    search = i % 4 == 0
    return build_event(
        action="E" if search else "R",
        interaction="search" if search else "read",
        outcome="0" if i % 17 else "4",
        user=USERS[i % len(USERS)],
        purpose="TREAT",
        patient_id=f"pat-{i % 997:06d}",
        entity_ref=None if search else f"Observation/obs-{i:08d}",
        version=None if search else "1",
        labels=LABEL_N,
        query=f"Observation?patient=pat-{i % 997:06d}&category=vital-signs" if search else None,
        recorded=f"2026-01-{1 + i // 86400 % 28:02d}T{i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d}Z",
    )


def _best(fn: Any, repeat: int, *, clock: Any = time.perf_counter) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(repeat):
        start = clock()
        result = fn()
        best = min(best, clock() - start)
    return best, result


def bench_audit(
    events: int = 100_000, *, encrypted: bool = False, repeat: int = 3
) -> dict[str, Any]:
    """Append ``events`` AuditEvents to an in-memory trail, then time ``verify`` (best of ``repeat``).

    >>> bench_audit(events=50, encrypted=True, repeat=1)["mode"]
    'aes-gcm'
    """
    mk = MasterKey.generate()
    trail = AuditTrail(
        sqlite3.connect(":memory:"), mk, AesGcmCodec(mk) if encrypted else IdentityCodec()
    )
    batch = [sample_event(i) for i in range(events)]
    start = time.perf_counter()
    for event in batch:
        trail.append(event)
    append_s = time.perf_counter() - start
    verify_s, result = _best(trail.verify, repeat)
    return {
        "mode": "aes-gcm" if encrypted else "plain",
        "events": events,
        "append_per_s": round(events / append_s),
        "verify_per_s": round(events / verify_s),
        "verify_ok": bool(result.ok),
    }


def bench_rows(rows: int = 20_000, size: int = 1024, *, repeat: int = 3) -> dict[str, Any]:
    """AES-GCM seal and open rates for ``rows`` rows of ``size`` bytes (best of ``repeat``).

    >>> bench_rows(rows=10, repeat=1)["rows"]
    10
    """
    codec = AesGcmCodec(MasterKey.generate())
    payloads = [os.urandom(size) for _ in range(min(rows, 256))]
    aads = [f"Observation/obs-{i:08d}/_history/1" for i in range(rows)]
    seal_s, blobs = _best(
        lambda: [codec.seal(a, payloads[i % len(payloads)]) for i, a in enumerate(aads)], repeat
    )
    open_s, _ = _best(lambda: [codec.open(a, b) for a, b in zip(aads, blobs, strict=True)], repeat)
    return {
        "rows": rows,
        "row_bytes": size,
        "seal_per_s": round(rows / seal_s),
        "open_per_s": round(rows / open_s),
        "seal_mb_per_s": round(rows * size / seal_s / 1e6, 1),
    }


POLICY_READ_TARGET = 1.3
"""Read-by-id through the policy may cost at most 1.3x the same read without it."""


def bench_policy_read(patients: int = 30, reads: int = 3000, *, repeat: int = 7) -> dict[str, Any]:
    """Read-by-id: bare store read vs store read + pointer MAC check + policy decision +
    masking (the policy's cost), and vs the whole door (``Session.read``, which also writes an
    AuditEvent). CPU time, the two loops interleaved, best of ``repeat``.

    >>> r = bench_policy_read(patients=2, reads=20, repeat=1)
    >>> r["reads"] == 20 and r["policy_ratio"] > 0
    True
    """
    from ehr_sandbox.sandbox import Sandbox

    sb = Sandbox.generate(patients=patients, seed=3, years=2)
    session = sb.login("dr.patel")
    ctx = session.context
    ids = [
        o["id"]
        for pid in sorted(ctx.treating)
        for o in sb._store.search("Observation", _obs_query(pid))
    ][:reads]
    ids = (ids * (reads // max(len(ids), 1) + 1))[:reads]
    store, policy = sb._store, sb.policy

    def bare() -> None:
        for i in ids:
            store.read("Observation", i)

    pointers = sb._pointers

    def with_policy() -> None:
        for i in ids:
            r = store.read("Observation", i)
            pointers.check("Observation", i, r["meta"]["versionId"])  # authenticated pointer
            if policy.decide(ctx, "read", r, resource_type="Observation").allowed:
                policy.mask(ctx, r)

    def door() -> None:
        for i in ids:
            session.read("Observation", i)

    bare()  # warm the page cache (and the verified pointers) for both
    with_policy()
    # Interleaved, best of ``repeat``, in CPU time: the machine may be shared, and a run that
    # was descheduled says nothing about the code.
    bare_s = policy_s = float("inf")
    for _ in range(repeat):
        bare_s = min(bare_s, _best(bare, 1, clock=time.process_time)[0])
        policy_s = min(policy_s, _best(with_policy, 1, clock=time.process_time)[0])
    door_s, _ = _best(door, 1, clock=time.process_time)
    return {
        "reads": len(ids),
        "bare_us": round(bare_s / len(ids) * 1e6, 1),
        "policy_us": round(policy_s / len(ids) * 1e6, 1),
        "door_with_audit_us": round(door_s / len(ids) * 1e6, 1),
        "policy_ratio": round(policy_s / bare_s, 2),
        "door_ratio": round(door_s / bare_s, 2),
        "target_ratio": POLICY_READ_TARGET,
    }


POLICY_SEARCH_TARGET = 3.0
"""A search over a 200-patient clinic through the door may cost at most 3x the store's."""


def bench_policy_search(
    patients: int = 200, *, user: str = "instructor.lee", repeat: int = 3
) -> dict[str, Any]:
    """One search across the whole clinic (heart rates of every patient): the store's own
    search vs ``Session.search`` (chains resolved, masked parameters refused, a policy decision
    per candidate, masking, pointer checks and one AuditEvent per patient in the result).

    >>> r = bench_policy_search(patients=3, repeat=1)
    >>> r["patients"] == 3 and r["matches"] > 0 and r["door_ratio"] > 0
    True
    """
    from ehr_sandbox.sandbox import Sandbox
    from ehr_sandbox.search import parse

    sb = Sandbox.generate(patients=patients, seed=3, years=2)
    session = sb.login(user)
    params = [("code", "http://loinc.org|8867-4")]
    query = parse("Observation", params)
    store = sb._store
    store.search("Observation", query)  # both warm: the same pages cached for each
    session.search("Observation", params).fetch()
    # interleaved, best of ``repeat``, CPU time (the machine may be shared)
    store_s = door_s = float("inf")
    found: Any = []
    seen: Any = []
    for _ in range(repeat):
        t, found = _best(lambda: store.search("Observation", query), 1, clock=time.process_time)
        store_s = min(store_s, t)
        t, seen = _best(
            lambda: session.search("Observation", params).fetch(), 1, clock=time.process_time
        )
        door_s = min(door_s, t)
    return {
        "patients": patients,
        "user": user,
        "matches": len(found),
        "visible": len(seen),
        "store_ms": round(store_s * 1e3, 1),
        "door_ms": round(door_s * 1e3, 1),
        "door_ratio": round(door_s / store_s, 2),
        "target_ratio": POLICY_SEARCH_TARGET,
    }


def _obs_query(patient_id: str) -> Any:
    from ehr_sandbox.search import parse

    return parse("Observation", [("patient", f"Patient/{patient_id}")])


def bench_store_writes(resources: int = 3000, *, repeat: int = 2) -> dict[str, Any]:
    """Store writes with the plaintext codec vs AES-256-GCM rows (and blind indexes).

    >>> bench_store_writes(resources=30, repeat=1)["resources"]
    30
    """
    import synthetic
    from ehr_sandbox.store import Store

    records = []
    for rec in synthetic.generate(max(1, resources // 300), seed=5, years=3):
        records.extend(rec.all())
    records = (records * (resources // max(len(records), 1) + 1))[:resources]

    def write(codec: Any) -> None:
        store = Store(None, codec=codec)
        with store.transaction():
            for i, r in enumerate(records):
                store.create({**r, "id": f"{r['id']}-{i}"})
        store.close()

    plain_s, _ = _best(lambda: write(IdentityCodec()), repeat)
    enc_s, _ = _best(lambda: write(AesGcmCodec(MasterKey.generate())), repeat)
    return {
        "resources": len(records),
        "plain_per_s": round(len(records) / plain_s),
        "encrypted_per_s": round(len(records) / enc_s),
        "encrypted_vs_plain_time": round(enc_s / plain_s, 2),
    }


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks and print the figures; exit 1 if the verify target is missed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--events", type=int, default=100_000, help="audit events to append and verify"
    )
    parser.add_argument("--rows", type=int, default=20_000, help="rows to seal/open with AES-GCM")
    parser.add_argument("--patients", type=int, default=200, help="clinic size for the search")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    results = {
        "audit_plain": bench_audit(args.events, encrypted=False),
        "audit_encrypted": bench_audit(args.events, encrypted=True),
        "aes_gcm_rows": bench_rows(args.rows),
        "policy_read": bench_policy_read(),
        "policy_search": bench_policy_search(args.patients),
        "store_writes": bench_store_writes(),
        "verify_target_per_s": VERIFY_TARGET,
    }
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for name, figures in results.items():
            print(f"{name}: {figures}")
    ok = (
        results["audit_plain"]["verify_per_s"] >= VERIFY_TARGET
        and results["policy_read"]["policy_ratio"] <= POLICY_READ_TARGET
        and results["policy_search"]["door_ratio"] <= POLICY_SEARCH_TARGET
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
