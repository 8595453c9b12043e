"""Bundle and Bulk NDJSON import (plan, then apply in one transaction) and export.

>>> from ehr_sandbox.store import Store
>>> st = Store()
>>> _ = import_bundle(st, {"resourceType": "Bundle", "type": "collection",
...                        "entry": [{"resource": {"resourceType": "Patient", "id": "a"}}]})
>>> st.exists("Patient", "a")
True
"""

from __future__ import annotations

from ehr_sandbox.bundles.apply import (
    apply_plan,
    import_bundle,
    import_resources,
    store_finder,
    transaction_response,
)
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

__all__ = [
    "PlannedWrite",
    "apply_plan",
    "combined",
    "export_bundles",
    "export_ndjson",
    "highest_confidentiality",
    "import_bundle",
    "import_resources",
    "make_bundle",
    "plan_bundle",
    "plan_collecting",
    "plan_resources",
    "read_bundle_file",
    "read_ndjson_dir",
    "read_ndjson_file",
    "store_finder",
    "transaction_response",
]
