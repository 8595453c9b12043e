"""The child process that generates an encrypted template clinic for exercise attempts
(``python -m ehr_sandbox.server.template_job``, the job as JSON on stdin: the key never appears
on a command line). Generating takes seconds of CPU; in its own process it does not hold up the
server's requests.
"""

from __future__ import annotations

import json
import sys
from typing import Any


def generate_template(job: dict[str, Any]) -> None:
    """Generate one encrypted template clinic (what the child process does).

    Parameters
    ----------
    job : dict
        ``patients``, ``seed``, ``reference_date``, ``years``, ``population``, ``path`` (a new
        file) and ``key`` (hex).

    Examples
    --------
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "t.db")
    >>> generate_template({"patients": 1, "seed": 1, "reference_date": "2026-01-01",
    ...                    "years": 1, "population": "family-practice", "path": path,
    ...                    "key": "00" * 32})
    >>> from ehr_sandbox.sandbox import Sandbox
    >>> Sandbox.open(path, key=bytes(32)).grader_session().search("Patient").count()
    1
    """
    from ehr_sandbox.sandbox import Sandbox

    sb = Sandbox.generate(
        patients=int(job["patients"]),
        seed=int(job["seed"]),
        path=job["path"],
        reference_date=str(job["reference_date"]),
        years=int(job["years"]),
        population=str(job["population"]),
        key=bytes.fromhex(job["key"]),
    )
    sb.close()


if __name__ == "__main__":  # pragma: no cover - run by AttemptStore.template
    generate_template(json.loads(sys.stdin.read()))
