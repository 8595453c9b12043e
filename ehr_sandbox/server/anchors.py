"""Audit anchors: the server appends signed checkpoints of the clinic's audit trail to a file
the instructor keeps elsewhere, so ``ehr-sandbox audit verify --anchor FILE`` catches a cut-off
tail even when the checkpoints stored in the database were deleted with it.

>>> import tempfile
>>> from pathlib import Path
>>> from ehr_sandbox import Sandbox
>>> d = Path(tempfile.mkdtemp())
>>> log = AnchorLog(d / "anchors" / "clinic.jsonl", data=d / "data")
>>> sb = Sandbox.generate(patients=1, seed=1, years=1)
>>> log.publish(sb)["seq"] > 0, log.publish(sb) is None
(True, True)
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ehr_sandbox.errors import ArgumentError


class AnchorLog:
    """An append-only file of signed checkpoints (one JSON object per line).

    Parameters
    ----------
    path : Path
        The anchor file; it must not be inside the server's data directory.
    data : Path
        The data directory (to refuse an anchor beside the data it protects).

    Raises
    ------
    ArgumentError
        The anchor file is inside the data directory.
    """

    def __init__(self, path: str | Path, *, data: str | Path) -> None:
        self.path = Path(path).resolve()
        root = Path(data).resolve()
        if self.path == root or root in self.path.parents:
            raise ArgumentError(
                "anchor: keep the anchor file outside the data directory (another disk or machine); "
                "an anchor beside the data can be deleted with it"
            )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.last = self._last_seq()

    def _last_seq(self) -> int:
        if not self.path.is_file():
            return 0
        last = 0
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                last = max(last, int(json.loads(line).get("seq", 0)))
            except (ValueError, AttributeError):
                continue
        return last

    def publish(self, sandbox: Any) -> dict[str, Any] | None:
        """Sign the end of ``sandbox``'s audit trail and append it if the trail grew.

        Returns
        -------
        dict or None
            The checkpoint appended, or None when nothing new was written.
        """
        cp = sandbox.audit.checkpoint() or sandbox.audit.latest_checkpoint()
        if cp is None or int(cp["seq"]) <= self.last:
            return None
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, (json.dumps(cp, sort_keys=True) + "\n").encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)
        self.last = int(cp["seq"])
        return cp
