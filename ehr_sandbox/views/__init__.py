"""SQL on FHIR v2 ViewDefinitions: a Python reference evaluator and a DuckDB fast path.

>>> evaluate({"resource": "Patient", "select": [{"column": [{"name": "id", "path": "id"}]}]},
...          [{"resourceType": "Patient", "id": "p1"}])
[{'id': 'p1'}]
"""

from __future__ import annotations

from ehr_sandbox.views.definition import ViewPlan, compile_view
from ehr_sandbox.views.reference import evaluate

__all__ = ["ViewPlan", "compile_view", "evaluate"]
