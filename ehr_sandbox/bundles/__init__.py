"""Bundle and Bulk NDJSON planning (references, conditional and contained entries), reading
and export. Applying a plan is the Session's job (``session.transaction``, ``session.import_``);
the bare-store bulk path lives in :mod:`ehr_sandbox.store.plan_apply`.

>>> plan = plan_bundle({"resourceType": "Bundle", "type": "collection",
...     "entry": [{"resource": {"resourceType": "Patient", "id": "a"}}]},
...     exists=lambda t, i: False, find=lambda t, q: [])
>>> [w.ref for w in plan]
['Patient/a']
"""

from __future__ import annotations

from ehr_sandbox.bundles.export import (
    export_bundles,
    export_ndjson,
    highest_confidentiality,
    make_bundle,
)
from ehr_sandbox.bundles.plan import (
    PlannedWrite,
    combined,
    plan_bundle,
    plan_collecting,
    plan_resources,
)
from ehr_sandbox.bundles.readers import read_bundle_file, read_ndjson_dir, read_ndjson_file
from ehr_sandbox.bundles.response import transaction_response

__all__ = [
    "PlannedWrite",
    "combined",
    "export_bundles",
    "export_ndjson",
    "highest_confidentiality",
    "make_bundle",
    "plan_bundle",
    "plan_collecting",
    "plan_resources",
    "read_bundle_file",
    "read_ndjson_dir",
    "read_ndjson_file",
    "transaction_response",
]
