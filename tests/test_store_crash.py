"""Crash safety: a writer killed with SIGKILL mid-stream loses no committed write."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from ehr_sandbox.store import Store

ROOT = Path(__file__).resolve().parents[1]

WRITER = r"""
import sys
from ehr_sandbox.store import Store
st = Store(sys.argv[1])
i = 0
while True:
    pid = f"p{i}"
    with st.transaction():
        st.create({"resourceType": "Patient", "id": pid, "name": [{"family": "Crash" + str(i)}]})
        for k in range(2):
            st.create({"resourceType": "Observation", "id": f"o{i}-{k}", "status": "final",
                       "code": {"text": "x"}, "subject": {"reference": "Patient/" + pid}})
    # reported only after COMMIT returned: these are the writes that must survive
    sys.stdout.write(pid + "\n")
    sys.stdout.flush()
    i += 1
"""


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL (POSIX)")
def test_sigkill_mid_stream_keeps_every_committed_write(tmp_path: Path) -> None:
    db = tmp_path / "crash.db"
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(db)], stdout=subprocess.PIPE, env=env, text=True
    )
    assert proc.stdout is not None
    committed: list[str] = []
    try:
        while len(committed) < 40:
            line = proc.stdout.readline()
            if not line:
                break
            committed.append(line.strip())
        proc.send_signal(signal.SIGKILL)  # while it is busy writing the next transactions
        rest, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    committed += [x for x in rest.split("\n") if x]
    assert proc.returncode == -signal.SIGKILL
    assert len(committed) >= 40

    con = sqlite3.connect(db)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    con.close()
    st = Store(db)
    for pid in committed:
        assert st.exists("Patient", pid), pid
    # no half transaction: every stored patient has both of its observations
    for p in st.iter_type("Patient"):
        i = p["id"][1:]
        assert st.exists("Observation", f"o{i}-0") and st.exists("Observation", f"o{i}-1")
    assert st.count("Observation") == 2 * st.count("Patient")
    st.close()
