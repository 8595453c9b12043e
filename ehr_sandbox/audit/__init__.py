"""The audit trail: BALP AuditEvents in a hash chain with MACs and signed checkpoints.

Pure module (no session/sandbox imports); see docs/privacy.md, "Audit trail".

>>> import sqlite3
>>> from ehr_sandbox.audit import AuditTrail
>>> AuditTrail(sqlite3.connect(":memory:"), bytes(32)).verify().ok
True
"""

from ehr_sandbox.audit.chain import VerifyResult
from ehr_sandbox.audit.events import build_event, event_patient, event_username
from ehr_sandbox.audit.trail import AuditTrail

__all__ = ["AuditTrail", "VerifyResult", "build_event", "event_patient", "event_username"]
