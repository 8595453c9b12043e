"""HIPAA Safe Harbor de-identification and a scanner for identifiers left behind.

See docs/privacy.md, "De-identification" and :mod:`ehr_sandbox.deid.safe_harbor`.

>>> from ehr_sandbox.deid import deidentify, scan_for_identifiers
>>> src = [{"resourceType": "Patient", "id": "pat-000001", "name": [{"family": "Okafor"}], "birthDate": "1980-04-02"}]
>>> out = deidentify(src, reference_date="2026-01-01")
>>> scan_for_identifiers(out.resources, src)
[]
"""

from ehr_sandbox.deid.safe_harbor import AGE_90_EXTENSION, DROPPED_TYPES, DeidResult, deidentify
from ehr_sandbox.deid.scanner import Finding, scan_for_identifiers
from ehr_sandbox.deid.zip3 import RESTRICTED_ZIP3, generalize_zip

__all__ = [
    "AGE_90_EXTENSION",
    "DROPPED_TYPES",
    "RESTRICTED_ZIP3",
    "DeidResult",
    "Finding",
    "deidentify",
    "generalize_zip",
    "scan_for_identifiers",
]
