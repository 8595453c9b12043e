"""SQL on FHIR v2 ViewDefinitions: a Python reference evaluator and a DuckDB fast path.

``evaluate(view, resources)`` runs the reference evaluator; ``run(view, source, engine=...)``
picks the engine (``auto`` compiles to DuckDB SQL when it can and falls back otherwise).

>>> evaluate({"resource": "Patient", "select": [{"column": [{"name": "id", "path": "id"}]}]},
...          [{"resourceType": "Patient", "id": "p1"}])
[{'id': 'p1'}]
>>> run({"resource": "Patient", "select": [{"column": [{"name": "id", "path": "id"}]}]},
...     [{"resourceType": "Patient", "id": "p1"}], engine="duckdb")
[{'id': 'p1'}]
"""

from __future__ import annotations

from ehr_sandbox.views.definition import ViewPlan, compile_view
from ehr_sandbox.views.engine import ENGINES, compiles, run, run_arrow, view_sql
from ehr_sandbox.views.reference import evaluate
from ehr_sandbox.views.source import ResourceSource

__all__ = [
    "ENGINES",
    "ResourceSource",
    "ViewPlan",
    "compile_view",
    "compiles",
    "evaluate",
    "run",
    "run_arrow",
    "view_sql",
]
